/**
 * `npm run bench:storm`: an alert storm against the forwarder's front door. A load generator in a
 * process of its own (bench/storm-client.ts) posts BENCH_STORM_ALERTS Falco alerts (default 20000)
 * over BENCH_STORM_PODS pods (default 200), BENCH_STORM_CONCURRENCY in flight (default 64), plus
 * ~5% resends, to a forwarder in its own process (so its memory is its alone) over loopback.
 * No worker polls the storm's task queue: incidents are started and signalled, never run, which
 * is exactly what the forwarder is answerable for. Temporal's histories are then checked: one
 * workflow per pod, every accepted alert delivered as a signal, and each exactly once.
 * BENCH_STORM_CPU_PROF=<dir> also writes the forwarder's CPU profile there.
 */
import { Client, Connection } from '@temporalio/client';
import { defaultPayloadConverter, type Payload } from '@temporalio/common';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { startStack } from '../devstack/stack.js';
import type { PodAlert } from '../domain/alert.js';
import { ALL_ENV_NAMES } from '../worker/config.js';
import type { StormClientOptions, StormClientReport } from './storm-client.js';

export interface StormOptions {
  /** A running Temporal; without it a headless local stack is started and stopped. */
  temporalAddress?: string;
  alerts?: number;
  pods?: number;
  concurrency?: number;
  /** Share of accepted alerts sent again (default 0.05). */
  resendRatio?: number;
  log?: (line: string) => void;
}

/** The load generator's figures, plus what Temporal and the forwarder's own metrics say. */
export type StormResult = Omit<StormClientReport, 'acceptedIds' | 'cpuSeconds'> & {
  alerts: number;
  pods: number;
  concurrency: number;
  /** Unique alerts accepted per wall-clock second. */
  acceptedPerSecond: number;
  workflowsStarted: number;
  /** `alert` signals in the storm workflows' histories, and how many distinct alert IDs they carry. */
  signalsDelivered: number;
  signalledAlerts: number;
  /** Accepted alerts (202 `accepted`) found in no history. */
  lost: number;
  forwarder: { rssIdle: number; rssPeak: number; heapIdle: number; heapPeak: number; cpuSeconds: number; exitCode: number | null };
  clientCpuSeconds: number;
};

const REPO_ROOT = fileURLToPath(new URL('..', import.meta.url));
const TSX = pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href;
const METRIC = 'pod_responder_forwarder_';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const envNumber = (name: string, fallback: number) => Number(process.env[name] ?? fallback);

/** `node --import tsx <script>`, the way devstack starts its node processes. */
function spawnTs(script: string, args: string[], env: NodeJS.ProcessEnv, nodeArgs: string[] = []): ChildProcess {
  const child = spawn(process.execPath, [...nodeArgs, '--import', TSX, path.join(REPO_ROOT, script), ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  const kill = () => child.kill('SIGKILL');
  process.once('exit', kill); // a failed bench must not leave a forwarder listening
  child.once('exit', () => process.off('exit', kill));
  return child;
}

function collect(child: ChildProcess): { out: () => string; err: () => string; exited: Promise<number | null> } {
  let out = '';
  let err = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return { out: () => out, err: () => err, exited };
}

async function freePort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((resolve, reject) => srv.once('error', reject).listen(0, '127.0.0.1', resolve));
  const { port } = srv.address() as AddressInfo;
  await new Promise((r) => srv.close(r));
  return port;
}

/** The forwarder's own view of itself, from its Prometheus endpoint. */
async function sample(base: string): Promise<{ rss: number; heap: number; cpu: number }> {
  const text = await (await fetch(`${base}/metrics`)).text();
  const value = (name: string) => Number(new RegExp(`^${METRIC}${name} (\\S+)`, 'm').exec(text)?.[1] ?? NaN);
  return { rss: value('process_resident_memory_bytes'), heap: value('nodejs_heap_size_used_bytes'), cpu: value('process_cpu_seconds_total') };
}

/** Runs `fn` over `items`, `limit` at a time. */
async function eachLimited<T>(items: T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: limit }, async () => {
    while (next < items.length) await fn(items[next++]!);
  }));
}

