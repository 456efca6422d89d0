/**
 * Isolation before destruction, through the real worker, dev server and kube-apiserver: the deny-all
 * NetworkPolicy and the incident's label, in place while a person decides, verified, and removed when
 * the pod is gone, denied, or the incident is cancelled; a policy with our name that is not ours is
 * left alone; the pod stays matched by its ReplicaSet.
 */
import type { V1NetworkPolicy } from '@kubernetes/client-node';
import { describe, expect, inject, it } from 'vitest';
import { isolationNames, ISOLATION_LABEL } from '../../remediation/isolate.js';
import { kubeClients, kubeConfigFromFile } from '../../remediation/kube.js';
import { runOperation } from '../../remediation/run.js';
import { statusQuery } from '../../workflows/messages.js';
import { createNamespace, createWorkload, podExists, type Workload } from '../support/cluster.js';
import { alertFor, useResponder } from '../support/responder.js';
import { closedStatus } from '../support/closed-status.js';

const t = useResponder();

const policyOf = async (ns: string, incidentId: string): Promise<V1NetworkPolicy | null> =>
  t.kube.networking
    .readNamespacedNetworkPolicy({ namespace: ns, name: isolationNames(incidentId).policy })
    .catch(() => null);
const podLabels = async (w: Workload) =>
  (await t.kube.core.readNamespacedPod({ namespace: w.pod.metadata!.namespace!, name: w.pod.metadata!.name! })).metadata
    ?.labels ?? {};

