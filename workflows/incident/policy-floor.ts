/**
 * The worker's policy floor, enforced when an incident starts: its input's policy may tighten the floor, never loosen
 * it (domain/policy-floor.ts says what looser means, field by field).
 *
 * Where the floor lives, and why: in the worker's config, read by a local activity the incident calls once, before
 * anything touches the cluster. Not in the workflow's input (whoever starts a workflow writes that), and not read by
 * workflow code from the worker's process (a replay on a worker whose config changed meanwhile would decide otherwise:
 * nondeterminism, or a silently different incident). The activity's verdict is recorded in history as a marker, so a
 * replay reads the same verdict. A local activity rather than a normal one: it runs on the worker that runs the
 * incident, in the same workflow task, so the check costs milliseconds before the kill, not a task-queue round trip.
 */
import { proxyLocalActivities, workflowInfo } from '@temporalio/workflow';
import type { Activities } from '../../activities/index.js';
import type { PolicyCheck } from '../../domain/policy-floor.js';
import type { IncidentAdmission } from '../../activities/policy-floor.js';
import type { Incident } from './incident.js';
import { notifyInBackground } from './notifications.js';
import { done } from './state.js';

const { checkIncidentPolicy } = proxyLocalActivities<Activities>({
  startToCloseTimeout: '10 seconds',
  retry: { maximumAttempts: 3 },
});

/**
 * Ends the incident `failed`, with the reason, when its policy is looser than this worker's floor or invalid, or when
 * its input carries an earlier run's state that no run of this incident handed on. Nothing has been done by then.
 * The same check tells the incident whether the worker runs its kill path as local activities (i.localCalls); a run
 * continued as new does not ask, and runs it through the task queue.
 */
export async function enforcePolicyFloor(i: Incident): Promise<void> {
  const refused = await refusal(i);
  if (!refused) return;
  i.note('policy-refused', refused);
  i.state.phase = done('failed', refused);
  notifyInBackground(i, 'failed', `failed: ${refused}`);
}

async function refusal(i: Incident): Promise<string | null> {
  if (i.input.carried) {
    // Only the incident's own continue-as-new hands its state (and its policy, checked when it started) to a new run;
    // a client that starts a workflow cannot make the server say it continued from another run.
    if (!workflowInfo().continuedFromExecutionRunId) {
      return "the input carries an earlier run's state, but this run was started, not continued as new by the incident: only the incident itself may hand its state on; nothing was done";
    }
    return null;
  }
  const admission: IncidentAdmission = await checkIncidentPolicy(i.policy);
  // Where this run's kill path goes, as the worker said (recorded, so any worker replays it the same way).
  i.localCalls = admission.localCalls ?? false;
  return describe(admission);
}

function describe(check: PolicyCheck): string | null {
  if (check.invalid.length) return `the incident's policy is invalid: ${check.invalid.join('; ')}; nothing was done`;
  if (check.looser.length) {
    return `the incident's policy is looser than this worker's policy floor: ${check.looser.join('; ')}; nothing was done (start it with a policy at least as strict, or change the worker's policyFloor)`;
  }
  return null;
}
