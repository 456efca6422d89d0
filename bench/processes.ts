/**
 * The benchmarks' processes: a forwarder, a worker and a load generator each in a process of its own,
 * so that each one's CPU and memory are its alone, started the way `pod-responder` runs in production.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { createServer, type AddressInfo } from 'node:net';
import * as path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { ALL_ENV_NAMES } from '../config/config.js';
import { parseSamples, total } from '../test/support/prometheus.js';

const REPO_ROOT = fileURLToPath(new URL('..', import.meta.url));
const TSX = pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href;

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
export const envNumber = (name: string, fallback: number) => Number(process.env[name] ?? fallback);

export interface Running {
  child: ChildProcess;
  out: () => string;
  err: () => string;
  exited: Promise<number | null>;
  /** SIGTERM, as an orchestrator would; SIGKILL after 30 s. Resolves with the exit code. */
  stop(): Promise<number | null>;
}

/** `node --import tsx <script>`, the way devstack starts its node processes. */
export function spawnTs(script: string, args: string[], env: NodeJS.ProcessEnv, nodeArgs: string[] = []): Running {
  return spawnNode([...nodeArgs, '--import', TSX, path.join(REPO_ROOT, script), ...args], env);
}

/** `node <args>`, its output kept; killed with this process. */
export function spawnNode(args: string[], env: NodeJS.ProcessEnv): Running {
  const child = spawn(process.execPath, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
  const kill = () => child.kill('SIGKILL');
  process.once('exit', kill); // a failed bench must not leave a process behind
  child.once('exit', () => process.off('exit', kill));
  let out = '';
  let err = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return {
    child,
    out: () => out,
    err: () => err,
    exited,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
      const code = await exited;
      clearTimeout(timer);
      return code;
    },
  };
}

/** The caller's environment without pod-responder's variables: only the bench's settings count. */
export function cleanEnv(): NodeJS.ProcessEnv {
  return Object.fromEntries(Object.entries(process.env).filter(([k]) => !ALL_ENV_NAMES.includes(k)));
}

/** `pod-responder forwarder` on a free loopback port, ready; `config` is written as its config file. */
export async function startForwarderProcess(o: {
  temporalAddress: string;
  taskQueue: string;
  token: string;
  configFile: string;
  cpuProfileDir?: string;
  env?: NodeJS.ProcessEnv;
}) {
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  const proc = spawnTs(
    'client/cli.ts',
    ['forwarder'],
    {
      ...cleanEnv(),
      TEMPORAL_ADDRESS: o.temporalAddress,
      POD_RESPONDER_TASK_QUEUE: o.taskQueue,
      POD_RESPONDER_FORWARDER_HOST: '127.0.0.1',
      POD_RESPONDER_FORWARDER_PORT: String(port),
      POD_RESPONDER_FALCO_TOKEN: o.token,
      POD_RESPONDER_LOG_LEVEL: 'WARN',
      POD_RESPONDER_CONFIG: o.configFile,
      AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
      ...o.env,
    },
    o.cpuProfileDir ? ['--cpu-prof', `--cpu-prof-dir=${o.cpuProfileDir}`] : [],
  );
  for (const deadline = Date.now() + 60_000; ; await sleep(200)) {
    if (proc.child.exitCode !== null)
      throw new Error(`forwarder exited (${proc.child.exitCode}) before ready:\n${proc.out()}${proc.err()}`);
    if (Date.now() > deadline) throw new Error(`forwarder not ready after 60s:\n${proc.out()}${proc.err()}`);
    if (
      await fetch(`${base}/readyz`).then(
        (r) => r.ok,
        () => false,
      )
    )
      break;
  }
  return { ...proc, base };
}

/** `pod-responder worker` against the stack's kube-apiserver, with this policy; `env` adds to (or overrides) its environment. */
export function startWorkerProcess(o: {
  temporalAddress: string;
  taskQueue: string;
  kubeconfig: string;
  cluster: string;
  policy: object;
  env?: NodeJS.ProcessEnv;
  compiled?: boolean;
}): Running {
  const env = {
    ...cleanEnv(),
    TEMPORAL_ADDRESS: o.temporalAddress,
    POD_RESPONDER_TASK_QUEUE: o.taskQueue,
    KUBECONFIG: o.kubeconfig,
    POD_RESPONDER_CLUSTER: o.cluster,
    POD_RESPONDER_POLICY: JSON.stringify(o.policy),
    POD_RESPONDER_LOG_LEVEL: 'ERROR',
    AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
    ...o.env,
  };
  // Compiled, as the image runs it (dist/, from `npm run build`): no TypeScript loader in the process measured.
  return o.compiled
    ? spawnNode([path.join(REPO_ROOT, 'dist/client/cli.js'), 'worker'], env)
    : spawnTs('client/cli.ts', ['worker'], env);
}

