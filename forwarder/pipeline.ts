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
import { ClosedIncidents, type ClosedRun } from './closed-incidents.js';
import { IncidentBatcher } from './incident-batcher.js';
import type { Metrics } from './metrics.js';
import { credentialsOf, DEFAULT_CREDENTIAL, SenderLimits, type Sender } from './credentials.js';
import { RecentIncidents } from './recent-incidents.js';
import { SpoolDeliverer } from './spool-deliverer.js';
import { SpoolWriteError, type Spool, type SpoolEntry, type SpoolResult } from './spool.js';
import { IncidentClosed, IncidentSaturated, type EagerStart } from './temporal-gateway.js';

/** What the forwarder needs from Temporal (TemporalGateway in production). */
export interface AlertSink {
  /**
   * Delivers alerts about one pod in one signal; rejects with an error whose message says why Temporal did not accept them.
   * `mode`: the routing rule's, for the incident if this starts it. `reuseClosed` false: when the incident's last run
   * is closed, reject with IncidentClosed rather than start a new run (a running one is signalled either way).
   */
  submit(alerts: PodAlert[], mode?: PolicyMode, reuseClosed?: boolean): Promise<StartedIncident>;
  /** How the incident's latest run closed; null while it runs (or if it never existed). Without it, closed runs are not looked at. */
  lastRun?(workflowId: string): Promise<ClosedRun | null>;
  ready(): Promise<boolean>;
  /** True while Temporal is known to be unreachable: alerts go to the spool without trying. */
  down?(): boolean;
  close(): Promise<void>;
  /** Set by the pipeline: a sink that starts incidents eagerly (all-in-one) reports each attempt here. */
  onEagerStart?: (result: EagerStart) => void;
}

export type AlertOutcome =
  | { alertId: string; outcome: 'accepted' | 'duplicate'; workflowId: string; runId: string; ui: string; route: string }
  | { alertId: string; outcome: 'closed'; workflowId: string; reason: string; ui: string; route: string }
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

/** Incidents remembered as running (for the rate limit), or as closed: far more than any cluster has pods under attack. */
const KNOWN_INCIDENTS = 50_000;
/**
 * Internal limits, not settings (issue 27: nobody deploying this needs to tune them; each was a setting until then).
 * Alert IDs remembered as accepted, so a resend is answered `duplicate` without a Temporal round trip: about 10 MiB.
 */
const DEDUP_CACHE_SIZE = 100_000;
/** After an alert was delivered to an incident, its repeats skip the rate limit this long: a flood delays nothing else. */
const KNOWN_INCIDENT_SECONDS = 600;
/**
 * Most alerts, and bytes of alert JSON, in one signal: inside Temporal's 2 MiB payload limit. An incident takes a
 * signal per `batchMaxIntervalMs` (2 s) in a burst, so 5,000 alerts let one pod's flood run at 2,500 alerts a
 * second into Temporal. The bytes are counted as the signal packs them (domain/alert-batch.ts): what always differs
 * between alerts of one pod. A flood's repeats pack to about 95 bytes each (5,000: about 470 KiB, under the 512 KiB
 * at which Temporal warns); alerts that have nothing alike but their pod fill the 1 MiB first.
 */
export const BATCH_MAX_ALERTS = 5000;
export const BATCH_MAX_BYTES = 1024 * 1024;

/**
 * An alert's bytes in a packed signal, at most: its JSON without `raw` (kept on a few only) and without the pod's
 * cluster, namespace and name, which every alert of an incident has alike.
 */
export const packedSizeOf = (a: PodAlert): number =>
  Buffer.byteLength(
    JSON.stringify({ ...a, raw: undefined, cluster: undefined, namespace: undefined, podName: undefined }),
  );

/** What one signal's submission came to: the incident that took it, and the alerts about a closed run's gone pod. */
interface Delivered {
  /** null when every alert was about the gone pod: nothing was sent. */
  started: StartedIncident | null;
  closed: ClosedRun | null;
  /** These alerts were not sent: they are about `closed`'s gone pod. */
  aboutGone: Set<PodAlert>;
}

/** What became of one alert: Temporal took it, or its incident had closed with its pod gone. */
type AlertDelivery = { started: StartedIncident; closed?: undefined } | { closed: ClosedRun; started?: undefined };

