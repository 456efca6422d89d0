import { Agent } from 'node:https';
import {
  AppsV1Api,
  BatchV1Api,
  CoreV1Api,
  createConfiguration,
  KubeConfig,
  NetworkingV1Api,
  PatchStrategy,
  ServerConfiguration,
  setHeaderOptions,
  type Configuration,
  type Middleware,
} from '@kubernetes/client-node';

/** The typed API groups the remediation core uses; built from any KubeConfig (file, or EKS token in Lambda). */
export interface KubeClients {
  core: CoreV1Api;
  apps: AppsV1Api;
  batch: BatchV1Api;
  networking: NetworkingV1Api;
}

export function kubeClients(kc: KubeConfig): KubeClients {
  const config = keptAliveConfiguration(kc);
  return {
    core: new CoreV1Api(config),
    apps: new AppsV1Api(config),
    batch: new BatchV1Api(config),
    networking: new NetworkingV1Api(config),
  };
}

/**
 * What `kc.makeApiClient` builds (the current cluster's server, `kc` authenticating each request), plus a request
 * middleware that gives each request a kept-alive agent. client-node builds a new agent, so a new TCP connection
 * and TLS handshake, for every request (a GET then costs 5.5 ms instead of 1.7: docs/measurements.md). Only
 * client-node's public API: `createConfiguration`'s `promiseMiddleware` runs after `kc` authenticated the request,
 * and `RequestContext.getAgent/setAgent` swap its agent. Proxied and plain-HTTP clusters keep client-node's agents.
 * Keep it the only static middleware: client-node 1.4 reverses that list in place after each response.
 */
export function keptAliveConfiguration(kc: KubeConfig): Configuration {
  const cluster = kc.getCurrentCluster();
  if (!cluster) throw new Error('No active cluster!');
  const direct = cluster.server.startsWith('https:') && !cluster.proxyUrl;
  return createConfiguration({
    baseServer: new ServerConfiguration(cluster.server, {}),
    authMethods: { default: kc },
    promiseMiddleware: direct ? [keptAliveAgents()] : [],
  });
}

/** Agents kept per configuration; a rotated client certificate makes a new one, and the oldest beyond this are closed. */
const AGENTS_KEPT = 4;

/** A TLS option as text for the agent's key. A `{ pem, passphrase }` key object is serialized whole: String() would make every one "[object Object]", one agent for different keys. */
function tlsText(v: unknown): string {
  return v === undefined ? '' : typeof v === 'string' || Buffer.isBuffer(v) ? v.toString() : JSON.stringify(v);
}

/**
 * Replaces the one-request agent the KubeConfig put on a request with a kept-alive one made from the same TLS
 * options (CA, client certificate and key, server name, verification), one per TLS identity. Bearer tokens are
 * headers, not agent state: a rotated token is still read per request.
 */
export function keptAliveAgents(): Middleware {
  const agents = new Map<string, Agent>();
  return {
    pre: (ctx) => {
      const given = ctx.getAgent();
      if (!(given instanceof Agent)) return Promise.resolve(ctx);
      const options = given.options;
      const key = JSON.stringify([
        tlsText(options.ca),
        tlsText(options.cert),
        tlsText(options.key),
        tlsText(options.pfx),
        options.servername ?? '',
        options.rejectUnauthorized ?? null,
      ]);
      let agent = agents.get(key);
      if (!agent) {
        agent = new Agent({ ...options, keepAlive: true });
        agents.set(key, agent);
        for (const [k, old] of agents) {
          if (agents.size <= AGENTS_KEPT) break;
          agents.delete(k);
          old.destroy();
        }
      }
      ctx.setAgent(agent);
      return Promise.resolve(ctx);
    },
    post: (rsp) => Promise.resolve(rsp),
  };
}

export function kubeConfigFromFile(path: string, context?: string): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromFile(path);
  if (context) kc.setCurrentContext(context);
  return kc;
}

/** Options that make a generated `patch*` call send a JSON merge patch. */
export const mergePatch = setHeaderOptions('Content-Type', PatchStrategy.MergePatch);

export interface KubeFailure {
  status: number;
  reason: string;
  message: string;
}

/** Normalizes client-node's ApiException (body is a JSON Status string) into status, reason and message. */
export function kubeFailure(err: unknown): KubeFailure {
  const e = err as { code?: unknown; body?: unknown; message?: unknown };
  if (typeof e?.code === 'number') {
    let body: { reason?: string; message?: string } = {};
    try {
      body =
        (typeof e.body === 'string'
          ? (JSON.parse(e.body) as typeof body | null)
          : (e.body as typeof body | undefined)) ?? {};
    } catch {
      /* body was not JSON: keep the exception message */
    }
    return { status: e.code, reason: body.reason ?? 'Unknown', message: body.message ?? String(e.message) };
  }
  return { status: 0, reason: 'NetworkError', message: err instanceof Error ? err.message : String(err) };
}

/** Kubernetes refusals no retry can fix (bad request, no credentials, forbidden, invalid); others (5xx, 409, 429, network) may pass. */
export const PERMANENT_KUBE_STATUSES: ReadonlySet<number> = new Set([400, 401, 403, 405, 422]);

export function isNotFound(err: unknown): boolean {
  return kubeFailure(err).status === 404;
}

/** Raised for Kubernetes errors that carry their status, so callers and the workflow can tell them apart. */
export class KubeError extends Error {
  constructor(
    readonly operation: string,
    readonly failure: KubeFailure,
  ) {
    super(`${operation}: ${failure.status ? `HTTP ${failure.status} ${failure.reason}: ` : ''}${failure.message}`);
    this.name = 'KubeError';
  }
}

export async function kubeCall<T>(operation: string, call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (err) {
    throw new KubeError(operation, kubeFailure(err));
  }
}

/** Reads an object, mapping 404 to null. */
export async function readOrNull<T>(operation: string, call: () => Promise<T>): Promise<T | null> {
  try {
    return await call();
  } catch (err) {
    if (isNotFound(err)) return null;
    throw new KubeError(operation, kubeFailure(err));
  }
}
