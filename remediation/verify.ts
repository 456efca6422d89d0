import type { V1Node } from '@kubernetes/client-node';
import { kubeFailure, KubeError, readOrNull, type KubeClients } from './kube.js';
import {
  describeWorkload,
  type PodTarget,
  type SuspensionChange,
  type SuspensionRecord,
  type VerifyCheck,
} from './protocol.js';
import { readWorkload } from './workloads.js';

/** Reads back the cluster: is the pod gone (and its node able to stop it), is every suspended object still suspended? */
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
  if (pod && pod.metadata?.uid === p.uid) {
    const since = pod.metadata?.deletionTimestamp;
    const deleting = since ? `terminating since ${new Date(since).toISOString()}` : 'running';
    // Deleted with a grace period, the object waits for the node's kubelet: on a NotReady node it waits for good.
    const node = since && p.nodeName ? await nodeReadiness(kube, p.nodeName) : null;
    if (node?.state === 'not-ready') {
      return {
        target,
        ok: false,
        observed: `still present, ${deleting} on node ${p.nodeName}, which is NotReady (${node.detail}): its kubelet is not stopping the container`,
        blocker: 'node-not-ready',
      };
    }
    return { target, ok: false, observed: `still present, ${deleting}` };
  }
  const gone = pod ? `replaced by uid ${pod.metadata?.uid}` : 'gone';
  if (!p.nodeName) return { target, ok: true, observed: gone };
  // Deleting the object does not stop a container: the node's kubelet does (and someone may have forced the delete).
  const node = await nodeReadiness(kube, p.nodeName);
  switch (node.state) {
    case 'ready':
    case 'gone':
      return {
        target,
        ok: true,
        observed: `${gone}; node ${p.nodeName} ${node.state === 'ready' ? 'is Ready' : 'no longer exists'}`,
      };
    case 'unreadable':
      return {
        target,
        ok: true,
        observed: `${gone}; node ${p.nodeName} could not be read (${node.detail}): that its kubelet stopped the container is unconfirmed`,
      };
    case 'not-ready':
      return {
        target,
        ok: false,
        observed: `node ${p.nodeName} is NotReady (${node.detail}); the container may still run: the pod is ${gone} from the API, but only the node's kubelet stops it`,
        blocker: 'node-not-ready',
      };
  }
}

type NodeReadiness = { state: 'ready' | 'gone' } | { state: 'not-ready' | 'unreadable'; detail: string };

async function nodeReadiness(kube: KubeClients, name: string): Promise<NodeReadiness> {
  let node: V1Node | null;
  try {
    node = await readOrNull(`read node ${name}`, () => kube.core.readNode({ name }));
  } catch (err) {
    // A namespace-scoped executor (the EKS function) may not read nodes: say so rather than guess.
    const f = err instanceof KubeError ? err.failure : kubeFailure(err);
    if (f.status === 401 || f.status === 403) return { state: 'unreadable', detail: `HTTP ${f.status} ${f.reason}` };
    throw err;
  }
  if (!node) return { state: 'gone' };
  const ready = node.status?.conditions?.find((c) => c.type === 'Ready');
  if (ready?.status === 'True') return { state: 'ready' };
  const since = ready?.lastTransitionTime ? ` since ${new Date(ready.lastTransitionTime).toISOString()}` : '';
  const why = ready?.reason ? `, ${ready.reason}` : '';
  return { state: 'not-ready', detail: `Ready=${ready?.status ?? 'absent'}${since}${why}` };
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
