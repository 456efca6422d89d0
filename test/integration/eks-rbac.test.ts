/**
 * The remediation function's Kubernetes rights (deploy/kubernetes/eks-remediator-rbac.yaml, applied to the real
 * kube-apiserver by the stack as a cluster owner would), checked with SubjectAccessReview against the calls the
 * remediation core really makes, read from its source: every one allowed, nothing else.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { EKS_RBAC_MANIFEST } from '../../devstack/eks-rbac.js';
import { remediatorGroups } from '../../domain/aws-resources.js';
import { createEksNamespace, createNamespace, testKube, type TestKube } from '../support/cluster.js';
import {
  accessesOfTheCore,
  accessKey,
  CHECKPOINT_ACCESS,
  grantedByManifest,
  type Access,
} from '../support/core-access.js';

/** The opt-in checkpoint grant (policy checkpointContainers): in a manifest of its own, not in the default one. */
const CHECKPOINT_RBAC_MANIFEST = EKS_RBAC_MANIFEST.replace(
  'eks-remediator-rbac.yaml',
  'eks-remediator-checkpoint-rbac.yaml',
);
const key = accessKey;
const granted = (manifest = EKS_RBAC_MANIFEST) => grantedByManifest(manifest);

let kube: TestKube;
let ns: string;
let other: string;
const FUNCTION_USER = 'arn:aws:iam::123456789012:role/pod-responder-0123456789abcdef-s1';

async function allowed(
  namespace: string | undefined,
  attrs: Omit<Access, 'namespaced'>,
  groups = remediatorGroups(ns),
): Promise<boolean> {
  const review = await kube.authz.createSubjectAccessReview({
    body: {
      apiVersion: 'authorization.k8s.io/v1',
      kind: 'SubjectAccessReview',
      spec: { user: FUNCTION_USER, groups, resourceAttributes: { ...(namespace ? { namespace } : {}), ...attrs } },
    },
  });
  return review.status?.allowed === true;
}

beforeAll(async () => {
  kube = testKube();
  ns = await createEksNamespace(kube, 'rbac');
  other = await createEksNamespace(kube, 'rbac-other');
});

describe("the remediation function's Kubernetes rights", () => {
  const all = accessesOfTheCore();
  // The checkpoint call is made only with policy checkpointContainers, and granted only by its opt-in manifest.
  const core = all.filter((a) => key(a) !== CHECKPOINT_ACCESS);

  it("are derived from the core's own calls (the source is read, not a list kept by hand)", () => {
    expect(core.length).toBeGreaterThanOrEqual(15);
    expect(core.map(key)).toEqual(
      expect.arrayContaining([
        'delete core/pods',
        'patch apps/deployments/scale',
        'list batch/jobs',
        'get core/nodes',
        'get core/pods/log',
        'list core/events',
      ]),
    );
  });

  it('grant exactly what the core calls: nothing more; nodes/proxy only in the opt-in checkpoint manifest', () => {
    expect([...granted()].sort()).toEqual(core.map(key).sort());
    expect(all.map(key)).toContain(CHECKPOINT_ACCESS);
    expect([...granted(CHECKPOINT_RBAC_MANIFEST)]).toEqual([CHECKPOINT_ACCESS]);
  });

  it("allow every call the core makes, in the incident's namespace (nodes: cluster-wide, read only)", async () => {
    for (const { namespaced, ...attrs } of core) {
      expect(await allowed(namespaced ? ns : undefined, attrs), key(attrs)).toBe(true);
    }
  });

  it('allow none of them in another namespace, even one bound for its own incidents', async () => {
    for (const { namespaced, ...attrs } of core.filter((a) => a.namespaced)) {
      expect(await allowed(other, attrs), key(attrs)).toBe(false);
    }
  });

  it('deny Secrets, exec, creating pods, deleting workloads, RBAC, and writing nodes', async () => {
    const denied: [string | undefined, Omit<Access, 'namespaced'>][] = [
      [ns, { verb: 'get', group: '', resource: 'secrets' }],
      [ns, { verb: 'list', group: '', resource: 'secrets' }],
      [ns, { verb: 'create', group: '', resource: 'pods', subresource: 'exec' }],
      [ns, { verb: 'get', group: '', resource: 'pods', subresource: 'exec' }],
      [ns, { verb: 'create', group: '', resource: 'pods' }],
      [ns, { verb: 'delete', group: 'apps', resource: 'deployments' }],
      [ns, { verb: 'update', group: '', resource: 'configmaps' }],
      [ns, { verb: 'create', group: 'rbac.authorization.k8s.io', resource: 'rolebindings' }],
      [ns, { verb: 'create', group: '', resource: 'serviceaccounts', subresource: 'token' }],
      [undefined, { verb: 'list', group: '', resource: 'secrets' }],
      [undefined, { verb: 'patch', group: '', resource: 'nodes' }],
      [undefined, { verb: 'list', group: '', resource: 'nodes' }],
      // Every kubelet API of every node: only with the opt-in checkpoint manifest.
      [undefined, { verb: 'create', group: '', resource: 'nodes', subresource: 'proxy' }],
      [undefined, { verb: 'get', group: '', resource: 'nodes', subresource: 'proxy' }],
    ];
    for (const [namespace, attrs] of denied)
      expect(await allowed(namespace, attrs), `${key(attrs)} in ${namespace ?? 'the cluster'}`).toBe(false);
  });

  it("are nothing without the namespace's binding: an unbound namespace allows no call", async () => {
    const unbound = await createNamespace(kube, 'rbac-unbound');
    for (const { namespaced, ...attrs } of core.filter((a) => a.namespaced)) {
      expect(await allowed(unbound, attrs, remediatorGroups(unbound)), key(attrs)).toBe(false);
    }
  });
});
