/**
 * `npm run bench:flood`: what a miner opening a connection a second, times a thousand, does to one
 * incident. A load generator posts BENCH_FLOOD_ALERTS distinct Falco alerts (default 100000, plus 1%
 * resends) about one Deployment pod at BENCH_FLOOD_RATE a second (default 1700, open loop: a request per
 * alert whatever the answers take, as Falcosidekick sends, up to 2000 in flight), through a forwarder to a worker,
 * each in a process of its own. The incident kills the pod, suspends the Deployment on the repeats and
 * holds it while the flood goes on. Then: one incident chain, the alert count exact, every run of the
 * chain far inside Temporal's limits, the status small, every sender answered 202.
 */
import { Client, Connection } from '@temporalio/client';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import { createNamespace, createWorkload, fixtureKube } from '../devstack/fixtures.js';
import { startStack } from '../devstack/stack.js';
import { defaultPolicy } from '../domain/policy-defaults.js';
import { statusQuery, type IncidentStatus } from '../workflows/messages.js';
import {
  envNumber,
  runAlone,
  sampleProcess,
  samplePeaks,
  sleep,
  spawnTs,
  startForwarderProcess,
  startWorkerProcess,
} from './processes.js';
import type { StormClientOptions, StormClientReport } from './storm-client.js';

export interface FloodOptions {
  stack?: { temporalAddress: string; kubeconfigPath: string };
  alerts?: number;
  ratePerSecond?: number;
  log?: (line: string) => void;
}

export interface FloodRun {
  status: string;
  events: number;
  bytes: number;
}

/** How the largest run grew past its byte threshold, from its history. */
export interface RunAnatomy {
  bytes: number;
  signals: number;
  /** The largest signal's payload, and the mean. */
  largestSignalBytes: number;
  meanSignalBytes: number;
  /** The continue-as-new event's payload (the carried state and ledger). */
  continuedBytes: number;
  /** Workflow tasks that failed (UnhandledCommand: a signal landed while the run was closing), and after the first. */
  failedTasks: number;
  /** Of the run's history bytes, those past the threshold, and the signals that landed after a workflow task first saw it crossed. */
  pastThresholdBytes: number;
  signalsAfterCrossing: number;
  /** Seconds from the task that first saw the threshold crossed to the run's close. */
  closingSeconds: number;
}

export interface FloodResult {
  alerts: number;
  ratePerSecond: number;
  client: Omit<StormClientReport, 'acceptedIds'>;
  /** Workflow IDs on the task queue (must be 1) and the runs of the chain. */
  incidents: number;
  runs: FloodRun[];
  /** What the incident counted, and how long after the last 202 its count was complete. */
  counted: number;
  duplicates: number;
  catchUpSeconds: number;
  stage: string;
  statusBytes: number;
  signals: number;
  forwarder: { rssPeak: number; cpuSeconds: number };
  largest?: RunAnatomy;
  wallSeconds: number;
}

const METRIC = 'pod_responder_forwarder_';

const payloadBytes = (p?: { payloads?: { data?: Uint8Array | null }[] | null } | null) =>
  (p?.payloads ?? []).reduce((n, x) => n + (x.data?.length ?? 0), 0);
const seconds = (t?: { seconds?: unknown; nanos?: number | null } | null) =>
  Number(t?.seconds ?? 0) + (t?.nanos ?? 0) / 1e9;

/**
 * Reads a run's history: its signals' sizes, the workflow tasks that failed, and what landed after the first task
 * that saw the history at or past `threshold` bytes (the run continues as new at its first wait from then on).
 */
export async function runAnatomy(
  client: Client,
  workflowId: string,
  runId: string,
  threshold: number,
): Promise<RunAnatomy> {
  const history = await client.workflow.getHandle(workflowId, runId).fetchHistory();
  const sizes: number[] = [];
  let failedTasks = 0;
  let continuedBytes = 0;
  let crossedAt: number | null = null;
  let signalsAfterCrossing = 0;
  let closedAt = 0;
  let bytes = 0;
  for (const e of history.events ?? []) {
    const signal = e.workflowExecutionSignaledEventAttributes;
    if (signal) {
      sizes.push(payloadBytes(signal.input));
      if (crossedAt !== null) signalsAfterCrossing++;
    }
    const started = e.workflowTaskStartedEventAttributes;
    if (started) {
      bytes = Math.max(bytes, Number(started.historySizeBytes ?? 0));
      if (crossedAt === null && Number(started.historySizeBytes ?? 0) >= threshold) crossedAt = seconds(e.eventTime);
    }
    if (e.workflowTaskFailedEventAttributes) failedTasks++;
    const continued = e.workflowExecutionContinuedAsNewEventAttributes;
    if (continued) continuedBytes = payloadBytes(continued.input);
    closedAt = seconds(e.eventTime);
  }
  const d = await client.workflow.getHandle(workflowId, runId).describe();
  const total = d.historySize ?? bytes;
  return {
    bytes: total,
    signals: sizes.length,
    largestSignalBytes: sizes.length ? Math.max(...sizes) : 0,
    meanSignalBytes: sizes.length ? sizes.reduce((a, b) => a + b, 0) / sizes.length : 0,
    continuedBytes,
    failedTasks,
    pastThresholdBytes: Math.max(0, total - threshold),
    signalsAfterCrossing,
    closingSeconds: crossedAt === null ? 0 : closedAt - crossedAt,
  };
}

