/**
 * The alert forwarder: vendor alerts in over HTTP, incidents out through Temporal. An alert is
 * answered 202 once Temporal accepted it (`accepted`) or once it is on disk in the spool (`queued`),
 * to be delivered when Temporal takes it; anything else is an exact 4xx (the sender's problem,
 * nothing started) or, when even the spool cannot take it, a 503 with Retry-After. Repeats about an
 * incident already running are batched into few signals and never rate-limited.
 */
import Fastify, { LogController, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import sjson from 'secure-json-parse';
import { normalizeBody, type Normalized, type SourceName } from '../domain/sources/index.js';
import { InputError } from '../domain/validation-errors.js';
import type { Config } from '../config/config.js';
import { authenticateSender, credentialsOf, refusal, withBoundCluster, type Credential } from './credentials.js';
import { createMetrics, type Metrics } from './metrics.js';
import { AlertPipeline, clip, type AlertOutcome, type AlertSink } from './pipeline.js';
import type { Spool } from './spool.js';

export type { AlertOutcome, AlertSink } from './pipeline.js';

export interface ForwarderOptions {
  config: Config;
  sink: AlertSink;
  /** The durable spool (null: alerts Temporal does not take are answered 503). */
  spool?: Spool | null;
  /** Where JSON log lines go (default stdout). */
  logStream?: { write(line: string): void };
}

export interface Forwarder {
  app: FastifyInstance;
  metrics: Metrics;
  pipeline: AlertPipeline;
  /** Starts listening on the configured host and port, and delivering the spool; returns the base URL. */
  listen(): Promise<string>;
  /** Stops taking requests, finishes those in flight, stops the spool's deliverer, then closes the Temporal connection. */
  close(): Promise<void>;
}

const ENDPOINTS: Record<string, SourceName> = {
  '/v1/alerts': 'normalized',
  '/v1/alerts/xdr': 'xdr',
  '/v1/alerts/falco': 'falco',
  '/v1/alerts/guardduty': 'guardduty',
};

/** Why a request was refused, as the `reason` label of requests_rejected_total: a sender's misconfiguration shows. */
const REASONS: Record<number, string> = {
  400: 'invalid',
  401: 'unauthenticated',
  403: 'forbidden',
  404: 'source-disabled',
  413: 'too-large',
  415: 'not-json',
  429: 'rate-limited',
};

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

/**
 * Internal constants, not settings (issue 27: each was a setting nobody deploying this needed).
 * `Retry-After` of a 429 or 503: about how long an outage probe or a token bucket takes to change its answer.
 */
const RETRY_AFTER_SECONDS = 5;
/** An HMAC-signed request's timestamp must be this close to the forwarder's clock (else 401): replay protection. */
export const SIGNATURE_WINDOW_SECONDS = 300;
/**
 * On SIGTERM, how long the spool is still delivered before the forwarder stops (what is left stays in the file):
 * within the chart's terminationGracePeriodSeconds (30) with the requests in flight.
 */
const SPOOL_DRAIN_SECONDS = 15;

export function createForwarder({ config, sink, spool = null, logStream }: ForwarderOptions): Forwarder {
  const cfg = config.forwarder;
  const metrics = createMetrics(spool);

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
  const pipeline = new AlertPipeline(config, sink, metrics, spool, app.log);
  const temporal = new TemporalWatch(sink, spool);
  if (spool?.setAside) {
    metrics.spoolSetAside.inc();
    app.log.error(
      { file: spool.file, movedTo: spool.setAside.movedTo, error: spool.setAside.error },
      'the spool file was corrupt: moved aside, and this forwarder starts with an empty spool; the alerts in the moved file were not delivered',
    );
  }
  const credentials = Object.fromEntries(
    Object.entries(cfg.sources).map(([s, c]) => [s, credentialsOf(s as SourceName, c)]),
  ) as Record<SourceName, Credential[]>;

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
      const reason =
        status === 503 ? ((reply as FastifyReply & { refusal?: string }).refusal ?? 'unavailable') : REASONS[status];
      if (status >= 400 && reason) metrics.rejected.inc({ source, status: String(status), reason });
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
  // From what the forwarder already knows (the last health probe, the last submission, the spool's last
  // write), never a call of its own: a probe with a 1-2 s timeout must not wait on an unreachable Temporal.
  app.get('/readyz', async (_req, reply) => {
    const notReady = (reason: string) =>
      reply
        .code(503)
        .header('retry-after', String(RETRY_AFTER_SECONDS))
        .send({ status: 'not ready', reason, ...(spool ? { spool: spoolState(spool) } : {}) });
    if (spool?.failed) return notReady(`the spool at ${spool.file} cannot write: ${spool.failed.error}`);
    const up = temporal.reachable && !sink.down?.();
    if (up) return { status: 'ready', ...(spool ? { spool: spoolState(spool) } : {}) };
    const reason = `Temporal at ${config.temporal.address} ${temporal.reachable === null && !sink.down?.() ? 'has not answered yet' : 'is unreachable'}`;
    // With room in the spool, alerts are still taken (202 queued): degraded, not down.
    if (spool && !spool.full)
      return { status: 'degraded', reason: `${reason}; alerts are spooled`, spool: spoolState(spool) };
    return notReady(spool ? `${reason}, and the spool is full` : reason);
  });
  app.get('/metrics', async (_req, reply) =>
    reply.type(metrics.registry.contentType).send(await metrics.registry.metrics()),
  );

  for (const [url, source] of Object.entries(ENDPOINTS)) {
    app.post(url, (req, reply) => handleAlerts(source, req, reply));
  }

  async function handleAlerts(source: SourceName, req: FastifyRequest, reply: FastifyReply) {
    const creds = credentials[source];
    if (!creds.length) throw new HttpError(404, `source "${source}" is not enabled on this forwarder`);
    const raw = req.body;
    if (!Buffer.isBuffer(raw)) throw new HttpError(415, 'body must be JSON with Content-Type: application/json');
    const sender = authenticateSender(creds, req.headers, raw, SIGNATURE_WINDOW_SECONDS);
    if (!sender)
      throw new HttpError(401, 'missing or invalid credentials', undefined, {
        'www-authenticate': 'Bearer realm="pod-responder"',
      });
    if ('refused' in sender) throw new HttpError(401, sender.refused);
    let body: unknown;
    try {
      body = sjson.parse(raw, undefined, { protoAction: 'error', constructorAction: 'error' });
    } catch (err) {
      throw new HttpError(400, 'invalid JSON', [`(root): ${(err as Error).message}`]);
    }
    let items: Normalized[];
    try {
      items = normalizeBody(source, body, withBoundCluster(req.query as Record<string, unknown>, sender), cfg.maxBatch);
    } catch (err) {
      if (err instanceof InputError) throw new HttpError(400, `invalid ${err.what}`, err.errors);
      throw err;
    }
    // One alert its credential may not report on refuses the whole request: nothing starts.
    const forbidden = items.flatMap((item, i) => {
      const why = item.kind === 'alert' ? refusal(sender, item.alert) : null;
      return why ? [items.length > 1 ? `alerts[${i}]: ${why}` : why] : [];
    });
    if (forbidden.length) {
      req.log.warn(
        { source, sender: sender.name, refused: forbidden.slice(0, 5).map((r) => clip(r, 300)) },
        "alerts outside the credential's clusters or namespaces",
      );
      throw new HttpError(
        403,
        `credential "${sender.name}" may not report ${forbidden.length === 1 && items.length === 1 ? 'this alert' : `${forbidden.length} of these ${items.length} alerts`}; nothing was started`,
        forbidden.slice(0, 20),
      );
    }
    metrics.received.inc({ source }, items.length);
    const results: AlertOutcome[] = await Promise.all(items.map((item) => pipeline.deliver(sender, item, true)));
    const count = (o: AlertOutcome['outcome']) => results.filter((r) => r.outcome === o).length;
    const summary = {
      accepted: count('accepted'),
      queued: count('queued'),
      closed: count('closed'),
      duplicates: count('duplicate'),
      ignored: count('ignored'),
      saturated: count('saturated'),
      rateLimited: count('rate-limited'),
      failed: count('failed'),
      results,
    };
    if (summary.failed) {
      const spoolRefusal = results.find(
        (r): r is Extract<AlertOutcome, { outcome: 'failed' }> => r.outcome === 'failed' && r.spool !== undefined,
      )?.spool;
      (reply as FastifyReply & { refusal?: string }).refusal =
        spoolRefusal === 'full'
          ? 'spool-full'
          : spoolRefusal === 'write-failed'
            ? 'spool-write-failed'
            : 'temporal-unavailable';
      return reply
        .code(503)
        .header('retry-after', String(RETRY_AFTER_SECONDS))
        .send({
          error: 'not every alert was accepted or spooled; resend the request (accepted alerts are deduplicated)',
          ...summary,
        });
    }
    if (summary.rateLimited) {
      const wait = Math.max(...results.map((r) => (r.outcome === 'rate-limited' ? r.retryAfterSeconds : 0)));
      return reply
        .code(429)
        .header('retry-after', String(wait))
        .send({
          error: `rate limit for new incidents from source "${source}" exceeded; resend the request (accepted alerts are deduplicated)`,
          ...summary,
        });
    }
    return reply.code(summary.ignored === results.length ? 200 : 202).send(summary);
  }

  return {
    app,
    metrics,
    pipeline,
    async listen() {
      // A burst of new connections (a sender starting, a relay reconnecting) must not overflow the accept queue.
      const url = await app.listen({ host: cfg.host, port: cfg.port, backlog: 2048 });
      temporal.start();
      pipeline.start();
      return url;
    },
    async close() {
      closing = true;
      await app.close();
      await temporal.stop();
      await pipeline.close(SPOOL_DRAIN_SECONDS * 1000, () => temporal.reachable === true && !sink.down?.());
      await sink.close();
    },
  };
}

function spoolState(spool: Spool) {
  return { depth: spool.depth, bytes: spool.bytes, oldestSeconds: spool.oldestAgeSeconds() };
}

/** Every CHECK_MS: is Temporal serving (the sink's own probe, with its deadline)? Does a failed spool write again? */
const CHECK_MS = 2000;

class TemporalWatch {
  /** null until the first probe answered. */
  reachable: boolean | null = null;
  private timer: NodeJS.Timeout | null = null;
  private running = false;
  private checking: Promise<void> | null = null;

  constructor(
    private readonly sink: AlertSink,
    private readonly spool: Spool | null,
  ) {}

  start(): void {
    this.running = true;
    this.checking = this.check();
  }

  /** Waits for a probe in flight: the connection must not close under it (grpc's retry timer would throw). */
  async stop(): Promise<void> {
    this.running = false;
    if (this.timer) clearTimeout(this.timer);
    await this.checking;
  }

  private async check(): Promise<void> {
    if (this.spool?.failed) this.spool.probe();
    const ok = await this.sink.ready().catch(() => false);
    if (!this.running) return;
    this.reachable = ok;
    // Kept in `checking`, which stop() awaits; check() catches the probe's failure itself.
    this.timer = setTimeout(() => {
      this.checking = this.check();
    }, CHECK_MS);
    this.timer.unref();
  }
}