describe('isolation before the kill', () => {
  it('while a person decides, the pod is isolated (deny-all, owned by the pod, labels only added); approved: killed, then the policy is removed', async () => {
    const ns = await createNamespace(t.kube, 'iso');
    const w = await createWorkload(t.kube, ns, 'Deployment');
    const before = await podLabels(w);
    const h = await t.r.respond(alertFor(ns, w), { requireApprovalFor: ['terminate-pod'], watchSeconds: 0 });
    const waiting = await t.r.waitForStage(h, 'awaiting-approval');

    const { label, policy: name } = isolationNames(h.workflowId);
    expect(waiting.isolation).toMatchObject({ state: 'isolated', networkPolicy: `${ns}/${name}` });
    expect(waiting.isolation!.detail).toContain(
      "enforced only where the cluster's network plugin enforces NetworkPolicy",
    );
    const policy = (await policyOf(ns, h.workflowId))!;
    expect(policy.spec).toEqual({
      podSelector: { matchLabels: { [ISOLATION_LABEL]: label } },
      policyTypes: ['Ingress', 'Egress'],
    });
    expect(policy.metadata?.ownerReferences).toEqual([
      { apiVersion: 'v1', kind: 'Pod', name: w.pod.metadata!.name, uid: w.pod.metadata!.uid },
    ]);
    expect(policy.metadata?.annotations?.['pod-responder.io/incident']).toBe(h.workflowId);
    // Only added: every label it had (those its ReplicaSet selects on among them) is unchanged, and it is still the ReplicaSet's.
    expect(await podLabels(w)).toEqual({ ...before, [ISOLATION_LABEL]: label });
    expect(
      (await t.kube.core.readNamespacedPod({ namespace: ns, name: w.pod.metadata!.name! })).metadata?.ownerReferences,
    ).toEqual(w.pod.metadata!.ownerReferences);

    await t.r.approve(h, 'lead');
    const result = await closedStatus(h);
    expect(result.outcome).toBe('pod-terminated');
    expect(await podExists(t.kube, ns, w.pod.metadata!.name!)).toBe(false);
    expect(await policyOf(ns, h.workflowId)).toBeNull();
    expect(result.isolation).toMatchObject({ state: 'released' });
    expect(result.isolation!.detail).toMatch(/^the kill is verified \(gone\): policy deleted; pod gone$/);
    const events = result.timeline.map((e) => e.event);
    expect(events.indexOf('isolate-pod')).toBeLessThan(events.indexOf('delete-pod'));
  });

  it('denied: the pod gets its network back (policy deleted, label removed), untouched otherwise', async () => {
    const ns = await createNamespace(t.kube, 'iso-deny');
    const w = await createWorkload(t.kube, ns, 'Pod');
    const before = await podLabels(w);
    const h = await t.r.respond(alertFor(ns, w), { requireApprovalFor: ['terminate-pod'] });
    await t.r.waitForStage(h, 'awaiting-approval');
    expect(await policyOf(ns, h.workflowId)).not.toBeNull();
    await t.r.deny(h, 'lead', 'a benchmark, not a miner');
    const result = await closedStatus(h);
    expect(result.outcome).toBe('dismissed');
    expect(result.isolation).toMatchObject({
      state: 'released',
      detail: 'the incident was dismissed: policy deleted; label removed',
    });
    expect(await policyOf(ns, h.workflowId)).toBeNull();
    expect(await podLabels(w)).toEqual(before);
    expect(await podExists(t.kube, ns, w.pod.metadata!.name!, w.pod.metadata!.uid)).toBe(true);
  });

  it('cancelled while isolated: the isolation is removed as the incident ends', async () => {
    const ns = await createNamespace(t.kube, 'iso-cancel');
    const w = await createWorkload(t.kube, ns, 'Pod');
    const h = await t.r.respond(alertFor(ns, w), { requireApprovalFor: ['terminate-pod'] });
    await t.r.waitForStage(h, 'awaiting-approval');
    await h.cancel();
    await closedStatus(h).catch(() => undefined);
    const status = await h.query(statusQuery);
    expect(status.outcome).toBe('cancelled');
    expect(status.isolation).toMatchObject({
      state: 'released',
      detail: 'the incident was cancelled: policy deleted; label removed',
    });
    expect(await policyOf(ns, h.workflowId)).toBeNull();
    expect((await podLabels(w))[ISOLATION_LABEL]).toBeUndefined();
  });

  it('a policy with our name that is not ours is left intact; the kill goes on without isolation', async () => {
    const ns = await createNamespace(t.kube, 'iso-foreign');
    const w = await createWorkload(t.kube, ns, 'Pod');
    const h = t.r.client.workflow.getHandle(`pod-incident:local:${ns}:${w.pod.metadata!.name}`);
    const name = isolationNames(h.workflowId).policy;
    await t.kube.networking.createNamespacedNetworkPolicy({
      namespace: ns,
      body: {
        metadata: { name, annotations: { owner: 'platform-team' } },
        spec: { podSelector: {}, policyTypes: ['Ingress'] },
      },
    });
    const result = await closedStatus(await t.r.respond(alertFor(ns, w)));
    expect(result.outcome).toBe('pod-terminated');
    expect(result.isolation).toMatchObject({ state: 'failed', networkPolicy: null });
    expect(result.isolation!.detail).toBe(
      `NetworkPolicy ${ns}/${name} exists and is not this incident's (no pod-responder annotation): left intact, the pod is not isolated`,
    );
    const kept = (await policyOf(ns, h.workflowId))!;
    expect(kept.metadata?.annotations).toEqual({ owner: 'platform-team' });
    expect(kept.spec).toEqual({ podSelector: {}, policyTypes: ['Ingress'] });
  });

  it('a suspension isolates before the kill and releases once the pod is gone; off by policy, nothing is created', async () => {
    const ns = await createNamespace(t.kube, 'iso-suspend');
    const w = await createWorkload(t.kube, ns, 'StatefulSet');
    const h = await t.r.respond(alertFor(ns, w, { severity: 'critical' }), { holdSuspensionSeconds: 0 });
    const result = await closedStatus(h);
    expect(result.outcome).toBe('workload-suspended');
    expect(result.isolation).toMatchObject({ state: 'released' });
    expect(await policyOf(ns, h.workflowId)).toBeNull();

    const w2 = await createWorkload(t.kube, ns, 'Pod');
    const off = await closedStatus(await t.r.respond(alertFor(ns, w2), { isolate: false }));
    expect(off.outcome).toBe('pod-terminated');
    expect(off.isolation ?? null).toBeNull();
    expect(off.timeline.some((e) => e.event === 'isolate-pod')).toBe(false);
  });
});

