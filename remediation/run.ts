import { checkSuspension } from './hold.js';
import { recordEvent } from './events.js';
import { captureEvidence, readEvidence } from './evidence.js';
import { inspectPod } from './inspect.js';
import { isolatePod, releaseIsolation } from './isolate.js';
import type { KubeClients } from './kube.js';
import type { CoreRequest, CoreResponse, CoreResponses, PodTarget } from './protocol.js';
import { restoreWorkload, suspendWorkload } from './suspend.js';
import { terminatePod } from './terminate.js';
import { verify } from './verify.js';

/**
 * The single entry point of the remediation core. The direct executor calls it in-process with a
 * kubeconfig; the Lambda handler calls it with an EKS token. Same code, same results.
 */
export async function runOperation<R extends CoreRequest>(kube: KubeClients, request: R): Promise<CoreResponse<R>> {
  const response = await dispatch(kube, request);
  await reportChange(kube, request, response);
  return response as CoreResponse<R>;
}

/** An Event on what an operation changed (only when it changed it now: a retry that finds it done adds none). */
async function reportChange(
  kube: KubeClients,
  r: CoreRequest,
  response: CoreResponses[CoreRequest['op']],
): Promise<void> {
  const result = 'result' in response ? response.result : undefined;
  if (result?.status !== 'done') return;
  const pod = (p: PodTarget) => ({ apiVersion: 'v1', kind: 'Pod', namespace: p.namespace, name: p.name, uid: p.uid });
  const by = (incidentId: string | undefined) => `pod-responder${incidentId ? ` (incident ${incidentId})` : ''}`;
  switch (r.op) {
    case 'terminate-pod':
      return recordEvent(
        kube,
        pod(r.pod),
        'PodResponderTerminated',
        `${by(r.incidentId)} deleted the pod: ${result.message}`,
      );
    case 'isolate-pod':
      return recordEvent(
        kube,
        pod(r.pod),
        'PodResponderIsolated',
        `${by(r.incidentId)} cut the pod off the network: ${result.message}`,
      );
    case 'suspend-workload':
      return recordEvent(
        kube,
        r.workload,
        'PodResponderSuspended',
        `${by(r.incidentId)} suspended the workload: ${result.message}`,
      );
    case 'restore-workload':
      return recordEvent(
        kube,
        r.record.workload,
        'PodResponderRestored',
        `${by(r.record.incidentId)} restored the workload: ${result.message}`,
      );
    // No Event: reads, the evidence capture and its read-back, and the release of the responder's own isolation policy.
    // Listed so that a new operation must be placed on one side or the other.
    case 'inspect':
    case 'verify':
    case 'check-suspension':
    case 'capture-evidence':
    case 'read-evidence':
    case 'release-isolation':
      return;
  }
}

async function dispatch(kube: KubeClients, r: CoreRequest): Promise<CoreResponses[CoreRequest['op']]> {
  switch (r.op) {
    case 'inspect':
      return { pod: await inspectPod(kube, r.namespace, r.name) };
    case 'terminate-pod':
      return { result: await terminatePod(kube, r.pod, r.gracePeriodSeconds, r.isolation) };
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
    case 'capture-evidence':
      return captureEvidence(kube, r);
    case 'read-evidence':
      return readEvidence(kube, r);
  }
}
