import { ApplicationFailure, log } from '@temporalio/activity';
import { KubeError, kubeClients, kubeConfigFromFile, PERMANENT_KUBE_STATUSES, type KubeClients } from '../remediation/kube.js';
import type { CoreRequest, CoreResponse } from '../remediation/protocol.js';
import { runOperation } from '../remediation/run.js';

export interface DirectExecutorConfig {
  /** Path of the kubeconfig; default: KUBECONFIG or ~/.kube/config as kubectl reads it. */
  kubeconfig?: string;
  /** Alert cluster name -> kubeconfig context. Without it every alert uses the current context. */
  contexts?: Record<string, string>;
}

/** Runs remediation-core operations in-process against a cluster the worker can reach. */
export function createDirectExecutor(config: DirectExecutorConfig, load = kubeConfigFromFile) {
  const cache = new Map<string, KubeClients>();
  function clientsFor(cluster: string): KubeClients {
    const context = config.contexts ? config.contexts[cluster] : undefined;
    if (config.contexts && !context) {
      throw ApplicationFailure.nonRetryable(
        `no kubeconfig context is configured for cluster ${cluster} (direct.contexts names ${Object.keys(config.contexts).join(', ') || 'none'})`,
        'UnknownCluster',
      );
    }
    const key = context ?? '';
    let clients = cache.get(key);
    if (!clients) {
      clients = kubeClients(load(config.kubeconfig ?? defaultKubeconfig(), context));
      cache.set(key, clients);
    }
    return clients;
  }

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
