import { z } from 'zod';
import { parseWith } from './validation-errors.js';

// Kubernetes naming rules, so a malformed alert is refused before any API call.
export const dnsLabel = z
  .string()
  .max(63)
  .regex(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/, 'must be a DNS-1123 label (lowercase alphanumerics and "-")');
export const dnsSubdomain = z
  .string()
  .max(253)
  .regex(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/, 'must be a DNS-1123 subdomain');

export const clusterNameSchema = z
  .string()
  .min(1)
  .max(100)
  .regex(/^[0-9A-Za-z][A-Za-z0-9_-]*$/, 'must be a cluster name (letters, digits, "-" and "_")');
export const regionSchema = z.string().regex(/^[a-z]{2}(-[a-z]+)+-\d+$/, 'must be an AWS region such as us-east-1');

/** Container IDs arrive as `containerd://<64 hex>`, bare 64 hex, or Falco's 12-hex short form. */
export const containerIdSchema = z
  .string()
  .regex(/^([a-z0-9-]+:\/\/)?[0-9a-f]{12,64}$/, 'must be a container ID: [runtime://]hex, 12 to 64 hex digits');

export const ALERT_SOURCES = ['xdr', 'falco', 'guardduty', 'manual', 'generic'] as const;

export const SEVERITIES = ['low', 'medium', 'high', 'critical'] as const;
export type Severity = (typeof SEVERITIES)[number];

export const podAlertSchema = z.strictObject({
  source: z.enum(ALERT_SOURCES),
  alertId: z.string().min(1).max(256),
  category: z.string().min(1).max(128),
  severity: z.enum(SEVERITIES),
  detectedAt: z.iso.datetime({ offset: true }),
  cluster: z.strictObject({
    name: clusterNameSchema,
    region: regionSchema.optional(),
  }),
  namespace: dnsLabel,
  podName: dnsSubdomain,
  podUid: z.uuid().optional(),
  container: z
    .strictObject({
      id: containerIdSchema.optional(),
      name: dnsLabel.optional(),
      image: z.string().min(1).max(1024).optional(),
    })
    .optional(),
  process: z
    .strictObject({
      name: z.string().max(1024).optional(),
      commandLine: z.string().max(8192).optional(),
      pid: z.number().int().nonnegative().optional(),
    })
    .optional(),
  raw: z.unknown().optional(),
});

export type PodAlert = z.output<typeof podAlertSchema>;

/** Parses an alert or throws an InputError naming every bad field. */
export function parseAlert(input: unknown): PodAlert {
  return parseWith(podAlertSchema, 'alert', input);
}

export { bareContainerId, RAW_EXCERPT_CHARS, withRawExcerpt } from './alert-values.js';
