import {
  CancellationScope,
  ActivityFailure,
  ApplicationFailure,
  allHandlersFinished,
  condition,
  ContinueAsNew,
  isCancellation,
  upsertSearchAttributes,
} from '@temporalio/workflow';
import { SA } from '../domain/search-attributes.js';
import { describeChange } from '../remediation/protocol.js';
import { EXECUTOR_UNAVAILABLE } from './executor.js';
import { registerHandlers } from './incident/handlers.js';
import { Incident } from './incident/incident.js';
import type { IncidentInput } from './incident/input.js';
import { failureMessage } from './incident/failures.js';
import { actAfterWait, awaitApproval, hold, investigate, watch } from './incident/stages.js';
import { isolationLeft, releaseIsolationAlone } from './incident/isolation.js';
import { notifyInBackground, settleNotifications } from './incident/notifications.js';
import { enforcePolicyFloor } from './incident/policy-floor.js';
import type { IncidentResult, Outcome } from './messages.js';

export type { IncidentInput } from './incident/input.js';

export type IncidentWorkflow = (input: IncidentInput) => Promise<IncidentResult>;

/**
 * One response to one pod: validate, decide, remediate, verify, then watch for repeats or hold a
 * suspension until `restore`. Messages (alerts, escalate, approve, deny, restore, status) are in
 * incident/handlers.ts; the stages in incident/stages.ts.
 */
export async function maliciousPodResponse(input: IncidentInput): Promise<IncidentResult> {
  const incident = new Incident(input);
  registerHandlers(incident);
  return runPlaybook(incident);
}

async function runPlaybook(i: Incident): Promise<IncidentResult> {
  if (!i.resumed) begin(i);
  let continuing = false;
  try {
    // Before anything else: an incident whose policy is looser than this worker's floor does nothing.
    await enforcePolicyFloor(i);
    for (;;) {
      const next = i.state.phase;
      switch (next.name) {
        case 'validate':
          i.state.phase = await investigate(i);
          break;
        case 'await-approval':
          i.state.phase = await awaitApproval(i, next.pod, next.proposal);
          break;
        case 'act':
          i.state.phase = await actAfterWait(i, next.pod);
          break;
        case 'watch':
          i.state.phase = await watch(i, next.pod, next.workload, next.until);
          break;
        case 'hold':
          i.state.phase = await hold(i, next.suspension, next.until);
          break;
        case 'done':
          // A restore (update) still running finishes before the incident closes.
          await condition(allHandlersFinished);
          // Dismissed (or denied) after the pod was isolated for the wait: it is given its network back.
          if (next.outcome === 'dismissed') await releaseIsolationAlone(i, 'the incident was dismissed');
          if (restoredAfterHold(i, next.outcome)) {
            // Taken during the check that ended the hold (or as the hold ran out), the restore ran after it: what that check found is history.
            if (next.problem) i.note('hold-ended-before-restore', next.problem);
            await settleNotifications(i);
            return i.finish('workload-restored');
          }
          if (next.outcome === 'needs-manual-action')
            notifyInBackground(i, 'needs-manual-action', `needs a person: ${next.problem ?? ''}`);
          await settleNotifications(i);
          return i.finish(next.outcome, next.problem);
      }
    }
  } catch (err) {
    if (err instanceof ContinueAsNew) {
      continuing = true;
      throw err;
    }
    const unavailable = executorUnavailable(err);
    if (unavailable) {
      const result = i.finish('needs-manual-action', unavailable);
      notifyInBackground(i, 'needs-manual-action', `needs a person: ${unavailable}`);
      await settleNotifications(i);
      return result;
    }
    if (isCancellation(err)) {
      const s = i.state.suspension;
      const held = s && i.state.restore?.state !== 'restored';
      i.finish(
        'cancelled',
        held
          ? `the workload is left suspended (${s.changes.map(describeChange).join('; ')}); undo it by hand, the prior state is also in the objects' pod-responder.io/prior-state annotation`
          : undefined,
      );
      // Let a running restore finish its cleanup: nothing an executor deployed may outlive the incident.
      await CancellationScope.nonCancellable(() => condition(allHandlersFinished));
      // Nor the isolation: a cancelled response gives the pod its network back.
      await CancellationScope.nonCancellable(() => releaseIsolationAlone(i, 'the incident was cancelled'));
    } else {
      const acted = i.state.actions.length
        ? `actions taken: ${i.state.actions.map((a) => `${a.action} ${a.status}`).join(', ')}`
        : 'nothing was changed in the cluster';
      i.finish(
        'failed',
        `${failureMessage(err)} (while ${i.stageAtFailure}); ${acted}${isolationLeft(i)}; respond again or act by hand`,
      );
      notifyInBackground(i, 'failed', `failed: ${i.state.problem ?? ''}`);
      await settleNotifications(i);
    }
    throw err;
  } finally {
    if (!continuing) i.stage('closed');
  }
}

/** The hold ended (ran out, or a check ended it) while a restore waited, and the restore then put the workload back. */
function restoredAfterHold(i: Incident, outcome: Outcome): boolean {
  return (
    i.state.restore?.state === 'restored' && (outcome === 'workload-suspended' || outcome === 'needs-manual-action')
  );
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

/**
 * Why the executor cannot serve this cluster, whether workflow code said so or an activity did (the direct
 * executor, for a cluster the worker has no mapping for).
 */
function executorUnavailable(err: unknown): string | undefined {
  const e = err instanceof ActivityFailure ? err.cause : err;
  return e instanceof ApplicationFailure && e.type === EXECUTOR_UNAVAILABLE ? e.message : undefined;
}
