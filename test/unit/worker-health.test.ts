/** The worker's health endpoint (worker/health.ts): its configuration, its answers in each state, a taken port. */
import { createServer } from 'node:net';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../config/config.js';
import { serveHealth, type StatusSource } from '../../worker/health.js';

type Status = ReturnType<StatusSource>;
const running: Status = { runState: 'RUNNING', workflowPollerState: 'POLLING', activityPollerState: 'POLLING' };

async function get(url: string): Promise<{ status: number; body: unknown }> {
  const res = await fetch(url);
  return { status: res.status, body: await res.json() };
}

describe('health configuration', () => {
  it('is off by default (port 0); the chart sets a port; a host name or a bad port is refused, naming the field', () => {
    expect(loadConfig({}).health).toEqual({ host: '0.0.0.0', port: 0 });
    expect(loadConfig({ POD_RESPONDER_HEALTH_PORT: '8081', POD_RESPONDER_HEALTH_HOST: '::' }).health).toEqual({
      host: '::',
      port: 8081,
    });
    expect(() => loadConfig({ POD_RESPONDER_HEALTH_HOST: 'localhost' })).toThrow(/health\.host: must be an IP address/);
    expect(() => loadConfig({ POD_RESPONDER_HEALTH_PORT: '70000' })).toThrow(/health\.port/);
  });
});

describe('the health endpoint', () => {
  it('answers each state of the worker: starting is live, not ready; running and polling is ready; a failed poller or a draining worker is not ready; failed or stopped is not live', async () => {
    let status: Status = null;
    const endpoint = await serveHealth({ host: '127.0.0.1', port: 0 }, () => status);
    try {
      expect(await get(`${endpoint.url}/healthz`)).toEqual({ status: 200, body: { status: 'starting' } });
      expect(await get(`${endpoint.url}/readyz`)).toEqual({
        status: 503,
        body: { status: 'starting', reason: 'the worker is connecting to Temporal' },
      });

      status = running;
      expect(await get(`${endpoint.url}/healthz`)).toEqual({
        status: 200,
        body: { status: 'ok', runState: 'RUNNING' },
      });
      expect(await get(`${endpoint.url}/readyz`)).toEqual({ status: 200, body: { status: 'ok', runState: 'RUNNING' } });

      status = { ...running, activityPollerState: 'FAILED' };
      expect(await get(`${endpoint.url}/readyz`)).toEqual({
        status: 503,
        body: { status: 'not-ready', runState: 'RUNNING', reason: 'activity poller failed' },
      });
      expect((await get(`${endpoint.url}/healthz`)).status).toBe(200);

      // SIGTERM: the worker drains activities in flight; still live (the kubelet must not kill it), no longer ready.
      status = { ...running, runState: 'DRAINING' };
      expect(await get(`${endpoint.url}/readyz`)).toMatchObject({
        status: 503,
        body: { reason: 'the worker is draining' },
      });
      expect((await get(`${endpoint.url}/healthz`)).status).toBe(200);

      for (const runState of ['FAILED', 'STOPPED'] as const) {
        status = { ...running, runState };
        expect(await get(`${endpoint.url}/healthz`)).toEqual({ status: 503, body: { status: 'failed', runState } });
      }

      expect((await fetch(`${endpoint.url}/metrics`)).status).toBe(404);
      expect((await fetch(`${endpoint.url}/readyz`, { method: 'POST' })).status).toBe(405);
    } finally {
      await endpoint.close();
    }
  });

  it('a port that cannot be bound is an error that says what to do', async () => {
    const taken = createServer();
    await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
    const { port } = taken.address() as { port: number };
    try {
      await expect(serveHealth({ host: '127.0.0.1', port }, () => null)).rejects.toThrow(
        `cannot serve the worker's health endpoint on 127.0.0.1:${port}: listen EADDRINUSE: address already in use 127.0.0.1:${port}; free the port or set POD_RESPONDER_HEALTH_PORT (health.port; 0 turns it off)`,
      );
    } finally {
      taken.close();
    }
  });
});