export async function benchFlood(opts: FloodOptions = {}): Promise<FloodResult> {
  const log = opts.log ?? (() => {});
  const alerts = opts.alerts ?? envNumber('BENCH_FLOOD_ALERTS', 100_000);
  const ratePerSecond = opts.ratePerSecond ?? envNumber('BENCH_FLOOD_RATE', 1700);
  const tStart = performance.now();
  const stateDir = mkdtempSync(path.join(tmpdir(), 'pod-responder-flood-'));
  const own = opts.stack ? undefined : await startStack({ stateDir, headless: true, log: () => {} });
  const { temporalAddress, kubeconfigPath } = opts.stack ?? own!;
  const taskQueue = `flood-${randomBytes(4).toString('hex')}`;
  const token = randomBytes(16).toString('hex');
  const kube = fixtureKube(kubeconfigPath);
  const namespace = await createNamespace(kube, 'flood');
  const w = await createWorkload(kube, namespace, 'Deployment');
  const configFile = path.join(stateDir, 'forwarder.json');
  writeFileSync(configFile, '{}');

  // A page of a run's history can pass gRPC's default 4 MiB message (the runs this bench looks at).
  const connection = await Connection.connect({
    address: temporalAddress,
    channelArgs: { 'grpc.max_receive_message_length': 64 * 1024 * 1024 },
  });
  const client = new Client({ connection });
  const forwarder = await startForwarderProcess({
    temporalAddress,
    taskQueue,
    token,
    configFile,
    cpuProfileDir: process.env.BENCH_STORM_CPU_PROF,
  });
  const worker = startWorkerProcess({
    temporalAddress,
    taskQueue,
    kubeconfig: kubeconfigPath,
    cluster: 'flood',
    policy: {},
  });
  const workflowId = `pod-incident:flood:${namespace}:${w.pod.metadata!.name}`;
  try {
    const idle = await sampleProcess(forwarder.base, METRIC);
    const peaks = samplePeaks(forwarder.base, METRIC);
    log(`flood: ${alerts} alerts about ${namespace}/${w.pod.metadata!.name}, ${ratePerSecond} a second`);
    const clientOpts: StormClientOptions = {
      url: `${forwarder.base}/v1/alerts/falco?cluster=flood`,
      token,
      alerts,
      pods: 1,
      concurrency: 2000,
      ratePerSecond,
      resendRatio: 0.01,
      // A resend follows its event within seconds (a sender retrying): from the newest 10,000, not a million back.
      resendWindow: 10_000,
      namespace,
      podNames: [w.pod.metadata!.name!],
      containerIds: [w.pod.containerId.slice(0, 12)],
    };
    const gen = spawnTs('bench/storm-client.ts', [JSON.stringify(clientOpts)], process.env);
    const code = await gen.exited;
    const peak = await peaks.stop();
    const busy = await sampleProcess(forwarder.base, METRIC);
    if (code !== 0) throw new Error(`load generator exited ${code}:\n${gen.err()}`);
    const { acceptedIds, ...report } = JSON.parse(gen.out()) as StormClientReport;
    log(
      `flood: ${report.accepted} accepted in ${report.wallSeconds.toFixed(1)} s; waiting for the incident to count them`,
    );

    const handle = client.workflow.getHandle(workflowId);
    const t0 = performance.now();
    let status: IncidentStatus = await handle.query(statusQuery);
    for (
      const deadline = Date.now() + envNumber('BENCH_FLOOD_CATCHUP_SECONDS', 180) * 1000;
      status.alerts.count < acceptedIds.length && Date.now() < deadline;
      await sleep(500)
    ) {
      status = await handle.query(statusQuery);
    }
    const catchUpSeconds = (performance.now() - t0) / 1000;

    const ids = new Set<string>();
    const runs: (FloodRun & { runId: string })[] = [];
    for await (const wf of client.workflow.list({ query: `TaskQueue = "${taskQueue}"` })) {
      ids.add(wf.workflowId);
      const d = await client.workflow.getHandle(wf.workflowId, wf.runId).describe();
      runs.push({ runId: wf.runId, status: d.status.name, events: d.historyLength, bytes: d.historySize ?? NaN });
    }
    const biggest = runs.reduce<(typeof runs)[number] | undefined>(
      (a, b) => (a && a.bytes >= b.bytes ? a : b),
      undefined,
    );
    const largest = biggest
      ? await runAnatomy(client, workflowId, biggest.runId, defaultPolicy.historyBytesPerRun)
      : undefined;
    const signals = Number(
      /^pod_responder_forwarder_signals_total (\S+)/m.exec(
        await (await fetch(`${forwarder.base}/metrics`)).text(),
      )?.[1],
    );
    return {
      alerts,
      ratePerSecond,
      client: report,
      incidents: ids.size,
      runs: runs.map(({ runId: _, ...r }) => r),
      largest,
      wallSeconds: (performance.now() - tStart) / 1000,
      counted: status.alerts.count,
      duplicates: status.alerts.duplicates,
      catchUpSeconds,
      stage: status.stage,
      statusBytes: Buffer.byteLength(JSON.stringify(status)),
      signals,
      forwarder: { rssPeak: peak.rss, cpuSeconds: busy.cpu - idle.cpu },
    };
  } finally {
    await client.workflow
      .getHandle(workflowId)
      .terminate('flood bench done')
      .catch(() => undefined);
    await forwarder.stop();
    await worker.stop();
    await connection.close();
    await own?.stop();
    rmSync(stateDir, { recursive: true, force: true });
  }
}

