import { keepIsolation } from './isolate.js';
import { kubeFailure, KubeError, type KubeClients } from './kube.js';
import type { ActionResult, IsolationRecord, PodTarget } from './protocol.js';

/**
 * Never 0. A graceful delete leaves the pod object in place (terminating) until its node's kubelet has stopped
 * the containers (SIGTERM, SIGKILL after the grace period): the object going is then the sign the miner stopped,
 * and a node that cannot stop it (NotReady) shows as a pod still terminating there. Grace period 0 removes the
 * object at once, before the kubelet even hears of it, while the process may run on.
 */
export const MIN_GRACE_PERIOD_SECONDS = 1;

/**
 * Deletes the pod only if it still has the alerted UID: a pod recreated under the same name
 * (StatefulSet, or a replacement between alert and action) is never the one we delete. With the pod's
 * isolation, that is kept first, so it does not go with the pod object (see remediation/isolate.ts).
 */
export async function terminatePod(
  kube: KubeClients,
  pod: PodTarget,
  requestedGraceSeconds: number,
  isolation?: IsolationRecord,
): Promise<ActionResult> {
  const target = `pod ${pod.namespace}/${pod.name} (uid ${pod.uid})`;
  const gracePeriodSeconds = Math.max(MIN_GRACE_PERIOD_SECONDS, requestedGraceSeconds);
  let kept = '';
  if (isolation) {
    try {
      kept = `; ${await keepIsolation(kube, isolation)}`;
    } catch (err) {
      // The kill never waits on its containment: say what may happen to the policy, and kill.
      kept = `; ${err instanceof Error ? err.message : String(err)}: the isolation may go with the pod object`;
    }
  }
  try {
    await kube.core.deleteNamespacedPod({
      namespace: pod.namespace,
      name: pod.name,
      gracePeriodSeconds,
      body: { preconditions: { uid: pod.uid }, gracePeriodSeconds },
    });
    return {
      action: 'delete-pod',
      target,
      status: 'done',
      message: `deleted with grace period ${gracePeriodSeconds}s${kept}`,
    };
  } catch (err) {
    const f = kubeFailure(err);
    if (f.status === 404)
      return { action: 'delete-pod', target, status: 'already-done', message: `pod already gone${kept}` };
    if (f.status === 409) {
      // The UID precondition failed: the name now belongs to another pod, which we leave alone.
      return { action: 'delete-pod', target, status: 'already-done', message: `pod was replaced: ${f.message}${kept}` };
    }
    throw new KubeError(`delete ${target}`, f);
  }
}
