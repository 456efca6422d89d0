/**
 * Cortex XDR alerts as fetched by the XDR API or a SOAR integration. Kubernetes context lives in the
 * cloud "original alert": `cluster_name`, `agent_device_domain` and
 * `messageData.containers[0].runtimeInfo`; top-level copies are read when the original is absent.
 */
import { z } from 'zod';
import { clusterNameSchema, containerIdSchema, dnsLabel, dnsSubdomain, regionSchema } from '../alert.js';
import { CRYPTO_MINING } from '../routing.js';
import {
  absent,
  compact,
  emptyToUndefined,
  optionalInt,
  optionalText,
  podAlert,
  toIso,
  type Normalized,
  type Severity,
} from './common.js';

const SEVERITY: Record<string, Severity> = {
  informational: 'low',
  info: 'low',
  low: 'low',
  medium: 'medium',
  high: 'high',
  critical: 'critical',
};

/** XDR writes severities as "high" or, in some APIs, "SEV_040_HIGH". */
const xdrSeverity = z.string().transform((s, ctx) => {
  const word = s.toLowerCase().replace(/^sev_\d+_/, '');
  const severity = SEVERITY[word];
  if (!severity) {
    ctx.addIssue({ code: 'custom', message: 'must be an XDR severity (informational, low, medium, high, critical)' });
    return z.NEVER;
  }
  return severity;
});

const kubeContext = {
  cluster_name: z.preprocess(absent, clusterNameSchema.optional()),
  agent_device_domain: optionalText(253),
};

const runtimeInfo = z.looseObject({
  podName: z.preprocess(absent, dnsSubdomain.optional()),
  namespace: z.preprocess(absent, dnsLabel.optional()),
  podUid: z.preprocess(absent, z.uuid().optional()),
  containerName: z.preprocess(absent, dnsLabel.optional()),
});

export const xdrSchema = z.looseObject({
  alert_id: z
    .union([z.string().min(1).max(128), z.number().int().nonnegative()], {
      error: 'must be a string or a non-negative integer',
    })
    .transform(String),
  name: z.string().min(1).max(512),
  category: optionalText(256),
  module_id: optionalText(256),
  severity: xdrSeverity,
  detection_timestamp: z.number().int().positive('must be milliseconds since the epoch'),
  ...kubeContext,
  container_id: z.preprocess(absent, containerIdSchema.optional()),
  actor_process_image_name: optionalText(1024),
  actor_process_command_line: optionalText(8192),
  actor_process_os_pid: optionalInt,
  original_alert: z
    .looseObject({
      event: z.looseObject(kubeContext).optional(),
      messageData: z
        .looseObject({
          containers: z
            .array(
              z.looseObject({
                runtimeInfo: runtimeInfo.optional(),
                containerId: z.preprocess(absent, containerIdSchema.optional()),
                image: optionalText(1024),
              }),
            )
            .max(64)
            .optional(),
        })
        .optional(),
    })
    .optional(),
});

/** The region is the first field of the node's domain (`eu-west-1.compute.internal`); us-east-1 uses `ec2.internal`. */
export function regionFromDomain(domain: string): string | undefined {
  if (domain === 'ec2.internal' || domain.endsWith('.ec2.internal')) return 'us-east-1';
  const first = domain.split('.')[0]!;
  return regionSchema.safeParse(first).success ? first : undefined;
}

const MINING = /crypto ?miner/i;

export function normalizeXdr(a: z.output<typeof xdrSchema>): Normalized {
  const original = a.original_alert;
  const container = original?.messageData?.containers?.[0];
  const info = container?.runtimeInfo;
  const notActionable = (reason: string): Normalized => ({
    kind: 'not-actionable',
    alertId: a.alert_id,
    type: a.name,
    reason,
  });
  if (!info?.podName || !info.namespace)
    return notActionable('alert has no pod (original_alert.messageData.containers[0].runtimeInfo podName/namespace)');
  const cluster = original?.event?.cluster_name ?? a.cluster_name;
  if (!cluster) return notActionable('alert has no cluster_name');
  const domain = original?.event?.agent_device_domain ?? a.agent_device_domain;
  const region = domain ? regionFromDomain(domain) : undefined;
  const mining = [a.name, a.category, a.module_id].some((s) => s && MINING.test(s));
  return {
    kind: 'alert',
    type: a.name,
    alert: podAlert(
      compact({
        source: 'xdr' as const,
        alertId: a.alert_id,
        category: mining ? CRYPTO_MINING : 'runtime-detection',
        severity: a.severity,
        detectedAt: toIso(a.detection_timestamp),
        cluster: compact({ name: cluster, region }),
        namespace: info.namespace,
        podName: info.podName,
        podUid: info.podUid,
        container: emptyToUndefined(
          compact({ id: container?.containerId ?? a.container_id, name: info.containerName, image: container?.image }),
        ),
        process: emptyToUndefined(
          compact({
            name: a.actor_process_image_name,
            commandLine: a.actor_process_command_line,
            pid: a.actor_process_os_pid,
          }),
        ),
        raw: compact({ alertId: a.alert_id, name: a.name, category: a.category, agentDeviceDomain: domain }),
      }),
    ),
  };
}
