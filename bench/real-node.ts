/**
 * Physical effects on the real node (BENCH_ONLY=real-node runs it alone; docs/real-node.md): for a miner Deployment,
 * the time from the alert accepted by Temporal to what happens on the machine, beside the API-level time we report
 * elsewhere: isolation (kube-router's per-pod chain in force; the API: the incident says isolated), the kill (the
 * container's processes gone from the host; the API: the pod object gone), the replacement's repeat alert suspending
 * the workload (no miner process left; the API: replicas 0). Floor: a bare DELETE with the same grace period, to the
 * process gone. Polled every 20 ms. Sizes: BENCH_REAL_NODE_RUNS (default 3). Skips where containers cannot run.
 * Also the kill-first row end to end: a Falco event POSTed to a forwarder (a process of its own, kill-first policy:
 * no isolation, no evidence) about a bare miner pod, to the miner's processes gone from the host.
 */
import { Client, Connection } from '@temporalio/client';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import type { V1Pod } from '@kubernetes/client-node';
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { respondToAlert } from '../temporal-client/incidents.js';
import { configSchema } from '../config/config.js';
import { fixtureKube } from '../devstack/fixtures.js';
import { podFirewallFor, podProcesses, realNodeMissing } from '../devstack/node-host.js';
import { IMAGES } from '../devstack/node-images.js';
import { startStack } from '../devstack/stack.js';
import type { PodAlert } from '../domain/alert.js';
import { installLogging } from '../worker/logging.js';
import { createWorker } from '../worker/worker.js';
import { statusQuery } from '../workflows/messages.js';
import { falcoEvent } from './latency.js';
import { startForwarderProcess } from './processes.js';

export interface RealNodeResult {
  skipped?: string;
  runs: number;
  isolatedApiMs: number[];
  isolatedRuleMs: number[];
  podGoneApiMs: number[];
  processGoneMs: number[];
  suspendedApiMs: number[];
  noMinerMs: number[];
  floorProcessGoneMs: number[];
  /** Kill first, POSTed to the forwarder: POST -> 202, pod object gone, processes gone from the host. */
  postAcceptedMs: number[];
  postPodGoneMs: number[];
  postProcessGoneMs: number[];
  failures: string[];
}

const GRACE_SECONDS = 2; // the responder's default graceful delete

/** The time `pred` first holds, polled every 20 ms. */
async function whenTrue(what: string, pred: () => boolean | Promise<boolean>, timeoutMs = 60_000): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await Promise.resolve(pred()).catch(() => false)) return Date.now();
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

