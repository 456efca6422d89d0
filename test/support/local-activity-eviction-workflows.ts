/**
 * Test-only workflow for test/integration/local-activity-eviction.test.ts: its first workflow task waits on a local
 * activity, then it parks until `finish`. With a full workflow cache, the SDK's core evicts the least recently used
 * run even while its workflow task waits on local activities (docs/kill-first.md).
 */
import { condition, defineQuery, defineSignal, proxyLocalActivities, setHandler } from '@temporalio/workflow';

export interface SlowActivities {
  /** Resolves after `ms`; the test counts its calls per workflow, so it sees a re-run. */
  slow(ms: number): Promise<void>;
}

const { slow } = proxyLocalActivities<SlowActivities>({ startToCloseTimeout: '1 minute' });

export const stageQuery = defineQuery<string>('stage');
export const finishSignal = defineSignal('finish');

/** The first workflow task runs a quick local activity and one of `ms` (as an incident: its policy check, then the pod
 * read), then the run waits for `finish`. */
export async function slowThenParked(ms: number): Promise<void> {
  let stage = 'first task';
  let finished = false;
  setHandler(stageQuery, () => stage);
  setHandler(finishSignal, () => void (finished = true));
  await slow(0);
  await slow(ms);
  stage = 'parked';
  await condition(() => finished);
}
