/**
 * `npm run bench:storm`: an alert storm through the whole chain. A load generator in a process of its
 * own (bench/storm-client.ts) posts BENCH_STORM_ALERTS Falco alerts (default 20000) about
 * BENCH_STORM_PODS real pods (default 200), BENCH_STORM_CONCURRENCY in flight (default 64), plus ~5%
 * resends, to a forwarder in its own process, over loopback; a worker in a third process responds.
 * Then Temporal is checked: one incident per pod (a late alert for a pod already killed is answered
 * `closed` by the forwarder, never before that pod's incident closed), every run closed with an outcome,
 * every accepted alert in a history exactly once (or, spooled, found about a closed incident's killed
 * pod), the pods gone, and the Temporal actions per alert counted from the histories. BENCH_STORM_CPU_PROF=<dir> also writes the forwarder's CPU profile;
 * BENCH_STORM_DUMP=<dir> every run's history, as JSON (<pod>-<run ID>.json); BENCH_STORM_WORKER_METRICS=<file> the
 * worker's /metrics at the end. For experiments: BENCH_STORM_WORKER_ENV (JSON: the workers' environment variables over
 * the defaults, e.g. a larger cache) and BENCH_STORM_FORWARDER_CONFIG (JSON: the forwarder's config file).
 *
 * Scale-out (`npm run bench:scale-out`, BENCH_SCALEOUT=1, or benchScaleOut()): the same storm with 2 worker
 * processes on one task queue, one of them SIGKILLed once the load generator has sent half the alerts (it
 * prints its progress on stderr; the kill follows the alerts actually sent, not a guess at the duration), and 4
 * of the pods a Deployment's, which critical alerts suspend. Temporal gives the dead worker's workflow tasks and
 * activities to the survivor after their timeouts. Checked besides: every incident reaches its outcome, each pod
 * is deleted exactly once (a watch on the namespace counts DELETED events; the incidents' results say which
 * delete removed it and which found it gone), each Deployment is suspended once, the survivor exits 0 on SIGTERM.
 */
import { Watch, type V1OwnerReference } from '@kubernetes/client-node';
import { Client, Connection } from '@temporalio/client';
import { defaultPayloadConverter, type Payload } from '@temporalio/common';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import { createNamespace, createPod, fixtureKube } from '../devstack/fixtures.js';
import { startStack } from '../devstack/stack.js';
import type { PodAlert } from '../domain/alert.js';
import { kubeConfigFromFile } from '../remediation/kube.js';
import { SUSPENDED_BY_ANNOTATION } from '../remediation/protocol.js';
import type { IncidentResult } from '../workflows/messages.js';
import { incidentWorkflowId } from '../workflows/ids.js';
import {
  eachLimited,
  envNumber,
  freePort,
  procSample,
  runAlone,
  sampleProcess,
  peaksOf,
  samplePeaks,
  sleep,
  spawnTs,
  startForwarderProcess,
  startWorkerProcess,
  type Running,
} from './processes.js';
import type { StormClientOptions, StormClientReport } from './storm-client.js';
import { parseSamples, total, type Sample } from '../test/support/prometheus.js';

export interface StormOptions {
  /** A running stack (Temporal and the kubeconfig of its kube-apiserver); without it one is started and stopped. */
  stack?: { temporalAddress: string; kubeconfigPath: string };
  alerts?: number;
  pods?: number;
  concurrency?: number;
  /** Share of accepted alerts sent again (default 0.05). */
  resendRatio?: number;
  /** Worker processes polling the storm's task queue (default 1). */
  workers?: number;
  /**
   * SIGKILL one worker (the first started) once the load generator has sent this share of the unique alerts
   * (0..1; it reports its progress on stderr). Default: no kill.
   */
  killOneWorkerAfter?: number;
  /**
   * How many of the pods belong to a Deployment (one each, through a ReplicaSet) instead of being bare; their
   * critical alerts suspend the Deployment. The incidents end their hold at once, so that they close. Default 0.
   */
  workloads?: number;
  log?: (line: string) => void;
}

/** The worker SIGKILLed mid-storm: when, and how much of the storm had been sent and accepted by then. */
export interface StormKill {
  pid: number;
  /** Seconds from the load generator's start. */
  atSeconds: number;
  uniqueSent: number;
  accepted: number;
}

/** Pod deletions, seen from the cluster (a watch) and from the incidents' results. */
export interface StormDeletions {
  /** The watch ran from before the storm to the end without losing events (a cut watch resumes from its last version). */
  watchComplete: boolean;
  /** Pods by DELETED events: exactly once, more than once, never (pods still there included). */
  once: number;
  moreThanOnce: number;
  never: number;
  /** delete-pod results in the runs' final results: `done` (that incident's DELETE removed the pod), `already-done` (found it gone). */
  done: number;
  alreadyGone: number;
  /** Pods whose incidents say `done` more than once: acted on twice. */
  podsDoneTwice: number;
  /**
   * Pods deleted before the kill with no `done` in any result, only an `already-done`, in an incident the killed
   * worker had worked on and the survivor finished: the killed worker's delete removed the pod, its answer was lost
   * with it (a local activity's result is recorded only when its workflow task completes; an activity's, when it
   * reports back), and the survivor's delete, run again, found it gone. Still one deletion in the cluster.
   */
  podsByLostAttempt: number;
  /** Pods with neither a `done` nor such a retry: deleted by nothing the incidents know of. */
  podsUnexplained: number;
  /** Pods none of whose runs ended with a kill outcome (pod-terminated, workload-suspended). */
  podsWithoutKillOutcome: number;
  samples: string[];
}

/** The Deployments' suspensions: each must be suspended once (from the results' actions), and be so in the cluster. */
export interface StormSuspensions {
  workloads: number;
  once: number;
  moreThanOnce: number;
  never: number;
  /** Suspended once, but answered `already-done`: a retry adopted the suspension a lost attempt made. */
  adopted: number;
}

/** The load generator's figures, plus what Temporal, the cluster and the forwarder's own metrics say. */
/**
 * Temporal actions, counted from the histories (the server's record, not the forwarder's counters): what Temporal
 * Cloud bills, and what a self-hosted server writes. The issue's sum is starts + signals + activities + timers.
 */
export interface StormActions {
  starts: number;
  signals: number;
  /** Activity tasks scheduled, and local activities (their markers). */
  activities: number;
  localActivities: number;
  timers: number;
  /** Search attribute upserts (billed on Temporal Cloud too; not in the sum). */
  upserts: number;
  /** Workflow tasks completed: not actions, but each is a round trip to the worker. */
  workflowTasks: number;
  /** starts + signals + activities + local activities + timers. */
  total: number;
  /** total per unique alert sent. */
  perAlert: number;
}

