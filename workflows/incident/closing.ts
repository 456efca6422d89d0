/**
 * Closing an incident: the clean-up once the playbook reached its end, and what a failure, a cancellation or an
 * executor that cannot serve the cluster leaves behind. Whatever happens, nothing an executor deployed outlives the
 * incident, the pod gets its network back unless its kill is unconfirmed, and the outcome says what is left to do.
 */
import {
  ActivityFailure,
  ApplicationFailure,
  CancellationScope,
  allHandlersFinished,
  condition,
  isCancellation,
} from '@temporalio/workflow';
import { describeChange } from '../../remediation/protocol.js';
import { EXECUTOR_UNAVAILABLE } from '../executor.js';
import type { IncidentResult, Outcome } from '../messages.js';
import { failureMessage } from './failures.js';
import type { Incident } from './incident.js';
import { isolationLeft, releaseIsolationAlone } from './isolation.js';
import { notifyInBackground, settleNotifications } from './notifications.js';
import type { Phase } from './state.js';

/** Clean up after the playbook's end: wait for a running restore, give a dismissed pod its network back, notify. */
export async function cleanUp(i: Incident, end: Extract<Phase, { name: 'done' }>): Promise<IncidentResult> {
  // A restore (update) still running finishes before the incident closes.
  await condition(allHandlersFinished);
  // Dismissed (or denied) after the pod was isolated for the wait: it is given its network back.
  if (end.outcome === 'dismissed') await releaseIsolationAlone(i, 'the incident was dismissed');
  if (restoredAfterHold(i, end.outcome)) {
    // Taken during the check that ended the hold (or as the hold ran out), the restore ran after it: what that check found is history.
    if (end.problem) i.note('hold-ended-before-restore', end.problem);
    await settleNotifications(i);
    return i.finish('workload-restored');
  }
  if (end.outcome === 'needs-manual-action')
    notifyInBackground(i, 'needs-manual-action', `needs a person: ${end.problem ?? ''}`);
  await settleNotifications(i);
  return i.finish(end.outcome, end.problem);
}

/**
 * Ends an incident the playbook did not finish: the executor cannot serve the cluster (a result: a person must act),
 * or it was cancelled or failed (recorded, cleaned up, and `err` thrown again).
 */
export async function closeAfter(i: Incident, err: unknown): Promise<IncidentResult> {
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
}

/** The hold ended (ran out, or a check ended it) while a restore waited, and the restore then put the workload back. */
function restoredAfterHold(i: Incident, outcome: Outcome): boolean {
  return (
    i.state.restore?.state === 'restored' && (outcome === 'workload-suspended' || outcome === 'needs-manual-action')
  );
}

/**
 * Why the executor cannot serve this cluster, whether workflow code said so or an activity did (the direct
 * executor, for a cluster the worker has no mapping for).
 */
function executorUnavailable(err: unknown): string | undefined {
  const e = err instanceof ActivityFailure ? err.cause : err;
  return e instanceof ApplicationFailure && e.type === EXECUTOR_UNAVAILABLE ? e.message : undefined;
}
