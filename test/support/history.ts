import type { WorkflowHandle } from '@temporalio/client';

export interface Step {
  /** `activity`: scheduled through Temporal; `local`: a local activity, recorded as a marker when its task completed. */
  kind: 'activity' | 'local';
  summary: string;
}

/** Each activity the incident ran, with the summary the Temporal UI shows for it, in history order. */
export async function steps(h: WorkflowHandle): Promise<Step[]> {
  const history = await h.fetchHistory();
  return history.events!.flatMap((e): Step[] => {
    const kind = e.activityTaskScheduledEventAttributes ? 'activity' : e.markerRecordedEventAttributes?.markerName === 'core_local_activity' ? 'local' : null;
    const data = e.userMetadata?.summary?.data;
    return kind && data ? [{ kind, summary: JSON.parse(Buffer.from(data).toString()) as string }] : [];
  });
}
