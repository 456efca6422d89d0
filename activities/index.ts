import type { Client } from '@temporalio/client';
import { createDirectExecutor, kubeResolver, type DirectExecutorConfig } from './direct-executor.js';
import { createEvidenceActivities, type EvidenceConfig } from './evidence.js';
import { createNotifyActivities, type NotifierTarget } from './notify.js';
import { createEksLambdaActivities, type EksLambdaConfig } from './eks-lambda/index.js';
import { createIncidentHistory } from './incident-history.js';

export interface ActivityDeps {
  direct: DirectExecutorConfig;
  eks: EksLambdaConfig;
  evidence: EvidenceConfig;
  notify: { targets: NotifierTarget[]; uiUrl: string; namespace: string };
  temporal: Client;
}

/** Every activity the worker registers, built from its dependencies (no globals, easy to test). */
export function createActivities(deps: ActivityDeps) {
  return {
    ...createDirectExecutor(deps.direct),
    ...createEksLambdaActivities(deps.eks),
    ...createIncidentHistory(deps.temporal),
    ...createEvidenceActivities(deps.evidence, kubeResolver(deps.direct)),
    ...createNotifyActivities(deps.notify.targets, deps.notify),
  };
}

export type Activities = ReturnType<typeof createActivities>;
