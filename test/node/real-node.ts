/**
 * The real node's tests (docs/real-node.md): each file starts a stack of its own with a real node (one node per machine,
 * so the files of this project run one after another) and a real worker against it.
 */
import type { V1Pod } from '@kubernetes/client-node';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll } from 'vitest';
import { fixtureKube, type TestKube } from '../../devstack/fixtures.js';
import { IMAGES } from '../../devstack/node-images.js';
import { realNodeMissing, type HostSnapshot } from '../../devstack/node-host.js';
import type { MinerSeen } from '../../devstack/node-pool.js';
import type { RealNode } from '../../devstack/real-node.js';
import { startStack, type Stack } from '../../devstack/stack.js';
import type { PodAlert } from '../../domain/alert.js';
import { startResponder, type Responder } from '../support/responder.js';
import { until } from '../support/until.js';

/** What this machine lacks to run containers; the real node's tests skip, saying so, when it is not empty. */
export const nodeMissing = realNodeMissing();
export const skipWhy = nodeMissing.length ? `no real node on this machine: ${nodeMissing.join('; ')}` : '';

export interface NodeCtx {
  stack: Stack;
  node: RealNode;
  kube: TestKube;
  r: Responder;
}

/** A stack with a real node and a real worker, for the calling file: ready before its tests, stopped after. */
export function useRealNode(o: { responder?: boolean } = {}): NodeCtx {
  const ctx = {} as NodeCtx;
  let stateDir = '';
  beforeAll(async () => {
    if (nodeMissing.length) return;
    stateDir = mkdtempSync(path.join(tmpdir(), 'pod-responder-node-'));
    ctx.stack = await startStack({ stateDir, headless: true, realNode: true, log: (l) => console.log(l) });
    ctx.node = ctx.stack.node!;
    ctx.kube = fixtureKube(ctx.stack.kubeconfigPath);
    if (o.responder !== false)
      ctx.r = await startResponder({
        temporalAddress: ctx.stack.temporalAddress,
        kubeconfig: ctx.stack.kubeconfigPath,
      });
  }, 180_000);
  afterAll(async () => {
    await ctx.r?.close();
    await ctx.stack?.stop();
    if (stateDir && !process.env.POD_RESPONDER_KEEP_STACK) rmSync(stateDir, { recursive: true, force: true });
  }, 60_000);
  return ctx;
}

/** The miner container: connects to the node's pool and submits a share a second. */
export function minerContainer(node: RealNode) {
  return {
    name: 'miner',
    image: IMAGES.miner,
    imagePullPolicy: 'Never',
    env: [{ name: 'POOL', value: node.pool.address }],
  };
}

export async function createMinerPod(ctx: NodeCtx, namespace: string, name: string): Promise<V1Pod> {
  return ctx.kube.core.createNamespacedPod({
    namespace,
    body: {
      metadata: { name, labels: { app: name } },
      spec: { terminationGracePeriodSeconds: 1, containers: [minerContainer(ctx.node)] },
    },
  });
}

export async function createMinerDeployment(
  ctx: NodeCtx,
  namespace: string,
  name: string,
  replicas = 1,
): Promise<void> {
  await ctx.kube.apps.createNamespacedDeployment({
    namespace,
    body: {
      metadata: { name },
      spec: {
        replicas,
        selector: { matchLabels: { app: name } },
        template: {
          metadata: { labels: { app: name } },
          spec: { terminationGracePeriodSeconds: 1, containers: [minerContainer(ctx.node)] },
        },
      },
    },
  });
}

/** Waits for the pod's container to run, and returns the pod as it is then. */
export async function running(ctx: NodeCtx, namespace: string, name: string, timeoutMs = 60_000): Promise<V1Pod> {
  return until(
    `pod ${namespace}/${name} running`,
    async () => {
      const p = await ctx.kube.core.readNamespacedPod({ namespace, name });
      return p.status?.containerStatuses?.[0]?.state?.running && p.status.podIP ? p : undefined;
    },
    timeoutMs,
  );
}

/** The running pods of a workload, by label. */
export async function runningPods(ctx: NodeCtx, namespace: string, app: string): Promise<V1Pod[]> {
  const list = await ctx.kube.core.listNamespacedPod({ namespace, labelSelector: `app=${app}` });
  return list.items.filter(
    (p) => !p.metadata?.deletionTimestamp && p.status?.containerStatuses?.[0]?.state?.running && p.status.podIP,
  );
}

/** What the pool has heard from this pod address. */
export function heardFrom(ctx: NodeCtx, podIp: string): MinerSeen | undefined {
  return ctx.node.pool.miners()[podIp];
}

/** Waits until the pool has heard from `podIp` after `since` (ms epoch). */
export async function poolHears(
  ctx: NodeCtx,
  podIp: string,
  since = Date.now(),
  timeoutMs = 30_000,
): Promise<MinerSeen> {
  return until(
    `the pool hearing from ${podIp}`,
    async () => {
      const seen = heardFrom(ctx, podIp);
      return seen && Date.parse(seen.lastHeard) > since ? seen : undefined;
    },
    timeoutMs,
  );
}

/** An alert for a running miner pod, as Falco would send it. */
export function minerAlert(pod: V1Pod, over: Partial<PodAlert> = {}): PodAlert {
  const containerId = pod.status!.containerStatuses![0]!.containerID!.replace(/^containerd:\/\//, '');
  return {
    source: 'falco',
    alertId: `node-${Date.now()}-${Math.random().toString(16).slice(2, 8)}`,
    category: 'crypto-mining',
    severity: 'high',
    detectedAt: new Date().toISOString(),
    cluster: { name: 'local' },
    namespace: pod.metadata!.namespace!,
    podName: pod.metadata!.name!,
    podUid: pod.metadata!.uid!,
    container: { id: containerId.slice(0, 12), name: 'miner' },
    process: { name: 'miner', commandLine: '/bin/miner' },
    ...over,
  };
}

export type { HostSnapshot };

/** For a failure message: what the pool heard, the pod's log tail and the iptables rules for its address. */
export async function diagnose(ctx: NodeCtx, namespace: string, pod: V1Pod): Promise<string> {
  const ip = pod.status?.podIP ?? '?';
  const log = await ctx.kube.core
    .readNamespacedPodLog({ namespace, name: pod.metadata!.name!, tailLines: 10 })
    .catch((e: Error) => e.message);
  const rules =
    spawnSync('iptables', ['-w', '5', '-S'], { encoding: 'utf8' })
      .stdout?.split('\n')
      .filter((r) => r.includes(ip)) ?? [];
  return [
    `pool: ${JSON.stringify(ctx.node.pool.miners())}`,
    `pod ${ip} log:\n${log}`,
    `iptables for ${ip}:\n${rules.join('\n')}`,
  ].join('\n');
}
