/**
 * `npm run bench:parked`: what one worker holds while incidents wait for a person. BENCH_PARKED_INCIDENTS
 * (default 10000) real bare pods, one incident each, every kill held for approval; one compiled worker in a
 * process of its own, with the chart's heap and the config's default cache, serves them all. Measured: the time to
 * park them all (each validated, inspected, isolated, and waiting on a signal), the worker's RSS while they park
 * and once all are parked, then the time from approving them all to every incident closed, and the RSS peak meanwhile.
 * Checked: every incident closed `pod-terminated`, no pod left, the worker exits 0 on SIGTERM, RSS under 512 MiB
 * (the container size the defaults are chosen for).
 * Approvals go BENCH_PARKED_APPROVE_AT_ONCE at a time, by default the cache / 6 (16 for the default 100): an approved
 * incident stays in flight for about six workflow tasks, and more in flight than the cache holds makes the worker
 * replay nearly every task (docs/operations.md, "How many at once"); the table shows the sticky cache's hits and misses of each phase.
 * For investigation only (defaults: unset): BENCH_PARKED_MAX_CACHED sets the worker's
 * POD_RESPONDER_MAX_CACHED_INCIDENTS, BENCH_PARKED_WORKER_NODE_OPTIONS its NODE_OPTIONS, and
 * BENCH_PARKED_WORKER_OUT=<file> keeps its stdout and stderr (e.g. with --trace-gc).
 */
