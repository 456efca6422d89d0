/**
 * A Kubernetes Event for each change pod-responder makes, on the object it changed, so `kubectl describe`
 * and the cluster's event pipeline show what was done and by which incident. Best effort: an Event that
 * cannot be written (RBAC, a quota) never fails the action it reports.
 */
import type { KubeClients } from './kube.js';

export interface Involved {
  apiVersion: string;
  kind: string;
  namespace: string;
  name: string;
  uid: string;
}

export async function recordEvent(
  kube: KubeClients,
  involved: Involved,
  reason: string,
  message: string,
): Promise<void> {
  const now = new Date();
  try {
    await kube.core.createNamespacedEvent({
      namespace: involved.namespace,
      body: {
        metadata: {
          name: `${involved.name}.pod-responder.${now.getTime().toString(16)}`,
          namespace: involved.namespace,
        },
        involvedObject: involved,
        reason,
        message: message.slice(0, 1024),
        type: 'Warning',
        action: reason,
        source: { component: 'pod-responder' },
        reportingComponent: 'pod-responder',
        reportingInstance: 'pod-responder',
        firstTimestamp: now,
        lastTimestamp: now,
        count: 1,
      },
    });
  } catch {
    // The action stands without its Event.
  }
}