export type StormResult = Omit<StormClientReport, 'acceptedIds' | 'cpuSeconds' | 'closedAnswers'> & {
  alerts: number;
  pods: number;
  concurrency: number;
  /** Unique alerts answered 202 (accepted, queued or closed) per wall-clock second. */
  acceptedPerSecond: number;
  actions: StormActions;
  /** `closed` answers given before any run of that pod's incident had closed with its pod killed: must be 0. */
  closedTooEarly: number;
  /**
   * Alerts answered `queued` that the spool later found about a closed incident's killed pod, and so never sent
   * (the forwarder's spool_dropped_total{reason="incident-closed"}): accepted alerts missing from the histories
   * must be exactly these.
   */
  spooledForClosed: number;
  /** Distinct incidents (workflow IDs), their runs, and the runs still open when the check gave up. */
  incidents: number;
  runs: number;
  openRuns: number;
  /** Runs by outcome (the PodResponderOutcome search attribute). */
  outcomes: Record<string, number>;
  /** Seconds from the last 202 until every run was closed. */
  settleSeconds: number;
  podsLeft: number;
  /** Signals in the histories, the alerts they carried, and how many distinct alert IDs. */
  signalsDelivered: number;
  alertsDelivered: number;
  signalledAlerts: number;
  /** Accepted alerts (202 `accepted`) found in no history. */
  lost: number;
  forwarder: {
    rssIdle: number;
    rssPeak: number;
    heapIdle: number;
    heapPeak: number;
    cpuSeconds: number;
    exitCode: number | null;
  };
  /**
   * The first worker's own account (its /metrics, from before the first alert to every run closed) and the CPU
   * seconds of each process in that span: where a workflow task waited, and who had the CPU.
   */
  workerView: StormWorkerView | null;
  /** The surviving workers' exit code on SIGTERM (the first non-zero one, if any). */
  workerExitCode: number | null;
  clientCpuSeconds: number;
  workers: number;
  workloads: number;
  /** The planned kill (share of unique alerts sent), and the kill as it happened. */
  killOneWorkerAfter: number | null;
  kill: StormKill | null;
  /** Each worker's end: the exit code on SIGTERM, or the signal that ended it. */
  workerExits: { pid: number; killed: boolean; code: number | null; signal: string | null }[];
  /** Workflow tasks and activities each worker completed, from the identities in the histories. */
  perWorker: { pid: number; killed: boolean; workflowTasks: number; activities: number }[];
  /** Runs closed after the kill; runs open at the kill (started before, closed after), and of those the ones the killed worker had worked on. */
  runsClosedAfterKill: number;
  runsOpenAtKill: number;
  runsTakenOver: number;
  /** Runs closed after the kill whose last workflow task a killed worker completed (impossible: it is dead). */
  runsClosedByKilled: number;
  /** Recovery in the histories: workflow tasks timed out, activities whose recorded attempt is a retry (attempt > 1). */
  workflowTaskTimeouts: number;
  activityRetries: number;
  deletions: StormDeletions;
  suspensions: StormSuspensions | null;
};

const METRIC = 'pod_responder_forwarder_';

/** What the worker's SDK metrics and /proc say about the storm (deltas from before the first alert to the end). */
export interface StormWorkerView {
  /** Workflow tasks the worker polled, and their mean schedule-to-start (server: scheduled -> handed to a poll). */
  workflowTasks: number;
  scheduleToStartMs: number;
  /** Mean time the worker took on one (activation to completion), and the replays (cache misses) among them. */
  executionMs: number;
  stickyHits: number;
  stickyMisses: number;
  /** Mean schedule-to-start of activities. */
  activityScheduleToStartMs: number;
  /** Least workflow task slots available seen while sampling (of the worker's), and pollers at the end. */
  minFreeSlots: number;
  pollers: number;
  /** CPU seconds through the storm and its settling: worker, Temporal dev server, forwarder, load generator. */
  cpu: { worker: number; temporal: number | null };
}

/** Worker settings for the storm's workers, over the defaults: BENCH_STORM_WORKER_ENV (JSON: environment variables). */
function workerEnv(): Record<string, string> {
  const extra = process.env.BENCH_STORM_WORKER_ENV;
  return extra ? (JSON.parse(extra) as Record<string, string>) : {};
}

/** The pid of the Temporal dev server listening on `address` (from /proc: its command line names the port). */
function temporalPid(address: string): number | null {
  const port = address.slice(address.lastIndexOf(':') + 1);
  for (const pid of readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
    try {
      const cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
      if (cmd.includes('start-dev') && cmd.includes(`--port=${port}`)) return Number(pid);
    } catch {
      // gone meanwhile
    }
  }
  return null;
}

/** The worker's SDK metrics for one task queue: sums and counts of the histograms that say where tasks waited. */
function workerFigures(samples: Sample[], taskQueue: string) {
  const q = { task_queue: taskQueue };
  const sum = (name: string) => total(samples, `${name}_sum`, q);
  const count = (name: string) => total(samples, `${name}_count`, q);
  return {
    wftS2sSum: sum('temporal_workflow_task_schedule_to_start_latency'),
    wftS2sCount: count('temporal_workflow_task_schedule_to_start_latency'),
    wftExecSum: sum('temporal_workflow_task_execution_latency'),
    wftExecCount: count('temporal_workflow_task_execution_latency'),
    actS2sSum: sum('temporal_activity_schedule_to_start_latency'),
    actS2sCount: count('temporal_activity_schedule_to_start_latency'),
    hits: total(samples, 'temporal_sticky_cache_hit_total', q),
    misses: total(samples, 'temporal_sticky_cache_miss_total', q),
    freeSlots: total(samples, 'temporal_worker_task_slots_available', { ...q, worker_type: 'WorkflowWorker' }),
    pollers:
      total(samples, 'temporal_num_pollers', { ...q, poller_type: 'workflow_task' }) +
      total(samples, 'temporal_num_pollers', { ...q, poller_type: 'sticky_workflow_task' }),
  };
}

