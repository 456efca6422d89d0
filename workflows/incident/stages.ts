/**
 * The playbook's steps, each one call from malicious-pod-response.ts, in the order it runs them: validate, decide,
 * isolate, evidence, kill, suspend, credentials, verify, then a wait (approval, watch, hold). The waits run outside
 * any executor stretch, so an incident can continue as new there and resume the same wait in its next run.
 */
import { isCancellation, proxyActivities, sleep, upsertSearchAttributes } from '@temporalio/workflow';
import type { Activities } from '../../activities/index.js';
import { identityCheck, preflightCheck, type Dismissal } from '../../domain/checks.js';
import { decide as decideByTable, type Decision } from '../../domain/decide.js';
import { SA } from '../../domain/search-attributes.js';
import { topWorkload, type PodFacts, type WorkloadRef } from '../../domain/workload.js';
import {
  describeChange,
  describeWorkload,
  podTarget,
  type ActionResult,
  type PodTarget,
  type SuspensionRecord,
} from '../../remediation/protocol.js';
import type { ExecutorSession } from '../executor.js';
import type { Proposal } from '../messages.js';
import { answerFor, closeProposal, openProposal, proposalOutdated, proposedNow } from './approval.js';
import { failureMessage } from './failures.js';
import type { Incident } from './incident.js';
import { isDryRun, wouldDeploy } from './dry-run.js';
import { checksHold, holdTheLine } from './hold-the-line.js';
import { notifyInBackground } from './notifications.js';
import { isolateFirst, isolationLeft, isolationToKeep } from './isolation.js';
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

/** Ends the incident as dismissed, and says why. */
export function dismiss(i: Incident, d: Dismissal): Phase {
  i.state.dismissal = d;
  i.note('dismissed', `${d.code}: ${d.message}`);
  return done('dismissed');
}

/**
 * Validate the alert alone, before any cluster access, so a bad alert creates nothing anywhere: the end (a
 * dismissal, or a dry run on the EKS executor, which would have to deploy to read the pod), or null to go on.
 */
export function validateAlert(i: Incident): Phase | null {
  i.stage('validating');
  const early = preflightCheck(i.alert, i.policy, Date.now());
  if (early) return dismiss(i, early);
  if (isDryRun(i) && i.input.executor.kind === 'eks-lambda') return wouldDeploy(i);
  return null;
}

/** Validate the pod: it exists, with the alert's UID, and is not protected. Null when dismissed (the record says why). */
export async function validatePod(i: Incident, exec: ExecutorSession): Promise<PodFacts | null> {
  const inspected = await inspectPod(i, exec);
  if ('pod' in inspected) return inspected.pod;
  dismiss(i, inspected.dismissal);
  return null;
}

/** What the facts call for now: dismiss, ask for approval, kill the pod or suspend its workload. */
export async function decide(i: Incident, pod: PodFacts): Promise<Decision> {
  // A live incident counts earlier incidents after the kill, so visibility never delays it; a dry run kills nothing.
  if (isDryRun(i)) await countEarlierIncidents(i);
  i.stage('deciding');
  return decideNow(i, pod);
}

/** Contain first: before the kill, and before a person is asked, so the miner is cut off while they decide. */
export async function isolate(i: Incident, exec: ExecutorSession, pod: PodFacts): Promise<void> {
  await isolateFirst(i, exec, podTarget(pod));
}

