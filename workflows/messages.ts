/** Signals, queries and updates of an incident: the analyst's and the forwarder's handles on a running response. */
import { defineQuery, defineSignal, defineUpdate } from '@temporalio/workflow';
import type { PodAlert } from '../domain/alert.js';
import type { AlertBatchPacking, PackedAlert } from '../domain/alert-batch.js';
import type { Dismissal, DismissalCode } from '../domain/checks.js';
import type { Action, Decision } from '../domain/decide.js';
import type { PodFacts, WorkloadRef } from '../domain/workload.js';
import type {
  ActionResult,
  ActionStatus,
  IsolationRecord,
  SuspensionRecord,
  VerifyCheck,
} from '../remediation/protocol.js';
import type { CompensationOutcome } from './compensations.js';
import type { EvidenceBundle } from '../activities/evidence.js';

export interface Actor {
  by: string;
  reason?: string;
}

export interface Escalation {
  by: string;
  reason: string;
}

/** An answer to one proposal: approving "terminate the pod" never approves "suspend the workload". */
export interface ApprovalAnswer extends Actor {
  proposalId: string;
}

/** What an `approve` or `deny` update answers once the incident took the answer. */
export interface ApprovalReceipt {
  proposalId: string;
  answer: 'approved' | 'denied';
  action: Action;
  target: string;
}

/**
 * Why `approve` or `deny` was refused: the ApplicationFailure type the update fails with (its message says the rest).
 * expired: the proposal's expiry passed (workflow time), whatever the caller saw; outdated: the facts changed (an
 * escalation, repeats) and a new proposal replaces it; invalid: any other refusal (no such proposal, answered already).
 */
export const ANSWER_REFUSED = {
  expired: 'ProposalExpired',
  outdated: 'ProposalOutdated',
  invalid: 'AnswerRefused',
} as const;

export interface AnswerRefusal {
  type: (typeof ANSWER_REFUSED)[keyof typeof ANSWER_REFUSED];
  message: string;
}

export const escalateSignal = defineSignal<[Escalation]>('escalate');
/**
 * Repeat detections for the same pod, batched by the forwarder; each alert ID is counted once. With a packing
 * (domain/alert-batch.ts), the alerts after the first leave out the fields it names: the first's values apply.
 */
export const alertsSignal = defineSignal<[PackedAlert[], AlertBatchPacking?]>('alerts');
/** One repeat detection (what starters before batching sent); same handling as `alerts`. */
export const alertSignal = defineSignal<[PodAlert]>('alert');
export const statusQuery = defineQuery<IncidentStatus>('status');
/** Approves the proposal named; refused (ANSWER_REFUSED) when it is not the one awaiting an answer, expired or outdated. */
export const approveUpdate = defineUpdate<ApprovalReceipt, [ApprovalAnswer]>('approve');
/** Denies the proposal named (the incident is dismissed); refused like `approve`. */
export const denyUpdate = defineUpdate<ApprovalReceipt, [ApprovalAnswer]>('deny');
/**
 * Undoes a verified, held suspension from its recorded prior state (and releases a credentials revocation);
 * answers with what was restored. While watching after a kill that revoked credentials: releases the revocation only.
 */
export const restoreUpdate = defineUpdate<RestoreResult, [Actor]>('restore');

/** What `restore` answers: the workload restored, or (watching after a kill) the credentials revocation released. */
export type RestoreResult =
  ActionResult | { action: 'release-credentials'; target: string; status: ActionStatus; message: string };

export type Stage =
  | 'validating'
  | 'deciding'
  | 'awaiting-approval'
  | 'remediating'
  | 'verifying'
  | 'watching'
  | 'holding'
  | 'restoring'
  | 'cleaning-up'
  | 'closed';

export type Outcome =
  | 'dismissed'
  | 'pod-terminated'
  | 'workload-suspended'
  | 'workload-restored'
  | 'needs-manual-action'
  | 'failed'
  | 'cancelled'
  | 'dry-run';

export interface TimelineEntry {
  at: string;
  event: string;
  detail: string;
}

