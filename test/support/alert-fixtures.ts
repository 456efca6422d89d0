/** Vendor-shaped alert payloads (test/fixtures/alerts), written from each vendor's documented format. */
import { readFileSync } from 'node:fs';

export function fixture(name: string): Record<string, any> {
  return JSON.parse(readFileSync(new URL(`../fixtures/alerts/${name}.json`, import.meta.url), 'utf8')) as Record<
    string,
    any
  >;
}

/**
 * The fixture re-dated to now (so the workflow does not dismiss it as stale) and moved to the
 * given cluster / namespace / pod, with a fresh alert ID: every test gets incidents of its own.
 */
export function freshFixture(
  name: string,
  at: {
    cluster: string;
    namespace: string;
    pod: string;
    id: string;
    uid?: string;
    containerId?: string;
    containerName?: string;
  },
): Record<string, any> {
  const f = fixture(name);
  const now = new Date();
  if (name.startsWith('falco')) {
    // Falco's identity is its content (Falcosidekick replaces uuid): the ID goes into the output.
    f.time = now.toISOString();
    f.uuid = at.id;
    f.output = `${f.output} [${at.id}]`;
    Object.assign(f.output_fields, {
      'k8s.ns.name': at.namespace,
      'k8s.pod.name': at.pod,
      'k8s.pod.uid': at.uid ?? null,
      'container.id': at.containerId?.slice(0, 12) ?? f.output_fields['container.id'],
    });
    if (at.containerName) f.output_fields['container.name'] = at.containerName;
  } else if (name.startsWith('guardduty')) {
    f.time = now.toISOString();
    Object.assign(f.detail, { id: at.id, updatedAt: now.toISOString() });
    f.detail.service.eventLastSeen = now.toISOString();
    f.detail.resource.eksClusterDetails.name = at.cluster;
    const w = f.detail.resource.kubernetesDetails.kubernetesWorkloadDetails;
    Object.assign(w, { name: at.pod, namespace: at.namespace, uid: at.uid ?? null });
    if (at.containerId) w.containers[0].id = at.containerId;
    if (at.containerName) w.containers[0].name = at.containerName;
  } else if (name.startsWith('xdr')) {
    Object.assign(f, {
      alert_id: at.id,
      detection_timestamp: now.getTime(),
      cluster_name: at.cluster,
      container_id: at.containerId ?? null,
    });
    f.original_alert.event.cluster_name = at.cluster;
    const c = f.original_alert.messageData.containers[0];
    c.containerId = at.containerId ?? null;
    Object.assign(c.runtimeInfo, {
      podName: at.pod,
      namespace: at.namespace,
      podUid: at.uid ?? null,
      containerName: at.containerName ?? c.runtimeInfo.containerName,
    });
  } else {
    Object.assign(f, {
      alertId: at.id,
      detectedAt: now.toISOString(),
      cluster: { name: at.cluster },
      namespace: at.namespace,
      podName: at.pod,
    });
    if (at.uid) f.podUid = at.uid;
    else delete f.podUid;
    if (at.containerId) f.container.id = at.containerId;
    if (at.containerName) f.container.name = at.containerName;
  }
  return f;
}
