/**
 * The playbook's stages. Each takes the incident and returns the phase that comes next; the waits
 * (approval, watch, hold) run outside any executor stretch so an incident can continue as new there.
 */
import { isCancellation, proxyActivities, sleep, upsertSearchAttributes } from '@temporalio/workflow';
import type { Activities } from '../../activities/index.js';
import { identityCheck, preflightCheck, type Dismissal } from '../../domain/checks.js';
import { decide, type Decision } from '../../domain/decide.js';
import { SA } from '../../domain/search-attributes.js';
import { topWorkload, type PodFacts, type WorkloadRef } from '../../domain/workload.js';
import {
  describeChange,
  describeWorkload,
  type ActionResult,
  type PodTarget,
  type SuspensionRecord,
} from '../../remediation/protocol.js';
import type { ExecutorSession } from '../executor.js';
import { answerFor, closeProposal, openProposal, proposalOutdated, proposedNow } from './approval.js';
import { failureMessage } from './failures.js';
import type { Incident } from './incident.js';
import type { Proposal } from '../messages.js';
import { isDryRun, wouldAct, wouldDeploy } from './dry-run.js';
import { checksHold, holdTheLine } from './hold-the-line.js';
import { captureEvidence } from './evidence.js';
import { cutCredentials } from './credentials.js';
import { notifyInBackground } from './notifications.js';
import { isolateFirst, isolationLeft, isolationToKeep, releaseIsolation } from './isolation.js';
import { observeActed } from './metrics.js';
import { done, type Phase } from './state.js';

/**
 * Counting earlier incidents is a Temporal visibility query, which lags or stalls when the visibility store does.
 * It runs after the kill and never fails the incident: past this budget the count is 0, and the notes say so.
 */
export const COUNT_EARLIER_INCIDENTS_BUDGET = {
  startToCloseTimeout: '5 seconds',
  scheduleToCloseTimeout: '12 seconds',
  attempts: 2,
} as const;
const { countRecentIncidents } = proxyActivities<Activities>({
  startToCloseTimeout: COUNT_EARLIER_INCIDENTS_BUDGET.startToCloseTimeout,
  scheduleToCloseTimeout: COUNT_EARLIER_INCIDENTS_BUDGET.scheduleToCloseTimeout,
  retry: { maximumAttempts: COUNT_EARLIER_INCIDENTS_BUDGET.attempts, initialInterval: '1 second' },
});

/** Verification polls: a pod with a grace period, or a controller, takes a moment to converge. */
const VERIFY_ATTEMPTS = 10;
/** A node that is not Ready will not be in seconds: after this many reads a person must look. */
const VERIFY_ATTEMPTS_NODE_NOT_READY = 3;
const VERIFY_INTERVAL = '2 seconds';

const after = (seconds: number): string => new Date(Date.now() + seconds * 1000).toISOString();

function dismissed(i: Incident, d: Dismissal): Phase {
  i.state.dismissal = d;
  i.note('dismissed', `${d.code}: ${d.message}`);
  return done('dismissed');
}

/** Validate the alert, look at the pod, decide, and act at once when nothing needs approval. */
export async function investigate(i: Incident): Promise<Phase> {
  i.stage('validating');
  // Checks that need no cluster access first: a bad alert creates nothing anywhere.
  const early = preflightCheck(i.alert, i.policy, Date.now());
  if (early) return dismissed(i, early);
  if (isDryRun(i) && i.input.executor.kind === 'eks-lambda') return wouldDeploy(i);
  return i.withExecutor(async (exec) => {
    const inspected = await inspectPod(i, exec);
    if ('dismissal' in inspected) return dismissed(i, inspected.dismissal);
    // A live incident counts them after the kill (terminate), so visibility never delays it; a dry run kills nothing.
    if (isDryRun(i)) await countEarlierIncidents(i);
    return decideAndAct(i, exec, inspected.pod);
  });
}

/**
 * After an approval or the watch: a new stretch, acting on the pod as first inspected. Its delete carries
 * that pod's UID, so a pod that replaced it under the same name meanwhile is never touched.
 */
export async function actAfterWait(i: Incident, pod: PodFacts): Promise<Phase> {
  return i.withExecutor((exec) => decideAndAct(i, exec, pod));
}

/** Waits for the answer to the open proposal; an answer counts only while the facts call for the same action. */
export async function awaitApproval(i: Incident, pod: PodFacts, p: Proposal): Promise<Phase> {
  i.stage('awaiting-approval');
  const settled = () => p.answer !== null || proposalOutdated(i, pod, p);
  const answered = await i.waitUntil(
    settled,
    p.expiresAt,
    `wait for approve or deny of ${p.id}: ${p.action} ${p.target}`,
  );
  if (!answered) {
    p.answer = { answer: 'timed-out', at: new Date().toISOString() };
    i.note(
      'approval-timed-out',
      `${p.id}: no answer within ${i.policy.approvalTimeoutSeconds}s; policy: ${i.policy.onApprovalTimeout}`,
    );
  }
  closeProposal(i, p);
  return unlessActing(i, pod, decideNow(i, pod)) ?? { name: 'act', pod };
}

