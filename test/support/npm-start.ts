/**
 * `npm start` as a user runs it (devstack/start.mjs), for the tests that drive it: a user's environment, a devstack
 * build cache of the test's own, and waiting for a line of its output.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));
export const START = path.join(ROOT, 'devstack/start.mjs');

/** A build cache and a state dir for one test file; `remove` deletes both. */
export function npmStartPlace(): { cache: string; stateDir: string; remove: () => void } {
  // Inside the repository, as the real one is (node_modules/.cache/pod-responder/devstack): the build's imports of
  // packages resolve from there.
  mkdirSync(path.join(ROOT, 'node_modules/.cache/pod-responder'), { recursive: true });
  const cache = mkdtempSync(path.join(ROOT, 'node_modules/.cache/pod-responder/devstack-test-'));
  const stateDir = mkdtempSync(path.join(tmpdir(), 'pod-responder-npm-start-'));
  return {
    cache,
    stateDir,
    remove: () => {
      rmSync(cache, { recursive: true, force: true });
      rmSync(stateDir, { recursive: true, force: true });
    },
  };
}

/** What a user's shell has: none of the test runner's Temporal, Kubernetes or AWS settings (the built tools are shared). */
export function userEnv(cache: string, extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env = Object.fromEntries(
    Object.entries(process.env).filter(
      ([k]) => k === 'POD_RESPONDER_TOOLS_DIR' || !/^(TEMPORAL_|KUBECONFIG$|POD_RESPONDER_|AWS_)/.test(k),
    ),
  );
  return { ...env, POD_RESPONDER_DEVSTACK_CACHE: cache, ...extra };
}

/** `npm start -- <args>` in its own process group (which Ctrl-C signals as a whole), collecting its output. */
export function startDev(
  args: string[],
  env: NodeJS.ProcessEnv,
): {
  child: ChildProcess;
  output: () => string;
  waitFor: (line: RegExp, timeoutMs: number) => Promise<RegExpExecArray>;
} {
  const child = spawn(process.execPath, [START, 'dev', ...args], {
    cwd: ROOT,
    env,
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (out += d.toString()));
  const output = () => out;
  const waitFor = async (line: RegExp, timeoutMs: number): Promise<RegExpExecArray> => {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const m = line.exec(out);
      if (m) return m;
      if (child.exitCode !== null)
        throw new Error(`npm start exited (${child.exitCode}) before printing ${line}:\n${out}`);
      if (Date.now() > deadline) throw new Error(`npm start did not print ${line} in ${timeoutMs / 1000}s:\n${out}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  };
  return { child, output, waitFor };
}

/** Ctrl-C to the process group; resolves with the exit code. */
export async function interrupt(child: ChildProcess): Promise<number | null> {
  const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
  process.kill(-child.pid!, 'SIGINT');
  return exited;
}
