/**
 * Incident metrics, emitted from workflow code through the SDK's workflow `metricMeter`: the worker serves them
 * on its Prometheus endpoint beside the SDK's own (worker/runtime.ts).
 *
 * Why from the workflow, and through this meter: only the workflow knows an incident's outcome, which action
 * a result belongs to and when the kill was confirmed. The meter hands values to the worker through the SDK's
 * metrics sink, which is skipped while history is replayed (a worker that takes over an incident, or rebuilds
 * one evicted from its cache, re-runs its code without counting it again), and it adds no command to the
 * history: recorded histories replay as they ran, so no `patched()` guard is needed. An activity that records
 * would add commands (and count its retries); an interceptor sees activities, not outcomes. Counting is at
 * least once: a workflow task that fails after counting (its worker lost mid-task) runs again and counts again.
 *
 * Labels are bounded: enums only, plus namespace, taskQueue and workflowType, which the SDK adds. No cluster,
 * namespace or pod names: they come from alerts, and a credential bound to no cluster may name any; a worker
 * per cluster has a task queue of its own, hence series of its own.
 */
import { isCancellation, metricMeter } from '@temporalio/workflow';
import type { PodAlert } from '../../domain/alert.js';
import { INCIDENT_METRICS, type ActionResultLabel } from '../../domain/metrics.js';
import type { ActionResult, CoreRequest, CoreResponse } from '../../remediation/protocol.js';
import type { ExecutorSession } from '../executor.js';
import type { Outcome } from '../messages.js';
import type { Incident } from './incident.js';
import { latestProposal } from './state.js';

/** Once per incident, when it closes with its outcome (not per run: a run that continues as new has none). */
export function countIncident(outcome: Outcome, source: PodAlert['source']): void {
  metricMeter
    .createCounter(INCIDENT_METRICS.incidents, undefined, 'Incidents closed, by outcome and alert source')
    .add(1, { outcome, source });
}

/** The core operations that change the cluster, by the action their result names. */
const ACTION_OF_OP: Partial<Record<CoreRequest['op'], ActionResult['action']>> = {
  'terminate-pod': 'delete-pod',
  'suspend-workload': 'suspend-workload',
  'restore-workload': 'restore-workload',
  'isolate-pod': 'isolate-pod',
  'release-isolation': 'release-isolation',
};

function countAction(action: ActionResult['action'], result: ActionResultLabel): void {
  metricMeter
    .createCounter(
      INCIDENT_METRICS.actions,
      undefined,
      'Cluster changes, by action and result (failed: the step raised, retries used up)',
    )
    .add(1, { action, result });
}

/**
 * The session, counting every action it runs by result, whichever stage runs it (kill, suspension, the hold's
 * re-suspension, restore, isolation). The count hangs off the very promise the caller awaits, which is returned
 * as is: the caller resumes on the same tick as before, so commands keep their order within a workflow task.
 */
export function countingActions(exec: ExecutorSession): ExecutorSession {
  return {
    ...exec,
    run<R extends CoreRequest>(request: R, summary: string, withinSeconds?: number): Promise<CoreResponse<R>> {
      const pending = exec.run(request, summary, withinSeconds);
      const action = ACTION_OF_OP[request.op];
      if (action) {
        pending.then(
          (out) => {
            const status = (out as { result?: ActionResult }).result?.status;
            if (status) countAction(action, status);
          },
          (err: unknown) => {
            if (!isCancellation(err)) countAction(action, 'failed');
          },
        );
      }
      return pending;
    },
  };
}

/**
 * Seconds from the incident's first alert's detectedAt to the kill (or the suspension) confirmed by the API:
 * "the figure no responder publishes". `already-done` counts too: the pod was gone (our own earlier attempt,
 * retried) or the suspension ours already, at that moment. Workflow time: the task that took the result.
 */
export function observeActed(i: Incident, result: ActionResult): void {
  if (result.action !== 'delete-pod' && result.action !== 'suspend-workload') return;
  if (result.status !== 'done' && result.status !== 'already-done') return;
  const seconds = (Date.now() - Date.parse(i.alert.detectedAt)) / 1000;
  if (!Number.isFinite(seconds)) return;
  metricMeter
    .createHistogram(
      INCIDENT_METRICS.alertToAction,
      'float',
      's',
      "Seconds from the alert's detection to the pod killed (or its workload suspended), by action and approval",
    )
    // A sender's clock ahead of ours would make it negative, which the meter refuses.
    .record(Math.max(0, seconds), { action: result.action, approval: approvalOf(i) });
}

/** Whether the action ran on a person's approval (or on the policy after no answer), so waits can be told apart. */
function approvalOf(i: Incident): 'none' | 'approved' | 'timed-out' {
  const p = latestProposal(i.state);
  const answer = p?.answer?.answer;
  if (!p || p.action !== i.state.decision?.action) return 'none';
  return answer === 'approved' || answer === 'timed-out' ? answer : 'none';
}
