/**
 * Alert to action, hop by hop (`npm run bench:latency` runs it alone). A Falco event, as Falcosidekick sends
 * it, is POSTed to the forwarder (a process of its own) -> Temporal -> the worker (this process) -> the pod
 * gone, seen by a watch on kube-apiserver. Beside it, interleaved run by run, the floor: a bare DELETE with
 * a UID precondition on a kept-alive connection to the same kube-apiserver, also timed to the watch.
 *  - kill first (policy: no isolation, no evidence): POST -> pod gone, and where the time goes;
 *  - the default policy (isolation first, then evidence, then the kill): POST -> pod isolated (labelled for
 *    its deny-all NetworkPolicy: the first containment in effect) and POST -> pod gone.
 * Hops come from the incident's history (when Temporal recorded the start and handed the first workflow task
 * to the worker) and from an activity interceptor that times each remediation call; one clock, one machine.
 *  - kill first, all in one (client/all-in-one.ts): the same, POSTed to a forwarder in the worker's process on
 *    the worker's connection, which starts the incident eagerly (its first workflow task in the start's answer);
 *    interleaved with the split forwarder's runs.
 * Sizes: BENCH_LATENCY_RUNS (default 30).
 */
import { Watch, type KubeConfig } from '@kubernetes/client-node';
import { Client, Connection } from '@temporalio/client';
import { tsToMs } from '@temporalio/common/lib/time.js';
import type { ActivityInterceptorsFactory } from '@temporalio/worker';
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { Agent, request } from 'node:https';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import { configSchema } from '../config/config.js';
import { createForwarder } from '../forwarder/server.js';
import { TemporalGateway } from '../forwarder/temporal-gateway.js';
import { createNamespace, createPod, fixtureKube } from '../devstack/fixtures.js';
import { startStack } from '../devstack/stack.js';
import { ISOLATION_LABEL } from '../remediation/isolate.js';
import { kubeConfigFromFile } from '../remediation/kube.js';
import { installLogging } from '../worker/logging.js';
import { createWorker } from '../worker/worker.js';
import { incidentWorkflowId } from '../workflows/ids.js';
import { envNumber, runAlone, startForwarderProcess } from './processes.js';
import { quantile } from './storm-client.js';

/** Milliseconds since the epoch, sub-millisecond: comparable with Temporal's event times on this machine. */
const now = () => performance.timeOrigin + performance.now();

export const HOPS = [
  ['posted', 'forwarder: parse, check, signal-with-start recorded by Temporal'],
  ['dispatched', 'Temporal: first workflow task handed to the worker'],
  ['toInspect', 'worker: workflow code up to the pod read'],
  ['inspect', 'pod read (GET pod and owners)'],
  ['toDelete', 'workflow: identity check, decide, up to the DELETE'],
  ['delete', 'DELETE with UID precondition, answered'],
  ['toWatch', 'DELETE answered -> watch sees the pod gone'],
] as const;
type Hop = (typeof HOPS)[number][0];

export interface LatencyResult {
  runs: number;
  /** Bare DELETE on a kept-alive connection -> watch: the floor. */
  floorMs: number[];
  /** Kill first: POST -> pod gone; POST -> 202. */
  killMs: number[];
  acceptedMs: number[];
  hops: Record<Hop, number[]>;
  /** The default policy: POST -> pod isolated, POST -> pod gone. */
  containedMs: number[];
  containedGoneMs: number[];
  /** Kill first, all in one: POST -> pod gone, POST -> 202, and its hops. */
  aioKillMs: number[];
  aioAcceptedMs: number[];
  aioHops: Record<Hop, number[]>;
  /** All-in-one runs whose start the server answered with the first workflow task. */
  aioEager: number;
  /** Remediation calls on the kill-first path. */
  callsPerIncident: number;
  failures: string[];
}

interface Call {
  op: string;
  start: number;
  end: number;
}