describe('Kubernetes Events', () => {
  it('each change is an Event on what changed, naming the incident: isolated and terminated on the pod, suspended on the workload', async () => {
    const ns = await createNamespace(t.kube, 'iso-events');
    const w = await createWorkload(t.kube, ns, 'StatefulSet');
    const h = await t.r.respond(alertFor(ns, w, { severity: 'critical' }), { holdSuspensionSeconds: 0 });
    expect((await closedStatus(h)).outcome).toBe('workload-suspended');
    const events = (await t.kube.core.listNamespacedEvent({ namespace: ns })).items.filter(
      (e) => e.source?.component === 'pod-responder',
    );
    const on = (kind: string) =>
      events.filter((e) => e.involvedObject.kind === kind).map((e) => [e.involvedObject.name, e.reason]);
    expect(on('Pod')).toEqual([
      [w.pod.metadata!.name, 'PodResponderIsolated'],
      [w.pod.metadata!.name, 'PodResponderTerminated'],
    ]);
    expect(on('StatefulSet')).toEqual([[w.name, 'PodResponderSuspended']]);
    for (const e of events) expect(e.message).toContain(`pod-responder (incident ${h.workflowId})`);
    expect(events.find((e) => e.reason === 'PodResponderSuspended')!.message).toContain(
      `StatefulSet ${ns}/${w.name}: replicas 2 -> 0`,
    );
  });
});

/** The remediation core's own clients, as the direct executor builds them. */
const coreClients = () => kubeClients(kubeConfigFromFile(inject('kubeconfigPath')));

describe('the isolate operation itself', () => {
  it('never labels a pod that replaced ours under the same name, and leaves no policy behind', async () => {
    const clients = coreClients();
    const ns = await createNamespace(t.kube, 'iso-replaced');
    const w = await createWorkload(t.kube, ns, 'Pod');
    const before = await podLabels(w);
    const incidentId = `pod-incident:local:${ns}:${w.pod.metadata!.name}`;
    const stale = { namespace: ns, name: w.pod.metadata!.name!, uid: '0f8fad5b-d9cb-469f-a165-70867728950e' };
    const { result, record } = await runOperation(clients, { op: 'isolate-pod', incidentId, pod: stale });
    expect(record).toBeNull();
    expect(result.status).toBe('not-found');
    expect(result.message).toMatch(/^pod was replaced: /);
    expect(await podLabels(w)).toEqual(before);
    expect(await policyOf(ns, incidentId)).toBeNull();
  });

  it('run again (a retry after a crash), it adopts its own policy; released twice, the second finds nothing to do', async () => {
    const clients = coreClients();
    const ns = await createNamespace(t.kube, 'iso-again');
    const w = await createWorkload(t.kube, ns, 'Pod');
    const incidentId = `pod-incident:local:${ns}:${w.pod.metadata!.name}`;
    const pod = { namespace: ns, name: w.pod.metadata!.name!, uid: w.pod.metadata!.uid! };
    const first = await runOperation(clients, { op: 'isolate-pod', incidentId, pod });
    const again = await runOperation(clients, { op: 'isolate-pod', incidentId, pod });
    expect([first.result.status, again.result.status]).toEqual(['done', 'already-done']);
    expect(again.record).toEqual(first.record);
    const released = await runOperation(clients, { op: 'release-isolation', record: first.record! });
    const releasedAgain = await runOperation(clients, { op: 'release-isolation', record: first.record! });
    expect([released.result.status, releasedAgain.result.status]).toEqual(['done', 'already-done']);
    expect(releasedAgain.result.message).toBe('policy already gone; label removed');
    expect(await policyOf(ns, incidentId)).toBeNull();
  });
});

