/**
 * Holding the line, through the real worker, dev server and kube-apiserver: while a suspension is held,
 * someone undoes it as a GitOps self-heal or a person would (scaling the Deployment back up, flipping the
 * CronJob's `suspend`, removing the DaemonSet's nodeSelector), each under a field manager of its own. The
 * incident re-applies the suspension, records who reverted it, and after `maxReverts` says who to stop.
 */
import { describe, expect, it } from 'vitest';
import { mergePatch } from '../../remediation/kube.js';
import { SUSPEND_NODE_SELECTOR_KEY } from '../../remediation/protocol.js';
import { restoreUpdate, statusQuery } from '../../workflows/messages.js';
import { createNamespace, createWorkload } from '../support/cluster.js';
import { alertFor, useResponder } from '../support/responder.js';
import { until } from '../support/until.js';
import { closedStatus } from '../support/closed-status.js';

const t = useResponder();

const HOLD = { holdCheckSeconds: 1, holdSuspensionSeconds: 600 };

async function suspended(kind: string, policy: object) {
  const ns = await createNamespace(t.kube, 'hold');
  const w = await createWorkload(t.kube, ns, kind);
  const h = await t.r.respond(alertFor(ns, w, { severity: 'critical' }), { ...HOLD, ...policy });
  await t.r.waitForStage(h, 'holding');
  const revertsReach = (n: number) =>
    until(`${n} revert(s) recorded`, async () => {
      const s = await h.query(statusQuery);
      return (s.hold?.reverts ?? 0) >= n && s;
    });
  return { ns, w, h, revertsReach };
}

describe('a held suspension that someone undoes', () => {
  it('a Deployment scaled back up by a GitOps controller is scaled down again; the second revert ends the fight, naming it', async () => {
    const { ns, w, h, revertsReach } = await suspended('Deployment', { maxReverts: 2 });
    const replicas = async () =>
      (await t.kube.apps.readNamespacedDeployment({ namespace: ns, name: w.name })).spec?.replicas;
    // Argo CD's self-heal applies the Deployment as Git has it: replicas 3.
    const selfHeal = () =>
      t.kube.apps.patchNamespacedDeployment(
        { namespace: ns, name: w.name, body: { spec: { replicas: 3 } }, fieldManager: 'argocd-application-controller' },
        mergePatch,
      );

    await selfHeal();
    const first = await revertsReach(1);
    expect(first.hold!.lastRevert).toMatchObject({
      observed: `Deployment ${ns}/${w.name}: spec.replicas=3`,
      by: 'argocd-application-controller',
    });
    await until('scaled down again', async () => (await replicas()) === 0);
    expect(first.stage).toBe('holding');
    expect(
      first.timeline.some(
        (e) =>
          e.event === 'suspension-reverted' &&
          e.detail.includes('(last written by argocd-application-controller); revert 1 of at most 2'),
      ),
    ).toBe(true);

    await selfHeal();
    const result = await closedStatus(h);
    expect(result.outcome).toBe('needs-manual-action');
    expect(result.problem).toBe(
      `suspension reverted 2 times by argocd-application-controller; re-applied each time and suspended now, but it will be undone again: stop argocd-application-controller from reverting Deployment ${ns}/${w.name} (a GitOps app's self-heal, an autoscaler), then hold or restore it by hand`,
    );
    expect(await replicas()).toBe(0);
    expect(result.actions.filter((a) => a.action === 'suspend-workload').map((a) => a.status)).toEqual([
      'done',
      'already-done',
      'already-done',
    ]);
  });

  it('a CronJob whose suspend is flipped back is suspended again; restore still puts back what it was', async () => {
    const { ns, w, h, revertsReach } = await suspended('CronJob', {});
    const suspend = async () =>
      (await t.kube.batch.readNamespacedCronJob({ namespace: ns, name: w.name })).spec?.suspend;
    await t.kube.batch.patchNamespacedCronJob(
      { namespace: ns, name: w.name, body: { spec: { suspend: false } }, fieldManager: 'kubectl-edit' },
      mergePatch,
    );
    expect((await revertsReach(1)).hold!.lastRevert).toMatchObject({
      observed: `CronJob ${ns}/${w.name}: spec.suspend=false`,
      by: 'kubectl-edit',
    });
    await until('suspended again', async () => (await suspend()) === true);
    await until('back to holding', async () => (await h.query(statusQuery)).stage === 'holding');
    await h.executeUpdate(restoreUpdate, { args: [{ by: 'analyst', reason: 'false positive' }] });
    expect((await closedStatus(h)).outcome).toBe('workload-restored');
    expect(await suspend()).toBe(false);
  });

  it('a DaemonSet whose nodeSelector is removed gets it back', async () => {
    const { ns, w, h, revertsReach } = await suspended('DaemonSet', {});
    await t.kube.apps.patchNamespacedDaemonSet(
      {
        namespace: ns,
        name: w.name,
        body: { spec: { template: { spec: { nodeSelector: { [SUSPEND_NODE_SELECTOR_KEY]: null } } } } },
        fieldManager: 'flux',
      },
      mergePatch,
    );
    const s = await revertsReach(1);
    expect(s.hold!.lastRevert!.observed).toBe(
      `DaemonSet ${ns}/${w.name}: nodeSelector ${SUSPEND_NODE_SELECTOR_KEY} removed`,
    );
    expect(s.hold!.lastRevert!.by).toBe('flux');
    await until(
      'nodeSelector back',
      async () =>
        (await t.kube.apps.readNamespacedDaemonSet({ namespace: ns, name: w.name })).spec?.template.spec
          ?.nodeSelector?.[SUSPEND_NODE_SELECTOR_KEY] === 'true',
    );
    await h.terminate('test over');
  });

  it('with reapplyOnRevert off, the first revert ends the incident; a scale through the scale subresource names no writer', async () => {
    const { ns, w, h } = await suspended('StatefulSet', { reapplyOnRevert: false });
    // As an autoscaler or `kubectl scale` does: the API records no owner of replicas for it, so none is named.
    await t.kube.apps.patchNamespacedStatefulSetScale(
      { namespace: ns, name: w.name, body: { spec: { replicas: 2 } }, fieldManager: 'hpa-controller' },
      mergePatch,
    );
    const result = await closedStatus(h);
    expect(result.outcome).toBe('needs-manual-action');
    expect(result.problem).toBe(
      `suspension of StatefulSet ${ns}/${w.name} reverted by an unknown writer (StatefulSet ${ns}/${w.name}: spec.replicas=2); policy does not re-apply it: suspend it by hand and stop what reverts it`,
    );
    expect((await t.kube.apps.readNamespacedStatefulSet({ namespace: ns, name: w.name })).spec?.replicas).toBe(2);
  });

  it('an untouched hold is read back and left alone', async () => {
    const { h } = await suspended('Deployment', {});
    await until('checked twice', async () => ((await h.query(statusQuery)).hold?.checks ?? 0) >= 2);
    const s = await h.query(statusQuery);
    expect(s.hold).toMatchObject({ reverts: 0, lastRevert: null });
    expect(s.actions.filter((a) => a.action === 'suspend-workload')).toHaveLength(1);
    await h.terminate('test over');
  });
});
