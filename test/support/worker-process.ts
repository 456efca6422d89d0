/** The worker as operators run it (`pod-responder worker`) in a process of its own, for tests that SIGKILL it. */
import { spawn, type ChildProcess } from 'node:child_process';
import * as path from 'node:path';

const root = path.resolve(import.meta.dirname, '../..');

export interface WorkerProcessOptions {
  /** A compiled CLI (`dist/client/cli.js`) run with node, instead of the source with tsx. */
  compiledCli?: string;
  cwd?: string;
  /** Everything the worker prints, stdout and stderr. */
  onOutput?: (text: string) => void;
}

/** Starts `client/cli.ts worker` (or a compiled CLI) with exactly `env`; resolves once it says it started. */
export function startWorkerProcess(env: NodeJS.ProcessEnv, o: WorkerProcessOptions = {}): Promise<ChildProcess> {
  const [command, args] = o.compiledCli
    ? [process.execPath, [o.compiledCli, 'worker']]
    : [path.join(root, 'node_modules/.bin/tsx'), [path.join(root, 'client/cli.ts'), 'worker']];
  const child = spawn(command, args, {
    env,
    cwd: o.cwd ?? root,
    stdio: ['ignore', o.onOutput ? 'pipe' : 'ignore', 'pipe'],
    detached: true,
  });
  child.stdout?.on('data', (d: Buffer) => o.onOutput?.(d.toString()));
  return new Promise((resolve, reject) => {
    let seen = '';
    child.stderr!.on('data', (d: Buffer) => {
      o.onOutput?.(d.toString());
      seen += d.toString();
      if (seen.includes('"msg":"worker started"')) resolve(child);
    });
    child.on('exit', (code) => reject(new Error(`worker exited ${code}: ${seen.slice(-2000)}`)));
  });
}

/** SIGKILL the worker and everything it started: no graceful shutdown, no finally blocks. */
export function killProcessGroup(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    child.once('exit', () => resolve());
    process.kill(-child.pid!, 'SIGKILL');
  });
}
