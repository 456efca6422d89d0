/**
 * What waking an evicted incident costs the worker (`npm run bench:replay`): the recorded histories
 * (test/histories/, the playbook's paths: approvals, holds, floods, the EKS executor) replayed against
 * today's workflow bundle, BENCH_REPLAY_ROUNDS (20) times each, in this process. An incident the cache evicted
 * (parked awaiting approval, holding) is replayed like this when a message or timer wakes it, so approving
 * thousands at once costs about this much CPU per incident per workflow task. Needs no stack.
 *
 * The SDK's replayer runs the workflow in this thread (its debug mode); a worker runs it in a workflow thread, each
 * activation passed to it as a message. BENCH_REPLAY_THREADED=1 replays as the worker does (process CPU, all threads).
 * BENCH_REPLAY_ONLY=text replays only the histories whose file name contains it.
 */
import { historyFromJSON } from '@temporalio/common/lib/proto-utils.js';
import { Worker, type ReplayWorkerOptions } from '@temporalio/worker';
import { readdirSync, readFileSync } from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { workflowBundle } from '../worker/workflow-bundle.js';
import { workflowsPath } from '../worker/worker.js';
import { envNumber, runAlone } from './processes.js';

const HISTORIES = fileURLToPath(new URL('../test/histories/', import.meta.url));

export interface ReplayResult {
  threaded: boolean;
  histories: number;
  replays: number;
  failed: string[];
  wallMsPerReplay: number;
  cpuMsPerReplay: number;
}

export async function benchReplay(
  o: { rounds?: number; threaded?: boolean; log?: (line: string) => void; options?: Partial<ReplayWorkerOptions> } = {},
): Promise<ReplayResult> {
  const rounds = o.rounds ?? envNumber('BENCH_REPLAY_ROUNDS', 20);
  const threaded = o.threaded ?? process.env.BENCH_REPLAY_THREADED === '1';
  const histories = readdirSync(HISTORIES)
    .filter((f) => f.endsWith('.json') && f.includes(process.env.BENCH_REPLAY_ONLY ?? ''))
    .map((f) => ({
      workflowId: f,
      history: historyFromJSON(JSON.parse(readFileSync(path.join(HISTORIES, f), 'utf8'))),
    }));
  const bundle = await workflowBundle(workflowsPath());
  // One warm-up pass: the first replay compiles the bundle in the sandbox.
  // The replay options' type leaves debugMode out; the replayer takes it (its own default is true).
  const options = {
    workflowBundle: bundle,
    ...(threaded ? { debugMode: false } : {}),
    ...o.options,
  } as ReplayWorkerOptions;
  for await (const _ of Worker.runReplayHistories({ ...options, replayName: 'warm-up' }, histories)) void _;
  o.log?.(`replay: ${histories.length} histories x ${rounds} rounds`);
  async function* all() {
    for (let r = 0; r < rounds; r++) yield* histories;
  }
  const failed: string[] = [];
  let replays = 0;
  const t0 = performance.now();
  const cpu0 = process.cpuUsage();
  for await (const res of Worker.runReplayHistories({ ...options, replayName: 'bench' }, all())) {
    replays++;
    if (res.error && failed.length < 5) failed.push(`${res.workflowId}: ${String(res.error).slice(0, 300)}`);
  }
  const cpu = process.cpuUsage(cpu0);
  return {
    threaded,
    histories: histories.length,
    replays,
    failed,
    wallMsPerReplay: (performance.now() - t0) / replays,
    cpuMsPerReplay: (cpu.user + cpu.system) / 1000 / replays,
  };
}

export const replayFailures = (r: ReplayResult): string[] => r.failed.map((f) => `did not replay: ${f}`);

export function formatReplay(r: ReplayResult): string {
  return `
## waking an evicted incident: ${r.histories} recorded histories replayed ${r.replays / r.histories} times each${r.threaded ? ' (in a workflow thread, as the worker)' : ''}

| replays | wall per replay | CPU per replay (this process) |
| --- | --- | --- |
| ${r.replays} | ${r.wallMsPerReplay.toFixed(1)} ms | ${r.cpuMsPerReplay.toFixed(1)} ms |
`;
}

if (process.argv[1] && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) {
  runAlone(
    'replay',
    () => benchReplay({ log: (line) => process.stderr.write(`[bench] ${line}\n`) }),
    formatReplay,
    replayFailures,
  );
}