/** The alerts an incident received, in bounded space however many arrive. */
export interface AlertSummary {
  /** Distinct alert IDs received, the first included: exact. */
  count: number;
  /** Copies of alerts already counted (resends, relays, redeliveries). */
  duplicates: number;
  /** Alerts about another pod that reached this incident, ignored. */
  otherPods: number;
  /** Signals whose content was not a valid alert, ignored. */
  invalid: number;
  /** The alert that started the incident (its `raw` cut to an excerpt). */
  first: PodAlert;
  /** The newest repeats, newest last (policy.keepRecentAlerts of them). */
  recent: PodAlert[];
  /** Detection times (ms) of the newest repeats naming another container than the first alert, for the repeat window; newest first. */
  recentDetections: number[];
  /**
   * Detection times (ms) of the newest alerts naming the first alert's container (or no container to tell them
   * apart), newest first: another rule on the same event, or a late copy. Repeats only when detected after the kill.
   */
  sameContainerDetections: number[];
  lastReceivedAt: string;
}

/** A person's answer names who gave it; an expiry or a newer proposal is nobody's. */
export type ProposalAnswer =
  | { answer: 'approved' | 'denied'; by: string; reason?: string; at: string }
  | { answer: 'timed-out' | 'superseded'; at: string };

/** An action that waits for a human answer before it runs. */
export interface Proposal {
  /** `p1`, `p2`, ... within the incident: an answer names the proposal it is for. */
  id: string;
  action: Action;
  /** What the action would change, in words. */
  target: string;
  /** The workload a `suspend-workload` proposal would suspend. */
  workload: WorkloadRef | null;
  reason: string;
  proposedAt: string;
  expiresAt: string;
  answer: ProposalAnswer | null;
}

/**
 * The deny-all NetworkPolicy put on the pod before anything destructive (and while an action awaits approval).
 * isolated: in place; not-enforceable: the pod is not cut off, and `detail` says why (hostNetwork; another policy
 * allows its traffic: then ours is in place for what it still denies, `record` set); released: removed (the kill
 * verified, or the incident was dismissed, denied, cancelled or restored); kept: left in place (with the living
 * pod, or until its kill is confirmed); failed: not isolated, and why.
 */
export interface IsolationStatus {
  state: 'isolated' | 'not-enforceable' | 'released' | 'kept' | 'failed';
  /** `namespace/name` of the NetworkPolicy. */
  networkPolicy: string | null;
  record: IsolationRecord | null;
  at: string;
  /** What happened last, in words: enforcement depends on the cluster's network plugin. */
  detail: string;
}

/**
 * The pod's cloud credentials, cut before the kill (policy revokeCredentials): an inline policy on the IAM role
 * its ServiceAccount maps to, denying every session issued before `notBefore`. revoked: in place; refused: the
 * role is not opted in (or not ours to change), and `detail` says how to opt in; failed: not revoked, and why;
 * released: removed again (restore); no-role: the ServiceAccount maps to no IAM role.
 */
export interface CredentialsStatus {
  state: 'revoked' | 'refused' | 'failed' | 'released' | 'no-role';
  /** `namespace/name` of the pod's ServiceAccount. */
  serviceAccount: string | null;
  /** The IAM role's ARN. */
  role: string | null;
  /** How the role was found: the ServiceAccount's IRSA annotation, or an EKS Pod Identity association. */
  via: 'irsa' | 'pod-identity' | null;
  policyName: string | null;
  /** T: sessions of the role issued before it are denied. */
  notBefore: string | null;
  at: string;
  detail: string;
  /** The exact command that removes the revocation by hand (while one may be in place). */
  undo: string | null;
}

export interface HoldStatus {
  checks: number;
  lastCheckAt: string | null;
  reverts: number;
  /** The newest revert: what the objects said, and who wrote it last (field manager), when they say. */
  lastRevert: { at: string; observed: string; by: string | null } | null;
}

export interface RestoreAttempt {
  state: 'restoring' | 'restored' | 'failed';
  by: string;
  at: string;
  /** What went wrong, when it failed: the suspension is still in place and restore can be asked again. */
  error?: string;
}

/** Notifications sent (delivered to how many targets) and the newest failures. */
export interface NotificationsStatus {
  sent: number;
  delivered: number;
  failed: { at: string; event: string; target: string; error: string }[];
}

