import {
  ScheduleAlreadyRunning,
  ScheduleNotFoundError,
  type Client,
  type ScheduleOptionsAction,
  type ScheduleSpec,
} from '@temporalio/client';
import type { Config } from '../config/config.js';

export const SWEEPER_SCHEDULE_ID = 'pod-responder-orphan-sweeper';
/** The note of a pause this code made (an operator's own pause is left as it is). */
const PAUSED_BY_CONFIG = 'eks.sweepRegions is empty in the config of the worker that started last';

/**
 * How often the sweeper runs: a constant, not a setting (issue 27). It removes what a closed incident left and
 * idle executor groups (idle for an hour first), so a quarter of an hour changes nothing anyone waits on, at a
 * handful of AWS listings per region each run.
 */
export const SWEEP_INTERVAL_MINUTES = 15;

/**
 * The orphan sweeper's Schedule, as this worker's config says: created once, updated when the regions, the
 * interval (SWEEP_INTERVAL_MINUTES, of an older build) or the task queue changed (a worker started with a new config), paused when `eks.sweepRegions` is
 * emptied (and resumed when it is set again; an operator's own pause stays). A second worker with the same config finds it as it is.
 */
export async function ensureSweeperSchedule(
  client: Client,
  config: Config,
): Promise<'created' | 'exists' | 'updated' | 'paused' | 'disabled'> {
  const { sweepRegions } = config.eks;
  const handle = client.schedule.getHandle(SWEEPER_SCHEDULE_ID);
  if (!sweepRegions.length) {
    try {
      const current = await handle.describe();
      if (current.state.paused) return 'disabled';
      await handle.pause(PAUSED_BY_CONFIG);
      return 'paused';
    } catch (err) {
      if (err instanceof ScheduleNotFoundError) return 'disabled';
      throw err;
    }
  }
  const spec: ScheduleSpec = { intervals: [{ every: `${SWEEP_INTERVAL_MINUTES} minutes` }] };
  const action: ScheduleOptionsAction = {
    type: 'startWorkflow',
    workflowType: 'orphanSweeper',
    taskQueue: config.temporal.taskQueue,
    args: [{ regions: sweepRegions }],
  };
  try {
    // One sweep at a time; a slow one (DependencyViolation) is not stacked on.
    await client.schedule.create({ scheduleId: SWEEPER_SCHEDULE_ID, spec, action, policies: { overlap: 'SKIP' } });
    return 'created';
  } catch (err) {
    if (!(err instanceof ScheduleAlreadyRunning)) throw err;
  }
  const current = await handle.describe();
  const a = current.action as { workflowType?: string; taskQueue?: string; args?: unknown[] };
  const same =
    JSON.stringify(current.spec.intervals?.map((i) => i.every)) === JSON.stringify([SWEEP_INTERVAL_MINUTES * 60_000]) &&
    a.workflowType === 'orphanSweeper' &&
    a.taskQueue === config.temporal.taskQueue &&
    JSON.stringify(a.args) === JSON.stringify(action.args);
  const ourPause = current.state.paused && current.state.note === PAUSED_BY_CONFIG;
  if (same && !ourPause) return 'exists';
  await handle.update((prev) => ({
    ...prev,
    spec,
    action,
    state: ourPause ? { ...prev.state, paused: false, note: 'resumed: eks.sweepRegions is set again' } : prev.state,
  }));
  return 'updated';
}
