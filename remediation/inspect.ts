import type { V1ObjectMeta, V1OwnerReference, V1Pod } from '@kubernetes/client-node';
import { IRSA_ANNOTATION } from '../domain/revocation.js';
import type { ContainerFacts, OwnerRef, PodFacts, ServiceAccountFacts } from '../domain/workload.js';
import { readOrNull, type KubeClients } from './kube.js';

/** Reads the pod and its controller chain; null when the pod does not exist. */
export async function inspectPod(kube: KubeClients, namespace: string, name: string): Promise<PodFacts | null> {
  const pod = await readOrNull(`read pod ${namespace}/${name}`, () => kube.core.readNamespacedPod({ namespace, name }));
  if (!pod) return null;
  // Both reads at once: the inspection is on the way to the kill.
  const [owners, serviceAccount] = await Promise.all([
    ownerChain(kube, namespace, pod.metadata),
    serviceAccountOf(kube, namespace, pod),
  ]);
  return {
    namespace,
    name,
    uid: pod.metadata?.uid ?? '',
    labels: pod.metadata?.labels ?? {},
    ...(pod.spec?.nodeName ? { nodeName: pod.spec.nodeName } : {}),
    containers: containerFacts(pod),
    owners,
    serviceAccount,
  };
}

/**
 * The pod's ServiceAccount and its IRSA role, for revoking the credentials a miner may have taken. Never fails
 * the inspection: a ServiceAccount that is gone has no role, and one that cannot be read (no RBAC `get` on
 * serviceaccounts, a flaky read) is reported as unreadable.
 */
async function serviceAccountOf(kube: KubeClients, namespace: string, pod: V1Pod): Promise<ServiceAccountFacts> {
  // The API server's admission sets `default` when the spec names none.
  const name = pod.spec?.serviceAccountName || pod.spec?.serviceAccount || 'default';
  try {
    const sa = await readOrNull(`read serviceaccount ${namespace}/${name}`, () =>
      kube.core.readNamespacedServiceAccount({ namespace, name }),
    );
    const roleArn = sa?.metadata?.annotations?.[IRSA_ANNOTATION]?.trim();
    return { name, ...(roleArn ? { roleArn } : {}) };
  } catch (err) {
    return { name, unreadable: err instanceof Error ? err.message : String(err) };
  }
}

function containerFacts(pod: V1Pod): ContainerFacts[] {
  const statuses = [...(pod.status?.containerStatuses ?? []), ...(pod.status?.initContainerStatuses ?? [])];
  const specs = [...(pod.spec?.containers ?? []), ...(pod.spec?.initContainers ?? [])];
  return specs.map((c) => {
    const s = statuses.find((st) => st.name === c.name);
    // A restarted container's previous ID stays valid: the alert may predate the restart.
    const ids = [s?.containerID, s?.lastState?.terminated?.containerID].filter((id): id is string => Boolean(id));
    return { name: c.name, image: c.image ?? '', containerIds: ids };
  });
}

function controllerOf(meta: V1ObjectMeta | undefined): V1OwnerReference | undefined {
  return meta?.ownerReferences?.find((o) => o.controller);
}

function ref(o: V1OwnerReference, supported: boolean): OwnerRef {
  return { apiVersion: o.apiVersion, kind: o.kind, name: o.name, uid: o.uid, supported };
}

const TERMINAL_KINDS = new Set(['StatefulSet', 'DaemonSet', 'Deployment', 'CronJob']);

/**
 * Follows controller references upwards: ReplicaSet -> Deployment, Job -> CronJob.
 * An unknown controller (a CRD such as an Argo Rollout) ends the chain, marked unsupported.
 */
async function ownerChain(kube: KubeClients, namespace: string, meta: V1ObjectMeta | undefined): Promise<OwnerRef[]> {
  const chain: OwnerRef[] = [];
  let owner = controllerOf(meta);
  while (owner) {
    const known = owner.apiVersion === 'apps/v1' || owner.apiVersion === 'batch/v1';
    if (!known || !['ReplicaSet', 'Job', ...TERMINAL_KINDS].includes(owner.kind)) {
      chain.push(ref(owner, false));
      break;
    }
    chain.push(ref(owner, true));
    if (TERMINAL_KINDS.has(owner.kind)) break;
    const name = owner.name;
    const parent =
      owner.kind === 'ReplicaSet'
        ? await readOrNull(`read replicaset ${namespace}/${name}`, () =>
            kube.apps.readNamespacedReplicaSet({ namespace, name }),
          )
        : await readOrNull(`read job ${namespace}/${name}`, () => kube.batch.readNamespacedJob({ namespace, name }));
    if (!parent || parent.metadata?.uid !== owner.uid) break; // gone or replaced: stop at what we know
    const next = controllerOf(parent.metadata);
    // Only these parents are followed; anything else above is still reported, as unsupported.
    owner = next;
  }
  return chain;
}
