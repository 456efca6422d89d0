import type { PodAlert } from '../domain/alert.js';

export const TASK_QUEUE_DEFAULT = 'pod-responder';

/**
 * One incident per pod: repeats of the same detection reach the same workflow
 * (signal-with-start), and a second responder never starts for the same pod.
 */
export function incidentWorkflowId(alert: Pick<PodAlert, 'cluster' | 'namespace' | 'podName'>): string {
  return `pod-incident:${alert.cluster.name}:${alert.namespace}:${alert.podName}`;
}
