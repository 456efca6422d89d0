import { kubeFailure, KubeError, type KubeClients } from './kube.js';
import type { ActionResult, PodTarget } from './protocol.js';

/**
 * Deletes the pod only if it still has the alerted UID: a pod recreated under the same name
 * (StatefulSet, or a replacement between alert and action) is never the one we delete.
 */
export async function terminatePod(kube: KubeClients, pod: PodTarget, gracePeriodSeconds: number): Promise<ActionResult> {
  const target = `pod ${pod.namespace}/${pod.name} (uid ${pod.uid})`;
  try {
    await kube.core.deleteNamespacedPod({
      namespace: pod.namespace,
      name: pod.name,
      gracePeriodSeconds,
      body: { preconditions: { uid: pod.uid }, gracePeriodSeconds },
    });
    return { action: 'delete-pod', target, status: 'done', message: `deleted with grace period ${gracePeriodSeconds}s` };
  } catch (err) {
    const f = kubeFailure(err);
    if (f.status === 404) return { action: 'delete-pod', target, status: 'already-done', message: 'pod already gone' };
    if (f.status === 409) {
      // The UID precondition failed: the name now belongs to another pod, which we leave alone.
      return { action: 'delete-pod', target, status: 'already-done', message: `pod was replaced: ${f.message}` };
    }
    throw new KubeError(`delete ${target}`, f);
  }
}
