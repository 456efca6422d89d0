import { z } from 'zod';
import { SEVERITIES } from './alert.js';
import { ACTIONS } from './decide.js';
import { EKS_HOLD_CHECK_FLOOR_SECONDS, POLICY_DEFAULTS as D } from './policy-defaults.js';

const labelSelector = z
  .string()
  .regex(/^[A-Za-z0-9./_-]+(=[A-Za-z0-9._-]*)?$/, 'must be "key" or "key=value"');

/** How hard to hit. Every field has a default so an empty object is a complete policy. */
export const policySchema = z.strictObject({
  protectedNamespaces: z.array(z.string().min(1)).default(D.protectedNamespaces),
  /**
   * `dry-run`: every check and decision runs and the incident says exactly what it would have done
   * (`would-...`), and nothing is changed: no executor deployed, no pod touched. Outcome `dry-run`.
   */
  mode: z.enum(['enforce', 'dry-run']).default(D.mode),
  /** Pods carrying any of these labels are never touched. */
  protectedLabels: z.array(labelSelector).default(D.protectedLabels),
  /** Alerts older than this are dismissed as stale. */
  maxAlertAgeSeconds: z.number().int().positive().default(D.maxAlertAgeSeconds),
  /** This many alerts for one workload inside the window suspend it instead of killing one pod. */
  repeatThreshold: z.number().int().min(2).default(D.repeatThreshold),
  repeatWindowSeconds: z.number().int().positive().default(D.repeatWindowSeconds),
  /** Severities that suspend the workload at once. */
  suspendOnSeverity: z.array(z.enum(SEVERITIES)).default(D.suspendOnSeverity),
  /** Which actions wait for a human `approve` signal first. */
  requireApprovalFor: z.array(z.enum(ACTIONS)).default(D.requireApprovalFor),
  approvalTimeoutSeconds: z.number().int().positive().default(D.approvalTimeoutSeconds),
  /** What happens when nobody answers in time. */
  onApprovalTimeout: z.enum(['proceed', 'dismiss']).default(D.onApprovalTimeout),
  /**
   * Cut the pod off the network (a deny-all NetworkPolicy on a label unique to the incident) before anything
   * destructive, and at once when an action waits for approval. Enforced where the network plugin enforces NetworkPolicy.
   */
  isolate: z.boolean().default(D.isolate),
  /**
   * Seconds to capture the evidence bundle (manifests, logs, events) after isolation and before the kill; what
   * is not captured in time is listed as missing, never waited for. 0: no bundle.
   */
  evidenceSeconds: z.number().int().min(0).max(300).default(D.evidenceSeconds),
  /**
   * Also ask each container's kubelet for a checkpoint (the kubelet checkpoint API, through the API server's node
   * proxy), recording where the node wrote it. Needs the ContainerCheckpoint feature and a CRI runtime that
   * supports it, and the opt-in RBAC in deploy/kubernetes/eks-remediator-checkpoint-rbac.yaml (nodes/proxy).
   */
  checkpointContainers: z.boolean().default(D.checkpointContainers),
  /**
   * Before the kill, deny the pod's IAM role (IRSA annotation, or EKS Pod Identity association) every session
   * issued before now, so credentials a miner took stop working. Off by default: it changes a role we do not own,
   * and only roles tagged pod-responder.io/revocable=true are touched. Undone by `restore`.
   */
  revokeCredentials: z.boolean().default(D.revokeCredentials),
  /**
   * Grace period for pod deletion, at least 1: the pod object stays until its node's kubelet has stopped the
   * containers, so its going confirms the kill (0 would remove the object at once while the process runs on).
   */
  terminateGracePeriodSeconds: z.number().int().min(1).default(D.terminateGracePeriodSeconds),
  /** After killing a controller-owned pod, keep listening this long for repeats or escalation. */
  watchSeconds: z.number().int().min(0).default(D.watchSeconds),
  /** How long a suspended workload is held for a `restore` before the incident closes. */
  holdSuspensionSeconds: z.number().int().min(0).default(D.holdSuspensionSeconds),
  /**
   * While a suspension is held, read it back this often (0: never): a GitOps self-heal, an autoscaler or a
   * person may undo it. With the direct executor; the eks-lambda executor uses `eksHoldCheckSeconds`.
   */
  holdCheckSeconds: z.number().int().min(0).default(D.holdCheckSeconds),
  /**
   * The same read with the eks-lambda executor, where each one deploys and removes the function stack (about 25
   * AWS calls, docs/eks.md): at least EKS_HOLD_CHECK_FLOOR_SECONDS, so a 7-day hold costs hundreds of deployments,
   * not tens of thousands. 0: never.
   */
  eksHoldCheckSeconds: z
    .number()
    .int()
    .refine((n) => n === 0 || n >= EKS_HOLD_CHECK_FLOOR_SECONDS, `must be 0 (no checks) or at least ${EKS_HOLD_CHECK_FLOOR_SECONDS}: each check deploys the EKS function stack`)
    .default(D.eksHoldCheckSeconds),
  /** Re-apply a suspension someone undid (else the incident ends needing a person at the first revert). */
  reapplyOnRevert: z.boolean().default(D.reapplyOnRevert),
  /** After this many reverts the incident stops fighting and ends as needs-manual-action, naming who reverts it. */
  maxReverts: z.number().int().min(1).max(100).default(D.maxReverts),
  /** Repeat alerts kept in full in the incident's status (besides the first and a count of all). */
  keepRecentAlerts: z.number().int().min(0).max(50).default(D.keepRecentAlerts),
  /**
   * History events, and bytes, after which a waiting incident continues as new (as it also does when Temporal
   * suggests it), so a flood of alerts never nears the server's limits per run: 10,000 signals, 51,200 events
   * and 50 MB (warnings from 10,240 events and 10 MB).
   */
  historyEventsPerRun: z.number().int().min(100).max(10_000).default(D.historyEventsPerRun),
  historyBytesPerRun: z.number().int().min(256 * 1024).max(40 * 1024 * 1024).default(D.historyBytesPerRun),
});

export type Policy = z.output<typeof policySchema>;
export type PolicyInput = z.input<typeof policySchema>;

export { defaultPolicy, EKS_HOLD_CHECK_FLOOR_SECONDS, hasProtectedLabel } from './policy-defaults.js';