export async function benchRealNode(o: { log: (line: string) => void; runs?: number }): Promise<RealNodeResult> {
  const runs = o.runs ?? Number(process.env.BENCH_REAL_NODE_RUNS ?? 3);
  const result: RealNodeResult = {
    runs,
    isolatedApiMs: [],
    isolatedRuleMs: [],
    podGoneApiMs: [],
    processGoneMs: [],
    suspendedApiMs: [],
    noMinerMs: [],
    floorProcessGoneMs: [],
    postAcceptedMs: [],
    postPodGoneMs: [],
    postProcessGoneMs: [],
    failures: [],
  };
  const missing = realNodeMissing();
  if (missing.length) return { ...result, skipped: missing.join('; ') };
  installLogging('ERROR');
  const stateDir = mkdtempSync(path.join(tmpdir(), 'pod-responder-bench-node-'));
  const stack = await startStack({ stateDir, headless: true, realNode: true, log: () => {} });
  const node = stack.node!;
  const kube = fixtureKube(stack.kubeconfigPath);
  const config = configSchema.parse({
    temporal: { address: stack.temporalAddress, taskQueue: 'real-node' },
    direct: { kubeconfig: stack.kubeconfigPath, cluster: 'local' },
    policy: { watchSeconds: 0, holdSuspensionSeconds: 0 },
  });
  const connection = await Connection.connect({ address: stack.temporalAddress });
  const client = new Client({ connection });
  const worker = await createWorker(config);
  const running = worker.run();
  const token = randomBytes(16).toString('hex');
  const killFirstConfig = path.join(stateDir, 'kill-first.json');
  writeFileSync(
    killFirstConfig,
    JSON.stringify({ policy: { isolate: false, evidenceSeconds: 0, suspendOnSeverity: [], watchSeconds: 0 } }),
  );
  const forwarder = await startForwarderProcess({
    temporalAddress: stack.temporalAddress,
    taskQueue: 'real-node',
    token,
    configFile: killFirstConfig,
  });
  const container = {
    name: 'miner',
    image: IMAGES.miner,
    imagePullPolicy: 'Never',
    env: [{ name: 'POOL', value: node.pool.address }],
  };
  const runningMiners = async (ns: string, not: string[] = []): Promise<V1Pod[]> =>
    (await kube.core.listNamespacedPod({ namespace: ns })).items.filter(
      (p) =>
        !not.includes(p.metadata!.uid!) &&
        !p.metadata?.deletionTimestamp &&
        p.status?.containerStatuses?.[0]?.state?.running &&
        p.status.podIP,
    );
  const alert = (p: V1Pod): PodAlert => ({
    source: 'generic',
    alertId: `bench-${p.metadata!.uid}`,
    category: 'crypto-mining',
    severity: 'high',
    detectedAt: new Date().toISOString(),
    cluster: { name: 'local' },
    namespace: p.metadata!.namespace!,
    podName: p.metadata!.name!,
    podUid: p.metadata!.uid!,
    container: {
      id: p.status!.containerStatuses![0]!.containerID!.replace(/^containerd:\/\//, '').slice(0, 12),
      name: 'miner',
    },
  });

  try {
    o.log(`real-node: a warm-up, then ${runs} runs`);
    for (let i = -1; i < runs; i++) {
      const ns = `node-bench-${i + 1}`;
      await kube.core.createNamespace({ body: { metadata: { name: ns } } });
      await kube.apps.createNamespacedDeployment({
        namespace: ns,
        body: {
          metadata: { name: 'miner' },
          spec: {
            replicas: 1,
            selector: { matchLabels: { app: 'miner' } },
            template: {
              metadata: { labels: { app: 'miner' } },
              spec: { terminationGracePeriodSeconds: 30, containers: [container] },
            },
          },
        },
      });
      let first: V1Pod | undefined;
      await whenTrue('the miner running', async () => !!(first = (await runningMiners(ns))[0]));
      const ip = first!.status!.podIP!;
      const uid = first!.metadata!.uid!;

      // Alert 1: isolate, kill.
      const started = await respondToAlert(client, config, alert(first!));
      const accepted = Date.now();
      const handle = client.workflow.getHandle(started.workflowId);
      const [isolatedApi, isolatedRule, podGone, processGone] = await Promise.all([
        whenTrue('the incident to say isolated', async () =>
          ['isolated', 'released'].includes((await handle.query(statusQuery)).isolation?.state ?? ''),
        ),
        whenTrue('kube-router enforcing a policy on the pod', () => podFirewallFor(ip)),
        whenTrue('the pod object gone', async () =>
          (await kube.core.listNamespacedPod({ namespace: ns })).items.every((p) => p.metadata!.uid !== uid),
        ),
        whenTrue('the process gone', () => podProcesses(uid).length === 0),
      ]);
      await handle.result();

      // The replacement's alert: a repeat, so the Deployment is suspended.
      let second: V1Pod | undefined;
      await whenTrue('the replacement running', async () => !!(second = (await runningMiners(ns, [uid]))[0]));
      const started2 = await respondToAlert(client, config, alert(second!));
      const accepted2 = Date.now();
      const [suspendedApi, noMiner] = await Promise.all([
        whenTrue(
          'replicas 0',
          async () => (await kube.apps.readNamespacedDeployment({ namespace: ns, name: 'miner' })).spec?.replicas === 0,
        ),
        whenTrue(
          'no miner process left',
          async () => podProcesses(second!.metadata!.uid!).length === 0 && (await runningMiners(ns)).length === 0,
        ),
      ]);
      const outcome = (await client.workflow.getHandle(started2.workflowId).result()) as { outcome?: string };
      if (outcome.outcome !== 'workload-suspended' && outcome.outcome !== 'workload-restored')
        result.failures.push(`run ${i}: the repeat ended ${outcome.outcome}`);

      // Kill first, end to end: the Falco event POSTed about a bare miner pod -> its processes gone.
      const lone = await kube.core.createNamespacedPod({
        namespace: ns,
        body: {
          metadata: { name: 'lone' },
          spec: { terminationGracePeriodSeconds: 30, containers: [{ ...container, name: 'c' }] },
        },
      });
      const loneUid = lone.metadata!.uid!;
      let loneContainer = '';
      await whenTrue('the lone miner running', async () => {
        const s = (await kube.core.readNamespacedPod({ namespace: ns, name: 'lone' })).status?.containerStatuses?.[0];
        loneContainer = s?.containerID?.replace(/^containerd:\/\//, '') ?? '';
        return s?.state?.running !== undefined && podProcesses(loneUid).length > 0;
      });
      const posted = Date.now();
      const answer = await fetch(`${forwarder.base}/v1/alerts/falco?cluster=local`, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        body: falcoEvent(ns, 'lone', loneContainer),
      });
      const postAccepted = Date.now();
      if (answer.status !== 202) result.failures.push(`run ${i}: the POST was answered ${answer.status}`);
      const [lonePodGone, loneProcessGone] = await Promise.all([
        whenTrue('the lone pod object gone', async () =>
          (await kube.core.listNamespacedPod({ namespace: ns })).items.every((p) => p.metadata!.uid !== loneUid),
        ),
        whenTrue('the lone miner process gone', () => podProcesses(loneUid).length === 0),
      ]);

      // Floor: a bare DELETE with the same grace period, to the process gone.
      const bare = await kube.core.createNamespacedPod({
        namespace: ns,
        body: {
          metadata: { name: 'bare' },
          spec: { terminationGracePeriodSeconds: 30, containers: [{ ...container, name: 'c' }] },
        },
      });
      await whenTrue(
        'the bare pod running',
        async () =>
          (await kube.core.readNamespacedPod({ namespace: ns, name: 'bare' })).status?.containerStatuses?.[0]?.state
            ?.running !== undefined,
      );
      const t = Date.now();
      await kube.core.deleteNamespacedPod({ namespace: ns, name: 'bare', gracePeriodSeconds: GRACE_SECONDS });
      const floorGone = await whenTrue(
        'the bare pod process gone',
        () => podProcesses(bare.metadata!.uid!).length === 0,
      );
      if (i < 0) continue; // warm-up
      result.isolatedApiMs.push(isolatedApi - accepted);
      result.isolatedRuleMs.push(isolatedRule - accepted);
      result.podGoneApiMs.push(podGone - accepted);
      result.processGoneMs.push(processGone - accepted);
      result.suspendedApiMs.push(suspendedApi - accepted2);
      result.noMinerMs.push(noMiner - accepted2);
      result.floorProcessGoneMs.push(floorGone - t);
      result.postAcceptedMs.push(postAccepted - posted);
      result.postPodGoneMs.push(lonePodGone - posted);
      result.postProcessGoneMs.push(loneProcessGone - posted);
      o.log(`real-node: run ${i + 1} of ${runs} done`);
    }
  } finally {
    await forwarder.stop();
    await worker.shutdown();
    await running;
    await connection.close();
    await stack.stop();
    rmSync(stateDir, { recursive: true, force: true });
  }
  return result;
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.floor(s.length / 2)]! : NaN;
};

