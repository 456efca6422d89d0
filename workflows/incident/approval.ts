/**
 * Proposals and their answers. An action that needs approval becomes a proposal with an ID; an answer
 * names the proposal it is for and counts for that proposal only. When an escalation or a repeat changes
 * what the facts call for, the open proposal is superseded and the new one needs its own answer.
 */
import { ApplicationFailure } from '@temporalio/workflow';
import { propose, type ApprovalState, type Decision, type Proposed } from '../../domain/decide.js';
import { describeWorkload } from '../../remediation/protocol.js';
import {
  ANSWER_REFUSED,
  type AnswerRefusal,
  type ApprovalAnswer,
  type ApprovalReceipt,
  type Proposal,
} from '../messages.js';
import type { PodFacts } from '../../domain/workload.js';
import type { Incident } from './incident.js';
import { latestProposal, PROPOSALS_KEPT } from './state.js';

/** What the facts call for now, before approval. */
export function proposedNow(i: Incident, pod: PodFacts): Proposed {
  return propose({
    alert: i.alert,
    pod,
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
  const p = latestProposal(i.state);
  if (!p?.answer || !sameAction(p, proposed)) return { state: 'none' };
  const a = p.answer;
  switch (a.answer) {
    case 'approved':
      return { state: 'approved', by: a.by };
    case 'denied':
      return a.reason ? { state: 'denied', by: a.by, reason: a.reason } : { state: 'denied', by: a.by };
    case 'timed-out':
      return { state: 'timed-out' };
    case 'superseded':
      return { state: 'none' };
  }
}

/** True when the open proposal no longer matches what the facts call for (escalation, repeats). */
export function proposalOutdated(i: Incident, pod: PodFacts, p: Proposal): boolean {
  return p.answer === null && !sameAction(p, proposedNow(i, pod));
}

/** The wait for an answer is over: the proposal joins the record (the newest PROPOSALS_KEPT). */
export function closeProposal(i: Incident, p: Proposal): void {
  i.state.proposals.push(p);
  if (i.state.proposals.length > PROPOSALS_KEPT) i.state.proposals.shift();
}

/** Opens a proposal for the decision, superseding one left unanswered; the await-approval phase carries it. */
export function openProposal(
  i: Incident,
  pod: PodFacts,
  decision: Extract<Decision, { action: 'await-approval' }>,
): Proposal {
  const now = new Date();
  const previous = latestProposal(i.state);
  if (previous && !previous.answer) {
    previous.answer = { answer: 'superseded', at: now.toISOString() };
    i.note('proposal-superseded', `${previous.id} (${previous.action} ${previous.target}) no longer applies`);
  }
  const id = `p${previous ? Number(previous.id.slice(1)) + 1 : 1}`;
  const workload = decision.workload ?? null;
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
  i.note(
    'proposal',
    `${id}: ${proposal.action} ${proposal.target} awaits approve or deny until ${proposal.expiresAt} (${proposal.reason})`,
  );
  return proposal;
}

/**
 * Why an answer is refused, or null when it is the first answer to the open proposal, in time, while the facts
 * still call for what it proposes. Time is workflow time (deterministic): an answer that reaches the incident in
 * the same task as the expiry timer, or after a worker outage, finds the proposal expired, whatever the caller saw.
 */
export function answerRefusal(i: Incident, a: ApprovalAnswer): AnswerRefusal | null {
  const checked = checkAnswer(i, a);
  return 'refusal' in checked ? checked.refusal : null;
}

/** The proposal an answer is for, or why it is refused (answerRefusal). */
function checkAnswer(i: Incident, a: ApprovalAnswer): { refusal: AnswerRefusal } | { proposal: Proposal } {
  const refused = (
    message: string,
    type: AnswerRefusal['type'] = ANSWER_REFUSED.invalid,
  ): { refusal: AnswerRefusal } => ({ refusal: { type, message } });
  if (typeof a?.by !== 'string' || !a.by.trim()) return refused('an answer needs "by": who answers');
  if (typeof a.proposalId !== 'string' || !a.proposalId)
    return refused('an answer needs "proposalId": the proposal it is for (see status)');
  const p = latestProposal(i.state);
  if (!p) return refused(`nothing awaits approval: no action has been proposed (stage ${i.state.stage})`);
  if (p.id !== a.proposalId) {
    const past = i.state.proposals.find((x) => x.id === a.proposalId);
    const current = p.answer ? '' : `; ${p.id} (${p.action} ${p.target}) awaits an answer`;
    return refused(
      past
        ? `proposal ${past.id} (${past.action} ${past.target}) is no longer open: it was ${past.answer?.answer}${current}`
        : `there is no proposal ${a.proposalId}${current}`,
    );
  }
  if (p.answer?.answer === 'timed-out' || (!p.answer && Date.now() >= Date.parse(p.expiresAt))) {
    const then =
      i.policy.onApprovalTimeout === 'dismiss' ? 'the incident is dismissed' : 'the incident proceeds without approval';
    return refused(
      `proposal ${p.id} (${p.action} ${p.target}) expired at ${p.expiresAt}: no answer is taken after it; on expiry ${then} (policy onApprovalTimeout: ${i.policy.onApprovalTimeout})`,
      ANSWER_REFUSED.expired,
    );
  }
  if (p.answer) {
    const who = 'by' in p.answer ? ` by ${p.answer.by}` : '';
    return refused(`proposal ${p.id} was already answered: ${p.answer.answer}${who} at ${p.answer.at}`);
  }
  const phase = i.state.phase;
  if (i.state.stage !== 'awaiting-approval' || phase.name !== 'await-approval')
    return refused(`nothing awaits approval (stage ${i.state.stage})`);
  // A signal in the same task (an escalation, repeats) changed what the facts call for: the incident is about to
  // supersede this proposal, so an answer to it would be taken and then ignored.
  const now = proposedNow(i, phase.pod);
  if (!sameAction(p, now)) {
    const target = now.action === 'suspend-workload' ? describeWorkload(now.workload) : p.target;
    return refused(
      `proposal ${p.id} (${p.action} ${p.target}) is outdated: the facts now call for ${now.action} ${target} (${now.reason}); a new proposal replaces it: answer that one`,
      ANSWER_REFUSED.outdated,
    );
  }
  return { proposal: p };
}

/** The update validator: refuses, with a message the caller can act on, any answer `answerRefusal` refuses. */
export function validateAnswer(i: Incident, a: ApprovalAnswer): void {
  answerable(i, a);
}

/** The open proposal the answer is for; throws the refusal otherwise. */
function answerable(i: Incident, a: ApprovalAnswer): Proposal {
  const checked = checkAnswer(i, a);
  if ('proposal' in checked) return checked.proposal;
  const { type, message } = checked.refusal;
  throw ApplicationFailure.create({ type, message, nonRetryable: true });
}

/**
 * Records the answer. The handler checks again, in the same workflow time as the validator: validators do not run
 * on replay, and the rule (no answer after expiry, none to an outdated proposal) is the incident's own, not the caller's.
 */
export function recordAnswer(i: Incident, answer: 'approved' | 'denied', a: ApprovalAnswer): ApprovalReceipt {
  const p = answerable(i, a);
  p.answer = { answer, by: a.by, ...(a.reason ? { reason: a.reason } : {}), at: new Date().toISOString() };
  i.note(answer, `${p.id} (${p.action} ${p.target}) ${answer} by ${a.by}${a.reason ? `: ${a.reason}` : ''}`);
  return { proposalId: p.id, answer, action: p.action, target: p.target };
}
