import type { Client } from '@temporalio/client';
import { createDirectExecutor, type DirectExecutorConfig } from './direct-executor.js';
import { createIncidentHistory } from './incident-history.js';

export interface ActivityDeps {
  direct: DirectExecutorConfig;
  temporal: Client;
}

/** Every activity the worker registers, built from its dependencies (no globals, easy to test). */
export function createActivities(deps: ActivityDeps) {
  return {
    ...createDirectExecutor(deps.direct),
    ...createIncidentHistory(deps.temporal),
  };
}

export type Activities = ReturnType<typeof createActivities>;