export async function freePort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((resolve, reject) => srv.once('error', reject).listen(0, '127.0.0.1', resolve));
  const { port } = srv.address() as AddressInfo;
  await new Promise((r) => srv.close(r));
  return port;
}

/** The child's own figures from /proc: RSS and its high-water mark (bytes), and CPU seconds (user + system). */
export function procSample(pid: number): { rss: number; hwm: number; cpu: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN) * 1024;
  // Fields after the command's closing parenthesis: utime and stime are the 12th and 13th, in clock ticks (100/s on Linux).
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return { rss: kb('VmRSS'), hwm: kb('VmHWM'), cpu: (Number(fields[11]) + Number(fields[12])) / 100 };
}

/** Resolves once the worker says it started; fails with what it said if it exits or takes longer than `timeoutMs`. */
export async function workerStarted(worker: Running, timeoutMs: number): Promise<void> {
  for (const deadline = Date.now() + timeoutMs; !worker.err().includes('"worker started"'); await sleep(10)) {
    if (worker.child.exitCode !== null)
      throw new Error(`worker exited (${worker.child.exitCode}) before it started:\n${worker.out()}${worker.err()}`);
    if (Date.now() > deadline)
      throw new Error(`worker not started after ${timeoutMs / 1000} s:\n${worker.out()}${worker.err()}`);
  }
}

/** A process's own view of itself, from a Prometheus endpoint with prom-client's default metrics. */
export async function sampleProcess(base: string, prefix: string): Promise<{ rss: number; heap: number; cpu: number }> {
  const text = await (await fetch(`${base}/metrics`)).text();
  const value = (name: string) => Number(new RegExp(`^${prefix}${name} (\\S+)`, 'm').exec(text)?.[1] ?? NaN);
  return {
    rss: value('process_resident_memory_bytes'),
    heap: value('nodejs_heap_size_used_bytes'),
    cpu: value('process_cpu_seconds_total'),
  };
}

/**
 * The SDK's sticky-cache counters from a worker's /metrics: a miss is a workflow task whose incident was not
 * cached, so the worker replayed its whole history first.
 */
export async function stickyCache(base: string, taskQueue: string): Promise<{ hits: number; misses: number }> {
  const samples = parseSamples(await (await fetch(`${base}/metrics`)).text());
  const count = (name: string) => total(samples, name, { task_queue: taskQueue });
  return { hits: count('temporal_sticky_cache_hit_total'), misses: count('temporal_sticky_cache_miss_total') };
}

/** Samples a process's memory every 250 ms, one request at a time, until stopped; returns the peaks. */
export function samplePeaks(base: string, prefix: string) {
  return peaksOf(() => sampleProcess(base, prefix));
}

/** Takes `sample` every 250 ms, one at a time, until stopped; returns each figure's peak (a failed sample is skipped). */
export function peaksOf<K extends string>(sample: () => Promise<Record<K, number>>) {
  const peak = {} as Record<K, number>;
  let sampling = true;
  const loop = (async () => {
    while (sampling) {
      const s = await sample().catch(() => undefined);
      for (const k in s) peak[k] = Math.max(peak[k] ?? 0, s[k]);
      await sleep(250);
    }
  })();
  return {
    async stop() {
      sampling = false;
      await loop;
      return peak;
    },
  };
}

/** Runs `fn` over `items`, `limit` at a time. */
export async function eachLimited<T>(items: T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: limit }, async () => {
      while (next < items.length) await fn(items[next++]!);
    }),
  );
}

/** The entry point of a bench script run alone: prints its table; a failed check (or a crash) exits 1. */
export function runAlone<R>(
  name: string,
  bench: () => Promise<R>,
  format: (r: R) => string,
  failures: (r: R) => string[],
): void {
  bench().then(
    (result) => {
      process.stdout.write(format(result));
      const failed = failures(result);
      for (const f of failed) process.stderr.write(`FAIL: ${f}\n`);
      process.exitCode = failed.length ? 1 : 0;
    },
    (err: unknown) => {
      process.stderr.write(`${name} bench failed: ${err instanceof Error ? err.stack : String(err)}\n`);
      process.exit(1);
    },
  );
}
