/**
 * Network isolation of one pod: a label unique to the incident on the pod (added, never changing an
 * existing label, so the pod stays matched by its ReplicaSet), and a NetworkPolicy selecting that label
 * with both policy types and no rules: deny all, in and out. The policy is owned by the pod, so the
 * cluster's garbage collector removes it with the pod even if nothing else does.
 */
import type { V1NetworkPolicy } from '@kubernetes/client-node';
import { createHash } from 'node:crypto';
import { kubeCall, kubeFailure, KubeError, mergePatch, readOrNull, type KubeClients, type KubeFailure } from './kube.js';
import type { ActionResult, IsolationRecord, PodTarget } from './protocol.js';

export const ISOLATION_LABEL = 'pod-responder.io/isolated';
export const INCIDENT_ANNOTATION = 'pod-responder.io/incident';
export const ENFORCEMENT_NOTE = "enforced only where the cluster's network plugin enforces NetworkPolicy (Calico, Cilium, the VPC CNI with network policy on, ...)";

/** Names derive from the incident: a retried or repeated isolation finds what the first one made. */
export function isolationNames(incidentId: string): { label: string; policy: string } {
  const hash = createHash('sha256').update(incidentId).digest('hex').slice(0, 16);
  return { label: hash, policy: `pod-responder-isolate-${hash}` };
}

const describePolicy = (r: Pick<IsolationRecord, 'namespace' | 'networkPolicy'>) => `NetworkPolicy ${r.namespace}/${r.networkPolicy}`;

export async function isolatePod(kube: KubeClients, incidentId: string, pod: PodTarget): Promise<{ result: ActionResult; record: IsolationRecord | null }> {
  const names = isolationNames(incidentId);
  const record: IsolationRecord = { incidentId, namespace: pod.namespace, networkPolicy: names.policy, label: { key: ISOLATION_LABEL, value: names.label }, pod };
  const target = `pod ${pod.namespace}/${pod.name} (uid ${pod.uid})`;
  const result = (status: ActionResult['status'], message: string): ActionResult => ({ action: 'isolate-pod', target, status, message });

  // The policy first: it selects nothing until the label is on the pod, and it is ours to remove either way.
  const policy = await ensurePolicy(kube, record);
  if (policy !== 'created' && policy !== 'adopted') return { result: result('conflict', policy), record: null };

  try {
    // The uid in the patch is a precondition: a pod that replaced ours under the same name is never labelled.
    await kube.core.patchNamespacedPod({ namespace: pod.namespace, name: pod.name, body: { metadata: { uid: pod.uid, labels: { [ISOLATION_LABEL]: names.label } } } }, mergePatch);
  } catch (err) {
    const f = kubeFailure(err);
    if (f.status !== 404 && !replaced(f)) throw new KubeError(`label ${target}`, f);
    await releaseIsolation(kube, record); // nothing to isolate: leave nothing behind
    return { result: result('not-found', f.status === 404 ? 'pod already gone' : `pod was replaced: ${f.message}`), record: null };
  }

  // Read back: the label on this pod, and the policy selecting it with no rules.
  const [now, readBack] = await Promise.all([
    readOrNull(`read ${target}`, () => kube.core.readNamespacedPod({ namespace: pod.namespace, name: pod.name })),
    readOrNull(`read ${describePolicy(record)}`, () => kube.networking.readNamespacedNetworkPolicy({ namespace: pod.namespace, name: names.policy })),
  ]);
  if (!now || now.metadata?.uid !== pod.uid) {
    await releaseIsolation(kube, record);
    return { result: result('not-found', 'pod gone while isolating'), record: null };
  }
  if (now.metadata?.labels?.[ISOLATION_LABEL] !== names.label) throw new KubeError(`verify ${target}`, { status: 0, reason: 'NotIsolated', message: `label ${ISOLATION_LABEL} is not ${names.label} on read back` });
  if (!readBack || !deniesAll(readBack, names.label)) throw new KubeError(`verify ${describePolicy(record)}`, { status: 0, reason: 'NotIsolated', message: 'the policy read back does not deny all traffic to the label' });
  return { result: result(policy === 'created' ? 'done' : 'already-done', `${describePolicy(record)} denies all ingress and egress of label ${ISOLATION_LABEL}=${names.label}; ${ENFORCEMENT_NOTE}`), record };
}

