/**
 * The incident's waits, each run to its deadline by the time-skipping test server: the approval's expiry under both
 * `onApprovalTimeout` policies, the watch after a kill, and the hold of a suspension (with and without read-backs).
 */
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { WorkflowUpdateFailedError } from '@temporalio/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { POD } from './fake-cluster.js';
import { startTestServer, withIncident } from './env.js';
import { closedStatus } from '../support/closed-status.js';

let env: TestWorkflowEnvironment;
beforeAll(async () => {
  env = await startTestServer();
});
afterAll(async () => {
  await env?.teardown();
});

describe('approval expiry', () => {
  it('dismisses the incident and gives the pod its network back under onApprovalTimeout: dismiss', async () => {
    await withIncident(
      env,
      { policy: { requireApprovalFor: ['terminate-pod'], approvalTimeoutSeconds: 900, onApprovalTimeout: 'dismiss' } },
      async (i) => {
        const waiting = await i.untilStage('awaiting-approval');
        expect(waiting.proposal).toMatchObject({ id: 'p1', action: 'terminate-pod', answer: null });
        const result = await closedStatus(i.handle);
        expect(result.outcome).toBe('dismissed');
        expect(result.dismissal).toEqual({
          code: 'approval-timeout',
          message: 'no approval for terminate-pod within 900s',
        });
        expect(result.proposal?.answer?.answer).toBe('timed-out');
        const waited = Date.parse(result.proposal!.answer!.at) - Date.parse(result.proposal!.proposedAt);
        expect(waited).toBeGreaterThanOrEqual(900_000);
        expect(waited).toBeLessThan(901_000);
        // Isolated while waiting, released on dismissal; never killed.
        expect(i.cluster.ops()).toEqual(['inspect', 'isolate-pod', 'release-isolation']);
        expect(result.isolation?.state).toBe('released');
      },
    );
  });

  it('acts without an answer under onApprovalTimeout: proceed', async () => {
    await withIncident(
      env,
      {
        policy: {
          requireApprovalFor: ['terminate-pod'],
          approvalTimeoutSeconds: 600,
          onApprovalTimeout: 'proceed',
          watchSeconds: 0,
        },
      },
      async (i) => {
        await i.untilStage('awaiting-approval');
        const result = await closedStatus(i.handle);
        expect(result.outcome).toBe('pod-terminated');
        expect(result.proposal?.answer?.answer).toBe('timed-out');
        expect(result.decision).toMatchObject({
          action: 'terminate-pod',
          reason: expect.stringContaining('no answer within 600s, policy proceeds'),
        });
        expect(i.cluster.ops()).toContain('terminate-pod');
      },
    );
  });

  it('refuses an answer that comes after the expiry, saying it expired (ProposalExpired)', async () => {
    await withIncident(
      env,
      { policy: { requireApprovalFor: ['terminate-pod'], approvalTimeoutSeconds: 900, onApprovalTimeout: 'proceed' } },
      async (i) => {
        const waiting = await i.untilStage('awaiting-approval');
        await env.sleep(901_000);
        await i.untilStage('watching');
        const refused = await i.handle
          .executeUpdate('approve', { args: [{ proposalId: waiting.proposal!.id, by: 'late-analyst' }] })
          .then(
            () => null,
            (e: unknown) => e,
          );
        expect(refused).toBeInstanceOf(WorkflowUpdateFailedError);
        expect((refused as WorkflowUpdateFailedError).cause).toMatchObject({
          type: 'ProposalExpired',
          message: expect.stringContaining(`proposal p1 (terminate-pod pod shop/${POD}`),
        });
        const s = await i.status();
        expect(s.proposal?.answer).toMatchObject({ answer: 'timed-out' });
        expect(s.timeline.some((t) => t.event === 'approved')).toBe(false);
      },
    );
  });
});

