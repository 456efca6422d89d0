/**
 * Proposals and their answers. An action that needs approval becomes a proposal with an ID; an answer
 * names the proposal it is for and counts for that proposal only. When an escalation or a repeat changes
 * what the facts call for, the open proposal is superseded and the new one needs its own answer.
 */
import { propose, type ApprovalState, type Decision, type Proposed } from '../../domain/decide.js';
import { describeWorkload } from '../../remediation/protocol.js';
import type { ApprovalAnswer, ApprovalReceipt, Proposal } from '../messages.js';
import type { Incident } from './incident.js';

const PAST_PROPOSALS_KEPT = 10;

/** What the facts call for now, before approval. */
export function proposedNow(i: Incident): Proposed {
  return propose({
    alert: i.alert,
    pod: i.state.pod!,
    policy: i.policy,
    alertCount: i.alertsInWindow() + i.state.earlierIncidents,
    escalation: i.state.escalation,
  });
}

function sameAction(p: Proposal, proposed: Proposed): boolean {
  const workloadUid = proposed.action === 'suspend-workload' ? proposed.workload.uid : null;
  return p.action === proposed.action && (p.workload?.uid ?? null) === workloadUid;
}

/** The answer given to a proposal of exactly this action; none for any other action. */
export function answerFor(i: Incident, proposed: Proposed): ApprovalState {
  const p = i.state.proposal;
  if (!p?.answer || !sameAction(p, proposed)) return { state: 'none' };
  const a = p.answer;
  switch (a.answer) {
    case 'approved':
      return { state: 'approved', by: a.by! };
    case 'denied':
      return a.reason ? { state: 'denied', by: a.by!, reason: a.reason } : { state: 'denied', by: a.by! };
    case 'timed-out':
      return { state: 'timed-out' };
    case 'superseded':
      return { state: 'none' };
  }
}

/** True when the open proposal no longer matches what the facts call for (escalation, repeats). */
export function proposalOutdated(i: Incident): boolean {
  const p = i.state.proposal;
  return p !== null && p.answer === null && !sameAction(p, proposedNow(i));
}

/** Opens a proposal for the decision, superseding an open one; returns its ID. */
export function openProposal(i: Incident, decision: Extract<Decision, { action: 'await-approval' }>): string {
  const now = new Date();
  const previous = i.state.proposal;
  if (previous) {
    if (!previous.answer) {
      previous.answer = { answer: 'superseded', at: now.toISOString() };
      i.note('proposal-superseded', `${previous.id} (${previous.action} ${previous.target}) no longer applies`);
    }
    i.state.pastProposals.push(previous);
    if (i.state.pastProposals.length > PAST_PROPOSALS_KEPT) i.state.pastProposals.shift();
  }
  const id = `p${previous ? Number(previous.id.slice(1)) + 1 : 1}`;
  const workload = decision.workload ?? null;
  const pod = i.state.pod!;
  const proposal: Proposal = {
    id,
    action: decision.proposed,
    target: workload ? describeWorkload(workload) : `pod ${pod.namespace}/${pod.name} (uid ${pod.uid})`,
    workload,
    reason: decision.reason,
    proposedAt: now.toISOString(),
    expiresAt: new Date(now.getTime() + i.policy.approvalTimeoutSeconds * 1000).toISOString(),
    answer: null,
  };
  i.state.proposal = proposal;
  i.note('proposal', `${id}: ${proposal.action} ${proposal.target} awaits approve or deny until ${proposal.expiresAt} (${proposal.reason})`);
  return id;
}

/** Refuses, with a message the caller can act on, any answer other than the first one to the open proposal. */
export function validateAnswer(i: Incident, a: ApprovalAnswer): void {
  if (typeof a?.by !== 'string' || !a.by.trim()) throw new Error('an answer needs "by": who answers');
  if (typeof a.proposalId !== 'string' || !a.proposalId) throw new Error('an answer needs "proposalId": the proposal it is for (see status)');
  const p = i.state.proposal;
  if (!p) throw new Error(`nothing awaits approval: no action has been proposed (stage ${i.state.stage})`);
  if (p.id !== a.proposalId) {
    const past = i.state.pastProposals.find((x) => x.id === a.proposalId);
    const current = p.answer ? '' : `; ${p.id} (${p.action} ${p.target}) awaits an answer`;
    throw new Error(past ? `proposal ${past.id} (${past.action} ${past.target}) is no longer open: it was ${past.answer?.answer}${current}` : `there is no proposal ${a.proposalId}${current}`);
  }
  if (p.answer) {
    const who = p.answer.by ? ` by ${p.answer.by}` : '';
    throw new Error(`proposal ${p.id} was already answered: ${p.answer.answer}${who} at ${p.answer.at}`);
  }
  if (i.state.stage !== 'awaiting-approval') throw new Error(`nothing awaits approval (stage ${i.state.stage})`);
}

export function recordAnswer(i: Incident, answer: 'approved' | 'denied', a: ApprovalAnswer): ApprovalReceipt {
  const p = i.state.proposal!;
  p.answer = { answer, by: a.by, ...(a.reason ? { reason: a.reason } : {}), at: new Date().toISOString() };
  i.note(answer, `${p.id} (${p.action} ${p.target}) ${answer} by ${a.by}${a.reason ? `: ${a.reason}` : ''}`);
  return { proposalId: p.id, answer, action: p.action, target: p.target };
}
