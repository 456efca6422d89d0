/**
 * What an EKS cluster owner installs for the eks-lambda executor (deploy/kubernetes/eks-remediator-rbac.yaml),
 * applied to the devstack's kube-apiserver, which stands in for the EKS clusters; and the per-namespace binding.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseAllDocuments } from 'yaml';
import { REMEDIATOR_GROUP } from '../domain/aws-resources.js';
import { kubeRequest, type KubeTarget } from '../test/aws/kube-admin.js';

export const EKS_RBAC_MANIFEST = fileURLToPath(
  new URL('../deploy/kubernetes/eks-remediator-rbac.yaml', import.meta.url),
);
const RBAC = '/apis/rbac.authorization.k8s.io/v1';

interface RbacObject {
  kind: 'ClusterRole' | 'ClusterRoleBinding' | 'RoleBinding';
  metadata: { name: string; namespace?: string };
}

function collection(o: RbacObject): string {
  const plural = `${o.kind.toLowerCase()}s`;
  return o.metadata.namespace
    ? `${RBAC}/namespaces/${encodeURIComponent(o.metadata.namespace)}/${plural}`
    : `${RBAC}/${plural}`;
}

/** Creates or replaces each object (RBAC kinds only: the manifest holds nothing else). */
async function apply(kube: KubeTarget, objects: RbacObject[]): Promise<void> {
  for (const o of objects) {
    let res = await kubeRequest(kube, 'POST', collection(o), o);
    if (res.status === 409)
      res = await kubeRequest(kube, 'PUT', `${collection(o)}/${encodeURIComponent(o.metadata.name)}`, o);
    if (res.status >= 300)
      throw new Error(`apply ${o.kind} ${o.metadata.name}: ${res.status} ${JSON.stringify(res.body)}`);
  }
}

export async function applyEksRbac(kube: KubeTarget): Promise<void> {
  await apply(
    kube,
    parseAllDocuments(readFileSync(EKS_RBAC_MANIFEST, 'utf8')).map((d) => d.toJSON() as RbacObject),
  );
}

/** What `kubectl create rolebinding pod-responder-remediator ...` in the manifest's header makes. */
export function remediatorRoleBinding(namespace: string) {
  return {
    apiVersion: 'rbac.authorization.k8s.io/v1',
    kind: 'RoleBinding' as const,
    metadata: { name: 'pod-responder-remediator', namespace },
    roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'pod-responder-remediator' },
    subjects: [{ apiGroup: 'rbac.authorization.k8s.io', kind: 'Group', name: `${REMEDIATOR_GROUP}:${namespace}` }],
  };
}
