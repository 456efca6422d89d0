/**
 * Holding the line: while a suspension is held, it is read back every `holdCheckSeconds`. Someone may undo
 * it (a GitOps controller's self-heal puts `replicas` back, an autoscaler or a person scales up, `suspend`
 * or the nodeSelector is reverted); then it is re-applied and the revert recorded with who made it, until
 * `maxReverts`, when the incident stops fighting and says who to stop.
 */
import { isCancellation } from '@temporalio/workflow';
import { describeWorkload, type SuspensionRecord } from '../../remediation/protocol.js';
import { failureMessage } from './failures.js';
import type { Incident } from './incident.js';
import { done, type Phase } from './state.js';

/**
 * Seconds between reads of the held suspension (0: none). On EKS each read deploys and removes the function
 * stack, so it has its own, longer interval (policy floor 300 s; docs/eks.md counts the AWS calls).
 */
function checkEverySeconds(i: Incident): number {
  return (i.input.executor.kind === 'eks-lambda' ? i.policy.eksHoldCheckSeconds : i.policy.holdCheckSeconds) ?? 0;
}

/** Whether this hold reads its suspension back. Asked once per hold, at its start. */
export function checksHold(i: Incident): boolean {
  return checkEverySeconds(i) > 0;
}

/** Waits until restore or `until`, reading the suspension back in between. */
export async function holdTheLine(
  i: Incident,
  record: SuspensionRecord,
  until: string,
  summary: string,
): Promise<Phase> {
  const restored = () => i.state.restore?.state === 'restored';
  const every = checkEverySeconds(i) * 1000;
  for (;;) {
    const next = new Date(Math.min(Date.parse(until), Date.now() + every)).toISOString();
    if (await i.waitUntil(restored, next, summary)) return done('workload-restored');
    if (Date.now() >= Date.parse(until)) return done('workload-suspended');
    if (i.state.restore?.state === 'restoring') continue; // its own read-back says how it went
    const ended = await checkOnce(i, record);
    if (ended) return ended;
  }
}

async function checkOnce(i: Incident, record: SuspensionRecord): Promise<Phase | null> {
  const target = describeWorkload(record.workload);
  const hold = (i.state.hold ??= { checks: 0, lastCheckAt: null, reverts: 0, lastRevert: null });
  i.holdCheckRunning = true;
  try {
    // Inside the hold: its cleanup leaves the stage `holding`, so a restore is taken before, during and after it.
    return await i.withExecutor(
      async (exec) => {
        const check = await exec.run({ op: 'check-suspension', record }, `check ${target} is still suspended`);
        hold.checks += 1;
        hold.lastCheckAt = new Date().toISOString();
        if (check.gone.length === record.changes.length) {
          i.note('hold-ended', `${check.gone.join(', ')} gone or replaced: nothing left to hold`);
          return done(
            'workload-suspended',
            `${check.gone.join(', ')} was deleted or replaced while held; nothing is left to restore`,
          );
        }
        if (!check.reverted.length) return null;
        hold.reverts += 1;
        const observed = check.reverted.map((r) => `${r.target}: ${r.observed}`).join('; ');
        const writers = [...new Set(check.reverted.map((r) => r.by).filter((b): b is string => b !== null))];
        const by = writers.length ? writers.join(', ') : null;
        hold.lastRevert = { at: hold.lastCheckAt, observed, by };
        i.note(
          'suspension-reverted',
          `${observed}${by ? ` (last written by ${by})` : ''}; revert ${hold.reverts} of at most ${i.policy.maxReverts}`,
        );
        const who = by ?? 'an unknown writer';
        if (!i.policy.reapplyOnRevert) {
          return done(
            'needs-manual-action',
            `suspension of ${target} reverted by ${who} (${observed}); policy does not re-apply it: suspend it by hand and stop what reverts it`,
          );
        }
        const { result } = await exec.run(
          { op: 'suspend-workload', incidentId: i.id, workload: record.workload },
          `re-suspend ${target} (reverted by ${who})`,
        );
        i.state.actions.push(result);
        i.note(result.action, `${result.target}: ${result.status} (${result.message})`);
        if (result.status !== 'done' && result.status !== 'already-done') {
          return done(
            'needs-manual-action',
            `suspension of ${target} reverted by ${who} (${observed}); re-applying it failed: ${result.message}`,
          );
        }
        if (hold.reverts >= i.policy.maxReverts) {
          return done(
            'needs-manual-action',
            `suspension reverted ${hold.reverts} times by ${who}; re-applied each time and suspended now, but it will be undone again: ` +
              `stop ${who} from reverting ${target} (a GitOps app's self-heal, an autoscaler), then hold or restore it by hand`,
          );
        }
        return null;
      },
      { withinWait: true },
    );
  } catch (err) {
    if (isCancellation(err)) throw err;
    // A read that fails is not a revert: the hold goes on, and says so.
    i.note('hold-check-failed', `${target}: ${failureMessage(err)}`);
    return null;
  } finally {
    i.holdCheckRunning = false;
  }
}
