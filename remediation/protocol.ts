/**
 * The remediation core's request/response contract. Plain JSON: the direct executor calls it in-process,
 * the Lambda handler receives it as its event, and every value lands in workflow history.
 */
import type { PodFacts, WorkloadRef } from '../domain/workload.js';
import type { EvidenceCapture, EvidenceReadAnswer, EvidenceReadRequest, EvidenceRequest } from './evidence.js';
import type { HoldCheck } from './hold.js';

export interface PodTarget {
  namespace: string;
  name: string;
  uid: string;
  /** Where it ran: a pod gone from the API still runs until this node's kubelet stops it. */
  nodeName?: string;
}

/** The pod a request acts on, from what its inspection read. */
export function podTarget(p: PodFacts): PodTarget {
  return { namespace: p.namespace, name: p.name, uid: p.uid, ...(p.nodeName ? { nodeName: p.nodeName } : {}) };
}

/** One change made to suspend a workload, with what it replaced so `restore` can put it back. */
export type SuspensionChange =
  | { type: 'replicas'; target: WorkloadRef; prior: number }
  | { type: 'node-selector'; target: WorkloadRef; key: string }
  | { type: 'suspend-flag'; target: WorkloadRef; prior: boolean };

export interface SuspensionRecord {
  incidentId: string;
  workload: WorkloadRef;
  changes: SuspensionChange[];
}

/** A pod cut off from the network for an incident: what `release-isolation` undoes. */
export interface IsolationRecord {
  incidentId: string;
  namespace: string;
  /** The deny-all NetworkPolicy's name. */
  networkPolicy: string;
  /** The label, unique to the incident, that the policy selects and the pod carries. */
  label: { key: string; value: string };
  pod: PodTarget;
}

export type ActionStatus = 'done' | 'already-done' | 'not-found' | 'unsupported' | 'conflict';

export interface ActionResult {
  action: 'delete-pod' | 'suspend-workload' | 'restore-workload' | 'isolate-pod' | 'release-isolation';
  target: string;
  status: ActionStatus;
  message: string;
}

export interface VerifyCheck {
  target: string;
  ok: boolean;
  observed: string;
  /** Why reading again soon will not help and a person must look: the pod's node is not Ready. */
  blocker?: 'node-not-ready';
}

export type CoreRequest =
  | { op: 'inspect'; namespace: string; name: string }
  | {
      op: 'terminate-pod';
      pod: PodTarget;
      gracePeriodSeconds: number;
      /** For the Event on the pod (absent before Events). */
      incidentId?: string;
      /** The pod's isolation, kept past the pod object (no longer owned by it) until the kill is verified. */
      isolation?: IsolationRecord;
    }
  | { op: 'suspend-workload'; incidentId: string; workload: WorkloadRef }
  | { op: 'restore-workload'; record: SuspensionRecord }
  | { op: 'verify'; podGone?: PodTarget; suspended?: SuspensionRecord }
  | { op: 'isolate-pod'; incidentId: string; pod: PodTarget }
  | { op: 'release-isolation'; record: IsolationRecord }
  | { op: 'check-suspension'; record: SuspensionRecord }
  | EvidenceRequest
  | EvidenceReadRequest;

export interface CoreResponses {
  inspect: { pod: PodFacts | null };
  'terminate-pod': { result: ActionResult };
  'suspend-workload': { result: ActionResult; record: SuspensionRecord | null };
  'restore-workload': { result: ActionResult };
  verify: { ok: boolean; checks: VerifyCheck[] };
  'isolate-pod': { result: ActionResult; record: IsolationRecord | null; notEnforceable?: string };
  'release-isolation': { result: ActionResult };
  'check-suspension': HoldCheck;
  'capture-evidence': EvidenceCapture;
  'read-evidence': EvidenceReadAnswer;
}

export type CoreResponse<R extends CoreRequest> = CoreResponses[R['op']];

export const SUSPENDED_BY_ANNOTATION = 'pod-responder.io/suspended-by';
export const PRIOR_STATE_ANNOTATION = 'pod-responder.io/prior-state';
/** Label key set in a DaemonSet's nodeSelector that no node carries, so its pods are removed. */
export const SUSPEND_NODE_SELECTOR_KEY = 'pod-responder.io/suspended';

export function describeWorkload(w: Pick<WorkloadRef, 'kind' | 'namespace' | 'name'>): string {
  return `${w.kind} ${w.namespace}/${w.name}`;
}

export function describeChange(c: SuspensionChange): string {
  const t = describeWorkload(c.target);
  switch (c.type) {
    case 'replicas':
      return `${t}: replicas ${c.prior} -> 0`;
    case 'node-selector':
      return `${t}: nodeSelector ${c.key}=true added (matches no node)`;
    case 'suspend-flag':
      return `${t}: suspend ${c.prior} -> true`;
  }
}
