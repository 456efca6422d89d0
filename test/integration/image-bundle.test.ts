/**
 * `npm run build` ends with `node dist/client/cli.js bundle`, which writes dist/workflow-bundle.js, so that a compiled
 * worker (the image's) starts without webpack: with readOnlyRootFilesystem it could never keep one of its own. Here
 * /app is laid out as the Dockerfile leaves it (package.json, the lockfile, dist/, node_modules), the bundle is built
 * there, and a worker started there must run it instead of bundling; once the compiled workflow code changes, the
 * bundle no longer matches it, and a worker must say so and bundle for itself rather than run the old code.
 */
import { execFileSync } from 'node:child_process';
import { appendFileSync, copyFileSync, existsSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { startWorkerProcess } from '../support/worker-process.js';

const root = fileURLToPath(new URL('../../', import.meta.url));

describe('the workflow bundle built into the image', () => {
  const app = mkdtempSync(path.join(tmpdir(), 'pod-responder-image-'));
  afterAll(() => rmSync(app, { recursive: true, force: true }));

  it('is built by `cli.js bundle` where the worker will run, and the worker starts on it without webpack', async () => {
    // As the Dockerfile's final stage: package.json, the lockfile, the compiled dist/ and node_modules, nothing else.
    execFileSync(
      process.execPath,
      [
        createRequire(import.meta.url).resolve('typescript/bin/tsc'),
        '-p',
        'tsconfig.build.json',
        '--outDir',
        path.join(app, 'dist'),
      ],
      { cwd: root },
    );
    for (const f of ['package.json', 'package-lock.json']) copyFileSync(path.join(root, f), path.join(app, f));
    symlinkSync(path.join(root, 'node_modules'), path.join(app, 'node_modules'));
    const cli = path.join(app, 'dist/client/cli.js');
    const prebuilt = path.join(app, 'dist/workflow-bundle.js');

    const said = execFileSync(process.execPath, [cli, 'bundle'], {
      cwd: app,
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    expect(said).toContain(`workflow bundle ready: ${prebuilt}`);
    expect(existsSync(prebuilt)).toBe(true);

    /** Starts a worker in /app, stops it once polling, and returns what it printed meanwhile. */
    const start = async (): Promise<string> => {
      let log = '';
      const worker = await startWorkerProcess(
        {
          PATH: process.env.PATH,
          TEMPORAL_ADDRESS: inject('temporalAddress'),
          KUBECONFIG: inject('kubeconfigPath'),
          POD_RESPONDER_CLUSTER: 'local',
          POD_RESPONDER_TASK_QUEUE: `image-bundle-${process.pid}`,
          POD_RESPONDER_METRICS_PORT: '0',
          POD_RESPONDER_LOG_LEVEL: 'INFO',
          AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
        },
        { compiledCli: cli, cwd: app, onOutput: (text) => (log += text) },
      );
      const exited = new Promise<number | null>((resolve) => worker.once('exit', resolve));
      worker.kill('SIGTERM');
      expect(await exited).toBe(0);
      return log;
    };

    expect(await start()).not.toMatch(/Workflow bundle created|bundling now|webpack/i);

    // Compiled again without the bundle step, with a change to the workflow code: the bundle is not that code.
    appendFileSync(path.join(app, 'dist/workflows/index.js'), '\n// changed\n');
    const log = await start();
    expect(log).toContain(`the workflow bundle at ${prebuilt} was built from other code: bundling now`);
    expect(log).toContain('Workflow bundle created');
  }, 180_000);
});
