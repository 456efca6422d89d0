import type { PodAlert } from './alert.js';
import { bareContainerId } from './alert-values.js';
import { hasProtectedLabel } from './policy-defaults.js';
import type { Policy } from './policy.js';
import type { PodFacts } from './workload.js';

export type DismissalCode =
  | 'protected-namespace'
  | 'protected-label'
  | 'stale-alert'
  | 'future-alert'
  | 'pod-gone'
  | 'pod-replaced'
  | 'container-mismatch'
  | 'approval-denied'
  | 'approval-timeout';

export interface Dismissal {
  code: DismissalCode;
  message: string;
}

/** Clock skew tolerated between a detector and us before an alert counts as dated in the future. */
const FUTURE_SKEW_MS = 5 * 60 * 1000;

/** Checks that need no cluster access: run first so a bad alert creates nothing anywhere. */
export function preflightCheck(alert: PodAlert, policy: Policy, nowMs: number): Dismissal | null {
  if (policy.protectedNamespaces.includes(alert.namespace)) {
    return { code: 'protected-namespace', message: `namespace ${alert.namespace} is protected by policy` };
  }
  const detectedMs = Date.parse(alert.detectedAt);
  const ageSeconds = Math.floor((nowMs - detectedMs) / 1000);
  if (ageSeconds > policy.maxAlertAgeSeconds) {
    return {
      code: 'stale-alert',
      message: `alert is ${ageSeconds}s old, older than maxAlertAgeSeconds=${policy.maxAlertAgeSeconds}`,
    };
  }
  if (detectedMs - nowMs > FUTURE_SKEW_MS) {
    return { code: 'future-alert', message: `alert is dated ${alert.detectedAt}, in the future` };
  }
  return null;
}

/** Is the live pod the one the alert is about? Never act on a pod that merely has the same name. */
export function identityCheck(alert: PodAlert, pod: PodFacts | null, policy: Policy): Dismissal | null {
  const where = `${alert.namespace}/${alert.podName}`;
  if (!pod) return { code: 'pod-gone', message: `pod ${where} no longer exists` };
  if (alert.podUid && alert.podUid !== pod.uid) {
    return {
      code: 'pod-replaced',
      message: `pod ${where} has UID ${pod.uid}, the alert names UID ${alert.podUid}: it was replaced`,
    };
  }
  const container = alert.container;
  if (container?.name && !pod.containers.some((c) => c.name === container.name)) {
    return { code: 'container-mismatch', message: `pod ${where} has no container named ${container.name}` };
  }
  if (container?.id) {
    const wanted = bareContainerId(container.id);
    const found = pod.containers.some((c) => c.containerIds.some((id) => bareContainerId(id).startsWith(wanted)));
    if (!found) {
      return {
        code: 'container-mismatch',
        message: `pod ${where} runs no container with ID ${wanted}: the alert is about another pod instance`,
      };
    }
  }
  const label = hasProtectedLabel(pod.labels, policy.protectedLabels);
  if (label) return { code: 'protected-label', message: `pod ${where} carries protected label ${label}` };
  return null;
}
