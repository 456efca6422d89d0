/**
 * What an attack does to a responder left alone: floods of alerts, a suspension the cluster refuses, humans
 * answering stale proposals, restores at the wrong moment, a node that stopped reporting. Through the real
 * worker, dev server and kube-apiserver.
 */
import { WorkflowFailedError, type WorkflowHandle } from '@temporalio/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { PodAlert } from '../../domain/alert.js';
import { PRIOR_STATE_ANNOTATION, SUSPENDED_BY_ANNOTATION } from '../../remediation/protocol.js';
import type { IncidentWorkflow } from '../../workflows/malicious-pod-response.js';
import {
  alertsSignal,
  approveUpdate,
  denyUpdate,
  escalateSignal,
  restoreUpdate,
  statusQuery,
} from '../../workflows/messages.js';
import { createNode, dryRunScale, refuseUpdates } from '../support/admission.js';
import { createNamespace, createPod, createWorkload, podExists } from '../support/cluster.js';
import { alertFor, startResponder, useResponder } from '../support/responder.js';
import { refusal } from '../support/updates.js';
import { startKubelet, type KubeletStandIn } from '../support/kubelet.js';
import { closedStatus } from '../support/closed-status.js';

const t = useResponder();

const replicas = async (ns: string, name: string) =>
  (await t.kube.apps.readNamespacedDeployment({ namespace: ns, name })).spec?.replicas;
const annotations = async (ns: string, name: string) =>
  (await t.kube.apps.readNamespacedDeployment({ namespace: ns, name })).metadata?.annotations ?? {};

