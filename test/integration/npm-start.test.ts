/**
 * `npm start` as a user runs it: devstack/start.mjs transpiles the devstack once into its cache and runs it on
 * plain Node.js. Its own stack, on free ports and in a state dir of its own, beside the tests' stack.
 */
import { AppsV1Api } from '@kubernetes/client-node';
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { kubeConfigFromFile } from '../../remediation/kube.js';
import { interrupt, npmStartPlace, ROOT, START, startDev, userEnv as userEnvIn } from '../support/npm-start.js';

const { cache, stateDir, remove } = npmStartPlace();
afterAll(remove);
const userEnv = (extra: NodeJS.ProcessEnv = {}) => userEnvIn(cache, extra);

interface Manifest {
  build: string;
  inputs: Record<string, string>;
}
const manifest = (): Manifest => JSON.parse(readFileSync(path.join(cache, 'manifest.json'), 'utf8')) as Manifest;

function runTools() {
  const r = spawnSync(process.execPath, [START, 'tools'], {
    cwd: ROOT,
    env: userEnv(),
    encoding: 'utf8',
    timeout: 60_000,
  });
  expect(r.status, r.stderr).toBe(0);
  // The devstack found tools.sh next to its source: each module's import.meta.url is its source's.
  expect(r.stdout).toMatch(/^kubeApiserver +\/.*kube-apiserver$/m);
}

describe('npm start (devstack/start.mjs)', () => {
  it('transpiles once, runs the build while no file it was built from changes, and transpiles again after one does', () => {
    runTools();
    const first = manifest();
    expect(Object.keys(first.inputs)).toEqual(
      expect.arrayContaining(['devstack/cli.ts', 'devstack/stack.ts', 'devstack/dev.ts', 'worker/worker.ts']),
    );

    runTools();
    expect(manifest().build).toBe(first.build);

    // As if worker/worker.ts had been edited since the build.
    writeFileSync(
      path.join(cache, 'manifest.json'),
      JSON.stringify({ ...first, inputs: { ...first.inputs, 'worker/worker.ts': '0'.repeat(64) } }),
    );
    runTools();
    const second = manifest();
    expect(second.build).not.toBe(first.build);
    expect(second.inputs['worker/worker.ts']).toBe(first.inputs['worker/worker.ts']);
    // The earlier build is kept: a stack started from it may still load one of its chunks.
    expect(
      readdirSync(cache)
        .filter((n) => n.startsWith('build-'))
        .sort(),
    ).toEqual([first.build, second.build].sort());
  }, 120_000);

  it('refuses an unknown or incomplete option by name, with the usage, exit 2, before starting anything', () => {
    for (const [args, message] of [
      [['dev', '--bogus'], "Unknown option '--bogus'"],
      [['dev', '--aws'], "Unknown option '--aws'"], // up's option: dev always has AWS
      [['up', '--state-dir'], "Option '--state-dir <value>' argument missing"],
    ] as const) {
      const r = spawnSync(process.execPath, [START, ...args], {
        cwd: ROOT,
        env: userEnv(),
        encoding: 'utf8',
        timeout: 60_000,
      });
      expect(r.status).toBe(2);
      expect(r.stderr.split('\n').slice(0, 2)).toEqual([
        message,
        expect.stringMatching(/^usage: npm start -- \[--free-ports\]/),
      ]);
      expect(r.stdout).toBe('');
    }
  }, 120_000);

  it('API-only (POD_RESPONDER_REAL_NODE=0): starts the stack, a worker and the demo; the demo alert suspends its Deployment; Ctrl-C stops every process', async () => {
    // The real node's own npm start test is test/node/npm-start.test.ts; this one needs no root and runs beside it.
    const { child, output, waitFor } = startDev(
      ['--free-ports', '--state-dir', stateDir],
      userEnv({ POD_RESPONDER_REAL_NODE: '0' }),
    );
    try {
      await waitFor(/evidence bucket \S+ ready/, 150_000);
      await waitFor(/--data-binary @/, 60_000);
      const out = output();
      expect(out).not.toMatch(/real node /);
      const forwarder = /forwarder on (http:\/\/\S+) \(falco token: (\S+);/.exec(out)!;
      const falcoFile = /--data-binary @(\S+)/.exec(out)![1]!;
      const [, namespace, deployment] = /demo: Deployment ([^/\s]+)\/(\S+) with pod/.exec(out)!;
      const kubeconfig = /kubeconfig +(\S+)/.exec(out)![1]!;

      const res = await fetch(`${forwarder[1]}/v1/alerts/falco?cluster=local`, {
        method: 'POST',
        headers: { authorization: `Bearer ${forwarder[2]}`, 'content-type': 'application/json' },
        body: readFileSync(falcoFile),
      });
      expect(res.status).toBe(202);
      expect(((await res.json()) as { results: { outcome: string }[] }).results.map((r) => r.outcome)).toEqual([
        'accepted',
      ]);
      // The forwarder is on the worker's connection (all in one): the incident started eagerly.
      const metrics = await (await fetch(`${forwarder[1]}/metrics`)).text();
      expect(metrics).toMatch(/^pod_responder_forwarder_eager_starts_total\{result="eager"\} 1$/m);

      // The demo's Critical alert suspends the Deployment: scaled to 0.
      const apps = kubeConfigFromFile(kubeconfig).makeApiClient(AppsV1Api);
      const deadline = Date.now() + 60_000;
      let replicas: number | undefined;
      while (Date.now() < deadline && replicas !== 0) {
        replicas = (await apps.readNamespacedDeployment({ namespace: namespace!, name: deployment! })).spec?.replicas;
        if (replicas !== 0) await new Promise((r) => setTimeout(r, 250));
      }
      expect(replicas).toBe(0);

      expect(await interrupt(child)).toBe(0);
      expect(existsSync(path.join(stateDir, 'stack.pid'))).toBe(false);
      // etcd, kube-apiserver, Temporal, moto and the AWS front ran in its process group: none is left.
      expect(spawnSync('pgrep', ['-g', String(child.pid)], { encoding: 'utf8' }).stdout.trim()).toBe('');
    } finally {
      if (child.exitCode === null) process.kill(-child.pid!, 'SIGKILL');
    }
  }, 240_000);
});
