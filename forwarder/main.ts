import { InputError } from '../domain/validation-errors.js';
import { SOURCES, type SourceName } from '../domain/sources/index.js';
import { ENV_VARS, loadConfig, type Config } from '../config/config.js';
import { describeTemporalSecurity } from '../config/temporal-connection.js';
import { credentialsOf } from './credentials.js';
import { createForwarder, type Forwarder } from './server.js';
import { Spool } from './spool.js';
import { SqsIntake } from './sqs-intake.js';
import { TemporalGateway } from './temporal-gateway.js';

/** Past this, a shutdown stops waiting for requests in flight (their senders will resend). */
const DRAIN_TIMEOUT_MS = 25_000;

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
  const config = loadConfig();
  const sources = enabledSources(config);
  const spoolCfg = config.forwarder.spool;
  const spool = spoolCfg.enabled
    ? Spool.open(spoolCfg.path, { maxEntries: spoolCfg.maxEntries, maxBytes: spoolCfg.maxBytes })
    : null;
  const gateway = TemporalGateway.create(config);
  const forwarder = createForwarder({ config, sink: gateway, spool });
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
  void gateway.ready().then(async (ok) => {
    if (!ok)
      forwarder.app.log.warn(
        { reason: await gateway.whyUnreachable() },
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
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    forwarder.app.log.info({ signal }, 'forwarder draining');
    const timer = setTimeout(() => {
      forwarder.app.log.warn({ timeoutMs: DRAIN_TIMEOUT_MS }, 'drain timed out; exiting');
      process.exit(1);
    }, DRAIN_TIMEOUT_MS);
    timer.unref();
    Promise.all(queues.map((q) => q.stop()))
      .then(() => forwarder.close())
      .then(
        () => {
          forwarder.app.log.info('forwarder stopped');
          process.exitCode = 0;
        },
        (err: unknown) => {
          forwarder.app.log.error({ err }, 'forwarder shutdown failed');
          process.exitCode = 1;
        },
      );
  };
  process.once('SIGTERM', () => stop('SIGTERM'));
  process.once('SIGINT', () => stop('SIGINT'));
  return forwarder;
}
