/**
 * What incidents started before v2 (see incident-v1.ts) answer and accept beyond v2's messages. Frozen:
 * these names and shapes are what those running incidents and their histories use.
 */
import { defineQuery, defineSignal } from '@temporalio/workflow';
import type { Dismissal } from '../../domain/checks.js';
import type { Decision } from '../../domain/decide.js';
import type { PodFacts } from '../../domain/workload.js';
import type { ActionResult, SuspensionRecord, VerifyCheck } from '../../remediation/protocol.js';
import type { CompensationOutcome } from '../compensations.js';
import type { Actor, Outcome, Stage, TimelineEntry } from '../messages.js';

/** v1 took approvals as fire-and-forget signals; v2 takes them as updates bound to a proposal. */
export const approveSignalV1 = defineSignal<[Actor]>('approve');
export const denySignalV1 = defineSignal<[Actor]>('deny');
export const statusQueryV1 = defineQuery<IncidentStatusV1>('status');

export interface IncidentStatusV1 {
  incidentId: string;
  stage: Stage;
  outcome: Outcome | null;
  decision: Decision | null;
  dismissal: Dismissal | null;
  problem: string | null;
  pod: PodFacts | null;
  alertIds: string[];
  escalation: { by: string; reason: string } | null;
  actions: ActionResult[];
  verification: VerifyCheck[];
  suspension: SuspensionRecord | null;
  cleanup: CompensationOutcome[];
  timeline: TimelineEntry[];
}
