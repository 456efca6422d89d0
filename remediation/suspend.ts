import { isSuspendable, type WorkloadRef } from '../domain/workload.js';
import { KubeError, PERMANENT_KUBE_STATUSES, type KubeClients } from './kube.js';
import {
  describeChange,
  describeWorkload,
  PRIOR_STATE_ANNOTATION,
  SUSPEND_NODE_SELECTOR_KEY,
  SUSPENDED_BY_ANNOTATION,
  type ActionResult,
  type SuspensionChange,
  type SuspensionRecord,
} from './protocol.js';
import { activeJobsOf, patchWorkload, readWorkload, scaleWorkload, type WorkloadObject } from './workloads.js';

type Outcome = { result: ActionResult; record: SuspensionRecord | null };

/**
 * Stops a workload from running pods, by the means its kind understands, and records what it replaced.
 * The prior state is written onto the object (annotation) before the change, so a retry after a crash
 * reads the original value instead of our own zero: suspension is idempotent.
 */
export async function suspendWorkload(kube: KubeClients, incidentId: string, w: WorkloadRef): Promise<Outcome> {
  const target = describeWorkload(w);
  const result = (status: ActionResult['status'], message: string): ActionResult => ({
    action: 'suspend-workload',
    target,
    status,
    message,
  });
  if (!isSuspendable(w.kind) || !['apps/v1', 'batch/v1'].includes(w.apiVersion)) {
    return {
      result: result(
        'unsupported',
        `${w.apiVersion} ${w.kind} is not a kind pod-responder can suspend: suspend it by hand`,
      ),
      record: null,
    };
  }
  const obj = await readWorkload(kube, w);
  if (!obj) return { result: result('not-found', `${target} no longer exists`), record: null };
  if (obj.metadata?.uid !== w.uid) {
    return {
      result: result('conflict', `${target} was replaced (uid ${obj.metadata?.uid}, expected ${w.uid})`),
      record: null,
    };
  }
  const owner = obj.metadata?.annotations?.[SUSPENDED_BY_ANNOTATION];
  if (owner && owner !== incidentId) {
    return { result: result('conflict', `${target} is already suspended by incident ${owner}`), record: null };
  }
  const adopted = owner === incidentId;
  const changes = adopted ? readPriorState(obj) : await suspendOne(kube, w, obj);
  if (adopted) await reapply(kube, changes);
  if (w.kind === 'CronJob') {
    for (const job of await activeJobsOf(kube, w)) {
      const jobObj = await readWorkload(kube, job);
      if (!jobObj) continue;
      const jobOwner = jobObj.metadata?.annotations?.[SUSPENDED_BY_ANNOTATION];
      if (jobOwner === incidentId) {
        if (!changes.some((c) => c.target.uid === job.uid)) changes.push(...readPriorState(jobObj));
        continue;
      }
      changes.push(...(await suspendOne(kube, job, jobObj)));
    }
  }
  const summary = changes.map(describeChange).join('; ');
  return {
    result: result(adopted ? 'already-done' : 'done', summary),
    record: { incidentId, workload: w, changes },
  };

  async function suspendOne(kc: KubeClients, ref: WorkloadRef, o: WorkloadObject): Promise<SuspensionChange[]> {
    const change = planChange(ref, o);
    const annotations = { [SUSPENDED_BY_ANNOTATION]: incidentId, [PRIOR_STATE_ANNOTATION]: JSON.stringify(change) };
    // resourceVersion makes the merge patch conditional: the prior state we record is the one we replace.
    const metadata = { annotations, resourceVersion: o.metadata?.resourceVersion };
    if (change.type !== 'replicas') {
      // One merge patch writes the claim and the change together.
      await patchWorkload(kc, ref, { metadata, spec: changeSpec(change) });
      return [change];
    }
    await patchWorkload(kc, ref, { metadata });
    try {
      await scaleWorkload(kc, ref, 0);
    } catch (err) {
      // Refused for good (403, 422): drop our claim, so the workload is not marked as suspended by us.
      // A transient failure keeps it: the retry adopts the recorded prior state.
      if (err instanceof KubeError && PERMANENT_KUBE_STATUSES.has(err.failure.status)) {
        await patchWorkload(kc, ref, {
          metadata: { annotations: { [SUSPENDED_BY_ANNOTATION]: null, [PRIOR_STATE_ANNOTATION]: null } },
        }).catch(() => undefined);
      }
      throw err;
    }
    return [change];
  }
}

function planChange(ref: WorkloadRef, o: WorkloadObject): SuspensionChange {
  switch (ref.kind) {
    case 'DaemonSet':
      return { type: 'node-selector', target: ref, key: SUSPEND_NODE_SELECTOR_KEY };
    case 'Job':
    case 'CronJob':
      return { type: 'suspend-flag', target: ref, prior: o.spec?.suspend ?? false };
    default:
      return { type: 'replicas', target: ref, prior: o.spec?.replicas ?? 1 };
  }
}

function readPriorState(o: WorkloadObject): SuspensionChange[] {
  const raw = o.metadata?.annotations?.[PRIOR_STATE_ANNOTATION];
  return raw ? [JSON.parse(raw) as SuspensionChange] : [];
}

/** A retry may have crashed between recording the prior state and applying the change. */
async function reapply(kube: KubeClients, changes: SuspensionChange[]): Promise<void> {
  for (const c of changes) await applyChange(kube, c);
}

async function applyChange(kube: KubeClients, c: SuspensionChange): Promise<void> {
  if (c.type === 'replicas') await scaleWorkload(kube, c.target, 0);
  else await patchWorkload(kube, c.target, { spec: changeSpec(c) });
}

function changeSpec(c: Exclude<SuspensionChange, { type: 'replicas' }>): object {
  return c.type === 'node-selector' ? { template: { spec: { nodeSelector: { [c.key]: 'true' } } } } : { suspend: true };
}

/** Puts back what a suspension replaced, newest change first, then drops our annotations. */
export async function restoreWorkload(kube: KubeClients, record: SuspensionRecord): Promise<ActionResult> {
  const target = describeWorkload(record.workload);
  const done: string[] = [];
  const skipped: string[] = [];
  for (const c of [...record.changes].reverse()) {
    const t = describeWorkload(c.target);
    const obj = await readWorkload(kube, c.target);
    if (!obj || obj.metadata?.uid !== c.target.uid) {
      skipped.push(`${t} is gone or was replaced`);
      continue;
    }
    if (obj.metadata?.annotations?.[SUSPENDED_BY_ANNOTATION] !== record.incidentId) {
      skipped.push(`${t} already restored`);
      continue;
    }
    switch (c.type) {
      case 'replicas':
        await scaleWorkload(kube, c.target, c.prior);
        done.push(`${t}: replicas 0 -> ${c.prior}`);
        break;
      case 'node-selector':
        await patchWorkload(kube, c.target, { spec: { template: { spec: { nodeSelector: { [c.key]: null } } } } });
        done.push(`${t}: nodeSelector ${c.key} removed`);
        break;
      case 'suspend-flag':
        await patchWorkload(kube, c.target, { spec: { suspend: c.prior } });
        done.push(`${t}: suspend -> ${c.prior}`);
        break;
    }
    await patchWorkload(kube, c.target, {
      metadata: { annotations: { [SUSPENDED_BY_ANNOTATION]: null, [PRIOR_STATE_ANNOTATION]: null } },
    });
  }
  const message = [...done, ...skipped].join('; ') || 'nothing to restore';
  return { action: 'restore-workload', target, status: done.length ? 'done' : 'already-done', message };
}
