/**
 * Every message an incident accepts, registered in one place. Signals only record (bounded); updates
 * validate first, so a caller learns at once whether its answer or restore was taken, and why not.
 */
import { ApplicationFailure, condition, isCancellation, setHandler } from '@temporalio/workflow';
import { unpackAlert } from '../../domain/alert-batch.js';
import { describeWorkload } from '../../remediation/protocol.js';
import {
  alertSignal,
  alertsSignal,
  approveUpdate,
  denyUpdate,
  escalateSignal,
  restoreUpdate,
  statusQuery,
  type Actor,
  type ApprovalAnswer,
  type RestoreResult,
} from '../messages.js';
import { recordAnswer, validateAnswer } from './approval.js';
import { failureMessage } from './failures.js';
import type { Incident } from './incident.js';
import { releaseCredentials } from './credentials.js';
import { releaseIsolation } from './isolation.js';
import { notifyInBackground } from './notifications.js';
import { statusView } from './view.js';
import type { CredentialsStatus } from '../messages.js';

/** Longest `by` and `reason` kept from a message: they land in the timeline and the status. */
const TEXT_MAX = 500;
const clip = (s: string): string => (s.length > TEXT_MAX ? `${s.slice(0, TEXT_MAX)}…` : s);

export function registerHandlers(i: Incident): void {
  setHandler(statusQuery, () => statusView(i.state));

  setHandler(alertsSignal, (alerts, packing) => {
    if (!Array.isArray(alerts)) return i.receiveAlert(alerts);
    const first: unknown = alerts[0];
    for (const [n, a] of alerts.entries()) i.receiveAlert(n && packing ? unpackAlert(first, a, packing) : a);
  });
  setHandler(alertSignal, (a) => i.receiveAlert(a));

  setHandler(escalateSignal, (e) => {
    if (typeof e?.by !== 'string' || typeof e.reason !== 'string' || !e.by || !e.reason) {
      i.note('escalation-invalid', 'an escalate signal without "by" and "reason" was ignored');
      return;
    }
    if (i.state.escalation) {
      i.note('escalation-repeated', `by ${clip(e.by)}: already escalated by ${i.state.escalation.by}`);
      return;
    }
    i.state.escalation = { by: clip(e.by), reason: clip(e.reason) };
    i.note('escalated', `by ${i.state.escalation.by}: ${i.state.escalation.reason}`);
  });

  // The SDK types an update validator's arguments as any: they are annotated here.
  setHandler(approveUpdate, (a) => recordAnswer(i, 'approved', clipActor(a)), {
    validator: (a: ApprovalAnswer) => validateAnswer(i, a),
  });
  setHandler(denyUpdate, (a) => recordAnswer(i, 'denied', clipActor(a)), {
    validator: (a: ApprovalAnswer) => validateAnswer(i, a),
  });

  setHandler(
    restoreUpdate,
    (actor) => {
      const revoked = revokedWhileWatching(i);
      return revoked ? releaseCredentialsOnly(i, revoked, clipActor(actor)) : restore(i, clipActor(actor));
    },
    { validator: (actor: Actor) => validateRestore(i, actor) },
  );
}

function clipActor<A extends Actor>(a: A): A {
  return { ...a, by: clip(a.by), ...(a.reason ? { reason: clip(a.reason) } : {}) };
}

/**
 * After a kill that revoked the pod's credentials, while the incident watches, `restore` releases the revocation
 * (nothing else was changed that a restore could give back: the pod is gone): the revocation, then.
 */
function revokedWhileWatching(i: Incident): CredentialsStatus | null {
  const c = i.state.credentials;
  const watching = i.state.stage === 'watching' && i.state.phase.name === 'watch';
  return !i.state.suspension && c?.state === 'revoked' && watching ? c : null;
}

/**
 * A restore is taken only while a verified suspension is held, one at a time; or, with no suspension, while
 * watching after a kill that revoked credentials.
 */