export async function benchStorm(opts: StormOptions = {}): Promise<StormResult> {
  const log = opts.log ?? (() => {});
  const alerts = opts.alerts ?? envNumber('BENCH_STORM_ALERTS', 20_000);
  const pods = opts.pods ?? envNumber('BENCH_STORM_PODS', 200);
  const concurrency = opts.concurrency ?? envNumber('BENCH_STORM_CONCURRENCY', 64);
  const resendRatio = opts.resendRatio ?? 0.05;
  const workerCount = Math.max(1, opts.workers ?? 1);
  const killShare = opts.killOneWorkerAfter ?? null;
  const workloads = Math.min(opts.workloads ?? 0, pods);
  if (killShare !== null && workerCount < 2)
    throw new Error('killOneWorkerAfter needs at least 2 workers: one must survive');

  const stateDir = mkdtempSync(path.join(tmpdir(), 'pod-responder-storm-'));
  const own = opts.stack ? undefined : await startStack({ stateDir, headless: true, log: () => {} });
  const { temporalAddress, kubeconfigPath } = opts.stack ?? own!;
  const taskQueue = `storm-${randomBytes(4).toString('hex')}`;
  const token = randomBytes(16).toString('hex');
  const kube = fixtureKube(kubeconfigPath);
  const namespace = await createNamespace(kube, 'storm');
  const podNames = Array.from({ length: pods }, (_, i) => `miner-${i}`);
  const containerIds: string[] = [];
  // The first `workloads` pods are a Deployment's (Deployment -> ReplicaSet -> pod, as fixtures.ts builds them).
  const deployments = new Map<string, string>(); // pod name -> Deployment name
  await eachLimited(podNames, 8, async (name) => {
    const i = podNames.indexOf(name);
    const owner = i < workloads ? await createDeployment(kube, namespace, `miner-app-${i}`) : undefined;
    if (owner) deployments.set(name, `miner-app-${i}`);
    const pod = await createPod(kube, namespace, name, owner?.replicaSet, owner ? { app: `miner-app-${i}` } : {});
    containerIds[i] = pod.containerId.slice(0, 12);
  });
  // Deletions are counted from the cluster's side, from before the first alert to the end.
  const deletions = await watchPodDeletions(
    kubeconfigPath,
    namespace,
    (await kube.core.listNamespacedPod({ namespace })).metadata!.resourceVersion!,
  );
  const configFile = path.join(stateDir, 'forwarder.json');
  // Defaults (the rate limit applies to new incidents only, as in production), or BENCH_STORM_FORWARDER_CONFIG (JSON) over them.
  writeFileSync(configFile, process.env.BENCH_STORM_FORWARDER_CONFIG ?? '{}');

  const connection = await Connection.connect({ address: temporalAddress });
  const client = new Client({ connection });
  // A suspended Deployment is held for a restore (7 days by default): here the hold ends at once, so the incident closes.
  const forwarderEnv = workloads ? { POD_RESPONDER_POLICY: JSON.stringify({ holdSuspensionSeconds: 0 }) } : undefined;
  const forwarder = await startForwarderProcess({
    temporalAddress,
    taskQueue,
    token,
    configFile,
    cpuProfileDir: process.env.BENCH_STORM_CPU_PROF,
    ...(forwarderEnv ? { env: forwarderEnv } : {}),
  });
  // The first worker serves its metrics on a port of its own (another helper's worker may hold the default); the others none.
  const metricsPort = await freePort();
  const workerMetrics = `http://127.0.0.1:${metricsPort}/metrics`;
  const workers: Running[] = Array.from({ length: workerCount }, (_, i) =>
    startWorkerProcess({
      temporalAddress,
      taskQueue,
      kubeconfig: kubeconfigPath,
      cluster: 'storm',
      policy: {},
      env: {
        POD_RESPONDER_METRICS_HOST: '127.0.0.1',
        POD_RESPONDER_METRICS_PORT: i === 0 ? String(metricsPort) : '0',
        ...workerEnv(),
      },
    }),
  );
  const scrapeWorker = async () => parseSamples(await (await fetch(workerMetrics)).text());
  const temporalProc = temporalPid(temporalAddress);
  const killed = new Set<Running>();
  // Set from the load generator's progress lines (a callback), hence the cast: no narrowing to null.
  let kill = null as (StormKill & { atMs: number }) | null;
  try {
    // Every worker polls before the first alert: a storm into a worker still building its workflow bundle (10 to 20 s on
    // a loaded machine) measures the build, and a worker killed before it ever polled would prove nothing.
    await workersStarted(workers);
    const idle = await sampleProcess(forwarder.base, METRIC);
    const worker0 = workerFigures(await scrapeWorker().catch(() => []), taskQueue);
    const cpu0 = {
      worker: procSample(workers[0]!.child.pid!).cpu,
      temporal: temporalProc ? procSample(temporalProc).cpu : NaN,
    };
    // The fewest free workflow task slots seen: were tasks waiting on the worker, or on Temporal?
    let minFreeSlots = Infinity;
    const slotSampler = peaksOf(async () => {
      const f = workerFigures(await scrapeWorker(), taskQueue);
      minFreeSlots = Math.min(minFreeSlots, f.freeSlots);
      return {};
    });
    log(
      `storm: ${alerts} alerts over ${pods} pods (${workloads} a Deployment's) in ${namespace}, ${concurrency} in flight, task queue ${taskQueue}, ${workerCount} worker(s)` +
        (killShare !== null ? `, one SIGKILLed after ${(killShare * 100).toFixed(0)}% of the alerts sent` : ''),
    );
    const peaks = samplePeaks(forwarder.base, METRIC);
    const clientOpts: StormClientOptions = {
      url: `${forwarder.base}/v1/alerts/falco?cluster=storm`,
      token,
      alerts,
      pods,
      concurrency,
      resendRatio,
      namespace,
      podNames,
      containerIds,
      ...(killShare !== null ? { progressEvery: Math.max(1, Math.floor(alerts / 200)) } : {}),
    };
    const tGen = performance.now();
    const gen = spawnTs('bench/storm-client.ts', [JSON.stringify(clientOpts)], process.env);
    if (killShare !== null) {
      // The load generator says how many unique alerts it has sent (`progress <sent> <accepted>` lines on stderr).
      const victim = workers[0]!;
      const threshold = Math.ceil(killShare * alerts);
      let partial = '';
      gen.child.stderr!.on('data', (d: Buffer) => {
        const lines = (partial + d.toString()).split('\n');
        partial = lines.pop()!;
        for (const line of lines) {
          const m = /^progress (\d+) (\d+)$/.exec(line);
          if (!m || kill || Number(m[1]) < threshold) continue;
          victim.child.kill('SIGKILL');
          killed.add(victim);
          kill = {
            pid: victim.child.pid!,
            atSeconds: (performance.now() - tGen) / 1000,
            uniqueSent: Number(m[1]),
            accepted: Number(m[2]),
            atMs: Date.now(),
          };
          log(
            `storm: SIGKILLed worker ${kill.pid} after ${kill.uniqueSent} unique alerts sent (${kill.accepted} accepted), ${kill.atSeconds.toFixed(1)} s in`,
          );
        }
      });
    }
    const code = await gen.exited;
    const peak = await peaks.stop();
    const busy = await sampleProcess(forwarder.base, METRIC);
    if (code !== 0) throw new Error(`storm client exited ${code}:\n${gen.err()}`);
    const report = JSON.parse(gen.out()) as StormClientReport;
    log(
      `storm: ${report.accepted} accepted, ${report.closed} closed in ${report.wallSeconds.toFixed(1)} s; waiting for every incident to close`,
    );
    const killAtMs = kill?.atMs ?? null;

    // A SIGKILLed worker is noticed only by timeouts: its workflow tasks after INCIDENT_TASK_TIMEOUT (30 s; those
    // waiting on its sticky queue after 10 s), the direct executor's runDirect activities after their 1-minute
    // start-to-close, with no heartbeat (workflows/executor.ts), evidence capture after its 20 s heartbeat, notify after 1 minute; each
    // then waits its retry backoff. So: 180 s after the storm as before, and at least 5 minutes after a kill.
    const tSettle = performance.now();
    let openRuns = 0;
    for (
      const deadline = Math.max(Date.now() + 180_000, (killAtMs ?? 0) + 300_000);
      Date.now() < deadline;
      await sleep(500)
    ) {
      openRuns = (await client.workflow.count(`TaskQueue = "${taskQueue}" AND ExecutionStatus = "Running"`)).count;
      if (openRuns === 0) break;
    }
    const settleSeconds = (performance.now() - tSettle) / 1000;
    // Alerts still in the spool when the last run closed (their lane not yet due) are found about the closed run's
    // pod only when the deliverer tries them: count the drops once the spool is empty.
    let metricsText = '';
    for (const until = Date.now() + 60_000; Date.now() < until; await sleep(250)) {
      metricsText = await (await fetch(`${forwarder.base}/metrics`)).text();
      if (Number(/^pod_responder_forwarder_spool_depth (\S+)/m.exec(metricsText)?.[1] ?? 0) === 0) break;
    }
    await slotSampler.stop();
    const workerText = await (await fetch(workerMetrics)).text().catch(() => '');
    if (process.env.BENCH_STORM_WORKER_METRICS) writeFileSync(process.env.BENCH_STORM_WORKER_METRICS, workerText);
    const worker1 = workerFigures(parseSamples(workerText), taskQueue);
    const wd = (k: keyof typeof worker1) => worker1[k] - worker0[k];
    const workerView: StormWorkerView | null =
      killShare === null && workerText
        ? {
            workflowTasks: wd('wftS2sCount'),
            scheduleToStartMs: (wd('wftS2sSum') / wd('wftS2sCount')) * 1000,
            executionMs: (wd('wftExecSum') / wd('wftExecCount')) * 1000,
            stickyHits: wd('hits'),
            stickyMisses: wd('misses'),
            activityScheduleToStartMs: (wd('actS2sSum') / wd('actS2sCount')) * 1000,
            minFreeSlots,
            pollers: worker1.pollers,
            cpu: {
              worker: procSample(workers[0]!.child.pid!).cpu - cpu0.worker,
              temporal: temporalProc ? procSample(temporalProc).cpu - cpu0.temporal : null,
            },
          }
        : null;
    await sleep(1000); // visibility is eventually consistent

    const runs: { workflowId: string; runId: string; outcome: string; start: number; close: number | null }[] = [];
    for await (const wf of client.workflow.list({ query: `TaskQueue = "${taskQueue}"` })) {
      const outcome = wf.searchAttributes?.PodResponderOutcome;
      runs.push({
        workflowId: wf.workflowId,
        runId: wf.runId,
        outcome: Array.isArray(outcome) ? String(outcome[0]) : 'none',
        start: wf.startTime.getTime(),
        close: wf.closeTime ? wf.closeTime.getTime() : null,
      });
    }
    const outcomes: Record<string, number> = {};
    for (const r of runs) outcomes[r.outcome] = (outcomes[r.outcome] ?? 0) + 1;

    const killedPrefixes = [...killed].map((w) => `${w.child.pid}@`);
    const byKilled = (identity: string | null | undefined) =>
      !!identity && killedPrefixes.some((p) => identity.startsWith(p));
    const perIdentity = new Map<string, { workflowTasks: number; activities: number }>();
    const bump = (identity: string | null | undefined, key: 'workflowTasks' | 'activities') => {
      if (!identity) return;
      const c = perIdentity.get(identity) ?? { workflowTasks: 0, activities: 0 };
      c[key]++;
      perIdentity.set(identity, c);
    };
    const signalled = new Set<string>();
    const actions = {
      starts: 0,
      signals: 0,
      activities: 0,
      localActivities: 0,
      timers: 0,
      upserts: 0,
      workflowTasks: 0,
    };
    let signalsDelivered = 0;
    let alertsDelivered = 0;
    let workflowTaskTimeouts = 0;
    let activityRetries = 0;
    let runsTakenOver = 0;
    let runsClosedByKilled = 0;
    const results: { workflowId: string; result: IncidentResult }[] = [];
    // Pods whose incident the killed worker had worked on and the survivor finished.
    const takenOver = new Set<string>();
    await eachLimited(runs, 16, async (run) => {
      const history = await client.workflow.getHandle(run.workflowId, run.runId).fetchHistory();
      if (process.env.BENCH_STORM_DUMP)
        writeFileSync(
          path.join(process.env.BENCH_STORM_DUMP, `${podOf(run.workflowId)}-${run.runId}.json`),
          JSON.stringify(history, null, 1),
        );
      let touchedByKilled = false;
      let lastTaskBy: string | null = null;
      for (const e of history.events ?? []) {
        if (e.workflowExecutionStartedEventAttributes) actions.starts++;
        if (e.workflowExecutionSignaledEventAttributes) actions.signals++;
        if (e.activityTaskScheduledEventAttributes) actions.activities++;
        if (e.markerRecordedEventAttributes?.markerName === 'core_local_activity') actions.localActivities++;
        if (e.timerStartedEventAttributes) actions.timers++;
        if (e.upsertWorkflowSearchAttributesEventAttributes) actions.upserts++;
        if (e.workflowTaskCompletedEventAttributes) actions.workflowTasks++;
        const signal = e.workflowExecutionSignaledEventAttributes;
        if (signal?.signalName === 'alerts') {
          signalsDelivered++;
          for (const a of defaultPayloadConverter.fromPayload<PodAlert[]>(signal.input!.payloads![0] as Payload)) {
            alertsDelivered++;
            signalled.add(a.alertId);
          }
        }
        // A task the killed worker started and never completed times out (WorkflowTaskTimedOut) and goes to another.
        const wfStarted = e.workflowTaskStartedEventAttributes;
        if (wfStarted && byKilled(wfStarted.identity)) touchedByKilled = true;
        const wfDone = e.workflowTaskCompletedEventAttributes;
        if (wfDone) {
          bump(wfDone.identity, 'workflowTasks');
          lastTaskBy = wfDone.identity ?? null;
          if (byKilled(wfDone.identity)) touchedByKilled = true;
        }
        if (e.workflowTaskTimedOutEventAttributes) workflowTaskTimeouts++;
        const started = e.activityTaskStartedEventAttributes;
        if (started) {
          if ((started.attempt ?? 1) > 1) activityRetries++;
          if (byKilled(started.identity)) touchedByKilled = true;
        }
        const actDone = e.activityTaskCompletedEventAttributes;
        if (actDone) bump(actDone.identity, 'activities');
        const completed = e.workflowExecutionCompletedEventAttributes;
        if (completed?.result?.payloads?.[0]) {
          results.push({
            workflowId: run.workflowId,
            result: defaultPayloadConverter.fromPayload<IncidentResult>(completed.result.payloads[0]),
          });
        }
      }
      if (killAtMs !== null && run.close !== null && run.close > killAtMs) {
        if (touchedByKilled) takenOver.add(podOf(run.workflowId));
        if (run.start < killAtMs && touchedByKilled) runsTakenOver++;
        if (byKilled(lastTaskBy)) runsClosedByKilled++;
      }
    });
    const podsLeft = (await kube.core.listNamespacedPod({ namespace })).items.length;
    // The watch may lag the last deletions by a moment.
    for (
      const until = Date.now() + 10_000;
      Date.now() < until && podNames.filter((n) => deletions.count(n) > 0).length < pods - podsLeft;
    )
      await sleep(200);
    deletions.stop();
    const lost = report.acceptedIds.filter((id) => !signalled.has(id)).length;
    // A `closed` answer is right only once the pod's incident has closed with the pod killed (same clock: one machine).
    const killedClosedAt = new Map<string, number>();
    for (const r of runs)
      if ((r.outcome === 'pod-terminated' || r.outcome === 'workload-suspended') && r.close !== null)
        killedClosedAt.set(podOf(r.workflowId), Math.min(r.close, killedClosedAt.get(podOf(r.workflowId)) ?? Infinity));
    const closedTooEarly = report.closedAnswers.filter(
      (c) => !(c.at >= (killedClosedAt.get(podNames[c.pod]!) ?? Infinity)),
    ).length;
    const actionTotal =
      actions.starts + actions.signals + actions.activities + actions.localActivities + actions.timers;

    // Each pod's deletions, from the cluster (DELETED events) and from what the incidents' final results say.
    const done = new Map<string, number>();
    const gone = new Map<string, number>();
    let doneCount = 0;
    let goneCount = 0;
    const suspendDone = new Map<string, number>();
    const suspendAdopted = new Map<string, number>();
    const killOutcome = new Set<string>();
    for (const { workflowId, result } of results) {
      const pod = podOf(workflowId);
      if (result.outcome === 'pod-terminated' || result.outcome === 'workload-suspended') killOutcome.add(pod);
      for (const a of result.actions) {
        if (a.action === 'delete-pod' && a.status === 'done') {
          done.set(pod, (done.get(pod) ?? 0) + 1);
          doneCount++;
        }
        if (a.action === 'delete-pod' && a.status === 'already-done') {
          gone.set(pod, (gone.get(pod) ?? 0) + 1);
          goneCount++;
        }
        if (a.action === 'suspend-workload' && a.status === 'done')
          suspendDone.set(pod, (suspendDone.get(pod) ?? 0) + 1);
        if (a.action === 'suspend-workload' && a.status === 'already-done')
          suspendAdopted.set(pod, (suspendAdopted.get(pod) ?? 0) + 1);
      }
    }
    const samples: string[] = [];
    const sample = (line: string) => void (samples.length < 5 && samples.push(line));
    let podsDoneTwice = 0;
    let podsByLostAttempt = 0;
    let podsUnexplained = 0;
    for (const pod of podNames) {
      const d = done.get(pod) ?? 0;
      const deleted = deletions.count(pod);
      if (deleted !== 1) sample(`${pod}: ${deleted} DELETED events`);
      if (d > 1) {
        podsDoneTwice++;
        sample(`${pod}: delete answered done ${d} times`);
      }
      if (d === 0 && deleted > 0) {
        // Deleted before the kill (the watch may see it up to a moment later), by a call whose answer no history
        // kept, in an incident the survivor took over from the killed worker and whose own delete then found the
        // pod gone: the killed worker deleted it.
        const at = deletions.firstAt(pod)!;
        if ((gone.get(pod) ?? 0) > 0 && killAtMs !== null && at < killAtMs + 2000 && takenOver.has(pod))
          podsByLostAttempt++;
        else {
          podsUnexplained++;
          sample(
            `${pod}: deleted ${killAtMs !== null ? `${((at - killAtMs) / 1000).toFixed(1)} s after the kill` : ''}, but no delete answered done (already-done ${gone.get(pod) ?? 0}, taken over ${takenOver.has(pod)})`,
          );
        }
      }
    }
    const counts = podNames.map((n) => deletions.count(n));
    const deletionFigures: StormDeletions = {
      watchComplete: deletions.complete(),
      once: counts.filter((c) => c === 1).length,
      moreThanOnce: counts.filter((c) => c > 1).length,
      never: counts.filter((c) => c === 0).length,
      done: doneCount,
      alreadyGone: goneCount,
      podsDoneTwice,
      podsByLostAttempt,
      podsUnexplained,
      podsWithoutKillOutcome: podNames.filter((n) => !killOutcome.has(n)).length,
      samples,
    };

    let suspensions: StormSuspensions | null = null;
    if (workloads) {
      suspensions = { workloads, once: 0, moreThanOnce: 0, never: 0, adopted: 0 };
      for (const [pod, name] of deployments) {
        const d = await kube.apps.readNamespacedDeployment({ namespace, name });
        const inCluster =
          d.spec?.replicas === 0 &&
          d.metadata?.annotations?.[SUSPENDED_BY_ANNOTATION] ===
            incidentWorkflowId({ cluster: { name: 'storm' }, namespace, podName: pod });
        const n = suspendDone.get(pod) ?? 0;
        const adopted = suspendAdopted.get(pod) ?? 0;
        if (n > 1) suspensions.moreThanOnce++;
        else if (inCluster && n + adopted >= 1) {
          suspensions.once++;
          if (n === 0) suspensions.adopted++;
        } else suspensions.never++;
      }
    }

    const { acceptedIds: _ids, closedAnswers: _closed, cpuSeconds: clientCpuSeconds, ...figures } = report;
    const spooledForClosed = Number(
      /^pod_responder_forwarder_spool_dropped_total\{reason="incident-closed"\} (\d+)/m.exec(metricsText)?.[1] ?? 0,
    );
    const forwarderExit = await forwarder.stop();
    const workerExits: StormResult['workerExits'] = [];
    for (const w of workers) {
      const code = killed.has(w) ? await w.exited : await w.stop();
      workerExits.push({ pid: w.child.pid!, killed: killed.has(w), code, signal: w.child.signalCode });
    }
    const survivors = workerExits.filter((w) => !w.killed);
    return {
      alerts,
      pods,
      concurrency,
      ...figures,
      acceptedPerSecond: (report.accepted + report.closed) / report.wallSeconds,
      actions: { ...actions, total: actionTotal, perAlert: actionTotal / alerts },
      closedTooEarly,
      spooledForClosed,
      incidents: new Set(runs.map((r) => r.workflowId)).size,
      runs: runs.length,
      openRuns,
      outcomes,
      settleSeconds,
      podsLeft,
      signalsDelivered,
      alertsDelivered,
      signalledAlerts: signalled.size,
      lost,
      forwarder: {
        rssIdle: idle.rss,
        rssPeak: peak.rss,
        heapIdle: idle.heap,
        heapPeak: peak.heap,
        cpuSeconds: busy.cpu - idle.cpu,
        exitCode: forwarderExit,
      },
      workerView,
      workerExitCode: survivors.find((w) => w.code !== 0)?.code ?? survivors[0]?.code ?? null,
      clientCpuSeconds,
      workers: workerCount,
      workloads,
      killOneWorkerAfter: killShare,
      kill: kill
        ? { pid: kill.pid, atSeconds: kill.atSeconds, uniqueSent: kill.uniqueSent, accepted: kill.accepted }
        : null,
      workerExits,
      perWorker: workers.map((w) => {
        const prefix = `${w.child.pid}@`;
        const mine = [...perIdentity].filter(([id]) => id.startsWith(prefix)).map(([, c]) => c);
        return {
          pid: w.child.pid!,
          killed: killed.has(w),
          workflowTasks: mine.reduce((n, c) => n + c.workflowTasks, 0),
          activities: mine.reduce((n, c) => n + c.activities, 0),
        };
      }),
      runsClosedAfterKill: killAtMs === null ? 0 : runs.filter((r) => r.close !== null && r.close > killAtMs).length,
      runsOpenAtKill:
        killAtMs === null
          ? 0
          : runs.filter((r) => r.start < killAtMs && (r.close === null || r.close > killAtMs)).length,
      runsTakenOver,
      runsClosedByKilled,
      workflowTaskTimeouts,
      activityRetries,
      deletions: deletionFigures,
      suspensions,
    };
  } finally {
    deletions.stop();
    await forwarder.stop();
    for (const w of workers) await w.stop();
    await connection.close();
    await own?.stop();
    rmSync(stateDir, { recursive: true, force: true });
  }
}

