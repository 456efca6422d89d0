/**
 * `npm run bench:worker-start`: what a worker costs before its first incident. BENCH_WORKER_STARTS (default 5)
 * times, a compiled worker (as the image runs it, with the chart's heap and MALLOC_ARENA_MAX=2) is started on a
 * local stack with the direct executor and the prebuilt workflow bundle (dist/workflow-bundle.js): the time from spawn to "worker started"
 * (polling), the CPU it used by then, and its RSS 3 s later, idle (from /proc). Then it is stopped with SIGTERM.
 * The floor in the same run: a bare `node -e ''` start.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { startStack } from '../devstack/stack.js';
import { policySchema } from '../domain/policy.js';
import { CHART_HEAP_MIB } from './parked.js';
import { envNumber, freePort, procSample, runAlone, sleep, startWorkerProcess, workerStarted } from './processes.js';
import { quantile } from './storm-client.js';

export interface WorkerStartResult {
  starts: { polling: number; cpuAtPolling: number; rssIdle: number; exitCode: number | null }[];
  bareNodeMs: number[];
}

export async function benchWorkerStart(
  o: { starts?: number; log?: (line: string) => void } = {},
): Promise<WorkerStartResult> {
  const log = o.log ?? (() => {});
  const n = o.starts ?? envNumber('BENCH_WORKER_STARTS', 5);
  const root = fileURLToPath(new URL('..', import.meta.url));
  execFileSync(
    process.execPath,
    [createRequire(import.meta.url).resolve('typescript/bin/tsc'), '-p', 'tsconfig.build.json'],
    { cwd: root, stdio: 'inherit' },
  );
  // The bundle step of `npm run build`: the worker runs dist/workflow-bundle.js, as the image's does.
  execFileSync(process.execPath, [path.join(root, 'dist/client/cli.js'), 'bundle'], { cwd: root, stdio: 'inherit' });
  const stateDir = mkdtempSync(path.join(tmpdir(), 'pod-responder-worker-start-'));
  const stack = await startStack({ stateDir, headless: true, log: () => {} });
  const result: WorkerStartResult = { starts: [], bareNodeMs: [] };
  try {
    for (let i = 0; i < n; i++) {
      const t0 = performance.now();
      execFileSync(process.execPath, ['-e', '']);
      result.bareNodeMs.push(performance.now() - t0);

      const metricsPort = await freePort();
      const started = performance.now();
      const worker = startWorkerProcess({
        temporalAddress: stack.temporalAddress,
        taskQueue: `worker-start-${i}`,
        kubeconfig: stack.kubeconfigPath,
        cluster: 'local',
        policy: policySchema.parse({}),
        env: {
          POD_RESPONDER_METRICS_HOST: '127.0.0.1',
          POD_RESPONDER_METRICS_PORT: String(metricsPort),
          NODE_OPTIONS: `--max-old-space-size=${CHART_HEAP_MIB}`,
          MALLOC_ARENA_MAX: '2',
        },
        compiled: true,
      });
      await workerStarted(worker, 60_000);
      const polling = performance.now() - started;
      const cpuAtPolling = procSample(worker.child.pid!).cpu;
      await sleep(3000);
      const rssIdle = procSample(worker.child.pid!).rss;
      const exitCode = await worker.stop();
      result.starts.push({ polling, cpuAtPolling, rssIdle, exitCode });
      log(
        `worker-start: ${i + 1}/${n}: polling after ${polling.toFixed(0)} ms, RSS idle ${(rssIdle / 2 ** 20).toFixed(0)} MiB`,
      );
    }
  } finally {
    await stack.stop();
    rmSync(stateDir, { recursive: true, force: true });
  }
  return result;
}

export function formatWorkerStart(r: WorkerStartResult): string {
  const s = r.starts;
  const mib = (b: number) => `${(b / 2 ** 20).toFixed(0)} MiB`;
  const range = (xs: number[], f: (x: number) => string) =>
    `${f(quantile(xs, 0.5))} (${f(Math.min(...xs))} to ${f(Math.max(...xs))})`;
  return `
## worker start: compiled, the chart's heap, direct executor, prebuilt workflow bundle (${s.length} starts; median, range)

| | |
| --- | --- |
| spawn -> polling | ${range(
    s.map((x) => x.polling),
    (x) => `${x.toFixed(0)} ms`,
  )} |
| CPU by then | ${range(
    s.map((x) => x.cpuAtPolling),
    (x) => `${x.toFixed(2)} s`,
  )} |
| RSS idle, 3 s later | ${range(
    s.map((x) => x.rssIdle),
    mib,
  )} |
| floor: a bare \`node -e ''\` | ${range(r.bareNodeMs, (x) => `${x.toFixed(0)} ms`)} |
| exit on SIGTERM | ${[...new Set(s.map((x) => x.exitCode))].join(', ')} |
`;
}

export function workerStartFailures(r: WorkerStartResult): string[] {
  return r.starts.filter((x) => x.exitCode !== 0).map((x) => `a worker exited ${x.exitCode} on SIGTERM`);
}

if (process.argv[1] && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) {
  runAlone(
    'worker-start',
    () => benchWorkerStart({ log: (line) => process.stderr.write(`[bench] ${line}\n`) }),
    formatWorkerStart,
    workerStartFailures,
  );
}
