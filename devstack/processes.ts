/**
 * Supervision of the stack's child processes: each logs to a file of its own, dies with the parent (even on
 * SIGKILL), and is waited for by a readiness probe that fails early, with the log's tail, if the process dies.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import { setPriority } from 'node:os';
import * as path from 'node:path';

export interface Proc {
  name: string;
  child: ChildProcess;
  logPath: string;
  exited: Promise<void>;
}

const live = new Set<ChildProcess>();
let exitHookInstalled = false;

// If the parent dies by SIGKILL or a crash no JS handler runs; the kernel's parent-death signal
// (set via util-linux's setpriv, which then execs the real binary) still takes the children down.
const SETPRIV = ['/usr/bin/setpriv', '/bin/setpriv'].find((p) => fs.existsSync(p));

/** `background`: at the lowest CPU priority (nice 19), so it does not slow the parts a start waits for (at 10 it still took a quarter of both cores). */
export function launch(
  name: string,
  logDir: string,
  cmd: string,
  args: string[],
  env?: Record<string, string>,
  background = false,
): Proc {
  if (!exitHookInstalled) {
    // Covers normal exits and process.exit(); SIGINT/SIGTERM are the caller's business
    // (cli.ts stops the stack; vitest exits, which lands here).
    process.on('exit', () => live.forEach((c) => c.kill('SIGKILL')));
    exitHookInstalled = true;
  }
  const logPath = path.join(logDir, `${name}.log`);
  const fd = fs.openSync(logPath, 'w');
  const [file, argv] = SETPRIV ? [SETPRIV, ['--pdeathsig', 'KILL', '--', cmd, ...args]] : [cmd, args];
  const child = spawn(file, argv, { stdio: ['ignore', fd, fd], ...(env ? { env: { ...process.env, ...env } } : {}) });
  fs.closeSync(fd);
  if (background && child.pid) {
    try {
      setPriority(child.pid, 19);
    } catch {
      // Not allowed here: it runs at normal priority.
    }
  }
  live.add(child);
  const exited = new Promise<void>((resolve) => {
    child.once('error', (err) => {
      fs.appendFileSync(logPath, `\n[devstack] failed to spawn ${cmd}: ${err.message}\n`);
      live.delete(child);
      resolve();
    });
    child.once('exit', () => {
      live.delete(child);
      resolve();
    });
  });
  return { name, child, logPath, exited };
}

export async function kill(proc: Proc): Promise<void> {
  if (proc.child.exitCode !== null || proc.child.signalCode !== null) return;
  proc.child.kill('SIGTERM');
  const timer = setTimeout(() => proc.child.kill('SIGKILL'), 5000); // keeps vitest's 10s teardown budget
  await proc.exited;
  clearTimeout(timer);
}

export function tail(file: string, lines = 30): string {
  try {
    return fs.readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

/** Polls `probe` until it returns true; fails early, with the log tail, if the process dies. */
export async function waitFor(
  proc: Proc,
  what: string,
  timeoutMs: number,
  probe: () => Promise<boolean>,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let lastError = '';
  for (;;) {
    const dead = proc.child.exitCode !== null || proc.child.signalCode !== null;
    if (!dead) {
      try {
        if (await probe()) return;
      } catch (err) {
        lastError = err instanceof Error ? err.message : String(err);
      }
    }
    if (dead || Date.now() > deadline) {
      const why = dead
        ? `exited (${proc.child.exitCode ?? proc.child.signalCode})`
        : `not ready after ${timeoutMs / 1000}s`;
      throw new Error(
        `devstack: ${proc.name} ${why} while waiting for ${what}` +
          (lastError ? ` (last error: ${lastError})` : '') +
          `\n--- ${proc.logPath} (tail) ---\n${tail(proc.logPath)}\n---`,
      );
    }
    await new Promise((r) => setTimeout(r, 100)); // a start waits on each of these in turn
  }
}