/** The scale-out storm: 2 workers on one task queue, one SIGKILLed halfway through, 4 of the pods a Deployment's. */
export function benchScaleOut(opts: StormOptions = {}): Promise<StormResult> {
  return benchStorm({ workers: 2, killOneWorkerAfter: 0.5, workloads: 4, ...opts });
}

/** The pod an incident is about: its workflow ID is `pod-incident:<cluster>:<namespace>:<pod>`. */
const podOf = (workflowId: string): string => workflowId.slice(workflowId.lastIndexOf(':') + 1);

/** A Deployment with a ReplicaSet under it (no controller manager runs: the chain is written here); the ReplicaSet's reference for its pod. */
async function createDeployment(
  kube: ReturnType<typeof fixtureKube>,
  namespace: string,
  name: string,
): Promise<{ replicaSet: V1OwnerReference }> {
  const template = {
    metadata: { labels: { app: name } },
    spec: { containers: [{ name: 'app', image: 'registry.example/app:1' }] },
  };
  const spec = { replicas: 1, selector: { matchLabels: { app: name } }, template };
  const d = await kube.apps.createNamespacedDeployment({ namespace, body: { metadata: { name }, spec } });
  const rs = await kube.apps.createNamespacedReplicaSet({
    namespace,
    body: {
      metadata: {
        name: `${name}-5d8f`,
        ownerReferences: [
          {
            apiVersion: 'apps/v1',
            kind: 'Deployment',
            name,
            uid: d.metadata!.uid!,
            controller: true,
            blockOwnerDeletion: true,
          },
        ],
      },
      spec,
    },
  });
  return {
    replicaSet: {
      apiVersion: 'apps/v1',
      kind: 'ReplicaSet',
      name: rs.metadata!.name!,
      uid: rs.metadata!.uid!,
      controller: true,
      blockOwnerDeletion: true,
    },
  };
}

