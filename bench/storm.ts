/**
 * `npm run bench:storm`: an alert storm through the whole chain. A load generator in a process of its
 * own (bench/storm-client.ts) posts BENCH_STORM_ALERTS Falco alerts (default 20000) about
 * BENCH_STORM_PODS real pods (default 200), BENCH_STORM_CONCURRENCY in flight (default 64), plus ~5%
 * resends, to a forwarder in its own process, over loopback; a worker in a third process responds.
 * Then Temporal is checked: one incident per pod (a late alert for a pod already killed starts a run
 * that is dismissed as pod-gone), every run closed with an outcome, every accepted alert in a history
 * exactly once, and the pods gone. BENCH_STORM_CPU_PROF=<dir> also writes the forwarder's CPU profile.
 */
import { Client, Connection } from '@temporalio/client';
import { defaultPayloadConverter, type Payload } from '@temporalio/common';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import { createNamespace, createPod, fixtureKube } from '../devstack/fixtures.js';
import { startStack } from '../devstack/stack.js';
import type { PodAlert } from '../domain/alert.js';
import { eachLimited, envNumber, runAlone, sampleProcess, samplePeaks, sleep, spawnTs, startForwarderProcess, startWorkerProcess } from './processes.js';
import type { StormClientOptions, StormClientReport } from './storm-client.js';

export interface StormOptions {
  /** A running stack (Temporal and the kubeconfig of its kube-apiserver); without it one is started and stopped. */
  stack?: { temporalAddress: string; kubeconfigPath: string };
  alerts?: number;
  pods?: number;
  concurrency?: number;
  /** Share of accepted alerts sent again (default 0.05). */
  resendRatio?: number;
  log?: (line: string) => void;
}

/** The load generator's figures, plus what Temporal, the cluster and the forwarder's own metrics say. */
export type StormResult = Omit<StormClientReport, 'acceptedIds' | 'cpuSeconds'> & {
  alerts: number;
  pods: number;
  concurrency: number;
  /** Unique alerts accepted per wall-clock second. */
  acceptedPerSecond: number;
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
  forwarder: { rssIdle: number; rssPeak: number; heapIdle: number; heapPeak: number; cpuSeconds: number; exitCode: number | null };
  workerExitCode: number | null;
  clientCpuSeconds: number;
};

const METRIC = 'pod_responder_forwarder_';