describe('watch deadline', () => {
  it('ends pod-terminated when no repeat or escalation comes within watchSeconds', async () => {
    await withIncident(env, { policy: { watchSeconds: 900 } }, async (i) => {
      const watching = await i.untilStage('watching');
      const startedWatch = Date.parse(watching.timeline.find((t) => t.event === 'stage:watching')!.at);
      // The status says until when it watches: the deadline continue-as-new carries too.
      expect(Date.parse(watching.waitingUntil!) - startedWatch).toBe(900_000);
      const result = await closedStatus(i.handle);
      expect(result.outcome).toBe('pod-terminated');
      expect(Date.parse(result.timeline.find((t) => t.event === 'outcome')!.at) - startedWatch).toBeGreaterThanOrEqual(
        900_000,
      );
      // One kill, no suspension.
      expect(i.cluster.ops().filter((op) => op === 'terminate-pod' || op === 'suspend-workload')).toEqual([
        'terminate-pod',
      ]);
    });
  });

  it('suspends the workload when an escalation comes during the watch', async () => {
    await withIncident(
      env,
      { policy: { watchSeconds: 900, holdSuspensionSeconds: 3600, holdCheckSeconds: 0 } },
      async (i) => {
        await i.untilStage('watching');
        await i.handle.signal('escalate', { by: 'analyst', reason: 'same miner again' });
        const result = await closedStatus(i.handle);
        expect(result.outcome).toBe('workload-suspended');
        expect(result.escalation).toEqual({ by: 'analyst', reason: 'same miner again' });
        expect(result.suspension?.workload.name).toBe('web');
      },
    );
  });
});

describe('hold deadline', () => {
  it('ends workload-suspended when nobody restores within holdSuspensionSeconds (7 days)', async () => {
    await withIncident(env, { alert: { severity: 'critical' }, policy: { holdCheckSeconds: 0 } }, async (i) => {
      const holding = await i.untilStage('holding');
      expect(holding.suspension?.changes).toEqual([
        { type: 'replicas', target: holding.suspension!.workload, prior: 3 },
      ]);
      const result = await closedStatus(i.handle);
      expect(result.outcome).toBe('workload-suspended');
      expect(result.restore).toBeNull();
      expect(i.cluster.ops()).not.toContain('restore-workload');
    });
  });

  it('reads the suspension back every holdCheckSeconds until the deadline, re-applying a revert', async () => {
    const seen: number[] = [];
    await withIncident(
      env,
      { alert: { severity: 'critical' }, policy: { holdSuspensionSeconds: 3600, holdCheckSeconds: 600 } },
      async (i) => {
        i.cluster.answer('check-suspension', (r) => {
          seen.push(seen.length + 1);
          // The second read finds replicas put back by a GitOps controller.
          return seen.length === 2
            ? {
                reverted: [
                  {
                    target: `Deployment ${r.record.workload.namespace}/web`,
                    observed: 'replicas 3',
                    by: 'argocd-controller',
                    at: null,
                  },
                ],
                gone: [],
              }
            : { reverted: [], gone: [] };
        });
        await i.untilStage('holding');
        const result = await closedStatus(i.handle);
        expect(result.outcome).toBe('workload-suspended');
        // 3600 / 600: reads at 600, 1200, ..., 3000 s; the sixth moment is the deadline itself.
        expect(result.hold).toMatchObject({ checks: 5, reverts: 1, lastRevert: { by: 'argocd-controller' } });
        expect(i.cluster.ops().filter((op) => op === 'suspend-workload')).toHaveLength(2);
      },
    );
  });

  it('ends workload-restored when restore comes during the hold', async () => {
    await withIncident(env, { alert: { severity: 'critical' }, policy: { holdCheckSeconds: 0 } }, async (i) => {
      await i.untilStage('holding');
      const restored = await i.handle.executeUpdate('restore', { args: [{ by: 'analyst', reason: 'false positive' }] });
      expect(restored).toMatchObject({ action: 'restore-workload', status: 'done' });
      const result = await closedStatus(i.handle);
      expect(result.outcome).toBe('workload-restored');
      expect(result.restore).toMatchObject({ state: 'restored', by: 'analyst' });
    });
  });
});
