/**
 * `npm run bench`: the cost of durability, measured on the local stack in one run.
 *  1. alert -> pod deleted through the workflow, versus a bare DELETE on the same kube-apiserver (p50, p95, ratio);
 *  2. how many concurrent incidents one worker holds, and its memory;
 *  3. the EKS executor's cost per incident;
 *  4. an alert storm through the forwarder and a worker (bench/storm.ts);
 *  5. an alert flood about one pod (bench/flood.ts);
 *  6. intake while Temporal is away: the spool's accept and drain rates, SQS end to end (bench/intake.ts);
 *  7. containment: alert -> isolated -> evidence -> pod deleted, with 3 x 1 MiB of logs (bench/containment.ts).
 * Sizes: BENCH_ITERATIONS (default 40), BENCH_CONCURRENT (default 300), BENCH_STORM_* (see storm.ts), BENCH_FLOOD_ALERTS.
 * BENCH_ONLY=storm, flood, intake or containment runs only that part (the others take minutes).
 */
import { CoreV1Api, Watch } from '@kubernetes/client-node';
import { Client, Connection } from '@temporalio/client';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { respondToAlert } from '../client/incidents.js';
import { startStack } from '../devstack/stack.js';
import { buildLambdaZip } from '../lambda/build.js';
import { benchContainment, containmentFailures, formatContainment, type ContainmentResult } from './containment.js';
import { benchEks } from './eks.js';
import { benchFlood, floodFailures, formatFlood, type FloodResult } from './flood.js';
import { benchIntake, formatIntake, intakeFailures, type IntakeResult } from './intake.js';
import { benchStorm, formatStorm, stormFailures, type StormResult } from './storm.js';
import type { PodAlert } from '../domain/alert.js';
import { policySchema } from '../domain/policy.js';
import { kubeConfigFromFile } from '../remediation/kube.js';
import { configSchema } from '../config/config.js';
import { installLogging } from '../worker/logging.js';
import { createWorker } from '../worker/worker.js';
import { answerProposal } from '../client/approvals.js';

const ITERATIONS = Number(process.env.BENCH_ITERATIONS ?? 40);
const CONCURRENT = Number(process.env.BENCH_CONCURRENT ?? 300);
const EKS_RUNS = Number(process.env.BENCH_EKS_RUNS ?? 5);

const quantile = (xs: number[], q: number): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))]!;
};
const ms = (x: number) => `${x.toFixed(1)} ms`;
const mib = (bytes: number) => `${(bytes / 1024 / 1024).toFixed(0)} MiB`;
const progress = (line: string) => process.stderr.write(`[bench] ${line}\n`);

/** Prints the storm's table; a failed check fails the bench. */
function reportStorm(storm: StormResult): void {
  process.stdout.write(formatStorm(storm));
  const failures = stormFailures(storm);
  for (const f of failures) process.stderr.write(`storm FAILED: ${f}\n`);
  if (failures.length) process.exitCode = 1;
}

/** Prints the intake's table; a failed check fails the bench. */
function reportIntake(intake: IntakeResult): void {
  process.stdout.write(formatIntake(intake));
  const failures = intakeFailures(intake);
  for (const f of failures) process.stderr.write(`intake FAILED: ${f}\n`);
  if (failures.length) process.exitCode = 1;
}

/** Prints the flood's table; a failed check fails the bench. */
function reportFlood(flood: FloodResult): void {
  process.stdout.write(formatFlood(flood));
  const failures = floodFailures(flood);
  for (const f of failures) process.stderr.write(`flood FAILED: ${f}\n`);
  if (failures.length) process.exitCode = 1;
}

/** Prints the containment table; a failed check fails the bench. */
function reportContainment(c: ContainmentResult): void {
  process.stdout.write(formatContainment(c));
  const failures = containmentFailures(c);
  for (const f of failures) process.stderr.write(`containment FAILED: ${f}\n`);
  if (failures.length) process.exitCode = 1;
}