export async function benchLatency(o: { log: (line: string) => void; runs?: number }): Promise<LatencyResult> {
  const runs = o.runs ?? envNumber('BENCH_LATENCY_RUNS', 30);
  installLogging('ERROR');
  const stateDir = mkdtempSync(path.join(tmpdir(), 'pod-responder-bench-latency-'));
  const stack = await startStack({ stateDir, headless: true, log: () => {} });
  const kube = fixtureKube(stack.kubeconfigPath);
  const kc = kubeConfigFromFile(stack.kubeconfigPath);
  const namespace = await createNamespace(kube, 'latency');
  const taskQueue = `latency-${randomBytes(3).toString('hex')}`;
  const token = randomBytes(16).toString('hex');

  // Each remediation call, by incident, as the worker ran it.
  const calls = new Map<string, Call[]>();
  const timing: ActivityInterceptorsFactory = (ctx) => ({
    inbound: {
      async execute(input, next) {
        const start = now();
        try {
          return await next(input);
        } finally {
          if (ctx.info.activityType === 'runDirect') {
            const id = ctx.info.workflowExecution?.workflowId ?? '';
            const op = (input.args[1] as { op: string }).op;
            calls.set(id, [...(calls.get(id) ?? []), { op, start, end: now() }]);
          }
        }
      },
    },
  });
  const base = {
    temporal: { address: stack.temporalAddress, taskQueue },
    direct: { kubeconfig: stack.kubeconfigPath, cluster: 'local' },
  };
  const config = configSchema.parse(base);
  const worker = await createWorker(config, { interceptors: { activity: [timing] } });
  const running = worker.run();
  const connection = await Connection.connect({ address: stack.temporalAddress });
  const client = new Client({ connection });

  const forwarderFor = async (name: string, policy: object) => {
    const configFile = path.join(stateDir, `${name}.json`);
    writeFileSync(configFile, JSON.stringify({ policy }));
    return startForwarderProcess({ temporalAddress: stack.temporalAddress, taskQueue, token, configFile });
  };
  const killFirstPolicy = { isolate: false, evidenceSeconds: 0, suspendOnSeverity: [] };
  const killFirst = await forwarderFor('kill-first', killFirstPolicy);
  // All in one: a forwarder in this process, on the worker's own connection (as `pod-responder all-in-one` runs).
  const aioConfig = configSchema.parse({
    ...base,
    policy: killFirstPolicy,
    forwarder: { host: '127.0.0.1', port: 0, sources: { falco: { token } }, spool: { enabled: false } },
  });
  const aio = createForwarder({
    config: aioConfig,
    sink: TemporalGateway.shared(aioConfig, worker.connection),
    logStream: { write: () => undefined },
  });
  const aioBase = await aio.listen();
  const defaults = await forwarderFor('defaults', { suspendOnSeverity: [] });

  const gone = new Map<string, (t: number) => void>();
  const isolated = new Map<string, (t: number) => void>();
  // Isolation is in effect once the pod carries the label its deny-all policy selects (the policy comes first).
  const watch = await new Watch(kc).watch(
    `/api/v1/namespaces/${namespace}/pods`,
    {},
    (type, obj: { metadata?: { name?: string; labels?: Record<string, string> } }) => {
      const name = obj.metadata?.name ?? '';
      if (type === 'DELETED') gone.get(name)?.(now());
      else if (type === 'MODIFIED' && obj.metadata?.labels?.[ISOLATION_LABEL]) isolated.get(name)?.(now());
    },
    () => undefined,
  );
  const when = (m: Map<string, (t: number) => void>, name: string) =>
    new Promise<number>((resolve) => m.set(name, resolve));

  const floor = await keptAliveDelete(kc);
  const post = async (base: string, name: string, containerId: string): Promise<{ accepted: number }> => {
    const res = await fetch(`${base}/v1/alerts/falco?cluster=local`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: falcoEvent(namespace, name, containerId),
    });
    const body = (await res.json()) as { accepted?: number };
    if (res.status !== 202 || body.accepted !== 1)
      throw new Error(`forwarder answered ${res.status}: ${JSON.stringify(body)}`);
    return { accepted: now() };
  };

  const settled = (podName: string) =>
    client.workflow.getHandle(incidentWorkflowId({ cluster: { name: 'local' }, namespace, podName })).result();
  /** Where one kill's time went, from the incident's history and the timed remediation calls; its start event. */
  const profile = async (podName: string, t0: number, tGone: number, into: Record<Hop, number[]>) => {
    const workflowId = incidentWorkflowId({ cluster: { name: 'local' }, namespace, podName });
    await client.workflow.getHandle(workflowId).result();
    const ran = calls.get(workflowId) ?? [];
    const inspect = ran.find((c) => c.op === 'inspect');
    const del = ran.find((c) => c.op === 'terminate-pod');
    const events = (await client.workflow.getHandle(workflowId).fetchHistory()).events ?? [];
    const started = events.find((e) => e.workflowExecutionStartedEventAttributes);
    const taskStarted = events.find((e) => e.workflowTaskStartedEventAttributes);
    if (!inspect || !del || !started || !taskStarted) {
      r.failures.push(
        `${workflowId}: missing a step (inspect ${!!inspect}, delete ${!!del}, history ${events.length} events)`,
      );
      return null;
    }
    const tStarted = tsToMs(started.eventTime);
    const tDispatched = tsToMs(taskStarted.eventTime);
    const hop: Record<Hop, number> = {
      posted: tStarted - t0,
      dispatched: tDispatched - tStarted,
      toInspect: inspect.start - tDispatched,
      inspect: inspect.end - inspect.start,
      toDelete: del.start - inspect.end,
      delete: del.end - del.start,
      toWatch: tGone - del.end,
    };
    for (const [h] of HOPS) into[h].push(hop[h]);
    r.callsPerIncident = ran.length;
    return started.workflowExecutionStartedEventAttributes!;
  };

  const r: LatencyResult = {
    runs,
    floorMs: [],
    killMs: [],
    acceptedMs: [],
    containedMs: [],
    containedGoneMs: [],
    aioKillMs: [],
    aioAcceptedMs: [],
    aioHops: Object.fromEntries(HOPS.map(([h]) => [h, []])) as unknown as Record<Hop, number[]>,
    aioEager: 0,
    callsPerIncident: 0,
    failures: [],
    hops: Object.fromEntries(HOPS.map(([h]) => [h, []])) as unknown as Record<Hop, number[]>,
  };
  try {
    o.log(`latency: ${runs} runs of each, interleaved, after 3 to warm up`);
    for (let i = -3; i < runs; i++) {
      const bare = await createPod(kube, namespace, `bare-${i + 3}`);
      const goneBare = when(gone, bare.metadata!.name!);
      const t1 = now();
      await floor.delete(namespace, bare.metadata!.name!, bare.metadata!.uid!);
      const floorMs = (await goneBare) - t1;

      const pod = await createPod(kube, namespace, `kill-${i + 3}`);
      const name = pod.metadata!.name!;
      const goneAt = when(gone, name);
      const t0 = now();
      const { accepted } = await post(killFirst.base, name, pod.containerId);
      const tGone = await goneAt;
      await settled(name); // its incident's work after the kill is not the next kill's load
      // The same kill through the all-in-one forwarder, interleaved.
      const aioPod = await createPod(kube, namespace, `aio-${i + 3}`);
      const aioName = aioPod.metadata!.name!;
      const aioGone = when(gone, aioName);
      const a0 = now();
      const aioAccepted = (await post(aioBase, aioName, aioPod.containerId)).accepted;
      const tAioGone = await aioGone;
      await settled(aioName);
      if (i < 0) continue;
      r.floorMs.push(floorMs);
      r.killMs.push(tGone - t0);
      r.acceptedMs.push(accepted - t0);
      r.aioKillMs.push(tAioGone - a0);
      r.aioAcceptedMs.push(aioAccepted - a0);
      await profile(name, t0, tGone, r.hops);
      if ((await profile(aioName, a0, tAioGone, r.aioHops))?.eagerExecutionAccepted) r.aioEager++;
    }

    o.log(`latency: ${Math.ceil(runs / 3)} runs with the default policy (isolation first)`);
    for (let i = 0; i < Math.ceil(runs / 3); i++) {
      const pod = await createPod(kube, namespace, `contain-${i}`);
      const name = pod.metadata!.name!;
      const goneAt = when(gone, name);
      const isolatedAt = when(isolated, name);
      const t0 = now();
      await post(defaults.base, name, pod.containerId);
      r.containedMs.push((await isolatedAt) - t0);
      r.containedGoneMs.push((await goneAt) - t0);
    }
  } finally {
    watch.abort();
    floor.close();
    await killFirst.stop();
    await defaults.stop();
    await aio.close();
    await worker.shutdown();
    await running;
    await connection.close();
    await stack.stop();
    rmSync(stateDir, { recursive: true, force: true });
  }
  return r;
}

