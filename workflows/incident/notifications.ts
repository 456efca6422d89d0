/**
 * Telling people, without ever holding the response back: a notification runs as an activity beside the
 * playbook (never awaited by it), and what it delivered or failed to is kept in `status.notifications`.
 * Before the incident closes it waits a bounded moment for those still in flight.
 */
import { condition, proxyActivities } from '@temporalio/workflow';
import type { Activities } from '../../activities/index.js';
import type { Notification, NotifyEvent } from '../../activities/notify.js';
import type { Proposal } from '../messages.js';
import type { Incident } from './incident.js';

/** Failures kept in the status: the newest. */
const FAILURES_KEPT = 10;

const { notify } = proxyActivities<Activities>({
  // The activity retries each target itself and never fails; this only covers a worker lost mid-send.
  startToCloseTimeout: '1 minute',
  retry: { maximumAttempts: 2 },
});

/** Starts the notification and returns at once. */
export function notifyInBackground(i: Incident, event: NotifyEvent, summary: string, proposal?: Proposal): void {
  const p = i.state.pod;
  const n: Notification = {
    event,
    incidentId: i.id,
    summary,
    cluster: i.alert.cluster.name,
    namespace: i.alert.namespace,
    pod: p?.name ?? i.alert.podName,
    outcome: i.state.phase.name === 'done' ? i.state.phase.outcome : null,
    problem: i.state.problem,
    proposal: proposal
      ? { id: proposal.id, action: proposal.action, target: proposal.target, expiresAt: proposal.expiresAt }
      : null,
  };
  const s = (i.state.notifications ??= { sent: 0, delivered: 0, failed: [] });
  s.sent += 1;
  i.notificationsInFlight += 1;
  notify
    .executeWithOptions({ summary: `notify: ${event}` }, [n])
    .then(
      (report) => {
        s.delivered += report.delivered.length;
        for (const f of report.failed) {
          s.failed.push({ at: new Date().toISOString(), event, target: f.target, error: f.error });
          i.note('notify-failed', `${event} to ${f.target}: ${f.error}`);
        }
        if (s.failed.length > FAILURES_KEPT) s.failed.splice(0, s.failed.length - FAILURES_KEPT);
      },
      (err: unknown) => {
        s.failed.push({ at: new Date().toISOString(), event, target: '*', error: (err as Error).message });
      },
    )
    .finally(() => {
      i.notificationsInFlight -= 1;
    });
}

/** Before closing: a bounded wait for notifications still being sent (a dead endpoint costs at most this). */
export async function settleNotifications(i: Incident): Promise<void> {
  if (i.notificationsInFlight > 0) await condition(() => i.notificationsInFlight === 0, '30 seconds');
}
