/**
 * The orphan sweeper's Schedule follows the worker's config, on the real Temporal dev server (a namespace of
 * its own, so the shared Schedule ID is this test's alone): created, updated when regions or interval change,
 * paused when the regions are emptied, resumed when they are set again.
 */
import { Client, Connection } from '@temporalio/client';
import { randomBytes } from 'node:crypto';
import { describe, expect, inject, it } from 'vitest';
import { configSchema } from '../../config/config.js';
import { ensureSweeperSchedule, SWEEPER_SCHEDULE_ID } from '../../worker/schedules.js';
import { ensureNamespace } from '../support/temporal-namespace.js';

describe('the sweeper schedule', () => {
  it(
    'is updated when the config changes, paused when sweeping is turned off, resumed when it is on again',
    { timeout: 60_000 },
    async () => {
      const namespace = `sweep-${randomBytes(4).toString('hex')}`;
      await ensureNamespace(namespace);
      const connection = await Connection.connect({ address: inject('temporalAddress') });
      const client = new Client({ connection, namespace });
      const config = (eks: Record<string, unknown>, taskQueue = 'pod-responder') =>
        configSchema.parse({ temporal: { taskQueue, namespace }, eks });
      const described = async () => {
        const d = await client.schedule.getHandle(SWEEPER_SCHEDULE_ID).describe();
        const a = d.action as { taskQueue: string; args: unknown[] };
        return {
          every: d.spec.intervals?.map((i) => i.every),
          taskQueue: a.taskQueue,
          args: a.args,
          paused: d.state.paused,
        };
      };
      try {
        expect(await ensureSweeperSchedule(client, config({ sweepRegions: ['eu-west-1'] }))).toBe('created');
        expect(await ensureSweeperSchedule(client, config({ sweepRegions: ['eu-west-1'] }))).toBe('exists');
        expect(await described()).toEqual({
          every: [15 * 60_000],
          taskQueue: 'pod-responder',
          args: [{ regions: ['eu-west-1'] }],
          paused: false,
        });

        expect(
          await ensureSweeperSchedule(client, config({ sweepRegions: ['eu-west-1', 'us-east-1'] }, 'other-queue')),
        ).toBe('updated');
        expect(await described()).toEqual({
          every: [15 * 60_000],
          taskQueue: 'other-queue',
          args: [{ regions: ['eu-west-1', 'us-east-1'] }],
          paused: false,
        });

        expect(await ensureSweeperSchedule(client, config({ sweepRegions: [] }))).toBe('paused');
        expect((await described()).paused).toBe(true);
        expect(await ensureSweeperSchedule(client, config({ sweepRegions: [] }))).toBe('disabled');

        expect(
          await ensureSweeperSchedule(client, config({ sweepRegions: ['eu-west-1', 'us-east-1'] }, 'other-queue')),
        ).toBe('updated');
        expect((await described()).paused).toBe(false);

        // An operator's own pause is theirs to lift.
        await client.schedule.getHandle(SWEEPER_SCHEDULE_ID).pause('investigating');
        expect(
          await ensureSweeperSchedule(client, config({ sweepRegions: ['eu-west-1', 'us-east-1'] }, 'other-queue')),
        ).toBe('exists');
        expect((await described()).paused).toBe(true);
      } finally {
        await client.schedule
          .getHandle(SWEEPER_SCHEDULE_ID)
          .delete()
          .catch(() => {});
        await connection.close();
      }
    },
  );
});