/** A Falco event as Falcosidekick POSTs it (../shared/reference/alert-formats.md): 12-character container ID. */
export function falcoEvent(namespace: string, podName: string, containerId: string): string {
  return JSON.stringify({
    uuid: randomUUID(),
    rule: 'Detect outbound connections to common miner pool ports',
    priority: 'Critical',
    time: new Date().toISOString().replace('Z', '000000Z'),
    source: 'syscall',
    tags: ['T1496'],
    output: `Outbound connection to a Stratum mining pool (pod ${podName})`,
    output_fields: {
      'k8s.ns.name': namespace,
      'k8s.pod.name': podName,
      'container.id': containerId.slice(0, 12),
      'proc.name': 'xmrig',
    },
  });
}

/** The floor: DELETE with a UID precondition over one kept-alive TLS connection, no client library. */
async function keptAliveDelete(kc: KubeConfig) {
  const server = new URL(kc.getCurrentCluster()!.server);
  const tls: { ca?: unknown; cert?: unknown; key?: unknown; headers?: Record<string, string> } = {};
  await kc.applyToHTTPSOptions(tls);
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  return {
    delete: (namespace: string, name: string, uid: string) =>
      new Promise<void>((resolve, reject) => {
        const body = JSON.stringify({ preconditions: { uid }, gracePeriodSeconds: 0 });
        const req = request(
          {
            agent,
            host: server.hostname,
            port: server.port,
            method: 'DELETE',
            path: `/api/v1/namespaces/${namespace}/pods/${name}`,
            ca: tls.ca as string,
            cert: tls.cert as string,
            key: tls.key as string,
            headers: { ...tls.headers, 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
          },
          (res) => {
            res.resume();
            res.on('end', () =>
              res.statusCode === 200 ? resolve() : reject(new Error(`DELETE answered ${res.statusCode}`)),
            );
          },
        );
        req.on('error', reject);
        req.end(body);
      }),
    close: () => agent.destroy(),
  };
}

const ms = (x: number) => `${x.toFixed(1)} ms`;

/** At most this many times the floor, at p50 (issue 13's goal). */
export const LATENCY_GOAL_RATIO = 3;

export function latencyFailures(r: LatencyResult): string[] {
  return [
    ...r.failures,
    ...(r.killMs.length !== r.runs ? [`${r.runs - r.killMs.length} runs not measured`] : []),
    ...(r.aioKillMs.length !== r.runs ? [`${r.runs - r.aioKillMs.length} all-in-one runs not measured`] : []),
  ];
}

export function formatLatency(r: LatencyResult): string {
  const floor = quantile(r.floorMs, 0.5);
  const row = (what: string, xs: number[]) =>
    `| ${what} | ${ms(quantile(xs, 0.5))} | ${ms(quantile(xs, 0.95))} | ${(quantile(xs, 0.5) / floor).toFixed(1)}x |`;
  const hop = (h: Hop, what: string) =>
    `| ${what} | ${ms(quantile(r.hops[h], 0.5))} | ${ms(quantile(r.hops[h], 0.95))} | ${ms(quantile(r.aioHops[h], 0.5))} | ${ms(quantile(r.aioHops[h], 0.95))} |`;
  return `
## alert -> action: Falco event POSTed to the forwarder -> pod gone (watch), ${r.runs} runs, one kube-apiserver

| path | p50 | p95 | x floor (p50) |
| --- | --- | --- | --- |
${row('floor: bare DELETE with UID precondition, kept-alive connection', r.floorMs)}
${row('kill first: POST -> pod gone', r.killMs)}
${row('kill first: POST -> 202 (Temporal has the alert)', r.acceptedMs)}
${row(`kill first, all in one (eager start: ${r.aioEager}/${r.aioKillMs.length} runs): POST -> pod gone`, r.aioKillMs)}
${row('kill first, all in one: POST -> 202', r.aioAcceptedMs)}
${row('default policy: POST -> pod isolated (first containment in effect)', r.containedMs)}
${row('default policy: POST -> pod gone (after isolation and evidence)', r.containedGoneMs)}

Kill first, hop by hop (${r.callsPerIncident} remediation calls per incident; goal: at most ${LATENCY_GOAL_RATIO}x the floor):

| hop | p50 | p95 | all in one: p50 | p95 |
| --- | --- | --- | --- | --- |
${HOPS.map(([h, what]) => hop(h, what)).join('\n')}

(All in one: the forwarder's hop is the eager start recorded, and the second is the start's answer carrying the task.)
`;
}

if (process.argv[1] && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) {
  runAlone(
    'latency',
    () => benchLatency({ log: (line) => process.stderr.write(`[bench] ${line}\n`) }),
    formatLatency,
    latencyFailures,
  );
}