async function main(): Promise<void> {
  const only = process.env.BENCH_ONLY;
  if (only === 'storm') return reportStorm(await benchStorm({ log: progress }));
  if (only === 'flood') return reportFlood(await benchFlood({ log: progress }));
  if (only === 'intake') return reportIntake(await benchIntake({ log: progress }));
  if (only === 'containment') return reportContainment(await benchContainment({ log: progress }));
  if (only) throw new Error(`BENCH_ONLY=${only}: the parts that run alone are "storm", "flood", "intake" and "containment"`);
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true'; // known: Node 20 support ends in 2027
  installLogging('ERROR'); // retried activity failures (DependencyViolation) are expected here
  const stateDir = mkdtempSync(path.join(tmpdir(), 'pod-responder-bench-'));
  const stack = await startStack({ stateDir, headless: true, aws: true, log: () => {} });
  const aws = stack.aws!;
  // The SDK in this process (worker activities) reads credentials from the environment.
  Object.assign(process.env, { AWS_ACCESS_KEY_ID: aws.accessKeyId, AWS_SECRET_ACCESS_KEY: aws.secretAccessKey, AWS_REGION: aws.region });
  const kc = kubeConfigFromFile(stack.kubeconfigPath);
  const core = kc.makeApiClient(CoreV1Api);
  const config = configSchema.parse({
    temporal: { address: stack.temporalAddress, taskQueue: 'bench' },
    direct: { kubeconfig: stack.kubeconfigPath, cluster: 'local' },
    eks: { endpoint: aws.endpoint, lambdaZip: (await buildLambdaZip(path.join(stateDir, 'remediation.zip'))).path },
    policy: { suspendOnSeverity: [] },
  });
  const connection = await Connection.connect({ address: stack.temporalAddress });
  const client = new Client({ connection });
  const worker = await createWorker(config);
  const running = worker.run();
  const namespace = 'bench';
  await core.createNamespace({ body: { metadata: { name: namespace } } });

  // Deletion times come from a watch on the API server, not from polling.
  const deleted = new Map<string, (t: number) => void>();
  const watch = await new Watch(kc).watch(`/api/v1/namespaces/${namespace}/pods`, {}, (type, obj: { metadata?: { name?: string } }) => {
    if (type === 'DELETED') deleted.get(obj.metadata?.name ?? '')?.(performance.now());
  }, (err) => { if (err && (err as Error).name !== 'AbortError') progress(`watch ended: ${String(err)}`); });
  const goneAt = (name: string) => new Promise<number>((resolve) => deleted.set(name, resolve));

  async function createPod(name: string) {
    const pod = await core.createNamespacedPod({ namespace, body: { metadata: { name }, spec: { containers: [{ name: 'app', image: 'app:1' }] } } });
    return pod.metadata!.uid!;
  }
  const alert = (name: string, uid: string): PodAlert => ({
    source: 'generic', alertId: `${name}-a`, category: 'crypto-mining', severity: 'high', detectedAt: new Date().toISOString(),
    cluster: { name: 'local' }, namespace, podName: name, podUid: uid,
  });

  progress(`stack ready; warming up`);
  // Warm-up: the first workflow task pays for the bundle and connections.
  for (let i = 0; i < 3; i++) {
    const name = `warm-${i}`;
    const uid = await createPod(name);
    const started = await respondToAlert(client, config, alert(name, uid));
    await client.workflow.getHandle(started.workflowId).result();
  }

  progress(`latency: ${ITERATIONS} runs each`);
  const viaWorkflow: number[] = [];
  const bare: number[] = [];
  for (let i = 0; i < ITERATIONS; i++) {
    const a = `wf-${i}`;
    const uidA = await createPod(a);
    const gone = goneAt(a);
    const t0 = performance.now();
    await respondToAlert(client, config, alert(a, uidA));
    viaWorkflow.push((await gone) - t0);

    const b = `bare-${i}`;
    const uidB = await createPod(b);
    const goneB = goneAt(b);
    const t1 = performance.now();
    await core.deleteNamespacedPod({ namespace, name: b, gracePeriodSeconds: 0, body: { preconditions: { uid: uidB }, gracePeriodSeconds: 0 } });
    bare.push((await goneB) - t1);
  }

  // Concurrency: incidents parked awaiting approval are what a worker holds during an alert storm.
  progress(`concurrency: parking ${CONCURRENT} incidents`);
  const heldPolicy = policySchema.parse({ suspendOnSeverity: [], requireApprovalFor: ['terminate-pod'], approvalTimeoutSeconds: 3600 });
  const rssBefore = process.memoryUsage().rss;
  const tHold = performance.now();
  const ids: string[] = [];
  for (let i = 0; i < CONCURRENT; i++) {
    const name = `held-${i}`;
    const uid = await createPod(name);
    ids.push((await respondToAlert(client, { ...config, policy: heldPolicy }, alert(name, uid))).workflowId);
  }
  // All parked: each has run its inspect activity and waits on a signal.
  for (;;) {
    const { count } = await client.workflow.count(`TaskQueue = 'bench' AND PodResponderStage = 'awaiting-approval' AND ExecutionStatus = 'Running'`);
    if (count >= CONCURRENT) break;
    await new Promise((r) => setTimeout(r, 250));
  }
  const holdSeconds = (performance.now() - tHold) / 1000;
  const rssHeld = process.memoryUsage().rss;
  const tDrain = performance.now();
  await Promise.all(ids.map((id) => answerProposal(client.workflow.getHandle(id), 'approved', { by: 'bench' })));
  await Promise.all(ids.map((id) => client.workflow.getHandle(id).result()));
  const drainSeconds = (performance.now() - tDrain) / 1000;

  progress(`eks executor: ${EKS_RUNS} incidents through the in-VPC function`);
  const eks = await benchEks(client, { ...config, executor: 'eks-lambda' }, aws, stack.kubeconfigPath, EKS_RUNS);

  watch.abort();
  await worker.shutdown();
  await running;
  await connection.close();
  await stack.stop();
  rmSync(stateDir, { recursive: true, force: true });
  // Each on a stack of its own, with its own processes: a dev server full of the parts before slows it.
  progress(`alert storm through the forwarder and a worker`);
  const storm = await benchStorm({ log: progress });
  progress(`alert flood about one pod`);
  const flood = await benchFlood({ log: progress });
  progress(`intake while Temporal is away`);
  const intake = await benchIntake({ log: progress });
  progress(`containment: isolation, evidence, kill`);
  const containment = await benchContainment({ log: progress });

  const p50w = quantile(viaWorkflow, 0.5);
  const p95w = quantile(viaWorkflow, 0.95);
  const p50b = quantile(bare, 0.5);
  const p95b = quantile(bare, 0.95);
  process.stdout.write(`
## alert -> pod deleted (${ITERATIONS} runs each, same kube-apiserver)

| path | p50 | p95 |
| --- | --- | --- |
| bare DELETE with UID precondition | ${ms(p50b)} | ${ms(p95b)} |
| workflow: start, validate, inspect, decide, DELETE | ${ms(p50w)} | ${ms(p95w)} |
| ratio (workflow / bare) | ${(p50w / p50b).toFixed(1)}x | ${(p95w / p95b).toFixed(1)}x |

## one worker holding concurrent incidents

| incidents parked awaiting approval | time to park all | RSS of the process running worker + client (before -> held) | approve all -> all closed |
| --- | --- | --- | --- |
| ${CONCURRENT} | ${holdSeconds.toFixed(1)} s | ${mib(rssBefore)} -> ${mib(rssHeld)} | ${drainSeconds.toFixed(1)} s |

## EKS executor: deploy + invoke + cleanup, one incident at a time (${EKS_RUNS} runs, moto + test front)

| | p50 | max |
| --- | --- | --- |
| AWS API calls per incident | ${quantile(eks.callsPerIncident, 0.5)} | ${Math.max(...eks.callsPerIncident)} |
| wall time, alert -> incident closed and cleaned up | ${quantile(eks.wallSeconds, 0.5).toFixed(1)} s | ${Math.max(...eks.wallSeconds).toFixed(1)} s |
| of which in activities (final attempts) | ${quantile(eks.activeSeconds, 0.5).toFixed(1)} s | ${Math.max(...eks.activeSeconds).toFixed(1)} s |
| of which waiting (backoff, polling, DependencyViolation, queueing) | ${quantile(eks.wallSeconds.map((w, i) => w - eks.activeSeconds[i]!), 0.5).toFixed(1)} s | ${Math.max(...eks.wallSeconds.map((w, i) => w - eks.activeSeconds[i]!)).toFixed(1)} s |

The test front keeps a new function Pending for 2 s and a new access entry out of effect for 1 s (real AWS: tens of seconds, seconds); the cluster's executor security group is shared and stays.
`);
  reportStorm(storm);
  reportFlood(flood);
  reportIntake(intake);
  reportContainment(containment);
}

main().catch((err) => {
  process.stderr.write(`bench failed: ${err instanceof Error ? err.stack : String(err)}\n`);
  process.exit(1);
});
