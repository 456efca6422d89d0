/**
 * Test-only workflows: a patched() evaluated right after a local activity, in the same workflow task. The kill
 * path's first local activities made a recorded incident fail to replay with `[TMPRL1100] Non-deprecated patch
 * marker ... no corresponding change command` when the workflow still had patch branches; these keep the shape
 * small enough to show whether the SDK alone does it (test/integration/local-activity-patch.test.ts).
 */
import { patched, proxyLocalActivities, sleep } from '@temporalio/workflow';

export interface EchoActivities {
  echo(value: string): Promise<string>;
}

const { echo } = proxyLocalActivities<EchoActivities>({ startToCloseTimeout: '10 seconds' });

/** A local activity, then a patch check, then the patched branch's own local activity. */
export async function localActivityThenPatched(): Promise<string[]> {
  const seen = [await echo('before')];
  if (patched('after-local-activity')) seen.push(await echo('patched'));
  return seen;
}

/** A local activity, then a patch check, then a timer (a new workflow task) and another local activity. */
export async function localActivityThenPatchedThenTimer(): Promise<string[]> {
  const seen = [await echo('before')];
  const p = patched('after-local-activity');
  await sleep('100 milliseconds');
  seen.push(await echo(p ? 'patched' : 'unpatched'));
  return seen;
}

/** The control: the patch check first, then the local activity. */
export async function patchedThenLocalActivity(): Promise<string[]> {
  const p = patched('before-local-activity');
  return [await echo(p ? 'patched' : 'unpatched')];
}
