import { z } from 'zod';
import { SEVERITIES } from './alert.js';
import { ACTIONS } from './decide.js';
import { EKS_HOLD_CHECK_FLOOR_SECONDS, POLICY_DEFAULTS as D } from './policy-defaults.js';

const labelSelector = z.string().regex(/^[A-Za-z0-9./_-]+(=[A-Za-z0-9._-]*)?$/, 'must be "key" or "key=value"');

/** How hard to hit. Every field has a default so an empty object is a complete policy. */
export const policySchema = z.strictObject({
  protectedNamespaces: z
    .array(z.string().min(1))
    .default(D.protectedNamespaces)
    .describe('Pods in these namespaces are never touched (the incident is dismissed as protected).'),
  mode: z
    .enum(['enforce', 'dry-run'])
    .default(D.mode)
    .describe(
      '`dry-run`: every check and the decision run, nothing is changed, and the incident lists what it would have done (outcome `dry-run`).',
    ),
  protectedLabels: z
    .array(labelSelector)
    .default(D.protectedLabels)
    .describe('Pods carrying any of these labels (`key` or `key=value`) are never touched.'),
  maxAlertAgeSeconds: z
    .number()
    .int()
    .positive()
    .default(D.maxAlertAgeSeconds)
    .describe('Alerts older than this are dismissed as stale.'),
  repeatThreshold: z
    .number()
    .int()
    .min(2)
    .default(D.repeatThreshold)
    .describe(
      'This many alerts about one workload within repeatWindowSeconds (across its incidents) suspend it instead of killing one pod.',
    ),
  repeatWindowSeconds: z
    .number()
    .int()
    .positive()
    .default(D.repeatWindowSeconds)
    .describe('The window repeats are counted in.'),
  suspendOnSeverity: z
    .array(z.enum(SEVERITIES))
    .default(D.suspendOnSeverity)
    .describe('Severities that suspend the workload at once.'),
  requireApprovalFor: z
    .array(z.enum(ACTIONS))
    .default(D.requireApprovalFor)
    .describe("Actions that wait for a person's `approve` (or `deny`) of a proposal first."),
  approvalTimeoutSeconds: z
    .number()
    .int()
    .positive()
    .default(D.approvalTimeoutSeconds)
    .describe('How long a proposal waits for an answer.'),
  onApprovalTimeout: z
    .enum(['proceed', 'dismiss'])
    .default(D.onApprovalTimeout)
    .describe('What happens when nobody answers in time.'),
  isolate: z
    .boolean()
    .default(D.isolate)
    .describe(
      'A deny-all NetworkPolicy on the pod before anything destructive, and at once while an action awaits approval; enforced where the network plugin enforces NetworkPolicy.',
    ),
  evidenceSeconds: z
    .number()
    .int()
    .min(0)
    .max(300)
    .default(D.evidenceSeconds)
    .describe(
      'Budget for the evidence bundle before the kill: one attempt, only while the pod is isolated (through the EKS executor at most 22 s: the function runs 30 s); what is not captured in time is listed as missing. 0: no bundle.',
    ),
  checkpointContainers: z
    .boolean()
    .default(D.checkpointContainers)
    .describe(
      'Also checkpoint each container through the kubelet (needs the ContainerCheckpoint feature, a CRI runtime that supports it, and the opt-in RBAC in deploy/kubernetes/eks-remediator-checkpoint-rbac.yaml).',
    ),
  /**
   * Before the kill, deny the pod's IAM role (IRSA annotation, or EKS Pod Identity association) every session
   * issued before now, so credentials a miner took stop working. Off by default: it changes a role we do not own,
   * and only roles tagged pod-responder.io/revocable=true are touched. Undone by `restore`.
   */
  revokeCredentials: z
    .boolean()
    .default(D.revokeCredentials)
    .describe(
      "Right after the kill, deny the pod's IAM role (IRSA, EKS Pod Identity) every session issued before the kill took effect; only roles tagged pod-responder.io/revocable=true. Undone by `restore`.",
    ),
  /**
   * Grace period for pod deletion, at least 1: the pod object stays until its node's kubelet has stopped the
   * containers, so its going confirms the kill (0 would remove the object at once while the process runs on).
   */
  terminateGracePeriodSeconds: z
    .number()
    .int()
    .min(1)
    .default(D.terminateGracePeriodSeconds)
    .describe(
      "Grace period of the pod's deletion, at least 1: the pod object stays until its kubelet stopped the containers, so its going confirms the kill.",
    ),
  watchSeconds: z
    .number()
    .int()
    .min(0)
    .default(D.watchSeconds)
    .describe(
      'After killing a controller-owned pod, how long the incident keeps watching for repeats or an escalation.',
    ),
  holdSuspensionSeconds: z
    .number()
    .int()
    .min(0)
    .default(D.holdSuspensionSeconds)
    .describe('How long a suspended workload is held for a `restore` before the incident closes.'),
  holdCheckSeconds: z
    .number()
    .int()
    .min(0)
    .default(D.holdCheckSeconds)
    .describe(
      'With the direct executor, how often a held suspension is read back (0: never), to re-apply it when something undid it.',
    ),
  eksHoldCheckSeconds: z
    .number()
    .int()
    .min(0)
    .default(D.eksHoldCheckSeconds)
    .describe(
      'With the eks-lambda executor, how often a held suspension is read back (0: never); each read deploys and removes the function stack (about 25 AWS calls), so the config refuses less than 300 (docs/eks.md).',
    ),
  reapplyOnRevert: z
    .boolean()
    .default(D.reapplyOnRevert)
    .describe('Re-apply a suspension someone undid; false: the first revert ends the incident needs-manual-action.'),
  maxReverts: z
    .number()
    .int()
    .min(1)
    .max(100)
    .default(D.maxReverts)
    .describe(
      'After this many reverts the incident stops re-applying and ends needs-manual-action, naming who reverts it.',
    ),
  keepRecentAlerts: z
    .number()
    .int()
    .min(0)
    .max(50)
    .default(D.keepRecentAlerts)
    .describe("Repeat alerts kept in full in the incident's status, besides the first and a count of all."),
  /**
   * History events, and bytes, after which a waiting incident continues as new (as it also does when Temporal
   * suggests it), so a flood of alerts never nears the server's limits per run: 10,000 signals, 51,200 events
   * and 50 MB (warnings from 10,240 events and 10 MB).
   */
  historyEventsPerRun: z
    .number()
    .int()
    .min(100)
    .max(10_000)
    .default(D.historyEventsPerRun)
    .describe("History events after which a waiting incident continues as new, far inside Temporal's limits per run."),
  historyBytesPerRun: z
    .number()
    .int()
    .min(256 * 1024)
    .max(40 * 1024 * 1024)
    .default(D.historyBytesPerRun)
    .describe('History bytes after which a waiting incident continues as new.'),
});

export type Policy = z.output<typeof policySchema>;

/**
 * The cost floor of EKS hold checks, applied to the policy an operator configures (config.ts), from which the
 * forwarder and the CLI start incidents. Not part of policySchema: tests and the replay corpus start incidents
 * with checks seconds apart, to see several in one test.
 */
export function eksHoldCheckFloor(p: { eksHoldCheckSeconds: number }, ctx: z.RefinementCtx): void {
  if (p.eksHoldCheckSeconds === 0 || p.eksHoldCheckSeconds >= EKS_HOLD_CHECK_FLOOR_SECONDS) return;
  ctx.addIssue({
    code: 'custom',
    path: ['eksHoldCheckSeconds'],
    message: `must be 0 (no checks) or at least ${EKS_HOLD_CHECK_FLOOR_SECONDS}: each check deploys the EKS function stack`,
  });
}
export type PolicyInput = z.input<typeof policySchema>;

export { defaultPolicy, EKS_HOLD_CHECK_FLOOR_SECONDS, hasProtectedLabel } from './policy-defaults.js';