import { Client, Connection } from '@temporalio/client';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { execFileSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { answerAll, atOnceFor, type BulkProgress } from '../client/bulk-answers.js';
import { respondToAlert } from '../temporal-client/incidents.js';
import { configSchema } from '../config/config.js';
import { alertFor, createNamespace, createPod, fixtureKube } from '../devstack/fixtures.js';
import { startStack } from '../devstack/stack.js';
import { policySchema } from '../domain/policy.js';
import { workflowBundle } from '../worker/workflow-bundle.js';
import { workflowsPath } from '../worker/worker.js';
import {
  eachLimited,
  envNumber,
  freePort,
  peaksOf,
  procSample,
  runAlone,
  sampleProcess,
  sleep,
  startWorkerProcess,
  stickyCache,
  workerStarted,
  type Running,
} from './processes.js';

/** The worker's V8 heap as the chart sets it (worker.heapMiB): read from the chart, so the bench measures what is installed. */
export const CHART_HEAP_MIB = Number(
  /^worker:\n(?: {2}.*\n)*? {2}heapMiB: (\d+)/m.exec(
    readFileSync(new URL('../deploy/helm/pod-responder/values.yaml', import.meta.url), 'utf8'),
  )?.[1] ?? NaN,
);

export interface ParkedOptions {
  /** A running stack (Temporal and the kubeconfig of its kube-apiserver); without it one is started and stopped. */
  stack?: { temporalAddress: string; kubeconfigPath: string };
  incidents?: number;
  log?: (line: string) => void;
}

export interface ParkedResult {
  incidents: number;
  /** Seconds to create the pods (before the clock for parking starts). */
  podsSeconds: number;
  /** Seconds from the first start to the last one answered, and to all N seen awaiting approval. */
  startSeconds: number;
  parkSeconds: number;
  parkedPerSecond: number;
  /** Starts that failed once and were sent again, and approvals that did not go through. */
  startRetries: number;
  approvalFailures: number;
  approvalFailureSamples: string[];
  /** Approvals sent at once, and the seconds from the first approval to no incident running. */
  approveAtOnce: number;
  drainSeconds: number;
  /** Distinct incidents listed, their runs, the runs still open when the wait gave up. */
  listed: number;
  runs: number;
  openRuns: number;
  /** Incidents by the outcome of their last run (the PodResponderOutcome search attribute). */
  outcomes: Record<string, number>;
  podsLeft: number;
  /** Isolation NetworkPolicies left: owned by the killed pods, removed by the garbage collector this stack lacks. */
  networkPoliciesLeft: number;
  worker: {
    /** Where RSS was read: the worker's /metrics, or /proc/<pid>/status (the SDK's endpoint has no process metrics). */
    rssSource: string;
    maxCachedIncidents: number;
    /** NODE_OPTIONS given to the worker, if any. */
    nodeOptions: string;
    rssIdle: number;
    rssPeakParking: number;
    rssParked: number;
    rssPeakDraining: number;
    /** The kernel's high-water mark (VmHWM) at the end: a peak the 250 ms sampling cannot miss. */
    rssHighWater: number;
    cpuParking: number;
    cpuDraining: number;
    /** Workflow tasks on a cached incident (hits) and on one replayed from its history first (misses), per phase. */
    cacheParking: { hits: number; misses: number };
    cacheDraining: { hits: number; misses: number };
    exitCode: number | null;
  };
}

const EXPECTED_OUTCOME = 'pod-terminated';
const RSS_LIMIT = 512 * 1024 * 1024;
const DEFAULT_MAX_CACHED = configSchema.parse({}).worker.maxCachedIncidents;

/** RSS from the worker's /metrics if it has process metrics, else from /proc; peaks sampled every 250 ms. */
async function rssSampler(base: string, pid: number, prefix: string) {
  const fromMetrics = Number.isFinite((await sampleProcess(base, prefix).catch(() => ({ rss: NaN }))).rss);
  const sample = async () => (fromMetrics ? (await sampleProcess(base, prefix)).rss : procSample(pid).rss);
  return {
    source: fromMetrics ? `${base}/metrics` : `/proc/${pid}/status VmRSS`,
    sample,
    peaks() {
      const p = peaksOf(async () => ({ rss: await sample() }));
      return { stop: async () => (await p.stop()).rss ?? 0 };
    },
  };
}

/** Retries a call a few times (a loaded dev server may time one out); counts the retries. */
async function withRetries<T>(fn: () => Promise<T>, onRetry: () => void, attempts = 5): Promise<T> {
  for (let i = 1; ; i++) {
    try {
      return await fn();
    } catch (err) {
      if (i >= attempts) throw err;
      onRetry();
      await sleep(500 * i);
    }
  }
}

export async function benchParked(o: ParkedOptions = {}): Promise<ParkedResult> {
  const log = o.log ?? (() => {});
  const n = o.incidents ?? envNumber('BENCH_PARKED_INCIDENTS', 10_000);
  const every = Math.max(1, Math.min(1000, Math.round(n / 10)));
  const maxCached = process.env.BENCH_PARKED_MAX_CACHED;
  const cacheSize = maxCached ? Number(maxCached) : DEFAULT_MAX_CACHED;
  const approveAtOnce = envNumber('BENCH_PARKED_APPROVE_AT_ONCE', atOnceFor(cacheSize));
  const mib = (bytes: number) => `${(bytes / 1024 / 1024).toFixed(0)} MiB`;

  const stateDir = mkdtempSync(path.join(tmpdir(), 'pod-responder-parked-'));
  const own = o.stack ? undefined : await startStack({ stateDir, headless: true, log: () => {} });
  const { temporalAddress, kubeconfigPath } = o.stack ?? own!;
  const taskQueue = `parked-${randomBytes(4).toString('hex')}`;
  // The policy travels with each incident (IncidentInput.policy, from the starter); the worker gets the same.
  const policy = policySchema.parse({
    suspendOnSeverity: [],
    requireApprovalFor: ['terminate-pod'],
    approvalTimeoutSeconds: 3600,
  });
  const config = configSchema.parse({
    temporal: { address: temporalAddress, taskQueue },
    direct: { kubeconfig: kubeconfigPath, cluster: 'local' },
    policy,
  });
  const kube = fixtureKube(kubeconfigPath);
  const connection = await Connection.connect({ address: temporalAddress });
  const client = new Client({ connection });
  let worker: Running | undefined;
  try {
    const namespace = await createNamespace(kube, 'parked');
    log(`parked: creating ${n} pods in ${namespace}`);
    const tPods = performance.now();
    const pods = new Array<{ name: string; uid: string; containerId: string }>(n);
    let created = 0;
    await eachLimited(
      Array.from({ length: n }, (_, i) => i),
      16,
      async (i) => {
        const name = `miner-${i}`;
        const pod = await createPod(kube, namespace, name);
        pods[i] = { name, uid: pod.metadata!.uid!, containerId: pod.containerId };
        if (++created % every === 0) log(`parked: ${created}/${n} pods created`);
      },
    );
    const podsSeconds = (performance.now() - tPods) / 1000;

    // The workflow bundle is cached by a hash of every source file: built here, so the worker reads it instead of
    // running webpack in the process being measured (any edit in the repository changes the key).
    const tBundle = performance.now();
    const say = (m: string) => log(`parked: workflow bundle: ${m}`);
    // The worker runs compiled, as the image does, with the chart's memory settings (BENCH_PARKED_SOURCE=1: from source).
    const compiled = process.env.BENCH_PARKED_SOURCE !== '1';
    if (compiled) {
      const root = fileURLToPath(new URL('..', import.meta.url));
      execFileSync(
        process.execPath,
        [createRequire(import.meta.url).resolve('typescript/bin/tsc'), '-p', 'tsconfig.build.json'],
        { cwd: root, stdio: 'inherit' },
      );
      // The bundle step of `npm run build`: the worker runs dist/workflow-bundle.js, as the image's does.
      execFileSync(process.execPath, [path.join(root, 'dist/client/cli.js'), 'bundle'], {
        cwd: root,
        stdio: 'inherit',
      });
    } else
      await workflowBundle(workflowsPath(), { log() {}, trace() {}, debug() {}, info() {}, warn: say, error: say });
    log(`parked: workflow bundle ready in ${((performance.now() - tBundle) / 1000).toFixed(1)} s`);
    const nodeOptions =
      process.env.BENCH_PARKED_WORKER_NODE_OPTIONS ?? (compiled ? `--max-old-space-size=${CHART_HEAP_MIB}` : undefined);
    const metricsPort = await freePort();
    const base = `http://127.0.0.1:${metricsPort}`;
    worker = startWorkerProcess({
      temporalAddress,
      taskQueue,
      kubeconfig: kubeconfigPath,
      cluster: 'local',
      policy,
      env: {
        POD_RESPONDER_METRICS_HOST: '127.0.0.1',
        POD_RESPONDER_METRICS_PORT: String(metricsPort),
        ...(maxCached ? { POD_RESPONDER_MAX_CACHED_INCIDENTS: maxCached } : {}),
        ...(nodeOptions ? { NODE_OPTIONS: nodeOptions } : {}),
        ...(compiled ? { MALLOC_ARENA_MAX: '2' } : {}),
      },
      compiled,
    });
    await workerStarted(worker, 120_000);
    const pid = worker.child.pid!;
    const w = worker;
    /** A worker that died (out of memory, say) fails the bench at once, with what it said, instead of a long wait. */
    const alive = () => {
      if (w.child.exitCode !== null || w.child.signalCode !== null) {
        throw new Error(
          `worker exited (${w.child.exitCode ?? w.child.signalCode}) during the bench:\n${(w.out() + w.err()).slice(-4000)}`,
        );
      }
    };
    // The SDK's metric names carry no prefix of their own (the incidents' are pod_responder_*).
    const rss = await rssSampler(base, pid, '');
    await sleep(2000); // settle after start
    const rssIdle = await rss.sample();
    const cpu0 = procSample(pid).cpu;
    const cache0 = await stickyCache(base, taskQueue);
    log(
      `parked: worker pid ${pid} started (RSS ${mib(rssIdle)}, read from ${rss.source}); starting ${n} incidents on ${taskQueue}`,
    );

    // Park: start them all, 32 at a time, and wait until visibility shows every one awaiting approval.
    const parkingPeaks = rss.peaks();
    const tPark = performance.now();
    let startRetries = 0;
    let started = 0;
    const ids = new Array<string>(n);
    const starting = eachLimited(
      Array.from({ length: n }, (_, i) => i),
      32,
      async (i) => {
        const p = pods[i]!;
        const alert = alertFor(namespace, {
          kind: 'Pod',
          name: p.name,
          uid: p.uid,
          pod: { metadata: { name: p.name, uid: p.uid }, containerId: p.containerId },
        });
        ids[i] = (
          await withRetries(
            () => respondToAlert(client, config, alert),
            () => startRetries++,
          )
        ).workflowId;
        if (++started % every === 0)
          log(`parked: ${started}/${n} started in ${((performance.now() - tPark) / 1000).toFixed(1)} s`);
      },
    );
    let startSeconds = NaN;
    void starting.then(
      () => (startSeconds = (performance.now() - tPark) / 1000),
      () => {},
    );
    const parkedQuery = `TaskQueue = '${taskQueue}' AND PodResponderStage = 'awaiting-approval' AND ExecutionStatus = 'Running'`;
    let parked = 0;
    let logged = 0;
    const parkDeadline = Date.now() + 600_000 + n * 200;
    for (;;) {
      alive();
      parked = (await client.workflow.count(parkedQuery)).count;
      if (parked >= n) break;
      if (Date.now() > parkDeadline)
        throw new Error(`only ${parked}/${n} parked after ${((performance.now() - tPark) / 1000).toFixed(0)} s`);
      if (Math.floor(parked / every) > Math.floor(logged / every)) {
        logged = parked;
        log(
          `parked: ${parked}/${n} awaiting approval after ${((performance.now() - tPark) / 1000).toFixed(1)} s, worker RSS ${mib(await rss.sample().catch(() => NaN))}`,
        );
      }
      await sleep(500);
    }
    await starting; // rethrows a start that failed for good
    const parkSeconds = (performance.now() - tPark) / 1000;
    const rssPeakParking = await parkingPeaks.stop();
    await sleep(2000); // all parked: what they cost at rest
    const rssParked = await rss.sample();
    const cpu1 = procSample(pid).cpu;
    const cache1 = await stickyCache(base, taskQueue);
    log(
      `parked: all ${n} awaiting approval in ${parkSeconds.toFixed(1)} s; worker RSS peak ${mib(rssPeakParking)}, now ${mib(rssParked)}; approving all`,
    );

    // Drain: approve them all, approveAtOnce at a time, and wait until none is running.
    const drainingPeaks = rss.peaks();
    const tDrain = performance.now();
    // With the command's own code (`approve-all --yes`); answers that failed are sent once more, as a person would re-run it.
    const rows = ids.map((workflowId) => ({ workflowId }));
    const progress = (p: BulkProgress) => {
      alive();
      const done = p.answered + p.skipped + p.failed;
      if (done % every === 0)
        log(`parked: ${done}/${n} answered in ${((performance.now() - tDrain) / 1000).toFixed(1)} s`);
    };
    let report = await answerAll(
      client,
      rows,
      'approved',
      { by: 'bench', atOnce: approveAtOnce },
      { onProgress: progress },
    );
    let answered = report.answered;
    if (report.failed) {
      log(
        `parked: ${report.failed} approvals failed (${report.samples.find((s) => s.result === 'failed')?.reason}); once more`,
      );
      report = await answerAll(
        client,
        rows,
        'approved',
        { by: 'bench', atOnce: approveAtOnce },
        { onProgress: progress },
      );
      answered += report.answered;
    }
    const approvalFailures = n - answered;
    const approvalFailureSamples = report.samples.slice(0, 5).map((s) => `${s.workflowId}: ${s.result}, ${s.reason}`);
    let openRuns = n;
    logged = n;
    for (const deadline = Date.now() + 600_000 + n * 100; Date.now() < deadline; await sleep(500)) {
      alive();
      openRuns = (await client.workflow.count(`TaskQueue = '${taskQueue}' AND ExecutionStatus = 'Running'`)).count;
      if (openRuns === 0) break;
      if (Math.floor(openRuns / every) < Math.floor(logged / every)) {
        logged = openRuns;
        log(
          `parked: ${openRuns} still running after ${((performance.now() - tDrain) / 1000).toFixed(1)} s, worker RSS ${mib(await rss.sample().catch(() => NaN))}`,
        );
      }
    }
    const drainSeconds = (performance.now() - tDrain) / 1000;
    const rssPeakDraining = await drainingPeaks.stop();
    alive();
    const end = procSample(pid);
    const cache2 = await stickyCache(base, taskQueue);
    log(
      `parked: ${openRuns === 0 ? 'all closed' : `${openRuns} still open`} ${drainSeconds.toFixed(1)} s after the first approval; checking outcomes`,
    );

    await sleep(1000); // visibility is eventually consistent
    const last = new Map<string, string>();
    let runs = 0;
    for await (const wf of client.workflow.list({ query: `TaskQueue = '${taskQueue}'` })) {
      runs++;
      if (wf.status.name === 'CONTINUED_AS_NEW') {
        if (!last.has(wf.workflowId)) last.set(wf.workflowId, 'continued-as-new');
        continue;
      }
      const outcome = wf.searchAttributes?.PodResponderOutcome;
      last.set(
        wf.workflowId,
        wf.status.name === 'RUNNING'
          ? 'still-running'
          : Array.isArray(outcome)
            ? String(outcome[0])
            : `none (${wf.status.name})`,
      );
    }
    const outcomes: Record<string, number> = {};
    for (const outcome of last.values()) outcomes[outcome] = (outcomes[outcome] ?? 0) + 1;
    const podsLeft = (await kube.core.listNamespacedPod({ namespace })).items.length;
    const networkPoliciesLeft = (await kube.networking.listNamespacedNetworkPolicy({ namespace })).items.length;
    const exitCode = await worker.stop();
    if (process.env.BENCH_PARKED_WORKER_OUT)
      writeFileSync(process.env.BENCH_PARKED_WORKER_OUT, worker.out() + worker.err());
    return {
      incidents: n,
      podsSeconds,
      startSeconds,
      parkSeconds,
      parkedPerSecond: n / parkSeconds,
      startRetries,
      approvalFailures,
      approvalFailureSamples,
      approveAtOnce,
      drainSeconds,
      listed: last.size,
      runs,
      openRuns,
      outcomes,
      podsLeft,
      networkPoliciesLeft,
      worker: {
        rssSource: rss.source,
        maxCachedIncidents: cacheSize,
        nodeOptions: nodeOptions ?? process.env.NODE_OPTIONS ?? '',
        rssIdle,
        rssPeakParking,
        rssParked,
        rssPeakDraining,
        rssHighWater: end.hwm,
        cpuParking: cpu1 - cpu0,
        cpuDraining: end.cpu - cpu1,
        cacheParking: { hits: cache1.hits - cache0.hits, misses: cache1.misses - cache0.misses },
        cacheDraining: { hits: cache2.hits - cache1.hits, misses: cache2.misses - cache1.misses },
        exitCode,
      },
    };
  } finally {
    await worker?.stop();
    await connection.close();
    await own?.stop();
    rmSync(stateDir, { recursive: true, force: true });
  }
}

/** What must hold after the run; empty when it passed. */
export function parkedFailures(r: ParkedResult): string[] {
  const w = r.worker;
  const peak = Math.max(
    w.rssPeakParking,
    w.rssParked,
    w.rssPeakDraining,
    Number.isFinite(w.rssHighWater) ? w.rssHighWater : 0,
  );
  const other = Object.entries(r.outcomes).filter(([o]) => o !== EXPECTED_OUTCOME);
  return [
    ...(peak > RSS_LIMIT
      ? [`worker RSS peaked at ${(peak / 1024 / 1024).toFixed(0)} MiB, over ${RSS_LIMIT / 1024 / 1024} MiB`]
      : []),
    ...(r.listed !== r.incidents ? [`${r.listed} incidents listed, ${r.incidents} started`] : []),
    ...((r.outcomes[EXPECTED_OUTCOME] ?? 0) !== r.incidents
      ? [`${r.outcomes[EXPECTED_OUTCOME] ?? 0} of ${r.incidents} incidents closed ${EXPECTED_OUTCOME}`]
      : []),
    ...(other.length ? [`incidents with other outcomes: ${JSON.stringify(Object.fromEntries(other))}`] : []),
    ...(r.openRuns !== 0 ? [`${r.openRuns} runs still open`] : []),
    ...(r.approvalFailures !== 0
      ? [`${r.approvalFailures} approvals failed: ${r.approvalFailureSamples.join(' | ')}`]
      : []),
    ...(r.podsLeft !== 0 ? [`${r.podsLeft} pods left`] : []),
    ...(w.exitCode !== 0 ? [`worker exited ${w.exitCode} on SIGTERM`] : []),
  ];
}

export function formatParked(r: ParkedResult): string {
  const mib = (bytes: number) => `${(bytes / 1024 / 1024).toFixed(0)} MiB`;
  const w = r.worker;
  const outcomes =
    Object.entries(r.outcomes)
      .map(([o, k]) => `${o} ${k}`)
      .join(', ') || 'none';
  return `
## incidents parked awaiting approval on one worker, in a process of its own (${r.incidents} incidents, worker.maxCachedIncidents ${w.maxCachedIncidents})

| | |
| --- | --- |
| incidents (one bare pod each, created in ${r.podsSeconds.toFixed(1)} s beforehand) | ${r.incidents} |
| time to park all (first start -> all \`awaiting-approval\` in visibility; starts done in ${r.startSeconds.toFixed(1)} s, 32 at a time, ${r.startRetries} retried) | ${r.parkSeconds.toFixed(1)} s |
| parked /s | ${r.parkedPerSecond.toFixed(1)} |
| worker RSS idle -> peak while parking -> all parked | ${mib(w.rssIdle)} -> ${mib(w.rssPeakParking)} -> ${mib(w.rssParked)} |
| approve all (${r.approveAtOnce} at a time) -> all closed | ${r.drainSeconds.toFixed(1)} s |
| worker RSS peak while draining | ${mib(w.rssPeakDraining)} |
| worker RSS high-water mark (VmHWM, whole run) | ${mib(w.rssHighWater)} |
| worker CPU seconds: parking / draining (per approval) | ${w.cpuParking.toFixed(1)} / ${w.cpuDraining.toFixed(1)} (${((w.cpuDraining / r.incidents) * 1000).toFixed(0)} ms) |
| workflow tasks on a cached incident / replayed first: parking, draining | ${w.cacheParking.hits} / ${w.cacheParking.misses}, ${w.cacheDraining.hits} / ${w.cacheDraining.misses} |
| incidents by outcome (runs: ${r.runs}; open: ${r.openRuns}; approvals failed: ${r.approvalFailures}) | ${outcomes} |
| pods left | ${r.podsLeft} |
| isolation NetworkPolicies left (owned by the killed pods; this stack has no garbage collector) | ${r.networkPoliciesLeft} |
| worker exit on SIGTERM | ${w.exitCode} |

RSS read from ${w.rssSource}${w.nodeOptions ? `; worker NODE_OPTIONS ${w.nodeOptions}` : ''}.
`;
}

if (process.argv[1] && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) {
  runAlone(
    'parked',
    () => benchParked({ log: (line) => process.stderr.write(`[bench] ${line}\n`) }),
    formatParked,
    parkedFailures,
  );
}
