import { ApplicationFailure, WorkflowUpdateFailedError, type WorkflowHandle } from '@temporalio/client';
import {
  ANSWER_REFUSED,
  approveUpdate,
  denyUpdate,
  statusQuery,
  type Actor,
  type AnswerRefusal,
  type ApprovalReceipt,
  type IncidentStatus,
} from '../workflows/messages.js';

export type AnswerResult = ApprovalReceipt;

const REFUSAL_TYPES: readonly string[] = Object.values(ANSWER_REFUSED);

/** The incident refused the answer: `type` says which rule (expired, outdated, other), the message says why in its words. */
export class AnswerRefusedError extends Error {
  constructor(
    readonly workflowId: string,
    readonly type: AnswerRefusal['type'],
    readonly reason: string,
  ) {
    super(`incident ${workflowId} refused the answer: ${reason}`);
    this.name = 'AnswerRefusedError';
  }
}

/**
 * Answers a proposal. Without a proposal ID it answers the one open now, read from the status: the
 * incident still refuses the answer if that proposal was superseded in between, so nobody approves
 * an action they did not see. A refusal (expired, outdated, already answered...) is an AnswerRefusedError.
 */
export async function answerProposal(
  handle: WorkflowHandle,
  answer: 'approved' | 'denied',
  actor: Actor & { proposalId?: string },
): Promise<AnswerResult> {
  const { proposalId, ...who } = actor;
  let id = proposalId;
  if (!id) {
    const status: IncidentStatus = await handle.query(statusQuery);
    // With nothing open, the incident's validator gives the reason (nothing proposed, or already answered).
    id = status.proposal?.id ?? 'none';
  }
  try {
    return await handle.executeUpdate(answer === 'approved' ? approveUpdate : denyUpdate, {
      args: [{ proposalId: id, ...who }],
    });
  } catch (err) {
    throw refusalOf(handle.workflowId, err) ?? err;
  }
}

/** The incident's own refusal carried by a failed update, if that is what `err` is. */
export function refusalOf(workflowId: string, err: unknown): AnswerRefusedError | null {
  if (!(err instanceof WorkflowUpdateFailedError)) return null;
  const cause = err.cause;
  const type =
    cause instanceof ApplicationFailure && cause.type && REFUSAL_TYPES.includes(cause.type)
      ? (cause.type as AnswerRefusal['type'])
      : ANSWER_REFUSED.invalid;
  return new AnswerRefusedError(workflowId, type, cause?.message ?? err.message);
}
