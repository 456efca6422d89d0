import { createHash } from 'node:crypto';
import { z } from 'zod';
import { parseAlert, type PodAlert, type Severity } from '../alert.js';

/** One vendor alert, normalized: either something to route, or a valid event we cannot act on. */
export type Normalized =
  | { kind: 'alert'; alert: PodAlert; type: string }
  | { kind: 'not-actionable'; alertId: string; type: string; reason: string };

/** Vendors write "no value" as null, "", or Falco's "<NA>"; all read as absent. */
export const absent = (v: unknown): unknown => (v === null || v === '' || v === '<NA>' ? undefined : v);

/** A string field that may be absent in any of the vendors' ways. */
export const optionalText = (max: number) => z.preprocess(absent, z.string().max(max).optional());

/** A number that some vendors send as a numeric string (Falco's proc.pid, for one). */
export const optionalInt = z.preprocess(
  (v) => (typeof v === 'string' && /^\d+$/.test(v) ? Number(v) : absent(v)),
  z.number().int().nonnegative().optional(),
);

export const isoTime = z.iso.datetime({ offset: true, message: 'must be an RFC 3339 timestamp with a time zone' });

/** Millisecond precision: JS dates stop there, and it keeps every source's timestamps comparable. */
export const toIso = (t: string | number): string => new Date(t).toISOString();

/** Deterministic ID for vendors that may omit one, so a resent alert still deduplicates. */
export const derivedId = (prefix: string, ...parts: (string | number | undefined)[]): string =>
  `${prefix}-${createHash('sha256')
    .update(parts.map((p) => String(p ?? '')).join('\u0000'))
    .digest('hex')
    .slice(0, 32)}`;

/** Drops undefined members so strict schemas and workflow history stay tidy. */
export function compact<T extends Record<string, unknown>>(o: T): T {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T;
}

/** An optional sub-object with nothing in it is left out. */
export function emptyToUndefined<T extends object>(o: T): T | undefined {
  return Object.keys(o).length ? o : undefined;
}

/** Builds the core alert; vendor schemas already checked every field, so a failure here is a bug worth a 400, not a 500. */
export function podAlert(fields: PodAlert): PodAlert {
  return parseAlert(fields);
}

export type { Severity };
