import type { WorkflowHandle } from '@temporalio/client';
import { approveUpdate, denyUpdate, statusQuery, type Actor, type ApprovalReceipt, type IncidentStatus } from '../workflows/messages.js';

export type AnswerResult = ApprovalReceipt;

/**
 * Answers a proposal. Without a proposal ID it answers the one open now, read from the status: the
 * incident still refuses the answer if that proposal was superseded in between, so nobody approves
 * an action they did not see.
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
  return handle.executeUpdate(answer === 'approved' ? approveUpdate : denyUpdate, { args: [{ proposalId: id, ...who }] });
}
