/**
 * What waking an evicted incident costs the worker (`npm run bench:replay`): the recorded histories
 * (test/histories/, the playbook's paths: approvals, holds, floods, the EKS executor) replayed against
 * today's workflow bundle, BENCH_REPLAY_ROUNDS (20) times each, in this process. An incident the cache evicted
 * (parked awaiting approval, holding) is replayed like this when a message or timer wakes it, so approving
 * thousands at once costs about this much CPU per incident per workflow task. Needs no stack.
 */
import { historyFromJSON } from '@temporalio/common/lib/proto-utils.js';
import { Worker } from '@temporalio/worker';
import { readdirSync, readFileSync } from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { workflowBundle } from '../worker/workflow-bundle.js';
import { workflowsPath } from '../worker/worker.js';
import { envNumber, runAlone } from './processes.js';

const HISTORIES = fileURLToPath(new URL('../test/histories/', import.meta.url));

export interface ReplayResult {
  histories: number;
  replays: number;
  failed: string[];
  wallMsPerReplay: number;
  cpuMsPerReplay: number;
}

export async function benchReplay(o: { rounds?: number; log?: (line: string) => void } = {}): Promise<ReplayResult> {
  const rounds = o.rounds ?? envNumber('BENCH_REPLAY_ROUNDS', 20);
  const histories = readdirSync(HISTORIES)
    .filter((f) => f.endsWith('.json'))
    .map((f) => ({
      workflowId: f,
      history: historyFromJSON(JSON.parse(readFileSync(path.join(HISTORIES, f), 'utf8'))),
    }));
  const bundle = await workflowBundle(workflowsPath());
  // One warm-up pass: the first replay compiles the bundle in the sandbox.
  for await (const _ of Worker.runReplayHistories({ workflowBundle: bundle, replayName: 'warm-up' }, histories)) void _;
  o.log?.(`replay: ${histories.length} histories x ${rounds} rounds`);
  async function* all() {
    for (let r = 0; r < rounds; r++) yield* histories;
  }
  const failed: string[] = [];
  let replays = 0;
  const t0 = performance.now();
  const cpu0 = process.cpuUsage();
  for await (const res of Worker.runReplayHistories({ workflowBundle: bundle, replayName: 'bench' }, all())) {
    replays++;
    if (res.error && failed.length < 5) failed.push(`${res.workflowId}: ${String(res.error).slice(0, 300)}`);
  }
  const cpu = process.cpuUsage(cpu0);
  return {
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
## waking an evicted incident: ${r.histories} recorded histories replayed ${r.replays / r.histories} times each

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
