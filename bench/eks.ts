/**
 * EKS executor cost on the local stack: AWS API calls per incident, and the wall time of
 * deploy + invoke + cleanup, split into time spent in activities and time spent waiting (retry backoff,
 * polling for Active, DependencyViolation while ENIs are released, queueing).
 */
import { CoreV1Api, RbacAuthorizationV1Api } from '@kubernetes/client-node';
import type { Client } from '@temporalio/client';
import { respondToAlert } from '../client/incidents.js';
import { remediatorRoleBinding } from '../devstack/eks-rbac.js';
import type { PodAlert } from '../domain/alert.js';
import { kubeConfigFromFile } from '../remediation/kube.js';
import { AwsFaults } from '../test/aws/faults.js';
import type { Config } from '../config/config.js';

export interface EksBenchResult {
  runs: number;
  callsPerIncident: number[];
  wallSeconds: number[];
  activeSeconds: number[];
}

export async function benchEks(
  client: Client,
  config: Config,
  aws: { faultsUrl: string; region: string; clusters: { local: string } },
  kubeconfigPath: string,
  runs: number,
): Promise<EksBenchResult> {
  const kc = kubeConfigFromFile(kubeconfigPath);
  const core = kc.makeApiClient(CoreV1Api);
  const faults = new AwsFaults(aws.faultsUrl);
  const namespace = 'bench-eks';
  await core.createNamespace({ body: { metadata: { name: namespace } } });
  await kc.makeApiClient(RbacAuthorizationV1Api).createNamespacedRoleBinding({ namespace, body: remediatorRoleBinding(namespace) });
  const out: EksBenchResult = { runs, callsPerIncident: [], wallSeconds: [], activeSeconds: [] };
  for (let i = 0; i < runs; i++) {
    const name = `eks-${i}`;
    const pod = await core.createNamespacedPod({ namespace, body: { metadata: { name }, spec: { containers: [{ name: 'app', image: 'app:1' }] } } });
    const alert: PodAlert = {
      source: 'generic', alertId: `${name}-a`, category: 'crypto-mining', severity: 'high', detectedAt: new Date().toISOString(),
      cluster: { name: aws.clusters.local, region: aws.region }, namespace, podName: name, podUid: pod.metadata!.uid!,
    };
    await faults.resetCalls();
    const t0 = performance.now();
    const started = await respondToAlert(client, config, alert);
    const handle = client.workflow.getHandle(started.workflowId);
    await handle.result();
    out.wallSeconds.push((performance.now() - t0) / 1000);
    out.callsPerIncident.push((await faults.calls()).length);
    out.activeSeconds.push(activeSeconds(await handle.fetchHistory()));
  }
  return out;
}

/** Union of the spans in which some activity attempt was running (started -> completed/failed). */
function activeSeconds(history: Awaited<ReturnType<ReturnType<Client['workflow']['getHandle']>['fetchHistory']>>): number {
  const started = new Map<string, number>();
  const spans: [number, number][] = [];
  const ms = (t: { seconds?: unknown; nanos?: number | null } | null | undefined) => Number(t?.seconds ?? 0) * 1000 + (t?.nanos ?? 0) / 1e6;
  for (const e of history.events ?? []) {
    const at = ms(e.eventTime);
    if (e.activityTaskStartedEventAttributes) started.set(String(e.activityTaskStartedEventAttributes.scheduledEventId), at);
    const end = e.activityTaskCompletedEventAttributes ?? e.activityTaskFailedEventAttributes ?? e.activityTaskTimedOutEventAttributes;
    if (end) {
      const s = started.get(String(end.scheduledEventId));
      if (s !== undefined) spans.push([s, at]);
    }
  }
  spans.sort((a, b) => a[0] - b[0]);
  let total = 0;
  let [cs, ce] = [-Infinity, -Infinity];
  for (const [s, e] of spans) {
    if (s > ce) {
      if (ce > cs) total += ce - cs;
      [cs, ce] = [s, e];
    } else ce = Math.max(ce, e);
  }
  if (ce > cs) total += ce - cs;
  return total / 1000;
}
