/**
 * The worker and the forwarder in one process, on one Temporal connection (the worker's): for small installations,
 * and `npm start`. Sharing the connection is what lets the forwarder start a new incident eagerly: its first
 * workflow task comes back in the start call's answer and runs in this worker, with no trip through matching
 * (docs/deploy.md: All in one).
 */
import { loadConfig, type Config } from '../config/config.js';
import { DRAIN_TIMEOUT_MS, drainOnSignals, startForwarder, type StartedForwarder } from '../forwarder/main.js';
import { TemporalGateway } from '../forwarder/temporal-gateway.js';
import { startWorker } from '../worker/main.js';
import type { StartedWorker } from '../worker/worker.js';

export interface AllInOne {
  worker: StartedWorker;
  forwarder: StartedForwarder['forwarder'];
  /** The forwarder's base URL. */
  url: string;
  /** Resolves when the worker stops (after stop(), or when it fails). */
  running: Promise<void>;
  /** The forwarder drains first (its alerts still start incidents here), then the worker. */
  stop: () => Promise<void>;
}

/**
 * Starts both; `worker` makes the worker (default: as `pod-responder worker` does, with its health and metrics
 * endpoints and no signal handling of the SDK's: stop() drains both in order).
 */
export async function startAllInOne(
  config: Config,
  worker: (config: Config) => Promise<StartedWorker> = (c) => startWorker(c, { shutdownSignals: [] }),
): Promise<AllInOne> {
  const w = await worker(config);
  const running = w.run();
  let fwd: StartedForwarder;
  try {
    fwd = await startForwarder(config, TemporalGateway.shared(config, w.connection));
  } catch (err) {
    await w.shutdown();
    throw err;
  }
  return {
    worker: w,
    forwarder: fwd.forwarder,
    url: fwd.url,
    running,
    stop: async () => {
      await fwd.stop();
      await w.shutdown();
    },
  };
}

/** `pod-responder all-in-one`: serves and polls until SIGINT/SIGTERM, then drains the forwarder, then the worker. */
export async function runAllInOneFromEnv(): Promise<void> {
  const config = loadConfig();
  const a = await startAllInOne(config);
  const log = a.forwarder.app.log;
  drainOnSignals(log, 'all-in-one', a.stop, DRAIN_TIMEOUT_MS + config.worker.shutdownGraceSeconds * 1000);
  await a.running.catch(async (err: unknown) => {
    // A failed worker: stop taking alerts that nothing here would run (the forwarder's 503s tell senders to resend).
    await a.stop().catch(() => undefined);
    throw err;
  });
}
