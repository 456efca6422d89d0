/** Every workload kind, through the real worker, dev server and kube-apiserver: suspend, verify, restore. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SUSPEND_NODE_SELECTOR_KEY, SUSPENDED_BY_ANNOTATION } from '../../remediation/protocol.js';
import { restoreUpdate } from '../../workflows/messages.js';
import { createNamespace, createWorkload, podExists, testKube, type TestKube } from '../support/cluster.js';
import { alertFor, startResponder, type Responder } from '../support/responder.js';
import { closedStatus } from '../support/closed-status.js';

let r: Responder;
let kube: TestKube;
beforeAll(async () => {
  r = await startResponder();
  kube = testKube();
});
afterAll(async () => r?.close());

/** What "running" and "suspended" look like for each kind, read straight from the API server. */
const observe: Record<string, (ns: string, name: string) => Promise<unknown>> = {
  Deployment: async (namespace, name) => (await kube.apps.readNamespacedDeployment({ namespace, name })).spec?.replicas,
  ReplicaSet: async (namespace, name) => (await kube.apps.readNamespacedReplicaSet({ namespace, name })).spec?.replicas,
  StatefulSet: async (namespace, name) =>
    (await kube.apps.readNamespacedStatefulSet({ namespace, name })).spec?.replicas,
  DaemonSet: async (namespace, name) =>
    (await kube.apps.readNamespacedDaemonSet({ namespace, name })).spec?.template.spec?.nodeSelector,
  Job: async (namespace, name) => (await kube.batch.readNamespacedJob({ namespace, name })).spec?.suspend ?? false,
  CronJob: async (namespace, name) => ({
    cron: (await kube.batch.readNamespacedCronJob({ namespace, name })).spec?.suspend ?? false,
    job: (await kube.batch.readNamespacedJob({ namespace, name: `${name}-29001` })).spec?.suspend ?? false,
  }),
};

const cases: [kind: string, before: unknown, suspended: unknown][] = [
  ['Deployment', 3, 0],
  ['ReplicaSet', 2, 0],
  ['StatefulSet', 2, 0],
  ['DaemonSet', { 'kubernetes.io/os': 'linux' }, { 'kubernetes.io/os': 'linux', [SUSPEND_NODE_SELECTOR_KEY]: 'true' }],
  ['Job', false, true],
  ['CronJob', { cron: false, job: false }, { cron: true, job: true }],
];

describe.each(cases)('%s', (kind, before, suspended) => {
  it('is suspended on a critical alert, verified, held, and restored to its prior state', async () => {
    const ns = await createNamespace(kube, kind.toLowerCase());
    const w = await createWorkload(kube, ns, kind);
    expect(await observe[kind]!(ns, w.name)).toEqual(before);

    const handle = await r.respond(alertFor(ns, w, { severity: 'critical' }), { holdSuspensionSeconds: 300 });
    const held = await r.waitForStage(handle, 'holding');

    expect(await observe[kind]!(ns, w.name)).toEqual(suspended);
    expect(await podExists(kube, ns, w.pod.metadata!.name!)).toBe(false);
    expect(held.decision).toMatchObject({ action: 'suspend-workload', workload: { kind, name: w.name } });
    // Kill first: the miner stops whether or not the suspension works.
    expect(held.actions.map((a) => [a.action, a.status])).toEqual([
      ['delete-pod', 'done'],
      ['suspend-workload', 'done'],
    ]);
    expect(held.verification.every((c) => c.ok)).toBe(true);
    expect(held.suspension?.changes.length).toBe(kind === 'CronJob' ? 2 : 1);

    const restored = await handle.executeUpdate(restoreUpdate, {
      args: [{ by: 'analyst@example.com', reason: 'false positive' }],
    });
    expect(restored.status).toBe('done');
    expect(await observe[kind]!(ns, w.name)).toEqual(before);
    const result = await closedStatus(handle);
    expect(result.outcome).toBe('workload-restored');
    expect(result.timeline.some((t) => t.event === 'restored' && t.detail.startsWith('by analyst@example.com'))).toBe(
      true,
    );
  });
});

describe('terminate-pod', () => {
  it('deletes a bare pod, verifies it is gone and closes', async () => {
    const ns = await createNamespace(kube, 'bare');
    const w = await createWorkload(kube, ns, 'Pod');
    const result = await closedStatus(await r.respond(alertFor(ns, w), { suspendOnSeverity: [] }));
    expect(result.outcome).toBe('pod-terminated');
    expect(result.actions).toEqual([
      expect.objectContaining({ action: 'delete-pod', status: 'done', target: `pod ${ns}/${w.name} (uid ${w.uid})` }),
    ]);
    expect(await podExists(kube, ns, w.name)).toBe(false);
  });

  it('kills one Deployment pod on a first alert and leaves the Deployment alone', async () => {
    const ns = await createNamespace(kube, 'first');
    const w = await createWorkload(kube, ns, 'Deployment');
    const result = await closedStatus(await r.respond(alertFor(ns, w), { watchSeconds: 0 }));
    expect(result.outcome).toBe('pod-terminated');
    expect(await podExists(kube, ns, w.pod.metadata!.name!)).toBe(false);
    const d = await kube.apps.readNamespacedDeployment({ namespace: ns, name: w.name });
    expect(d.spec?.replicas).toBe(3);
    expect(d.metadata?.annotations?.[SUSPENDED_BY_ANNOTATION]).toBeUndefined();
  });
});

describe('unsupported owner', () => {
  it('terminates the pod and ends as needs-manual-action, never claiming a suspension', async () => {
    const ns = await createNamespace(kube, 'crd');
    const w = await createWorkload(kube, ns, 'Rollout');
    const result = await closedStatus(await r.respond(alertFor(ns, w, { severity: 'critical' })));
    expect(result.outcome).toBe('needs-manual-action');
    expect(result.problem).toContain('argoproj.io/v1alpha1 Rollout is not a kind pod-responder can suspend');
    expect(result.actions.map((a) => [a.action, a.status])).toEqual([
      ['delete-pod', 'done'],
      ['suspend-workload', 'unsupported'],
    ]);
    expect(result.suspension).toBeNull();
    expect(await podExists(kube, ns, w.pod.metadata!.name!)).toBe(false);
  });
});
