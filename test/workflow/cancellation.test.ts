/** Cancelling an incident while it waits: what it undoes before it closes, and what it says is left. */
import { WorkflowFailedError } from '@temporalio/client';
import { CancelledFailure } from '@temporalio/common';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { fakeCluster, fakeEks } from './fake-cluster.js';
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

it('cancelled during a hold check through the EKS executor: the function stack it deployed is removed, newest first', async () => {
  const cluster = fakeCluster();
  const eks = fakeEks(cluster);
  let checking!: () => void;
  const checkStarted = new Promise<void>((r) => (checking = r));
  let finishCheck!: () => void;
  // The read-back hangs until the test lets it go: the incident is cancelled while it is in flight.
  cluster.answer('check-suspension', async () => {
    checking();
    await new Promise<void>((r) => (finishCheck = r));
    return { reverted: [], gone: [] };
  });
  const alert = { severity: 'critical' as const, cluster: { name: 'prod', region: 'eu-west-1' } };
  await withIncident(
    env,
    { cluster, eks, alert, policy: { eksHoldCheckSeconds: 600, holdSuspensionSeconds: 3600 } },
    async (i) => {
      await i.untilStage('holding');
      const deployedToAct = eks.steps.length;
      expect(eks.steps.slice(-3)).toEqual(['delete function', 'delete access entry', 'delete role']);
      await env.sleep(600_000); // to the first hold check
      await checkStarted;
      expect(eks.steps.slice(deployedToAct)).toEqual([
        'create role',
        'use executor group',
        'create access entry',
        'create function',
      ]);
      await i.handle.cancel();
      await expectCancelled(i.handle.result());
      finishCheck();
      expect(eks.steps.slice(deployedToAct + 4)).toEqual(['delete function', 'delete access entry', 'delete role']);
      const s = await i.status();
      expect(s.outcome).toBe('cancelled');
      expect(s.cleanup.slice(-3).map((c) => c.status)).toEqual(['done', 'done', 'done']);
      expect(s.problem).toMatch(/^the workload is left suspended/);
    },
  );
});