export function floodFailures(r: FloodResult): string[] {
  const open = r.runs.filter((x) => x.status === 'RUNNING').length;
  const continued = r.runs.filter((x) => x.status === 'CONTINUED_AS_NEW').length;
  return [
    ...(r.incidents !== 1 ? [`${r.incidents} incidents, expected one chain`] : []),
    ...(open !== 1 || continued !== r.runs.length - 1
      ? [`runs: ${open} open, ${continued} continued as new, of ${r.runs.length}`]
      : []),
    ...(r.counted !== r.client.accepted
      ? [`incident counted ${r.counted} alerts, ${r.client.accepted} were accepted`]
      : []),
    ...(r.client.accepted !== r.alerts ? [`${r.client.accepted} of ${r.alerts} accepted`] : []),
    ...(r.client.retries || r.client.errors
      ? [`${r.client.retries} 503/429 answers, ${r.client.errors} errors: ${r.client.errorSamples.join(' | ')}`]
      : []),
    ...r.runs
      .filter((x) => x.events >= 10_000 || x.bytes > defaultPolicy.historyBytesPerRun)
      .map((x) => `a run has ${x.events} events, ${x.bytes} bytes (past historyBytesPerRun)`),
    ...(r.statusBytes >= 256 * 1024 ? [`status is ${r.statusBytes} bytes`] : []),
  ];
}

export function formatFlood(r: FloodResult): string {
  const max = (f: (x: FloodRun) => number) => Math.max(...r.runs.map(f));
  const ms = (x: number) => `${x.toFixed(1)} ms`;
  return `
## alert flood: ${r.alerts} distinct alerts about one pod, sent at ${r.ratePerSecond}/s through the forwarder, with a worker

| | |
| --- | --- |
| alerts accepted (202) / sent | ${r.client.accepted} / ${r.client.unique} in ${r.client.wallSeconds.toFixed(1)} s: ${(r.client.accepted / r.client.wallSeconds).toFixed(0)} /s |
| resends answered duplicate | ${r.client.duplicates} of ${r.client.resends} |
| 503 or 429 answers / errors | ${r.client.retries} / ${r.client.errors} |
| latency p50 / p99 / max | ${ms(r.client.latencyMs.p50)} / ${ms(r.client.latencyMs.p99)} / ${ms(r.client.latencyMs.max)} |
| signals the forwarder sent (alerts per signal) | ${r.signals} (${(r.client.accepted / r.signals).toFixed(0)}) |
| incident chains / runs | ${r.incidents} / ${r.runs.length} (${r.runs.filter((x) => x.status === 'CONTINUED_AS_NEW').length} continued as new) |
| alerts the incident counted | ${r.counted} (complete ${r.catchUpSeconds.toFixed(1)} s after the last 202); stage ${r.stage} |
| largest run: events / bytes | ${max((x) => x.events)} / ${(max((x) => x.bytes) / 1024 / 1024).toFixed(2)} MiB |
| status query size | ${(r.statusBytes / 1024).toFixed(1)} KiB |
| forwarder peak RSS / CPU seconds | ${(r.forwarder.rssPeak / 1024 / 1024).toFixed(0)} MiB / ${r.forwarder.cpuSeconds.toFixed(1)} |
${r.largest ? anatomyRows(r.largest) : ''}| bench wall time | ${r.wallSeconds.toFixed(0)} s |
`;
}

function anatomyRows(a: RunAnatomy): string {
  const kib = (n: number) => `${(n / 1024).toFixed(0)} KiB`;
  return `| largest run: signals (largest / mean payload) | ${a.signals} (${kib(a.largestSignalBytes)} / ${kib(a.meanSignalBytes)}) |
| largest run: carried on (continue-as-new payload) | ${kib(a.continuedBytes)} |
| largest run: past the ${kib(defaultPolicy.historyBytesPerRun)} threshold / signals after a task saw it crossed / to close | ${kib(a.pastThresholdBytes)} / ${a.signalsAfterCrossing} / ${a.closingSeconds.toFixed(1)} s |
| largest run: failed workflow tasks (a signal landed while it closed) | ${a.failedTasks} |
`;
}

if (process.argv[1] && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) {
  runAlone(
    'flood',
    () => benchFlood({ log: (line) => process.stderr.write(`[bench] ${line}\n`) }),
    formatFlood,
    floodFailures,
  );
}
