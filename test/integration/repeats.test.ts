/**
 * What counts as a repeat (docs/repeats.md), through the forwarder, the real worker, dev server and kube-apiserver,
 * with Falco events as Falcosidekick sends them (one request per event, never resent; its uuid is new each time):
 * another rule firing on the same event, or a late copy from before the kill, never raises the response; a
 * detection after the kill, on the workload's replacement pod, suspends the workload.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { statusQuery } from '../../workflows/messages.js';
import { closedStatus } from '../support/closed-status.js';
import { freshFixture } from '../support/alert-fixtures.js';
import {
  createNamespace,
  createPod,
  createWorkload,
  podExists,
  testKube,
  type TestKube,
  type Workload,
} from '../support/cluster.js';
import { bearer, startForwarder, TOKENS, type TestForwarder } from '../support/forwarder.js';
import { startResponder, type Responder } from '../support/responder.js';

let kube: TestKube;
let r: Responder;
let fwd: TestForwarder;
beforeAll(async () => {
  kube = testKube();
  r = await startResponder();
  // Falco's mining rules are Critical: with the default policy the first alert suspends. Here severity suspends
  // nothing, so only repeats can (the threshold: 2 within 900 s).
  fwd = await startForwarder({
    taskQueue: r.config.temporal.taskQueue,
    config: { policy: { suspendOnSeverity: [], watchSeconds: 4, holdSuspensionSeconds: 0 } },
  });
});
afterAll(async () => {
  await fwd?.close();
  await r?.close();
});

let seq = 0;
/** A Falco event about the workload's pod, as Falcosidekick posts it: `rule` and `time` as given, its container. */
function falcoEvent(
  fixture: 'falco-stratum' | 'falco-known-miner',
  ns: string,
  pod: Workload['pod'],
  time: string,
  rule?: string,
): Record<string, any> {
  const body = freshFixture(fixture, {
    cluster: 'local',
    namespace: ns,
    pod: pod.metadata!.name!,
    id: `rep-${Date.now()}-${++seq}`,
    uid: pod.metadata!.uid!,
    containerId: pod.containerId,
    containerName: 'app',
  });
  body.time = time;
  body.output_fields['evt.time'] = Number(BigInt(Date.parse(time)) * 1_000_000n);
  if (rule) body.rule = rule;
  return body;
}

async function post(body: Record<string, any>): Promise<string> {
  const res = await fwd.post('/v1/alerts/falco?cluster=local', body, bearer(TOKENS.falco));
  expect(res.status, JSON.stringify(res.json)).toBe(202);
  return res.json.results[0].workflowId as string;
}

const replicas = async (ns: string, name: string) =>
  (await kube.apps.readNamespacedDeployment({ namespace: ns, name })).spec?.replicas;

