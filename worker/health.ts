/**
 * The worker's health endpoint, for Kubernetes probes: the worker has no port of its own (the Prometheus endpoint
 * is optional and served by the SDK's core, which takes no other routes), so a probe needs one that works with
 * metrics off. Both answers come from memory, never a call to Temporal, so a slow or absent Temporal cannot make
 * the kubelet restart a worker that is waiting for it.
 *
 * - /healthz: 200 while the process serves (starting, running, draining); 503 once the worker has failed or stopped.
 * - /readyz: 200 once the worker runs and both its pollers (workflow, activity) poll; 503 with the reason otherwise.
 *   A worker only reaches running after it connected to Temporal and checked the namespace (worker/worker.ts).
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { WorkerStatus } from '@temporalio/worker';

export interface HealthAddress {
  host: string;
  /** 0: no endpoint. */
  port: number;
}

/** What the endpoint reports: null while the worker is being created (connecting, bundling). */
export type StatusSource = () => Pick<WorkerStatus, 'runState' | 'workflowPollerState' | 'activityPollerState'> | null;

export interface HealthAnswer {
  status: number;
  body: { status: 'ok' | 'starting' | 'not-ready' | 'failed'; runState?: string; reason?: string };
}

export function liveness(status: ReturnType<StatusSource>): HealthAnswer {
  if (!status) return { status: 200, body: { status: 'starting' } };
  if (status.runState === 'FAILED' || status.runState === 'STOPPED')
    return { status: 503, body: { status: 'failed', runState: status.runState } };
  return { status: 200, body: { status: 'ok', runState: status.runState } };
}

export function readiness(status: ReturnType<StatusSource>): HealthAnswer {
  if (!status) return { status: 503, body: { status: 'starting', reason: 'the worker is connecting to Temporal' } };
  if (status.runState !== 'RUNNING')
    return {
      status: 503,
      body: {
        status: 'not-ready',
        runState: status.runState,
        reason: `the worker is ${status.runState.toLowerCase()}`,
      },
    };
  const stopped = [
    ['workflow', status.workflowPollerState],
    ['activity', status.activityPollerState],
  ].filter(([, state]) => state !== 'POLLING');
  if (stopped.length)
    return {
      status: 503,
      body: {
        status: 'not-ready',
        runState: status.runState,
        reason: stopped.map(([kind, state]) => `${kind} poller ${state!.toLowerCase()}`).join(', '),
      },
    };
  return { status: 200, body: { status: 'ok', runState: status.runState } };
}

export interface HealthEndpoint {
  url: string;
  close(): Promise<void>;
}

/** Serves /healthz and /readyz on `address`; resolves once listening. */
export async function serveHealth(address: HealthAddress, status: StatusSource): Promise<HealthEndpoint> {
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    const answer =
      req.method !== 'GET' && req.method !== 'HEAD'
        ? { status: 405, body: { status: 'not-ready' as const, reason: 'GET only' } }
        : path === '/healthz'
          ? liveness(status())
          : path === '/readyz'
            ? readiness(status())
            : { status: 404, body: { status: 'not-ready' as const, reason: 'try /healthz or /readyz' } };
    res.writeHead(answer.status, { 'content-type': 'application/json' });
    res.end(JSON.stringify(answer.body));
  });
  // A probe port that cannot be bound stops the worker, saying why: without it Kubernetes would restart it forever.
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err) =>
      reject(
        new Error(
          `cannot serve the worker's health endpoint on ${address.host}:${address.port}: ${err.message}; free the port or set POD_RESPONDER_HEALTH_PORT (health.port; 0 turns it off)`,
        ),
      ),
    );
    server.listen(address.port, address.host, () => resolve());
  });
  // Never keeps the process alive: the worker's run() does, and exiting must not wait for the probe port.
  server.unref();
  const { port } = server.address() as AddressInfo;
  const host = address.host.includes(':') ? `[${address.host}]` : address.host;
  return {
    url: `http://${host}:${port}`,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}