async function until<T>(read: () => Promise<T>, ok: (v: T) => boolean, what: string, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await read();
    if (ok(v)) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}: ${JSON.stringify(v).slice(0, 500)}`);
    await new Promise((res) => setTimeout(res, 200));
  }
}

describe('an alert flood', () => {
  it(
    '20,000 signals into one incident: exact count, bounded history per run, and it still restores',
    { timeout: 240_000 },
    async () => {
      const ns = await createNamespace(t.kube, 'flood');
      const w = await createWorkload(t.kube, ns, 'Deployment');
      // Critical: the first alert suspends the Deployment. The repeats, on its container and detected before the kill,
      // are not repeats that raise anything (docs/repeats.md): this is about taking them.
      const first = alertFor(ns, w, { severity: 'critical', raw: { padding: 'x'.repeat(100_000) } });
      // Hold checks off: this is about signals; a check (not a wait) cannot continue as new while 20,000 arrive.
      const handle = await t.r.respond(first, {
        holdSuspensionSeconds: 3600,
        holdCheckSeconds: 0,
        historyEventsPerRun: 1000,
        keepRecentAlerts: 3,
      }); // raw cut by the starter
      // A Falco event's worth of raw (~1 KB) per alert: what our starters send after cutting raw to an excerpt.
      const repeat = (n: number): PodAlert => ({
        ...first,
        alertId: `${first.alertId}-${n}`,
        raw: { n, output: 'y'.repeat(1000) },
      });

      // 20,000 alerts, one signal each, then 500 of them again (a sender retrying). Four in flight, in bursts of
      // 1,000 that the incident takes before the next: a TypeScript workflow takes a few hundred signals a second
      // (fewer on a loaded machine), and a run cannot continue as new while signals keep arriving, so an unpaced
      // sender can reach the server's 10,000 signals per run. That is why the forwarder batches and paces them.
      const ids = [...Array(20_000).keys(), ...Array(500).keys()];
      let next = 0;
      for (let burst = 1000; next < ids.length; burst = Math.min(burst + 1000, ids.length)) {
        await Promise.all(
          Array.from({ length: 4 }, async () => {
            while (next < burst) await handle.signal(alertsSignal, [repeat(ids[next++]!)]);
          }),
        );
        const sent = next;
        await until(
          () => handle.query(statusQuery),
          (st) => st.alerts.count - 1 + st.alerts.duplicates >= sent,
          `the first ${sent} alerts to be taken`,
          120_000,
        );
      }
      const s = await until(
        () => handle.query(statusQuery),
        (st) => st.alerts.count + st.alerts.duplicates >= 20_501,
        'every alert to be taken',
        180_000,
      );
      expect(s.alerts).toMatchObject({ count: 20_001, duplicates: 500, first: { alertId: first.alertId } });
      expect(s.alerts.recent).toHaveLength(3);
      expect(s.alerts.first.raw).toMatchObject({ truncatedFromChars: 100_014 });
      expect(s.stage).toBe('holding');
      expect(s.run).toBeGreaterThan(3);
      expect(s.timeline.some((t) => t.event === 'repeat-alerts' && / repeat alerts between /.test(t.detail))).toBe(
        true,
      );
      expect(JSON.stringify(s).length).toBeLessThan(256 * 1024);

      // Every run of the chain stayed far inside the server's limits (10,000 signals, 51,200 events, 50 MB).
      // The chain may continue as new once more after the status above, and visibility lags: list until it agrees.
      const chain = async () => {
        const list = [];
        for await (const run of t.r.client.workflow.list({ query: `WorkflowId = '${handle.workflowId}'` }))
          list.push(run);
        return { list, run: (await handle.query(statusQuery)).run };
      };
      const { list: runs } = await until(
        chain,
        (c) => c.list.length === c.run,
        'every run of the chain to be listed',
        30_000,
      );
      expect(runs.length).toBeGreaterThanOrEqual(s.run);
      // A run continues as new at its first wait past historyEventsPerRun (1,000); until then it takes whatever
      // arrives, and the first run's opening stretch (inspect, isolate, evidence, kill, suspend, verify) cannot stop
      // for it: at most one burst of this test's pacing (1,000) lands there, plus the run's own events.
      for (const run of runs) {
        const { historyLength, historySize } = await t.r.client.workflow
          .getHandle(run.workflowId, run.runId)
          .describe();
        expect(historyLength).toBeLessThan(1000 + 1000 + 500);
        expect(historySize).toBeLessThan(10 * 1024 * 1024);
      }

      // The suspension carried across runs is still restorable.
      await handle.executeUpdate(restoreUpdate, { args: [{ by: 'soc' }] });
      const result = await closedStatus(handle);
      expect(result.outcome).toBe('workload-restored');
      expect(await replicas(ns, w.name)).toBe(3);
    },
  );
});

describe('kill first', () => {
  it('a suspension the cluster refuses (403) still leaves the pod killed, and says what is left to do', async () => {
    const ns = await createNamespace(t.kube, 'killfirst');
    const w = await createWorkload(t.kube, ns, 'Deployment');
    const refused = await refuseUpdates(ns, 'apps', 'deployments/scale', dryRunScale(ns, w.name, 0));
    try {
      const result = await closedStatus(await t.r.respond(alertFor(ns, w, { severity: 'critical' })));
      expect(result.outcome).toBe('needs-manual-action');
      expect(result.problem).toMatch(
        new RegExp(
          `^suspending Deployment ${ns}/${w.name} failed: runDirect failed: scale Deployment ${ns}/${w.name} to 0: HTTP 403 Forbidden: .*the pod was terminated; suspend the workload by hand$`,
        ),
      );
      expect(result.actions.map((a) => [a.action, a.status])).toEqual([['delete-pod', 'done']]);
      expect(await podExists(t.kube, ns, w.pod.metadata!.name!)).toBe(false);
      // Nothing claims a suspension that did not happen.
      expect(await replicas(ns, w.name)).toBe(3);
      expect(await annotations(ns, w.name)).not.toHaveProperty(SUSPENDED_BY_ANNOTATION);
      expect(await annotations(ns, w.name)).not.toHaveProperty(PRIOR_STATE_ANNOTATION);
    } finally {
      await refused.lift();
    }
  });
});

describe('approvals are bound to a proposal', () => {
  it('refuses an answer when nothing awaits approval', async () => {
    const ns = await createNamespace(t.kube, 'noprop');
    const w = await createWorkload(t.kube, ns, 'Deployment');
    const handle = await t.r.respond(alertFor(ns, w));
    await t.r.waitForStage(handle, 'watching');
    expect(await refusal(handle.executeUpdate(approveUpdate, { args: [{ proposalId: 'p1', by: 'ana' }] }))).toBe(
      'nothing awaits approval: no action has been proposed (stage watching)',
    );
    await handle.terminate('test done');
  });

  it('an escalation supersedes the open proposal; a stale answer and a second answer are refused', async () => {
    const ns = await createNamespace(t.kube, 'propose');
    const w = await createWorkload(t.kube, ns, 'Deployment');
    const pod = `pod ${ns}/${w.pod.metadata!.name} (uid ${w.pod.metadata!.uid})`;
    const handle = await t.r.respond(alertFor(ns, w), {
      requireApprovalFor: ['terminate-pod', 'suspend-workload'],
      holdSuspensionSeconds: 0,
    });
    const p1 = await t.r.waitForStage(handle, 'awaiting-approval');
    expect(p1.proposal).toMatchObject({ id: 'p1', action: 'terminate-pod', target: pod, answer: null });

    await handle.signal(escalateSignal, { by: 'soc-lead', reason: 'miner confirmed' });
    const p2 = await until(
      () => handle.query(statusQuery),
      (st) => st.proposal?.id === 'p2',
      'a new proposal',
    );
    expect(p2.proposal).toMatchObject({
      action: 'suspend-workload',
      target: `Deployment ${ns}/${w.name}`,
      reason: 'escalated by soc-lead: miner confirmed',
    });
    expect(p2.pastProposals).toEqual([
      expect.objectContaining({ id: 'p1', answer: expect.objectContaining({ answer: 'superseded' }) }),
    ]);
    expect(await podExists(t.kube, ns, w.pod.metadata!.name!)).toBe(true); // nothing acts without its own answer

    expect(await refusal(handle.executeUpdate(approveUpdate, { args: [{ proposalId: 'p1', by: 'ana' }] }))).toBe(
      `proposal p1 (terminate-pod ${pod}) is no longer open: it was superseded; p2 (suspend-workload Deployment ${ns}/${w.name}) awaits an answer`,
    );
    expect(await refusal(handle.executeUpdate(approveUpdate, { args: [{ proposalId: 'p7', by: 'ana' }] }))).toMatch(
      /^there is no proposal p7; p2 /,
    );
    expect(
      await handle.executeUpdate(approveUpdate, { args: [{ proposalId: 'p2', by: 'ana', reason: 'seen' }] }),
    ).toEqual({
      proposalId: 'p2',
      answer: 'approved',
      action: 'suspend-workload',
      target: `Deployment ${ns}/${w.name}`,
    });
    const second = await refusal(handle.executeUpdate(denyUpdate, { args: [{ proposalId: 'p2', by: 'bob' }] }));
    expect(second).toMatch(/^proposal p2 was already answered: approved by ana at \d{4}-/);

    const result = await closedStatus(handle);
    expect(result.outcome).toBe('workload-suspended');
    expect(result.actions.map((a) => [a.action, a.status])).toEqual([
      ['delete-pod', 'done'],
      ['suspend-workload', 'done'],
    ]);
  });
});

describe('answers that arrive with the facts or the clock against them', () => {
  // The worker is down while the answer is sent: when a worker comes back, the answer reaches the incident in
  // the same workflow task as what happened meanwhile (the expiry timer, an escalation), as after an outage.
  async function downThenUp(
    policy: Record<string, unknown>,
    kind: 'Pod' | 'Deployment',
    meanwhile: (
      h: WorkflowHandle<IncidentWorkflow>,
      s: Awaited<ReturnType<typeof t.r.waitForStage>>,
    ) => Promise<{ answer: Promise<string> }>,
  ) {
    const ns = await createNamespace(t.kube, 'late');
    const w = await createWorkload(t.kube, ns, kind);
    const first = await startResponder();
    const started = await first.respond(alertFor(ns, w), policy);
    const waiting = await first.waitForStage(started, 'awaiting-approval');
    await first.close();
    const handle = t.r.client.workflow.getHandle<IncidentWorkflow>(started.workflowId);
    // The answer is sent, not awaited: it is taken only once a worker is back.
    const { answer } = await meanwhile(handle, waiting);
    const again = await startResponder({ taskQueue: first.config.temporal.taskQueue });
    return { ns, w, handle, waiting, refused: await answer, close: () => again.close() };
  }

  it(
    'an approval that reaches the incident after its proposal expired is refused with the reason, and does not act under dismiss',
    { timeout: 90_000 },
    async () => {
      const { ns, w, handle, waiting, refused, close } = await downThenUp(
        { requireApprovalFor: ['terminate-pod'], approvalTimeoutSeconds: 2, onApprovalTimeout: 'dismiss' },
        'Pod',
        async (h, s) => {
          await new Promise((res) => setTimeout(res, Date.parse(s.proposal!.expiresAt) - Date.now() + 500));
          return { answer: refusal(h.executeUpdate(approveUpdate, { args: [{ proposalId: 'p1', by: 'ana' }] })) };
        },
      );
      try {
        expect(refused).toBe(
          `proposal p1 (terminate-pod pod ${ns}/${w.name} (uid ${w.uid})) expired at ${waiting.proposal!.expiresAt}: no answer is taken after it; on expiry the incident is dismissed (policy onApprovalTimeout: dismiss)`,
        );
        const result = await closedStatus(handle);
        expect(result.outcome).toBe('dismissed');
        expect(result.proposal?.answer).toMatchObject({ answer: 'timed-out' });
        expect(result.actions).toEqual([]);
        expect(await podExists(t.kube, ns, w.name)).toBe(true);
      } finally {
        await close();
      }
    },
  );

  it(
    'an answer to a proposal an escalation outdated in the same task is refused with the reason, not taken and ignored',
    { timeout: 90_000 },
    async () => {
      const policy = { requireApprovalFor: ['terminate-pod', 'suspend-workload'], holdSuspensionSeconds: 0 };
      const { ns, w, handle, refused, close } = await downThenUp(policy, 'Deployment', async (h) => {
        await h.signal(escalateSignal, { by: 'soc-lead', reason: 'miner confirmed' });
        return { answer: refusal(h.executeUpdate(approveUpdate, { args: [{ proposalId: 'p1', by: 'ana' }] })) };
      });
      try {
        const pod = `pod ${ns}/${w.pod.metadata!.name} (uid ${w.pod.metadata!.uid})`;
        expect(refused).toBe(
          `proposal p1 (terminate-pod ${pod}) is outdated: the facts now call for suspend-workload Deployment ${ns}/${w.name} (escalated by soc-lead: miner confirmed); a new proposal replaces it: answer that one`,
        );
        const s = await until(
          () => handle.query(statusQuery),
          (st) => st.proposal?.id === 'p2',
          'the new proposal',
        );
        expect(s.proposal).toMatchObject({ action: 'suspend-workload', answer: null });
        expect(s.pastProposals).toEqual([
          expect.objectContaining({ id: 'p1', answer: expect.objectContaining({ answer: 'superseded' }) }),
        ]);
        expect(await podExists(t.kube, ns, w.pod.metadata!.name!)).toBe(true);
      } finally {
        await handle.terminate('test done');
        await close();
      }
    },
  );
});

describe('restore', () => {
  it('is refused before verification, can fail, and can be asked again', async () => {
    const ns = await createNamespace(t.kube, 'restore');
    const w = await createWorkload(t.kube, ns, 'Deployment');
    // A pod on a node, deleted with a grace period, stays Terminating until a kubelet acts (there is none
    // here): verification waits on it, with the suspension already recorded.
    const podName = 'miner-on-node';
    const pod = await createPod(t.kube, ns, podName, w.pod.metadata!.ownerReferences![0], {}, await createNode('True'));
    const alert = alertFor(ns, { ...w, pod }, { severity: 'critical' });
    const handle = await t.r.respond(alert, { terminateGracePeriodSeconds: 30, holdSuspensionSeconds: 600 });
    await until(
      () => handle.query(statusQuery),
      (st) => st.stage === 'verifying' && st.suspension !== null,
      'verification of the suspension',
    );
    expect(await refusal(handle.executeUpdate(restoreUpdate, { args: [{ by: 'ana' }] }))).toBe(
      'restore is possible only while the verified suspension is held (stage is verifying)',
    );
    await t.kube.core.deleteNamespacedPod({ namespace: ns, name: podName, gracePeriodSeconds: 0 }); // the kubelet's part
    await t.r.waitForStage(handle, 'holding');

    const refused = await refuseUpdates(ns, 'apps', 'deployments/scale', dryRunScale(ns, w.name, 0));
    const failed = await refusal(handle.executeUpdate(restoreUpdate, { args: [{ by: 'ana' }] }));
    expect(failed).toMatch(
      new RegExp(
        `^restore of Deployment ${ns}/${w.name} failed: runDirect failed: scale Deployment ${ns}/${w.name} to 3: HTTP 403 Forbidden: .*; it is still suspended and restore can be asked again$`,
      ),
    );
    const after = await handle.query(statusQuery);
    expect(after.stage).toBe('holding');
    expect(after.restore).toMatchObject({ state: 'failed', by: 'ana' });
    expect(await replicas(ns, w.name)).toBe(0);

    await refused.lift();
    expect(await handle.executeUpdate(restoreUpdate, { args: [{ by: 'bob', reason: 'fixed' }] })).toMatchObject({
      action: 'restore-workload',
      status: 'done',
    });
    const result = await closedStatus(handle);
    expect(result.outcome).toBe('workload-restored');
    expect(result.restore).toMatchObject({ state: 'restored', by: 'bob' });
    expect(await replicas(ns, w.name)).toBe(3);
    expect(result.timeline.map((t) => t.event)).toEqual(expect.arrayContaining(['restore-failed', 'restored']));
  });

  it('cancelling while holding leaves the suspension in place and says how to undo it', async () => {
    const ns = await createNamespace(t.kube, 'cancelhold');
    const w = await createWorkload(t.kube, ns, 'Deployment');
    const handle = await t.r.respond(alertFor(ns, w, { severity: 'critical' }), { holdSuspensionSeconds: 600 });
    await t.r.waitForStage(handle, 'holding');
    await handle.cancel();
    await expect(handle.result()).rejects.toBeInstanceOf(WorkflowFailedError);
    const s = await handle.query(statusQuery);
    expect(s).toMatchObject({ outcome: 'cancelled', stage: 'closed' });
    expect(s.problem).toBe(
      `the workload is left suspended (Deployment ${ns}/${w.name}: replicas 3 -> 0); undo it by hand, the prior state is also in the objects' pod-responder.io/prior-state annotation`,
    );
    expect(await replicas(ns, w.name)).toBe(0);
  });
});

