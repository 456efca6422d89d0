/**
 * A kubelet stand-in, for tests and benchmarks only: the stack has no kubelet, so the API server's proxy to a node (pod logs,
 * the checkpoint API) has nowhere to go. This is an HTTPS server on this machine's address registered as a Node's
 * kubelet endpoint (status.addresses and daemonEndpoints), serving the container logs a test gives it, the
 * way the kubelet does: `GET /containerLogs/<ns>/<pod>/<container>[?previous=true&limitBytes=n]`, and the
 * checkpoint API: `POST /checkpoint/<ns>/<pod>/<container>` answers where the archive was written on the node
 * (`{"items":["/var/lib/kubelet/checkpoints/checkpoint-<pod>_<ns>-<container>-<time>.tar"]}`), or, with
 * `checkpointing` off, 404 as a kubelet without the ContainerCheckpoint feature does.
 * The API server does not verify a kubelet's serving certificate unless told to, so a self-signed one does.
 * It also does the kubelet's part of a graceful delete: a pod on its node that is terminating is "stopped" (after
 * `stopDelays`, recorded in `stopped`) and then removed from the API with grace period 0, as a kubelet does once
 * its containers are gone. `stopping = false` is a kubelet that stopped acting (its pods stay terminating).
 */
import type { CoreV1Api } from '@kubernetes/client-node';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { networkInterfaces, tmpdir } from 'node:os';
import * as path from 'node:path';

export interface KubeletStandIn {
  node: string;
  /** `${namespace}/${pod}/${container}` (and `.../previous`) -> log text. */
  logs: Map<string, string>;
  /** Requests served, as the API server forwarded them. */
  requests: string[];
  /** `${namespace}/${pod}/${container}` -> milliseconds to wait before answering (a slow or stuck node). */
  delays: Map<string, number>;
  /** Answer the checkpoint API (default), or 404 like a kubelet without the ContainerCheckpoint feature. */
  checkpointing: boolean;
  /** Act on graceful deletes of this node's pods (default); false: they stay terminating. */
  stopping: boolean;
  /** `${namespace}/${pod}` -> milliseconds its containers take to stop once the pod is terminating. */
  stopDelays: Map<string, number>;
  /** Pods whose containers it stopped, `${namespace}/${pod}`, with when. */
  stopped: { pod: string; at: number }[];
  /** Reachable through the API server's node proxy (false on a machine with only a loopback address). */
  proxyable: boolean;
  close(): Promise<void>;
}

function selfSigned(): { key: Buffer; cert: Buffer } {
  const dir = mkdtempSync(path.join(tmpdir(), 'kubelet-'));
  const [key, cert] = [path.join(dir, 'key.pem'), path.join(dir, 'cert.pem')];
  execFileSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-subj',
      '/CN=kubelet-stand-in',
      '-days',
      '1',
      '-keyout',
      key,
      '-out',
      cert,
    ],
    { stdio: 'ignore' },
  );
  return { key: readFileSync(key), cert: readFileSync(cert) };
}