describe('isolation that cannot hold is reported, not claimed', () => {
  it('a hostNetwork pod: not enforceable (NetworkPolicy does not apply to the host network), nothing left behind', async () => {
    const clients = coreClients();
    const ns = await createNamespace(t.kube, 'iso-host');
    const pod = await t.kube.core.createNamespacedPod({
      namespace: ns,
      body: {
        metadata: { name: 'miner', labels: { app: 'miner' } },
        spec: { hostNetwork: true, containers: [{ name: 'app', image: 'registry.example/app:1' }] },
      },
    });
    const incidentId = `pod-incident:local:${ns}:miner`;
    const out = await runOperation(clients, {
      op: 'isolate-pod',
      incidentId,
      pod: { namespace: ns, name: 'miner', uid: pod.metadata!.uid! },
    });
    expect(out.record).toBeNull();
    expect(out.result.status).toBe('unsupported');
    expect(out.notEnforceable).toBe(
      "the pod uses the host's network (hostNetwork: true), which NetworkPolicy does not apply to",
    );
    expect(await policyOf(ns, incidentId)).toBeNull();
    expect((await t.kube.core.readNamespacedPod({ namespace: ns, name: 'miner' })).metadata?.labels).toEqual({
      app: 'miner',
    });
  });

  it('a pod another policy allows traffic to: not enforceable, naming that policy (policies add up); ours is kept for what it still denies', async () => {
    const clients = coreClients();
    const ns = await createNamespace(t.kube, 'iso-allow');
    const w = await createWorkload(t.kube, ns, 'Pod');
    // Every pod of the namespace may be reached from anywhere: the deny-all cannot take that away.
    await t.kube.networking.createNamespacedNetworkPolicy({
      namespace: ns,
      body: {
        metadata: { name: 'allow-all-ingress' },
        spec: { podSelector: {}, policyTypes: ['Ingress'], ingress: [{}] },
      },
    });
    // One that selects other pods only, and one that selects this pod but allows nothing: neither counts.
    await t.kube.networking.createNamespacedNetworkPolicy({
      namespace: ns,
      body: {
        metadata: { name: 'web-egress' },
        spec: { podSelector: { matchLabels: { app: 'web' } }, policyTypes: ['Egress'], egress: [{}] },
      },
    });
    await t.kube.networking.createNamespacedNetworkPolicy({
      namespace: ns,
      body: { metadata: { name: 'default-deny' }, spec: { podSelector: {}, policyTypes: ['Ingress', 'Egress'] } },
    });
    const incidentId = `pod-incident:local:${ns}:${w.pod.metadata!.name}`;
    const out = await runOperation(clients, {
      op: 'isolate-pod',
      incidentId,
      pod: { namespace: ns, name: w.pod.metadata!.name!, uid: w.pod.metadata!.uid! },
    });
    expect(out.result.status).toBe('unsupported');
    expect(out.notEnforceable).toBe(
      `NetworkPolicies add up and NetworkPolicy ${ns}/allow-all-ingress also selects the pod and allows its ingress: the deny-all does not cut that traffic`,
    );
    expect(out.record).not.toBeNull();
    expect(await policyOf(ns, incidentId)).not.toBeNull();
    await runOperation(clients, { op: 'release-isolation', record: out.record! });
    expect(await policyOf(ns, incidentId)).toBeNull();
  });

  it('the kill keeps the isolation past the pod object: no longer owned by the pod, so the garbage collector leaves it', async () => {
    const clients = coreClients();
    const ns = await createNamespace(t.kube, 'iso-keep');
    const w = await createWorkload(t.kube, ns, 'Pod');
    const incidentId = `pod-incident:local:${ns}:${w.pod.metadata!.name}`;
    const pod = { namespace: ns, name: w.pod.metadata!.name!, uid: w.pod.metadata!.uid! };
    const { record } = await runOperation(clients, { op: 'isolate-pod', incidentId, pod });
    expect((await policyOf(ns, incidentId))!.metadata?.ownerReferences).toHaveLength(1);
    const { result } = await runOperation(clients, {
      op: 'terminate-pod',
      pod,
      gracePeriodSeconds: 0,
      incidentId,
      isolation: record!,
    });
    // Asked for 0, deleted gracefully all the same: the object goes only once the kubelet has stopped the container.
    expect(result.message).toBe(
      `deleted with grace period 1s; NetworkPolicy ${ns}/${record!.networkPolicy} kept until the kill is verified (no longer owned by the pod)`,
    );
    const kept = (await policyOf(ns, incidentId))!;
    expect(kept.metadata?.ownerReferences ?? []).toEqual([]);
    expect(kept.metadata?.annotations?.['pod-responder.io/incident']).toBe(incidentId);
    await runOperation(clients, { op: 'release-isolation', record: record! });
    expect(await policyOf(ns, incidentId)).toBeNull();
  });
});
