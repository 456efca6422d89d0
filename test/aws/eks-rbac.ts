/**
 * EKS grants an access policy through its own authorizer; the devstack has only RBAC, so an association
 * becomes the equivalent binding of the policy's built-in ClusterRole (kube-apiserver bootstraps
 * cluster-admin, admin, edit and view): a RoleBinding per namespace for a namespace scope, a
 * ClusterRoleBinding for a cluster scope. The subject is the access entry's Kubernetes username,
 * which is what the token webhook authenticates the principal as.
 */
import { createHash } from 'node:crypto';
import { kubeRequest, type KubeTarget } from './kube-admin.js';

const POLICY_PREFIX = 'arn:aws:eks::aws:cluster-access-policy/';

/** The EKS access policies that have a built-in Kubernetes equivalent. */
export const ACCESS_POLICY_CLUSTER_ROLES: Record<string, string> = {
  [`${POLICY_PREFIX}AmazonEKSClusterAdminPolicy`]: 'cluster-admin',
  [`${POLICY_PREFIX}AmazonEKSAdminPolicy`]: 'admin',
  [`${POLICY_PREFIX}AmazonEKSEditPolicy`]: 'edit',
  [`${POLICY_PREFIX}AmazonEKSViewPolicy`]: 'view',
};

export interface AccessScope {
  type: 'cluster' | 'namespace';
  namespaces?: string[];
}

/** Where one binding lives (namespace undefined: a ClusterRoleBinding). */
export interface BindingRef {
  namespace?: string;
  name: string;
}

const RBAC = '/apis/rbac.authorization.k8s.io/v1';

/** Derived from the principal and the policy, so re-associating finds (and replaces) the same object. */
export function bindingName(principalArn: string, policyArn: string): string {
  const hash = createHash('sha256').update(principalArn).digest('hex').slice(0, 16);
  return `eks-access:${policyArn.slice(POLICY_PREFIX.length)}:${hash}`;
}

function bindingPath(ref: BindingRef): string {
  const name = encodeURIComponent(ref.name);
  return ref.namespace
    ? `${RBAC}/namespaces/${encodeURIComponent(ref.namespace)}/rolebindings/${name}`
    : `${RBAC}/clusterrolebindings/${name}`;
}

/** Creates (or replaces) the bindings for one association; returns those that exist afterwards. */
export async function grant(
  kube: KubeTarget,
  log: (line: string) => void,
  args: { principalArn: string; username: string; policyArn: string; scope: AccessScope },
): Promise<BindingRef[]> {
  const clusterRole = ACCESS_POLICY_CLUSTER_ROLES[args.policyArn]!;
  const name = bindingName(args.principalArn, args.policyArn);
  const refs: BindingRef[] =
    args.scope.type === 'cluster'
      ? [{ name }]
      : (args.scope.namespaces ?? []).map((namespace) => ({ namespace, name }));
  const made: BindingRef[] = [];
  for (const ref of refs) {
    const body = {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: ref.namespace ? 'RoleBinding' : 'ClusterRoleBinding',
      metadata: {
        name,
        ...(ref.namespace ? { namespace: ref.namespace } : {}),
        labels: { 'app.kubernetes.io/managed-by': 'eks-access-entries' },
        annotations: {
          'eks.amazonaws.com/principal-arn': args.principalArn,
          'eks.amazonaws.com/policy-arn': args.policyArn,
        },
      },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: clusterRole },
      subjects: [{ apiGroup: 'rbac.authorization.k8s.io', kind: 'User', name: args.username }],
    };
    const collection = ref.namespace
      ? `${RBAC}/namespaces/${encodeURIComponent(ref.namespace)}/rolebindings`
      : `${RBAC}/clusterrolebindings`;
    let res = await kubeRequest(kube, 'POST', collection, body);
    if (res.status === 409) res = await kubeRequest(kube, 'PUT', bindingPath(ref), body);
    if (res.status === 404 && ref.namespace) {
      // EKS accepts a scope naming a namespace that does not exist (yet); RBAC cannot bind in one.
      log(`[aws-front] eks: namespace ${ref.namespace} does not exist; no RoleBinding for ${args.principalArn}`);
      continue;
    }
    if (res.status >= 300)
      throw new Error(
        `kube ${ref.namespace ? 'RoleBinding' : 'ClusterRoleBinding'} ${ref.name}: ${res.status} ${JSON.stringify(res.body)}`,
      );
    made.push(ref);
  }
  return made;
}

export async function revoke(kube: KubeTarget, refs: BindingRef[]): Promise<void> {
  for (const ref of refs) {
    const res = await kubeRequest(kube, 'DELETE', bindingPath(ref));
    if (res.status >= 300 && res.status !== 404)
      throw new Error(`kube delete ${ref.name}: ${res.status} ${JSON.stringify(res.body)}`);
  }
}
