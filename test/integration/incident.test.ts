/** Validation, signals, approval, cancellation and repeats, through the real worker, dev server and kube-apiserver. */
import { WorkflowFailedError } from '@temporalio/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { escalateSignal, statusQuery } from '../../workflows/messages.js';
import { createNamespace, createPod, createWorkload, podExists, testKube, type TestKube } from '../support/cluster.js';
import { alertFor, startResponder, type Responder } from '../support/responder.js';
import { activitySummaries } from '../support/history.js';
import { closedStatus } from '../support/closed-status.js';

let r: Responder;
let kube: TestKube;
beforeAll(async () => {
  r = await startResponder();
  kube = testKube();
});
afterAll(async () => r?.close());

describe('cluster identity', () => {
  it('an alert naming a cluster this worker has no mapping for touches nothing and needs a person', async () => {
    const ns = await createNamespace(kube, 'unmapped');
    const w = await createWorkload(kube, ns, 'Deployment');
    // The same namespace and pod exist on the cluster the worker reaches: an unmapped name must not act on it.
    const handle = await r.respond({ ...alertFor(ns, w), cluster: { name: 'prod-eu' }, severity: 'critical' });
    const result = await closedStatus(handle);
    expect(result.outcome).toBe('needs-manual-action');
    expect(result.problem).toBe(
      'this worker has no mapping for cluster prod-eu (it acts on local): nothing was done; map it with direct.cluster or direct.contexts, or respond from a worker that reaches it',
    );
    expect(result.actions).toEqual([]);
    expect(await podExists(kube, ns, w.pod.metadata!.name!, w.pod.metadata!.uid)).toBe(true);
    expect((await kube.apps.readNamespacedDeployment({ namespace: ns, name: w.name })).spec?.replicas).toBe(3);
  });
});

describe('dismissals', () => {
  it.each([
    ['protected namespace', 'protected-namespace'],
    ['stale alert', 'stale-alert'],
    ['pod gone', 'pod-gone'],
    ['pod UID differs', 'pod-replaced'],
    ['container ID differs', 'container-mismatch'],
    ['container name differs', 'container-mismatch'],
    ['protected label', 'protected-label'],
  ])('%s -> dismissed as %s, pod untouched', async (name, code) => {
    const ns = await createNamespace(kube, 'dismiss');
    const w = await createWorkload(kube, ns, 'Pod');
    let alert = alertFor(ns, w);
    switch (name) {
      case 'protected namespace':
        alert = { ...alert, namespace: 'kube-system' };
        break;
      case 'stale alert':
        alert = { ...alert, detectedAt: new Date(Date.now() - 2 * 3600_000).toISOString() };
        break;
      case 'pod gone':
        alert = { ...alert, podName: 'no-such-pod' };
        break;
      case 'pod UID differs':
        alert = { ...alert, podUid: '0f8fad5b-d9cb-469f-a165-70867728950e' };
        break;
      case 'container ID differs':
        alert = { ...alert, container: { id: 'deadbeefdead' } };
        break;
      case 'container name differs':
        alert = { ...alert, container: { name: 'sidecar' } };
        break;
      case 'protected label': {
        const p = await createPod(kube, ns, 'guarded', undefined, { 'pod-responder.io/protected': 'true' });
        alert = alertFor(ns, { kind: 'Pod', name: 'guarded', uid: p.metadata!.uid!, pod: p });
        break;
      }
    }
    const result = await closedStatus(await r.respond(alert));
    expect(result.outcome).toBe('dismissed');
    expect(result.dismissal?.code).toBe(code);
    expect(result.actions).toEqual([]);
    expect(await podExists(kube, ns, w.name, w.uid)).toBe(true);
  });
});

