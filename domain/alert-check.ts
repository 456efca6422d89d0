/**
 * The alert check an incident runs on each alert signal: podAlertSchema (alert.ts) without zod. The SDK evaluates
 * the workflow bundle's modules afresh for every incident it creates or replays, and zod with the schema costs
 * about 10 ms of CPU each time, so the bundle carries this instead. Every sender through pod-responder's own edges
 * (the forwarder, the CLI) was checked with the schema already; this catches what reaches the signal otherwise
 * (the Temporal UI, another client). test/unit/alert-check.test.ts runs both on the same valid and invalid alerts
 * and fails when they disagree.
 */
import type { PodAlert } from './alert.js';

const SOURCES = ['xdr', 'falco', 'guardduty', 'manual', 'generic'];
const SEVERITY = ['low', 'medium', 'high', 'critical'];
const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const CLUSTER_NAME = /^[0-9A-Za-z][A-Za-z0-9_-]*$/;
const REGION = /^[a-z]{2}(-[a-z]+)+-\d+$/;
const CONTAINER_ID = /^([a-z0-9-]+:\/\/)?[0-9a-f]{12,64}$/;
/** zod 4's `z.iso.datetime({ offset: true })`: a real calendar date, seconds, `Z` or an offset. */
const DATETIME =
  /^(?:(?:\d\d[2468][048]|\d\d[13579][26]|\d\d0[48]|[02468][048]00|[13579][26]00)-02-29|\d{4}-(?:(?:0[13578]|1[02])-(?:0[1-9]|[12]\d|3[01])|(?:0[469]|11)-(?:0[1-9]|[12]\d|30)|(?:02)-(?:0[1-9]|1\d|2[0-8])))T(?:[01]\d|2[0-3]):[0-5]\d:[0-5]\d(?:\.\d+)?(?:Z|[+-](?:[01]\d|2[0-3]):[0-5]\d)$/;
/** zod 4's `z.uuid()`: RFC 9562 variants 1 to 8, and the nil and max UUIDs. */
const UUID =
  /^([0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[1-8][0-9a-fA-F]{3}-[89abAB][0-9a-fA-F]{3}-[0-9a-fA-F]{12}|00000000-0000-0000-0000-000000000000|ffffffff-ffff-ffff-ffff-ffffffffffff)$/;

/** A problem with the value at `path`, or null. */
type Rule = (v: unknown, path: string) => string | null;
type Shape = Record<string, { rule: Rule; optional?: boolean }>;

const str =
  (min: number, max: number, pattern?: RegExp, what?: string): Rule =>
  (v, path) =>
    typeof v !== 'string'
      ? `${path}: must be a string`
      : v.length < min || v.length > max
        ? `${path}: must be ${min ? `${min} to ${max}` : `at most ${max}`} characters`
        : pattern && !pattern.test(v)
          ? `${path}: must be ${what}`
          : null;
const oneOf =
  (values: string[]): Rule =>
  (v, path) =>
    typeof v === 'string' && values.includes(v) ? null : `${path}: must be one of ${values.join(', ')}`;
const count: Rule = (v, path) =>
  Number.isSafeInteger(v) && (v as number) >= 0 ? null : `${path}: must be a whole number, 0 or more`;
const object =
  (shape: Shape): Rule =>
  (v, path) => {
    const at = (key: string) => (path ? `${path}.${key}` : key);
    if (typeof v !== 'object' || v === null || Array.isArray(v)) return `${path || 'alert'}: must be an object`;
    const record = v as Record<string, unknown>;
    for (const key of Object.keys(record)) if (!(key in shape)) return `${at(key)}: not a field of an alert`;
    for (const [key, { rule, optional }] of Object.entries(shape)) {
      const value = record[key];
      if (value === undefined) {
        if (optional) continue;
        return `${at(key)}: required`;
      }
      const problem = rule(value, at(key));
      if (problem) return problem;
    }
    return null;
  };
const optional = (rule: Rule) => ({ rule, optional: true });

const alertRule = object({
  source: { rule: oneOf(SOURCES) },
  alertId: { rule: str(1, 256) },
  category: { rule: str(1, 128) },
  severity: { rule: oneOf(SEVERITY) },
  detectedAt: { rule: str(0, Infinity, DATETIME, 'an ISO 8601 date and time with seconds and Z or an offset') },
  cluster: {
    rule: object({
      name: { rule: str(1, 100, CLUSTER_NAME, 'a cluster name (letters, digits, "-" and "_")') },
      region: optional(str(0, Infinity, REGION, 'an AWS region such as us-east-1')),
    }),
  },
  namespace: { rule: str(0, 63, DNS_LABEL, 'a DNS-1123 label') },
  podName: { rule: str(0, 253, DNS_SUBDOMAIN, 'a DNS-1123 subdomain') },
  podUid: optional(str(0, Infinity, UUID, 'a UUID')),
  container: optional(
    object({
      id: optional(str(0, Infinity, CONTAINER_ID, 'a container ID: [runtime://]hex, 12 to 64 hex digits')),
      name: optional(str(0, 63, DNS_LABEL, 'a DNS-1123 label')),
      image: optional(str(1, 1024)),
    }),
  ),
  process: optional(
    object({
      name: optional(str(0, 1024)),
      commandLine: optional(str(0, 8192)),
      pid: optional(count),
    }),
  ),
  raw: optional(() => null),
});

/** The alert, or the first problem found ("podName: must be a DNS-1123 subdomain"). */
export function checkAlert(input: unknown): { alert: PodAlert } | { problem: string } {
  const problem = alertRule(input, '');
  return problem === null ? { alert: input as PodAlert } : { problem };
}
