/**
 * The analyst's inbox: `pod-responder list`, incidents filtered by stage, outcome, cluster, namespace and age,
 * read from Temporal visibility through the search attributes every incident keeps current. The filters are
 * validated first (they end up in a visibility query), so a typo is an exact error rather than an empty list.
 */
import type { Client } from '@temporalio/client';
import { z } from 'zod';
import { clusterNameSchema, dnsLabel } from '../domain/alert.js';
import { SA } from '../domain/search-attributes.js';
import { parseWith } from '../domain/validation-errors.js';

export const STAGES = [
  'validating',
  'deciding',
  'awaiting-approval',
  'remediating',
  'verifying',
  'watching',
  'holding',
  'restoring',
  'cleaning-up',
  'closed',
] as const;
export const OUTCOMES = [
  'dismissed',
  'pod-terminated',
  'workload-suspended',
  'workload-restored',
  'needs-manual-action',
  'failed',
  'cancelled',
  'dry-run',
] as const;

const since = z
  .string()
  .regex(
    /^(\d+)([mhd])$|^\d{4}-\d{2}-\d{2}T[\d:.]+(Z|[+-]\d{2}:\d{2})$/,
    'must be a duration (30m, 12h, 7d) or an ISO 8601 time with its offset',
  );

export const filtersSchema = z.strictObject({
  stage: z.enum(STAGES).optional(),
  outcome: z.enum(OUTCOMES).optional(),
  cluster: clusterNameSchema.optional(),
  namespace: dnsLabel.optional(),
  since: since.optional(),
  limit: z.coerce.number().int().min(1).max(10_000).default(100),
});

export type InboxFilters = z.input<typeof filtersSchema>;

export interface InboxRow {
  workflowId: string;
  status: string;
  stage: string;
  outcome: string;
  cluster: string;
  namespace: string;
  pod: string;
  workload: string;
  started: string;
}

/** The visibility query for the filters: what the Temporal UI's search box takes too (docs/cli.md). */
export function inboxQuery(input: InboxFilters, now = Date.now()): string {
  const f = parseWith(filtersSchema, 'filters', input);
  const terms = [`WorkflowType = 'maliciousPodResponse'`];
  // Values are validated to the characters of their schemas above: nothing in them can end a quoted string.
  if (f.stage) terms.push(`PodResponderStage = '${f.stage}'`);
  if (f.outcome) terms.push(`PodResponderOutcome = '${f.outcome}'`);
  if (f.cluster) terms.push(`PodResponderCluster = '${f.cluster}'`);
  if (f.namespace) terms.push(`PodResponderNamespace = '${f.namespace}'`);
  if (f.since) terms.push(`StartTime > '${sinceTime(f.since, now)}'`);
  return terms.join(' AND ');
}

function sinceTime(s: string, now: number): string {
  const m = /^(\d+)([mhd])$/.exec(s);
  if (!m) return new Date(s).toISOString();
  const unit = { m: 60_000, h: 3_600_000, d: 86_400_000 }[m[2] as 'm' | 'h' | 'd'];
  return new Date(now - Number(m[1]) * unit).toISOString();
}

export async function listIncidents(client: Client, input: InboxFilters): Promise<InboxRow[]> {
  const { limit } = parseWith(filtersSchema, 'filters', input);
  const rows: InboxRow[] = [];
  for await (const wf of client.workflow.list({ query: inboxQuery(input), pageSize: Math.min(limit, 1000) })) {
    const sa = wf.typedSearchAttributes;
    const kind = sa.get(SA.workloadKind);
    rows.push({
      workflowId: wf.workflowId,
      status: wf.status.name,
      stage: sa.get(SA.stage) ?? '',
      outcome: sa.get(SA.outcome) ?? '',
      cluster: sa.get(SA.cluster) ?? '',
      namespace: sa.get(SA.namespace) ?? '',
      pod: sa.get(SA.pod) ?? '',
      workload: kind && kind !== 'Pod' ? `${kind}/${sa.get(SA.workloadName) ?? ''}` : '',
      started: wf.startTime.toISOString(),
    });
    if (rows.length >= limit) break;
  }
  return rows;
}

/** A plain table, one incident per line, newest first as visibility returns them. */
export function formatInbox(rows: InboxRow[]): string {
  if (!rows.length) return 'no incidents match\n';
  const header: (keyof InboxRow)[] = [
    'started',
    'stage',
    'outcome',
    'cluster',
    'namespace',
    'pod',
    'workload',
    'workflowId',
  ];
  const cells = [header.map((h) => h.toUpperCase()), ...rows.map((r) => header.map((h) => r[h] || '-'))];
  const widths = header.map((_, i) => Math.max(...cells.map((c) => c[i]!.length)));
  return `${cells.map((c) => c.map((v, i) => (i === c.length - 1 ? v : v.padEnd(widths[i]!))).join('  ')).join('\n')}\n`;
}
