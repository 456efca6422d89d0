/**
 * The kill first, really (docs/kill-first.md), through the real worker, dev server and kube-apiserver: nothing that
 * is not the kill delays it. Temporal visibility stalled (devstack/visibility-stall-proxy.ts between the worker and
 * the dev server) costs the count of earlier incidents, after the kill, not the kill; evidence waits for nothing
 * unless the pod is cut off the network; and the isolation stays until the kill is verified on a node that is not
 * NotReady. Orders and notes are asserted here; the times are in the bench (`npm run bench:kill-first`).
 */
import type { V1NetworkPolicy } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { startVisibilityStallProxy, type VisibilityStallProxy } from '../../devstack/visibility-stall-proxy.js';
import { isolationNames } from '../../remediation/isolate.js';
import type { IncidentStatus } from '../../workflows/messages.js';
import { statusQuery } from '../../workflows/messages.js';
import { createNode } from '../support/admission.js';
import { createNamespace, createPod, createWorkload, podExists, testKube, type TestKube } from '../support/cluster.js';
import { activitySummaries } from '../support/history.js';
import { alertFor, startResponder, type Responder } from '../support/responder.js';
import { until } from '../support/until.js';
import { closedStatus } from '../support/closed-status.js';

let kube: TestKube;
let r: Responder;
let proxy: VisibilityStallProxy;
beforeAll(async () => {
  kube = testKube();
  // Visibility calls pass through at once unless a test stalls them; everything else is relayed unchanged.
  proxy = await startVisibilityStallProxy({ backend: inject('temporalAddress') });
  r = await startResponder({ temporalAddress: proxy.address });
});
afterAll(async () => {
  await r?.close();
  await proxy?.close();
});

const events = (s: IncidentStatus) => s.timeline.map((t) => t.event);
const policyOf = async (ns: string, incidentId: string): Promise<V1NetworkPolicy | null> =>
  kube.networking
    .readNamespacedNetworkPolicy({ namespace: ns, name: isolationNames(incidentId).policy })
    .catch(() => null);

describe('the kill in the first workflow task (direct executor)', () => {
  it('no approval, no evidence: the pod read, the isolation and the DELETE run as local activities of the first workflow task', async () => {
    const ns = await createNamespace(kube, 'first-task');
    const w = await createWorkload(kube, ns, 'Pod');
    const h = await r.respond(alertFor(ns, w), { evidenceSeconds: 0 });
    expect((await closedStatus(h)).outcome).toBe('pod-terminated');
    const history = (await h.fetchHistory()).events!;
    const summary = (e: (typeof history)[number]) =>
      e.userMetadata?.summary?.data ? (JSON.parse(Buffer.from(e.userMetadata.summary.data).toString()) as string) : '';
    const deleted = history.findIndex((e) => e.markerRecordedEventAttributes && summary(e).startsWith('delete pod'));
    expect(deleted).toBeGreaterThan(-1);
    const upToTheKill = history.slice(0, deleted + 1);
    // One workflow task, no activity task matched: the calls are markers that task recorded (after the policy floor's check).
    expect(upToTheKill.filter((e) => e.workflowTaskCompletedEventAttributes)).toHaveLength(1);
    expect(upToTheKill.filter((e) => e.activityTaskScheduledEventAttributes)).toEqual([]);
    const calls = upToTheKill
      .filter((e) => e.markerRecordedEventAttributes && summary(e))
      .map((e) => summary(e).split(' ')[0]);
    expect(calls).toEqual(['inspect', 'isolate', 'delete']);
    expect(await podExists(kube, ns, w.pod.metadata!.name!)).toBe(false);
  });
});

