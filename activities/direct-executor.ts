import { KubeConfig } from '@kubernetes/client-node';
import { ApplicationFailure, log } from '@temporalio/activity';
import { EXECUTOR_UNAVAILABLE } from '../domain/failure-types.js';
import {
  KubeError,
  kubeClients,
  kubeConfigFromFile,
  PERMANENT_KUBE_STATUSES,
  type KubeClients,
} from '../remediation/kube.js';
import type { CoreRequest, CoreResponse } from '../remediation/protocol.js';
import { runOperation } from '../remediation/run.js';

export interface DirectExecutorConfig {
  /** Path of the kubeconfig; default: KUBECONFIG or ~/.kube/config as kubectl reads it. */
  kubeconfig?: string;
  /** The cluster the kubeconfig's current context reaches, by the name alerts give it. */
  cluster?: string;
  /** Alert cluster name -> kubeconfig context, for more clusters. */
  contexts?: Record<string, string>;
  /** In a pod of the cluster it acts on: its service account, not a kubeconfig. */
  inCluster?: boolean;
  inClusterPathPrefix?: string;
}

/** The clusters this worker may act on, for messages. */
export function mappedClusters(config: DirectExecutorConfig): string[] {
  return [...(config.cluster ? [config.cluster] : []), ...Object.keys(config.contexts ?? {})];
}

/** Runs remediation-core operations in-process against a cluster the worker can reach. */
export function createDirectExecutor(config: DirectExecutorConfig, load = kubeConfigFromFile) {
  const clientsFor = kubeResolver(config, load);

  return {
    async runDirect<R extends CoreRequest>(cluster: string, request: R): Promise<CoreResponse<R>> {
      try {
        const response = await runOperation(clientsFor(cluster), request);
        log.info('remediation operation', { cluster, op: request.op, response: summarize(response) });
        return response;
      } catch (err) {
        if (err instanceof KubeError && PERMANENT_KUBE_STATUSES.has(err.failure.status)) {
          throw ApplicationFailure.nonRetryable(err.message, `Kube${err.failure.status}`, err.failure);
        }
        throw err;
      }
    },
  };
}

/** The worker's clients for a cluster it is mapped to (cached per context); any other cluster is refused. */
export function kubeResolver(
  config: DirectExecutorConfig,
  load = kubeConfigFromFile,
): (cluster: string) => KubeClients {
  const cache = new Map<string, KubeClients>();
  /**
   * Only a cluster mapped explicitly: an alert naming any other (a mistake, or a token stolen from another
   * cluster) must never act on whatever the current context happens to reach.
   */
  function clientsFor(cluster: string): KubeClients {
    const context = config.contexts?.[cluster] ?? (cluster === config.cluster ? '' : undefined);
    if (context === undefined) {
      const known = mappedClusters(config);
      throw ApplicationFailure.nonRetryable(
        `this worker has no mapping for cluster ${cluster} (${known.length ? `it acts on ${known.join(', ')}` : 'none is configured'}): nothing was done; ` +
          'map it with direct.cluster or direct.contexts, or respond from a worker that reaches it',
        EXECUTOR_UNAVAILABLE,
      );
    }
    const key = context;
    let clients = cache.get(key);
    if (!clients) {
      clients = kubeClients(
        config.inCluster
          ? inClusterConfig(config.inClusterPathPrefix)
          : load(config.kubeconfig ?? defaultKubeconfig(), context || undefined),
      );
      cache.set(key, clients);
    }
    return clients;
  }
  return clientsFor;
}

/** The pod's own service account (its token file re-read on every request, as the kubelet rotates it). */
function inClusterConfig(pathPrefix = ''): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromCluster(pathPrefix);
  return kc;
}

function defaultKubeconfig(): string {
  const fromEnv = process.env.KUBECONFIG?.split(':')[0];
  return fromEnv || `${process.env.HOME ?? ''}/.kube/config`;
}

function summarize(response: unknown): unknown {
  const r = response as { result?: { status: string; target: string }; ok?: boolean; pod?: unknown };
  if (r.result) return { status: r.result.status, target: r.result.target };
  if ('ok' in r) return { ok: r.ok };
  if ('pod' in r) return { found: r.pod !== null };
  return undefined;
}
