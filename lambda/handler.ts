/**
 * The remediation Lambda: runs inside the cluster's VPC and executes one remediation-core operation
 * with an IAM-derived EKS token. The same core the direct executor runs in the worker.
 */
import { KubeConfig } from '@kubernetes/client-node';
import { kubeClients, KubeError } from '../remediation/kube.js';
import type { CoreRequest, CoreResponse } from '../remediation/protocol.js';
import { runOperation } from '../remediation/run.js';
import { credentialsFromEnv, eksToken } from './eks-token.js';

export interface RemediationEvent {
  cluster: {
    name: string;
    region: string;
    /** API server URL and base64 CA, from the workflow's DescribeCluster: the function needs no AWS API call. */
    endpoint: string;
    certificateAuthority: string;
  };
  request: CoreRequest;
}

export type RemediationResult =
  | { ok: true; response: CoreResponse<CoreRequest> }
  | { ok: false; error: { message: string; kube?: { status: number; reason: string; message: string } } };

export async function handler(event: RemediationEvent): Promise<RemediationResult> {
  const { cluster, request } = event;
  const token = await eksToken(cluster.name, cluster.region, credentialsFromEnv());
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [
      { name: cluster.name, server: cluster.endpoint, caData: cluster.certificateAuthority, skipTLSVerify: false },
    ],
    users: [{ name: 'lambda', token }],
    contexts: [{ name: 'eks', cluster: cluster.name, user: 'lambda' }],
    currentContext: 'eks',
  });
  try {
    return { ok: true, response: await runOperation(kubeClients(kc), request) };
  } catch (err) {
    // Kubernetes refusals are answers, not crashes: return them with their status so the workflow can decide.
    if (err instanceof KubeError) return { ok: false, error: { message: err.message, kube: err.failure } };
    throw err;
  }
}