describe('what counts as a repeat', () => {
  it('two rules firing on one event (same container, same time): the pod is killed, the workload is not suspended', async () => {
    const ns = await createNamespace(kube, 'two-rules');
    const w = await createWorkload(kube, ns, 'Deployment');
    const at = new Date().toISOString();
    // One execve of the miner, seen by two rules: two requests, one after the other, as Falcosidekick sends them.
    const id = await post(falcoEvent('falco-known-miner', ns, w.pod, at));
    expect(
      await post(falcoEvent('falco-stratum', ns, w.pod, at, 'Detect crypto miners using the Stratum protocol')),
    ).toBe(id);
    const result = await closedStatus(r.client.workflow.getHandle(id));
    expect(result.alerts.count).toBe(2); // both reached the incident
    expect(result.outcome).toBe('pod-terminated');
    expect(result.decision).toMatchObject({ action: 'terminate-pod' });
    expect(result.actions.map((a) => a.action)).toEqual(['delete-pod']);
    expect(await podExists(kube, ns, w.pod.metadata!.name!)).toBe(false);
    expect(await replicas(ns, w.name)).toBe(3);
    const repeat = result.timeline.find((t) => t.event === 'repeat-alert')!;
    expect(repeat.detail).toMatch(/\(same container as the first alert: a repeat only if detected after the kill\)$/);
  });

  it('a late copy from before the kill, arriving after it: not a repeat', async () => {
    const ns = await createNamespace(kube, 'late');
    const w = await createWorkload(kube, ns, 'Deployment');
    const at = new Date().toISOString();
    const id = await post(falcoEvent('falco-known-miner', ns, w.pod, at));
    const handle = r.client.workflow.getHandle(id);
    const watching = await r.waitForStage(handle, 'watching');
    expect(watching.killedAt).not.toBeNull();
    // Another rule's alert on the same container, detected before the kill took effect, delivered late.
    const before = new Date(Date.parse(watching.killedAt!) - 1500).toISOString();
    await post(falcoEvent('falco-stratum', ns, w.pod, before, 'Detect crypto miners using the Stratum protocol'));
    const result = await closedStatus(handle);
    expect(result.alerts.count).toBe(2);
    expect(result.outcome).toBe('pod-terminated');
    expect(await replicas(ns, w.name)).toBe(3);
  });

  it('a detection on the replacement pod after the kill: the replacement is killed and the workload suspended', async () => {
    const ns = await createNamespace(kube, 'replacement');
    const w = await createWorkload(kube, ns, 'Deployment');
    const first = await post(falcoEvent('falco-known-miner', ns, w.pod, new Date().toISOString()));
    const killed = await r.waitForStage(r.client.workflow.getHandle(first), 'watching');
    // The ReplicaSet's replacement pod (a new name, a new container) runs the miner again.
    const replacement = await createPod(kube, ns, `${w.name}-5d8f-next`, w.pod.metadata!.ownerReferences![0]);
    const second = await post(
      falcoEvent('falco-known-miner', ns, replacement, new Date(Date.parse(killed.killedAt!) + 1000).toISOString()),
    );
    expect(second).not.toBe(first);
    const result = await closedStatus(r.client.workflow.getHandle(second));
    expect(result.outcome).toBe('workload-suspended');
    expect(result.decision).toMatchObject({ action: 'suspend-workload', reason: '2 alerts within 900s (threshold 2)' });
    expect(result.timeline.find((t) => t.event === 'earlier-incidents')!.detail).toBe(
      `1 earlier incident(s) on Deployment ${ns}/${w.name} in the window`,
    );
    expect(await podExists(kube, ns, replacement.metadata!.name!)).toBe(false);
    expect(await replicas(ns, w.name)).toBe(0);
    // The first incident killed its pod and suspended nothing.
    expect((await r.client.workflow.getHandle(first).query(statusQuery)).actions.map((a) => a.action)).toEqual([
      'delete-pod',
    ]);
  });

  it("a StatefulSet's replacement (the same name, so the same incident) detected after the kill: another container, a repeat, suspended", async () => {
    const ns = await createNamespace(kube, 'sts');
    const w = await createWorkload(kube, ns, 'StatefulSet');
    const name = w.pod.metadata!.name!;
    const id = await post(falcoEvent('falco-known-miner', ns, w.pod, new Date().toISOString()));
    const handle = r.client.workflow.getHandle(id);
    const watching = await r.waitForStage(handle, 'watching');
    // The StatefulSet controller's replacement: the same name, a new UID and container. Its alert reaches the same incident.
    const replacement = await createPod(kube, ns, name, w.pod.metadata!.ownerReferences![0]);
    expect(
      await post(
        falcoEvent('falco-known-miner', ns, replacement, new Date(Date.parse(watching.killedAt!) + 1000).toISOString()),
      ),
    ).toBe(id);
    const result = await closedStatus(handle);
    expect(result.outcome).toBe('workload-suspended');
    expect(result.timeline.find((t) => t.event === 'repeat-alert')!.detail).toMatch(/\(another container: a repeat\)$/);
    expect((await kube.apps.readNamespacedStatefulSet({ namespace: ns, name: w.name })).spec?.replicas).toBe(0);
  });
});
