import { describe, expect, it } from 'vitest';
import type { PodAlert } from '../../domain/alert.js';
import { decide, type ApprovalState, type DecisionInput } from '../../domain/decide.js';
import { policySchema, type PolicyInput } from '../../domain/policy.js';
import type { OwnerRef } from '../../domain/workload.js';

const alert: PodAlert = {
  source: 'falco',
  alertId: 'a1',
  category: 'crypto-mining',
  severity: 'high',
  detectedAt: '2026-11-27T10:00:00Z',
  cluster: { name: 'prod' },
  namespace: 'shop',
  podName: 'web-1',
};
const owner = (kind: string, apiVersion = 'apps/v1', supported = true): OwnerRef => ({
  apiVersion,
  kind,
  name: kind.toLowerCase(),
  uid: `uid-${kind}`,
  supported,
});
const chains: Record<string, OwnerRef[]> = {
  bare: [],
  deployment: [owner('ReplicaSet'), owner('Deployment')],
  statefulset: [owner('StatefulSet')],
  daemonset: [owner('DaemonSet')],
  cronjob: [owner('Job', 'batch/v1'), owner('CronJob', 'batch/v1')],
  crd: [owner('Rollout', 'argoproj.io/v1alpha1', false)],
};

function input(
  over: Omit<Partial<DecisionInput>, 'policy'> & { chain?: string; policy?: PolicyInput } = {},
): DecisionInput {
  const { chain = 'deployment', policy, ...rest } = over;
  return {
    alert,
    pod: { namespace: 'shop', owners: chains[chain]! },
    policy: policySchema.parse(policy ?? {}),
    alertCount: 1,
    escalation: null,
    approval: { state: 'none' },
    ...rest,
  };
}

describe('decide', () => {
  it.each([
    // chain, severity, count, escalated -> action, workload kind
    ['bare', 'high', 1, false, 'terminate-pod', undefined],
    ['bare', 'critical', 5, true, 'terminate-pod', undefined],
    ['deployment', 'high', 1, false, 'terminate-pod', undefined],
    ['deployment', 'high', 2, false, 'suspend-workload', 'Deployment'],
    ['deployment', 'critical', 1, false, 'suspend-workload', 'Deployment'],
    ['deployment', 'low', 1, true, 'suspend-workload', 'Deployment'],
    ['statefulset', 'medium', 3, false, 'suspend-workload', 'StatefulSet'],
    ['daemonset', 'high', 1, false, 'terminate-pod', undefined],
    ['cronjob', 'high', 2, false, 'suspend-workload', 'CronJob'],
    ['crd', 'critical', 1, false, 'suspend-workload', 'Rollout'],
  ] as const)(
    '%s pod, %s severity, %d alerts, escalated=%s -> %s %s',
    (chain, severity, alertCount, escalated, action, kind) => {
      const d = decide(
        input({
          chain,
          alert: { ...alert, severity },
          alertCount,
          escalation: escalated ? { by: 'ana', reason: 'confirmed miner' } : null,
        }),
      );
      expect(d.action).toBe(action);
      expect(d.action === 'suspend-workload' ? d.workload.kind : undefined).toBe(kind);
    },
  );

  it('names the top of the chain as the workload, with the pod namespace', () => {
    const d = decide(input({ escalation: { by: 'ana', reason: 'x' } }));
    expect(d).toMatchObject({
      action: 'suspend-workload',
      workload: { kind: 'Deployment', name: 'deployment', namespace: 'shop', uid: 'uid-Deployment' },
    });
    expect(d.action === 'suspend-workload' && d.reason).toBe('escalated by ana: x');
  });

  it('honours a configured repeat threshold and suspend severities', () => {
    expect(decide(input({ alertCount: 2, policy: { repeatThreshold: 3 } })).action).toBe('terminate-pod');
    expect(decide(input({ alertCount: 3, policy: { repeatThreshold: 3 } })).action).toBe('suspend-workload');
    expect(decide(input({ alert: { ...alert, severity: 'critical' }, policy: { suspendOnSeverity: [] } })).action).toBe(
      'terminate-pod',
    );
  });

  describe('approval', () => {
    const policy: PolicyInput = { requireApprovalFor: ['suspend-workload'] };
    const escalation = { by: 'ana', reason: 'x' };
    it.each<[ApprovalState, 'proceed' | 'dismiss', string]>([
      [{ state: 'none' }, 'dismiss', 'await-approval'],
      [{ state: 'approved', by: 'bob' }, 'dismiss', 'suspend-workload'],
      [{ state: 'denied', by: 'bob', reason: 'false positive' }, 'dismiss', 'dismiss'],
      [{ state: 'timed-out' }, 'dismiss', 'dismiss'],
      [{ state: 'timed-out' }, 'proceed', 'suspend-workload'],
    ])('%o with onApprovalTimeout=%s -> %s', (approval, onApprovalTimeout, action) => {
      expect(decide(input({ escalation, approval, policy: { ...policy, onApprovalTimeout } })).action).toBe(action);
    });

    it('only gates the actions the policy lists', () => {
      expect(decide(input({ policy })).action).toBe('terminate-pod');
      expect(decide(input({ escalation, policy }))).toMatchObject({
        action: 'await-approval',
        proposed: 'suspend-workload',
      });
    });

    it('explains a denial and a timeout', () => {
      expect(
        decide(input({ escalation, policy, approval: { state: 'denied', by: 'bob', reason: 'test env' } })),
      ).toEqual({
        action: 'dismiss',
        dismissal: { code: 'approval-denied', message: 'suspend-workload denied by bob: test env' },
      });
      expect(
        decide(
          input({ escalation, policy: { ...policy, approvalTimeoutSeconds: 60 }, approval: { state: 'timed-out' } }),
        ),
      ).toEqual({
        action: 'dismiss',
        dismissal: { code: 'approval-timeout', message: 'no approval for suspend-workload within 60s' },
      });
    });
  });
});
