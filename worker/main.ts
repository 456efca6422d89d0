import { mappedClusters } from '../activities/direct-executor.js';
import { loadConfig, type Config } from '../config/config.js';
import { describeTemporalSecurity } from '../config/temporal-connection.js';
import { looserThanFloor } from '../domain/policy-floor.js';
import { jsonLogger } from './logging.js';
import { serveHealth, type StatusSource } from './health.js';
import { installRuntime } from './runtime.js';
import { createWorker, type StartedWorker } from './worker.js';

/** `pod-responder worker`: validates config, then polls until SIGINT/SIGTERM (the SDK drains on those). */
export async function runWorkerFromEnv(): Promise<void> {
  await (await startWorker(loadConfig())).run();
}

/**
 * The worker as `pod-responder worker` runs it, created but not yet polling: the SDK's runtime (its metrics
 * endpoint), the health endpoint, the start line and the config's warnings. `shutdownSignals: []` when the caller
 * drains it on SIGINT/SIGTERM itself (all-in-one: the forwarder first).
 */
export async function startWorker(
  config: Config,
  opts: { shutdownSignals?: NodeJS.Signals[] } = {},
): Promise<StartedWorker> {
  // Before any connection: the SDK's runtime, with the metrics endpoint, is fixed by the first one.
  const metrics = installRuntime({ logger: jsonLogger(config.logLevel), metrics: config.metrics, ...opts });
  if (metrics.state === 'unavailable') {
    process.stderr.write(
      JSON.stringify({
        level: 'ERROR',
        msg: `${metrics.reason}; the worker runs without metrics: free the port or set POD_RESPONDER_METRICS_PORT (metrics.port; 0 turns them off)`,
      }) + '\n',
    );
  }
  // Before the worker is created (connecting to Temporal, loading the bundle): a probe then hears "starting".
  let started: StartedWorker | null = null;
  const status: StatusSource = () => started?.worker.getStatus() ?? null;
  const health = config.health.port ? await serveHealth(config.health, status) : null;
  const w = (started = await createWorker(config));
  process.stderr.write(
    JSON.stringify({
      level: 'INFO',
      msg: 'worker started',
      temporal: config.temporal.address,
      temporalSecurity: describeTemporalSecurity(config.temporal),
      namespace: config.temporal.namespace,
      taskQueue: config.temporal.taskQueue,
      executor: config.executor,
      ...(config.executor === 'direct' ? { clusters: mappedClusters(config.direct) } : {}),
      metrics: metrics.state === 'serving' ? metrics.url : metrics.state,
      health: health ? health.url : 'off',
    }) + '\n',
  );
  if (config.executor === 'direct' && mappedClusters(config.direct).length === 0) {
    process.stderr.write(
      JSON.stringify({
        level: 'WARN',
        msg: 'no cluster is mapped: every alert will end as needs-manual-action; set POD_RESPONDER_CLUSTER (direct.cluster) or direct.contexts',
      }) + '\n',
    );
  }
  // One config for worker and forwarder (the chart): incidents the forwarder starts with this policy would all fail.
  const looser = looserThanFloor(config.policy, config.policyFloor);
  if (looser.length) {
    process.stderr.write(
      JSON.stringify({
        level: 'WARN',
        msg: `this config's policy is looser than its policyFloor: incidents started with it will end failed; make the policy stricter or lower the floor (docs/policy-floor.md)`,
        looser,
      }) + '\n',
    );
  }
  return w;
}
