import { checkAgainstFloor, policyFloorSchema, type PolicyCheck, type PolicyFloor } from '../domain/policy-floor.js';

/** What the worker says when an incident starts: its policy floor's verdict, and where its kill path may run. */
export interface IncidentAdmission extends PolicyCheck {
  /**
   * The kill path's calls (pod read, isolation, DELETE) may run as local activities on this worker: its workflow cache
   * has room for them (worker/cache-room.ts). Absent in histories recorded before it existed: through the task queue.
   */
  localCalls?: boolean;
}

/**
 * The worker's policy floor, as a local activity the incident calls once when it starts. Its result is recorded in
 * the incident's history (a marker), so a replay gets the same verdict even after the worker's config changed, and the
 * floor is the one of the worker that acts, read from its own config, never from the workflow's input. The same goes
 * for `localCalls`: it depends on the worker's cache and concurrency, so the workflow reads it from the marker.
 */
export function createPolicyFloorActivities(
  floor: PolicyFloor = policyFloorSchema.parse({}),
  opts: { localCalls?: boolean } = {},
) {
  const localCalls = opts.localCalls ?? false;
  return {
    async checkIncidentPolicy(policy: unknown): Promise<IncidentAdmission> {
      return { ...checkAgainstFloor(policy, floor), localCalls };
    },
  };
}
