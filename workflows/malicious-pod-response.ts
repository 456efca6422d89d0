import { ContinueAsNew, upsertSearchAttributes } from '@temporalio/workflow';
import { SA } from '../domain/search-attributes.js';
import type { PodFacts } from '../domain/workload.js';
import type { ExecutorSession } from './executor.js';
import { cleanUp, closeAfter } from './incident/closing.js';
import { cutCredentials } from './incident/credentials.js';
import { isDryRun, wouldAct } from './incident/dry-run.js';
import { captureEvidence } from './incident/evidence.js';
import { registerHandlers } from './incident/handlers.js';
import { Incident } from './incident/incident.js';
import type { IncidentInput } from './incident/input.js';
import { releaseIsolationIfKillVerified } from './incident/isolation.js';
import { enforcePolicyFloor } from './incident/policy-floor.js';
import {
  askForApproval,
  awaitApproval,
  decide,
  dismiss,
  hold,
  holdOrEnd,
  isolate,
  kill,
  repeatedAcrossIncidents,
  suspend,
  validateAlert,
  validatePod,
  verify,
  watch,
  watchOrEnd,
} from './incident/stages.js';
import { done, type Phase } from './incident/state.js';
import type { IncidentResult } from './messages.js';

export type { IncidentInput } from './incident/input.js';

export type IncidentWorkflow = (input: IncidentInput) => Promise<IncidentResult>;

/**
 * One response to one pod, in the playbook's order (docs/response.md):
 *
 *   validate → isolate → evidence → kill → suspend → verify → watch or hold → clean up
 *
 * `respond` below runs it; the waits between (approval, watch, hold) are phases of the incident's state, and a run
 * that continued as new starts again at the wait it carried. The steps are in incident/stages.ts; the messages
 * (alerts, escalate, approve, deny, restore, status) in incident/handlers.ts.
 */
export async function maliciousPodResponse(input: IncidentInput): Promise<IncidentResult> {
  const i = new Incident(input);
  registerHandlers(i);
  if (!i.resumed) begin(i);
  let continuing = false;
  try {
    // Before anything else: an incident whose policy is looser than this worker's floor does nothing.
    await enforcePolicyFloor(i);
    let phase = i.state.phase;
    while (phase.name !== 'done') phase = i.state.phase = await runPhase(i, phase);
    return await cleanUp(i, phase);
  } catch (err) {
    continuing = err instanceof ContinueAsNew;
    if (continuing) throw err;
    return await closeAfter(i, err);
  } finally {
    if (!continuing) i.stage('closed');
  }
}

/** Each phase runs a stretch of the playbook or waits, and says which phase comes next. */
async function runPhase(i: Incident, phase: Exclude<Phase, { name: 'done' }>): Promise<Phase> {
  switch (phase.name) {
    case 'validate':
      return validateAlert(i) ?? i.withExecutor(async (exec) => respondIfValid(i, exec));
    case 'await-approval':
      return awaitApproval(i, phase.pod, phase.proposal);
    case 'act':
      // After an approval or the watch: a new stretch on the pod as first validated (its UID: a pod that replaced it
      // under the same name is never touched).
      return i.withExecutor((exec) => respond(i, exec, phase.pod));
    case 'watch':
      return watch(i, phase.pod, phase.workload, phase.until);
    case 'hold':
      return hold(i, phase.suspension, phase.until);
  }
}

async function respondIfValid(i: Incident, exec: ExecutorSession): Promise<Phase> {
  const pod = await validatePod(i, exec);
  return pod ? respond(i, exec, pod) : done('dismissed');
}

/**
 * The response to a validated pod, in one executor stretch: until the next wait (approval, watch, hold) or the end.
 * Every step knows whether it already ran (the isolation, evidence and kill happen once per incident).
 */
async function respond(i: Incident, exec: ExecutorSession, pod: PodFacts): Promise<Phase> {
  const decision = await decide(i, pod);
  if (decision.action === 'dismiss') return dismiss(i, decision.dismissal);
  if (isDryRun(i)) return wouldAct(i, pod, decision);
  await isolate(i, exec, pod);
  if (decision.action === 'await-approval') return askForApproval(i, pod, decision);
  await captureEvidence(i, exec, pod);
  await kill(i, exec, pod);
  const suspended = decision.action === 'suspend-workload' ? await suspend(i, exec, decision.workload) : null;
  await cutCredentials(i, pod);
  // A kill's earlier incidents on the same workload may reach the repeat threshold: decide again (a suspension).
  if (!suspended && (await repeatedAcrossIncidents(i, pod))) return respond(i, exec, pod);
  const unverified = await verify(i, exec, pod, suspended);
  await releaseIsolationIfKillVerified(i, exec, pod);
  return suspended ? holdOrEnd(i, suspended, unverified) : watchOrEnd(i, pod, unverified);
}

function begin(i: Incident): void {
  const a = i.alert;
  upsertSearchAttributes([
    { key: SA.cluster, value: a.cluster.name },
    { key: SA.namespace, value: a.namespace },
    { key: SA.pod, value: a.podName },
    { key: SA.alertSource, value: a.source },
  ]);
  i.note('alert', `${a.source} ${a.category} (${a.severity}) alert ${a.alertId}`);
}
