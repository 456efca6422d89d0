import { inject } from 'vitest';
import { fixtureKube, type TestKube } from '../../devstack/fixtures.js';

export { createNamespace, createPod, createWorkload, podExists, type TestKube, type Workload } from '../../devstack/fixtures.js';

/** Clients for the stack the global setup started. */
export function testKube(): TestKube {
  return fixtureKube(inject('kubeconfigPath'));
}
