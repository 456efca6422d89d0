/**
 * What happens to one authenticated, validated alert, whichever way it came (HTTP or SQS): routing,
 * deduplication, the rate limit for new incidents, batching into signals, and, when Temporal does not
 * take it in time, the durable spool. One place, so both intakes route, count and answer alike.
 */
import { RAW_EXCERPT_CHARS, withRawExcerpt, type PodAlert } from '../domain/alert.js';
import { route, type PolicyMode } from '../domain/routing.js';
import { SOURCES, type Normalized, type SourceName } from '../domain/sources/index.js';
import type { Config } from '../config/config.js';
import { incidentWorkflowId } from '../workflows/ids.js';
import { workflowUiUrl, type StartedIncident } from '../temporal-client/incidents.js';
import { AcceptedAlerts } from './accepted-alerts.js';
import { IncidentBatcher } from './incident-batcher.js';
import type { Metrics } from './metrics.js';
import { credentialsOf, DEFAULT_CREDENTIAL, SenderLimits, type Sender } from './credentials.js';
import { RecentIncidents } from './recent-incidents.js';
import { SpoolDeliverer } from './spool-deliverer.js';
import { SpoolWriteError, type Spool, type SpoolEntry, type SpoolResult } from './spool.js';
import { IncidentSaturated } from './temporal-gateway.js';

/** What the forwarder needs from Temporal (TemporalGateway in production). */
export interface AlertSink {
  /**
   * Delivers alerts about one pod in one signal; rejects with an error whose message says why Temporal did not accept them.
   * `mode`: the routing rule's, for the incident if this starts it.
   */
  submit(alerts: PodAlert[], mode?: PolicyMode): Promise<StartedIncident>;
  ready(): Promise<boolean>;
  /** True while Temporal is known to be unreachable: alerts go to the spool without trying. */
  down?(): boolean;
  close(): Promise<void>;
}

export type AlertOutcome =
  | { alertId: string; outcome: 'accepted' | 'duplicate'; workflowId: string; runId: string; ui: string; route: string }
  | { alertId: string; outcome: 'queued'; workflowId: string; reason: string; route: string }
  | { alertId: string; outcome: 'ignored'; reason: string; route?: string }
  | { alertId: string; outcome: 'saturated'; workflowId: string; reason: string }
  | { alertId: string; outcome: 'rate-limited'; workflowId: string; retryAfterSeconds: number }
  | { alertId: string; outcome: 'failed'; workflowId: string; error: string; spool?: 'full' | 'write-failed' };

export interface AlertLog {
  info(fields: object, msg: string): void;
  warn(fields: object, msg: string): void;
  error(fields: object, msg: string): void;
}

/** Incidents remembered as running (for the rate limit): far more than any cluster has pods under attack. */
const KNOWN_INCIDENTS = 50_000;

/** Attacker-chosen strings are JSON-escaped by the logger; this keeps them short as well. */
export const clip = (s: string, max = 200): string => (s.length > max ? `${s.slice(0, max)}…` : s);

export class AlertPipeline {
  private readonly cfg: Config['forwarder'];
  private readonly limits = new SenderLimits();
  /** Senders by source and name, for the spool's entries (which record the name). */
  private readonly senders = new Map<string, Sender>();
  private readonly accepted: AcceptedAlerts<StartedIncident>;
  private readonly known: RecentIncidents;
  private readonly batcher: IncidentBatcher<StartedIncident>;
  private readonly deliverer: SpoolDeliverer | null;
  /** The routing rule's mode of an alert on its way to a signal (by identity: the batcher passes the same objects). */
  private readonly modeOf = new WeakMap<PodAlert, PolicyMode>();

