/**
 * The Kubernetes access the remediation core needs, read from its source (remediation/*.ts), not from a list
 * kept by hand: each typed client-node call (`kube.apps.patchNamespacedDeploymentScale(...)`) is one access.
 * The EKS RBAC manifest and the Helm chart are both checked against it.
 */
import { readdirSync, readFileSync } from 'node:fs';
import * as path from 'node:path';
import { parseAllDocuments } from 'yaml';

export interface Access {
  verb: string;
  group: string;
  resource: string;
  subresource?: string;
  namespaced: boolean;
}

export const accessKey = (a: Pick<Access, 'verb' | 'group' | 'resource' | 'subresource'>) =>
  `${a.verb} ${a.group || 'core'}/${a.resource}${a.subresource ? `/${a.subresource}` : ''}`;

const GROUP_OF_CLIENT: Record<string, string> = {
  core: '',
  apps: 'apps',
  batch: 'batch',
  networking: 'networking.k8s.io',
};
const VERB_OF_METHOD: Record<string, string> = {
  read: 'get',
  list: 'list',
  delete: 'delete',
  patch: 'patch',
  create: 'create',
  replace: 'update',
  connectPost: 'create',
};
/** Kinds in a method name that are a resource's subresource: readNamespacedPodLog is get pods/log. */
const SUBRESOURCE_OF_KIND: Record<string, [string, string]> = {
  PodLog: ['pods', 'log'],
  NodeProxyWithPath: ['nodes', 'proxy'],
};
/** The opt-in checkpoint call (policy checkpointContainers): granted only by a manifest of its own. */
export const CHECKPOINT_ACCESS = 'create core/nodes/proxy';

export function accessesOfTheCore(): Access[] {
  const dir = path.resolve(import.meta.dirname, '../../remediation');
  const found = new Map<string, Access>();
  for (const file of readdirSync(dir).filter((f) => f.endsWith('.ts'))) {
    const source = readFileSync(path.join(dir, file), 'utf8');
    for (const m of source.matchAll(
      /\.(core|apps|batch|networking)\s*\.\s*(read|list|delete|patch|create|replace|connectPost)(Namespaced)?([A-Z][A-Za-z]+)\(/g,
    )) {
      const [, client, method, namespaced, kind] = m as unknown as [string, string, string, string | undefined, string];
      const scale = kind.endsWith('Scale') && kind !== 'Scale';
      const base = scale ? kind.slice(0, -'Scale'.length) : kind;
      const sub = SUBRESOURCE_OF_KIND[kind];
      const a: Access = {
        verb: VERB_OF_METHOD[method]!,
        group: GROUP_OF_CLIENT[client]!,
        resource: sub ? sub[0] : base.toLowerCase().replace(/y$/, 'ie') + 's', // NetworkPolicy -> networkpolicies
        ...(scale ? { subresource: 'scale' } : sub ? { subresource: sub[1] } : {}),
        namespaced: !!namespaced,
      };
      found.set(accessKey(a), a);
    }
  }
  return [...found.values()];
}

/** Every (verb, resource) the ClusterRoles among these objects grant. */
export function grantedBy(
  objects: { kind?: string; rules?: { apiGroups: string[]; resources: string[]; verbs: string[] }[] }[],
): Set<string> {
  const out = new Set<string>();
  for (const doc of objects) {
    if (doc.kind !== 'ClusterRole') continue;
    for (const rule of doc.rules ?? []) {
      for (const group of rule.apiGroups) {
        for (const r of rule.resources) {
          const [resource, subresource] = r.split('/') as [string, string | undefined];
          for (const verb of rule.verbs)
            out.add(accessKey({ verb, group, resource, ...(subresource ? { subresource } : {}) }));
        }
      }
    }
  }
  return out;
}

export const grantedByManifest = (file: string) =>
  grantedBy(parseAllDocuments(readFileSync(file, 'utf8')).map((d) => d.toJSON()));
