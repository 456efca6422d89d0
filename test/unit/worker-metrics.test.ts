/** The worker's metrics endpoint: its configuration, and a port that cannot be bound. */
import { Runtime } from '@temporalio/worker';
import { createServer } from 'node:net';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../config/config.js';
import { jsonLogger } from '../../worker/logging.js';
import { installRuntime } from '../../worker/runtime.js';

describe('metrics configuration', () => {
  it('serves on every interface, port 9464, by default; port 0 turns it off', () => {
    expect(loadConfig({}).metrics).toEqual({ host: '0.0.0.0', port: 9464 });
    expect(loadConfig({ POD_RESPONDER_METRICS_HOST: '127.0.0.1', POD_RESPONDER_METRICS_PORT: '0' }).metrics).toEqual({
      host: '127.0.0.1',
      port: 0,
    });
    expect(loadConfig({ POD_RESPONDER_METRICS_HOST: '::' }).metrics.host).toBe('::');
  });

  it('refuses a host name (the SDK binds a socket address) and a bad port, naming the field', () => {
    expect(() => loadConfig({ POD_RESPONDER_METRICS_HOST: 'localhost' })).toThrow(
      /metrics\.host: must be an IP address/,
    );
    expect(() => loadConfig({ POD_RESPONDER_METRICS_PORT: '70000' })).toThrow(/metrics\.port/);
  });
});

describe('installRuntime', () => {
  it('with the port taken, installs the runtime without metrics and says why; once per process', async () => {
    const taken = createServer();
    await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
    const { port } = taken.address() as { port: number };
    try {
      const endpoint = installRuntime({ logger: jsonLogger('ERROR'), metrics: { host: '127.0.0.1', port } });
      expect(endpoint).toEqual({
        state: 'unavailable',
        reason: `cannot serve metrics on 127.0.0.1:${port}: Failed to start prometheus metrics exporter: Address already in use (os error 98)`,
      });
      // The runtime is there (without an exporter), and a second install keeps it.
      expect(Runtime.instance().options.runtimeOptions.metricsExporter).toBeFalsy();
      expect(installRuntime({ logger: jsonLogger('ERROR'), metrics: { host: '127.0.0.1', port: port + 1 } })).toBe(
        endpoint,
      );
    } finally {
      taken.close();
    }
  });
});
