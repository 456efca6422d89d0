/**
 * Holding the line: reads a held suspension back and reports each change someone undid (a GitOps
 * controller's self-heal putting `replicas` back, an autoscaler or a person scaling up, `suspend` or the
 * nodeSelector reverted), and who did it, as the object's managed fields tell.
 */
import type { V1ManagedFieldsEntry } from '@kubernetes/client-node';
import { describeWorkload, SUSPENDED_BY_ANNOTATION, type SuspensionChange, type SuspensionRecord } from './protocol.js';
import type { KubeClients } from './kube.js';
import { FIELD_MANAGER, readWorkload, type WorkloadObject } from './workloads.js';

export interface Revert {
  target: string;
  /** What the object says now. */
  observed: string;
  /** The field manager that last wrote the field (e.g. `argocd-controller`, `kubectl-scale`), when the object says. */
  by: string | null;
  at: string | null;
}

export interface HoldCheck {
  reverted: Revert[];
  /** Objects gone or replaced: nothing left to hold there. */
  gone: string[];
}

export async function checkSuspension(kube: KubeClients, record: SuspensionRecord): Promise<HoldCheck> {
  const out: HoldCheck = { reverted: [], gone: [] };
  for (const c of record.changes) {
    const target = describeWorkload(c.target);
    const obj = await readWorkload(kube, c.target);
    if (!obj || obj.metadata?.uid !== c.target.uid) {
      out.gone.push(target);
      continue;
    }
    const observed = reverted(c, obj);
    if (!observed) continue;
    const writer = lastWriter(obj.metadata?.managedFields ?? [], fieldPath(c));
    out.reverted.push({
      target,
      observed,
      by: writer?.manager ?? null,
      at: writer?.time ? new Date(writer.time).toISOString() : null,
    });
  }
  return out;
}

/** What undoes the change, in words; null while it holds. A claim removed counts: our record is gone from the object. */
function reverted(c: SuspensionChange, o: WorkloadObject): string | null {
  const claim = o.metadata?.annotations?.[SUSPENDED_BY_ANNOTATION];
  switch (c.type) {
    case 'replicas':
      if ((o.spec?.replicas ?? 1) !== 0) return `spec.replicas=${o.spec?.replicas ?? 1}`;
      break;
    case 'node-selector':
      if (o.spec?.template?.spec?.nodeSelector?.[c.key] !== 'true') return `nodeSelector ${c.key} removed`;
      break;
    case 'suspend-flag':
      if (o.spec?.suspend !== true) return `spec.suspend=${o.spec?.suspend ?? false}`;
      break;
  }
  return claim ? null : `annotation ${SUSPENDED_BY_ANNOTATION} removed`;
}

/** The managed-fields path (`f:` keys) of what the change set. */
function fieldPath(c: SuspensionChange): string[] {
  switch (c.type) {
    case 'replicas':
      return ['f:spec', 'f:replicas'];
    case 'node-selector':
      return ['f:spec', 'f:template', 'f:spec', 'f:nodeSelector'];
    case 'suspend-flag':
      return ['f:spec', 'f:suspend'];
  }
}

/** The newest managed-fields entry that owns the field: who wrote it last. */
function lastWriter(entries: V1ManagedFieldsEntry[], path: string[]): V1ManagedFieldsEntry | undefined {
  const owns = (e: V1ManagedFieldsEntry) => {
    let node: unknown = e.fieldsV1;
    for (const key of path) {
      if (!node || typeof node !== 'object' || !(key in node)) return false;
      node = (node as Record<string, unknown>)[key];
    }
    return true;
  };
  const time = (e: V1ManagedFieldsEntry) => (e.time ? new Date(e.time).getTime() : 0);
  const newest = (list: V1ManagedFieldsEntry[]) => [...list].sort((a, b) => time(b) - time(a))[0];
  const others = entries.filter((e) => e.manager !== FIELD_MANAGER && e.subresource !== 'status');
  const owner = newest(entries.filter(owns));
  if (owner) return owner.manager === FIELD_MANAGER ? undefined : owner;
  // A field removed has no owner left: then the newest other writer of the object is the witness, if it wrote
  // after us. A write through the scale subresource leaves no owner of replicas: unknown, not a guess.
  const ours = newest(entries.filter((e) => e.manager === FIELD_MANAGER));
  const candidate = newest(others);
  return candidate && (!ours || time(candidate) >= time(ours)) && path[path.length - 1] !== 'f:replicas'
    ? candidate
    : undefined;
}
