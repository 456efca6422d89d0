import {
  allHandlersFinished,
  ApplicationFailure,
  condition,
  isCancellation,
  log,
  proxyActivities,
  setHandler,
  sleep,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import type { Activities } from '../../activities/index.js';
import type { PodAlert } from '../../domain/alert.js';
import { identityCheck, preflightCheck, type Dismissal } from '../../domain/checks.js';
import { decide, type ApprovalState } from '../../domain/decide.js';
import type { Policy } from '../../domain/policy.js';
import { SA } from '../../domain/search-attributes.js';
import { topWorkload, type PodFacts, type WorkloadRef } from '../../domain/workload.js';
import { describeWorkload, type ActionResult, type PodTarget, type SuspensionRecord } from '../../remediation/protocol.js';
import { Compensations } from '../compensations.js';
import { EXECUTOR_UNAVAILABLE, openExecutor, type ExecutorSession, type ExecutorTarget } from '../executor.js';
import type { IncidentInput } from '../incident/input.js';
import { failureMessage } from '../incident/failures.js';
import { alertSignal, alertsSignal, escalateSignal, restoreUpdate, type Outcome, type Stage } from '../messages.js';
import { approveSignalV1 as approveSignal, denySignalV1 as denySignal, statusQueryV1 as statusQuery, type IncidentStatusV1 as IncidentStatus } from './messages-v1.js';

type IncidentResult = IncidentStatus;

const { countRecentIncidents } = proxyActivities<Activities>({
  startToCloseTimeout: '30 seconds',
  retry: { maximumAttempts: 5 },
});

/** Verification polls: a pod with a grace period, or a controller, takes a moment to converge. */
const VERIFY_ATTEMPTS = 10;
const VERIFY_INTERVAL = '2 seconds';

/**
 * FROZEN: the incident workflow as it was before v2, kept so incidents started on it (holds last 7 days)
 * finish on the code they started with. `maliciousPodResponse` sends only histories without the v2 patch
 * marker here. Do not change what it does; the one addition, the `alerts` handler, creates no commands,
 * so these histories replay as recorded. Delete with the patch once no such incident runs (README).
 *
 * One response to one pod: validate, decide, remediate, verify, then watch or hold.
 * Signals may escalate, approve, deny or add repeat alerts at any time; `restore` undoes a suspension.
 */
export async function incidentV1(input: IncidentInput): Promise<IncidentResult> {
  const { alert, policy } = input;
  const incidentId = workflowInfo().workflowId;
  const s: IncidentStatus = {
    incidentId,
    stage: 'validating',
    outcome: null,
    decision: null,
    dismissal: null,
    problem: null,
    pod: null,
    alertIds: [],
    escalation: null,
    actions: [],
    verification: [],
    suspension: null,
    cleanup: [],
    timeline: [],
  };
  const alertTimes = new Map<string, number>();
  let approval: ApprovalState = { state: 'none' };
  let restoring = false;
  let restored = false;

  const note = (event: string, detail: string): void => {
    s.timeline.push({ at: new Date().toISOString(), event, detail });
    log.info(event, { incidentId, detail });
  };
  const stage = (next: Stage): void => {
    s.stage = next;
    upsertSearchAttributes([{ key: SA.stage, value: next }]);
    note(`stage:${next}`, '');
  };
  const recordAlert = (a: PodAlert): boolean => {
    if (alertTimes.has(a.alertId)) return false;
    alertTimes.set(a.alertId, Date.parse(a.detectedAt));
    s.alertIds.push(a.alertId);
    return true;
  };
  const recentAlerts = (): number => {
    const since = Date.now() - policy.repeatWindowSeconds * 1000;
    return [...alertTimes.values()].filter((t) => t >= since).length;
  };

  // Before the handlers: a signal-with-start delivers this same alert as a signal too.
  recordAlert(alert);
  setHandler(statusQuery, () => s);
  setHandler(escalateSignal, (e) => {
    if (s.escalation) return;
    s.escalation = e;
    note('escalated', `by ${e.by}: ${e.reason}`);
  });
  setHandler(approveSignal, (a) => {
    if (approval.state !== 'none') return;
    approval = { state: 'approved', by: a.by };
    note('approved', `by ${a.by}${a.reason ? `: ${a.reason}` : ''}`);
  });
  setHandler(denySignal, (a) => {
    if (approval.state !== 'none') return;
    approval = a.reason ? { state: 'denied', by: a.by, reason: a.reason } : { state: 'denied', by: a.by };
    note('denied', `by ${a.by}${a.reason ? `: ${a.reason}` : ''}`);
  });
  setHandler(alertsSignal, (alerts) => {
    for (const a of alerts) onAlert(a);
  });
  setHandler(alertSignal, onAlert);
  function onAlert(a: PodAlert): void {
    const samePod = a.cluster.name === alert.cluster.name && a.namespace === alert.namespace && a.podName === alert.podName;
    if (!samePod) {
      note('alert-ignored', `alert ${a.alertId} is about ${a.namespace}/${a.podName}, not this incident's pod`);
      return;
    }
    if (a.alertId === alert.alertId) return; // signal-with-start delivers the first alert twice
    note(recordAlert(a) ? 'repeat-alert' : 'duplicate-alert', `alert ${a.alertId} from ${a.source} at ${a.detectedAt}`);
  }


  const dismiss = (d: Dismissal): IncidentResult => {
    s.dismissal = d;
    note('dismissed', `${d.code}: ${d.message}`);
    return finish('dismissed');
  };
  const finish = (outcome: Outcome, problem?: string): IncidentResult => {
    s.outcome = outcome;
    if (problem) s.problem = problem;
    upsertSearchAttributes([{ key: SA.outcome, value: outcome }]);
    note('outcome', `${outcome}${problem ? `: ${problem}` : ''}`);
    return s;
  };

  upsertSearchAttributes([
    { key: SA.cluster, value: alert.cluster.name },
    { key: SA.namespace, value: alert.namespace },
    { key: SA.pod, value: alert.podName },
    { key: SA.alertSource, value: alert.source },
  ]);
  note('alert', `${alert.source} ${alert.category} (${alert.severity}) alert ${alert.alertId}`);

  const target: ExecutorTarget = {
    incidentId,
    cluster: alert.cluster.name,
    region: alert.cluster.region,
    namespace: alert.namespace,
  };
  let session = 0;
  let failedStage: Stage | null = null;
  /**
   * Opens an executor for one stretch of work and removes whatever it deployed when the stretch ends,
   * however it ends: nothing an executor deploys outlives the step that needed it.
   */
  async function withExecutor<T>(work: (exec: ExecutorSession) => Promise<T>): Promise<T> {
    session += 1;
    const compensations = new Compensations();
    try {
      return await work(await openExecutor(input.executor, target, compensations, session));
    } catch (err) {
      failedStage ??= s.stage; // before cleaning up changes it
      throw err;
    } finally {
      if (compensations.size) {
        stage('cleaning-up');
        for (const u of await compensations.runAll()) {
          s.cleanup.push(u);
          note('compensation', `${u.name}: ${u.status}${u.error ? ` (${u.error})` : ''}`);
        }
      }
    }
  }

  interface Target {
    pod: PodFacts;
    podTarget: PodTarget;
    workload: WorkloadRef | null;
    alertCount: () => number;
  }
  type Step = { next: 'done'; result: IncidentResult } | { next: 'watch' | 'hold'; workload: WorkloadRef };
  const done = (result: IncidentResult): Step => ({ next: 'done', result });
  let t: Target | null = null;

  setHandler(
    restoreUpdate,
    async (actor) => {
      restoring = true;
      stage('restoring');
      const record = s.suspension!;
      const { result } = await withExecutor((exec) =>
        exec.run({ op: 'restore-workload', record }, `restore ${describeWorkload(record.workload)} (requested by ${actor.by})`),
      );
      s.actions.push(result);
      note('restored', `by ${actor.by}: ${result.message}`);
      restored = true;
      return result;
    },
    {
      validator: (actor) => {
        if (!actor?.by) throw new Error('restore needs "by": who asks for it');
        if (!s.suspension) throw new Error('nothing to restore: this incident has not suspended a workload');
        if (restoring) throw new Error('restore already requested');
      },
    },
  );

  try {
    stage('validating');
    const early = preflightCheck(alert, policy, Date.now());
    if (early) return dismiss(early);

    let step = await withExecutor(async (exec): Promise<Step> => {
      const { pod } = await exec.run(
        { op: 'inspect', namespace: alert.namespace, name: alert.podName },
        `inspect pod ${alert.namespace}/${alert.podName} and its owners`,
      );
      s.pod = pod;
      const mismatch = identityCheck(alert, pod, policy);
      if (mismatch || !pod) return done(dismiss(mismatch!));

      const workload = topWorkload(pod);
      upsertSearchAttributes([
        { key: SA.workloadKind, value: workload?.kind ?? 'Pod' },
        { key: SA.workloadName, value: workload?.name ?? pod.name },
      ]);
      const earlier = workload ? await countEarlierIncidents(workload, incidentId, alert, policy) : 0;
      if (earlier) note('earlier-incidents', `${earlier} earlier incident(s) on ${describeWorkload(workload!)} in the window`);
      t = {
        pod,
        podTarget: { namespace: pod.namespace, name: pod.name, uid: pod.uid },
        workload,
        alertCount: () => recentAlerts() + earlier,
      };
      return act(exec, t);
    });

    for (;;) {
      if (step.next === 'done') return step.result;
      const target = t!;
      if (step.next === 'watch') {
        // A controller recreates the pod: keep listening for repeats and escalation for a while.
        stage('watching');
        const raised = await condition(
          () => s.escalation !== null || target.alertCount() >= policy.repeatThreshold,
          policy.watchSeconds * 1000,
          { summary: `watch ${describeWorkload(step.workload)} for repeats or escalation` },
        );
        if (!raised) return finish('pod-terminated');
        approval = { state: 'none' }; // a harder action needs its own approval
        step = await withExecutor((exec) => act(exec, target));
        continue;
      }
      stage('holding');
      await condition(() => restored, policy.holdSuspensionSeconds * 1000, {
        summary: `hold ${describeWorkload(step.workload)} suspended until restore`,
      });
      await condition(allHandlersFinished);
      return finish(restored ? 'workload-restored' : 'workload-suspended');
    }
  } catch (err) {
    if (err instanceof ApplicationFailure && err.type === EXECUTOR_UNAVAILABLE) {
      return finish('needs-manual-action', err.message);
    }
    if (isCancellation(err)) {
      finish('cancelled', s.suspension && !restored ? 'workload left suspended; its prior state is recorded in this result' : undefined);
    } else {
      const done = s.actions.length ? `actions taken: ${s.actions.map((a) => `${a.action} ${a.status}`).join(', ')}` : 'nothing was changed in the cluster';
      finish('failed', `${failureMessage(err)} (while ${failedStage ?? s.stage}); ${done}; respond again or act by hand`);
    }
    throw err;
  } finally {
    stage('closed');
  }

  /** Decides and acts until the incident is done or needs watching or holding; waits for approval if asked. */
  async function act(exec: ExecutorSession, c: Target): Promise<Step> {
    for (;;) {
      stage('deciding');
      const decision = decide({ alert, pod: c.pod, policy, alertCount: c.alertCount(), escalation: s.escalation, approval });
      s.decision = decision;
      note('decision', decision.action === 'dismiss' ? decision.dismissal.message : `${decision.action}: ${decision.reason}`);

      if (decision.action === 'await-approval') {
        stage('awaiting-approval');
        const answered = await condition(() => approval.state !== 'none', policy.approvalTimeoutSeconds * 1000, {
          summary: `wait for approve/deny of ${decision.proposed}`,
        });
        if (!answered) approval = { state: 'timed-out' };
        continue;
      }
      if (decision.action === 'dismiss') return done(dismiss(decision.dismissal));

      if (decision.action === 'terminate-pod') {
        stage('remediating');
        await terminate(exec, c.podTarget);
        const verified = await verifyUntilOk(exec, { podGone: c.podTarget });
        if (!verified) return done(finish('failed', verificationProblem()));
        if (!c.workload || policy.watchSeconds === 0) return done(finish('pod-terminated'));
        return { next: 'watch', workload: c.workload };
      }

      stage('remediating');
      const suspended = await suspend(exec, decision.workload);
      await terminate(exec, c.podTarget); // kill the miner now rather than wait for the controller
      if (suspended.result.status === 'unsupported' || suspended.result.status === 'conflict') {
        await verifyUntilOk(exec, { podGone: c.podTarget });
        return done(finish('needs-manual-action', `${suspended.result.message}; the pod was terminated`));
      }
      const verified = await verifyUntilOk(exec, { podGone: c.podTarget, suspended: suspended.record ?? undefined });
      if (!verified) return done(finish('failed', verificationProblem()));
      if (!suspended.record) return done(finish('pod-terminated', suspended.result.message));
      return { next: 'hold', workload: decision.workload };
    }
  }

  async function terminate(exec: ExecutorSession, pod: PodTarget): Promise<void> {
    const { result } = await exec.run(
      { op: 'terminate-pod', pod, gracePeriodSeconds: policy.terminateGracePeriodSeconds },
      `delete pod ${pod.namespace}/${pod.name} if uid is ${pod.uid}`,
    );
    record(result);
  }

  async function suspend(exec: ExecutorSession, w: WorkloadRef): Promise<{ result: ActionResult; record: SuspensionRecord | null }> {
    const out = await exec.run({ op: 'suspend-workload', incidentId, workload: w }, `suspend ${describeWorkload(w)}`);
    record(out.result);
    if (out.record) s.suspension = out.record;
    return out;
  }

  function record(result: ActionResult): void {
    s.actions.push(result);
    note(result.action, `${result.target}: ${result.status} (${result.message})`);
  }

  async function verifyUntilOk(exec: ExecutorSession, what: { podGone?: PodTarget; suspended?: SuspensionRecord }): Promise<boolean> {
    stage('verifying');
    for (let attempt = 1; ; attempt++) {
      const v = await exec.run({ op: 'verify', ...what }, `verify remediation (attempt ${attempt})`);
      s.verification = v.checks;
      if (v.ok) return true;
      if (attempt >= VERIFY_ATTEMPTS) return false;
      await sleep(VERIFY_INTERVAL);
    }
  }

  function verificationProblem(): string {
    const bad = s.verification.filter((c) => !c.ok).map((c) => `${c.target}: ${c.observed}`);
    return `verification failed after ${VERIFY_ATTEMPTS} reads: ${bad.join('; ')}; act by hand`;
  }
}

async function countEarlierIncidents(w: WorkloadRef, incidentId: string, alert: PodAlert, policy: Policy): Promise<number> {
  const sinceIso = new Date(Date.now() - policy.repeatWindowSeconds * 1000).toISOString();
  return countRecentIncidents.executeWithOptions({ summary: `count earlier incidents on ${describeWorkload(w)}` }, [
    {
      cluster: alert.cluster.name,
      namespace: w.namespace,
      workloadKind: w.kind,
      workloadName: w.name,
      sinceIso,
      excludeWorkflowId: incidentId,
    },
  ]);
}