describe('truthful verification', () => {
  let kubelet: KubeletStandIn;
  beforeAll(async () => {
    kubelet = await startKubelet();
  });
  afterAll(async () => kubelet?.close());

  async function killOnNode(node: string): Promise<WorkflowHandle<IncidentWorkflow>> {
    const ns = await createNamespace(t.kube, 'node');
    const pod = await createPod(t.kube, ns, 'miner', undefined, {}, node);
    return t.r.respond(alertFor(ns, { kind: 'Pod', name: 'miner', uid: pod.metadata!.uid!, pod }));
  }

  it("a pod is terminated once its node's kubelet has stopped it and removed it (a graceful delete)", async () => {
    const result = await closedStatus(await killOnNode(kubelet.node));
    expect(result.outcome).toBe('pod-terminated');
    expect(result.verification).toEqual([
      expect.objectContaining({ ok: true, observed: `gone; node ${kubelet.node} is Ready` }),
    ]);
    expect(result.actions[0]!.message).toMatch(/^deleted with grace period 2s/);
    expect(kubelet.stopped.map((s) => s.pod)).toContain(`${result.pod!.namespace}/miner`);
  });

  it('a pod deleted on a NotReady node stays terminating there, and is not called terminated', async () => {
    const node = await createNode('Unknown');
    const result = await closedStatus(await killOnNode(node));
    expect(result.outcome).toBe('needs-manual-action');
    expect(result.problem).toMatch(
      new RegExp(
        `^still present, terminating since \\S+ on node ${node}, which is NotReady \\(Ready=Unknown since .*, NodeStatusUnknown\\): its kubelet is not stopping the container; check the node and the container by hand`,
      ),
    );
    expect(result.actions.map((a) => [a.action, a.status])).toEqual([['delete-pod', 'done']]);
    expect(
      (await t.kube.core.readNamespacedPod({ namespace: result.pod!.namespace, name: 'miner' })).metadata
        ?.deletionTimestamp,
    ).toBeDefined();
  });
});