/** After killing a controller-owned pod: listen for repeats or an escalation for a while. */
export async function watch(i: Incident, pod: PodFacts, workload: WorkloadRef, until: string): Promise<Phase> {
  i.stage('watching');
  const raised = await i.waitUntil(
    () => i.state.escalation !== null || repeatsReached(i),
    until,
    `watch ${describeWorkload(workload)} for repeats or escalation`,
  );
  return raised ? { name: 'act', pod } : done('pod-terminated');
}

/** Holds the verified suspension until `restore` (an update, handled in handlers.ts) or the end of the hold. */
export async function hold(i: Incident, suspension: SuspensionRecord, until: string): Promise<Phase> {
  i.stage('holding');
  const restored = () => i.state.restore?.state === 'restored';
  const summary = `hold ${describeWorkload(suspension.workload)} suspended until restore or ${until}`;
  if (checksHold(i)) return holdTheLine(i, suspension, until, summary);
  if (await i.waitUntil(restored, until, summary)) return done('workload-restored');
  return done('workload-suspended');
}

async function decideAndAct(i: Incident, exec: ExecutorSession, pod: PodFacts): Promise<Phase> {
  i.stage('deciding');
  const decision = decideNow(i, pod);
  if (isDryRun(i) && decision.action !== 'dismiss') return wouldAct(i, pod, decision);
  // Contain first: before the kill, and before a person is asked, so the miner is cut off while they decide.
  if (decision.action !== 'dismiss') await isolateFirst(i, exec, podTarget(pod));
  const next = unlessActing(i, pod, decision);
  if (next) return next;
  // Keep the evidence before it is destroyed, only while the pod is cut off (one bounded attempt): else the kill comes first.
  await captureEvidence(i, exec, podTarget(pod));
  return decision.action === 'suspend-workload'
    ? suspendWorkload(i, exec, pod, decision.workload)
    : terminate(i, exec, pod);
}

/** The repeat threshold is reached: detections that count as repeats (docs/repeats.md), here and in earlier incidents. */
function repeatsReached(i: Incident): boolean {
  return i.alertsInWindow() + i.state.earlierIncidents >= i.policy.repeatThreshold;
}

/** Where a decision leads when it is not an action to take now: a dismissal, or a proposal to answer. */
function unlessActing(i: Incident, pod: PodFacts, d: Decision): Phase | null {
  if (d.action === 'dismiss') return dismissed(i, d.dismissal);
  if (d.action === 'await-approval') {
    const proposal = openProposal(i, pod, d);
    // Once, when it is proposed: a run that continued as new resumes the wait without asking again.
    notifyInBackground(
      i,
      'awaiting-approval',
      `approve or deny ${proposal.id}: ${proposal.action} ${proposal.target}?`,
      proposal,
    );
    return { name: 'await-approval', pod, proposal };
  }
  return null;
}

function decideNow(i: Incident, pod: PodFacts): Decision {
  const proposed = proposedNow(i, pod);
  const decision = decide({
    alert: i.alert,
    pod,
    policy: i.policy,
    alertCount: i.alertsInWindow() + i.state.earlierIncidents,
    escalation: i.state.escalation,
    approval: answerFor(i, proposed),
  });
  i.state.decision = decision;
  i.note(
    'decision',
    decision.action === 'dismiss' ? decision.dismissal.message : `${decision.action}: ${decision.reason}`,
  );
  return decision;
}

async function terminate(i: Incident, exec: ExecutorSession, pod: PodFacts): Promise<Phase> {
  i.stage('remediating');
  await killPod(i, exec, pod);
  // Then what is not the kill: the cloud credentials it may have taken (their sessions outlive the pod by hours)...
  await cutCredentials(i, pod);
  // ...and the repeats across incidents (a Deployment's earlier pods), which may call for suspending the workload.
  const workload = topWorkload(pod);
  if (workload && !i.state.earlierIncidentsCounted) {
    await countEarlierIncidents(i);
    if (repeatsReached(i)) return decideAndAct(i, exec, pod);
  }
  const unverified = await verifyUntilSettled(i, exec, { podGone: podTarget(pod) });
  await releaseIsolationIfKillVerified(i, exec, pod);
  if (unverified) return done(unverified.outcome, `${unverified.problem}${isolationLeft(i)}`);
  notifyInBackground(i, 'acted', `pod ${pod.namespace}/${pod.name} terminated`);
  if (!workload || i.policy.watchSeconds === 0) return done('pod-terminated');
  return { name: 'watch', pod, workload, until: after(i.policy.watchSeconds) };
}