describe('identity', () => {
  it('never deletes a pod that replaced the alerted one under the same name', async () => {
    const ns = await createNamespace(kube, 'replaced');
    const w = await createWorkload(kube, ns, 'StatefulSet');
    // Approval holds the incident after validation, so the pod can be replaced before the delete.
    const handle = await r.respond(alertFor(ns, w, { podUid: undefined, container: undefined }), {
      requireApprovalFor: ['terminate-pod'],
      watchSeconds: 0,
    });
    await r.waitForStage(handle, 'awaiting-approval');
    const name = w.pod.metadata!.name!;
    await kube.core.deleteNamespacedPod({ namespace: ns, name, gracePeriodSeconds: 0 });
    const successor = await createPod(kube, ns, name);
    await r.approve(handle, 'ana');
    const result = await closedStatus(handle);
    expect(result.actions).toEqual([expect.objectContaining({ action: 'delete-pod', status: 'already-done' })]);
    expect(result.actions[0]!.message).toContain('pod was replaced');
    expect(await podExists(kube, ns, name, successor.metadata!.uid)).toBe(true);
  });
});

describe('messages', () => {
  it('escalate during the watch suspends the workload', async () => {
    const ns = await createNamespace(kube, 'escalate');
    const w = await createWorkload(kube, ns, 'Deployment');
    const handle = await r.respond(alertFor(ns, w), { holdSuspensionSeconds: 0 });
    const watching = await r.waitForStage(handle, 'watching');
    expect(watching.actions.map((a) => a.action)).toEqual(['delete-pod']);
    await handle.signal(escalateSignal, { by: 'soc-lead', reason: 'miner confirmed by hash' });
    const result = await closedStatus(handle);
    expect(result.outcome).toBe('workload-suspended');
    expect(result.decision).toMatchObject({
      action: 'suspend-workload',
      reason: 'escalated by soc-lead: miner confirmed by hash',
    });
    expect((await kube.apps.readNamespacedDeployment({ namespace: ns, name: w.name })).spec?.replicas).toBe(0);
  });

  it('a repeat alert signal for the same pod (its container, detected after the kill) reaches the threshold and suspends', async () => {
    const ns = await createNamespace(kube, 'repeat');
    const w = await createWorkload(kube, ns, 'StatefulSet');
    const first = alertFor(ns, w);
    const handle = await r.respond(first, { holdSuspensionSeconds: 0 });
    const watching = await r.waitForStage(handle, 'watching');
    // The same alert again is a duplicate; a new alert ID detected after the kill is a repeat (docs/repeats.md).
    await r.respond(first);
    expect((await handle.query(statusQuery)).alerts).toMatchObject({
      count: 1,
      duplicates: 0,
      first: { alertId: first.alertId },
    });
    await r.respond({
      ...first,
      alertId: `${first.alertId}-again`,
      detectedAt: new Date(Date.parse(watching.killedAt!) + 1).toISOString(),
    });
    const result = await closedStatus(handle);
    expect(result.outcome).toBe('workload-suspended');
    expect(result.decision).toMatchObject({ action: 'suspend-workload', reason: '2 alerts within 900s (threshold 2)' });
  });

  it('repeats on a replacement pod of the same Deployment count across incidents', async () => {
    const ns = await createNamespace(kube, 'across');
    const w = await createWorkload(kube, ns, 'Deployment');
    expect((await closedStatus(await r.respond(alertFor(ns, w), { watchSeconds: 0 }))).outcome).toBe('pod-terminated');
    // The controller's replacement pod: same ReplicaSet, new name.
    const rsRef = w.pod.metadata!.ownerReferences![0]!;
    const replacement = await createPod(kube, ns, `${w.name}-5d8f-new`, rsRef);
    const alert = alertFor(ns, { ...w, pod: replacement });
    const result = await closedStatus(await r.respond(alert, { holdSuspensionSeconds: 0 }));
    expect(result.outcome).toBe('workload-suspended');
    expect(result.timeline.some((t) => t.event === 'earlier-incidents')).toBe(true);
  });

  it('approve lets an action that needs approval proceed', async () => {
    const ns = await createNamespace(kube, 'approve');
    const w = await createWorkload(kube, ns, 'Pod');
    const handle = await r.respond(alertFor(ns, w), { requireApprovalFor: ['terminate-pod'] });
    const waiting = await r.waitForStage(handle, 'awaiting-approval');
    expect(waiting.decision).toMatchObject({ action: 'await-approval', proposed: 'terminate-pod' });
    expect(waiting.proposal).toMatchObject({
      id: 'p1',
      action: 'terminate-pod',
      target: `pod ${ns}/${w.name} (uid ${w.uid})`,
      answer: null,
    });
    expect(await podExists(kube, ns, w.name)).toBe(true);
    expect(await r.approve(handle, 'bob')).toEqual({
      proposalId: 'p1',
      answer: 'approved',
      action: 'terminate-pod',
      target: `pod ${ns}/${w.name} (uid ${w.uid})`,
    });
    expect((await closedStatus(handle)).outcome).toBe('pod-terminated');
    expect(await podExists(kube, ns, w.name)).toBe(false);
  });

  it('deny dismisses with who and why', async () => {
    const ns = await createNamespace(kube, 'deny');
    const w = await createWorkload(kube, ns, 'Pod');
    const handle = await r.respond(alertFor(ns, w), { requireApprovalFor: ['terminate-pod'] });
    await r.deny(handle, 'bob', 'load test');
    const result = await closedStatus(handle);
    expect(result.dismissal).toEqual({ code: 'approval-denied', message: 'terminate-pod denied by bob: load test' });
    expect(await podExists(kube, ns, w.name)).toBe(true);
  });

  it.each([
    ['dismiss', 'dismissed', true],
    ['proceed', 'pod-terminated', false],
  ] as const)(
    'no answer within the approval timeout: onApprovalTimeout=%s -> %s',
    async (onApprovalTimeout, outcome, podLeft) => {
      const ns = await createNamespace(kube, 'timeout');
      const w = await createWorkload(kube, ns, 'Pod');
      const handle = await r.respond(alertFor(ns, w), {
        requireApprovalFor: ['terminate-pod'],
        approvalTimeoutSeconds: 2,
        onApprovalTimeout,
      });
      const result = await closedStatus(handle);
      expect(result.outcome).toBe(outcome);
      expect(await podExists(kube, ns, w.name)).toBe(podLeft);
    },
  );

  it('cancellation stops the incident before it acts, and says so', async () => {
    const ns = await createNamespace(kube, 'cancel');
    const w = await createWorkload(kube, ns, 'Pod');
    const handle = await r.respond(alertFor(ns, w), { requireApprovalFor: ['terminate-pod'] });
    await r.waitForStage(handle, 'awaiting-approval');
    await handle.cancel();
    await expect(handle.result()).rejects.toBeInstanceOf(WorkflowFailedError);
    const status = await handle.query(statusQuery);
    expect(status.outcome).toBe('cancelled');
    expect(status.stage).toBe('closed');
    expect((await handle.describe()).status.name).toBe('CANCELLED');
    expect(await podExists(kube, ns, w.name)).toBe(true);
  });
});

describe('inspection', () => {
  it('sets search attributes an analyst can filter on', async () => {
    const ns = await createNamespace(kube, 'search');
    const w = await createWorkload(kube, ns, 'Deployment');
    const handle = await r.respond(alertFor(ns, w), { watchSeconds: 0 });
    await closedStatus(handle);
    const attrs = (await handle.describe()).typedSearchAttributes;
    const get = (name: string) => attrs.getAll().find((p) => p.key.name === name)?.value;
    expect(get('PodResponderCluster')).toBe('local');
    expect(get('PodResponderNamespace')).toBe(ns);
    expect(get('PodResponderWorkloadKind')).toBe('Deployment');
    expect(get('PodResponderWorkloadName')).toBe(w.name);
    expect(get('PodResponderStage')).toBe('closed');
    expect(get('PodResponderOutcome')).toBe('pod-terminated');
    const texts = await activitySummaries(handle);
    expect(texts.length).toBeGreaterThan(0);
    expect(texts).toContain(`inspect pod ${ns}/${w.pod.metadata!.name} and its owners`);
    expect(texts).toContain(`delete pod ${ns}/${w.pod.metadata!.name} if uid is ${w.pod.metadata!.uid}`);
  });
});
