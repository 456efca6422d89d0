/**
 * The image builds the workflow bundle when it is built (`node dist/client/cli.js bundle` in the Dockerfile's final
 * stage), so that a worker starts without webpack: with readOnlyRootFilesystem it could never keep one of its own.
 * Here the image's /app is laid out as the Dockerfile leaves it (package.json, the lockfile, dist/, node_modules),
 * the bundle is built there, and a worker started there must find it instead of bundling.
 */
import { execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdtempSync, rmSync, symlinkSync, unlinkSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { bundleCacheFile } from '../../worker/workflow-bundle.js';
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
    const cached = bundleCacheFile(path.join(app, 'dist/workflows/index.js'));
    if (existsSync(cached)) unlinkSync(cached); // the command must build it, not find one

    const said = execFileSync(process.execPath, [cli, 'bundle'], {
      cwd: app,
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    expect(said).toContain(`workflow bundle ready: ${cached}`);
    expect(existsSync(cached)).toBe(true);

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
    try {
      expect(log).not.toMatch(/Workflow bundle created|webpack/i);
    } finally {
      worker.kill('SIGTERM');
    }
    expect(await exited).toBe(0);
  }, 180_000);
});