/** Starts the server and registers a Ready Node whose kubelet it is. */
export async function startKubeletStandIn(core: CoreV1Api): Promise<KubeletStandIn> {
  const logs = new Map<string, string>();
  const requests: string[] = [];
  const delays = new Map<string, number>();
  const standIn: KubeletStandIn = {
    node: '',
    logs,
    requests,
    delays,
    checkpointing: true,
    stopping: true,
    stopDelays: new Map(),
    stopped: [],
    proxyable: false,
    close: () =>
      new Promise((resolve) => {
        closed = true;
        clearTimeout(timer);
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
  let closed = false;
  let timer: NodeJS.Timeout | undefined;
  const stopping = new Map<string, number>();
  const answer = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const url = new URL(req.url ?? '/', 'https://kubelet');
    requests.push(`${req.method} ${url.pathname}${url.search}`);
    const cp = /^\/checkpoint\/([^/]+)\/([^/]+)\/([^/]+)$/.exec(url.pathname);
    if (req.method === 'POST' && cp && standIn.checkpointing) {
      const delay = delays.get(`${cp[1]}/${cp[2]}/${cp[3]}`);
      if (delay) await new Promise((r) => setTimeout(r, delay));
      const at = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
      res
        .writeHead(200, { 'content-type': 'application/json' })
        .end(
          JSON.stringify({ items: [`/var/lib/kubelet/checkpoints/checkpoint-${cp[2]}_${cp[1]}-${cp[3]}-${at}.tar`] }),
        );
      return;
    }
    const m = /^\/containerLogs\/([^/]+)\/([^/]+)\/([^/]+)$/.exec(url.pathname);
    if (req.method !== 'GET' || !m) {
      res.writeHead(404).end('404 page not found');
      return;
    }
    const delay = delays.get(`${m[1]}/${m[2]}/${m[3]}`);
    if (delay) await new Promise((r) => setTimeout(r, delay));
    const key = `${m[1]}/${m[2]}/${m[3]}${url.searchParams.get('previous') === 'true' ? '/previous' : ''}`;
    const text = logs.get(key);
    if (text === undefined) {
      // What the kubelet answers for a container with no previous instance.
      res
        .writeHead(400, { 'content-type': 'text/plain' })
        .end(`previous terminated container "${m[3]}" in pod "${m[2]}" not found`);
      return;
    }
    const limit = Number(url.searchParams.get('limitBytes') ?? 0);
    const body = Buffer.from(text);
    res
      .writeHead(200, { 'content-type': 'text/plain' })
      .end(limit > 0 ? body.subarray(Math.max(0, body.length - limit)) : body);
  };
  // http calls the listener and drops what it returns: a throw in `answer` would be an unhandled rejection
  // (which fails the test run) rather than a broken request the client sees.
  const server: Server = createServer(selfSigned(), (req, res) => {
    answer(req, res).catch((err: unknown) => res.destroy(err instanceof Error ? err : new Error(String(err))));
  });
  const address = proxyableAddress();
  await new Promise<void>((resolve) => server.listen(0, address, resolve));
  const port = (server.address() as AddressInfo).port;

  const node = `kubelet-${randomBytes(3).toString('hex')}`;
  const created = await core.createNode({
    body: { metadata: { name: node, labels: { 'kubernetes.io/os': 'linux' } } },
  });
  created.status = {
    addresses: [{ type: 'InternalIP', address }],
    daemonEndpoints: { kubeletEndpoint: { Port: port } },
    conditions: [
      {
        type: 'Ready',
        status: 'True',
        reason: 'KubeletReady',
        message: 'kubelet stand-in',
        lastHeartbeatTime: new Date(),
        lastTransitionTime: new Date(),
      },
    ],
  };
  await core.replaceNodeStatus({ name: node, body: created });
  standIn.node = node;
  standIn.proxyable = address !== '127.0.0.1';
  const poll = async () => {
    try {
      if (standIn.stopping) await stopTerminating(core, standIn, stopping);
    } catch {
      /* the API server going away at the end of a run: the next poll, if any, tries again */
    }
    if (!closed) timer = setTimeout(() => void poll(), 100);
  };
  timer = setTimeout(() => void poll(), 100);
  return standIn;
}

/** Pods on the node deleted gracefully: stop them (after their delay) and remove them, as the kubelet does. */
async function stopTerminating(core: CoreV1Api, standIn: KubeletStandIn, stopping: Map<string, number>): Promise<void> {
  const { items } = await core.listPodForAllNamespaces({ fieldSelector: `spec.nodeName=${standIn.node}` });
  for (const pod of items) {
    const { namespace, name, uid, deletionTimestamp } = pod.metadata ?? {};
    if (!deletionTimestamp || !namespace || !name || !uid) continue;
    const key = `${namespace}/${name}`;
    const due = stopping.get(uid) ?? Date.now() + (standIn.stopDelays.get(key) ?? 0);
    stopping.set(uid, due);
    if (Date.now() < due) continue;
    standIn.stopped.push({ pod: key, at: Date.now() });
    stopping.delete(uid);
    await core
      .deleteNamespacedPod({
        namespace,
        name,
        gracePeriodSeconds: 0,
        body: { preconditions: { uid }, gracePeriodSeconds: 0 },
      })
      .catch(() => undefined);
  }
}

/**
 * The API server's node proxy (the checkpoint API's way in) refuses loopback addresses, unlike its log
 * fetches: the stand-in listens on this machine's own non-loopback address when it has one.
 */
function proxyableAddress(): string {
  for (const addrs of Object.values(networkInterfaces())) {
    const v4 = addrs?.find((a) => a.family === 'IPv4' && !a.internal);
    if (v4) return v4.address;
  }
  return '127.0.0.1';
}
