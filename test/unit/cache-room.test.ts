import { describe, expect, it } from 'vitest';
import { createPolicyFloorActivities } from '../../activities/policy-floor.js';
import { configSchema } from '../../config/config.js';
import { policySchema } from '../../domain/policy.js';
import { killPathLocal, workflowTaskSlots } from '../../worker/cache-room.js';

const limits = (maxCachedIncidents: number, maxConcurrentWorkflowTasks = 40) => ({
  maxCachedIncidents,
  maxConcurrentWorkflowTasks,
});

describe('where the kill path runs: local activities only where the cache has room for them', () => {
  it('the defaults (a cache of 100, 40 tasks at once): local', () => {
    const { worker } = configSchema.parse({});
    expect(workflowTaskSlots(worker)).toBe(40);
    expect(killPathLocal(worker)).toBe(true);
  });

  it('at least twice the workflow tasks at once: local; less: through the task queue', () => {
    expect(killPathLocal(limits(80))).toBe(true);
    expect(killPathLocal(limits(79))).toBe(false);
    expect(killPathLocal(limits(4, 2))).toBe(true);
    expect(killPathLocal(limits(3, 2))).toBe(false);
  });

  it('a cache no larger than the tasks at once (worker-limits.test.ts: 2) or none at all: through the task queue', () => {
    expect(workflowTaskSlots(limits(2))).toBe(2);
    expect(killPathLocal(limits(2))).toBe(false);
    expect(workflowTaskSlots(limits(0))).toBe(40);
    expect(killPathLocal(limits(0))).toBe(false);
  });

  it("the worker's answer travels with the policy floor's verdict (a marker the workflow replays)", async () => {
    const local = createPolicyFloorActivities(undefined, { localCalls: true });
    expect(await local.checkIncidentPolicy(policySchema.parse({}))).toMatchObject({
      invalid: [],
      looser: [],
      localCalls: true,
    });
    const queued = createPolicyFloorActivities();
    expect(await queued.checkIncidentPolicy(policySchema.parse({}))).toMatchObject({ localCalls: false });
  });
});
