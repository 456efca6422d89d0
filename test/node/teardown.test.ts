/**
 * Everything a real node makes on the host goes when its stack stops: container processes and shims, network
 * namespaces, veths and the bridge, mounts, the kubelet's and kube-router's iptables/ip6tables chains and ipsets,
 * the kubepods cgroups, files under the kubelet's and containerd's fixed host paths, and sysctls.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { fixtureKube } from '../../devstack/fixtures.js';
import { leftovers, podProcesses, processesMentioning, snapshotHost } from '../../devstack/node-host.js';
import { IMAGES } from '../../devstack/node-images.js';
import { startStack } from '../../devstack/stack.js';
import { createNamespace } from '../support/cluster.js';
import { until } from '../support/until.js';
import { nodeMissing, skipWhy } from './real-node.js';

describe.skipIf(nodeMissing.length > 0)(`a real node's teardown${skipWhy ? ` (${skipWhy})` : ''}`, () => {
  it('leaves nothing on the host: what a running pod under a NetworkPolicy made is all removed on stop', async () => {
    const before = snapshotHost();
    const stateDir = mkdtempSync(path.join(tmpdir(), 'pod-responder-node-'));
    const stack = await startStack({ stateDir, headless: true, realNode: true, log: (l) => console.log(l) });
    let uid: string;
    try {
      const kube = fixtureKube(stack.kubeconfigPath);
      const ns = await createNamespace(kube, 'teardown');
      const pod = await kube.core.createNamespacedPod({
        namespace: ns,
        body: {
          metadata: { name: 'sleeper', labels: { app: 'sleeper' } },
          spec: {
            containers: [{ name: 'c', image: IMAGES.busybox, imagePullPolicy: 'Never', command: ['sleep', '3600'] }],
          },
        },
      });
      uid = pod.metadata!.uid!;
      await kube.networking.createNamespacedNetworkPolicy({
        namespace: ns,
        body: {
          metadata: { name: 'deny' },
          spec: { podSelector: { matchLabels: { app: 'sleeper' } }, policyTypes: ['Ingress', 'Egress'] },
        },
      });
      await until(
        'the pod running',
        async () => (await kube.core.readNamespacedPod({ namespace: ns, name: 'sleeper' })).status?.phase === 'Running',
      );
      // kube-router's per-pod chain and ipsets exist once it has synced the policy.
      const during = await until('kube-router to enforce the policy', async () => {
        const left = leftovers(before, snapshotHost());
        return left.some((l) => / chain KUBE-POD-FW-/.test(l)) && left.some((l) => l.startsWith('ipset '))
          ? left
          : undefined;
      });
      // What the node made while running: the test below is only as good as this list is complete.
      for (const kind of [
        /^iptables filter chain KUBE-KUBELET-CANARY$/,
        /^ip6tables mangle chain KUBE-IPTABLES-HINT$/,
        /^iptables filter chain KUBE-ROUTER-INPUT$/,
        /^netns cni-/,
        /^link prn0$/,
        /^link veth/,
        /^mount .*\/kubelet/,
        /^mount \/run\/netns/,
        /^cgroup .*kubepods$/,
        /^file \/run\/containerd\/s\//,
        /^\/var\/log\/containers\/ /,
      ]) {
        expect(
          during.filter((l) => kind.test(l)),
          `${kind} while running`,
        ).not.toEqual([]);
      }
      expect(podProcesses(uid).length).toBeGreaterThan(0);
    } finally {
      await stack.stop();
      rmSync(stateDir, { recursive: true, force: true });
    }
    expect(leftovers(before, snapshotHost())).toEqual([]);
    expect(podProcesses(uid)).toEqual([]);
    expect(processesMentioning(path.join(stateDir, 'node'))).toEqual([]);
  });
});
