/** Amazon EventBridge events of type "GuardDuty Finding", from EKS Runtime Monitoring. */
import { z } from 'zod';
import { clusterNameSchema, containerIdSchema, dnsLabel, dnsSubdomain, regionSchema } from '../alert.js';
import { CRYPTO_MINING } from '../routing.js';
import {
  absent,
  compact,
  emptyToUndefined,
  isoTime,
  optionalInt,
  optionalText,
  podAlert,
  toIso,
  type Normalized,
  type Severity,
} from './common.js';

export const GUARDDUTY_MINING_TYPES = [
  'CryptoCurrency:Runtime/BitcoinTool.B',
  'CryptoCurrency:Runtime/BitcoinTool.B!DNS',
  'Impact:Runtime/CryptoMinerExecuted',
  'Impact:Runtime/BitcoinDomainRequest.Reputation',
];

/** GuardDuty's own bands: 1.0-3.9 low, 4.0-6.9 medium, 7.0-8.9 high, 9.0-10.0 critical. */
export function guardDutySeverity(score: number): Severity {
  if (score >= 9) return 'critical';
  if (score >= 7) return 'high';
  if (score >= 4) return 'medium';
  return 'low';
}

const container = z.looseObject({
  id: z.preprocess(absent, containerIdSchema.optional()),
  name: z.preprocess(absent, dnsLabel.optional()),
  image: optionalText(1024),
});

export const guardDutySchema = z.looseObject({
  'detail-type': z.literal('GuardDuty Finding'),
  source: z.literal('aws.guardduty'),
  account: z.string().regex(/^\d{12}$/, 'must be a 12-digit AWS account ID'),
  region: regionSchema,
  time: isoTime,
  detail: z.looseObject({
    id: z.string().min(1).max(256),
    type: z.string().min(1).max(256),
    severity: z.number().min(0).max(10),
    updatedAt: isoTime,
    service: z
      .looseObject({
        featureName: optionalText(64),
        count: optionalInt,
        eventLastSeen: z.preprocess(absent, isoTime.optional()),
        runtimeDetails: z
          .looseObject({
            process: z
              .looseObject({ name: optionalText(1024), executablePath: optionalText(4096), pid: optionalInt })
              .optional(),
          })
          .optional(),
      })
      .optional(),
    resource: z.looseObject({
      resourceType: z.string().min(1).max(64),
      eksClusterDetails: z.looseObject({ name: clusterNameSchema }).optional(),
      kubernetesDetails: z
        .looseObject({
          kubernetesWorkloadDetails: z
            .looseObject({
              name: z.preprocess(absent, dnsSubdomain.optional()),
              type: optionalText(64),
              uid: z.preprocess(absent, z.uuid().optional()),
              namespace: z.preprocess(absent, dnsLabel.optional()),
              containers: z.preprocess(absent, z.array(container).max(64).optional()),
            })
            .optional(),
        })
        .optional(),
    }),
  }),
});

export function normalizeGuardDuty(event: z.output<typeof guardDutySchema>): Normalized {
  const d = event.detail;
  // A finding is updated in place as it recurs; each new occurrence count is a new alert.
  const alertId = d.service?.count ? `${d.id}#${d.service.count}` : d.id;
  const notActionable = (reason: string): Normalized => ({ kind: 'not-actionable', alertId, type: d.type, reason });
  if (d.resource.resourceType !== 'EKSCluster')
    return notActionable(`finding is about resource type ${d.resource.resourceType}, not an EKS workload`);
  const cluster = d.resource.eksClusterDetails?.name;
  if (!cluster) return notActionable('finding has no resource.eksClusterDetails.name');
  const w = d.resource.kubernetesDetails?.kubernetesWorkloadDetails;
  if (!w?.name || !w.namespace)
    return notActionable('finding names no Kubernetes workload (resource.kubernetesDetails.kubernetesWorkloadDetails)');
  // Runtime findings name the pod itself; anything else is a controller we cannot map to one pod.
  if (w.type && !/^pods?$/i.test(w.type))
    return notActionable(`finding names a ${w.type} (${w.namespace}/${w.name}), not a pod`);
  const c = w.containers?.find((x) => x.id) ?? w.containers?.[0];
  const p = d.service?.runtimeDetails?.process;
  return {
    kind: 'alert',
    type: d.type,
    alert: podAlert(
      compact({
        source: 'guardduty' as const,
        alertId,
        category:
          GUARDDUTY_MINING_TYPES.includes(d.type) || d.type.startsWith('CryptoCurrency:')
            ? CRYPTO_MINING
            : 'runtime-detection',
        severity: guardDutySeverity(d.severity),
        detectedAt: toIso(d.service?.eventLastSeen ?? d.updatedAt),
        cluster: { name: cluster, region: event.region },
        namespace: w.namespace,
        podName: w.name,
        podUid: w.uid,
        container: c ? emptyToUndefined(compact({ id: c.id, name: c.name, image: c.image })) : undefined,
        process: p ? emptyToUndefined(compact({ name: p.name, commandLine: p.executablePath, pid: p.pid })) : undefined,
        raw: { findingId: d.id, type: d.type, severity: d.severity, account: event.account },
      }),
    ),
  };
}
