import type { WorkflowHandle } from '@temporalio/client';
import { approveSignalV1, denySignalV1, type IncidentStatusV1 } from '../workflows/legacy/messages-v1.js';
import { approveUpdate, denyUpdate, statusQuery, type Actor, type ApprovalReceipt, type IncidentStatus } from '../workflows/messages.js';

export type AnswerResult = ApprovalReceipt | { answer: 'approved' | 'denied'; sentAsSignal: true; note: string };

/**
 * Answers a proposal. Without a proposal ID it answers the one open now, read from the status: the
 * incident still refuses the answer if that proposal was superseded in between, so nobody approves
 * an action they did not see. Incidents started before v2 take the old fire-and-forget signal.
 */
export async function answerProposal(
  handle: WorkflowHandle,
  answer: 'approved' | 'denied',
  actor: Actor & { proposalId?: string },
): Promise<AnswerResult> {
  const { proposalId, ...who } = actor;
  let id = proposalId;
  if (!id) {
    const status = (await handle.query(statusQuery)) as IncidentStatus | IncidentStatusV1;
    if (!('run' in status)) {
      await handle.signal(answer === 'approved' ? approveSignalV1 : denySignalV1, who);
      return { answer, sentAsSignal: true, note: 'incident started before v2: the answer was sent as a signal, which it takes if it awaits approval' };
    }
    // With nothing open, the incident's validator gives the reason (nothing proposed, or already answered).
    id = status.proposal?.id ?? 'none';
  }
  return handle.executeUpdate(answer === 'approved' ? approveUpdate : denyUpdate, { args: [{ proposalId: id, ...who }] });
}
