/**
 * EKS executor cost on the local stack: AWS API calls per incident, and the wall time of
 * deploy + invoke + cleanup, split into time spent in activities and time spent waiting (retry backoff,
 * polling for Active, DependencyViolation while ENIs are released, queueing).
 */
import { CoreV1Api, RbacAuthorizationV1Api } from '@kubernetes/client-node';
import { Client, Connection } from '@temporalio/client';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { respondToAlert } from '../temporal-client/incidents.js';
import { configSchema, type Config } from '../config/config.js';
import { remediatorRoleBinding } from '../devstack/eks-rbac.js';
import { startStack } from '../devstack/stack.js';
import type { PodAlert } from '../domain/alert.js';
import { buildLambdaZip } from '../lambda/build.js';
import { kubeConfigFromFile } from '../remediation/kube.js';
import { AwsFaults } from '../test/aws/faults.js';
import { installLogging } from '../worker/logging.js';
import { quantile } from './storm-client.js';
import { createWorker } from '../worker/worker.js';

export interface EksBenchResult {
  runs: number;
  callsPerIncident: number[];
  wallSeconds: number[];
  activeSeconds: number[];
}

/** The EKS executor's part of `npm run bench`, on a stack of its own with moto and the test front (BENCH_EKS_RUNS, default 5). */
export async function benchEksOnStack(o: { log: (line: string) => void; runs?: number }): Promise<EksBenchResult> {
  const runs = o.runs ?? Number(process.env.BENCH_EKS_RUNS ?? 5);
  installLogging('ERROR'); // retried activity failures (DependencyViolation) are expected here
  const stateDir = mkdtempSync(path.join(tmpdir(), 'pod-responder-bench-eks-'));
  const stack = await startStack({ stateDir, headless: true, aws: true, log: () => {} });
  const aws = stack.aws!;
  // The SDK in this process (worker activities) reads credentials from the environment.
  Object.assign(process.env, {
    AWS_ACCESS_KEY_ID: aws.accessKeyId,
    AWS_SECRET_ACCESS_KEY: aws.secretAccessKey,
    AWS_REGION: aws.region,
  });
  const config = configSchema.parse({
    temporal: { address: stack.temporalAddress, taskQueue: 'bench-eks' },
    executor: 'eks-lambda',
    eks: {
      endpoint: aws.endpoint,
      lambdaZip: (await buildLambdaZip(path.join(stateDir, 'remediation.zip'))).path,
      permissionsBoundaryArn: aws.permissionsBoundaryArn,
    },
    policy: { suspendOnSeverity: [] },
  });
  const connection = await Connection.connect({ address: stack.temporalAddress });
  // As the worker's role, so its IAM calls pay the front's policy evaluation as they would pay IAM's.
  const worker = await createWorker(config, { awsCredentials: aws.worker });
  const running = worker.run();
  try {
    o.log(`eks executor: ${runs} incidents through the in-VPC function`);
    return await benchEks(new Client({ connection }), config, aws, stack.kubeconfigPath, runs);
  } finally {
    await worker.shutdown();
    await running;
    await connection.close();
    await stack.stop();
    rmSync(stateDir, { recursive: true, force: true });
  }
}

export function formatEks(eks: EksBenchResult): string {
  const waiting = eks.wallSeconds.map((w, i) => w - eks.activeSeconds[i]!);
  return `
## EKS executor: deploy + invoke + cleanup, one incident at a time (${eks.runs} runs, moto + test front)

| | p50 | max |
| --- | --- | --- |
| AWS API calls per incident | ${quantile(eks.callsPerIncident, 0.5)} | ${Math.max(...eks.callsPerIncident)} |
| wall time, alert -> incident closed and cleaned up | ${quantile(eks.wallSeconds, 0.5).toFixed(1)} s | ${Math.max(...eks.wallSeconds).toFixed(1)} s |
| of which in activities (final attempts) | ${quantile(eks.activeSeconds, 0.5).toFixed(1)} s | ${Math.max(...eks.activeSeconds).toFixed(1)} s |
| of which waiting (backoff, polling, DependencyViolation, queueing) | ${quantile(waiting, 0.5).toFixed(1)} s | ${Math.max(...waiting).toFixed(1)} s |

The test front keeps a new function Pending for 2 s and a new access entry out of effect for 1 s (real AWS: tens of seconds, seconds); the cluster's executor security group is shared and stays.
`;
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
  await kc
    .makeApiClient(RbacAuthorizationV1Api)
    .createNamespacedRoleBinding({ namespace, body: remediatorRoleBinding(namespace) });
  const out: EksBenchResult = { runs, callsPerIncident: [], wallSeconds: [], activeSeconds: [] };
  for (let i = 0; i < runs; i++) {
    const name = `eks-${i}`;
    const pod = await core.createNamespacedPod({
      namespace,
      body: { metadata: { name }, spec: { containers: [{ name: 'app', image: 'app:1' }] } },
    });
    const alert: PodAlert = {
      source: 'generic',
      alertId: `${name}-a`,
      category: 'crypto-mining',
      severity: 'high',
      detectedAt: new Date().toISOString(),
      cluster: { name: aws.clusters.local, region: aws.region },
      namespace,
      podName: name,
      podUid: pod.metadata!.uid!,
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
function activeSeconds(
  history: Awaited<ReturnType<ReturnType<Client['workflow']['getHandle']>['fetchHistory']>>,
): number {
  const started = new Map<string, number>();
  const spans: [number, number][] = [];
  const ms = (t: { seconds?: unknown; nanos?: number | null } | null | undefined) =>
    Number(t?.seconds ?? 0) * 1000 + (t?.nanos ?? 0) / 1e6;
  for (const e of history.events ?? []) {
    const at = ms(e.eventTime);
    if (e.activityTaskStartedEventAttributes)
      started.set(String(e.activityTaskStartedEventAttributes.scheduledEventId), at);
    const end =
      e.activityTaskCompletedEventAttributes ??
      e.activityTaskFailedEventAttributes ??
      e.activityTaskTimedOutEventAttributes;
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
