/**
 * The all-in-one gateway's choice between an eager start and signal-with-start (forwarder/temporal-gateway.ts),
 * against a recorded fake of Temporal's WorkflowService: which calls it makes, in which order, and what it counts.
 * The same paths against the real dev server: test/integration/all-in-one.test.ts.
 */
import { InternalConnectionLikeSymbol } from '@temporalio/client';
import type { NativeConnection } from '@temporalio/worker';
import { describe, expect, it } from 'vitest';
import { configSchema } from '../../config/config.js';
import type { PodAlert } from '../../domain/alert.js';
import { IncidentClosed, TemporalGateway, type EagerStart } from '../../forwarder/temporal-gateway.js';
import { alertFor } from '../../devstack/fixtures.js';

const config = configSchema.parse({ temporal: { address: '127.0.0.1:7233', taskQueue: 'q' } });

/** A WorkflowService whose start answers `start` (an incident running or closed: ALREADY_EXISTS). */
function fakeTemporal(start: 'new' | 'exists' | 'declined', signalWithStart: 'ok' | 'closed' = 'ok') {
  const calls: { rpc: string; req: Record<string, any> }[] = [];
  const alreadyExists = () => Object.assign(new Error('already started'), { code: 6 });
  const connection = {
    workflowService: {
      startWorkflowExecution: async (req: Record<string, any>) => {
        calls.push({ rpc: 'start', req });
        if (start === 'exists') throw alreadyExists();
        return { runId: 'run-1', eagerWorkflowTask: start === 'new' ? {} : null };
      },
      signalWithStartWorkflowExecution: async (req: Record<string, any>) => {
        calls.push({ rpc: 'signalWithStart', req });
        if (signalWithStart === 'closed') throw alreadyExists();
        return { runId: 'run-0' };
      },
      signalWorkflowExecution: async (req: Record<string, any>) => {
        calls.push({ rpc: 'signal', req });
        return {};
      },
    },
    operatorService: {},
    plugins: [],
    withDeadline: (_d: unknown, fn: () => Promise<unknown>) => fn(),
    withMetadata: (_m: unknown, fn: () => Promise<unknown>) => fn(),
    withAbortSignal: (_s: unknown, fn: () => Promise<unknown>) => fn(),
    ensureConnected: async () => undefined,
    close: async () => undefined,
    [InternalConnectionLikeSymbol]: { supportsEagerStart: true },
  };
  const gateway = TemporalGateway.shared(config, connection as unknown as NativeConnection);
  const counted: EagerStart[] = [];
  gateway.onEagerStart = (r) => counted.push(r);
  return { gateway, calls, counted };
}

const pod = (name: string, alertId: string): PodAlert =>
  alertFor(
    'ns',
    {
      kind: 'Pod',
      name,
      uid: 'u',
      pod: Object.assign({ metadata: { name, uid: 'u' } }, { containerId: 'c'.repeat(64) }),
    },
    { alertId },
  );

describe('all in one: eager start or signal-with-start', () => {
  it('a new incident: one eager start with the first alert as input; the rest of the batch in one signal', async () => {
    const t = fakeTemporal('new');
    const started = await t.gateway.submit([pod('a', 'a1'), pod('a', 'a2'), pod('a', 'a3')], undefined, false);
    expect(started).toMatchObject({ workflowId: 'pod-incident:local:ns:a', runId: 'run-1' });
    expect(t.calls.map((c) => c.rpc)).toEqual(['start', 'signal']);
    expect(t.calls[0]!.req).toMatchObject({ requestEagerExecution: true, workflowIdReusePolicy: 3 }); // REJECT_DUPLICATE
    expect(t.counted).toEqual(['eager']);
  });

  it('declined by the server (no slot, eager start off): started all the same, counted matched', async () => {
    const t = fakeTemporal('declined');
    await t.gateway.submit([pod('b', 'b1')]);
    expect(t.calls.map((c) => c.rpc)).toEqual(['start']);
    expect(t.counted).toEqual(['matched']);
  });

  it('an incident that exists: signal-with-start after the start; later alerts go by signal-with-start alone', async () => {
    const t = fakeTemporal('exists');
    expect(await t.gateway.submit([pod('c', 'c1')])).toMatchObject({ runId: 'run-0' });
    await t.gateway.submit([pod('c', 'c2')]);
    expect(t.calls.map((c) => c.rpc)).toEqual(['start', 'signalWithStart', 'signalWithStart']);
    expect(t.counted).toEqual(['existing']);
  });

  it('a closed incident (REJECT_DUPLICATE): IncidentClosed, as on the split forwarder', async () => {
    const t = fakeTemporal('exists', 'closed');
    await expect(t.gateway.submit([pod('d', 'd1')], undefined, false)).rejects.toBeInstanceOf(IncidentClosed);
    expect(t.calls.map((c) => c.rpc)).toEqual(['start', 'signalWithStart']);
  });
});
