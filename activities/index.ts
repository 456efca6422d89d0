import type { Client } from '@temporalio/client';
import { createDirectExecutor, kubeResolver, type DirectExecutorConfig } from './direct-executor.js';
import { createEvidenceActivities, type EvidenceConfig } from './evidence.js';
import { createEksLambdaActivities, type EksLambdaConfig } from './eks-lambda/index.js';
import { createIncidentHistory } from './incident-history.js';

export interface ActivityDeps {
  direct: DirectExecutorConfig;
  eks: EksLambdaConfig;
  evidence: EvidenceConfig;
  temporal: Client;
}

/** Every activity the worker registers, built from its dependencies (no globals, easy to test). */
export function createActivities(deps: ActivityDeps) {
  return {
    ...createDirectExecutor(deps.direct),
    ...createEksLambdaActivities(deps.eks),
    ...createIncidentHistory(deps.temporal),
    ...createEvidenceActivities(deps.evidence, kubeResolver(deps.direct)),
  };
}

export type Activities = ReturnType<typeof createActivities>;