/** Waits until every worker has built its bundle and connected (it says `worker started` on stderr, then polls). */
async function workersStarted(workers: Running[]): Promise<void> {
  for (const deadline = Date.now() + 120_000; ; await sleep(200)) {
    const dead = workers.find((w) => w.child.exitCode !== null || w.child.signalCode !== null);
    if (dead)
      throw new Error(
        `worker ${dead.child.pid} exited (${dead.child.exitCode ?? dead.child.signalCode}) before it started:\n${dead.err()}`,
      );
    if (workers.every((w) => w.err().includes('"worker started"'))) return;
    if (Date.now() > deadline) throw new Error('workers not started after 120 s');
  }
}

/**
 * Counts DELETED events per pod name in the namespace, from `resourceVersion` on. A watch the server closes is
 * resumed from the last version seen; one that cannot resume (410 Gone, an ERROR event) is marked incomplete.
 */
async function watchPodDeletions(kubeconfigPath: string, namespace: string, resourceVersion: string) {
  const kc = kubeConfigFromFile(kubeconfigPath);
  const deleted = new Map<string, number>();
  const firstAt = new Map<string, number>();
  let rv = resourceVersion;
  let complete = true;
  let stopped = false;
  let controller: AbortController | undefined;
  const start = async (): Promise<void> => {
    controller = await new Watch(kc).watch(
      `/api/v1/namespaces/${namespace}/pods`,
      { resourceVersion: rv, allowWatchBookmarks: true },
      (type, obj: { metadata?: { name?: string; resourceVersion?: string } }) => {
        if (type === 'ERROR') complete = false;
        else if (obj.metadata?.resourceVersion) rv = obj.metadata.resourceVersion;
        const name = obj.metadata?.name;
        if (type !== 'DELETED' || !name) return;
        deleted.set(name, (deleted.get(name) ?? 0) + 1);
        if (!firstAt.has(name)) firstAt.set(name, Date.now());
      },
      () => {
        if (!stopped) void start().catch(() => (complete = false));
      },
    );
  };
  await start();
  return {
    count: (pod: string) => deleted.get(pod) ?? 0,
    /** When the watch saw the pod's first DELETED event (ms since the epoch). */
    firstAt: (pod: string) => firstAt.get(pod),
    complete: () => complete,
    stop() {
      stopped = true;
      controller?.abort();
    },
  };
}

