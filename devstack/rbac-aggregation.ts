/**
 * The built-in ClusterRoles admin, edit and view are aggregated: kube-apiserver creates them with an
 * aggregationRule and no rules, and kube-controller-manager's clusterrole-aggregation controller fills
 * the rules in. The devstack runs no controller manager, so this does that controller's work once,
 * after the bootstrap roles exist; without it a binding to `edit` grants nothing.
 */
import { kubeRequest, type KubeTarget } from '../test/aws/kube-admin.js';

interface Rule {
  [key: string]: unknown;
}

interface ClusterRole {
  metadata: { name: string; labels?: Record<string, string> };
  rules?: Rule[] | null;
  aggregationRule?: { clusterRoleSelectors?: { matchLabels?: Record<string, string> }[] };
}

const CLUSTER_ROLES = '/apis/rbac.authorization.k8s.io/v1/clusterroles';

export async function aggregateClusterRoles(kube: KubeTarget): Promise<void> {
  const res = await kubeRequest(kube, 'GET', CLUSTER_ROLES);
  if (res.status !== 200) throw new Error(`list clusterroles: ${res.status} ${JSON.stringify(res.body)}`);
  const roles = (res.body as { items: ClusterRole[] }).items;
  const matches = (role: ClusterRole, selector: { matchLabels?: Record<string, string> }) =>
    Object.entries(selector.matchLabels ?? {}).every(([k, v]) => role.metadata.labels?.[k] === v);

  // Aggregated roles aggregate each other (edit is part of admin): repeat until nothing changes.
  const changed = new Set<ClusterRole>();
  for (let pass = 0; pass < 5; pass++) {
    let progress = false;
    for (const role of roles) {
      const selectors = role.aggregationRule?.clusterRoleSelectors;
      if (!selectors) continue;
      const seen = new Set<string>();
      const rules: Rule[] = [];
      for (const source of roles) {
        if (source === role || !selectors.some((s) => matches(source, s))) continue;
        for (const rule of source.rules ?? []) {
          const key = JSON.stringify(rule);
          if (!seen.has(key)) {
            seen.add(key);
            rules.push(rule);
          }
        }
      }
      if (JSON.stringify(rules) !== JSON.stringify(role.rules ?? [])) {
        role.rules = rules;
        changed.add(role);
        progress = true;
      }
    }
    if (!progress) break;
  }
  for (const role of changed) {
    const put = await kubeRequest(kube, 'PUT', `${CLUSTER_ROLES}/${encodeURIComponent(role.metadata.name)}`, role);
    if (put.status !== 200)
      throw new Error(`update clusterrole ${role.metadata.name}: ${put.status} ${JSON.stringify(put.body)}`);
  }
}
