/**
 * `npm run bench:image`: the image as the chart runs it (devstack/image.ts builds it if its sources changed). Its size
 * beside its base's (the floor: what Node.js on Debian costs before pod-responder), and, BENCH_IMAGE_STARTS (default 5)
 * times, a worker container started on a Temporal dev server of its own, read-only root, the chart's heap and
 * MALLOC_ARENA_MAX=2, host network: the time from `podman run` to "worker started" (polling), the CPU the worker
 * process used by then, and its RSS 3 s later, idle (from /proc on the host). Interleaved in the same run, the floors:
 * a container of the same image running a bare `node -e ''`, and the same worker compiled on the host (this machine's
 * Node.js, the same environment), which is what the container adds to.
 */
import { execFileSync, spawn } from 'node:child_process';
import { statSync } from 'node:fs';
import { createRequire } from 'node:module';
import * as path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { ensureImage, podmanMissing } from '../devstack/image.js';
import { ownTemporal } from '../devstack/temporal-server.js';
import { workflowBundle } from '../worker/workflow-bundle.js';
import { CHART_HEAP_MIB } from './parked.js';
import { cleanEnv, envNumber, procSample, runAlone, sleep, spawnNode } from './processes.js';
import { quantile } from './storm-client.js';

interface Start {
  polling: number;
  cpuAtPolling: number;
  rssIdle: number;
  exitCode: number | null;
}

export interface ImageResult {
  skipped?: string;
  imageBytes: number;
  baseBytes: number;
  archiveBytes: number;
  starts: Start[];
  hostStarts: Start[];
  bareContainerMs: number[];
}

const READ_ONLY = ['--read-only', '--read-only-tmpfs=false', '--tmpfs', '/tmp:rw,size=64m'];
const STARTED = '"msg":"worker started"';

export async function benchImage(o: { starts?: number; log?: (line: string) => void } = {}): Promise<ImageResult> {
  const log = o.log ?? (() => {});
  const result: ImageResult = {
    imageBytes: 0,
    baseBytes: 0,
    archiveBytes: 0,
    starts: [],
    hostStarts: [],
    bareContainerMs: [],
  };
  const missing = podmanMissing();
  if (missing.length) return { ...result, skipped: `podman cannot run here: needs ${missing.join('; ')}` };
  const n = o.starts ?? envNumber('BENCH_IMAGE_STARTS', 5);
  const image = await ensureImage(log);
  const podman = (...args: string[]) => execFileSync(image.podman, args, { encoding: 'utf8' }).trim();
  const size = (ref: string) => Number(podman('image', 'inspect', '--format', '{{.Size}}', ref));
  result.imageBytes = size(image.ref);
  result.baseBytes = size('docker.io/library/node:22-bookworm-slim');
  result.archiveBytes = statSync(image.archive).size;

  // The host floor runs dist/ as the image does, with its workflow bundle cached as the image has it.
  const root = fileURLToPath(new URL('..', import.meta.url));
  execFileSync(
    process.execPath,
    [createRequire(import.meta.url).resolve('typescript/bin/tsc'), '-p', 'tsconfig.build.json'],
    { cwd: root, stdio: 'inherit' },
  );
  await workflowBundle(path.join(root, 'dist/workflows/index.js'));

  const temporal = await ownTemporal();
  temporal.start();
  const workerEnv = (taskQueue: string) => ({
    TEMPORAL_ADDRESS: temporal.address,
    POD_RESPONDER_TASK_QUEUE: taskQueue,
    POD_RESPONDER_METRICS_PORT: '0',
    NODE_OPTIONS: `--max-old-space-size=${CHART_HEAP_MIB}`,
    MALLOC_ARENA_MAX: '2',
  });
  try {
    for (let i = 0; i < n; i++) {
      const t0 = performance.now();
      podman('run', '--rm', '--network', 'host', ...READ_ONLY, '--entrypoint', 'node', image.ref, '-e', '');
      result.bareContainerMs.push(performance.now() - t0);

      // The same worker on the host.
      const hostStarted = performance.now();
      const host = spawnNode([path.join(root, 'dist/client/cli.js'), 'worker'], {
        ...cleanEnv(),
        ...workerEnv(`image-bench-host-${i}`),
      });
      while (!host.err().includes(STARTED)) {
        if (host.child.exitCode !== null) throw new Error(`host worker exited before it started:\n${host.err()}`);
        await sleep(10);
      }
      const hostPolling = performance.now() - hostStarted;
      const hostCpu = procSample(host.child.pid!).cpu;
      await sleep(3000);
      const hostRss = procSample(host.child.pid!).rss;
      result.hostStarts.push({
        polling: hostPolling,
        cpuAtPolling: hostCpu,
        rssIdle: hostRss,
        exitCode: await host.stop(),
      });

      // In the image.
      const name = `pod-responder-bench-${process.pid}-${i}`;
      const started = performance.now();
      const env = Object.entries(workerEnv(`image-bench-${i}`)).flatMap(([k, v]) => ['-e', `${k}=${v}`]);
      const child = spawn(
        image.podman,
        ['run', '--rm', '--name', name, '--network', 'host', ...READ_ONLY, ...env, image.ref, 'worker'],
        { stdio: ['ignore', 'ignore', 'pipe'] },
      );
      let err = '';
      const exited = new Promise<number | null>((r) => child.once('exit', r));
      const polling = await new Promise<number>((resolve, reject) => {
        child.stderr.on('data', (d: Buffer) => {
          err += d.toString();
          if (err.includes(STARTED)) resolve(performance.now() - started);
        });
        void exited.then((code) => reject(new Error(`worker container exited (${code}) before it started:\n${err}`)));
      });
      const pid = Number(podman('inspect', '--format', '{{.State.Pid}}', name));
      const cpuAtPolling = procSample(pid).cpu;
      await sleep(3000);
      const rssIdle = procSample(pid).rss;
      podman('stop', '-t', '20', name);
      result.starts.push({ polling, cpuAtPolling, rssIdle, exitCode: await exited });
      log(
        `image: ${i + 1}/${n}: polling after ${polling.toFixed(0)} ms (host ${hostPolling.toFixed(0)} ms), ` +
          `RSS idle ${(rssIdle / 2 ** 20).toFixed(0)} MiB (host ${(hostRss / 2 ** 20).toFixed(0)} MiB)`,
      );
    }
  } finally {
    await temporal.stop();
  }
  return result;
}