describe('Temporal visibility stalled', () => {
  it('the pod is killed first; the count of earlier incidents comes after, gives up within its budget, counts 0 and says so', async () => {
    proxy.stallMs = 10 * 60_000; // the visibility store answers nothing for ten minutes
    try {
      const ns = await createNamespace(kube, 'stall');
      const w = await createWorkload(kube, ns, 'Deployment');
      const calls = proxy.visibilityCalls.length;
      const result = await closedStatus(await r.respond(alertFor(ns, w), { watchSeconds: 0 }));
      expect(result.outcome).toBe('pod-terminated');
      expect(await podExists(kube, ns, w.pod.metadata!.name!)).toBe(false);
      // The kill, then the count: the stalled query held nothing but itself.
      const e = events(result);
      expect(e.indexOf('delete-pod')).toBeGreaterThan(-1);
      expect(e.indexOf('earlier-incidents')).toBeGreaterThan(e.indexOf('delete-pod'));
      const counted = result.timeline.find((t) => t.event === 'earlier-incidents')!;
      expect(counted.detail).toMatch(
        new RegExp(
          `^not counted \\(.+\\): counted as 0, so repeats on other pods of Deployment ${ns}/${w.name} do not raise this incident; it decides on its own alerts$`,
        ),
      );
      expect(result.earlierIncidents).toBe(0);
      expect(proxy.visibilityCalls.slice(calls)).toContain('ListWorkflowExecutions');
      expect((await kube.apps.readNamespacedDeployment({ namespace: ns, name: w.name })).spec?.replicas).toBe(3);
    } finally {
      proxy.stallMs = 0;
    }
  });

  it('with visibility answering, the count still comes after the kill, and an earlier incident on the workload then suspends it', async () => {
    const ns = await createNamespace(kube, 'count-after');
    const w = await createWorkload(kube, ns, 'Deployment');
    expect((await closedStatus(await r.respond(alertFor(ns, w), { watchSeconds: 0 }))).outcome).toBe('pod-terminated');
    const rsRef = w.pod.metadata!.ownerReferences![0]!;
    const replacement = await createPod(kube, ns, `${w.name}-5d8f-next`, rsRef);
    const result = await closedStatus(
      await r.respond(alertFor(ns, { ...w, pod: replacement }), { holdSuspensionSeconds: 0 }),
    );
    expect(result.outcome).toBe('workload-suspended');
    const e = events(result);
    expect(e.indexOf('delete-pod')).toBeLessThan(e.indexOf('earlier-incidents'));
    expect(e.indexOf('earlier-incidents')).toBeLessThan(e.indexOf('suspend-workload'));
    expect(result.timeline.find((t) => t.event === 'earlier-incidents')!.detail).toBe(
      `1 earlier incident(s) on Deployment ${ns}/${w.name} in the window`,
    );
    expect(result.decision).toMatchObject({ action: 'suspend-workload', reason: '2 alerts within 900s (threshold 2)' });
  });
});