/**
 * Kills the pod first, so the miner stops whether or not the suspension works, then suspends its workload
 * so the controller cannot start another. A suspension that fails leaves the incident needing a person.
 */
async function suspendWorkload(i: Incident, exec: ExecutorSession, pod: PodFacts, w: WorkloadRef): Promise<Phase> {
  i.stage('remediating');
  await killPod(i, exec, pod);
  let out: { result: ActionResult; record: SuspensionRecord | null };
  try {
    out = await exec.run({ op: 'suspend-workload', incidentId: i.id, workload: w }, `suspend ${describeWorkload(w)}`);
  } catch (err) {
    if (isCancellation(err)) throw err;
    const why = failureMessage(err);
    i.note('suspend-workload', `${describeWorkload(w)}: failed (${why})`);
    await cutCredentials(i, pod);
    const unverified = await verifyUntilSettled(i, exec, { podGone: podTarget(pod) });
    await releaseIsolationIfKillVerified(i, exec, pod);
    const killed = unverified
      ? `was deleted but is not confirmed stopped (${unverified.problem}${isolationLeft(i)})`
      : 'was terminated';
    return done(
      'needs-manual-action',
      `suspending ${describeWorkload(w)} failed: ${why}; the pod ${killed}; suspend the workload by hand`,
    );
  }
  record(i, out.result);
  if (out.record) i.state.suspension = out.record;
  // The pod is dead and its workload cannot replace it: now the credentials it may have taken.
  await cutCredentials(i, pod);
  if (out.result.status === 'unsupported' || out.result.status === 'conflict') {
    await verifyUntilSettled(i, exec, { podGone: podTarget(pod) });
    await releaseIsolationIfKillVerified(i, exec, pod);
    return done('needs-manual-action', `${out.result.message}; the pod was terminated${isolationLeft(i)}`);
  }
  const unverified = await verifyUntilSettled(i, exec, {
    podGone: podTarget(pod),
    ...(out.record ? { suspended: out.record } : {}),
  });
  await releaseIsolationIfKillVerified(i, exec, pod);
  if (!out.record)
    return unverified ? done(unverified.outcome, unverified.problem) : done('pod-terminated', out.result.message);
  if (unverified?.outcome === 'failed') return done(unverified.outcome, unverified.problem);
  // The suspension holds but the pod's node cannot confirm the kill: keep the suspension restorable and say why.
  if (unverified) i.state.problem = `${unverified.problem}${isolationLeft(i)}`;
  const changes = out.record.changes.map(describeChange).join('; ');
  i.note('suspended', changes);
  notifyInBackground(i, 'acted', `${describeWorkload(w)} suspended (${changes}); the pod was terminated`);
  return { name: 'hold', suspension: out.record, until: after(i.policy.holdSuspensionSeconds) };
}

/** Reads the pod and its owners: the pod to act on, or a dismissal when it is not the pod the alert is about. */
async function inspectPod(i: Incident, exec: ExecutorSession): Promise<{ pod: PodFacts } | { dismissal: Dismissal }> {
  const { namespace, podName } = i.alert;
  const { pod } = await exec.run(
    { op: 'inspect', namespace, name: podName },
    `inspect pod ${namespace}/${podName} and its owners`,
  );
  i.state.pod = pod;
  const mismatch = identityCheck(i.alert, pod, i.policy);
  if (mismatch) return { dismissal: mismatch };
  if (!pod) throw new Error('identityCheck passed a pod that does not exist'); // identityCheck dismisses that
  const workload = topWorkload(pod);
  i.state.workload = workload;
  upsertSearchAttributes([
    { key: SA.workloadKind, value: workload?.kind ?? 'Pod' },
    { key: SA.workloadName, value: workload?.name ?? pod.name },
  ]);
  return { pod };
}

/**
 * A Deployment's replacement pod has a new name, so its alerts start a new incident: repeats show across incidents.
 * Counted once, within COUNT_EARLIER_INCIDENTS_BUDGET; when visibility does not answer in time the count is 0 and
 * the notes say so (the pod is dead by then: only the workload's suspension can be missed).
 */