export async function benchStorm(opts: StormOptions = {}): Promise<StormResult> {
  const log = opts.log ?? (() => {});
  const alerts = opts.alerts ?? envNumber('BENCH_STORM_ALERTS', 20_000);
  const pods = opts.pods ?? envNumber('BENCH_STORM_PODS', 200);
  const concurrency = opts.concurrency ?? envNumber('BENCH_STORM_CONCURRENCY', 64);
  const resendRatio = opts.resendRatio ?? 0.05;
  // Where the forwarder's time goes: a .cpuprofile for Chrome DevTools, written when it exits.
  const profileDir = process.env.BENCH_STORM_CPU_PROF;

  const stateDir = mkdtempSync(path.join(tmpdir(), 'pod-responder-storm-'));
  const stack = opts.temporalAddress ? undefined : await startStack({ stateDir, headless: true, log: () => {} });
  const temporalAddress = opts.temporalAddress ?? stack!.temporalAddress;
  const taskQueue = `storm-${randomBytes(4).toString('hex')}`;
  const token = randomBytes(16).toString('hex');
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  const configFile = path.join(stateDir, 'forwarder.json');
  // The storm is the point: the per-source rate limit would turn it into 429s.
  writeFileSync(configFile, JSON.stringify({ forwarder: { sources: { falco: { ratePerSecond: 1_000_000, burst: 1_000_000 } } } }));
  // Only our settings: a POD_RESPONDER_* in the caller's environment must not change what is measured.
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !ALL_ENV_NAMES.includes(k)));
  const forwarder = spawnTs('client/cli.ts', ['forwarder'], {
    ...env,
    TEMPORAL_ADDRESS: temporalAddress,
    POD_RESPONDER_TASK_QUEUE: taskQueue,
    POD_RESPONDER_FORWARDER_HOST: '127.0.0.1',
    POD_RESPONDER_FORWARDER_PORT: String(port),
    POD_RESPONDER_FALCO_TOKEN: token,
    POD_RESPONDER_LOG_LEVEL: 'WARN',
    POD_RESPONDER_CONFIG: configFile,
  }, profileDir ? ['--cpu-prof', `--cpu-prof-dir=${profileDir}`] : []);
  const fwd = collect(forwarder);
  const connection = await Connection.connect({ address: temporalAddress });
  const client = new Client({ connection });
  const workflowIds = Array.from({ length: pods }, (_, i) => `pod-incident:storm:storm:miner-${i}`);
  try {
    for (const deadline = Date.now() + 60_000; ; await sleep(200)) {
      if (forwarder.exitCode !== null) throw new Error(`forwarder exited (${forwarder.exitCode}) before ready:\n${fwd.out()}${fwd.err()}`);
      if (Date.now() > deadline) throw new Error(`forwarder not ready after 60s:\n${fwd.out()}${fwd.err()}`);
      if (await fetch(`${base}/readyz`).then((r) => r.ok, () => false)) break;
    }
    const idle = await sample(base);
    log(`storm: ${alerts} alerts over ${pods} pods, ${concurrency} in flight, task queue ${taskQueue}`);

    // Samples one at a time: a slow /metrics under load must not pile up requests of its own.
    let sampling = true;
    const peak = { rss: idle.rss, heap: idle.heap };
    const sampler = (async () => {
      while (sampling) {
        const s = await sample(base).catch(() => undefined);
        if (s) Object.assign(peak, { rss: Math.max(peak.rss, s.rss), heap: Math.max(peak.heap, s.heap) });
        await sleep(250);
      }
    })();
    const clientOpts: StormClientOptions = { url: `${base}/v1/alerts/falco?cluster=storm`, token, alerts, pods, concurrency, resendRatio };
    const gen = collect(spawnTs('bench/storm-client.ts', [JSON.stringify(clientOpts)], process.env));
    const code = await gen.exited;
    sampling = false;
    await sampler;
    const busy = await sample(base);
    if (code !== 0) throw new Error(`storm client exited ${code}:\n${gen.err()}`);
    const report = JSON.parse(gen.out()) as StormClientReport;
    log(`storm: ${report.accepted} accepted in ${report.wallSeconds.toFixed(1)} s; checking Temporal`);

    // Visibility is eventually consistent: give the count a few seconds to catch up.
    let workflowsStarted = 0;
    for (const deadline = Date.now() + 10_000; Date.now() < deadline; await sleep(250)) {
      workflowsStarted = (await client.workflow.count(`TaskQueue = "${taskQueue}"`)).count;
      if (workflowsStarted === pods) break;
    }
    const signalled = new Set<string>();
    let signalsDelivered = 0;
    await eachLimited(workflowIds, 16, async (id) => {
      const history = await client.workflow.getHandle(id).fetchHistory().catch(() => undefined); // a pod with no workflow: its alerts are lost
      for (const e of history?.events ?? []) {
        const signal = e.workflowExecutionSignaledEventAttributes;
        if (signal?.signalName !== 'alert') continue;
        signalsDelivered++;
        signalled.add(defaultPayloadConverter.fromPayload<PodAlert>(signal.input!.payloads![0] as Payload).alertId);
      }
    });
    const lost = report.acceptedIds.filter((id) => !signalled.has(id)).length;
    const { acceptedIds: _ids, cpuSeconds: clientCpuSeconds, ...figures } = report;
    return {
      alerts, pods, concurrency, ...figures,
      acceptedPerSecond: report.accepted / report.wallSeconds,
      workflowsStarted, signalsDelivered, signalledAlerts: signalled.size, lost,
      forwarder: { rssIdle: idle.rss, rssPeak: peak.rss, heapIdle: idle.heap, heapPeak: peak.heap, cpuSeconds: busy.cpu - idle.cpu, exitCode: await stopForwarder() },
      clientCpuSeconds,
    };
  } finally {
    await stopForwarder();
    // Leave the dev server as we found it: no storm workflows waiting for a worker that never comes.
    await eachLimited(workflowIds, 16, (id) => client.workflow.getHandle(id).terminate('storm bench cleanup').then(() => undefined, () => undefined));
    await connection.close();
    await stack?.stop();
    rmSync(stateDir, { recursive: true, force: true });
  }

  /** SIGTERM, as an orchestrator would: the forwarder drains and must exit 0. */
  async function stopForwarder(): Promise<number | null> {
    if (forwarder.exitCode === null && forwarder.signalCode === null) forwarder.kill('SIGTERM');
    const timer = setTimeout(() => forwarder.kill('SIGKILL'), 30_000);
    const code = await fwd.exited;
    clearTimeout(timer);
    return code;
  }
}

