/**
 * How the worker's workflow cache and its workflow-task slots relate, and whether the kill path's calls may run as
 * local activities here (docs/kill-first.md, "Why a small cache turns them off").
 *
 * The SDK's core (@temporalio/* 1.24.0) keeps at most `maxCachedIncidents` incidents loaded. To load another (a new
 * incident, or a message, timer or status query for one it evicted) into a full cache, it evicts the least recently
 * used one, even when that incident's workflow task is waiting on local activities: their work is thrown away and
 * the task is never answered, so Temporal hands it out again only when it times out (30 s,
 * INCIDENT_TASK_TIMEOUT), to run the local activities again (test/integration/local-activity-eviction.test.ts).
 * An incident waiting on one local call is the least recently used only once every other cached incident has had
 * a task since that call began. With no more cached incidents than task slots, one other task is enough: every
 * incident that finishes its task lets a new one in, which evicts the one still waiting (worker-limits.test.ts, a
 * cache of 2, stayed in `validating`). With twice as many, at most `slots - 1` other incidents are mid-task, and
 * the `slots` or more parked ones must all be woken or evicted, each by a task of its own, during one call to the
 * API server: more tasks than this worker runs in that time.
 */
import type { Config } from '../config/config.js';

type WorkerLimits = Pick<Config['worker'], 'maxCachedIncidents' | 'maxConcurrentWorkflowTasks'>;

/** Workflow tasks at once: no more than the cache holds (the SDK lowers it, warning, otherwise). */
export function workflowTaskSlots(w: WorkerLimits): number {
  return w.maxCachedIncidents > 0
    ? Math.min(w.maxConcurrentWorkflowTasks, w.maxCachedIncidents)
    : w.maxConcurrentWorkflowTasks;
}

/** The kill path runs as local activities only where the cache holds at least twice the workflow tasks at once. */
export function killPathLocal(w: WorkerLimits): boolean {
  return w.maxCachedIncidents > 0 && w.maxCachedIncidents >= 2 * workflowTaskSlots(w);
}
