/**
 * Test-only workflows that fail the way a broken deployment does, so the SDK's failure metrics (which the
 * exporter shows only once something failed) appear on /metrics for the dashboard test.
 */
import { proxyActivities } from '@temporalio/workflow';

const { failsOnce } = proxyActivities<{ failsOnce(): Promise<void> }>({
  startToCloseTimeout: '10 seconds',
  retry: { initialInterval: '100 milliseconds', maximumAttempts: 3 },
});

/** Its activity fails on the first attempt and succeeds on the retry. */
export async function activityFailsOnce(): Promise<void> {
  await failsOnce();
}

/** A bug in workflow code: a plain Error fails the workflow task, which Temporal retries until terminated. */
export async function workflowTaskFails(): Promise<void> {
  throw new Error('a bug in workflow code');
}
