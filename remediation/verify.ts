import { readOrNull, type KubeClients } from './kube.js';
import { describeWorkload, type PodTarget, type SuspensionChange, type SuspensionRecord, type VerifyCheck } from './protocol.js';
import { readWorkload } from './workloads.js';

/** Reads back the cluster: is the pod gone, is every suspended object still suspended? */
export async function verify(
  kube: KubeClients,
  podGone: PodTarget | undefined,
  suspended: SuspensionRecord | undefined,
): Promise<{ ok: boolean; checks: VerifyCheck[] }> {
  const checks: VerifyCheck[] = [];
  if (podGone) checks.push(await checkPodGone(kube, podGone));
  for (const change of suspended?.changes ?? []) checks.push(await checkSuspended(kube, change));
  return { ok: checks.every((c) => c.ok), checks };
}

async function checkPodGone(kube: KubeClients, p: PodTarget): Promise<VerifyCheck> {
  const target = `pod ${p.namespace}/${p.name} (uid ${p.uid})`;
  const pod = await readOrNull(`read pod ${p.namespace}/${p.name}`, () =>
    kube.core.readNamespacedPod({ namespace: p.namespace, name: p.name }),
  );
  if (!pod) return { target, ok: true, observed: 'gone' };
  if (pod.metadata?.uid !== p.uid) return { target, ok: true, observed: `replaced by uid ${pod.metadata?.uid}` };
  const deleting = pod.metadata?.deletionTimestamp ? `terminating since ${String(pod.metadata.deletionTimestamp)}` : 'running';
  return { target, ok: false, observed: `still present, ${deleting}` };
}

async function checkSuspended(kube: KubeClients, c: SuspensionChange): Promise<VerifyCheck> {
  const target = describeWorkload(c.target);
  const obj = await readWorkload(kube, c.target);
  if (!obj || obj.metadata?.uid !== c.target.uid) return { target, ok: true, observed: 'gone' };
  switch (c.type) {
    case 'replicas': {
      const replicas = obj.spec?.replicas;
      return { target, ok: replicas === 0, observed: `spec.replicas=${replicas}` };
    }
    case 'node-selector': {
      const value = obj.spec?.template?.spec?.nodeSelector?.[c.key];
      return { target, ok: value !== undefined, observed: `nodeSelector ${c.key}=${value ?? '(absent)'}` };
    }
    case 'suspend-flag':
      return { target, ok: obj.spec?.suspend === true, observed: `spec.suspend=${obj.spec?.suspend}` };
  }
}
