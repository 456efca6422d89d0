/**
 * A real node: pods run as processes on this machine, the network plugin enforces the isolation policy, and the
 * controllers replace what is killed. Each through the real worker, against real kubelet, containerd, kube-router.
 */
import { describe, expect, it } from 'vitest';
import { podFirewallFor, podProcesses } from '../../devstack/node-host.js';
import { NODE_GRACE_SECONDS, NODE_NAME } from '../../devstack/real-node.js';
import { createNamespace } from '../support/cluster.js';
import { until } from '../support/until.js';
import { restoreUpdate } from '../../workflows/messages.js';
import {
  createMinerDeployment,
  diagnose,
  minerContainer,
  createMinerPod,
  heardFrom,
  minerAlert,
  nodeMissing,
  poolHears,
  running,
  runningPods,
  skipWhy,
  useRealNode,
} from './real-node.js';

describe.skipIf(nodeMissing.length > 0)(`a real node${skipWhy ? ` (${skipWhy})` : ''}`, () => {
  const ctx = useRealNode();

  it("is Ready by its kubelet's own report; a miner pod runs as host processes found by its UID, logs through the kubelet, and the pool hears it", async () => {
    const node = await ctx.kube.core.readNode({ name: NODE_NAME });
    expect(node.status?.nodeInfo?.kubeletVersion).toBe('v1.34.3');
    expect(node.status?.conditions?.find((c) => c.type === 'Ready')).toMatchObject({
      status: 'True',
      reason: 'KubeletReady',
    });
    expect(node.status?.addresses).toContainEqual({ type: 'InternalIP', address: ctx.node.nodeIp });

    const ns = await createNamespace(ctx.kube, 'run');
    const created = await createMinerPod(ctx, ns, 'miner');
    const pod = await running(ctx, ns, 'miner');
    expect(pod.spec?.nodeName).toBe(NODE_NAME); // placed by the scheduler
    expect(pod.metadata?.uid).toBe(created.metadata?.uid);
    expect(podProcesses(pod.metadata!.uid!).length).toBeGreaterThan(0);
    await poolHears(ctx, pod.status!.podIP!);
    const logs = await until('a share in the container log', async () => {
      const text = await ctx.kube.core.readNamespacedPodLog({ namespace: ns, name: 'miner', container: 'miner' });
      return /share \d+ submitted/.test(text) ? text : undefined;
    });
    expect(logs).toContain('connecting to pool');
  });

  it('isolated while a person decides: an established pool connection survives (kube-router accepts ESTABLISHED); once it drops, the miner cannot reconnect while its process still runs; approved, the kill ends the process', async () => {
    const ns = await createNamespace(ctx.kube, 'iso');
    await createMinerPod(ctx, ns, 'miner');
    const pod = await running(ctx, ns, 'miner');
    const uid = pod.metadata!.uid!;
    const ip = pod.status!.podIP!;
    await poolHears(ctx, ip);
    expect(podFirewallFor(ip)).toBe(false); // no policy selects it yet

    const h = await ctx.r.respond(minerAlert(pod), { requireApprovalFor: ['terminate-pod'], watchSeconds: 0 });
    const waiting = await ctx.r.waitForStage(h, 'awaiting-approval');
    expect(waiting.isolation).toMatchObject({ state: 'isolated' });
    // The finding: the policy is in force (kube-router has the pod's chain), yet the connection made before it flows on.
    await until('kube-router to enforce the policy for the pod', async () => podFirewallFor(ip), 30_000);
    const isolatedAt = Date.now();
    await poolHears(ctx, ip, isolatedAt + 2000);

    // The pool drops it (as a pool restart would); the miner reconnects, and a new connection is refused.
    expect(ctx.node.pool.dropConnections(ip)).toBe(1);
    // The miner submits a share a second: 5 s of silence is the policy enforced, not a pause.
    await until(
      'the pool to stop hearing from the isolated miner',
      async () => Date.now() - Date.parse(heardFrom(ctx, ip)!.lastHeard) > 5000,
      30_000,
    );
    expect(heardFrom(ctx, ip)!.connections).toBe(0);
    expect(podProcesses(uid).length).toBeGreaterThan(0); // cut off, not stopped
    expect(await ctx.kube.core.readNamespacedPodLog({ namespace: ns, name: 'miner' })).toContain(
      'pool connection lost',
    );

    await ctx.r.approve(h, 'lead');
    expect((await h.result()).outcome).toBe('pod-terminated');
    await until('the killed pod to have no process on the host', async () => podProcesses(uid).length === 0, 30_000);
  });

  it('a killed Deployment pod is replaced by its ReplicaSet: a new UID, a new miner process, heard by the pool', async () => {
    const ns = await createNamespace(ctx.kube, 'rs');
    await createMinerDeployment(ctx, ns, 'miner');
    const [first] = await until('the Deployment pod running', async () => {
      const pods = await runningPods(ctx, ns, 'miner');
      return pods.length === 1 ? pods : undefined;
    });
    const h = await ctx.r.respond(minerAlert(first!), { watchSeconds: 0 });
    expect((await h.result()).outcome).toBe('pod-terminated');
    await until(
      'the killed pod to have no process on the host',
      async () => podProcesses(first!.metadata!.uid!).length === 0,
      30_000,
    );

    const [replacement] = await until('a replacement pod running', async () => {
      const pods = (await runningPods(ctx, ns, 'miner')).filter((p) => p.metadata?.uid !== first!.metadata!.uid);
      return pods.length === 1 ? pods : undefined;
    });
    expect(replacement!.metadata?.ownerReferences?.[0]).toMatchObject({
      kind: 'ReplicaSet',
      uid: first!.metadata!.ownerReferences![0]!.uid,
    });
    expect(podProcesses(replacement!.metadata!.uid!).length).toBeGreaterThan(0);
    await poolHears(ctx, replacement!.status!.podIP!).catch(async (err: Error) => {
      throw new Error(`${err.message}\n${await diagnose(ctx, ns, replacement!)}`);
    });
  });

  it('the whole story: killed (process gone), the ReplicaSet brings a miner back, its alert is a repeat, so the workload is suspended (no miner process, the pool hears nothing), then restored (miners back, heard)', async () => {
    const ns = await createNamespace(ctx.kube, 'story');
    await createMinerDeployment(ctx, ns, 'miner');
    const one = async (not?: string) =>
      until('one running miner', async () => {
        const pods = (await runningPods(ctx, ns, 'miner')).filter((p) => p.metadata?.uid !== not);
        return pods.length === 1 ? pods[0] : undefined;
      });
    const first = await one();
    await poolHears(ctx, first.status!.podIP!);

    // First alert: the pod is killed (a Deployment's: suspension waits for a repeat).
    const h1 = await ctx.r.respond(minerAlert(first), { watchSeconds: 0 });
    expect((await h1.result()).outcome).toBe('pod-terminated');
    await until(
      'the killed miner to have no process',
      async () => podProcesses(first.metadata!.uid!).length === 0,
      30_000,
    );

    // The ReplicaSet brings it back, and it mines again.
    const second = await one(first.metadata!.uid);
    await poolHears(ctx, second.status!.podIP!);

    // Its alert is a repeat: the workload is suspended and held.
    const h2 = await ctx.r.respond(minerAlert(second), { holdSuspensionSeconds: 300 });
    const held = await ctx.r.waitForStage(h2, 'holding', 60_000);
    expect(held.decision).toMatchObject({
      action: 'suspend-workload',
      workload: { kind: 'Deployment', name: 'miner' },
    });
    expect((await ctx.kube.apps.readNamespacedDeployment({ namespace: ns, name: 'miner' })).spec?.replicas).toBe(0);
    await until('no miner process left', async () => podProcesses(second.metadata!.uid!).length === 0, 30_000);
    expect(await runningPods(ctx, ns, 'miner')).toEqual([]);
    await until('the pool to hear nothing from the workload', async () => {
      const seen = heardFrom(ctx, second.status!.podIP!)!;
      return seen.connections === 0 && Date.now() - Date.parse(seen.lastHeard) > 3000;
    });

    // Restored: the miners are back, and the pool hears them.
    const restoredAt = Date.now();
    expect(
      (await h2.executeUpdate(restoreUpdate, { args: [{ by: 'analyst@example.com', reason: 'the test' }] })).status,
    ).toBe('done');
    const third = await one(second.metadata!.uid);
    await poolHears(ctx, third.status!.podIP!, restoredAt);
    expect((await h2.result()).outcome).toBe('workload-restored');
  });

  it("its kubelet stopped: the node goes NotReady by the controller manager's grace period; a kill there ends needs-manual-action with the process still running and the isolation kept; the kubelet back, the process goes", async () => {
    const ns = await createNamespace(ctx.kube, 'notready');
    await createMinerPod(ctx, ns, 'miner');
    const pod = await running(ctx, ns, 'miner');
    const uid = pod.metadata!.uid!;
    const ready = async () =>
      (await ctx.kube.core.readNode({ name: NODE_NAME })).status?.conditions?.find((c) => c.type === 'Ready');
    await ctx.node.stopKubelet();
    try {
      // The node controller counts its grace from the kubelet's last heartbeat (its status update, or the node's
      // Lease where there is one), which may come seconds before the stop: measured from the stop, a NotReady within
      // the grace is not early.
      const lease = await ctx.kube.coordination
        .readNamespacedLease({ name: NODE_NAME, namespace: 'kube-node-lease' })
        .catch(() => undefined);
      const statusBeat = (await ready())?.lastHeartbeatTime;
      const lastHeartbeat = Math.max(
        lease?.spec?.renewTime ? new Date(lease.spec.renewTime).getTime() : 0,
        statusBeat ? new Date(statusBeat).getTime() : 0,
      );
      expect(lastHeartbeat).toBeGreaterThan(0);
      const condition = await until(
        'the node NotReady',
        async () => {
          const c = await ready();
          return c?.status === 'Unknown' ? c : undefined;
        },
        (NODE_GRACE_SECONDS + 30) * 1000,
      );
      expect(condition.reason).toBe('NodeStatusUnknown');
      expect(Date.now() - lastHeartbeat).toBeGreaterThanOrEqual(NODE_GRACE_SECONDS * 1000 - 2000); // not before its grace

      const result = await (await ctx.r.respond(minerAlert(pod), { watchSeconds: 0 })).result();
      expect(result.outcome).toBe('needs-manual-action');
      expect(result.problem).toMatch(
        new RegExp(`on node ${NODE_NAME}, which is NotReady .*its kubelet is not stopping the container`),
      );
      expect(podProcesses(uid).length).toBeGreaterThan(0); // only the kubelet stops it
      expect((await ctx.kube.networking.listNamespacedNetworkPolicy({ namespace: ns })).items).toHaveLength(1);
      expect(podFirewallFor(pod.status!.podIP!)).toBe(true); // the isolation holds while the process runs
    } finally {
      ctx.node.startKubelet();
    }
    await until('the node Ready again', async () => (await ready())?.status === 'True', 60_000);
    await until('the kubelet back to stop the deleted pod', async () => podProcesses(uid).length === 0, 60_000);
  }, 180_000);

  // Where isolation cannot hold, the incident says so, and the pool shows it: the miner reconnects through the policy.
  it.each([
    ['a hostNetwork miner', true, /hostNetwork: true/],
    ['a miner another policy allows (allow policies add up)', false, /allow/],
  ] as const)(
    '%s: reported not enforceable, and indeed the pool still hears it after its connection drops; the kill ends it',
    async (_, hostNetwork, why) => {
      const ns = await createNamespace(ctx.kube, hostNetwork ? 'hostnet' : 'allowed');
      await ctx.kube.core.createNamespacedPod({
        namespace: ns,
        body: {
          metadata: { name: 'miner', labels: { app: 'miner' } },
          spec: { hostNetwork, terminationGracePeriodSeconds: 1, containers: [minerContainer(ctx.node)] },
        },
      });
      if (!hostNetwork) {
        await ctx.kube.networking.createNamespacedNetworkPolicy({
          namespace: ns,
          body: {
            metadata: { name: 'allow-all' },
            spec: {
              podSelector: { matchLabels: { app: 'miner' } },
              policyTypes: ['Ingress', 'Egress'],
              ingress: [{}],
              egress: [{}],
            },
          },
        });
      }
      const pod = await running(ctx, ns, 'miner');
      const uid = pod.metadata!.uid!;
      const ip = hostNetwork ? ctx.node.nodeIp : pod.status!.podIP!; // on the host's network it speaks from the node's address
      await poolHears(ctx, ip);

      const h = await ctx.r.respond(minerAlert(pod), { requireApprovalFor: ['terminate-pod'], watchSeconds: 0 });
      const waiting = await ctx.r.waitForStage(h, 'awaiting-approval');
      expect(waiting.isolation?.state).toBe('not-enforceable');
      expect(waiting.isolation?.detail).toMatch(why);
      if (!hostNetwork) await until('kube-router to apply both policies', async () => podFirewallFor(ip), 30_000);
      expect(ctx.node.pool.dropConnections(ip)).toBeGreaterThan(0);
      const dropped = Date.now();
      await poolHears(ctx, ip, dropped + 1000); // reconnected: nothing cut it off

      await ctx.r.approve(h, 'lead');
      expect((await h.result()).outcome).toBe('pod-terminated');
      await until('the killed pod to have no process on the host', async () => podProcesses(uid).length === 0, 30_000);
    },
  );
});
