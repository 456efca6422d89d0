/** Signals, queries and updates of an incident: the analyst's and the forwarder's handles on a running response. */
import { defineQuery, defineSignal, defineUpdate } from '@temporalio/workflow';
import type { PodAlert } from '../domain/alert.js';
import type { Dismissal } from '../domain/checks.js';
import type { Decision } from '../domain/decide.js';
import type { PodFacts } from '../domain/workload.js';
import type { ActionResult, SuspensionRecord, VerifyCheck } from '../remediation/protocol.js';
import type { CompensationOutcome } from './compensations.js';

export interface Actor {
  by: string;
  reason?: string;
}

export const escalateSignal = defineSignal<[{ by: string; reason: string }]>('escalate');
export const approveSignal = defineSignal<[Actor]>('approve');
export const denySignal = defineSignal<[Actor]>('deny');
/** A repeat detection for the same pod; counted once per alert ID toward the repeat threshold. */
export const alertSignal = defineSignal<[PodAlert]>('alert');
export const statusQuery = defineQuery<IncidentStatus>('status');
/** Undoes the suspension from the recorded prior state; answers with what was restored. */
export const restoreUpdate = defineUpdate<ActionResult, [Actor]>('restore');

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
  | 'cancelled';

export interface TimelineEntry {
  at: string;
  event: string;
  detail: string;
}

export interface IncidentStatus {
  incidentId: string;
  stage: Stage;
  outcome: Outcome | null;
  decision: Decision | null;
  dismissal: Dismissal | null;
  /** What failed and what is left to do, when the outcome is not clean. */
  problem: string | null;
  pod: PodFacts | null;
  alertIds: string[];
  escalation: { by: string; reason: string } | null;
  actions: ActionResult[];
  verification: VerifyCheck[];
  suspension: SuspensionRecord | null;
  /** Every resource an executor deployed, and how its removal ended. */
  cleanup: CompensationOutcome[];
  timeline: TimelineEntry[];
}

/** What the workflow returns; the same shape as the final status. */
export type IncidentResult = IncidentStatus;
