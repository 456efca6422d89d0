/**
 * The worker's policy floor: the loosest policy an incident on this worker may run with. Whoever starts an incident
 * puts a policy in its input; that input may tighten the floor, never loosen it (an incident whose policy is looser
 * ends `failed`, naming each field). "Looser" means the incident could do more, or do it with less human say: act on
 * pods the floor protects, act without an approval the floor requires, act on older alerts, suspend sooner.
 *
 * The floor takes the policy's own field names and, by default, the policy's defaults. Fields it leaves out
 * (isolation, evidence, credentials revocation, watch and hold lengths, history limits) shape how an allowed action
 * is carried out and recorded, not whether a pod or workload is acted on (docs/policy-floor.md says why each).
 */
import { z } from 'zod';
import { ACTIONS } from './decide.js';
import { policySchema, type Policy } from './policy.js';
import { formatIssues } from './validation-errors.js';

const P = policySchema.shape;

/**
 * The policy fields the floor covers, with the policy's own schema (so its defaults) and, as each one's description
 * (the configuration reference shows it), what an incident's value may not be.
 */
const flooredFields = z.strictObject({
  mode: P.mode.describe('`dry-run`: an incident must be a dry run too (`enforce` is looser).'),
  protectedNamespaces: P.protectedNamespaces.describe(
    "An incident's list must contain each of these (more is stricter).",
  ),
  protectedLabels: P.protectedLabels.describe(
    "An incident's list must contain each of these; a bare `key` covers `key=value`, not the reverse.",
  ),
  requireApprovalFor: P.requireApprovalFor.describe(
    'The most the worker does without approval: an incident must require approval for each of these.',
  ),
  onApprovalTimeout: P.onApprovalTimeout.describe(
    '`dismiss`: an incident may not proceed on timeout with an action this floor requires approval for (a timeout is not an approval).',
  ),
  approvalTimeoutSeconds: P.approvalTimeoutSeconds.describe(
    'Where this floor proceeds on timeout: an incident that proceeds too may not wait less.',
  ),
  maxAlertAgeSeconds: P.maxAlertAgeSeconds.describe("An incident's may not be higher (it would act on older alerts)."),
  repeatThreshold: P.repeatThreshold.describe("An incident's may not be lower (it would suspend on fewer alerts)."),
  repeatWindowSeconds: P.repeatWindowSeconds.describe(
    "An incident's may not be longer (older alerts would count as repeats).",
  ),
  suspendOnSeverity: P.suspendOnSeverity.describe(
    'An incident may not add a severity (it would suspend at once more often).',
  ),
  terminateGracePeriodSeconds: P.terminateGracePeriodSeconds.describe(
    "An incident's may not be shorter (the pod would get less time to stop).",
  ),
  reapplyOnRevert: P.reapplyOnRevert.describe('`false`: an incident may not re-apply a suspension someone undid.'),
  maxReverts: P.maxReverts.describe('An incident that re-applies may not do so more often than this.'),
});

export const policyFloorSchema = flooredFields
  .prefault({})
  .describe(
    "The worker's policy floor (docs/policy-floor.md): the loosest policy an incident on this worker may run with, whatever its starter sent. An incident whose policy is looser on any field below ends `failed`, naming each; a stricter one runs as given.",
  );

export type PolicyFloor = z.output<typeof policyFloorSchema>;
export type PolicyFloorInput = z.input<typeof policyFloorSchema>;

/** What the worker found when it checked an incident's policy: nothing (accepted), or every reason it is refused. */
export interface PolicyCheck {
  /** Fields that are not a valid policy value at all. */
  invalid: string[];
  /** Fields looser than the floor, each with how. */
  looser: string[];
}

const list = (xs: readonly string[]): string => xs.join(', ');

/** A protected-label selector is covered by the same selector, or by its bare key (which protects any value). */
function labelCovered(floorSelector: string, selectors: readonly string[]): boolean {
  const key = floorSelector.split('=', 1)[0]!;
  return selectors.includes(floorSelector) || selectors.includes(key);
}

/**
 * Each way `policy` is looser than `floor`, naming the field and how; empty when it is at least as strict on every
 * field the floor covers. Pure, so it is table-tested field by field (test/unit/policy-floor.test.ts).
 */