export async function benchStorm(opts: StormOptions = {}): Promise<StormResult> {
  const log = opts.log ?? (() => {});
  const alerts = opts.alerts ?? envNumber('BENCH_STORM_ALERTS', 20_000);
  const pods = opts.pods ?? envNumber('BENCH_STORM_PODS', 200);
  const concurrency = opts.concurrency ?? envNumber('BENCH_STORM_CONCURRENCY', 64);
  const resendRatio = opts.resendRatio ?? 0.05;

  const stateDir = mkdtempSync(path.join(tmpdir(), 'pod-responder-storm-'));
  const own = opts.stack ? undefined : await startStack({ stateDir, headless: true, log: () => {} });
  const { temporalAddress, kubeconfigPath } = opts.stack ?? own!;
  const taskQueue = `storm-${randomBytes(4).toString('hex')}`;
  const token = randomBytes(16).toString('hex');
  const kube = fixtureKube(kubeconfigPath);
  const namespace = await createNamespace(kube, 'storm');
  const podNames = Array.from({ length: pods }, (_, i) => `miner-${i}`);
  const containerIds: string[] = [];
  await eachLimited(podNames, 8, async (name) => {
    const pod = await createPod(kube, namespace, name);
    containerIds[podNames.indexOf(name)] = pod.containerId.slice(0, 12);
  });
  const configFile = path.join(stateDir, 'forwarder.json');
  writeFileSync(configFile, '{}'); // defaults: the rate limit applies to new incidents only, as in production

  const connection = await Connection.connect({ address: temporalAddress });
  const client = new Client({ connection });
  const forwarder = await startForwarderProcess({ temporalAddress, taskQueue, token, configFile, cpuProfileDir: process.env.BENCH_STORM_CPU_PROF });
  const worker = startWorkerProcess({ temporalAddress, taskQueue, kubeconfig: kubeconfigPath, cluster: 'storm', policy: {} });
  try {
    const idle = await sampleProcess(forwarder.base, METRIC);
    log(`storm: ${alerts} alerts over ${pods} pods in ${namespace}, ${concurrency} in flight, task queue ${taskQueue}`);
    const peaks = samplePeaks(forwarder.base, METRIC);
    const clientOpts: StormClientOptions = {
      url: `${forwarder.base}/v1/alerts/falco?cluster=storm`, token, alerts, pods, concurrency, resendRatio, namespace, podNames, containerIds,
    };
    const gen = spawnTs('bench/storm-client.ts', [JSON.stringify(clientOpts)], process.env);
    const code = await gen.exited;
    const peak = await peaks.stop();
    const busy = await sampleProcess(forwarder.base, METRIC);
    if (code !== 0) throw new Error(`storm client exited ${code}:\n${gen.err()}`);
    const report = JSON.parse(gen.out()) as StormClientReport;
    log(`storm: ${report.accepted} accepted in ${report.wallSeconds.toFixed(1)} s; waiting for every incident to close`);

    const tSettle = performance.now();
    let openRuns = 0;
    for (const deadline = Date.now() + 180_000; Date.now() < deadline; await sleep(500)) {
      openRuns = (await client.workflow.count(`TaskQueue = "${taskQueue}" AND ExecutionStatus = "Running"`)).count;
      if (openRuns === 0) break;
    }
    const settleSeconds = (performance.now() - tSettle) / 1000;
    await sleep(1000); // visibility is eventually consistent

    const runs: { workflowId: string; runId: string; outcome: string }[] = [];
    for await (const wf of client.workflow.list({ query: `TaskQueue = "${taskQueue}"` })) {
      const outcome = wf.searchAttributes?.PodResponderOutcome;
      runs.push({ workflowId: wf.workflowId, runId: wf.runId, outcome: Array.isArray(outcome) ? String(outcome[0]) : 'none' });
    }
    const outcomes: Record<string, number> = {};
    for (const r of runs) outcomes[r.outcome] = (outcomes[r.outcome] ?? 0) + 1;

    const signalled = new Set<string>();
    let signalsDelivered = 0;
    let alertsDelivered = 0;
    await eachLimited(runs, 16, async ({ workflowId, runId }) => {
      const history = await client.workflow.getHandle(workflowId, runId).fetchHistory();
      for (const e of history.events ?? []) {
        const signal = e.workflowExecutionSignaledEventAttributes;
        if (signal?.signalName !== 'alerts') continue;
        signalsDelivered++;
        for (const a of defaultPayloadConverter.fromPayload<PodAlert[]>(signal.input!.payloads![0] as Payload)) {
          alertsDelivered++;
          signalled.add(a.alertId);
        }
      }
    });
    const podsLeft = (await kube.core.listNamespacedPod({ namespace })).items.length;
    const lost = report.acceptedIds.filter((id) => !signalled.has(id)).length;
    const { acceptedIds: _ids, cpuSeconds: clientCpuSeconds, ...figures } = report;
    return {
      alerts, pods, concurrency, ...figures,
      acceptedPerSecond: report.accepted / report.wallSeconds,
      incidents: new Set(runs.map((r) => r.workflowId)).size, runs: runs.length, openRuns, outcomes, settleSeconds, podsLeft,
      signalsDelivered, alertsDelivered, signalledAlerts: signalled.size, lost,
      forwarder: { rssIdle: idle.rss, rssPeak: peak.rss, heapIdle: idle.heap, heapPeak: peak.heap, cpuSeconds: busy.cpu - idle.cpu, exitCode: await forwarder.stop() },
      workerExitCode: await worker.stop(),
      clientCpuSeconds,
    };
  } finally {
    await forwarder.stop();
    await worker.stop();
    await connection.close();
    await own?.stop();
    rmSync(stateDir, { recursive: true, force: true });
  }
}

