import { Client, Connection } from '@temporalio/client';
import { withRawExcerpt, type PodAlert } from '../domain/alert.js';
import { packAlerts, type AlertBatchPacking, type PackedAlert } from '../domain/alert-batch.js';
import type { PolicyMode } from '../domain/routing.js';
import type { Config } from '../config/config.js';
import { temporalConnectError, temporalConnectionOptions } from '../config/temporal-connection.js';
import { INCIDENT_TASK_TIMEOUT, incidentWorkflowId } from '../workflows/ids.js';
import { alertsSignal } from '../workflows/messages.js';
import type { IncidentInput } from '../workflows/malicious-pod-response.js';

export async function connectClient(config: Config): Promise<Client> {
  const connection = await Connection.connect(temporalConnectionOptions(config.temporal)).catch(
    async (err: unknown) => {
      throw await temporalConnectError(config.temporal, err);
    },
  );
  return new Client({ connection, namespace: config.temporal.namespace });
}

/** The task queue incidents in `cluster` start on: its own (served by a worker in that cluster), or the default. */
export function taskQueueFor(config: Config, cluster: string): string {
  return config.temporal.clusterTaskQueues[cluster] ?? config.temporal.taskQueue;
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
export async function respondToAlert(
  client: Client,
  config: Config,
  alert: PodAlert,
  taskQueue = taskQueueFor(config, alert.cluster.name),
): Promise<StartedIncident> {
  return respondToAlerts(client, config, [alert], taskQueue);
}

/**
 * The same for several alerts about one pod, in one signal: the forwarder batches a flood this way, so an
 * incident takes a few signals a second however many alerts arrive. The batch is packed (domain/alert-batch.ts): what
 * its alerts have alike is written once.
 */
export async function respondToAlerts(
  client: Client,
  config: Config,
  alerts: PodAlert[],
  taskQueue = taskQueueFor(config, alerts[0]!.cluster.name),
  /** The routing rule's mode, over the policy's (a rule in dry run starts incidents in dry run). */
  mode?: PolicyMode,
  /**
   * Whether a closed run's workflow ID may start again (the default, as Temporal's): `REJECT_DUPLICATE` makes a
   * signal-with-start that would start a new run after a closed one fail with WorkflowExecutionAlreadyStartedError
   * instead (a running incident is signalled either way); the forwarder then looks at how the last run ended.
   */
  reuse: IdReuse = 'ALLOW_DUPLICATE',
): Promise<StartedIncident> {
  const { workflowId, batch, options } = incidentStart(config, alerts, taskQueue, mode, reuse);
  const handle = await client.workflow.signalWithStart('maliciousPodResponse', {
    ...options,
    signal: alertsSignal,
    signalArgs: alertsSignalArgs(batch),
  });
  return { workflowId, runId: handle.signaledRunId, uiUrl: workflowUiUrl(config, workflowId) };
}

/**
 * Starts a new incident with a plain start (no signal), asking for the first workflow task in the start call's
 * answer (eager start: no matching, when `client` is on the connection of a worker polling `taskQueue`). The
 * incident takes its input's alert as its first one; the rest of a batch follow in one signal. Rejects with
 * WorkflowExecutionAlreadyStartedError when the incident runs, or (with `REJECT_DUPLICATE`) its last run closed:
 * then respondToAlerts does what it always does.
 */
export async function startIncidentEagerly(
  client: Client,
  config: Config,
  alerts: PodAlert[],
  taskQueue = taskQueueFor(config, alerts[0]!.cluster.name),
  mode?: PolicyMode,
  reuse: IdReuse = 'ALLOW_DUPLICATE',
): Promise<StartedIncident & { eagerlyStarted: boolean }> {
  const { workflowId, batch, options } = incidentStart(config, alerts, taskQueue, mode, reuse);
  const handle = await client.workflow.start('maliciousPodResponse', { ...options, requestEagerStart: true });
  if (batch.length > 1) await handle.signal(alertsSignal, ...alertsSignalArgs(batch.slice(1)));
  return {
    workflowId,
    runId: handle.firstExecutionRunId,
    uiUrl: workflowUiUrl(config, workflowId),
    eagerlyStarted: handle.eagerlyStarted,
  };
}

type IdReuse = 'ALLOW_DUPLICATE' | 'REJECT_DUPLICATE';

/** An alerts signal's arguments: the batch packed (domain/alert-batch.ts), what its alerts have alike written once. */
function alertsSignalArgs(batch: PodAlert[]): [PackedAlert[], AlertBatchPacking?] {
  const { alerts, packing } = packAlerts(batch);
  return packing ? [alerts, packing] : [alerts];
}

/**
 * The start options of the incident for these alerts. Each alert's `raw` is cut to an excerpt, and kept only where
 * the incident keeps it: the first alert (it may start the incident) and the newest (policy.keepRecentAlerts); the
 * others are counted, so their `raw` would only bloat history.
 */
function incidentStart(
  config: Config,
  alerts: PodAlert[],
  taskQueue: string,
  mode: PolicyMode | undefined,
  reuse: IdReuse,
) {
  const keepFrom = alerts.length - config.policy.keepRecentAlerts;
  const batch = alerts.map((a, i) => {
    if (i === 0 || i >= keepFrom || a.raw === undefined) return withRawExcerpt(a);
    const { raw: _dropped, ...rest } = a;
    return rest;
  });
  const first = batch[0]!;
  const workflowId = incidentWorkflowId(first);
  if (batch.some((a) => incidentWorkflowId(a) !== workflowId))
    throw new Error('a batch of alerts must all be about one pod');
  const input: IncidentInput = {
    alert: first,
    policy: mode ? { ...config.policy, mode } : config.policy,
    executor: { kind: config.executor },
  };
  const options = {
    workflowId,
    workflowIdReusePolicy: reuse,
    taskQueue,
    args: [input] as [IncidentInput],
    workflowTaskTimeout: INCIDENT_TASK_TIMEOUT,
    staticSummary: `${first.severity} ${first.category} in ${first.namespace}/${first.podName} (${first.cluster.name})`,
  };
  return { workflowId, batch, options };
}

export function workflowUiUrl(config: Config, workflowId: string): string {
  return `${config.temporal.uiUrl}/namespaces/${encodeURIComponent(config.temporal.namespace)}/workflows/${encodeURIComponent(workflowId)}`;
}