/** Opens a proposal and tells people: the incident waits for the answer (the await-approval phase carries it). */
export function askForApproval(i: Incident, pod: PodFacts, d: Extract<Decision, { action: 'await-approval' }>): Phase {
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

/**
 * Deletes the alerted pod by UID (a pod that replaced it under the same name is never touched); once per incident.
 * Its isolation policy is kept past the pod object. `killedAt` is when the kill took effect: the DELETE answered
 * plus its grace period, by when the kubelet has stopped the container (the revocation's T, the repeats' line).
 */
export async function kill(i: Incident, exec: ExecutorSession, target: PodFacts): Promise<void> {
  i.stage('remediating');
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

/** How suspending the workload went: what to hold, or why there is nothing to hold. */
export type Suspended =
  | { state: 'suspended'; workload: WorkloadRef; record: SuspensionRecord }
  /** Done, but nothing changed that a restore would put back (the message says why). */
  | { state: 'nothing-to-hold'; workload: WorkloadRef; message: string }
  /** The kind cannot be suspended, or someone else's change is in the way. */
  | { state: 'refused'; workload: WorkloadRef; message: string }
  | { state: 'failed'; workload: WorkloadRef; why: string };

/**
 * Suspends the workload (after the kill, so the miner stops whether or not this works) so its controller cannot
 * start another pod, recording what changed. A suspension that fails leaves the incident needing a person.
 */
export async function suspend(i: Incident, exec: ExecutorSession, workload: WorkloadRef): Promise<Suspended> {
  let out: { result: ActionResult; record: SuspensionRecord | null };
  try {
    out = await exec.run(
      { op: 'suspend-workload', incidentId: i.id, workload },
      `suspend ${describeWorkload(workload)}`,
    );
  } catch (err) {
    if (isCancellation(err)) throw err;
    const why = failureMessage(err);
    i.note('suspend-workload', `${describeWorkload(workload)}: failed (${why})`);
    return { state: 'failed', workload, why };
  }
  record(i, out.result);
  if (out.record) i.state.suspension = out.record;
  const { status, message } = out.result;
  if (status === 'unsupported' || status === 'conflict') return { state: 'refused', workload, message };
  return out.record
    ? { state: 'suspended', workload, record: out.record }
    : { state: 'nothing-to-hold', workload, message };
}

/**
 * A Deployment's replacement pod has a new name, so its alerts start a new incident: after a kill, the incidents on
 * the same workload in the repeat window are counted once, and true when with them the repeats reach the threshold
 * (the facts may then call for suspending the workload).
 */
export async function repeatedAcrossIncidents(i: Incident, pod: PodFacts): Promise<boolean> {
  if (!topWorkload(pod) || i.state.earlierIncidentsCounted) return false;
  await countEarlierIncidents(i);
  return repeatsReached(i);
}

/**
 * Reads the cluster back until every check passes (the pod gone; the suspension, when there is one to hold): null
 * when verified. needs-manual-action when the pod's node is not Ready (deleted from the API, the container may
 * still run), failed when the reads never agree.
 */
export async function verify(
  i: Incident,
  exec: ExecutorSession,
  pod: PodFacts,
  suspended: Suspended | null,
): Promise<Unverified | null> {
  return verifyUntilSettled(i, exec, {
    podGone: podTarget(pod),
    ...(suspended?.state === 'suspended' ? { suspended: suspended.record } : {}),
  });
}

/** After a verified (or not) kill: watch a controller-owned pod's workload for repeats, or end. */
export function watchOrEnd(i: Incident, pod: PodFacts, unverified: Unverified | null): Phase {
  if (unverified) return done(unverified.outcome, `${unverified.problem}${isolationLeft(i)}`);
  notifyInBackground(i, 'acted', `pod ${pod.namespace}/${pod.name} terminated`);
  const workload = topWorkload(pod);
  if (!workload || i.policy.watchSeconds === 0) return done('pod-terminated');
  return { name: 'watch', pod, workload, until: after(i.policy.watchSeconds) };
}

/** After the suspension and its verification: hold what was suspended, or end, saying what a person must do. */
export function holdOrEnd(i: Incident, s: Suspended, unverified: Unverified | null): Phase {
  const w = describeWorkload(s.workload);
  switch (s.state) {
    case 'failed': {
      const killed = unverified
        ? `was deleted but is not confirmed stopped (${unverified.problem}${isolationLeft(i)})`
        : 'was terminated';
      return done(
        'needs-manual-action',
        `suspending ${w} failed: ${s.why}; the pod ${killed}; suspend the workload by hand`,
      );
    }
    case 'refused':
      return done('needs-manual-action', `${s.message}; the pod was terminated${isolationLeft(i)}`);
    case 'nothing-to-hold':
      return unverified ? done(unverified.outcome, unverified.problem) : done('pod-terminated', s.message);
    case 'suspended': {
      if (unverified?.outcome === 'failed') return done(unverified.outcome, unverified.problem);
      // The suspension holds but the pod's node cannot confirm the kill: keep the suspension restorable and say why.
      if (unverified) i.state.problem = `${unverified.problem}${isolationLeft(i)}`;
      const changes = s.record.changes.map(describeChange).join('; ');
      i.note('suspended', changes);
      notifyInBackground(i, 'acted', `${w} suspended (${changes}); the pod was terminated`);
      return { name: 'hold', suspension: s.record, until: after(i.policy.holdSuspensionSeconds) };
    }
  }
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
  const d = decideNow(i, pod);
  if (d.action === 'dismiss') return dismiss(i, d.dismissal);
  if (d.action === 'await-approval') return askForApproval(i, pod, d);
  return { name: 'act', pod };
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

/** The repeat threshold is reached: detections that count as repeats (docs/repeats.md), here and in earlier incidents. */
function repeatsReached(i: Incident): boolean {
  return i.alertsInWindow() + i.state.earlierIncidents >= i.policy.repeatThreshold;
}

function decideNow(i: Incident, pod: PodFacts): Decision {
  const proposed = proposedNow(i, pod);
  const decision = decideByTable({
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

/** An incident is about one pod (a pod under the same name with another UID is dismissed), so one kill is enough. */
function podKilled(i: Incident): boolean {
  return i.state.actions.some((a) => a.action === 'delete-pod' && (a.status === 'done' || a.status === 'already-done'));
}

function record(i: Incident, result: ActionResult): void {
  i.state.actions.push(result);
  i.note(result.action, `${result.target}: ${result.status} (${result.message})`);
  observeActed(i, result);
}

export interface Unverified {
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