/** What must hold after a storm; empty when it passed. */
export function stormFailures(r: StormResult): string[] {
  return [
    ...(r.workflowsStarted !== r.pods ? [`workflows started ${r.workflowsStarted} != pods ${r.pods}`] : []),
    ...(r.lost !== 0 ? [`${r.lost} accepted alerts lost`] : []),
    ...(r.errors !== 0 ? [`${r.errors} errors: ${r.errorSamples.join(' | ')}`] : []),
    ...(r.signalsDelivered !== r.signalledAlerts ? [`${r.signalsDelivered - r.signalledAlerts} alerts signalled more than once`] : []),
    ...(r.forwarder.exitCode !== 0 ? [`forwarder exited ${r.forwarder.exitCode} on SIGTERM`] : []),
  ];
}

export function formatStorm(r: StormResult): string {
  const ms = (x: number) => `${x.toFixed(1)} ms`;
  const mib = (bytes: number) => `${(bytes / 1024 / 1024).toFixed(0)} MiB`;
  return `
## alert storm: forwarder in its own process, load from another, loopback (${r.alerts} alerts, ${r.pods} pods, ${r.concurrency} in flight)

| | |
| --- | --- |
| requests sent (unique + resends + retries) | ${r.sent} (${r.unique} + ${r.resends} + ${r.retries}) |
| unique alerts accepted | ${r.accepted} in ${r.wallSeconds.toFixed(1)} s: ${r.acceptedPerSecond.toFixed(0)} /s |
| resends answered duplicate | ${r.duplicates} of ${r.resends} |
| latency of unique alerts p50 / p99 / max | ${ms(r.latencyMs.p50)} / ${ms(r.latencyMs.p99)} / ${ms(r.latencyMs.max)} |
| latency of resends p50 / p99 | ${ms(r.resendLatencyMs.p50)} / ${ms(r.resendLatencyMs.p99)} |
| retries (503/429) / errors | ${r.retries} / ${r.errors} |
| workflows started / pods | ${r.workflowsStarted} / ${r.pods} |
| alert signals in histories / distinct alerts | ${r.signalsDelivered} / ${r.signalledAlerts} |
| alerts lost | ${r.lost} |
| forwarder RSS idle -> peak | ${mib(r.forwarder.rssIdle)} -> ${mib(r.forwarder.rssPeak)} |
| forwarder heap used idle -> peak | ${mib(r.forwarder.heapIdle)} -> ${mib(r.forwarder.heapPeak)} |
| CPU seconds during the storm: forwarder / load generator | ${r.forwarder.cpuSeconds.toFixed(1)} / ${r.clientCpuSeconds.toFixed(1)} |
| forwarder exit on SIGTERM | ${r.forwarder.exitCode} |
`;
}

if (process.argv[1] && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) {
  benchStorm({ log: (line) => process.stderr.write(`[bench] ${line}\n`) }).then(
    (result) => {
      process.stdout.write(formatStorm(result));
      const failures = stormFailures(result);
      for (const f of failures) process.stderr.write(`FAIL: ${f}\n`);
      process.exitCode = failures.length ? 1 : 0;
    },
    (err: unknown) => {
      process.stderr.write(`storm bench failed: ${err instanceof Error ? err.stack : String(err)}\n`);
      process.exit(1);
    },
  );
}