/** What must hold after a storm; empty when it passed. */
export function stormFailures(r: StormResult): string[] {
  const closedWell = ['pod-terminated', 'dismissed'];
  const other = Object.entries(r.outcomes).filter(([o]) => !closedWell.includes(o));
  return [
    ...(r.incidents !== r.pods ? [`incidents ${r.incidents} != pods ${r.pods}`] : []),
    ...(r.openRuns !== 0 ? [`${r.openRuns} runs still open`] : []),
    ...(other.length ? [`runs with other outcomes: ${JSON.stringify(Object.fromEntries(other))}`] : []),
    ...(r.podsLeft !== 0 ? [`${r.podsLeft} pods left running`] : []),
    ...(r.lost !== 0 ? [`${r.lost} accepted alerts lost`] : []),
    ...(r.errors !== 0 ? [`${r.errors} errors: ${r.errorSamples.join(' | ')}`] : []),
    // A 503 after Temporal took the signal makes the sender resend, and a signal that outlived the forwarder's
    // deadline is spooled and signalled again: at most one extra delivery per retry or spooled alert, which the
    // incident counts once (its alert-ID ledger). More would be the forwarder signalling twice for no reason.
    ...(r.alertsDelivered - r.signalledAlerts > r.retries + r.queued
      ? [`${r.alertsDelivered - r.signalledAlerts} alerts signalled more than once, with ${r.retries} retries and ${r.queued} spooled`]
      : []),
    ...(r.forwarder.exitCode !== 0 ? [`forwarder exited ${r.forwarder.exitCode} on SIGTERM`] : []),
    ...(r.workerExitCode !== 0 ? [`worker exited ${r.workerExitCode} on SIGTERM`] : []),
  ];
}

export function formatStorm(r: StormResult): string {
  const ms = (x: number) => `${x.toFixed(1)} ms`;
  const mib = (bytes: number) => `${(bytes / 1024 / 1024).toFixed(0)} MiB`;
  const outcomes = Object.entries(r.outcomes).map(([o, n]) => `${o} ${n}`).join(', ');
  return `
## alert storm: load generator, forwarder and worker each in a process, loopback (${r.alerts} alerts, ${r.pods} pods, ${r.concurrency} in flight)

| | |
| --- | --- |
| requests sent (unique + resends + retries) | ${r.sent} (${r.unique} + ${r.resends} + ${r.retries}) |
| unique alerts accepted | ${r.accepted} in ${r.wallSeconds.toFixed(1)} s: ${r.acceptedPerSecond.toFixed(0)} /s |
| resends answered duplicate (or queued: the first copy still in the spool) | ${r.duplicates} of ${r.resends} |
| latency of unique alerts p50 / p99 / max | ${ms(r.latencyMs.p50)} / ${ms(r.latencyMs.p99)} / ${ms(r.latencyMs.max)} |
| latency of resends p50 / p99 | ${ms(r.resendLatencyMs.p50)} / ${ms(r.resendLatencyMs.p99)} |
| retries (503/429) / errors | ${r.retries} / ${r.errors} |
| answered \`queued\` (Temporal slower than the 2 s deadline: spooled, delivered again) | ${r.queued} |
| incidents / pods; runs (late alerts for a killed pod start a run dismissed as pod-gone) | ${r.incidents} / ${r.pods}; ${r.runs} |
| runs by outcome | ${outcomes} |
| open runs after the storm, settled in | ${r.openRuns}, ${r.settleSeconds.toFixed(1)} s after the last answer |
| pods left | ${r.podsLeft} |
| signals in histories / alerts they carried / distinct (a resend after a 503 may arrive twice) | ${r.signalsDelivered} / ${r.alertsDelivered} / ${r.signalledAlerts} |
| alerts lost | ${r.lost} |
| forwarder RSS idle -> peak | ${mib(r.forwarder.rssIdle)} -> ${mib(r.forwarder.rssPeak)} |
| forwarder heap used idle -> peak | ${mib(r.forwarder.heapIdle)} -> ${mib(r.forwarder.heapPeak)} |
| CPU seconds during the storm: forwarder / load generator | ${r.forwarder.cpuSeconds.toFixed(1)} / ${r.clientCpuSeconds.toFixed(1)} |
| forwarder / worker exit on SIGTERM | ${r.forwarder.exitCode} / ${r.workerExitCode} |
`;
}

if (process.argv[1] && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) {
  runAlone('storm', () => benchStorm({ log: (line) => process.stderr.write(`[bench] ${line}\n`) }), formatStorm, stormFailures);
}
