import type { PodAlert } from './alert.js';
import type { Dismissal } from './checks.js';
import type { Policy } from './policy.js';
import { topWorkload, type PodFacts, type WorkloadRef } from './workload.js';

/** What an incident can do to a pod: the policy's `requireApprovalFor` and `approve-all --action` name these. */
export const ACTIONS = ['terminate-pod', 'suspend-workload'] as const;
export type Action = (typeof ACTIONS)[number];

export type Decision =
  | { action: 'terminate-pod'; reason: string }
  | { action: 'suspend-workload'; workload: WorkloadRef; reason: string }
  | { action: 'await-approval'; proposed: Action; workload?: WorkloadRef; reason: string }
  | { action: 'dismiss'; dismissal: Dismissal };

export type ApprovalState =
  | { state: 'none' }
  | { state: 'approved'; by: string }
  | { state: 'denied'; by: string; reason?: string }
  | { state: 'timed-out' };

export interface DecisionInput {
  alert: PodAlert;
  pod: Pick<PodFacts, 'namespace' | 'owners'>;
  policy: Policy;
  /** Alerts for the same workload inside the repeat window, this one included. */
  alertCount: number;
  escalation: { by: string; reason: string } | null;
  /** The answer given to a proposal of exactly this action (bound to the proposal). */
  approval: ApprovalState;
}

/** Pure: the same input always gives the same decision, so it runs inside the workflow. */
export function decide(input: DecisionInput): Decision {
  const proposal = propose(input);
  const { policy, approval } = input;
  if (!policy.requireApprovalFor.includes(proposal.action)) return proposal;
  switch (approval.state) {
    case 'approved':
      return { ...proposal, reason: `${proposal.reason}; approved by ${approval.by}` };
    case 'denied':
      return {
        action: 'dismiss',
        dismissal: {
          code: 'approval-denied',
          message: `${proposal.action} denied by ${approval.by}${approval.reason ? `: ${approval.reason}` : ''}`,
        },
      };
    case 'timed-out':
      return policy.onApprovalTimeout === 'proceed'
        ? {
            ...proposal,
            reason: `${proposal.reason}; no answer within ${policy.approvalTimeoutSeconds}s, policy proceeds`,
          }
        : {
            action: 'dismiss',
            dismissal: {
              code: 'approval-timeout',
              message: `no approval for ${proposal.action} within ${policy.approvalTimeoutSeconds}s`,
            },
          };
    case 'none':
      return {
        action: 'await-approval',
        proposed: proposal.action,
        ...(proposal.action === 'suspend-workload' ? { workload: proposal.workload } : {}),
        reason: proposal.reason,
      };
  }
}

export type Proposed = Exclude<Decision, { action: 'await-approval' } | { action: 'dismiss' }>;

/** The action the facts call for, before any approval. */
export function propose(input: Omit<DecisionInput, 'approval'>): Proposed {
  const { alert, pod, policy, alertCount, escalation } = input;
  const workload = topWorkload(pod);
  if (!workload) return { action: 'terminate-pod', reason: 'bare pod: no controller will recreate it' };
  if (escalation) {
    return { action: 'suspend-workload', workload, reason: `escalated by ${escalation.by}: ${escalation.reason}` };
  }
  if (policy.suspendOnSeverity.includes(alert.severity)) {
    return { action: 'suspend-workload', workload, reason: `severity ${alert.severity} suspends the workload` };
  }
  if (alertCount >= policy.repeatThreshold) {
    return {
      action: 'suspend-workload',
      workload,
      reason: `${alertCount} alerts within ${policy.repeatWindowSeconds}s (threshold ${policy.repeatThreshold})`,
    };
  }
  return {
    action: 'terminate-pod',
    reason: `first alert for ${workload.kind} ${workload.name}: kill the pod, suspend on repeat`,
  };
}
