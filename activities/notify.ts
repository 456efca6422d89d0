/**
 * Notifications: when an incident acts, waits for approval (with the exact commands and the UI link), needs a
 * person, fails, or is restored. To a Slack-compatible incoming webhook, and to a generic JSON webhook signed
 * with HMAC-SHA256 of the exact body. Each target is tried a few times; the report says what was delivered and
 * what was not, and the activity itself never fails: a notifier must never delay or fail the response.
 */
import { createHmac } from 'node:crypto';

export type NotifyEvent = 'acted' | 'awaiting-approval' | 'needs-manual-action' | 'failed' | 'restored';

export interface NotifierTarget {
  name: string;
  kind: 'slack' | 'webhook';
  url: string;
  /** Webhook only: the HMAC-SHA256 key of `X-Pod-Responder-Signature`. */
  secret?: string | undefined;
  /** The events sent to this target (default: all). */
  events?: NotifyEvent[] | undefined;
}

export interface Notification {
  event: NotifyEvent;
  incidentId: string;
  /** One line, what happened: "pod shop/miner terminated", "approve terminate-pod pod shop/miner?" */
  summary: string;
  cluster: string;
  namespace: string;
  pod: string;
  outcome?: string | null;
  problem?: string | null;
  proposal?: { id: string; action: string; target: string; expiresAt: string } | null;
}

export interface NotifyReport {
  delivered: string[];
  failed: { target: string; error: string }[];
}

export const SIGNATURE_HEADER = 'x-pod-responder-signature';
export const TIMESTAMP_HEADER = 'x-pod-responder-timestamp';
const ATTEMPTS = 3;
const TIMEOUT_MS = 5000;

export function createNotifyActivities(targets: NotifierTarget[], links: { uiUrl: string; namespace: string }) {
  return {
    async notify(n: Notification): Promise<NotifyReport> {
      const ui = `${links.uiUrl}/namespaces/${encodeURIComponent(links.namespace)}/workflows/${encodeURIComponent(n.incidentId)}`;
      const commands =
        n.event === 'awaiting-approval' && n.proposal
          ? [
              `pod-responder approve '${n.incidentId}' --proposal ${n.proposal.id} --by <you> [--reason <why>]`,
              `pod-responder deny '${n.incidentId}' --proposal ${n.proposal.id} --by <you> --reason <why>`,
            ]
          : n.event === 'acted' && n.outcome === 'workload-suspended'
            ? [`pod-responder restore '${n.incidentId}' --by <you> --reason <why>`]
            : [];
      const report: NotifyReport = { delivered: [], failed: [] };
      await Promise.all(
        targets
          .filter((t) => !t.events || t.events.includes(n.event))
          .map(async (t) => {
            const body =
              t.kind === 'slack'
                ? slackBody(n, ui, commands)
                : JSON.stringify({ ...n, ui, commands, sentAt: new Date().toISOString() });
            const error = await deliver(t, body);
            if (error) report.failed.push({ target: t.name, error });
            else report.delivered.push(t.name);
          }),
      );
      return report;
    },
  };
}

/** Null once the target answered 2xx; else the last error, after ATTEMPTS tries. */
async function deliver(t: NotifierTarget, body: string): Promise<string | null> {
  let last = '';
  for (let attempt = 1; attempt <= ATTEMPTS; attempt++) {
    try {
      const headers: Record<string, string> = { 'content-type': 'application/json' };
      if (t.kind === 'webhook' && t.secret) {
        const ts = String(Math.floor(Date.now() / 1000));
        headers[TIMESTAMP_HEADER] = ts;
        headers[SIGNATURE_HEADER] = signNotification(t.secret, ts, body);
      }
      const res = await fetch(t.url, { method: 'POST', headers, body, signal: AbortSignal.timeout(TIMEOUT_MS) });
      await res.arrayBuffer();
      if (res.ok) return null;
      last = `HTTP ${res.status}`;
      if (res.status < 500 && res.status !== 429) break; // the target refuses this body: retrying will not help
    } catch (err) {
      last = (err as Error & { cause?: Error }).cause?.message ?? (err as Error).message;
    }
    if (attempt < ATTEMPTS) await new Promise((r) => setTimeout(r, 500 * 2 ** (attempt - 1)));
  }
  return /^HTTP 4(?!29)/.test(last) ? `${last} (not retried)` : `${last} (after ${ATTEMPTS} attempts)`;
}

/** `sha256=<hex HMAC-SHA256 of "<timestamp>.<body>">`: the timestamp is signed so an old message cannot be replayed as new. */
export function signNotification(secret: string, timestamp: string, body: string): string {
  return `sha256=${createHmac('sha256', secret).update(`${timestamp}.${body}`).digest('hex')}`;
}

function slackBody(n: Notification, ui: string, commands: string[]): string {
  const lines = [
    `*pod-responder* ${n.summary}`,
    `${n.incidentId}${n.outcome ? ` - outcome: ${n.outcome}` : ''}`,
    ...(n.problem ? [`Problem: ${n.problem}`] : []),
    ...commands.map((c) => `\`${c}\``),
    `<${ui}|Open in Temporal UI>`,
  ];
  return JSON.stringify({ text: lines.join('\n') });
}
