/**
 * Containment, measured (BENCH_ONLY=containment runs it alone): alert accepted by Temporal -> pod isolated
 * (NetworkPolicy in place, seen by a watch) -> evidence bundle complete (its activity's completion in history)
 * -> pod deleted (watch), beside a bare DELETE on the same kube-apiserver. The pod has 3 containers with
 * 1 MiB of logs each, served by the kubelet stand-in through the API server's node proxy; the bundle goes
 * to moto's S3. Sizes: BENCH_CONTAINMENT_RUNS (default 10).
 */
import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';
import { CoreV1Api, Watch } from '@kubernetes/client-node';
import { Client, Connection } from '@temporalio/client';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { respondToAlert } from '../temporal-client/incidents.js';
import { startKubeletStandIn } from '../devstack/kubelet-stand-in.js';
import { startStack } from '../devstack/stack.js';
import type { PodAlert } from '../domain/alert.js';
import { kubeConfigFromFile } from '../remediation/kube.js';
import { configSchema } from '../config/config.js';
import { installLogging } from '../worker/logging.js';
import { createWorker } from '../worker/worker.js';
import { statusQuery } from '../workflows/messages.js';

export interface ContainmentResult {
  runs: number;
  isolatedMs: number[];
  evidenceMs: number[];
  goneMs: number[];
  bareMs: number[];
  bundleBytes: number[];
  captureSeconds: number[];
  missing: string[];
}

const CONTAINERS = ['miner', 'proxy', 'sidecar'];
const LOG_BYTES = 1 << 20;

export async function benchContainment(o: { log: (line: string) => void; runs?: number }): Promise<ContainmentResult> {
  const runs = o.runs ?? Number(process.env.BENCH_CONTAINMENT_RUNS ?? 10);
  installLogging('ERROR');
  const stateDir = mkdtempSync(path.join(tmpdir(), 'pod-responder-bench-containment-'));
  const stack = await startStack({ stateDir, headless: true, aws: true, log: () => {} });
  const aws = stack.aws!;
  Object.assign(process.env, {
    AWS_ACCESS_KEY_ID: aws.accessKeyId,
    AWS_SECRET_ACCESS_KEY: aws.secretAccessKey,
    AWS_REGION: aws.region,
  });
  const s3 = new S3Client({ region: aws.region, endpoint: aws.endpoint, forcePathStyle: true });
  const bucket = 'bench-evidence';
  await s3.send(new CreateBucketCommand({ Bucket: bucket }));
  const kc = kubeConfigFromFile(stack.kubeconfigPath);
  const core = kc.makeApiClient(CoreV1Api);
  const kubelet = await startKubeletStandIn(core);
  const config = configSchema.parse({
    temporal: { address: stack.temporalAddress, taskQueue: 'containment' },
    direct: { kubeconfig: stack.kubeconfigPath, cluster: 'local' },
    evidence: { bucket, endpoint: aws.endpoint, region: aws.region },
    policy: { suspendOnSeverity: [] },
  });
  const connection = await Connection.connect({ address: stack.temporalAddress });
  const client = new Client({ connection });
  const worker = await createWorker(config);
  const running = worker.run();
  const namespace = 'containment';
  await core.createNamespace({ body: { metadata: { name: namespace } } });

  const seen = new Map<string, (t: number) => void>();
  const npAdded = new Map<string, number>();
  const at = (key: string) => new Promise<number>((resolve) => seen.set(key, resolve));
  const onEvent = (kind: string) => (type: string, obj: { metadata?: { name?: string } }) =>
    seen.get(`${kind}:${type}:${obj.metadata?.name ?? ''}`)?.(Date.now());
  const watches = await Promise.all([
    new Watch(kc).watch(`/api/v1/namespaces/${namespace}/pods`, {}, onEvent('pod'), () => undefined),
    new Watch(kc).watch(
      `/apis/networking.k8s.io/v1/namespaces/${namespace}/networkpolicies`,
      {},
      (type: string, obj: { metadata?: { name?: string } }) => {
        // Created and deleted within the incident: when it was ADDED is read once the incident is over.
        if (type === 'ADDED') npAdded.set(obj.metadata?.name ?? '', Date.now());
      },
      () => undefined,
    ),
  ]);

  const logs = 'stratum+tcp://pool.example:3333 accepted share\n'.repeat(Math.ceil(LOG_BYTES / 47)).slice(0, LOG_BYTES);
  async function minerPod(name: string): Promise<{ uid: string; containerId: string }> {
    const containers = CONTAINERS.map((c) => ({ name: c, image: `${c}:1` }));
    const pod = await core.createNamespacedPod({
      namespace,
      body: { metadata: { name }, spec: { nodeName: kubelet.node, containers } },
    });
    const containerId = 'ab'.repeat(32);
    pod.status = {
      phase: 'Running',
      containerStatuses: CONTAINERS.map((c) => ({
        name: c,
        image: `${c}:1`,
        imageID: '',
        ready: true,
        restartCount: 0,
        containerID: `containerd://${containerId}`,
        state: { running: {} },
      })),
    };
    await core.replaceNamespacedPodStatus({ namespace, name, body: pod });
    for (const c of CONTAINERS) kubelet.logs.set(`${namespace}/${name}/${c}`, logs);
    return { uid: pod.metadata!.uid!, containerId };
  }
  const alert = (name: string, p: { uid: string; containerId: string }): PodAlert => ({
    source: 'generic',
    alertId: `${name}-a`,
    category: 'crypto-mining',
    severity: 'high',
    detectedAt: new Date().toISOString(),
    cluster: { name: 'local' },
    namespace,
    podName: name,
    podUid: p.uid,
    container: { id: p.containerId.slice(0, 12), name: 'miner' },
  });

  const result: ContainmentResult = {
    runs,
    isolatedMs: [],
    evidenceMs: [],
    goneMs: [],
    bareMs: [],
    bundleBytes: [],
    captureSeconds: [],
    missing: [],
  };
  o.log(`containment: warming up, then ${runs} runs`);
  for (let i = -2; i < runs; i++) {
    const name = `miner-${i + 2}`;
    const pod = await minerPod(name);
    const gone = at(`pod:DELETED:${name}`);
    const started = await respondToAlert(client, config, alert(name, pod));
    const accepted = Date.now();
    const handle = client.workflow.getHandle(started.workflowId);
    await handle.result();
    const outcome = await handle.query(statusQuery);
    const goneAt = await gone;
    if (i < 0) continue; // warm-up: the first workflow tasks pay for the bundle and connections
    const policyName = outcome.isolation?.networkPolicy?.split('/')[1];
    const isolatedAt = policyName ? npAdded.get(policyName) : undefined;
    const history = await handle.fetchHistory();
    const scheduled = history.events!.find(
      (e) => e.activityTaskScheduledEventAttributes?.activityType?.name === 'captureEvidence',
    );
    const done = history.events!.find(
      (e) => e.activityTaskCompletedEventAttributes?.scheduledEventId?.toString() === String(scheduled?.eventId),
    );
    const doneAt = done ? Number(done.eventTime!.seconds) * 1000 + Math.floor((done.eventTime!.nanos ?? 0) / 1e6) : NaN;
    if (isolatedAt) result.isolatedMs.push(isolatedAt - accepted);
    result.evidenceMs.push(doneAt - accepted);
    result.goneMs.push(goneAt - accepted);
    result.bundleBytes.push(outcome.evidence?.bytes ?? 0);
    result.captureSeconds.push(outcome.evidence?.seconds ?? NaN);
    result.missing.push(...(outcome.evidence?.missing ?? ['no bundle']));

    const bare = `bare-${i}`;
    const b = await core.createNamespacedPod({
      namespace,
      body: { metadata: { name: bare }, spec: { containers: [{ name: 'app', image: 'app:1' }] } },
    });
    const goneB = at(`pod:DELETED:${bare}`);
    const t = Date.now();
    await core.deleteNamespacedPod({
      namespace,
      name: bare,
      gracePeriodSeconds: 0,
      body: { preconditions: { uid: b.metadata!.uid! }, gracePeriodSeconds: 0 },
    });
    result.bareMs.push((await goneB) - t);
  }

  for (const w of watches) w.abort();
  await kubelet.close();
  await worker.shutdown();
  await running;
  await connection.close();
  s3.destroy();
  await stack.stop();
  rmSync(stateDir, { recursive: true, force: true });
  return result;
}