/** Removes the policy (only if it is ours) and the label (only from the same pod); gone is done. */
export async function releaseIsolation(kube: KubeClients, record: IsolationRecord): Promise<ActionResult> {
  const { namespace, networkPolicy: name, pod } = record;
  const target = describePolicy(record);
  const result = (status: ActionResult['status'], message: string): ActionResult => ({ action: 'release-isolation', target, status, message });
  const existing = await readOrNull(`read ${target}`, () => kube.networking.readNamespacedNetworkPolicy({ namespace, name }));
  let policy = 'already gone';
  if (existing) {
    const owner = existing.metadata?.annotations?.[INCIDENT_ANNOTATION];
    if (owner !== record.incidentId) return result('conflict', `left intact: it belongs to ${owner ? `incident ${owner}` : 'someone else'}, not ${record.incidentId}`);
    try {
      await kube.networking.deleteNamespacedNetworkPolicy({ namespace, name, body: { preconditions: { uid: existing.metadata?.uid } } });
      policy = 'deleted';
    } catch (err) {
      const f = kubeFailure(err);
      if (f.status !== 404 && f.status !== 409) throw new KubeError(`delete ${target}`, f);
    }
  }
  let label = 'pod gone';
  try {
    await kube.core.patchNamespacedPod({ namespace, name: pod.name, body: { metadata: { uid: pod.uid, labels: { [record.label.key]: null } } } }, mergePatch);
    label = 'label removed';
  } catch (err) {
    const f = kubeFailure(err);
    if (f.status !== 404 && !replaced(f)) throw new KubeError(`unlabel pod ${namespace}/${pod.name}`, f);
  }
  return result(existing ? 'done' : 'already-done', `policy ${policy}; ${label}`);
}

/** Creates the deny-all policy, or adopts it when it is this incident's; a string says why it cannot. */
async function ensurePolicy(kube: KubeClients, r: IsolationRecord): Promise<'created' | 'adopted' | string> {
  const body: V1NetworkPolicy = {
    apiVersion: 'networking.k8s.io/v1',
    kind: 'NetworkPolicy',
    metadata: {
      name: r.networkPolicy,
      namespace: r.namespace,
      labels: { 'app.kubernetes.io/managed-by': 'pod-responder' },
      annotations: { [INCIDENT_ANNOTATION]: r.incidentId },
      // Garbage-collected with the pod: it can never outlive the pod it isolates.
      ownerReferences: [{ apiVersion: 'v1', kind: 'Pod', name: r.pod.name, uid: r.pod.uid }],
    },
    spec: { podSelector: { matchLabels: { [r.label.key]: r.label.value } }, policyTypes: ['Ingress', 'Egress'], ingress: [], egress: [] },
  };
  try {
    await kube.networking.createNamespacedNetworkPolicy({ namespace: r.namespace, body });
    return 'created';
  } catch (err) {
    const f = kubeFailure(err);
    if (f.status !== 409) throw new KubeError(`create ${describePolicy(r)}`, f);
  }
  const existing = await kubeCall(`read ${describePolicy(r)}`, () => kube.networking.readNamespacedNetworkPolicy({ namespace: r.namespace, name: r.networkPolicy }));
  const owner = existing.metadata?.annotations?.[INCIDENT_ANNOTATION];
  if (owner !== r.incidentId) return `${describePolicy(r)} exists and is not this incident's (${owner ? `incident ${owner}` : 'no pod-responder annotation'}): left intact, the pod is not isolated`;
  if (!deniesAll(existing, r.label.value)) return `${describePolicy(r)} is this incident's but was changed: it no longer denies all traffic; isolate by hand`;
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
