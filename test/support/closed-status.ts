/**
 * The status of a closed incident. The workflow returns a summary (IncidentResult); the whole record stays readable
 * through the `status` query after the close, and the two must agree.
 */
import type { WorkflowHandle } from '@temporalio/client';
import { statusQuery, type IncidentResult, type IncidentStatus } from '../../workflows/messages.js';

export async function closedStatus(handle: WorkflowHandle): Promise<IncidentStatus> {
  const summary = (await handle.result()) as IncidentResult;
  const status = await handle.query(statusQuery);
  if (status.outcome !== summary.outcome || status.problem !== summary.problem || status.run !== summary.runs)
    throw new Error(`the result ${JSON.stringify(summary)} disagrees with the status (outcome ${status.outcome})`);
  return status;
}
