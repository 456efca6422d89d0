/**
 * A patched() right after a local activity, recorded on the real dev server and replayed with
 * Worker.runReplayHistory. The kill path runs its first calls as local activities (workflows/executor.ts); the
 * first patch after a release will sit after them, so this shows whether that shape replays on this SDK
 * (@temporalio/* 1.24.0). See docs/kill-first.md.
 */
import { Client, Connection } from '@temporalio/client';
import { NativeConnection, Worker } from '@temporalio/worker';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { installLogging } from '../../worker/logging.js';

const workflowsPath = fileURLToPath(new URL('../support/patch-after-local-activity-workflows.ts', import.meta.url));
const taskQueue = `la-patch-${randomBytes(4).toString('hex')}`;
let worker: Worker;
let running: Promise<void>;
let client: Client;

beforeAll(async () => {
  installLogging('ERROR');
  const address = inject('temporalAddress');
  worker = await Worker.create({
    connection: await NativeConnection.connect({ address }),
    taskQueue,
    workflowsPath,
    activities: { echo: async (value: string) => value },
  });
  running = worker.run();
  client = new Client({ connection: await Connection.connect({ address }) });
});

afterAll(async () => {
  worker?.shutdown();
  await running;
});

async function recordAndReplay(workflowType: string, expected: string[]): Promise<void> {
  const h = await client.workflow.start(workflowType, {
    taskQueue,
    workflowId: `${workflowType}-${randomBytes(4).toString('hex')}`,
  });
  expect(await h.result()).toEqual(expected);
  const history = await h.fetchHistory();
  await expect(Worker.runReplayHistory({ workflowsPath, replayName: h.workflowId }, history)).resolves.toBeUndefined();
}

describe('a patched() evaluated after a local activity replays', () => {
  it('patch check first, then the local activity (control)', async () => {
    await recordAndReplay('patchedThenLocalActivity', ['patched']);
  });

  it('local activity, then the patch check, in the same workflow task', async () => {
    await recordAndReplay('localActivityThenPatched', ['before', 'patched']);
  });

  it('local activity, then the patch check, then a timer', async () => {
    await recordAndReplay('localActivityThenPatchedThenTimer', ['before', 'patched']);
  });
});
