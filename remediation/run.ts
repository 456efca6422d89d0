import { checkSuspension } from './hold.js';
import { inspectPod } from './inspect.js';
import { isolatePod, releaseIsolation } from './isolate.js';
import type { KubeClients } from './kube.js';
import type { CoreRequest, CoreResponse, CoreResponses } from './protocol.js';
import { restoreWorkload, suspendWorkload } from './suspend.js';
import { terminatePod } from './terminate.js';
import { verify } from './verify.js';

/**
 * The single entry point of the remediation core. The direct executor calls it in-process with a
 * kubeconfig; the Lambda handler calls it with an EKS token. Same code, same results.
 */
export async function runOperation<R extends CoreRequest>(kube: KubeClients, request: R): Promise<CoreResponse<R>> {
  return (await dispatch(kube, request)) as CoreResponse<R>;
}

async function dispatch(kube: KubeClients, r: CoreRequest): Promise<CoreResponses[CoreRequest['op']]> {
  switch (r.op) {
    case 'inspect':
      return { pod: await inspectPod(kube, r.namespace, r.name) };
    case 'terminate-pod':
      return { result: await terminatePod(kube, r.pod, r.gracePeriodSeconds) };
    case 'suspend-workload':
      return suspendWorkload(kube, r.incidentId, r.workload);
    case 'restore-workload':
      return { result: await restoreWorkload(kube, r.record) };
    case 'verify':
      return verify(kube, r.podGone, r.suspended);
    case 'isolate-pod':
      return isolatePod(kube, r.incidentId, r.pod);
    case 'release-isolation':
      return { result: await releaseIsolation(kube, r.record) };
    case 'check-suspension':
      return checkSuspension(kube, r.record);
  }
}