/** What must hold after a storm; empty when it passed. */
export function stormFailures(r: StormResult): string[] {
  const closedWell = ['pod-terminated', 'dismissed', ...(r.workloads ? ['workload-suspended'] : [])];
  const other = Object.entries(r.outcomes).filter(([o]) => !closedWell.includes(o));
  const d = r.deletions;
  const s = r.suspensions;
  const killed = r.workerExits.filter((w) => w.killed);
  const survivors = r.workerExits.filter((w) => !w.killed);
  return [
    ...(r.incidents !== r.pods ? [`incidents ${r.incidents} != pods ${r.pods}`] : []),
    ...(r.openRuns !== 0 ? [`${r.openRuns} runs still open`] : []),
    ...(other.length ? [`runs with other outcomes: ${JSON.stringify(Object.fromEntries(other))}`] : []),
    ...(d.podsWithoutKillOutcome !== 0
      ? [`${d.podsWithoutKillOutcome} pods whose incident never ended pod-terminated or workload-suspended`]
      : []),
    ...(r.podsLeft !== 0 ? [`${r.podsLeft} pods left running`] : []),
    ...(r.lost > r.spooledForClosed
      ? [
          `${r.lost - r.spooledForClosed} accepted alerts lost (${r.lost} in no history, ${r.spooledForClosed} of them spooled for a closed incident)`,
        ]
      : []),
    ...(r.closedTooEarly !== 0 ? [`${r.closedTooEarly} alerts answered closed before their incident had closed`] : []),
    ...(r.errors !== 0 ? [`${r.errors} errors: ${r.errorSamples.join(' | ')}`] : []),
    // A 503 after Temporal took the signal makes the sender resend, and a signal that outlived the forwarder's
    // deadline is spooled and signalled again: at most one extra delivery per retry or spooled alert, which the
    // incident counts once (its alert-ID ledger). More would be the forwarder signalling twice for no reason.
    ...(r.alertsDelivered - r.signalledAlerts > r.retries + r.queued
      ? [
          `${r.alertsDelivered - r.signalledAlerts} alerts signalled more than once, with ${r.retries} retries and ${r.queued} spooled`,
        ]
      : []),
    // None acted on twice: a pod disappears once (the watch), and one incident's delete removed it.
    ...(!d.watchComplete ? ['the pod watch lost events: deletions not counted'] : []),
    ...(d.moreThanOnce !== 0 ? [`${d.moreThanOnce} pods deleted more than once`] : []),
    ...(d.never !== 0 ? [`${d.never} pods never deleted`] : []),
    ...(d.podsDoneTwice !== 0 ? [`${d.podsDoneTwice} pods acted on twice (delete answered done more than once)`] : []),
    ...(d.podsUnexplained !== 0
      ? [`${d.podsUnexplained} pods deleted by nothing an incident recorded: ${d.samples.join(' | ')}`]
      : []),
    ...(d.podsByLostAttempt !== 0 && !r.kill
      ? [`${d.podsByLostAttempt} pods deleted by a lost attempt, with no worker killed`]
      : []),
    ...(s && s.moreThanOnce !== 0 ? [`${s.moreThanOnce} Deployments suspended more than once`] : []),
    ...(s && s.never !== 0 ? [`${s.never} Deployments not suspended (in the cluster, or by no incident)`] : []),
    ...(r.killOneWorkerAfter !== null && !r.kill ? ['the worker to kill was never killed'] : []),
    ...(r.runsClosedByKilled !== 0 ? [`${r.runsClosedByKilled} runs closed after the kill by the killed worker`] : []),
    ...(r.forwarder.exitCode !== 0 ? [`forwarder exited ${r.forwarder.exitCode} on SIGTERM`] : []),
    // The killed worker's end is a SIGKILL, as meant; any other end means it died on its own first.
    ...killed
      .filter((w) => w.signal !== 'SIGKILL')
      .map((w) => `killed worker ${w.pid} ended with ${w.code ?? w.signal}, not SIGKILL`),
    ...survivors.filter((w) => w.code !== 0).map((w) => `worker ${w.pid} exited ${w.code ?? w.signal} on SIGTERM`),
  ];
}

