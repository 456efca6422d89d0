import type { PodAlert } from '../domain/alert.js';

/**
 * Workflow task timeout of incidents (Temporal's default is 10 s): room for a worker to take a backlog of
 * batched alert signals in one task after an outage, instead of timing out and replaying it again.
 */
export const INCIDENT_TASK_TIMEOUT = '30 seconds';

/**
 * One incident per pod: repeats of the same detection reach the same workflow
 * (signal-with-start), and a second responder never starts for the same pod.
 */
export function incidentWorkflowId(alert: Pick<PodAlert, 'cluster' | 'namespace' | 'podName'>): string {
  return `pod-incident:${alert.cluster.name}:${alert.namespace}:${alert.podName}`;
}
