/** The forwarder's input formats, each turned into the core PodAlert. */
import type { z } from 'zod';
import { podAlertSchema } from '../alert.js';
import { formatIssues, formatPath, InputError } from '../validation-errors.js';
import type { Normalized } from './common.js';
import { falcoQuerySchema, falcoSchema, normalizeFalco } from './falco.js';
import { guardDutySchema, normalizeGuardDuty } from './guardduty.js';
import { normalizeXdr, xdrSchema } from './xdr.js';

export type { Normalized } from './common.js';

export const SOURCES = ['xdr', 'falco', 'guardduty', 'normalized'] as const;
export type SourceName = (typeof SOURCES)[number];

/** Enough to fix a batch; a hostile one cannot make the answer huge. */
const MAX_ERRORS = 50;

type Normalizer = (
  item: unknown,
  query: Record<string, unknown>,
) => { ok: true; value: Normalized } | { ok: false; issues: z.core.$ZodIssue[] };

function using<S extends z.ZodType>(
  schema: S,
  build: (value: z.output<S>, query: Record<string, unknown>) => Normalized,
): (item: unknown, query: Record<string, unknown>) => ReturnType<Normalizer> {
  return (item, query) => {
    const r = schema.safeParse(item);
    return r.success ? { ok: true, value: build(r.data, query) } : { ok: false, issues: r.error.issues };
  };
}

const NORMALIZERS: Record<SourceName, Normalizer> = {
  xdr: using(xdrSchema, (a) => normalizeXdr(a)),
  // The query was validated once per request, before the items (see normalizeBody).
  falco: using(falcoSchema, (e, q) => normalizeFalco(e, q as z.output<typeof falcoQuerySchema>)),
  guardduty: using(guardDutySchema, (e) => normalizeGuardDuty(e)),
  normalized: using(podAlertSchema, (alert) => ({ kind: 'alert', alert, type: alert.category })),
};

/**
 * Validates a whole request body (one alert or an array of them) before anything is acted on:
 * one bad item rejects the batch with every error, paths prefixed by the item's index, so the
 * sender can fix and resend it without half of it having started responses.
 */
export function normalizeBody(
  source: SourceName,
  body: unknown,
  query: Record<string, unknown>,
  maxBatch: number,
): Normalized[] {
  let q: Record<string, unknown> = {};
  if (source === 'falco') {
    const r = falcoQuerySchema.safeParse(query);
    if (!r.success)
      throw new InputError(
        'request',
        r.error.issues.map((i) => `${i.path.length ? `query.${formatPath(i.path)}` : 'query'}: ${i.message}`),
      );
    q = r.data;
  } else if (Object.keys(query).length) {
    throw new InputError('request', [
      `query: this endpoint takes no query parameters (got ${Object.keys(query)
        .map((k) => JSON.stringify(k))
        .join(', ')})`,
    ]);
  }
  const batch = Array.isArray(body);
  const items: unknown[] = batch ? body : [body];
  if (batch && items.length === 0) throw new InputError('request', ['(root): batch is empty']);
  if (items.length > maxBatch)
    throw new InputError('request', [`(root): batch of ${items.length} alerts exceeds the limit of ${maxBatch}`]);
  const errors: string[] = [];
  const out: Normalized[] = [];
  items.forEach((item, i) => {
    if (typeof item !== 'object' || item === null || Array.isArray(item)) {
      errors.push(`${batch ? `[${i}]` : '(root)'}: must be a JSON object${batch ? '' : ' or an array of them'}`);
      return;
    }
    const prefix = (path: PropertyKey[]) => (batch ? [i, ...path] : path);
    try {
      const r = NORMALIZERS[source](item, q);
      if (r.ok) out.push(r.value);
      else errors.push(...formatIssues(r.issues.map((issue) => ({ ...issue, path: prefix(issue.path) }))));
    } catch (err) {
      // The vendor schema passed but the core alert did not: report it against the normalized alert.
      if (!(err instanceof InputError)) throw err;
      errors.push(...err.errors.map((e) => `${batch ? `[${i}] ` : ''}normalized alert ${e}`));
    }
  });
  if (errors.length > MAX_ERRORS)
    errors.splice(MAX_ERRORS, errors.length, `... and ${errors.length - MAX_ERRORS} more errors`);
  if (errors.length) throw new InputError(batch ? 'alert batch' : 'alert', errors);
  return out;
}
