import { inject } from 'vitest';
import { remediatorRoleBinding } from '../../devstack/eks-rbac.js';
import { createNamespace, fixtureKube, type TestKube } from '../../devstack/fixtures.js';

export {
  createNamespace,
  createPod,
  createWorkload,
  markRunning,
  podExists,
  type TestKube,
  type Workload,
} from '../../devstack/fixtures.js';

/** Clients for the stack the global setup started. */
export function testKube(): TestKube {
  return fixtureKube(inject('kubeconfigPath'));
}

/** What the cluster owner does for each namespace the EKS function may act in (deploy/kubernetes/eks-remediator-rbac.yaml). */
export async function bindEksNamespace(kube: TestKube, namespace: string): Promise<void> {
  await kube.rbac.createNamespacedRoleBinding({ namespace, body: remediatorRoleBinding(namespace) });
}

/** A namespace the EKS function may act in. */
export async function createEksNamespace(kube: TestKube, prefix: string): Promise<string> {
  const namespace = await createNamespace(kube, prefix);
  await bindEksNamespace(kube, namespace);
  return namespace;
}
