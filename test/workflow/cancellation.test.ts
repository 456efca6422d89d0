/** Cancelling an incident while it waits: what it undoes before it closes, and what it says is left. */
import { WorkflowFailedError } from '@temporalio/client';
import { CancelledFailure } from '@temporalio/common';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startTestServer, withIncident } from './env.js';

let env: TestWorkflowEnvironment;
beforeAll(async () => {
  env = await startTestServer();
});
afterAll(async () => {
  await env?.teardown();
});

async function expectCancelled(result: Promise<unknown>): Promise<void> {
  const err = await result.then(
    () => null,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(WorkflowFailedError);
  expect((err as WorkflowFailedError).cause).toBeInstanceOf(CancelledFailure);
}

it('cancelled during the hold: closes cancelled, saying the workload is left suspended and how to undo it', async () => {
  await withIncident(env, { alert: { severity: 'critical' }, policy: { holdCheckSeconds: 0 } }, async (i) => {
    await i.untilStage('holding');
    await i.handle.cancel();
    await expectCancelled(i.handle.result());
    const s = await i.status();
    expect(s.outcome).toBe('cancelled');
    expect(s.stage).toBe('closed');
    expect(s.problem).toBe(
      "the workload is left suspended (Deployment shop/web: replicas 3 -> 0); undo it by hand, the prior state is also in the objects' pod-responder.io/prior-state annotation",
    );
    expect(i.cluster.ops()).not.toContain('restore-workload');
  });
});

it('cancelled while awaiting approval: the pod gets its network back and nothing is killed', async () => {
  await withIncident(env, { policy: { requireApprovalFor: ['terminate-pod'] } }, async (i) => {
    const waiting = await i.untilStage('awaiting-approval');
    expect(waiting.isolation?.state).toBe('isolated');
    await i.handle.cancel();
    await expectCancelled(i.handle.result());
    const s = await i.status();
    expect(s.outcome).toBe('cancelled');
    expect(s.isolation?.state).toBe('released');
    expect(i.cluster.ops()).toEqual(['inspect', 'isolate-pod', 'release-isolation']);
  });
});
