/**
 * Falco / Falcosidekick JSON. Falco knows nothing of the cluster it runs in, so the cluster (and
 * optionally the region) come from the webhook URL: one Falcosidekick per cluster, each pointed at
 * `/v1/alerts/falco?cluster=<name>&region=<region>`.
 */
import { z } from 'zod';
import { clusterNameSchema, containerIdSchema, dnsLabel, dnsSubdomain, regionSchema } from '../alert.js';
import { CRYPTO_MINING } from '../routing.js';
import {
  absent,
  compact,
  derivedId,
  emptyToUndefined,
  isoTime,
  optionalInt,
  optionalText,
  podAlert,
  toIso,
  type Normalized,
  type Severity,
} from './common.js';

const PRIORITIES: Record<string, Severity> = {
  emergency: 'critical',
  alert: 'critical',
  critical: 'critical',
  error: 'high',
  warning: 'medium',
  notice: 'low',
  informational: 'low',
  info: 'low',
  debug: 'low',
};

/** Mining rules of falcosecurity/rules, and the MITRE technique they are tagged with. */
export const FALCO_MINING_RULES = [
  'Detect outbound connections to common miner pool ports',
  'Detect crypto miners using the Stratum protocol',
  'Known Cryptominer Process Executed',
];
const MINING_TAG = 'T1496';

export const falcoSchema = z.looseObject({
  uuid: optionalText(128),
  output: optionalText(16_384),
  priority: z
    .string()
    .refine(
      (p) => p.toLowerCase() in PRIORITIES,
      'must be a Falco priority (Emergency, Alert, Critical, Error, Warning, Notice, Informational, Debug)',
    ),
  rule: z.string().min(1).max(256),
  time: isoTime,
  source: optionalText(64),
  tags: z.preprocess(absent, z.array(z.string().max(128)).max(64).optional()),
  hostname: optionalText(253),
  output_fields: z.looseObject({
    'k8s.ns.name': z.preprocess(absent, dnsLabel.optional()),
    'k8s.pod.name': z.preprocess(absent, dnsSubdomain.optional()),
    'k8s.pod.uid': z.preprocess(absent, z.uuid().optional()),
    // Falco writes "host" for processes outside any container.
    'container.id': z.preprocess((v) => (v === 'host' ? undefined : absent(v)), containerIdSchema.optional()),
    'container.name': z.preprocess(absent, dnsLabel.optional()),
    'container.image.repository': optionalText(1024),
    'container.image.tag': optionalText(256),
    'proc.name': optionalText(1024),
    'proc.cmdline': optionalText(8192),
    'proc.pid': optionalInt,
  }),
});

export const falcoQuerySchema = z.strictObject({
  cluster: clusterNameSchema,
  region: regionSchema.optional(),
});

/** Characters of `output` in the event's identity: Falcosidekick cuts strings past 512 characters in large payloads. */
const OUTPUT_IN_ID = 500;

/**
 * A Falco event's identity, from what Falco wrote: rule, time (nanoseconds), hostname, container, pod and the
 * start of the output. Not `uuid`: Falcosidekick replaces it with a new random one on every delivery, so the
 * same event relayed twice would count as two alerts (and a repeat escalates).
 */
export function falcoEventId(event: z.output<typeof falcoSchema>): string {
  const f = event.output_fields;
  return derivedId(
    'falco',
    event.rule,
    event.time,
    event.hostname,
    f['container.id'],
    f['k8s.ns.name'],
    f['k8s.pod.name'],
    event.output?.slice(0, OUTPUT_IN_ID),
  );
}

export function normalizeFalco(
  event: z.output<typeof falcoSchema>,
  query: z.output<typeof falcoQuerySchema>,
): Normalized {
  const f = event.output_fields;
  const ns = f['k8s.ns.name'];
  const pod = f['k8s.pod.name'];
  const alertId = falcoEventId(event);
  if (!ns || !pod)
    return {
      kind: 'not-actionable',
      alertId,
      type: event.rule,
      reason: 'event is not from a Kubernetes pod (k8s.ns.name or k8s.pod.name is absent or <NA>)',
    };
  const mining = FALCO_MINING_RULES.includes(event.rule) || (event.tags ?? []).includes(MINING_TAG);
  const image = f['container.image.repository'];
  const tag = f['container.image.tag'];
  return {
    kind: 'alert',
    type: event.rule,
    alert: podAlert(
      compact({
        source: 'falco' as const,
        alertId,
        category: mining ? CRYPTO_MINING : 'runtime-detection',
        severity: PRIORITIES[event.priority.toLowerCase()]!,
        detectedAt: toIso(event.time),
        cluster: compact({ name: query.cluster, region: query.region }),
        namespace: ns,
        podName: pod,
        podUid: f['k8s.pod.uid'],
        container: emptyToUndefined(
          compact({
            id: f['container.id'],
            name: f['container.name'],
            image: image && tag ? `${image}:${tag}` : image,
          }),
        ),
        process: emptyToUndefined(
          compact({ name: f['proc.name'], commandLine: f['proc.cmdline'], pid: f['proc.pid'] }),
        ),
        // The sender's uuid is kept for the record: it names this delivery, not the event.
        raw: compact({
          rule: event.rule,
          priority: event.priority,
          hostname: event.hostname,
          output: event.output?.slice(0, 2048),
          uuid: event.uuid,
        }),
      }),
    ),
  };
}