  constructor(
    private readonly config: Config,
    private readonly sink: AlertSink,
    private readonly metrics: Metrics,
    readonly spool: Spool | null,
    private readonly log: AlertLog,
  ) {
    const cfg = (this.cfg = config.forwarder);
    for (const source of SOURCES) for (const c of credentialsOf(source, cfg.sources[source])) this.register(c);
    this.accepted = new AcceptedAlerts(cfg.dedupCacheSize);
    this.known = new RecentIncidents(KNOWN_INCIDENTS, cfg.knownIncidentSeconds * 1000);
    // respondToAlerts keeps `raw` (an excerpt) on a few alerts of a batch only: budget for those, count the rest without it.
    const rawBudget = (config.policy.keepRecentAlerts + 1) * (RAW_EXCERPT_CHARS + 64);
    const maxBytes = Math.max(cfg.batchMaxBytes - rawBudget, 8 * 1024);
    this.batcher = new IncidentBatcher((alerts) => sink.submit(alerts, this.modeOf.get(alerts[0]!)), {
      intervalMs: cfg.batchIntervalMs,
      maxAlerts: cfg.batchMaxAlerts,
      maxBytes,
      sizeOf: (a) => Buffer.byteLength(JSON.stringify({ ...a, raw: undefined })),
    });
    this.batcher.onSent = (n) => {
      metrics.signals.inc();
      metrics.signalAlerts.observe(n);
    };
    this.deliverer = spool
      ? new SpoolDeliverer(
          spool,
          {
            send: (alerts, mode) => sink.submit(alerts, mode),
            mayStart: (incident, first) =>
              this.known.has(incident) || this.limits.take(this.senderOf(first), first.alert.cluster.name) === 0,
            ready: () => sink.ready(),
            delivered: (entries, value) => this.delivered(entries, value as StartedIncident),
            dropped: (entries, reason) => {
              metrics.spoolDropped.inc({ reason: 'saturated' }, entries.length);
              log.warn(
                { incident: clip(entries[0]!.incident, 400), alerts: entries.length, reason: clip(reason, 300) },
                'spooled alerts dropped',
              );
            },
            // Once per batch, at its first failure: an outage of hours must not write a line per retry.
            failed: (entries, error) => {
              if (entries[0]!.attempts === 0)
                log.warn(
                  { incident: clip(entries[0]!.incident, 400), alerts: entries.length, error: clip(error, 300) },
                  'spool delivery failed; will retry',
                );
            },
          },
          { concurrency: 8, maxAlerts: cfg.batchMaxAlerts, maxBytes, minBackoffMs: 500, maxBackoffMs: 30_000 },
        )
      : null;
  }

  start(): void {
    this.deliverer?.start();
  }

  /**
   * Delivers what the spool holds for up to `drainMs`, while Temporal is `reachable` (a replica scaled away
   * takes nothing with it while Temporal takes alerts), then stops and closes the spool. What is left stays in the file for the next
   * start on the same volume, and is said in a log line.
   */
  async close(drainMs = 0, reachable: () => boolean = () => true): Promise<void> {
    this.batcher.close();
    const spool = this.spool;
    if (this.deliverer && spool) {
      const start = Date.now();
      const before = spool.depth;
      if (before && drainMs > 0) await this.deliverer.drain(start + drainMs, reachable);
      await this.deliverer.stop();
      const left = spool.depth;
      if (left) {
        this.log.warn(
          { file: spool.file, left, delivered: before - left, oldestSeconds: spool.oldestAgeSeconds(), drainMs },
          `stopping with ${left} alerts in the spool: they are delivered when a forwarder starts on this spool file again (the same replica and volume)`,
        );
      } else if (before) this.log.info({ delivered: before, ms: Date.now() - start }, 'spool drained before stopping');
    }
    spool?.close();
  }

