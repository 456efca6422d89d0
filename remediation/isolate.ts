/**
 * Network isolation of one pod: a label unique to the incident on the pod (added, never changing an
 * existing label, so the pod stays matched by its ReplicaSet), and a NetworkPolicy selecting that label
 * with both policy types and no rules: deny all, in and out. The policy is owned by the pod while the pod
 * lives, so the cluster's garbage collector removes it with a pod the incident leaves alive (denied, failed,
 * an incident terminated by hand). The kill takes that ownership away first (`keepIsolation`): the pod object
 * goes before its node confirms the container stopped, so from then on the incident removes the policy
 * itself, once the kill is verified on a Ready node (workflows/incident/isolation.ts).
 *
 * Isolation that cannot hold is reported, not claimed: a hostNetwork pod is outside NetworkPolicy, and
 * NetworkPolicies add up, so another policy that selects the pod and allows traffic keeps allowing it.
 */
import type { V1LabelSelector, V1NetworkPolicy, V1Pod } from '@kubernetes/client-node';
import { createHash } from 'node:crypto';
import {
  kubeCall,
  kubeFailure,
  KubeError,
  mergePatch,
  readOrNull,
  type KubeClients,
  type KubeFailure,
} from './kube.js';
import type { ActionResult, IsolationRecord, PodTarget } from './protocol.js';

export const ISOLATION_LABEL = 'pod-responder.io/isolated';
export const INCIDENT_ANNOTATION = 'pod-responder.io/incident';
export const ENFORCEMENT_NOTE =
  "enforced only where the cluster's network plugin enforces NetworkPolicy (Calico, Cilium, the VPC CNI with network policy on, ...)";

/** Names derive from the incident: a retried or repeated isolation finds what the first one made. */
export function isolationNames(incidentId: string): { label: string; policy: string } {
  const hash = createHash('sha256').update(incidentId).digest('hex').slice(0, 16);
  return { label: hash, policy: `pod-responder-isolate-${hash}` };
}

const describePolicy = (r: Pick<IsolationRecord, 'namespace' | 'networkPolicy'>) =>
  `NetworkPolicy ${r.namespace}/${r.networkPolicy}`;

export interface Isolated {
  result: ActionResult;
  record: IsolationRecord | null;
  /** Why the policy cannot cut the pod off, though it may be in place (then `record` says what to release). */
  notEnforceable?: string;
}

export async function isolatePod(kube: KubeClients, incidentId: string, pod: PodTarget): Promise<Isolated> {
  const names = isolationNames(incidentId);
  const record: IsolationRecord = {
    incidentId,
    namespace: pod.namespace,
    networkPolicy: names.policy,
    label: { key: ISOLATION_LABEL, value: names.label },
    pod,
  };
  const target = `pod ${pod.namespace}/${pod.name} (uid ${pod.uid})`;
  const result = (status: ActionResult['status'], message: string): ActionResult => ({
    action: 'isolate-pod',
    target,
    status,
    message,
  });

  // The policy first: it selects nothing until the label is on the pod, and it is ours to remove either way.
  const policy = await ensurePolicy(kube, record);
  if (typeof policy === 'object') return { result: result('conflict', policy.refused), record: null };

  try {
    // The uid in the patch is a precondition: a pod that replaced ours under the same name is never labelled.
    await kube.core.patchNamespacedPod(
      {
        namespace: pod.namespace,
        name: pod.name,
        body: { metadata: { uid: pod.uid, labels: { [ISOLATION_LABEL]: names.label } } },
      },
      mergePatch,
    );
  } catch (err) {
    const f = kubeFailure(err);
    if (f.status !== 404 && !replaced(f)) throw new KubeError(`label ${target}`, f);
    await releaseIsolation(kube, record); // nothing to isolate: leave nothing behind
    return {
      result: result('not-found', f.status === 404 ? 'pod already gone' : `pod was replaced: ${f.message}`),
      record: null,
    };
  }

  // Read back: the label on this pod, and the policy selecting it with no rules.
  const [now, readBack] = await Promise.all([
    readOrNull(`read ${target}`, () => kube.core.readNamespacedPod({ namespace: pod.namespace, name: pod.name })),
    readOrNull(`read ${describePolicy(record)}`, () =>
      kube.networking.readNamespacedNetworkPolicy({ namespace: pod.namespace, name: names.policy }),
    ),
  ]);
  if (!now || now.metadata?.uid !== pod.uid) {
    await releaseIsolation(kube, record);
    return { result: result('not-found', 'pod gone while isolating'), record: null };
  }
  if (now.metadata?.labels?.[ISOLATION_LABEL] !== names.label)
    throw new KubeError(`verify ${target}`, {
      status: 0,
      reason: 'NotIsolated',
      message: `label ${ISOLATION_LABEL} is not ${names.label} on read back`,
    });
  if (!readBack || !deniesAll(readBack, names.label))
    throw new KubeError(`verify ${describePolicy(record)}`, {
      status: 0,
      reason: 'NotIsolated',
      message: 'the policy read back does not deny all traffic to the label',
    });

  if (now.spec?.hostNetwork) {
    // NetworkPolicy applies to pod networks only: on the host's network the policy would be a claim, not a control.
    await releaseIsolation(kube, record);
    const why = `the pod uses the host's network (hostNetwork: true), which NetworkPolicy does not apply to`;
    return { result: result('unsupported', `not isolated: ${why}`), record: null, notEnforceable: why };
  }
  const allowing = await policiesAllowing(kube, now, names.policy);
  const denies = `${describePolicy(record)} denies all ingress and egress of label ${ISOLATION_LABEL}=${names.label}`;
  if (allowing.length) {
    // Kept: it still denies whatever no other policy allows (a direction no other policy covers, say).
    const why = `NetworkPolicies add up and ${allowing.join('; ')}: the deny-all does not cut that traffic`;
    return {
      result: result('unsupported', `${denies}, but that is not enforceable: ${why}`),
      record,
      notEnforceable: why,
    };
  }
  return { result: result(policy === 'created' ? 'done' : 'already-done', `${denies}; ${ENFORCEMENT_NOTE}`), record };
}