export function formatImage(r: ImageResult): string {
  if (r.skipped) return `\n## the image: skipped (${r.skipped})\n`;
  const mib = (b: number) => `${(b / 2 ** 20).toFixed(0)} MiB`;
  const ms = (x: number) => `${x.toFixed(0)} ms`;
  const cpu = (x: number) => `${x.toFixed(2)} s`;
  const range = (xs: number[], f: (x: number) => string) =>
    `${f(quantile(xs, 0.5))} (${f(Math.min(...xs))} to ${f(Math.max(...xs))})`;
  const row = (label: string, pick: (x: Start) => number, f: (x: number) => string) =>
    `| ${label} | ${range(r.starts.map(pick), f)} | ${range(r.hostStarts.map(pick), f)} |`;
  const exits = (xs: Start[]) => [...new Set(xs.map((x) => x.exitCode))].join(', ');
  return `
## the image: podman, read-only root, the chart's heap, host network (${r.starts.length} starts; median, range)

| | |
| --- | --- |
| image size (podman) | ${mib(r.imageBytes)} |
| floor: its base, node:22-bookworm-slim as assembled here | ${mib(r.baseBytes)} |
| \`docker save\` archive | ${mib(r.archiveBytes)} |

| a worker, interleaved | in the image (\`podman run\`) | floor: compiled on the host (Node.js ${process.versions.node}) |
| --- | --- | --- |
${row('start -> polling', (x) => x.polling, ms)}
${row('its CPU by then', (x) => x.cpuAtPolling, cpu)}
${row('RSS idle, 3 s later', (x) => x.rssIdle, mib)}
| exit on SIGTERM | ${exits(r.starts)} | ${exits(r.hostStarts)} |
| floor: \`podman run\` of a bare \`node -e ''\` | ${range(r.bareContainerMs, ms)} | |
`;
}

export function imageFailures(r: ImageResult): string[] {
  return [
    ...r.starts.filter((x) => x.exitCode !== 0).map((x) => `a worker container exited ${x.exitCode} on SIGTERM`),
    ...r.hostStarts.filter((x) => x.exitCode !== 0).map((x) => `a host worker exited ${x.exitCode} on SIGTERM`),
  ];
}

if (process.argv[1] && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) {
  runAlone(
    'image',
    () => benchImage({ log: (line) => process.stderr.write(`[bench] ${line}\n`) }),
    formatImage,
    imageFailures,
  );
}
