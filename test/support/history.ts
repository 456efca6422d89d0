import type { WorkflowHandle } from '@temporalio/client';

/** The summary the Temporal UI shows for each activity the incident scheduled, in history order. */
export async function activitySummaries(h: WorkflowHandle): Promise<string[]> {
  const history = await h.fetchHistory();
  return history.events!.flatMap((e) => {
    const data = e.activityTaskScheduledEventAttributes ? e.userMetadata?.summary?.data : undefined;
    return data ? [JSON.parse(Buffer.from(data).toString()) as string] : [];
  });
}
