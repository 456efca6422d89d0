/**
 * Which answers an incident takes: the rules the approve/deny validator and handler share (workflows/incident/approval.ts),
 * on a stand-in incident at a set clock (in a workflow, Date.now() is workflow time). The races themselves (an answer
 * in the same task as the expiry timer or an escalation) run through the real worker in test/integration/unattended.test.ts.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { PodAlert } from '../../domain/alert.js';
import { policySchema, type PolicyInput } from '../../domain/policy.js';
import type { PodFacts } from '../../domain/workload.js';
import type { Incident } from '../../workflows/incident/incident.js';
import { answerRefusal } from '../../workflows/incident/approval.js';
import type { Escalation, Proposal, Stage } from '../../workflows/messages.js';
import { freshState, type IncidentState } from '../../workflows/incident/state.js';

const PROPOSED_AT = Date.parse('2026-12-07T12:00:00.000Z');
const EXPIRES_AT = '2026-12-07T12:15:00.000Z';

const alert: PodAlert = {
  source: 'falco',
  alertId: 'a1',
  category: 'crypto-mining',
  severity: 'high',
  detectedAt: '2026-12-07T11:59:00Z',
  cluster: { name: 'prod' },
  namespace: 'shop',
  podName: 'web-1',
};
const pod: PodFacts = {
  namespace: 'shop',
  name: 'web-1',
  uid: 'u1',
  labels: {},
  containers: [],
  owners: [
    { apiVersion: 'apps/v1', kind: 'ReplicaSet', name: 'web-5d8f', uid: 'rs', supported: true },
    { apiVersion: 'apps/v1', kind: 'Deployment', name: 'web', uid: 'd', supported: true },
  ],
};
const p1 = (): Proposal => ({
  id: 'p1',
  action: 'terminate-pod',
  target: 'pod shop/web-1 (uid u1)',
  workload: null,
  reason: 'first alert',
  proposedAt: new Date(PROPOSED_AT).toISOString(),
  expiresAt: EXPIRES_AT,
  answer: null,
});

/**
 * A stand-in incident: by default awaiting an answer to p1. A proposal given with another stage is a closed one (the
 * state keeps the open proposal in its await-approval phase, closed ones in `proposals`).
 */
function incident(
  over: {
    policy?: PolicyInput;
    state?: { stage?: Stage; proposal?: Proposal | null; escalation?: Escalation };
    alerts?: number;
  } = {},
): Incident {
  const { stage = 'awaiting-approval', proposal = p1(), escalation = null } = over.state ?? {};
  const waiting = stage === 'awaiting-approval' && proposal;
  const state: IncidentState = {
    ...freshState('incident-1', alert),
    stage,
    phase: waiting ? { name: 'await-approval', pod, proposal } : { name: 'done', outcome: 'dismissed', problem: null },
    proposals: !waiting && proposal ? [proposal] : [],
    pod,
    escalation,
  };
  const policy = policySchema.parse({
    requireApprovalFor: ['terminate-pod', 'suspend-workload'],
    suspendOnSeverity: [],
    ...over.policy,
  });
  return { alert, policy, state, alertsInWindow: () => over.alerts ?? 1 } as unknown as Incident;
}

const answer = { proposalId: 'p1', by: 'ana' };
const at = (iso: string) => vi.setSystemTime(Date.parse(iso));

beforeEach(() => {
  vi.useFakeTimers();
});
afterEach(() => {
  vi.useRealTimers();
});

describe('an answer to the open proposal', () => {
  it('is taken until the instant before expiry, and refused from the expiry on, saying what the policy does', () => {
    at('2026-12-07T12:14:59.999Z');
    expect(answerRefusal(incident(), answer)).toBeNull();
    at(EXPIRES_AT);
    expect(answerRefusal(incident(), answer)).toEqual({
      type: 'ProposalExpired',
      message: `proposal p1 (terminate-pod pod shop/web-1 (uid u1)) expired at ${EXPIRES_AT}: no answer is taken after it; on expiry the incident is dismissed (policy onApprovalTimeout: dismiss)`,
    });
    at('2026-12-07T13:00:00.000Z'); // late, after a worker outage
    expect(
      answerRefusal(incident({ policy: { onApprovalTimeout: 'proceed' } }), { ...answer, by: 'bob' })?.message,
    ).toBe(
      `proposal p1 (terminate-pod pod shop/web-1 (uid u1)) expired at ${EXPIRES_AT}: no answer is taken after it; on expiry the incident proceeds without approval (policy onApprovalTimeout: proceed)`,
    );
  });

  it('is refused as expired once the incident recorded the timeout, not as "already answered"', () => {
    at('2026-12-07T12:20:00.000Z');
    const state = {
      proposal: { ...p1(), answer: { answer: 'timed-out' as const, at: EXPIRES_AT } },
      stage: 'closed' as const,
    };
    expect(answerRefusal(incident({ state }), answer)?.type).toBe('ProposalExpired');
  });

  it('is refused as outdated when a signal in the same task changed what the facts call for', () => {
    at('2026-12-07T12:01:00.000Z');
    expect(
      answerRefusal(incident({ state: { escalation: { by: 'soc', reason: 'miner confirmed' } } }), answer),
    ).toEqual({
      type: 'ProposalOutdated',
      message:
        'proposal p1 (terminate-pod pod shop/web-1 (uid u1)) is outdated: the facts now call for suspend-workload Deployment shop/web (escalated by soc: miner confirmed); a new proposal replaces it: answer that one',
    });
    // Repeats that cross the threshold do the same.
    expect(answerRefusal(incident({ alerts: 2 }), answer)?.message).toBe(
      'proposal p1 (terminate-pod pod shop/web-1 (uid u1)) is outdated: the facts now call for suspend-workload Deployment shop/web (2 alerts within 900s (threshold 2)); a new proposal replaces it: answer that one',
    );
  });

  it('keeps the other refusals as they were: already answered, another proposal, nothing proposed', () => {
    at('2026-12-07T12:01:00.000Z');
    const answered = {
      proposal: { ...p1(), answer: { answer: 'approved' as const, by: 'ana', at: '2026-12-07T12:00:30.000Z' } },
    };
    expect(answerRefusal(incident({ state: answered }), answer)).toEqual({
      type: 'AnswerRefused',
      message: 'proposal p1 was already answered: approved by ana at 2026-12-07T12:00:30.000Z',
    });
    expect(answerRefusal(incident(), { ...answer, proposalId: 'p7' })?.message).toBe(
      'there is no proposal p7; p1 (terminate-pod pod shop/web-1 (uid u1)) awaits an answer',
    );
    expect(answerRefusal(incident({ state: { proposal: null, stage: 'watching' } }), answer)?.message).toBe(
      'nothing awaits approval: no action has been proposed (stage watching)',
    );
  });
});