export function formatRealNode(r: RealNodeResult): string {
  if (r.skipped) return `\n## real node: skipped (${r.skipped})\n`;
  const ms = (xs: number[]) =>
    `${median(xs).toFixed(0)} ms (${Math.min(...xs).toFixed(0)}–${Math.max(...xs).toFixed(0)})`;
  return `
## real node: alert accepted -> physical effect, beside the API-level effect (${r.runs} runs, median (min–max))

| stage | API-level effect | physical effect on the node |
| --- | --- | --- |
| isolation | incident says isolated: ${ms(r.isolatedApiMs)} | kube-router runs the pod's traffic through the policy's chain: ${ms(r.isolatedRuleMs)} |
| kill (graceful, ${GRACE_SECONDS} s) | pod object gone: ${ms(r.podGoneApiMs)} | container processes gone from the host: ${ms(r.processGoneMs)} |
| repeat -> suspend | Deployment replicas 0: ${ms(r.suspendedApiMs)} | no miner process left: ${ms(r.noMinerMs)} |
| kill first, from the Falco event POSTed to the forwarder (202: ${ms(r.postAcceptedMs)}) | pod object gone: ${ms(r.postPodGoneMs)} | container processes gone from the host: ${ms(r.postProcessGoneMs)} (${(median(r.postProcessGoneMs) / median(r.floorProcessGoneMs)).toFixed(2)}x the floor) |
| floor: bare DELETE (grace ${GRACE_SECONDS} s) | | process gone: ${ms(r.floorProcessGoneMs)} |

The miner ignores SIGTERM (a shell as PID 1), so a kill takes the grace period: the kubelet's SIGKILL ends it.
An established pool connection survives isolation (kube-router accepts ESTABLISHED); the chain refuses new ones.
`;
}

export function realNodeFailures(r: RealNodeResult): string[] {
  if (r.skipped) return [];
  const f = [...r.failures];
  if (r.processGoneMs.length !== r.runs) f.push(`${r.processGoneMs.length} of ${r.runs} runs measured`);
  if (r.postProcessGoneMs.length !== r.runs)
    f.push(`kill first: ${r.postProcessGoneMs.length} of ${r.runs} runs measured`);
  return f;
}