const q = (xs: number[], p: number) => {
  const s = [...xs].filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  return s.length ? s[Math.min(s.length - 1, Math.floor(p * s.length))]! : NaN;
};

export function formatContainment(r: ContainmentResult): string {
  const row = (label: string, xs: number[]) =>
    `| ${label} | ${q(xs, 0.5).toFixed(1)} ms | ${q(xs, 0.95).toFixed(1)} ms |`;
  return `
## containment: alert accepted -> isolated -> evidence -> pod deleted (${r.runs} runs, 3 containers x 1 MiB of logs)

| from the alert accepted by Temporal to | p50 | p95 |
| --- | --- | --- |
${row('pod isolated (deny-all NetworkPolicy ADDED, watch)', r.isolatedMs)}
${row('evidence bundle complete in S3 (activity completed)', r.evidenceMs)}
${row('pod deleted (watch)', r.goneMs)}
${row('baseline: bare DELETE with UID precondition -> deleted', r.bareMs)}

Evidence bundle: ${(q(r.bundleBytes, 0.5) / 1024 / 1024).toFixed(2)} MiB per pod (p50), captured in ${q(r.captureSeconds, 0.5).toFixed(1)} s (p50), ${q(r.captureSeconds, 0.95).toFixed(1)} s (p95); missing parts: ${r.missing.length ? r.missing.join('; ') : 'none'}.
`;
}

export function containmentFailures(r: ContainmentResult): string[] {
  const f: string[] = [];
  if (r.isolatedMs.length !== r.runs) f.push(`isolation seen in ${r.isolatedMs.length} of ${r.runs} runs`);
  if (r.missing.length) f.push(`evidence missing: ${r.missing.join('; ')}`);
  if (r.bundleBytes.some((b) => b < CONTAINERS.length * LOG_BYTES))
    f.push('a bundle is smaller than the logs it should hold');
  return f;
}
