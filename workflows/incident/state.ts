/**
 * The incident's own state: what the workflow works on and what continue-as-new carries. Never sent to a client:
 * `status` answers a view built from it (view.ts), and the workflow returns a summary, so a field here can be
 * renamed without changing the API (only the carried payload, which the replay corpus checks).
 */
import type { PodAlert } from '../../domain/alert.js';
import type { Dismissal } from '../../domain/checks.js';
import type { Decision } from '../../domain/decide.js';
import type { PodFacts, WorkloadRef } from '../../domain/workload.js';
import type { ActionResult, SuspensionRecord, VerifyCheck } from '../../remediation/protocol.js';
import type { EvidenceBundle } from '../../activities/evidence.js';
import type { CompensationOutcome } from '../compensations.js';
import type {
  AlertSummary,
  CredentialsStatus,
  Escalation,
  HoldStatus,
  IsolationStatus,
  NotificationsStatus,
  Outcome,
  Proposal,
  RestoreAttempt,
  Stage,
  TimelineEntry,
} from '../messages.js';

/**
 * Where the incident is, with what that phase works on, so no phase needs to ask whether it is there.
 * `pod` is the pod the response acts on: the one validation read, with the alert's UID (the record's `pod` is what
 * the read found, whatever it was). The waits carry their deadline, so a run that continued as new resumes the same
 * wait with the same time left.
 */
export type Phase =
  | { name: 'validate' }
  /** The proposal lives here while it waits for its answer; then it joins the record's `proposals`. */
  | { name: 'await-approval'; pod: PodFacts; proposal: Proposal }
  /** Decide again and act, after an approval or an escalation or repeats while watching. */
  | { name: 'act'; pod: PodFacts }
  | { name: 'watch'; pod: PodFacts; workload: WorkloadRef; until: string }
  | { name: 'hold'; suspension: SuspensionRecord; until: string }
  | { name: 'done'; outcome: Outcome; problem: string | null };

export type PhaseName = Phase['name'];

export interface IncidentState {
  incidentId: string;
  /** Runs so far: the incident continues as new to keep each run's history small. */
  run: number;
  stage: Stage;
  phase: Phase;
  /** What failed and what is left to do, when the outcome is not clean (set before the end, too). */
  problem: string | null;
  decision: Decision | null;
  dismissal: Dismissal | null;
  /** What the validation read: the alerted pod, another pod under its name (a dismissal), or none. */
  pod: PodFacts | null;
  workload: WorkloadRef | null;
  earlierIncidents: number;
  earlierIncidentsCounted: boolean;
  /** When the kill took effect: the DELETE answered plus its grace period. */
  killedAt: string | null;
  alerts: AlertSummary;
  escalation: Escalation | null;
  /** Proposals no longer open, oldest first (the newest PROPOSALS_KEPT); the open one is in the phase. */
  proposals: Proposal[];
  actions: ActionResult[];
  verification: VerifyCheck[];
  /** What the suspension changed, from the moment it did: the hold phase holds the same record. */
  suspension: SuspensionRecord | null;
  hold: HoldStatus | null;
  notifications: NotificationsStatus | null;
  wouldHaveDone: string[] | null;
  evidence: EvidenceBundle | null;
  isolation: IsolationStatus | null;
  credentials: CredentialsStatus | null;
  restore: RestoreAttempt | null;
  cleanup: CompensationOutcome[];
  /** Executor stretches opened so far: names of deployed resources derive from it. */
  executorSessions: number;
  timeline: TimelineEntry[];
  timelineOmitted: number;
}

/** Closed proposals kept: the last answered one and the ten before it. */
export const PROPOSALS_KEPT = 11;

export function freshState(incidentId: string, first: PodAlert): IncidentState {
  return {
    incidentId,
    run: 1,
    stage: 'validating',
    phase: { name: 'validate' },
    problem: null,
    decision: null,
    dismissal: null,
    pod: null,
    workload: null,
    earlierIncidents: 0,
    earlierIncidentsCounted: false,
    killedAt: null,
    alerts: {
      count: 1,
      duplicates: 0,
      otherPods: 0,
      invalid: 0,
      first,
      recent: [],
      recentDetections: [],
      sameContainerDetections: [],
      lastReceivedAt: new Date().toISOString(),
    },
    escalation: null,
    proposals: [],
    actions: [],
    verification: [],
    suspension: null,
    hold: null,
    notifications: null,
    wouldHaveDone: null,
    evidence: null,
    isolation: null,
    credentials: null,
    restore: null,
    cleanup: [],
    executorSessions: 0,
    timeline: [],
    timelineOmitted: 0,
  };
}

/** The open proposal, or the newest closed one: the one an answer is compared with. */
export function latestProposal(s: IncidentState): Proposal | null {
  return s.phase.name === 'await-approval' ? s.phase.proposal : (s.proposals.at(-1) ?? null);
}

/** The proposal awaiting an answer, if any. */
export function proposalAwaitingAnswer(s: IncidentState): Proposal | null {
  return s.phase.name === 'await-approval' ? s.phase.proposal : null;
}

/** The phase that ends the incident. */
export const done = (outcome: Outcome, problem?: string): Phase => ({
  name: 'done',
  outcome,
  problem: problem ?? null,
});
