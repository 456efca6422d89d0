import { Client, Connection } from '@temporalio/client';
import type { PodAlert } from '../domain/alert.js';
import type { Config } from '../worker/config.js';
import { incidentWorkflowId } from '../workflows/ids.js';
import { alertSignal } from '../workflows/messages.js';
import type { IncidentInput } from '../workflows/malicious-pod-response.js';

export async function connectClient(config: Config): Promise<Client> {
  const connection = await Connection.connect({ address: config.temporal.address });
  return new Client({ connection, namespace: config.temporal.namespace });
}

export interface StartedIncident {
  workflowId: string;
  runId: string;
  uiUrl: string;
}

/**
 * Starts the incident for the alert's pod, or, when one is already running, delivers the alert to it
 * as a repeat (signal-with-start): one pod, one response, however many alerts arrive.
 */
export async function respondToAlert(client: Client, config: Config, alert: PodAlert, taskQueue = config.temporal.taskQueue): Promise<StartedIncident> {
  const workflowId = incidentWorkflowId(alert);
  const input: IncidentInput = { alert, policy: config.policy, executor: { kind: config.executor } };
  const handle = await client.workflow.signalWithStart('maliciousPodResponse', {
    workflowId,
    taskQueue,
    args: [input],
    signal: alertSignal,
    signalArgs: [alert],
    staticSummary: `${alert.severity} ${alert.category} in ${alert.namespace}/${alert.podName} (${alert.cluster.name})`,
  });
  return { workflowId, runId: handle.signaledRunId, uiUrl: workflowUiUrl(config, workflowId) };
}

export function workflowUiUrl(config: Config, workflowId: string): string {
  return `${config.temporal.uiUrl}/namespaces/${encodeURIComponent(config.temporal.namespace)}/workflows/${encodeURIComponent(workflowId)}`;
}

