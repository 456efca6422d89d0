/**
 * The alert forwarder: vendor alerts in over HTTP, incidents out through Temporal. An alert is
 * answered 202 only after Temporal accepted it; anything else is an exact 4xx (the sender's
 * problem, nothing started), a 429 for alerts that would start incidents faster than the source's
 * rate, or a 503 with Retry-After (ours, safe to resend: accepted alerts deduplicate). Repeats about
 * an incident already running are batched into few signals and never rate-limited.
 */
import Fastify, { LogController, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import sjson from 'secure-json-parse';
import { RAW_EXCERPT_CHARS, withRawExcerpt, type PodAlert } from '../../domain/alert.js';
import { route } from '../../domain/routing.js';
import { normalizeBody, type Normalized, type SourceName } from '../../domain/sources/index.js';
import { InputError } from '../../domain/validation-errors.js';
import type { Config } from '../../worker/config.js';
import { incidentWorkflowId } from '../../workflows/ids.js';
import { workflowUiUrl, type StartedIncident } from '../incidents.js';
import { AcceptedAlerts } from './accepted-alerts.js';
import { authenticate, isEnabled } from './auth.js';
import { IncidentBatcher } from './incident-batcher.js';
import { createMetrics, type Metrics } from './metrics.js';
import { TokenBucket } from './rate-limit.js';
import { IncidentSaturated } from './temporal-gateway.js';
import { RecentIncidents } from './recent-incidents.js';

/** What the forwarder needs from Temporal (TemporalGateway in production). */
export interface AlertSink {
  /** Delivers alerts about one pod in one signal; rejects with an error whose message says why Temporal did not accept them. */
  submit(alerts: PodAlert[]): Promise<StartedIncident>;
  ready(): Promise<boolean>;
  close(): Promise<void>;
}

export interface ForwarderOptions {
  config: Config;
  sink: AlertSink;
  /** Where JSON log lines go (default stdout). */
  logStream?: { write(line: string): void };
}

export interface Forwarder {
  app: FastifyInstance;
  metrics: Metrics;
  /** Starts listening on the configured host and port; returns the base URL. */
  listen(): Promise<string>;
  /** Stops taking requests, finishes those in flight, then closes the Temporal connection. */
  close(): Promise<void>;
}

export type AlertOutcome =
  | { alertId: string; outcome: 'accepted' | 'duplicate'; workflowId: string; runId: string; ui: string; route: string }
  | { alertId: string; outcome: 'ignored'; reason: string; route?: string }
  | { alertId: string; outcome: 'rate-limited'; workflowId: string; retryAfterSeconds: number }
  | { alertId: string; outcome: 'saturated'; workflowId: string; reason: string }
  | { alertId: string; outcome: 'failed'; workflowId: string; error: string };

const ENDPOINTS: Record<string, SourceName> = {
  '/v1/alerts': 'normalized',
  '/v1/alerts/xdr': 'xdr',
  '/v1/alerts/falco': 'falco',
  '/v1/alerts/guardduty': 'guardduty',
};

/** Incidents remembered as running (for the rate limit): far more than any cluster has pods under attack. */
const KNOWN_INCIDENTS = 50_000;

/** Attacker-chosen strings are JSON-escaped by the logger; this keeps them short as well. */
const clip = (s: string, max = 200): string => (s.length > max ? `${s.slice(0, max)}…` : s);

class HttpError extends Error {
  constructor(
    readonly statusCode: number,
    message: string,
    readonly details?: string[],
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }
}

export function createForwarder({ config, sink, logStream }: ForwarderOptions): Forwarder {
  const cfg = config.forwarder;
  const metrics = createMetrics();
  const buckets = Object.fromEntries(
    Object.entries(cfg.sources).map(([s, c]) => [s, new TokenBucket(c.ratePerSecond, c.burst)]),
  ) as Record<SourceName, TokenBucket>;
  const accepted = new AcceptedAlerts<StartedIncident>(cfg.dedupCacheSize);
  const known = new RecentIncidents(KNOWN_INCIDENTS, cfg.knownIncidentSeconds * 1000);
  // respondToAlerts keeps `raw` (an excerpt) on a few alerts of a batch only: budget for those, count the rest without it.
  const rawBudget = (config.policy.keepRecentAlerts + 1) * (RAW_EXCERPT_CHARS + 64);
  const batcher = new IncidentBatcher((alerts) => sink.submit(alerts), {
    intervalMs: cfg.batchIntervalMs,
    maxAlerts: cfg.batchMaxAlerts,
    maxBytes: Math.max(cfg.batchMaxBytes - rawBudget, 8 * 1024),
    sizeOf: (a) => Buffer.byteLength(JSON.stringify({ ...a, raw: undefined })),
  });
  batcher.onSent = (n) => {
    metrics.signals.inc();
    metrics.signalAlerts.observe(n);
  };

  const app = Fastify({
    // Same line shape as the worker's logs: {time, level, msg, ...fields}.
    logger: {
      level: config.logLevel.toLowerCase(),
      base: { service: 'forwarder' },
      timestamp: () => `,"time":"${new Date().toISOString()}"`,
      formatters: { level: (label) => ({ level: label.toUpperCase() }) },
      ...(logStream ? { stream: logStream } : {}),
    },
    // One line per request, written in onResponse with the outcome, instead of Fastify's two.
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: cfg.bodyLimitBytes,
    requestTimeout: 30_000,
    return503OnClosing: true,
    forceCloseConnections: 'idle',
  });

  // Bodies stay raw bytes until the sender is authenticated: the HMAC covers the exact bytes, and
  // an unauthenticated sender gets no JSON parser (nor its error messages) to probe.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('application/json', { parseAs: 'buffer' }, (_req, body, done) => done(null, body));

  app.setErrorHandler((err: Error & { statusCode?: number }, req, reply) => {
    const status = err.statusCode && err.statusCode >= 400 ? err.statusCode : 500;
    if (err instanceof HttpError) {
      for (const [k, v] of Object.entries(err.headers)) void reply.header(k, v);
      return reply.code(status).send({ error: err.message, ...(err.details ? { details: err.details } : {}) });
    }
    if (status >= 500) {
      req.log.error({ err }, 'request failed');
      return reply.code(500).send({ error: 'internal error' });
    }
    // Fastify's own 4xx (body too large, unsupported media type, bad content length): its message, no stack.
    return reply.code(status).send({ error: err.message });
  });
  app.setNotFoundHandler((_req, reply) => reply.code(404).send({ error: 'not found' }));

  app.addHook('onResponse', async (req, reply) => {
    const source = ENDPOINTS[req.routeOptions.url ?? ''];
    const status = reply.statusCode;
    if (source) {
      metrics.latency.observe({ source, status: String(status) }, reply.elapsedTime / 1000);
      if (status >= 400 && status < 500) metrics.rejected.inc({ source, status: String(status) });
    }
    const line = { method: req.method, url: clip(req.url), status, ms: Math.round(reply.elapsedTime * 10) / 10 };
    if (status >= 500) req.log.warn(line, 'request');
    else req.log.info(line, 'request');
  });

  // Answers finished while draining close their connection, so keep-alive sockets cannot hold shutdown open.
  let closing = false;
  app.addHook('onSend', async (_req, reply) => {
    if (closing) void reply.header('connection', 'close');
  });

  app.get('/healthz', async () => ({ status: 'ok' }));
  app.get('/readyz', async (_req, reply) => {
    if (await sink.ready()) return { status: 'ready' };
    return reply.code(503).header('retry-after', String(cfg.retryAfterSeconds)).send({ status: 'not ready', reason: `Temporal at ${config.temporal.address} is unreachable` });
  });
  app.get('/metrics', async (_req, reply) => reply.type(metrics.registry.contentType).send(await metrics.registry.metrics()));

  for (const [url, source] of Object.entries(ENDPOINTS)) {
    app.post(url, (req, reply) => handleAlerts(source, req, reply));
  }

  async function handleAlerts(source: SourceName, req: FastifyRequest, reply: FastifyReply) {
    const creds = cfg.sources[source];
    if (!isEnabled(creds)) throw new HttpError(404, `source "${source}" is not enabled on this forwarder`);
    const raw = req.body;
    if (!Buffer.isBuffer(raw)) throw new HttpError(415, 'body must be JSON with Content-Type: application/json');
    if (!authenticate(creds, req.headers, raw)) {
      throw new HttpError(401, 'missing or invalid credentials', undefined, { 'www-authenticate': 'Bearer realm="pod-responder"' });
    }
    let body: unknown;
    try {
      body = sjson.parse(raw, undefined, { protoAction: 'error', constructorAction: 'error' });
    } catch (err) {
      throw new HttpError(400, 'invalid JSON', [`(root): ${(err as Error).message}`]);
    }
    let items: Normalized[];
    try {
      items = normalizeBody(source, body, req.query as Record<string, unknown>, cfg.maxBatch);
    } catch (err) {
      if (err instanceof InputError) throw new HttpError(400, `invalid ${err.what}`, err.errors);
      throw err;
    }
    metrics.received.inc({ source }, items.length);
    const results = await Promise.all(items.map((item) => deliver(source, item, req)));
    const count = (o: AlertOutcome['outcome']) => results.filter((r) => r.outcome === o).length;
    const summary = { accepted: count('accepted'), duplicates: count('duplicate'), ignored: count('ignored'), saturated: count('saturated'), rateLimited: count('rate-limited'), failed: count('failed'), results };
    if (summary.failed) {
      return reply.code(503).header('retry-after', String(cfg.retryAfterSeconds)).send({ error: 'Temporal did not accept every alert; resend the request (accepted alerts are deduplicated)', ...summary });
    }
    if (summary.rateLimited) {
      const wait = Math.max(...results.map((r) => (r.outcome === 'rate-limited' ? r.retryAfterSeconds : 0)));
      return reply.code(429).header('retry-after', String(wait)).send({ error: `rate limit for new incidents from source "${source}" exceeded; resend the request (accepted alerts are deduplicated)`, ...summary });
    }
    return reply.code(summary.ignored === results.length ? 200 : 202).send(summary);
  }

  async function deliver(source: SourceName, item: Normalized, req: FastifyRequest): Promise<AlertOutcome> {
    const log = { source, alertId: clip(item.kind === 'alert' ? item.alert.alertId : item.alertId), type: clip(item.type) };
    if (item.kind === 'not-actionable') {
      metrics.ignored.inc({ source });
      req.log.info({ ...log, outcome: 'ignored', reason: item.reason }, 'alert');
      return { alertId: item.alertId, outcome: 'ignored', reason: item.reason };
    }
    const { alert } = item;
    const decision = route(item, cfg.routes);
    if (decision.action === 'ignore') {
      metrics.ignored.inc({ source });
      req.log.info({ ...log, outcome: 'ignored', reason: decision.reason }, 'alert');
      return { alertId: alert.alertId, outcome: 'ignored', reason: decision.reason, ...(decision.route ? { route: decision.route } : {}) };
    }
    const workflowId = incidentWorkflowId(alert);
    const key = `${workflowId}\u0000${alert.alertId}`;
    const earlier = accepted.get(key);
    // Starting an incident is what costs; a repeat for one this forwarder delivered to lately does not.
    if (!earlier && !known.has(workflowId)) {
      const wait = buckets[source].take(1);
      if (wait) {
        metrics.rateLimited.inc({ source });
        req.log.info({ ...log, outcome: 'rate-limited', workflowId: clip(workflowId, 400) }, 'alert');
        return { alertId: alert.alertId, outcome: 'rate-limited', workflowId, retryAfterSeconds: wait };
      }
    }
    known.touch(workflowId); // from now on, its repeats are batched rather than limited
    try {
      const { value, shared } = earlier ? { value: earlier, shared: true } : await accepted.once(key, () => batcher.submit(workflowId, withRawExcerpt(alert)));
      (shared ? metrics.deduplicated : metrics.accepted).inc({ source });
      const outcome = shared ? 'duplicate' : 'accepted';
      req.log.info({ ...log, outcome, workflowId: clip(workflowId, 400), route: decision.route }, 'alert');
      return { alertId: alert.alertId, outcome, workflowId, runId: value.runId, ui: workflowUiUrl(config, workflowId), route: decision.route };
    } catch (err) {
      if (err instanceof IncidentSaturated) {
        // Not a reason to make the sender retry: its alert is about an incident that is already responding.
        metrics.saturated.inc({ source });
        const reason = `incident ${clip(workflowId, 400)} takes no more alerts until a worker runs it (${clip(err.message, 200)}); it is already responding to this pod`;
        req.log.warn({ ...log, outcome: 'saturated', workflowId: clip(workflowId, 400), reason }, 'alert');
        return { alertId: alert.alertId, outcome: 'saturated', workflowId, reason };
      }
      metrics.failed.inc({ source });
      const reason = clip((err as Error).message, 300);
      req.log.warn({ ...log, outcome: 'failed', workflowId: clip(workflowId, 400), reason }, 'alert');
      return { alertId: alert.alertId, outcome: 'failed', workflowId, error: `Temporal did not accept the alert: ${reason}` };
    }
  }

  return {
    app,
    metrics,
    async listen() {
      // A burst of new connections (a sender starting, a relay reconnecting) must not overflow the accept queue.
      return app.listen({ host: cfg.host, port: cfg.port, backlog: 2048 });
    },
    async close() {
      closing = true;
      await app.close();
      batcher.close();
      await sink.close();
    },
  };
}