export function looserThanFloor(policy: PolicyFloor | Policy, floor: PolicyFloor): string[] {
  const out: string[] = [];
  if (floor.mode === 'dry-run' && policy.mode !== 'dry-run')
    out.push(`mode: ${policy.mode}, the floor is dry-run (nothing may be changed)`);

  const unprotected = floor.protectedNamespaces.filter((ns) => !policy.protectedNamespaces.includes(ns));
  if (unprotected.length) out.push(`protectedNamespaces: lacks ${list(unprotected)} (the floor protects them)`);
  const unlabelled = floor.protectedLabels.filter((s) => !labelCovered(s, policy.protectedLabels));
  if (unlabelled.length) out.push(`protectedLabels: lacks ${list(unlabelled)} (the floor protects pods carrying them)`);

  // The most it may do without approval: every action the floor gates stays gated, and a timeout is no approval.
  const ungated = floor.requireApprovalFor.filter((a) => !policy.requireApprovalFor.includes(a));
  if (ungated.length) out.push(`requireApprovalFor: lacks ${list(ungated)} (the floor requires approval for it)`);
  const gated = ACTIONS.filter((a) => floor.requireApprovalFor.includes(a) && policy.requireApprovalFor.includes(a));
  if (gated.length && policy.onApprovalTimeout === 'proceed') {
    if (floor.onApprovalTimeout === 'dismiss') {
      out.push(`onApprovalTimeout: proceed, the floor dismisses on timeout (it would ${list(gated)} without approval)`);
    } else if (policy.approvalTimeoutSeconds < floor.approvalTimeoutSeconds) {
      out.push(
        `approvalTimeoutSeconds: ${policy.approvalTimeoutSeconds}, below the floor's ${floor.approvalTimeoutSeconds} (it would proceed without approval sooner)`,
      );
    }
  }

  if (policy.maxAlertAgeSeconds > floor.maxAlertAgeSeconds)
    out.push(
      `maxAlertAgeSeconds: ${policy.maxAlertAgeSeconds}, above the floor's ${floor.maxAlertAgeSeconds} (it would act on older alerts)`,
    );
  if (policy.repeatThreshold < floor.repeatThreshold)
    out.push(
      `repeatThreshold: ${policy.repeatThreshold}, below the floor's ${floor.repeatThreshold} (it would suspend on fewer alerts)`,
    );
  if (policy.repeatWindowSeconds > floor.repeatWindowSeconds)
    out.push(
      `repeatWindowSeconds: ${policy.repeatWindowSeconds}, above the floor's ${floor.repeatWindowSeconds} (it would count older alerts as repeats)`,
    );
  const suspends = policy.suspendOnSeverity.filter((s) => !floor.suspendOnSeverity.includes(s));
  if (suspends.length)
    out.push(
      `suspendOnSeverity: adds ${list(suspends)} (the floor suspends at once only on ${floor.suspendOnSeverity.length ? list(floor.suspendOnSeverity) : 'no severity'})`,
    );
  if (policy.terminateGracePeriodSeconds < floor.terminateGracePeriodSeconds) {
    out.push(
      `terminateGracePeriodSeconds: ${policy.terminateGracePeriodSeconds}, below the floor's ${floor.terminateGracePeriodSeconds} (the pod would get less time to stop)`,
    );
  }
  if (policy.reapplyOnRevert && !floor.reapplyOnRevert)
    out.push('reapplyOnRevert: true, the floor never re-applies a suspension someone undid');
  else if (policy.reapplyOnRevert && policy.maxReverts > floor.maxReverts)
    out.push(
      `maxReverts: ${policy.maxReverts}, above the floor's ${floor.maxReverts} (it would undo a person's revert more often)`,
    );
  return out;
}

/**
 * Checks the policy an incident runs with (defaults applied) against the floor: first that each field the floor covers
 * is a valid policy value (the input comes from whoever could start a workflow, unchecked), then that none is looser.
 * The other fields are the starter's to choose, as before the floor, and are not checked here.
 */
export function checkAgainstFloor(policy: unknown, floor: PolicyFloor): PolicyCheck {
  const given =
    typeof policy === 'object' && policy !== null && !Array.isArray(policy) ? (policy as Record<string, unknown>) : {};
  const covered = Object.fromEntries(Object.entries(given).filter(([k]) => k in flooredFields.shape));
  const parsed = flooredFields.safeParse(covered);
  if (!parsed.success) return { invalid: formatIssues(parsed.error.issues), looser: [] };
  return { invalid: [], looser: looserThanFloor(parsed.data, floor) };
}
