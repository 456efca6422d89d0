/** The worker as operators run it (`pod-responder worker`) in a process of its own, for tests that SIGKILL it. */
import { spawn, type ChildProcess } from 'node:child_process';
import * as path from 'node:path';

const root = path.resolve(import.meta.dirname, '../..');

/** Starts `client/cli.ts worker` with exactly `env`; resolves once it says it started. */
export function startWorkerProcess(env: NodeJS.ProcessEnv): Promise<ChildProcess> {
  const child = spawn(path.join(root, 'node_modules/.bin/tsx'), [path.join(root, 'client/cli.ts'), 'worker'], { env, cwd: root, stdio: ['ignore', 'ignore', 'pipe'], detached: true });
  return new Promise((resolve, reject) => {
    let seen = '';
    child.stderr!.on('data', (d: Buffer) => {
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
