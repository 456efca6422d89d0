/**
 * The incident as clients see it, built from its state by pure functions: the `status` query's answer and the
 * workflow's result. Every field is named here, so nothing internal reaches a client by accident
 * (docs/status.md documents the shape).
 */
import { STATUS_SCHEMA_VERSION, type IncidentResult, type IncidentStatus, type Outcome } from '../messages.js';
import type { IncidentState } from './state.js';

export function statusView(s: IncidentState): IncidentStatus {
  const open = s.phase.name === 'await-approval' ? s.phase.proposal : null;
  const closed = s.proposals;
  return {
    schemaVersion: STATUS_SCHEMA_VERSION,
    incidentId: s.incidentId,
    run: s.run,
    stage: s.stage,
    waitingUntil: waitingUntil(s),
    outcome: s.phase.name === 'done' ? s.phase.outcome : null,
    problem: s.problem,
    decision: s.decision,
    dismissal: s.dismissal,
    pod: s.pod,
    workload: s.workload,
    earlierIncidents: s.earlierIncidents,
    earlierIncidentsCounted: s.earlierIncidentsCounted,
    killedAt: s.killedAt,
    alerts: s.alerts,
    escalation: s.escalation,
    proposal: open ?? closed.at(-1) ?? null,
    pastProposals: (open ? closed : closed.slice(0, -1)).slice(-PAST_PROPOSALS_SHOWN),
    actions: s.actions,
    verification: s.verification,
    suspension: s.suspension,
    hold: s.hold,
    notifications: s.notifications,
    wouldHaveDone: s.wouldHaveDone,
    evidence: s.evidence,
    isolation: s.isolation,
    credentials: s.credentials,
    restore: s.restore,
    cleanup: s.cleanup,
    executorSessions: s.executorSessions,
    timeline: s.timeline,
    timelineOmitted: s.timelineOmitted,
  };
}

const PAST_PROPOSALS_SHOWN = 10;

function waitingUntil(s: IncidentState): string | null {
  switch (s.phase.name) {
    case 'await-approval':
      return s.phase.proposal.expiresAt;
    case 'watch':
    case 'hold':
      return s.phase.until;
    case 'validate':
    case 'act':
    case 'done':
      return null;
  }
}

/** The workflow's result: the outcome and the changes made, in a few lines; the rest stays in `status`. */
export function resultSummary(s: IncidentState, outcome: Outcome): IncidentResult {
  return {
    schemaVersion: STATUS_SCHEMA_VERSION,
    incidentId: s.incidentId,
    outcome,
    problem: s.problem,
    actions: s.actions.map(({ action, target, status }) => ({ action, target, status })),
    runs: s.run,
    // The pod as validated, only when it is the one the alert named (a dismissal may have read another under its name).
    pod:
      s.pod && (!s.alerts.first.podUid || s.pod.uid === s.alerts.first.podUid)
        ? { uid: s.pod.uid, containerIds: s.pod.containers.flatMap((c) => c.containerIds) }
        : null,
    killedAt: s.killedAt,
    dismissal: s.dismissal?.code ?? null,
  };
}
