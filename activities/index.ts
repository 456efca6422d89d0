import type { Client } from '@temporalio/client';
import { createDirectExecutor, kubeResolver, type DirectExecutorConfig } from './direct-executor.js';
import { createCredentialsActivities } from './credentials.js';
import { createEvidenceActivities, type EvidenceConfig } from './evidence.js';
import { createNotifyActivities, type NotifierTarget } from './notify.js';
import { awsClientFactory } from './eks-lambda/clients.js';
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
    ...createEvidenceActivities(deps.evidence, kubeResolver(deps.direct), awsClientFactory(deps.eks)),
    ...createNotifyActivities(deps.notify.targets, deps.notify),
    // The worker's own AWS identity (eks.endpoint in the local stack), whichever executor acts in the cluster.
    ...createCredentialsActivities(deps.eks),
  };
}

export type Activities = ReturnType<typeof createActivities>;
