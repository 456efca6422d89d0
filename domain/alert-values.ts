/**
 * What incidents need of alerts beyond their schema: cutting `raw` to an excerpt, comparing container IDs.
 * Kept apart from alert.ts so the workflow bundle can import it without zod, whose evaluation (with the schema)
 * costs every incident about 10 ms of CPU when it is created or replayed; alert.ts re-exports it.
 */
import type { PodAlert } from './alert.js';

/** Strips the runtime scheme so IDs from different sources compare. */
export function bareContainerId(id: string): string {
  const i = id.indexOf('://');
  return i >= 0 ? id.slice(i + 3) : id;
}

/**
 * Whether two alerts about one pod may name the same container: the same ID (Falco's 12-hex short form is a prefix
 * of the full one), or, without IDs on both, the same name. Not knowing counts as the same: only a container known
 * to be another one is a separate detection before the kill (docs/repeats.md).
 */
export function sameContainer(a: Pick<PodAlert, 'container'>, b: Pick<PodAlert, 'container'>): boolean {
  const idA = a.container?.id ? bareContainerId(a.container.id) : '';
  const idB = b.container?.id ? bareContainerId(b.container.id) : '';
  if (idA && idB) return idA.startsWith(idB) || idB.startsWith(idA);
  const nameA = a.container?.name;
  const nameB = b.container?.name;
  if (nameA && nameB) return nameA === nameB;
  return true;
}

/** Characters of an alert's `raw` kept once it is inside an incident: enough to read, never enough to bloat history. */
export const RAW_EXCERPT_CHARS = 2048;

/**
 * The alert with `raw` cut to a bounded excerpt (JSON text) when it is large. Applied where alerts enter
 * Temporal and again inside the incident, so neither history nor status grows with what a sender puts there.
 */
export function withRawExcerpt(alert: PodAlert, maxChars = RAW_EXCERPT_CHARS): PodAlert {
  if (alert.raw === undefined) return alert;
  if (isExcerpt(alert.raw, maxChars)) return alert;
  const text = JSON.stringify(alert.raw) ?? '';
  if (text.length <= maxChars) return alert;
  return { ...alert, raw: { excerpt: text.slice(0, maxChars), truncatedFromChars: text.length } };
}

/** Already cut (by the forwarder, then again in the workflow): keep it as it is rather than cut the excerpt's JSON. */
function isExcerpt(raw: unknown, maxChars: number): boolean {
  const r = raw as { excerpt?: unknown; truncatedFromChars?: unknown } | null;
  return (
    typeof r === 'object' &&
    r !== null &&
    Object.keys(r).length === 2 &&
    typeof r.excerpt === 'string' &&
    r.excerpt.length <= maxChars &&
    typeof r.truncatedFromChars === 'number'
  );
}
