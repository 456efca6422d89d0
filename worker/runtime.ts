/**
 * The Temporal SDK's runtime: one per process, fixed by the first `Runtime.install` (or made with defaults by the
 * first connection or worker, after which it cannot be changed). It carries the logger and the Prometheus
 * endpoint: the SDK's own metrics (workflow tasks, activities, polls, slots) and the incidents' (domain/metrics.ts),
 * which workflow code emits through the SDK's meter, so one endpoint serves both.
 */
import { Runtime, type Logger } from '@temporalio/worker';
import { ALERT_TO_ACTION_BUCKETS, INCIDENT_METRICS } from '../domain/metrics.js';

export interface MetricsAddress {
  host: string;
  /** 0: no endpoint. */
  port: number;
}

export type MetricsEndpoint =
  { state: 'off' } | { state: 'serving'; url: string } | { state: 'unavailable'; reason: string };

let installed: MetricsEndpoint | null = null;

/**
 * Installs the runtime once per process, before any connection: `pod-responder worker` calls it first thing
 * (worker/main.ts); tests that start several workers in one process call it once, and later calls (like
 * installLogging's) return what the first one got.
 *
 * An endpoint that cannot be bound (the port taken) leaves the worker running without metrics and says why:
 * responding to a miner matters more than counting it.
 */
export function installRuntime(options: {
  logger: Logger;
  metrics?: MetricsAddress;
  /** Signals on which the SDK shuts its workers down (its default: SIGINT, SIGTERM...); [] when the caller drains them. */
  shutdownSignals?: NodeJS.Signals[];
}): MetricsEndpoint {
  if (installed) return installed;
  const { logger, metrics, shutdownSignals } = options;
  const signals = shutdownSignals ? { shutdownSignals } : {};
  if (!metrics?.port) {
    Runtime.install({ logger, ...signals });
    return (installed = { state: 'off' });
  }
  // The SDK takes a socket address: an IP literal, IPv6 in brackets.
  const host = metrics.host.includes(':') ? `[${metrics.host}]` : metrics.host;
  const bindAddress = `${host}:${metrics.port}`;
  try {
    Runtime.install({
      logger,
      ...signals,
      telemetryOptions: {
        metrics: {
          prometheus: {
            bindAddress,
            // Prometheus conventions, as the forwarder's metrics: counters end in _total, durations in seconds.
            countersTotalSuffix: true,
            useSecondsForDurations: true,
            histogramBucketOverrides: { [INCIDENT_METRICS.alertToAction]: ALERT_TO_ACTION_BUCKETS },
          },
        },
      },
    });
    return (installed = { state: 'serving', url: `http://${bindAddress}/metrics` });
  } catch (err) {
    // A failed install leaves no runtime behind (the exporter binds while the runtime is made): install without it.
    const reason = `cannot serve metrics on ${bindAddress}: ${(err as Error).message}`;
    Runtime.install({ logger, ...signals });
    return (installed = { state: 'unavailable', reason });
  }
}
