/**
 * Answering a campaign's proposals together: `pod-responder approve-all` and `deny-all`. The incidents awaiting
 * approval that the inbox filters select are each answered as `approve <id>` answers one: its open proposal is read
 * from its status and named in the answer, so a proposal superseded in between is refused, not approved unseen;
 * `--action` answers only proposals of that action. At most `atOnce` answers are in flight: an approved incident
 * runs about six more workflow tasks, and more incidents in flight than the worker's cache makes it replay nearly
 * every task (docs/operations.md, "How many at once"). Nothing is kept between runs: running the same command again answers
 * whatever still awaits an answer.
 */
import { WorkflowNotFoundError, type Client } from '@temporalio/client';
import { z } from 'zod';
import { ACTIONS } from '../domain/decide.js';
import { parseWith } from '../domain/validation-errors.js';
import { ANSWER_REFUSED, statusQuery, type IncidentStatus } from '../workflows/messages.js';
import { AnswerRefusedError, answerProposal } from './approvals.js';
import { listIncidents, type InboxFilters, type InboxRow } from './inbox.js';

/** Answers in flight at once for a worker cache of `maxCachedIncidents` (docs/operations.md, "How many at once"). */
export const atOnceFor = (maxCachedIncidents: number): number => Math.max(1, Math.floor(maxCachedIncidents / 6));

export const bulkOptionsSchema = z.strictObject({
  by: z.string().min(1, 'must name who is answering'),
  reason: z.string().min(1).optional(),
  action: z.enum(ACTIONS).optional(),
  atOnce: z.coerce.number().int().min(1).max(100),
});

export type BulkOptions = z.input<typeof bulkOptionsSchema>;

export interface BulkProgress {
  total: number;
  answered: number;
  skipped: number;
  failed: number;
}

export interface BulkReport extends BulkProgress {
  answer: 'approved' | 'denied';
  /** Listed but never tried, because the run was stopped (Ctrl-C): running the command again answers them. */
  notTried: number;
  /**
   * Why incidents were left unanswered, counted: they no longer awaited an answer, proposed another action, their
   * proposal expired or was outdated by the time the answer arrived, or the incident refused it otherwise.
   */
  skippedBecause: Record<string, number>;
  /** The first few incidents skipped or failed, with the exact reason. */
  samples: { workflowId: string; result: 'skipped' | 'failed'; reason: string }[];
  seconds: number;
}

const MAX_SAMPLES = 20;

/** The incidents a bulk answer would go to: those awaiting approval that the filters select, newest first. */
export function awaitingApproval(
  client: Client,
  filters: Omit<InboxFilters, 'stage' | 'outcome'>,
): Promise<InboxRow[]> {
  return listIncidents(client, { ...filters, stage: 'awaiting-approval' });
}

/** How `skippedBecause` counts the incident's refusals. */
const REFUSED_BECAUSE = {
  [ANSWER_REFUSED.expired]: 'proposal expired',
  [ANSWER_REFUSED.outdated]: 'proposal outdated',
  [ANSWER_REFUSED.invalid]: 'refused by the incident',
} as const;

type One =
  | { result: 'answered' }
  | { result: 'skipped'; because: string; reason: string }
  | { result: 'failed'; reason: string };

async function answerOne(
  client: Client,
  workflowId: string,
  answer: 'approved' | 'denied',
  o: z.output<typeof bulkOptionsSchema>,
): Promise<One> {
  const handle = client.workflow.getHandle(workflowId);
  try {
    const status: IncidentStatus = await handle.query(statusQuery);
    const open = status.proposal && !status.proposal.answer ? status.proposal : null;
    // Visibility lags the incidents: one listed may have been answered, timed out or closed since.
    if (!open)
      return {
        result: 'skipped',
        because: 'no longer awaiting an answer',
        reason: `stage ${status.stage}, nothing awaits an answer`,
      };
    if (o.action && open.action !== o.action)
      return {
        result: 'skipped',
        because: `proposes ${open.action}`,
        reason: `${open.id} proposes ${open.action} (${open.target}), not ${o.action}`,
      };
    await answerProposal(handle, answer, { by: o.by, ...(o.reason ? { reason: o.reason } : {}), proposalId: open.id });
    return { result: 'answered' };
  } catch (err) {
    // The incident's own refusal (expired, outdated, superseded or answered in between), or it closed: not a failure of this run.
    if (err instanceof AnswerRefusedError)
      return { result: 'skipped', because: REFUSED_BECAUSE[err.type], reason: err.reason };
    if (err instanceof WorkflowNotFoundError)
      return { result: 'skipped', because: 'no longer awaiting an answer', reason: 'closed' };
    return { result: 'failed', reason: (err as Error).message };
  }
}

/**
 * Answers the open proposal of every incident in `rows`, at most `atOnce` at a time. `stop` (Ctrl-C) ends it
 * after the answers in flight; the report counts what was not tried.
 */
export async function answerAll(
  client: Client,
  rows: readonly Pick<InboxRow, 'workflowId'>[],
  answer: 'approved' | 'denied',
  options: BulkOptions,
  hooks: { stop?: AbortSignal; onProgress?: (p: BulkProgress) => void } = {},
): Promise<BulkReport> {
  const o = parseWith(bulkOptionsSchema, 'options', options);
  const started = Date.now();
  const report: BulkReport = {
    answer,
    total: rows.length,
    answered: 0,
    skipped: 0,
    failed: 0,
    notTried: 0,
    skippedBecause: {},
    samples: [],
    seconds: 0,
  };
  let next = 0;
  const lane = async () => {
    while (next < rows.length && !hooks.stop?.aborted) {
      const { workflowId } = rows[next++]!;
      const one = await answerOne(client, workflowId, answer, o);
      if (one.result === 'answered') report.answered++;
      else {
        if (one.result === 'skipped') {
          report.skipped++;
          report.skippedBecause[one.because] = (report.skippedBecause[one.because] ?? 0) + 1;
        } else report.failed++;
        if (report.samples.length < MAX_SAMPLES)
          report.samples.push({ workflowId, result: one.result, reason: one.reason });
      }
      hooks.onProgress?.({
        total: report.total,
        answered: report.answered,
        skipped: report.skipped,
        failed: report.failed,
      });
    }
  };
  await Promise.all(Array.from({ length: Math.min(o.atOnce, rows.length) }, lane));
  report.notTried = rows.length - next;
  report.seconds = Math.round((Date.now() - started) / 100) / 10;
  return report;
}
