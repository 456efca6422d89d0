import type { WorkflowHandle } from '@temporalio/client';
import { defaultPayloadConverter } from '@temporalio/common';

/**
 * The summary the Temporal UI shows for each activity the incident ran, in history order: activities scheduled on
 * the task queue, and local activities (the direct executor's kill path), whose summary their marker carries.
 */
export async function activitySummaries(h: WorkflowHandle): Promise<string[]> {
  const history = await h.fetchHistory();
  return history.events!.flatMap((e) => {
    const data =
      e.activityTaskScheduledEventAttributes || e.markerRecordedEventAttributes
        ? e.userMetadata?.summary?.data
        : undefined;
    return data ? [JSON.parse(Buffer.from(data).toString()) as string] : [];
  });
}

/** The summaries of the local activities the incident ran (their markers), in history order. */
export async function localActivitySummaries(h: WorkflowHandle): Promise<string[]> {
  const history = await h.fetchHistory();
  return history.events!.flatMap((e) => {
    const data = e.markerRecordedEventAttributes ? e.userMetadata?.summary?.data : undefined;
    return data ? [JSON.parse(Buffer.from(data).toString()) as string] : [];
  });
}

/** Workflow tasks of the incident that timed out (a worker lost, or a task it dropped). */
export async function workflowTaskTimeouts(h: WorkflowHandle): Promise<number> {
  const history = await h.fetchHistory();
  return history.events!.filter((e) => e.workflowTaskTimedOutEventAttributes).length;
}

/** Alert IDs the run received in `alerts` signals (signal-with-start included), each alert of a batch counted. */
export async function signalledAlertIds(h: WorkflowHandle): Promise<string[]> {
  const history = await h.fetchHistory();
  return (history.events ?? [])
    .filter((e) => e.workflowExecutionSignaledEventAttributes?.signalName === 'alerts')
    .flatMap((e) =>
      defaultPayloadConverter
        .fromPayload<{ alertId: string }[]>(e.workflowExecutionSignaledEventAttributes!.input!.payloads![0]!)
        .map((a) => a.alertId),
    );
}
