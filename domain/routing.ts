import { z } from 'zod';
import { ALERT_SOURCES, SEVERITIES, type PodAlert, type Severity } from './alert.js';

/** Category the source normalizers give to mining detections; the default route responds to it. */
export const CRYPTO_MINING = 'crypto-mining';

// `*` matches any run of characters; everything else is literal.
const pattern = z.string().min(1).max(256);

/**
 * One routing rule. Every condition given must hold (lists: any element matches); the first rule
 * that matches decides, so put narrow `ignore` rules before broad `respond` ones.
 */
export const routeSchema = z.strictObject({
  name: z.string().min(1).max(64).describe("The rule's name, in the alert's result and the logs."),
  action: z
    .enum(['respond', 'ignore'])
    .describe("`respond` starts (or signals) the pod's incident; `ignore` answers `ignored` naming the rule."),
  source: z.array(z.enum(ALERT_SOURCES)).min(1).optional().describe('Alert sources it matches. Unset: any.'),
  type: z
    .array(pattern)
    .min(1)
    .optional()
    .describe(
      'Vendor detection names it matches (Falco rule, GuardDuty finding type, XDR alert name); `*` is a wildcard.',
    ),
  category: z
    .array(pattern)
    .min(1)
    .optional()
    .describe('Alert categories it matches, e.g. `crypto-mining`; `*` is a wildcard.'),
  namespace: z.array(pattern).min(1).optional().describe('Namespaces it matches; `*` is a wildcard.'),
  minSeverity: z.enum(SEVERITIES).optional().describe('The lowest severity it matches.'),
  mode: z
    .enum(['enforce', 'dry-run'])
    .optional()
    .describe(
      "For `respond`: the policy mode of the incidents it starts (default: the policy's), e.g. `dry-run` for a new source.",
    ),
});

export const routesSchema = z.array(routeSchema).max(200);

export type Route = z.output<typeof routeSchema>;

export const DEFAULT_ROUTES: Route[] = [{ name: 'crypto-mining', action: 'respond', category: [CRYPTO_MINING] }];

/** What routing looks at: the normalized alert plus the vendor's own detection name. */
export interface Routable {
  alert: PodAlert;
  type: string;
}

export type PolicyMode = 'enforce' | 'dry-run';

export type RouteDecision =
  { action: 'respond'; route: string; mode?: PolicyMode } | { action: 'ignore'; route: string | null; reason: string };

export function route(item: Routable, routes: readonly Route[]): RouteDecision {
  const { alert, type } = item;
  for (const r of routes) {
    if (r.source && !r.source.includes(alert.source)) continue;
    if (r.type && !r.type.some((p) => globMatch(p, type))) continue;
    if (r.category && !r.category.some((p) => globMatch(p, alert.category))) continue;
    if (r.namespace && !r.namespace.some((p) => globMatch(p, alert.namespace))) continue;
    if (r.minSeverity && rank(alert.severity) < rank(r.minSeverity)) continue;
    return r.action === 'respond'
      ? { action: 'respond', route: r.name, ...(r.mode ? { mode: r.mode } : {}) }
      : { action: 'ignore', route: r.name, reason: `matched ignore rule "${r.name}"` };
  }
  return {
    action: 'ignore',
    route: null,
    reason: `no routing rule responds to ${alert.source} "${type}" (category ${alert.category}, ${alert.severity})`,
  };
}

const rank = (s: Severity): number => SEVERITIES.indexOf(s);

const globCache = new Map<string, RegExp>();

export function globMatch(glob: string, value: string): boolean {
  let re = globCache.get(glob);
  if (!re) {
    re = new RegExp(
      `^${glob
        .split('*')
        .map((part) => part.replace(/[.+?^${}()|[\]\\]/g, '\\$&'))
        .join('.*')}$`,
      's',
    );
    globCache.set(glob, re);
  }
  return re.test(value);
}