/**
 * Before the kill: the policy is no longer owned by the pod, so the garbage collector does not delete it when the
 * pod object goes (which, deleted from the API, may still run until its node's kubelet stops it). Only our policy
 * (annotated with the incident) is changed; a policy already gone or not ours is reported, not touched.
 */
export async function keepIsolation(kube: KubeClients, record: IsolationRecord): Promise<string> {
  const { namespace, networkPolicy: name } = record;
  const target = describePolicy(record);
  const existing = await readOrNull(`read ${target}`, () =>
    kube.networking.readNamespacedNetworkPolicy({ namespace, name }),
  );
  if (!existing) return `${target} is gone: the pod is not isolated`;
  if (existing.metadata?.annotations?.[INCIDENT_ANNOTATION] !== record.incidentId)
    return `${target} is not this incident's: left intact`;
  if (!existing.metadata?.ownerReferences?.length) return `${target} kept until the kill is verified`;
  // The resourceVersion makes the patch conditional: a policy changed since the read is read again by a retry.
  await kubeCall(`keep ${target}`, () =>
    kube.networking.patchNamespacedNetworkPolicy(
      {
        namespace,
        name,
        body: { metadata: { resourceVersion: existing.metadata?.resourceVersion, ownerReferences: null } },
      },
      mergePatch,
    ),
  );
  return `${target} kept until the kill is verified (no longer owned by the pod)`;
}

/** Other policies that select the pod and allow some of its traffic, in words ("NetworkPolicy ns/x allows its ingress"). */
async function policiesAllowing(kube: KubeClients, pod: V1Pod, ours: string): Promise<string[]> {
  const namespace = pod.metadata!.namespace!;
  const labels = pod.metadata?.labels ?? {};
  const { items } = await kubeCall(`list NetworkPolicies in ${namespace}`, () =>
    kube.networking.listNamespacedNetworkPolicy({ namespace }),
  );
  const out: string[] = [];
  for (const p of items) {
    if (p.metadata?.name === ours || !selects(p.spec?.podSelector, labels)) continue;
    const s = p.spec!;
    // policyTypes unset: Ingress always, Egress when it has egress rules (the API's own default).
    const types = s.policyTypes ?? ['Ingress', ...(s.egress ? ['Egress'] : [])];
    const allowed = [
      types.includes('Ingress') && s.ingress?.length ? 'ingress' : null,
      types.includes('Egress') && s.egress?.length ? 'egress' : null,
    ].filter(Boolean);
    if (allowed.length)
      out.push(
        `NetworkPolicy ${namespace}/${p.metadata?.name} also selects the pod and allows its ${allowed.join(' and ')}`,
      );
  }
  return out;
}

/** A label selector matched against a pod's labels (an empty selector selects every pod). */
export function selects(selector: V1LabelSelector | undefined, labels: Record<string, string>): boolean {
  for (const [k, v] of Object.entries(selector?.matchLabels ?? {})) if (labels[k] !== v) return false;
  for (const e of selector?.matchExpressions ?? []) {
    const has = e.key in labels;
    const value = labels[e.key];
    const ok =
      e.operator === 'In'
        ? has && (e.values ?? []).includes(value!)
        : e.operator === 'NotIn'
          ? !has || !(e.values ?? []).includes(value!)
          : e.operator === 'Exists'
            ? has
            : e.operator === 'DoesNotExist'
              ? !has
              : false;
    if (!ok) return false;
  }
  return true;
}