function validateRestore(i: Incident, actor: Actor): void {
  if (typeof actor?.by !== 'string' || !actor.by.trim()) throw new Error('restore needs "by": who asks for it');
  if (revokedWhileWatching(i)) {
    if (i.credentialsReleasing) throw new Error('a restore is already running (releasing the credentials revocation)');
    return;
  }
  if (!i.state.suspension) {
    const c = i.state.credentials;
    if (c?.state === 'revoked')
      throw new Error(
        `the credentials revocation can be released by restore only while the incident watches after the kill (stage is ${i.state.stage}); by hand: ${c.undo}`,
      );
    if (c?.state === 'released')
      throw new Error(
        `nothing to restore: this incident has not suspended a workload, and its credentials revocation is already released (${c.detail})`,
      );
    throw new Error('nothing to restore: this incident has not suspended a workload');
  }
  if (i.state.restore?.state === 'restoring')
    throw new Error(`a restore is already running (asked by ${i.state.restore.by} at ${i.state.restore.at})`);
  if (i.state.restore?.state === 'restored')
    throw new Error(`already restored by ${i.state.restore.by} at ${i.state.restore.at}`);
  if (i.state.stage !== 'holding' || i.state.phase.name !== 'hold') {
    throw new Error(`restore is possible only while the verified suspension is held (stage is ${i.state.stage})`);
  }
}

async function restore(i: Incident, actor: Actor) {
  const phase = i.state.phase;
  // validateRestore let it through only while holding; a replay (validators do not run) sees the same phase.
  if (phase.name !== 'hold')
    throw ApplicationFailure.nonRetryable('restore is possible only while holding', 'RestoreFailed');
  const record = phase.suspension;
  const target = describeWorkload(record.workload);
  i.state.restore = { state: 'restoring', by: actor.by, at: new Date().toISOString() };
  i.stage('restoring');
  // A hold check re-applying the suspension right now finishes first; then nothing re-applies it.
  if (i.holdCheckRunning) await condition(() => !i.holdCheckRunning);
  try {
    const { result } = await i.withExecutor(async (exec) => {
      const restored = await exec.run(
        { op: 'restore-workload', record },
        `restore ${target} (requested by ${actor.by})`,
      );
      await releaseIsolation(i, exec, `restored by ${actor.by}`);
      return restored;
    });
    i.state.actions.push(result);
    i.state.restore = { ...i.state.restore, state: 'restored' };
    i.note('restored', `by ${actor.by}${actor.reason ? ` (${actor.reason})` : ''}: ${result.message}`);
    // The revoked sessions too: the workload is trusted again. A failure is in status.credentials, with the command.
    await releaseCredentials(i, `restored by ${actor.by}`);
    notifyInBackground(i, 'restored', `${target} restored by ${actor.by}: ${result.message}`);
    return result;
  } catch (err) {
    if (isCancellation(err)) throw err;
    const error = failureMessage(err);
    i.state.restore = { ...i.state.restore, state: 'failed', error };
    i.stage('holding');
    i.note(
      'restore-failed',
      `asked by ${actor.by}: ${error}; ${target} is still suspended; restore can be asked again`,
    );
    // An ApplicationFailure fails this update, not the incident: the caller sees why, the hold goes on.
    throw ApplicationFailure.nonRetryable(
      `restore of ${target} failed: ${error}; it is still suspended and restore can be asked again`,
      'RestoreFailed',
    );
  }
}

/** Restore while watching after a kill: releases the credentials revocation; the watch goes on. */
async function releaseCredentialsOnly(i: Incident, c: CredentialsStatus, actor: Actor): Promise<RestoreResult> {
  const target = `IAM role ${c.role}`;
  i.credentialsReleasing = true;
  try {
    const out = await releaseCredentials(i, `restored by ${actor.by}${actor.reason ? ` (${actor.reason})` : ''}`);
    if (!out?.ok) {
      // The update fails, not the incident: the caller sees why, and may ask again.
      throw ApplicationFailure.nonRetryable(
        `releasing the credentials revocation on ${target} failed: ${out?.message ?? 'it is not in place'}; ${i.state.credentials?.detail ?? ''}`,
        'RestoreFailed',
      );
    }
    notifyInBackground(i, 'restored', `credentials revocation on ${target} released by ${actor.by}: ${out.message}`);
    return { action: 'release-credentials', target, status: 'done', message: out.message };
  } finally {
    i.credentialsReleasing = false;
  }
}