export function formatStorm(r: StormResult): string {
  const ms = (x: number) => `${x.toFixed(1)} ms`;
  const mib = (bytes: number) => `${(bytes / 1024 / 1024).toFixed(0)} MiB`;
  const outcomes = Object.entries(r.outcomes)
    .map(([o, n]) => `${o} ${n}`)
    .join(', ');
  const d = r.deletions;
  const s = r.suspensions;
  const a = r.actions;
  const workers = r.workers === 1 ? 'worker' : `${r.workers} workers on one task queue`;
  const killed =
    r.killOneWorkerAfter !== null
      ? `, one SIGKILLed after ${(r.killOneWorkerAfter * 100).toFixed(0)}% of the alerts sent`
      : '';
  const kill = r.kill
    ? `worker ${r.kill.pid} SIGKILLed ${r.kill.atSeconds.toFixed(1)} s into the storm, after ${r.kill.uniqueSent} of ${r.alerts} unique alerts sent (${r.kill.accepted} accepted)`
    : r.killOneWorkerAfter !== null
      ? 'planned, never happened'
      : 'none';
  const perWorker = r.perWorker
    .map((w) => `${w.pid}${w.killed ? ' (killed)' : ''}: ${w.workflowTasks} / ${w.activities}`)
    .join('; ');
  const exits = r.workerExits
    .map((w) => (w.killed ? `${w.signal ?? w.code} (killed)` : String(w.code ?? w.signal)))
    .join(', ');
  return `
## alert storm: load generator, forwarder and ${workers} each in a process, loopback (${r.alerts} alerts, ${r.pods} pods${r.workloads ? `, ${r.workloads} of them a Deployment's` : ''}, ${r.concurrency} in flight${killed})

| | |
| --- | --- |
| requests sent (unique + resends + retries) | ${r.sent} (${r.unique} + ${r.resends} + ${r.retries}) |
| unique alerts answered 202: accepted (or queued) / \`closed\` (about a pod its closed incident killed: nothing sent) | ${r.accepted} / ${r.closed} in ${r.wallSeconds.toFixed(1)} s: ${r.acceptedPerSecond.toFixed(0)} /s |
| \`closed\` answered before the pod's incident had closed (must be 0) | ${r.closedTooEarly} |
| resends answered duplicate (or queued: the first copy still in the spool) | ${r.duplicates} of ${r.resends} |
| latency of unique alerts p50 / p99 / max | ${ms(r.latencyMs.p50)} / ${ms(r.latencyMs.p99)} / ${ms(r.latencyMs.max)} |
| latency of resends p50 / p99 | ${ms(r.resendLatencyMs.p50)} / ${ms(r.resendLatencyMs.p99)} |
| retries (503/429) / errors | ${r.retries} / ${r.errors} |
| answered \`queued\` (Temporal slower than the 2 s deadline: spooled, delivered again) | ${r.queued} |
| workers; kill | ${r.workers}; ${kill} |
| incidents / pods; runs (more runs than incidents: late alerts for a killed pod that started one) | ${r.incidents} / ${r.pods}; ${r.runs} |
| runs by outcome | ${outcomes} |
| open runs after the storm, settled in | ${r.openRuns}, ${r.settleSeconds.toFixed(1)} s after the last answer |
${
  r.kill
    ? `| runs closed after the kill; open at the kill, of them taken over from the killed worker | ${r.runsClosedAfterKill}; ${r.runsOpenAtKill}, ${r.runsTakenOver} |
| recovery in the histories: workflow tasks timed out / activities retried (attempt > 1) | ${r.workflowTaskTimeouts} / ${r.activityRetries} |
`
    : ''
}${
    r.workers > 1
      ? `| workflow tasks / activities completed, per worker (pid) | ${perWorker} |
`
      : ''
  }| pods left | ${r.podsLeft} |
| pods deleted, by the cluster's DELETED events: once / more than once / never${d.watchComplete ? '' : ' (watch lost events)'} | ${d.once} / ${d.moreThanOnce} / ${d.never} |
| delete-pod results: \`done\` / \`already-done\` (found gone) | ${d.done} / ${d.alreadyGone} |
| pods acted on twice (two \`done\`) / deleted by the killed worker, answer lost (the survivor's delete found it gone) / unexplained | ${d.podsDoneTwice} / ${d.podsByLostAttempt} / ${d.podsUnexplained} |
${
  s
    ? `| Deployments suspended once (of them adopted on retry) / more than once / not | ${s.once} (${s.adopted}) / ${s.moreThanOnce} / ${s.never} of ${s.workloads} |
`
    : ''
}| signals in histories / alerts they carried / distinct (a resend after a 503 may arrive twice) | ${r.signalsDelivered} / ${r.alertsDelivered} / ${r.signalledAlerts} |
| accepted alerts in no history / of them spooled, then found about a closed incident's killed pod (not sent) | ${r.lost} / ${r.spooledForClosed} |
| **alerts lost** (at most: a dropped copy may also have reached its incident before, through a signal that outlived the deadline) | **${Math.max(0, r.lost - r.spooledForClosed)}** |
| Temporal actions (histories): starts + signals + activities (+ local) + timers = total | ${a.starts} + ${a.signals} + ${a.activities} (+ ${a.localActivities}) + ${a.timers} = ${a.total} |
| **Temporal actions per storm alert** (search attribute upserts, not in the sum; workflow tasks) | **${a.perAlert.toFixed(3)}** (${a.upserts}; ${a.workflowTasks}) |
${
  r.workerView
    ? `| worker: workflow tasks, mean schedule-to-start / execution; sticky cache hits / misses (replays) | ${r.workerView.workflowTasks}, ${ms(r.workerView.scheduleToStartMs)} / ${ms(r.workerView.executionMs)}; ${r.workerView.stickyHits} / ${r.workerView.stickyMisses} |
| worker: activity schedule-to-start (mean); fewest free workflow task slots seen; workflow task pollers at the end | ${ms(r.workerView.activityScheduleToStartMs)}; ${r.workerView.minFreeSlots}; ${r.workerView.pollers} |
| CPU seconds, storm and settling: worker / Temporal dev server | ${r.workerView.cpu.worker.toFixed(1)} / ${r.workerView.cpu.temporal?.toFixed(1) ?? '?'} |
`
    : ''
}| forwarder RSS idle -> peak | ${mib(r.forwarder.rssIdle)} -> ${mib(r.forwarder.rssPeak)} |
| forwarder heap used idle -> peak | ${mib(r.forwarder.heapIdle)} -> ${mib(r.forwarder.heapPeak)} |
| CPU seconds during the storm: forwarder / load generator | ${r.forwarder.cpuSeconds.toFixed(1)} / ${r.clientCpuSeconds.toFixed(1)} |
| forwarder / worker exit on SIGTERM | ${r.forwarder.exitCode} / ${exits} |
`;
}

if (process.argv[1] && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) {
  const log = (line: string) => process.stderr.write(`[bench] ${line}\n`);
  if (process.env.BENCH_SCALEOUT === '1')
    runAlone('scale-out', () => benchScaleOut({ log }), formatStorm, stormFailures);
  else runAlone('storm', () => benchStorm({ log }), formatStorm, stormFailures);
}
