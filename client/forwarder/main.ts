import { InputError } from '../../domain/validation-errors.js';
import { SOURCES } from '../../domain/sources/index.js';
import { ENV_VARS, loadConfig, type Config } from '../../worker/config.js';
import { isEnabled } from './auth.js';
import { createForwarder, type Forwarder } from './server.js';
import { TemporalGateway } from './temporal-gateway.js';

/** Past this, a shutdown stops waiting for requests in flight (their senders will resend). */
const DRAIN_TIMEOUT_MS = 25_000;

/** Refuses to start a forwarder that would accept nothing: every endpoint needs credentials. */
export function enabledSources(config: Config): string[] {
  const enabled = SOURCES.filter((s) => isEnabled(config.forwarder.sources[s]));
  if (enabled.length === 0) {
    const names = Object.keys(ENV_VARS).filter((n) => /_(TOKEN|HMAC_SECRET)$/.test(n));
    throw new InputError('configuration', [`forwarder.sources: no source has a token or HMAC secret; set at least one of ${names.join(', ')}`]);
  }
  return enabled;
}

/** `pod-responder forwarder`: serves until SIGINT/SIGTERM, then drains requests in flight. */
export async function runForwarderFromEnv(): Promise<Forwarder> {
  const config = loadConfig();
  const sources = enabledSources(config);
  const forwarder = createForwarder({ config, sink: TemporalGateway.create(config) });
  const url = await forwarder.listen();
  forwarder.app.log.info({ url, temporal: config.temporal.address, namespace: config.temporal.namespace, taskQueue: config.temporal.taskQueue, sources }, 'forwarder started');
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
    forwarder.close().then(
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
