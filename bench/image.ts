/**
 * `npm run bench:image`: the image as the chart runs it (devstack/image.ts builds it if its sources changed). Its size
 * beside its base's (the floor: what Node.js on Debian costs before pod-responder), and, BENCH_IMAGE_STARTS (default 5)
 * times, a worker container started on a Temporal dev server of its own, read-only root, the chart's heap and
 * MALLOC_ARENA_MAX=2, host network: the time from `podman run` to "worker started" (polling), and the worker
 * process's RSS 3 s later, idle (from /proc on the host). The floor in the same run: a container of the same image
 * running a bare `node -e ''`.
 */
import { spawn } from 'node:child_process';
import { statSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import { ensureImage, podmanMissing } from '../devstack/image.js';
import { ownTemporal } from '../devstack/temporal-server.js';
import { CHART_HEAP_MIB } from './parked.js';
import { envNumber, procSample, runAlone, sleep } from './processes.js';
import { quantile } from './storm-client.js';

export interface ImageResult {
  skipped?: string;
  imageBytes: number;
  baseBytes: number;
  archiveBytes: number;
  starts: { polling: number; rssIdle: number; exitCode: number | null }[];
  bareContainerMs: number[];
}

const READ_ONLY = ['--read-only', '--read-only-tmpfs=false', '--tmpfs', '/tmp:rw,size=64m'];

export async function benchImage(o: { starts?: number; log?: (line: string) => void } = {}): Promise<ImageResult> {
  const log = o.log ?? (() => {});
  const result: ImageResult = { imageBytes: 0, baseBytes: 0, archiveBytes: 0, starts: [], bareContainerMs: [] };
  const missing = podmanMissing();
  if (missing.length) return { ...result, skipped: `podman cannot run here: needs ${missing.join('; ')}` };
  const n = o.starts ?? envNumber('BENCH_IMAGE_STARTS', 5);
  const image = await ensureImage(log);
  const podman = (...args: string[]) => execFileSync(image.podman, args, { encoding: 'utf8' }).trim();
  result.imageBytes = Number(podman('image', 'inspect', '--format', '{{.Size}}', image.ref));
  result.baseBytes = Number(
    podman('image', 'inspect', '--format', '{{.Size}}', 'docker.io/library/node:22-bookworm-slim'),
  );
  result.archiveBytes = statSync(image.archive).size;

  const temporal = await ownTemporal();
  temporal.start();
  try {
    for (let i = 0; i < n; i++) {
      const t0 = performance.now();
      podman('run', '--rm', '--network', 'host', ...READ_ONLY, '--entrypoint', 'node', image.ref, '-e', '');
      result.bareContainerMs.push(performance.now() - t0);

      const name = `pod-responder-bench-${process.pid}-${i}`;
      const started = performance.now();
      const child = spawn(
        image.podman,
        [
          'run',
          '--rm',
          '--name',
          name,
          '--network',
          'host',
          ...READ_ONLY,
          '-e',
          `TEMPORAL_ADDRESS=${temporal.address}`,
          '-e',
          `POD_RESPONDER_TASK_QUEUE=image-bench-${i}`,
          '-e',
          'POD_RESPONDER_METRICS_PORT=0',
          '-e',
          `NODE_OPTIONS=--max-old-space-size=${CHART_HEAP_MIB}`,
          '-e',
          'MALLOC_ARENA_MAX=2',
          image.ref,
          'worker',
        ],
        { stdio: ['ignore', 'ignore', 'pipe'] },
      );
      let err = '';
      const exited = new Promise<number | null>((r) => child.once('exit', r));
      // Temporal's first start may still be coming up: the worker retries its connection meanwhile, which counts.
      const polling = await new Promise<number>((resolve, reject) => {
        child.stderr.on('data', (d: Buffer) => {
          err += d.toString();
          if (err.includes('"msg":"worker started"')) resolve(performance.now() - started);
        });
        void exited.then((code) => reject(new Error(`worker container exited (${code}) before it started:\n${err}`)));
      });
      await sleep(3000);
      const pid = Number(podman('inspect', '--format', '{{.State.Pid}}', name));
      const rssIdle = procSample(pid).rss;
      podman('stop', '-t', '20', name);
      const exitCode = await exited;
      result.starts.push({ polling, rssIdle, exitCode });
      log(
        `image: ${i + 1}/${n}: polling after ${polling.toFixed(0)} ms, RSS idle ${(rssIdle / 2 ** 20).toFixed(0)} MiB`,
      );
    }
  } finally {
    await temporal.stop();
  }
  return result;
}

export function formatImage(r: ImageResult): string {
  if (r.skipped) return `\n## the image: skipped (${r.skipped})\n`;
  const s = r.starts;
  const mib = (b: number) => `${(b / 2 ** 20).toFixed(0)} MiB`;
  const range = (xs: number[], f: (x: number) => string) =>
    `${f(quantile(xs, 0.5))} (${f(Math.min(...xs))} to ${f(Math.max(...xs))})`;
  return `
## the image: podman, read-only root, the chart's heap, host network (${s.length} starts; median, range)

| | |
| --- | --- |
| image size (podman) | ${mib(r.imageBytes)} |
| floor: its base, node:22-bookworm-slim as assembled here | ${mib(r.baseBytes)} |
| \`docker save\` archive | ${mib(r.archiveBytes)} |
| \`podman run\` -> worker polling | ${range(
    s.map((x) => x.polling),
    (x) => `${x.toFixed(0)} ms`,
  )} |
| worker RSS idle, 3 s later | ${range(
    s.map((x) => x.rssIdle),
    mib,
  )} |
| floor: \`podman run\` of a bare \`node -e ''\` | ${range(r.bareContainerMs, (x) => `${x.toFixed(0)} ms`)} |
| exit on SIGTERM (\`podman stop\`) | ${[...new Set(s.map((x) => x.exitCode))].join(', ')} |
`;
}

export function imageFailures(r: ImageResult): string[] {
  return r.starts.filter((x) => x.exitCode !== 0).map((x) => `a worker container exited ${x.exitCode} on SIGTERM`);
}

if (process.argv[1] && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) {
  runAlone(
    'image',
    () => benchImage({ log: (line) => process.stderr.write(`[bench] ${line}\n`) }),
    formatImage,
    imageFailures,
  );
}
