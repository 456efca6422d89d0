import { checkAgainstFloor, policyFloorSchema, type PolicyCheck, type PolicyFloor } from '../domain/policy-floor.js';

/**
 * The worker's policy floor, as a local activity the incident calls once when it starts. Its result is recorded in
 * the incident's history (a marker), so a replay gets the same verdict even after the worker's config changed, and the
 * floor is the one of the worker that acts, read from its own config, never from the workflow's input.
 */
export function createPolicyFloorActivities(floor: PolicyFloor = policyFloorSchema.parse({})) {
  return {
    async checkIncidentPolicy(policy: unknown): Promise<PolicyCheck> {
      return checkAgainstFloor(policy, floor);
    },
  };
}
