import { InputError } from '../domain/validation-errors.js';
import { SOURCES, type SourceName } from '../domain/sources/index.js';
import { ENV_VARS, loadConfig, type Config } from '../config/config.js';
import { describeTemporalSecurity } from '../config/temporal-connection.js';
import { credentialsOf } from './credentials.js';
import { createForwarder, type Forwarder } from './server.js';
import { Spool } from './spool.js';
import { SqsIntake } from './sqs-intake.js';
import type { AlertLog } from './pipeline.js';
import { TemporalGateway } from './temporal-gateway.js';

/** Past this, a shutdown stops waiting for requests in flight (their senders will resend). */
export const DRAIN_TIMEOUT_MS = 25_000;

/** Refuses to start a forwarder that would accept nothing: every endpoint needs credentials, or a queue to read. */
export function enabledSources(config: Config): SourceName[] {
  const enabled = SOURCES.filter((s) => credentialsOf(s, config.forwarder.sources[s]).length > 0);
  if (enabled.length === 0 && config.forwarder.sqs.length === 0) {
    const names = Object.keys(ENV_VARS).filter((n) => /_(TOKEN|HMAC_SECRET)$/.test(n));
    throw new InputError('configuration', [
      `forwarder.sources: no source has a token or HMAC secret; set at least one of ${names.join(', ')}`,
    ]);
  }
  return enabled;
}

/** `pod-responder forwarder`: serves until SIGINT/SIGTERM, then drains requests in flight. */
export async function runForwarderFromEnv(): Promise<Forwarder> {
  const { forwarder, stop } = await startForwarder(loadConfig());
  drainOnSignals(forwarder.app.log, 'forwarder', stop, DRAIN_TIMEOUT_MS);
  return forwarder;
}

export interface StartedForwarder {
  forwarder: Forwarder;
  /** Where it listens. */
  url: string;
  /** Stops reading queues, then drains requests in flight and the spool's deliveries, and closes the sink. */
  stop: () => Promise<void>;
}

/**
 * The forwarder as `pod-responder forwarder` runs it, listening: its spool, SQS queues, start line and warnings.
 * `sink`: Temporal through a connection of its own unless given (all-in-one: the worker's).
 */
export async function startForwarder(config: Config, sink = TemporalGateway.create(config)): Promise<StartedForwarder> {
  const sources = enabledSources(config);
  const spoolCfg = config.forwarder.spool;
  const spool = spoolCfg.enabled
    ? Spool.open(spoolCfg.path, { maxEntries: spoolCfg.maxEntries, maxBytes: spoolCfg.maxBytes })
    : null;
  const forwarder = createForwarder({ config, sink, spool });
  const url = await forwarder.listen();
  const queues = config.forwarder.sqs.map((q) =>
    SqsIntake.create(q, config, forwarder.pipeline, forwarder.metrics, forwarder.app.log),
  );
  for (const q of queues) q.start();
  forwarder.app.log.info(
    {
      url,
      temporal: config.temporal.address,
      temporalSecurity: describeTemporalSecurity(config.temporal),
      namespace: config.temporal.namespace,
      taskQueue: config.temporal.taskQueue,
      clusterTaskQueues: config.temporal.clusterTaskQueues,
      sources,
      spool: spool ? { path: spool.file, waiting: spool.depth } : null,
      sqs: config.forwarder.sqs.map((q) => q.url),
    },
    'forwarder started',
  );
  // Otherwise a TLS or API key mistake shows only as "Temporal is unreachable" on each alert.
  void sink.ready().then(async (ok) => {
    if (!ok)
      forwarder.app.log.warn(
        { reason: await sink.whyUnreachable() },
        'Temporal is not reachable at start: alerts are spooled until it is',
      );
  });
  // A credential bound to no cluster may report on every cluster the workers reach: say so once.
  for (const source of sources) {
    for (const c of credentialsOf(source, config.forwarder.sources[source])) {
      if (!c.clusters)
        forwarder.app.log.warn(
          { source, credential: c.name },
          'credential may report on any cluster; bind it with "clusters"',
        );
    }
  }
  return {
    forwarder,
    url,
    stop: async () => {
      await Promise.all(queues.map((q) => q.stop()));
      await forwarder.close();
    },
  };
}

/**
 * On the first SIGINT or SIGTERM: `stop`, then exit 0 (1 if it failed); past `timeoutMs`, exit 1 without waiting
 * (senders resend what was in flight).
 */
export function drainOnSignals(log: AlertLog, what: string, stop: () => Promise<void>, timeoutMs: number): void {
  let stopping = false;
  const onSignal = (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, `${what} draining`);
    const timer = setTimeout(() => {
      log.warn({ timeoutMs }, 'drain timed out; exiting');
      process.exit(1);
    }, timeoutMs);
    timer.unref();
    stop().then(
      () => {
        log.info({}, `${what} stopped`);
        process.exitCode = 0;
      },
      (err: unknown) => {
        log.error({ err }, `${what} shutdown failed`);
        process.exitCode = 1;
      },
    );
  };
  process.once('SIGTERM', () => onSignal('SIGTERM'));
  process.once('SIGINT', () => onSignal('SIGINT'));
}
