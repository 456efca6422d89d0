/**
 * An `alerts` signal's batch, packed: the fields every alert of the batch has alike (the pod, and in a flood the
 * container, process, rule and severity too) are written once, on the first alert, and left out of the others. A
 * flood's alert then costs the history its ID and time (about 95 bytes) rather than all of it (about 300), so a run
 * holds about four times the alerts and a signal carries seconds of a flood. Zod-free: the workflow bundle imports it.
 */
import type { PodAlert } from './alert.js';

/** Fields the alerts after the first may leave out; never `alertId`, `detectedAt` or `raw`. */
export const SHAREABLE_FIELDS = [
  'source',
  'category',
  'severity',
  'cluster',
  'namespace',
  'podName',
  'podUid',
  'container',
  'process',
] as const;
type Shareable = (typeof SHAREABLE_FIELDS)[number];

/** An alert as a batch carries it: whole (the first), or without the fields named in the batch's packing. */
export type PackedAlert = Partial<PodAlert> & Pick<PodAlert, 'alertId'>;

/** The `alerts` signal's second argument: the fields the alerts after the first leave out, the first's values applying. */
export interface AlertBatchPacking {
  shared: Shareable[];
}

/**
 * Leaves out of every alert after the first the fields whose value (JSON) is the first's in every alert of the
 * batch. Lossless: `unpackAlert` gives each alert back as it was (key order aside).
 */
export function packAlerts(alerts: PodAlert[]): { alerts: PackedAlert[]; packing?: AlertBatchPacking } {
  const [first, ...rest] = alerts;
  if (!first || !rest.length) return { alerts };
  const shared = SHAREABLE_FIELDS.filter((k) => {
    if (first[k] === undefined) return false;
    const json = JSON.stringify(first[k]);
    return rest.every((a) => a[k] === first[k] || JSON.stringify(a[k]) === json);
  });
  if (!shared.length) return { alerts };
  const packed = rest.map((a) => {
    const out: Record<string, unknown> = { ...a };
    for (const k of shared) delete out[k];
    return out as PackedAlert;
  });
  return { alerts: [first, ...packed], packing: { shared } };
}

/**
 * One alert of a batch, whole again: the first alert's shared fields under its own. Anything malformed is passed
 * on as it is, for the alert check to refuse.
 */
export function unpackAlert(first: unknown, item: unknown, packing: unknown): unknown {
  const shared = (packing as AlertBatchPacking | undefined)?.shared;
  if (!Array.isArray(shared) || !isRecord(first) || !isRecord(item)) return item;
  const out: Record<string, unknown> = {};
  for (const k of shared) if (SHAREABLE_FIELDS.includes(k) && first[k] !== undefined) out[k] = first[k];
  return { ...out, ...item };
}

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