  /**
   * Routes, deduplicates and delivers one alert. `queue`: an alert Temporal does not take now is spooled
   * (HTTP); without it, it fails and its sender keeps it (SQS: the message stays in the queue).
   */
  async deliver(sender: Sender, item: Normalized, queue: boolean): Promise<AlertOutcome> {
    const m = this.metrics;
    const source = sender.source;
    const logFields = {
      source,
      sender: clip(sender.name),
      alertId: clip(item.kind === 'alert' ? item.alert.alertId : item.alertId),
      type: clip(item.type),
    };
    if (item.kind === 'not-actionable') {
      m.ignored.inc({ source });
      this.log.info({ ...logFields, outcome: 'ignored', reason: item.reason }, 'alert');
      return { alertId: item.alertId, outcome: 'ignored', reason: item.reason };
    }
    const alert = withRawExcerpt(item.alert);
    const decision = route(item, this.cfg.routes);
    if (decision.action === 'ignore') {
      m.ignored.inc({ source });
      this.log.info({ ...logFields, outcome: 'ignored', reason: decision.reason }, 'alert');
      return {
        alertId: alert.alertId,
        outcome: 'ignored',
        reason: decision.reason,
        ...(decision.route ? { route: decision.route } : {}),
      };
    }
    const workflowId = incidentWorkflowId(alert);
    const fields = { ...logFields, workflowId: clip(workflowId, 400), route: decision.route };
    const key = `${workflowId}\u0000${alert.alertId}`;
    const earlier = this.accepted.get(key);
    if (earlier) return this.answered(source, alert, workflowId, decision.route, earlier, true, fields);

    const toSpool = async (reason: string): Promise<AlertOutcome> => {
      let r: SpoolResult;
      try {
        r = await this.spool!.add({
          incident: workflowId,
          alertId: alert.alertId,
          source,
          sender: sender.name,
          mode: decision.mode ?? null,
          alert,
        });
      } catch (err) {
        if (!(err instanceof SpoolWriteError)) throw err;
        m.failed.inc({ source });
        this.log.error(
          {
            ...fields,
            outcome: 'failed',
            reason: 'spool write failed',
            error: clip(err.message, 300),
            file: this.spool!.file,
          },
          'alert',
        );
        return {
          alertId: alert.alertId,
          outcome: 'failed',
          workflowId,
          error: `${reason}, and the spool could not write it (${clip(err.message, 200)})`,
          spool: 'write-failed',
        };
      }
      if (r === 'full') {
        m.failed.inc({ source });
        this.log.warn({ ...fields, outcome: 'failed', reason: 'spool full' }, 'alert');
        const mib = (n: number) => `${Math.round((n / 1048576) * 10) / 10} MiB`;
        return {
          alertId: alert.alertId,
          outcome: 'failed',
          workflowId,
          error: `${reason}, and the spool is full (${this.spool!.depth} alerts, ${mib(this.spool!.bytes)})`,
          spool: 'full',
        };
      }
      this.deliverer?.kick();
      (r === 'queued' ? m.queued : m.deduplicated).inc({ source });
      this.log.info({ ...fields, outcome: r === 'queued' ? 'queued' : 'duplicate', reason }, 'alert');
      return { alertId: alert.alertId, outcome: 'queued', workflowId, reason, route: decision.route };
    };
    const spooling = queue && this.spool;
    // Behind alerts of the same incident already waiting (its order), or while Temporal is known down.
    if (spooling && this.spool.has(workflowId)) return toSpool('alerts for this incident are waiting in the spool');
    if (spooling && this.sink.down?.()) return toSpool('Temporal is unreachable');

    // Starting an incident is what costs; a repeat for one this forwarder delivered to lately does not.
    if (!this.known.has(workflowId)) {
      const wait = this.limits.take(sender, alert.cluster.name);
      if (wait) {
        if (spooling && sender.overRate === 'spool')
          return toSpool(
            `over the rate limit for new incidents from ${source} credential "${sender.name}" in cluster ${alert.cluster.name}`,
          );
        m.rateLimited.inc({ source });
        this.log.info({ ...fields, outcome: 'rate-limited' }, 'alert');
        return { alertId: alert.alertId, outcome: 'rate-limited', workflowId, retryAfterSeconds: wait };
      }
    }
    this.known.touch(workflowId); // from now on, its repeats are batched rather than limited
    if (decision.mode) this.modeOf.set(alert, decision.mode);
    try {
      const { value, shared } = await this.accepted.once(key, () => this.batcher.submit(workflowId, alert));
      return this.answered(source, alert, workflowId, decision.route, value, shared, fields);
    } catch (err) {
      if (err instanceof IncidentSaturated) {
        // Not a reason to make the sender retry: its alert is about an incident that is already responding.
        m.saturated.inc({ source });
        const reason = `incident ${clip(workflowId, 400)} takes no more alerts until a worker runs it (${clip(err.message, 200)}); it is already responding to this pod`;
        this.log.warn({ ...fields, outcome: 'saturated', reason }, 'alert');
        return { alertId: alert.alertId, outcome: 'saturated', workflowId, reason };
      }
      const reason = clip((err as Error).message, 300);
      if (spooling) return toSpool(`Temporal did not accept it: ${reason}`);
      m.failed.inc({ source });
      this.log.warn({ ...fields, outcome: 'failed', reason }, 'alert');
      return {
        alertId: alert.alertId,
        outcome: 'failed',
        workflowId,
        error: `Temporal did not accept the alert: ${reason}`,
      };
    }
  }

  /** Makes a sender known, so spooled alerts it delivered wait on its own limit. */
  register(sender: Sender): void {
    this.senders.set(`${sender.source}\u0000${sender.name}`, sender);
  }

  /** The sender of a spooled alert; one that is no longer configured (or not recorded) waits on its source's default limit. */
  private senderOf(entry: SpoolEntry): Sender {
    const source = entry.source as SourceName;
    const known = this.senders.get(`${source}\u0000${entry.sender ?? DEFAULT_CREDENTIAL}`);
    if (known) return known;
    const c = this.cfg.sources[source] ?? this.cfg.sources.normalized;
    return { source, name: DEFAULT_CREDENTIAL, ratePerSecond: c.ratePerSecond, burst: c.burst, overRate: c.overRate };
  }

  private answered(
    source: SourceName,
    alert: PodAlert,
    workflowId: string,
    routeName: string,
    value: StartedIncident,
    duplicate: boolean,
    fields: object,
  ): AlertOutcome {
    (duplicate ? this.metrics.deduplicated : this.metrics.accepted).inc({ source });
    const outcome = duplicate ? 'duplicate' : 'accepted';
    this.log.info({ ...fields, outcome }, 'alert');
    return {
      alertId: alert.alertId,
      outcome,
      workflowId,
      runId: value.runId,
      ui: workflowUiUrl(this.config, workflowId),
      route: routeName,
    };
  }

  /** Spooled alerts Temporal has taken: later resends are answered from memory. */
  private delivered(entries: SpoolEntry[], value: StartedIncident): void {
    this.known.touch(entries[0]!.incident);
    for (const e of entries) this.accepted.remember(`${e.incident}\u0000${e.alertId}`, value);
    this.metrics.spoolDelivered.inc(entries.length);
  }
}
