import { ScheduleAlreadyRunning, type Client } from '@temporalio/client';
import type { Config } from '../config/config.js';

export const SWEEPER_SCHEDULE_ID = 'pod-responder-orphan-sweeper';

/** Creates the orphan sweeper's Schedule once; a second worker finds it already there. */
export async function ensureSweeperSchedule(client: Client, config: Config): Promise<'created' | 'exists' | 'disabled'> {
  const { sweepRegions, sweepIntervalMinutes } = config.eks;
  if (!sweepRegions.length) return 'disabled';
  try {
    await client.schedule.create({
      scheduleId: SWEEPER_SCHEDULE_ID,
      spec: { intervals: [{ every: `${sweepIntervalMinutes} minutes` }] },
      action: {
        type: 'startWorkflow',
        workflowType: 'orphanSweeper',
        taskQueue: config.temporal.taskQueue,
        args: [{ regions: sweepRegions }],
      },
      // One sweep at a time; a slow one (DependencyViolation) is not stacked on.
      policies: { overlap: 'SKIP' },
    });
    return 'created';
  } catch (err) {
    if (err instanceof ScheduleAlreadyRunning) return 'exists';
    throw err;
  }
}
