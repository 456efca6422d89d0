/**
 * Real refusals from the real kube-apiserver: a ValidatingAdmissionPolicy (CEL, no webhook) that denies
 * chosen writes in one namespace with 403 Forbidden, as an RBAC gap or a policy engine would in production.
 */
import { AdmissionregistrationV1Api, AppsV1Api, CoreV1Api } from '@kubernetes/client-node';
import { randomBytes } from 'node:crypto';
import { inject } from 'vitest';
import { kubeConfigFromFile } from '../../remediation/kube.js';

export interface Refusal {
  /** Removes the policy and waits until the writes pass again. */
  lift(): Promise<void>;
}

const kc = () => kubeConfigFromFile(inject('kubeconfigPath'));

/** Refuses UPDATE (patch included) of `resource` (e.g. `deployments/scale`) in `namespace` until lifted. */
export async function refuseUpdates(
  namespace: string,
  group: string,
  resource: string,
  probe: () => Promise<unknown>,
): Promise<Refusal> {
  const api = kc().makeApiClient(AdmissionregistrationV1Api);
  const name = `refuse-${randomBytes(3).toString('hex')}`;
  const namespaceSelector = { matchLabels: { 'kubernetes.io/metadata.name': namespace } };
  await api.createValidatingAdmissionPolicy({
    body: {
      metadata: { name },
      spec: {
        failurePolicy: 'Fail',
        matchConstraints: {
          resourceRules: [{ apiGroups: [group], apiVersions: ['v1'], operations: ['UPDATE'], resources: [resource] }],
          namespaceSelector,
        },
        validations: [
          {
            expression: 'false',
            message: `${resource} writes are refused in ${namespace} by a test policy`,
            reason: 'Forbidden',
          },
        ],
      },
    },
  });
  await api.createValidatingAdmissionPolicyBinding({
    body: {
      metadata: { name },
      spec: { policyName: name, validationActions: ['Deny'], matchResources: { namespaceSelector } },
    },
  });
  // Policies reach the admission chain through an informer: wait until a dry-run write is refused.
  await until(async () => (await status(probe)) === 403, `${name} to take effect`);
  return {
    async lift() {
      await api.deleteValidatingAdmissionPolicyBinding({ name });
      await api.deleteValidatingAdmissionPolicy({ name });
      await until(async () => (await status(probe)) !== 403, `${name} to be lifted`);
    },
  };
}

/** A dry-run scale of a Deployment: the probe for a policy on `deployments/scale`. */
export function dryRunScale(namespace: string, name: string, replicas: number) {
  const apps = kc().makeApiClient(AppsV1Api);
  return () =>
    apps.replaceNamespacedDeploymentScale({
      namespace,
      name,
      dryRun: 'All',
      body: { metadata: { name, namespace }, spec: { replicas } },
    });
}

/**
 * A Node object with its Ready condition: `Unknown` is what the node controller shows when a kubelet stops
 * reporting (the node is unreachable and nothing on it is being stopped).
 */
export async function createNode(ready: 'True' | 'Unknown'): Promise<string> {
  const core = kc().makeApiClient(CoreV1Api);
  const name = `node-${randomBytes(3).toString('hex')}`;
  const node = await core.createNode({ body: { metadata: { name, labels: { 'kubernetes.io/os': 'linux' } } } });
  node.status = {
    conditions: [
      ready === 'True'
        ? {
            type: 'Ready',
            status: 'True',
            reason: 'KubeletReady',
            message: 'kubelet is posting ready status',
            lastHeartbeatTime: new Date(),
            lastTransitionTime: new Date(Date.now() - 3600_000),
          }
        : {
            type: 'Ready',
            status: 'Unknown',
            reason: 'NodeStatusUnknown',
            message: 'Kubelet stopped posting node status.',
            lastHeartbeatTime: new Date(Date.now() - 120_000),
            lastTransitionTime: new Date(Date.now() - 60_000),
          },
    ],
  };
  await core.replaceNodeStatus({ name, body: node });
  return name;
}

async function status(call: () => Promise<unknown>): Promise<number> {
  try {
    await call();
    return 200;
  } catch (err) {
    return (err as { code?: number }).code ?? 0;
  }
}

async function until(check: () => Promise<boolean>, what: string, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