/** The version of the `status` answer's shape (docs/status.md): raised when a field changes meaning or goes. */
export const STATUS_SCHEMA_VERSION = 1;

/**
 * What `status` answers: the incident as an analyst, the CLI and the UI see it, built from the incident's state by
 * a pure function (incident/view.ts). Its shape is versioned (`schemaVersion`) and documented in docs/status.md; a
 * field added keeps the version, a field renamed, removed or changed in meaning raises it.
 */
export interface IncidentStatus {
  schemaVersion: typeof STATUS_SCHEMA_VERSION;
  incidentId: string;
  /** Runs so far: the incident continues as new to keep each run's history small. */
  run: number;
  stage: Stage;
  /** The deadline of the wait the incident is in (approval expiry, end of the watch or hold); null when not waiting. */
  waitingUntil: string | null;
  outcome: Outcome | null;
  /** What failed and what is left to do, when the outcome is not clean. */
  problem: string | null;
  decision: Decision | null;
  dismissal: Dismissal | null;
  pod: PodFacts | null;
  workload: WorkloadRef | null;
  /** Incidents on the same workload inside the repeat window, counted once after the kill (0 if visibility did not answer). */
  earlierIncidents: number;
  /** Whether they were counted (or given up on): once per incident. */
  earlierIncidentsCounted: boolean;
  /**
   * When the kill took effect: the DELETE answered plus its grace period, by when the kubelet has stopped the
   * container. The credentials revocation's T; alerts on the same container detected before it are not repeats.
   */
  killedAt: string | null;
  alerts: AlertSummary;
  escalation: Escalation | null;
  /** The proposal awaiting an answer, or the last one answered. */
  proposal: Proposal | null;
  /** Earlier proposals (the newest few), for the record. */
  pastProposals: Proposal[];
  actions: ActionResult[];
  verification: VerifyCheck[];
  suspension: SuspensionRecord | null;
  /** Reads of the held suspension, and the reverts they found (null until the first read). */
  hold: HoldStatus | null;
  /** Notifications sent and the newest failures (null until the first). */
  notifications: NotificationsStatus | null;
  /** In dry-run mode, what the incident would have done, in order (`would-terminate-pod ...`); nothing was. */
  wouldHaveDone: string[] | null;
  /** The evidence bundle captured before the kill: where, what, what is missing. */
  evidence: EvidenceBundle | null;
  /** The pod's network isolation. */
  isolation: IsolationStatus | null;
  /** The revocation of the pod's IAM role sessions (null unless policy revokeCredentials). */
  credentials: CredentialsStatus | null;
  restore: RestoreAttempt | null;
  /** Every resource an executor deployed, and how its removal ended (the newest entries). */
  cleanup: CompensationOutcome[];
  /** Executor stretches opened so far: names of deployed resources derive from it. */
  executorSessions: number;
  timeline: TimelineEntry[];
  /** Timeline entries dropped to keep it bounded (the first entries are always kept). */
  timelineOmitted: number;
}

/**
 * What the workflow returns when the incident closes (the Temporal UI's result): the outcome in a few fields. The
 * whole record stays readable after the close through `status`.
 */
export interface IncidentResult {
  schemaVersion: typeof STATUS_SCHEMA_VERSION;
  incidentId: string;
  outcome: Outcome;
  problem: string | null;
  /** Each change made in the cluster, in order, without its message (that is in `status`). */
  actions: Pick<ActionResult, 'action' | 'target' | 'status'>[];
  runs: number;
  /**
   * The pod the incident acted on, as validation read it: its UID and container IDs (current and restarted), so a
   * sender of late alerts (the forwarder) can tell an alert about it from one about a new pod with the same name.
   * null when validation read no pod, or another one than the alert named.
   */
  pod: { uid: string; containerIds: string[] } | null;
  /** When the kill took effect (the DELETE answered plus its grace period); null without a kill. */
  killedAt: string | null;
  /** Why the incident was dismissed, when it was (e.g. `pod-gone`: validation found no pod by that name). */
  dismissal: DismissalCode | null;
}