/** Removes the policy (only if it is ours) and the label (only from the same pod); gone is done. */
export async function releaseIsolation(kube: KubeClients, record: IsolationRecord): Promise<ActionResult> {
  const { namespace, networkPolicy: name, pod } = record;
  const target = describePolicy(record);
  const result = (status: ActionResult['status'], message: string): ActionResult => ({
    action: 'release-isolation',
    target,
    status,
    message,
  });
  const existing = await readOrNull(`read ${target}`, () =>
    kube.networking.readNamespacedNetworkPolicy({ namespace, name }),
  );
  let policy = 'already gone';
  if (existing) {
    const owner = existing.metadata?.annotations?.[INCIDENT_ANNOTATION];
    if (owner !== record.incidentId)
      return result(
        'conflict',
        `left intact: it belongs to ${owner ? `incident ${owner}` : 'someone else'}, not ${record.incidentId}`,
      );
    try {
      await kube.networking.deleteNamespacedNetworkPolicy({
        namespace,
        name,
        body: { preconditions: { uid: existing.metadata?.uid } },
      });
      policy = 'deleted';
    } catch (err) {
      const f = kubeFailure(err);
      if (f.status !== 404 && f.status !== 409) throw new KubeError(`delete ${target}`, f);
    }
  }
  let label = 'pod gone';
  try {
    await kube.core.patchNamespacedPod(
      { namespace, name: pod.name, body: { metadata: { uid: pod.uid, labels: { [record.label.key]: null } } } },
      mergePatch,
    );
    label = 'label removed';
  } catch (err) {
    const f = kubeFailure(err);
    if (f.status !== 404 && !replaced(f)) throw new KubeError(`unlabel pod ${namespace}/${pod.name}`, f);
  }
  return result(existing ? 'done' : 'already-done', `policy ${policy}; ${label}`);
}

/** Creates the deny-all policy, or adopts it when it is this incident's; `refused` says why it cannot. */
async function ensurePolicy(
  kube: KubeClients,
  r: IsolationRecord,
): Promise<'created' | 'adopted' | { refused: string }> {
  const body: V1NetworkPolicy = {
    apiVersion: 'networking.k8s.io/v1',
    kind: 'NetworkPolicy',
    metadata: {
      name: r.networkPolicy,
      namespace: r.namespace,
      labels: { 'app.kubernetes.io/managed-by': 'pod-responder' },
      annotations: { [INCIDENT_ANNOTATION]: r.incidentId },
      // Garbage-collected with a pod the incident leaves alive; the kill removes this first (keepIsolation).
      ownerReferences: [{ apiVersion: 'v1', kind: 'Pod', name: r.pod.name, uid: r.pod.uid }],
    },
    spec: {
      podSelector: { matchLabels: { [r.label.key]: r.label.value } },
      policyTypes: ['Ingress', 'Egress'],
      ingress: [],
      egress: [],
    },
  };
  try {
    await kube.networking.createNamespacedNetworkPolicy({ namespace: r.namespace, body });
    return 'created';
  } catch (err) {
    const f = kubeFailure(err);
    if (f.status !== 409) throw new KubeError(`create ${describePolicy(r)}`, f);
  }
  const existing = await kubeCall(`read ${describePolicy(r)}`, () =>
    kube.networking.readNamespacedNetworkPolicy({ namespace: r.namespace, name: r.networkPolicy }),
  );
  const owner = existing.metadata?.annotations?.[INCIDENT_ANNOTATION];
  if (owner !== r.incidentId)
    return {
      refused: `${describePolicy(r)} exists and is not this incident's (${owner ? `incident ${owner}` : 'no pod-responder annotation'}): left intact, the pod is not isolated`,
    };
  if (!deniesAll(existing, r.label.value))
    return {
      refused: `${describePolicy(r)} is this incident's but was changed: it no longer denies all traffic; isolate by hand`,
    };
  return 'adopted';
}

/** A patch carrying the pod's uid, refused because the name now holds another pod (the API says uid is immutable). */
function replaced(f: KubeFailure): boolean {
  return f.status === 409 || (f.status === 422 && f.message.includes('metadata.uid'));
}

function deniesAll(p: V1NetworkPolicy, value: string): boolean {
  const s = p.spec;
  return (
    s?.podSelector?.matchLabels?.[ISOLATION_LABEL] === value &&
    Object.keys(s.podSelector.matchLabels).length === 1 &&
    !s.podSelector.matchExpressions?.length &&
    (s.policyTypes ?? []).includes('Ingress') &&
    (s.policyTypes ?? []).includes('Egress') &&
    !s.ingress?.length &&
    !s.egress?.length
  );
}
