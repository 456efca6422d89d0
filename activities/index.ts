import type { Client } from '@temporalio/client';
import { createDirectExecutor, kubeResolver, type DirectExecutorConfig } from './direct-executor.js';
import { createEvidenceActivities, type EvidenceConfig } from './evidence.js';
import { createNotifyActivities, type NotifierTarget } from './notify.js';
import type { AwsClients } from './eks-lambda/clients.js';
import type { EksLambdaConfig } from './eks-lambda/index.js';
import { createIncidentHistory } from './incident-history.js';
import { lazyActivities } from './lazy.js';
import { createPolicyFloorActivities } from './policy-floor.js';
import type { PolicyFloor } from '../domain/policy-floor.js';

export interface ActivityDeps {
  direct: DirectExecutorConfig;
  eks: EksLambdaConfig;
  evidence: EvidenceConfig;
  notify: { targets: NotifierTarget[]; uiUrl: string; namespace: string };
  temporal: Client;
  /** The loosest policy an incident may run with here (config `policyFloor`); default: the policy's defaults. */
  policyFloor?: PolicyFloor;
  /** The kill path may run as local activities on this worker (worker/cache-room.ts); default: no. */
  localCalls?: boolean;
}

/** Every activity the worker registers, built from its dependencies (no globals, easy to test). */
export function createActivities(deps: ActivityDeps) {
  // One set of AWS clients per region for every activity that calls AWS, made (and the SDK loaded) on first use.
  let clients: Promise<(region: string) => AwsClients> | undefined;
  const aws = () => (clients ??= import('./eks-lambda/clients.js').then((m) => m.awsClientFactory(deps.eks)));
  return {
    ...createDirectExecutor(deps.direct),
    ...lazyActivities(EKS_LAMBDA_ACTIVITIES, async () =>
      (await import('./eks-lambda/index.js')).createEksLambdaActivities(deps.eks, await aws()),
    ),
    ...createIncidentHistory(deps.temporal),
    ...createPolicyFloorActivities(deps.policyFloor, { localCalls: deps.localCalls ?? false }),
    ...createEvidenceActivities(deps.evidence, kubeResolver(deps.direct), aws),
    ...createNotifyActivities(deps.notify.targets, deps.notify),
    // The worker's own AWS identity (eks.endpoint in the local stack), whichever executor acts in the cluster.
    ...lazyActivities(CREDENTIALS_ACTIVITIES, async () =>
      (await import('./credentials.js')).createCredentialsActivities(deps.eks, await aws()),
    ),
  };
}

const EKS_LAMBDA_ACTIVITIES = [
  'describeTargetCluster',
  'createFunctionRole',
  'deleteFunctionRole',
  'createFunctionSecurityGroup',
  'deleteFunctionSecurityGroup',
  'createFunctionAccessEntry',
  'deleteFunctionAccessEntry',
  'createRemediationFunction',
  'deleteRemediationFunction',
  'listTaggedResources',
  'ensureExecutorSecurityGroup',
  'listExecutorGroups',
  'deleteExecutorSecurityGroup',
  'invokeRemediationFunction',
] as const;

const CREDENTIALS_ACTIVITIES = ['findPodIdentityRole', 'revokeRoleSessions', 'releaseRoleRevocation'] as const;

export type Activities = ReturnType<typeof createActivities>;
