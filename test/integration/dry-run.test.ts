/**
 * Dry run, through the real worker, dev server and kube-apiserver (and the forwarder, for a routing rule in
 * dry run): every check and decision runs, the incident says exactly what it would have done, and the
 * cluster is the same object for object (resource versions compared) before and after.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freshFixture } from '../support/alert-fixtures.js';
import { createNamespace, createWorkload } from '../support/cluster.js';
import { bearer, startForwarder, TOKENS, type TestForwarder } from '../support/forwarder.js';
import { alertFor, useResponder } from '../support/responder.js';
import { closedStatus } from '../support/closed-status.js';

const t = useResponder();

/** Every object of the kinds pod-responder touches in the namespace, with its resource version. */
async function snapshot(ns: string): Promise<string[]> {
  const lists = await Promise.all([
    t.kube.core.listNamespacedPod({ namespace: ns }),
    t.kube.apps.listNamespacedDeployment({ namespace: ns }),
    t.kube.apps.listNamespacedReplicaSet({ namespace: ns }),
    t.kube.apps.listNamespacedStatefulSet({ namespace: ns }),
    t.kube.apps.listNamespacedDaemonSet({ namespace: ns }),
    t.kube.batch.listNamespacedCronJob({ namespace: ns }),
    t.kube.batch.listNamespacedJob({ namespace: ns }),
    t.kube.networking.listNamespacedNetworkPolicy({ namespace: ns }),
  ]);
  return lists.flatMap((l, i) => l.items.map((o) => `${i}:${o.metadata?.name}@${o.metadata?.resourceVersion}`)).sort();
}

describe('dry run', () => {
  it('a critical alert on a Deployment: would isolate, kill and suspend; nothing in the namespace changes', async () => {
    const ns = await createNamespace(t.kube, 'dry');
    const w = await createWorkload(t.kube, ns, 'Deployment');
    const before = await snapshot(ns);
    const result = await closedStatus(
      await t.r.respond(alertFor(ns, w, { severity: 'critical' }), { mode: 'dry-run' }),
    );
    expect(result.outcome).toBe('dry-run');
    const pod = `pod ${ns}/${w.pod.metadata!.name} (uid ${w.pod.metadata!.uid})`;
    expect(result.wouldHaveDone).toEqual([
      `would-isolate ${pod}: label pod-responder.io/isolated and a deny-all NetworkPolicy`,
      `would-terminate-pod ${pod}, grace period 2s`,
      `would-suspend-workload Deployment ${ns}/${w.name}: replicas to 0 through the scale subresource, held 604800s for restore`,
    ]);
    expect(result.problem).toMatch(
      /^dry run: nothing was changed \(severity critical suspends the workload\); the incident would have: would-isolate /,
    );
    expect(result.actions).toEqual([]);
    expect(result.isolation ?? null).toBeNull();
    expect(await snapshot(ns)).toEqual(before);
  });

  it('an action needing approval: says it would propose it, and asks nobody', async () => {
    const ns = await createNamespace(t.kube, 'dry-approval');
    const w = await createWorkload(t.kube, ns, 'Pod');
    const before = await snapshot(ns);
    const result = await closedStatus(
      await t.r.respond(alertFor(ns, w), { mode: 'dry-run', requireApprovalFor: ['terminate-pod'], isolate: false }),
    );
    expect(result.outcome).toBe('dry-run');
    expect(result.proposal).toBeNull();
    expect(result.wouldHaveDone).toEqual([
      'would-propose terminate-pod for approval (policy requireApprovalFor) and wait up to 900s; then, if approved:',
      `would-terminate-pod pod ${ns}/${w.pod.metadata!.name} (uid ${w.pod.metadata!.uid}), grace period 2s`,
    ]);
    expect(await snapshot(ns)).toEqual(before);
  });

  it('checks still run: a stale alert is dismissed as in enforcement, not reported as a dry run', async () => {
    const ns = await createNamespace(t.kube, 'dry-stale');
    const w = await createWorkload(t.kube, ns, 'Pod');
    const result = await closedStatus(
      await t.r.respond(alertFor(ns, w, { detectedAt: new Date(Date.now() - 7200_000).toISOString() }), {
        mode: 'dry-run',
      }),
    );
    expect(result.outcome).toBe('dismissed');
    expect(result.dismissal?.code).toBe('stale-alert');
  });
});

describe('a routing rule in dry run', () => {
  let fwd: TestForwarder;
  beforeAll(async () => {
    fwd = await startForwarder({
      taskQueue: t.r.config.temporal.taskQueue,
      forwarder: {
        sources: { falco: { token: TOKENS.falco } },
        // Falco's detections are new here: watch what they would do before letting them act.
        routes: [{ name: 'falco-trial', action: 'respond', source: ['falco'], mode: 'dry-run' }],
      },
    });
  });
  afterAll(async () => fwd?.close());

  it('starts its incidents in dry run: the pod is untouched', async () => {
    const ns = await createNamespace(t.kube, 'dry-route');
    const w = await createWorkload(t.kube, ns, 'Pod');
    const before = await snapshot(ns);
    const body = freshFixture('falco-stratum', {
      cluster: 'local',
      namespace: ns,
      pod: w.name,
      id: `dry-${Date.now()}`,
      uid: w.uid,
      containerId: w.pod.containerId,
      containerName: 'app',
    });
    const res = await fwd.post('/v1/alerts/falco?cluster=local', body, bearer(TOKENS.falco));
    expect(res.status, JSON.stringify(res.json)).toBe(202);
    expect(res.json.results[0].route).toBe('falco-trial');
    const result = await closedStatus(t.r.client.workflow.getHandle(res.json.results[0].workflowId));
    expect(result.outcome).toBe('dry-run');
    expect(result.wouldHaveDone!.some((s: string) => s.startsWith('would-terminate-pod'))).toBe(true);
    expect(await snapshot(ns)).toEqual(before);
  });
});