async function countEarlierIncidents(i: Incident): Promise<void> {
  const w = i.state.workload;
  if (!w || i.state.earlierIncidentsCounted) return;
  i.state.earlierIncidentsCounted = true;
  const sinceIso = new Date(Date.now() - i.policy.repeatWindowSeconds * 1000).toISOString();
  try {
    i.state.earlierIncidents = await countRecentIncidents.executeWithOptions(
      { summary: `count earlier incidents on ${describeWorkload(w)}` },
      [
        {
          cluster: i.alert.cluster.name,
          namespace: w.namespace,
          workloadKind: w.kind,
          workloadName: w.name,
          sinceIso,
          excludeWorkflowId: i.id,
        },
      ],
    );
  } catch (err) {
    if (isCancellation(err)) throw err;
    i.state.earlierIncidents = 0;
    i.note(
      'earlier-incidents',
      `not counted (${failureMessage(err)}): counted as 0, so repeats on other pods of ${describeWorkload(w)} do not raise this incident; ${repeatsReached(i) ? 'its own alerts reach the threshold' : 'it decides on its own alerts'}`,
    );
    return;
  }
  i.note(
    'earlier-incidents',
    `${i.state.earlierIncidents} earlier incident(s) on ${describeWorkload(w)} in the window`,
  );
}

function podTarget(p: PodFacts): PodTarget {
  return { namespace: p.namespace, name: p.name, uid: p.uid, ...(p.nodeName ? { nodeName: p.nodeName } : {}) };
}

/**
 * The isolation goes only once the last verification confirmed the kill: the pod gone after a graceful delete
 * (its kubelet removes the object once the containers stopped) and its node not NotReady. While the pod is still
 * terminating, or gone from the API from a node that is NotReady (force-deleted, its container may still run),
 * the policy stays: the kill took its ownership away, so nothing else removes it (the problem says so).
 */
async function releaseIsolationIfKillVerified(i: Incident, exec: ExecutorSession, p: PodFacts): Promise<void> {
  const check = i.state.verification.find((c) => c.target.startsWith(`pod ${p.namespace}/${p.name} `));
  if (check?.ok) await releaseIsolation(i, exec, `the kill is verified (${check.observed})`);
}

/** An incident is about one pod (a pod under the same name with another UID is dismissed), so one kill is enough. */
function podKilled(i: Incident): boolean {
  return i.state.actions.some((a) => a.action === 'delete-pod' && (a.status === 'done' || a.status === 'already-done'));
}

/**
 * Deletes the alerted pod by UID (a pod that replaced it under the same name is never touched); once per incident.
 * Its isolation policy is kept past the pod object. `killedAt` is when the kill took effect: the DELETE answered
 * plus its grace period, by when the kubelet has stopped the container (the revocation's T, the repeats' line).
 */
async function killPod(i: Incident, exec: ExecutorSession, target: PodFacts): Promise<void> {
  if (podKilled(i)) return;
  const pod = podTarget(target);
  const isolation = isolationToKeep(i);
  const { result } = await exec.run(
    {
      op: 'terminate-pod',
      pod,
      gracePeriodSeconds: i.policy.terminateGracePeriodSeconds,
      incidentId: i.id,
      ...(isolation ? { isolation } : {}),
    },
    `delete pod ${pod.namespace}/${pod.name} if uid is ${pod.uid}`,
  );
  const graceSeconds = Math.max(1, i.policy.terminateGracePeriodSeconds); // as remediation/terminate.ts deletes
  i.state.killedAt = new Date(Date.now() + (result.status === 'done' ? graceSeconds * 1000 : 0)).toISOString();
  record(i, result);
}

function record(i: Incident, result: ActionResult): void {
  i.state.actions.push(result);
  i.note(result.action, `${result.target}: ${result.status} (${result.message})`);
  observeActed(i, result);
}

interface Unverified {
  outcome: 'failed' | 'needs-manual-action';
  problem: string;
}

/**
 * Reads the cluster back until every check passes: null when verified. needs-manual-action when the pod's
 * node is not Ready (deleted from the API, the container may still run), failed when the reads never agree.
 */
async function verifyUntilSettled(
  i: Incident,
  exec: ExecutorSession,
  what: { podGone?: PodTarget; suspended?: SuspensionRecord },
): Promise<Unverified | null> {
  i.stage('verifying');
  for (let attempt = 1; ; attempt++) {
    const v = await exec.run({ op: 'verify', ...what }, `verify remediation (attempt ${attempt})`);
    i.state.verification = v.checks;
    if (v.ok) return null;
    const blocked = v.checks.find((c) => !c.ok && c.blocker);
    if (blocked && attempt >= VERIFY_ATTEMPTS_NODE_NOT_READY) {
      return {
        outcome: 'needs-manual-action',
        problem: `${blocked.observed}; check the node and the container by hand`,
      };
    }
    if (attempt >= VERIFY_ATTEMPTS) {
      const bad = v.checks.filter((c) => !c.ok).map((c) => `${c.target}: ${c.observed}`);
      return {
        outcome: 'failed',
        problem: `verification failed after ${VERIFY_ATTEMPTS} reads: ${bad.join('; ')}; act by hand`,
      };
    }
    await sleep(VERIFY_INTERVAL);
  }
}
