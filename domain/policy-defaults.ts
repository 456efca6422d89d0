/**
 * The policy an empty object parses to, and the protected-label match: what incidents need of policies without
 * zod (see alert-values.ts for why the workflow bundle avoids it). policy.ts's schema takes its defaults from here,
 * and documents each field.
 */
import type { Severity } from './alert.js';
import type { Policy } from './policy.js';

/** The shortest EKS hold check interval a policy may set: at most 12 deployments an hour (docs/eks.md). */
export const EKS_HOLD_CHECK_FLOOR_SECONDS = 300;

export const POLICY_DEFAULTS = {
  protectedNamespaces: ['kube-system', 'kube-public', 'kube-node-lease'],
  mode: 'enforce' as 'enforce' | 'dry-run',
  protectedLabels: ['pod-responder.io/protected=true'],
  maxAlertAgeSeconds: 3600,
  repeatThreshold: 2,
  repeatWindowSeconds: 900,
  suspendOnSeverity: ['critical'] as Severity[],
  requireApprovalFor: [] as ('terminate-pod' | 'suspend-workload')[],
  approvalTimeoutSeconds: 900,
  onApprovalTimeout: 'dismiss' as 'proceed' | 'dismiss',
  isolate: true,
  evidenceSeconds: 20,
  checkpointContainers: false,
  revokeCredentials: false,
  terminateGracePeriodSeconds: 2,
  watchSeconds: 900,
  holdSuspensionSeconds: 7 * 24 * 3600,
  holdCheckSeconds: 30,
  /** 4 checks an hour: each deploys the EKS function stack (docs/eks.md counts its calls). */
  eksHoldCheckSeconds: 900,
  reapplyOnRevert: true,
  maxReverts: 3,
  keepRecentAlerts: 5,
  historyEventsPerRun: 2_000,
  historyBytesPerRun: 4 * 1024 * 1024,
};

export const defaultPolicy: Policy = POLICY_DEFAULTS;

export function hasProtectedLabel(labels: Record<string, string>, selectors: readonly string[]): string | null {
  for (const selector of selectors) {
    const [key, value] = selector.split('=', 2) as [string, string | undefined];
    if (key in labels && (value === undefined || labels[key] === value)) return selector;
  }
  return null;
}
