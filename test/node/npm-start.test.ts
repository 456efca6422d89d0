/**
 * `npm start` as a user runs it, by default with the real node: the demo's miner is a process on this machine that the
 * pool hears; the demo alert, posted to the printed forwarder with the printed token, suspends its Deployment, after
 * which no miner process is left and the pool hears nothing; Ctrl-C then stops every process and leaves the host as
 * it was.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { fixtureKube } from '../../devstack/fixtures.js';
import { HOST_LOCK, leftovers, podProcesses, snapshotHost } from '../../devstack/node-host.js';
import type { MinerSeen } from '../../devstack/node-pool.js';
import { interrupt, npmStartPlace, startDev, userEnv } from '../support/npm-start.js';
import { until } from '../support/until.js';
import { nodeMissing, skipWhy } from './real-node.js';

describe.skipIf(nodeMissing.length > 0)(`npm start with the real node${skipWhy ? ` (${skipWhy})` : ''}`, () => {
  const place = npmStartPlace();
  afterAll(place.remove);

  it(
    'runs the demo miner as a process the pool hears; the demo alert suspends it (no miner process, the pool hears nothing); Ctrl-C leaves no process and nothing on the host',
    async () => {
      // The host as it is with no real node up (one per machine: another one's sysctls and chains are not ours).
      await until('no other real node on this machine', async () => !existsSync(HOST_LOCK), 15 * 60_000);
      const before = snapshotHost();
      // No POD_RESPONDER_REAL_NODE: the default.
      const { child, output, waitFor } = startDev(
        ['--free-ports', '--state-dir', place.stateDir],
        userEnv(place.cache),
      );
      try {
        const [, reportUrl] = await waitFor(/the pool's report: curl -s (\S+)/, 240_000);
        await waitFor(/evidence bucket \S+ ready/, 150_000);
        await waitFor(/--data-binary @/, 60_000);
        const out = output();
        const [, url, token] = /forwarder on (http:\/\/\S+) \(falco token: (\S+);/.exec(out)!;
        const falcoFile = /--data-binary @(\S+)/.exec(out)![1]!;
        const [, namespace, deployment, podName] = /demo: Deployment ([^/\s]+)\/(\S+) with pod (\S+);/.exec(out)!;
        const kube = fixtureKube(/kubeconfig +(\S+)/.exec(out)![1]!);
        const pod = await kube.core.readNamespacedPod({ namespace: namespace!, name: podName! });
        const uid = pod.metadata!.uid!;
        const ip = pod.status!.podIP!;
        const miners = async () => (await (await fetch(reportUrl!)).json()) as Record<string, MinerSeen>;

        // A real process, heard by the pool over the node's bridge.
        expect(podProcesses(uid).length).toBeGreaterThan(0);
        const heard = await until('the pool hearing the demo miner', async () => {
          const seen = (await miners())[ip];
          return seen && seen.shares > 0 && seen.connections > 0 ? seen : undefined;
        });
        expect(heard.shares).toBeGreaterThan(0);

        const res = await fetch(`${url}/v1/alerts/falco?cluster=local`, {
          method: 'POST',
          headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
          body: readFileSync(falcoFile),
        });
        expect(res.status).toBe(202);
        expect(((await res.json()) as { results: { outcome: string }[] }).results.map((r) => r.outcome)).toEqual([
          'accepted',
        ]);

        // The demo's Critical alert suspends the Deployment; its miner process goes and nothing replaces it.
        await until(
          'the demo Deployment scaled to 0',
          async () =>
            (await kube.apps.readNamespacedDeployment({ namespace: namespace!, name: deployment! })).spec?.replicas ===
            0,
        );
        await until('the miner process gone', async () => podProcesses(uid).length === 0, 30_000);
        await until('no miner pod left', async () => {
          const pods = await kube.core.listNamespacedPod({ namespace: namespace!, labelSelector: 'app=miner' });
          return pods.items.length === 0;
        });
        const after = await until('the pool to hold no connection from the miner', async () => {
          const seen = (await miners())[ip];
          return seen && seen.connections === 0 ? seen : undefined;
        });
        // Silence: nothing more arrives from the miner's address, from any miner.
        await new Promise((r) => setTimeout(r, 3_000));
        const later = await miners();
        expect(later[ip]).toEqual(after);
        expect(Object.values(later).every((m) => m.connections === 0)).toBe(true);

        expect(await interrupt(child)).toBe(0);
        // Each part of the stack ran in its process group; one SIGKILLed by the stop may take a moment to be reaped.
        const inGroup = () => spawnSync('pgrep', ['-a', '-g', String(child.pid)], { encoding: 'utf8' }).stdout.trim();
        await until('the process group empty', async () => inGroup() === '', 10_000).catch(() => undefined);
        expect(inGroup()).toBe('');
        expect(leftovers(before, snapshotHost())).toEqual([]);
      } finally {
        if (child.exitCode === null) process.kill(-child.pid!, 'SIGKILL');
      }
    },
    20 * 60_000,
  );
});