describe('evidence waits for nothing unless the pod is cut off', () => {
  it('isolation off: no capture before the kill, and the bundle says why', async () => {
    const ns = await createNamespace(kube, 'no-iso');
    const w = await createWorkload(kube, ns, 'Pod');
    const h = await r.respond(alertFor(ns, w), { isolate: false, evidenceSeconds: 20 });
    const result = await closedStatus(h);
    expect(result.outcome).toBe('pod-terminated');
    expect(result.evidence?.missing).toEqual([
      'everything: not captured before the kill, since the pod is not cut off the network: isolation is off (policy isolate: false)',
    ]);
    expect(result.timeline.find((t) => t.event === 'evidence')!.detail).toBe(
      'skipped: the pod is not cut off the network (isolation is off (policy isolate: false)), so the kill comes first',
    );
    expect((await activitySummaries(h)).filter((s) => s.startsWith('capture evidence'))).toEqual([]);
  });

  it('a hostNetwork pod: isolation not-enforceable, so no capture before the kill', async () => {
    const ns = await createNamespace(kube, 'host-net');
    const pod = await kube.core.createNamespacedPod({
      namespace: ns,
      body: {
        metadata: { name: 'miner' },
        spec: { hostNetwork: true, containers: [{ name: 'app', image: 'registry.example/app:1' }] },
      },
    });
    const h = await r.respond(
      alertFor(
        ns,
        { kind: 'Pod', name: 'miner', uid: pod.metadata!.uid!, pod: { ...pod, containerId: '' } },
        { container: { name: 'app' } },
      ),
      { evidenceSeconds: 20 },
    );
    const result = await closedStatus(h);
    expect(result.outcome).toBe('pod-terminated');
    expect(result.isolation).toMatchObject({ state: 'not-enforceable', record: null });
    expect(result.isolation!.detail).toContain('hostNetwork: true');
    expect(result.evidence?.missing[0]).toMatch(
      /^everything: not captured before the kill, since the pod is not cut off the network: isolation is not-enforceable \(not isolated: the pod uses the host's network/,
    );
    expect((await activitySummaries(h)).filter((s) => s.startsWith('capture evidence'))).toEqual([]);
  });

  it('isolated: one capture attempt, before the kill', async () => {
    const ns = await createNamespace(kube, 'iso-ev');
    const w = await createWorkload(kube, ns, 'Pod');
    const h = await r.respond(alertFor(ns, w), { evidenceSeconds: 5 });
    const result = await closedStatus(h);
    expect(result.outcome).toBe('pod-terminated');
    const summaries = await activitySummaries(h);
    const capture = summaries.findIndex((s) => s.startsWith('capture evidence'));
    expect(capture).toBeGreaterThan(-1);
    expect(capture).toBeLessThan(summaries.findIndex((s) => s.startsWith('delete pod')));
    const history = await h.fetchHistory();
    const scheduled = (name: string) =>
      history
        .events!.filter((e) => e.activityTaskScheduledEventAttributes?.activityType?.name === name)
        .map((e) => e.activityTaskScheduledEventAttributes!);
    // Isolation has a budget of its own, retries included; the capture has one attempt.
    const summary = (e: NonNullable<typeof history.events>[number]) =>
      e.userMetadata?.summary?.data ? (JSON.parse(Buffer.from(e.userMetadata.summary.data).toString()) as string) : '';
    // On the direct executor it is a local activity (its marker carries the summary; its timeouts live in the workflow code).
    const isolate = history.events!.find(
      (e) => e.markerRecordedEventAttributes && summary(e).startsWith('isolate pod'),
    );
    expect(summary(isolate!)).toMatch(/ \(within 30s\)$/);
    expect(scheduled('captureEvidence').map((a) => a.retryPolicy?.maximumAttempts)).toEqual([1]);
    const started = history.events!.filter(
      (e) =>
        e.activityTaskStartedEventAttributes &&
        history.events!.find(
          (s) => s.eventId?.toString() === e.activityTaskStartedEventAttributes!.scheduledEventId?.toString(),
        )?.activityTaskScheduledEventAttributes?.activityType?.name === 'captureEvidence',
    );
    expect(started.map((e) => e.activityTaskStartedEventAttributes!.attempt)).toEqual([1]);
  });
});

describe('the isolation stays until the kill is verified on a node that is not NotReady', () => {
  it('a pod gone from the API while its node is NotReady (force-deleted): the policy is kept, and the problem says so', async () => {
    const node = await createNode('Unknown');
    const ns = await createNamespace(kube, 'notready');
    const pod = await createPod(kube, ns, 'miner', undefined, {}, node);
    const h = await r.respond(alertFor(ns, { kind: 'Pod', name: 'miner', uid: pod.metadata!.uid!, pod }));
    // The graceful delete leaves it terminating (no kubelet answers there); then someone force-deletes it, as the
    // pod garbage collector does for pods on a node that is out of service.
    await until(
      'the pod terminating',
      async () => (await kube.core.readNamespacedPod({ namespace: ns, name: 'miner' })).metadata?.deletionTimestamp,
    );
    expect((await h.query(statusQuery)).isolation?.state).toBe('isolated');
    await kube.core.deleteNamespacedPod({ namespace: ns, name: 'miner', gracePeriodSeconds: 0 });
    const result = await closedStatus(h);
    expect(result.outcome).toBe('needs-manual-action');
    expect(result.verification).toEqual([
      expect.objectContaining({
        ok: false,
        blocker: 'node-not-ready',
        observed: expect.stringMatching(/^node \S+ is NotReady .*the pod is gone from the API/),
      }),
    ]);
    expect(result.isolation?.state).toBe('isolated');
    expect(result.timeline.map((t) => t.event)).not.toContain('release-isolation');
    expect(result.problem).toContain(
      `NetworkPolicy ${ns}/${isolationNames(h.workflowId).policy} is kept until the container is confirmed stopped (no longer owned by the pod: delete it by hand then)`,
    );
    const kept = await policyOf(ns, h.workflowId);
    expect(kept).not.toBeNull();
    expect(kept!.metadata?.ownerReferences ?? []).toEqual([]);
  });

  it('a kill verified (the pod gone, its node Ready): the policy is released, saying so', async () => {
    const node = await createNode('True');
    const ns = await createNamespace(kube, 'ready');
    const pod = await createPod(kube, ns, 'miner', undefined, {}, node);
    const h = await r.respond(alertFor(ns, { kind: 'Pod', name: 'miner', uid: pod.metadata!.uid!, pod }));
    // No kubelet runs this node: the test does its part once the pod is terminating.
    await until(
      'the pod terminating',
      async () => (await kube.core.readNamespacedPod({ namespace: ns, name: 'miner' })).metadata?.deletionTimestamp,
    );
    await kube.core.deleteNamespacedPod({ namespace: ns, name: 'miner', gracePeriodSeconds: 0 });
    const result = await closedStatus(h);
    expect(result.outcome).toBe('pod-terminated');
    expect(result.isolation).toMatchObject({ state: 'released' });
    expect(result.isolation!.detail).toMatch(new RegExp(`^the kill is verified \\(gone; node ${node} is Ready\\): `));
    expect(await policyOf(ns, h.workflowId)).toBeNull();
  });
});