/** Why a repeat in a burst is answered `queued`: the incident had a signal moments ago, and another follows shortly. */
const BATCHED = 'batched: its incident had a signal moments ago; this alert goes with the next one';

/** Attacker-chosen strings are JSON-escaped by the logger; this keeps them short as well. */
export const clip = (s: string, max = 200): string => (s.length > max ? `${s.slice(0, max)}…` : s);

export class AlertPipeline {
  private readonly cfg: Config['forwarder'];
  private readonly limits = new SenderLimits();
  /** Senders by source and name, for the spool's entries (which record the name). */
  private readonly senders = new Map<string, Sender>();
  private readonly accepted: AcceptedAlerts<AlertDelivery>;
  private readonly known: RecentIncidents;
  private readonly closed: ClosedIncidents;
  private readonly batcher: IncidentBatcher<Delivered>;
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
    this.accepted = new AcceptedAlerts(DEDUP_CACHE_SIZE);
    this.known = new RecentIncidents(KNOWN_INCIDENTS, KNOWN_INCIDENT_SECONDS * 1000);
    this.closed = new ClosedIncidents(KNOWN_INCIDENTS, cfg.closedIncidentSeconds * 1000);
    // respondToAlerts keeps `raw` (an excerpt) on a few alerts of a batch only: budget for those, count the rest without it.
    const rawBudget = (config.policy.keepRecentAlerts + 1) * (RAW_EXCERPT_CHARS + 64);
    const maxBytes = Math.max(BATCH_MAX_BYTES - rawBudget, 8 * 1024);
    this.batcher = new IncidentBatcher((alerts) => this.sendToIncident(alerts, this.modeOf.get(alerts[0]!)), {
      intervalMs: cfg.batchIntervalMs,
      maxIntervalMs: cfg.batchMaxIntervalMs,
      maxAlerts: BATCH_MAX_ALERTS,
      maxBytes,
      sizeOf: packedSizeOf,
    });
    sink.onEagerStart = (result) => metrics.eagerStarts.inc({ result });
    this.batcher.onSent = (n) => {
      metrics.signals.inc();
      metrics.signalAlerts.observe(n);
    };
    this.deliverer = spool
      ? new SpoolDeliverer(
          spool,
          {
            // On the incident's lane, so that spooled and direct alerts share its pacing.
            send: (alerts, mode) => {
              if (mode) this.modeOf.set(alerts[0]!, mode);
              return this.batcher.sendNow(incidentWorkflowId(alerts[0]!), alerts);
            },
            dueIn: (incident) => this.batcher.dueIn(incident),
            mayStart: (incident, first) =>
              this.known.has(incident) || this.limits.take(this.senderOf(first), first.alert.cluster.name) === 0,
            ready: () => sink.ready(),
            delivered: (entries, value) => this.delivered(entries, value as Delivered),
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
          {
            concurrency: 8,
            maxAlerts: BATCH_MAX_ALERTS,
            maxBytes,
            sizeOf: packedSizeOf,
            minBackoffMs: 500,
            maxBackoffMs: 30_000,
          },
        )
      : null;
    this.batcher.onAnswered = () => this.deliverer?.kick();
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
    // About a pod its incident removed, and closed lately: nothing to start or signal (a copy included).
    const gone = this.closed.goneFor(alert, workflowId);
    if (gone) return this.answeredClosed(source, alert, workflowId, decision.route, gone, fields);
    const key = `${workflowId}\u0000${alert.alertId}`;
    const earlier = this.accepted.get(key);
    if (earlier) return this.answered(source, alert, workflowId, decision.route, earlier, true, fields);

    const toSpool = async (reason: string, batched = false): Promise<AlertOutcome> => {
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
      if (r === 'queued' && batched) m.batched.inc({ source });
      this.log.info({ ...fields, outcome: r === 'queued' ? 'queued' : 'duplicate', reason }, 'alert');
      return { alertId: alert.alertId, outcome: 'queued', workflowId, reason, route: decision.route };
    };
    const spooling = queue && this.spool;
    // Behind alerts of the same incident already waiting (its order), or while Temporal is known down.
    if (spooling && this.spool.has(workflowId))
      return this.batcher.inBurst(workflowId)
        ? toSpool(BATCHED, true)
        : toSpool('alerts for this incident are waiting in the spool');
    if (spooling && this.sink.down?.()) return toSpool('Temporal is unreachable');
    // A repeat in a burst: on disk now, to its incident with the next signal (a copy in flight joins its own). Once a
    // burst began, no sender waits on Temporal, even when the lane's interval has lapsed: the deliverer sends what the
    // spool holds when the lane is due, so a storm's repeats are answered at the spool's pace, not Temporal's.
    if (spooling && this.batcher.inBurst(workflowId) && !this.accepted.inFlight(key)) return toSpool(BATCHED, true);

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
      const { value, shared } = await this.accepted.once(key, async () =>
        deliveryOf(alert, await this.batcher.submit(workflowId, alert)),
      );
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

  /**
   * One signal to the incident of these alerts (all about one pod), without starting a new run after a closed
   * one for the alerts about that run's gone pod: those are not sent. The first time a closed run is met, its
   * close event says how it ended; after that the forwarder knows (for `closedIncidentSeconds`).
   */
  private async sendToIncident(alerts: PodAlert[], mode?: PolicyMode): Promise<Delivered> {
    const workflowId = incidentWorkflowId(alerts[0]!);
    const lookAtClosed = this.closed.windowMs > 0 && this.sink.lastRun !== undefined;
    let closed = lookAtClosed ? this.closed.get(workflowId) : undefined;
    for (let attempt = 1; ; attempt++) {
      const aboutGone = new Set(closed ? alerts.filter((a) => this.closed.covers(closed!, a)) : []);
      const rest = aboutGone.size ? alerts.filter((a) => !aboutGone.has(a)) : alerts;
      if (!rest.length) return { started: null, closed: closed!, aboutGone };
      try {
        // Known closed (or not looking): a new run may start. Else Temporal says whether the last run closed.
        const started = await this.sink.submit(rest, mode, closed !== undefined || !lookAtClosed);
        if (closed) this.closed.forget(workflowId); // a run is current again
        return { started, closed: closed ?? null, aboutGone };
      } catch (err) {
        if (!(err instanceof IncidentClosed) || attempt > 1) throw err;
        // A null: a run started meanwhile (another forwarder); the next attempt signals it.
        closed = (await this.sink.lastRun!(workflowId)) ?? undefined;
        if (closed) this.closed.remember(closed);
      }
    }
  }

  private answeredClosed(
    source: SourceName,
    alert: PodAlert,
    workflowId: string,
    routeName: string,
    run: ClosedRun,
    fields: object,
  ): AlertOutcome {
    this.metrics.closed.inc({ source });
    const reason = `incident closed ${new Date(run.closedAt).toISOString()} (${run.gonePod!.why}); this alert is about that pod, so nothing was started`;
    this.log.info({ ...fields, outcome: 'closed', reason }, 'alert');
    return {
      alertId: alert.alertId,
      outcome: 'closed',
      workflowId,
      reason,
      ui: workflowUiUrl(this.config, workflowId),
      route: routeName,
    };
  }

  private answered(
    source: SourceName,
    alert: PodAlert,
    workflowId: string,
    routeName: string,
    delivery: AlertDelivery,
    duplicate: boolean,
    fields: object,
  ): AlertOutcome {
    if (delivery.closed) return this.answeredClosed(source, alert, workflowId, routeName, delivery.closed, fields);
    const value = delivery.started;
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

  /** Spooled alerts Temporal has taken (or found about a closed incident's gone pod): resends are answered from memory. */
  private delivered(entries: SpoolEntry[], value: Delivered): void {
    let closed = 0;
    for (const e of entries) {
      const delivery = deliveryOf(e.alert, value);
      if (delivery.closed) closed++;
      this.accepted.remember(`${e.incident}\u0000${e.alertId}`, delivery);
    }
    if (value.started) this.known.touch(entries[0]!.incident);
    this.metrics.spoolDelivered.inc(entries.length - closed);
    if (closed) this.metrics.spoolDropped.inc({ reason: 'incident-closed' }, closed);
  }
}

function deliveryOf(alert: PodAlert, d: Delivered): AlertDelivery {
  return d.aboutGone.has(alert) ? { closed: d.closed! } : { started: d.started! };
}
