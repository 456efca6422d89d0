import type { CoreRequest, CoreResponse } from '../../remediation/protocol.js';
import type { Owner } from '../../domain/aws-resources.js';
import { awsClientFactory, classified, type AwsClients, type AwsConfig } from './clients.js';
import { ownerFor } from './ownership.js';
import { createAccessEntry, deleteAccessEntry } from './access-entry.js';
import { describeTargetCluster, type TargetCluster } from './cluster.js';
import { createFunction, deleteFunction, invokeFunction } from './function.js';
import {
  deleteExecutorGroup,
  ensureExecutorGroup,
  listExecutorGroups,
  type ExecutorGroup,
  type ExecutorGroupTarget,
} from './executor-group.js';
import { createRole, deleteRole } from './role.js';
import { createSecurityGroup, deleteSecurityGroup } from './security-group.js';
import { listTaggedResources } from './sweep.js';

export interface EksLambdaConfig extends AwsConfig {
  /** The bundled handler (`npm run build` writes dist/lambda/remediation.zip). */
  lambdaZip: string;
  /** Carried by every name and tag: two installations in one account never touch each other's resources. */
  installationId: string;
  /** Set as the permissions boundary of every role created (the deployment policy can demand it). */
  permissionsBoundary?: string;
}

export type { TargetCluster };

/** An activity's parameters as the workflow passes them: the incident's ID, not an owner (the worker adds its installation). */
type WithIncident<F extends (aws: AwsClients, p: never) => unknown> = Omit<Parameters<F>[1], 'owner'> & {
  incidentId: string;
};

/** Deploy, invoke and remove the in-VPC remediation function, one idempotent activity per step. */
export function createEksLambdaActivities(
  config: EksLambdaConfig,
  aws: (region: string) => AwsClients = awsClientFactory(config),
) {
  const { installationId } = config;
  const owner = (incidentId: string): Owner => ({ installationId, incidentId });
  // Undo activities remove for the incident named (the sweeper), else for the incident that scheduled them.
  const activities = {
    describeTargetCluster: async (name: string, region: string): Promise<TargetCluster> => ({
      ...(await describeTargetCluster(aws(region), name, region)),
      installationId,
    }),
    createFunctionRole: (region: string, name: string, incidentId: string, accountId: string) =>
      createRole(aws(region), {
        name,
        owner: owner(incidentId),
        accountId,
        permissionsBoundary: config.permissionsBoundary,
      }),
    deleteFunctionRole: (region: string, name: string, incidentId?: string) =>
      deleteRole(aws(region), name, ownerFor(installationId, incidentId)),
    createFunctionSecurityGroup: (region: string, { incidentId, ...p }: WithIncident<typeof createSecurityGroup>) =>
      createSecurityGroup(aws(region), { ...p, owner: owner(incidentId) }),
    deleteFunctionSecurityGroup: (region: string, p: Parameters<typeof deleteSecurityGroup>[1], incidentId?: string) =>
      deleteSecurityGroup(aws(region), p, ownerFor(installationId, incidentId)),
    createFunctionAccessEntry: (region: string, { incidentId, ...p }: WithIncident<typeof createAccessEntry>) =>
      createAccessEntry(aws(region), { ...p, owner: owner(incidentId) }),
    deleteFunctionAccessEntry: (region: string, p: Parameters<typeof deleteAccessEntry>[1], incidentId?: string) =>
      deleteAccessEntry(aws(region), p, ownerFor(installationId, incidentId)),
    createRemediationFunction: (
      region: string,
      { incidentId, ...p }: Omit<WithIncident<typeof createFunction>, 'zipPath'>,
    ) => createFunction(aws(region), { ...p, owner: owner(incidentId), zipPath: config.lambdaZip }),
    deleteRemediationFunction: (region: string, name: string, incidentId?: string) =>
      deleteFunction(aws(region), name, ownerFor(installationId, incidentId)),
    listTaggedResources: (regions: string[]) => listTaggedResources(aws, regions, installationId),
    ensureExecutorSecurityGroup: (region: string, p: Omit<ExecutorGroupTarget, 'installationId'>) =>
      ensureExecutorGroup(aws(region), { ...p, installationId }),
    listExecutorGroups: (regions: string[]) => listExecutorGroups(aws, regions, installationId),
    deleteExecutorSecurityGroup: (group: ExecutorGroup) =>
      deleteExecutorGroup(aws(group.region), group, installationId),
    invokeRemediationFunction: async <R extends CoreRequest>(
      cluster: TargetCluster,
      name: string,
      request: R,
    ): Promise<CoreResponse<R>> =>
      (await invokeFunction(aws(cluster.region), name, {
        cluster: {
          name: cluster.name,
          region: cluster.region,
          endpoint: cluster.endpoint,
          certificateAuthority: cluster.certificateAuthority,
        },
        request,
      })) as CoreResponse<R>,
  };
  return Object.fromEntries(
    Object.entries(activities).map(([k, fn]) => [k, classified(k, fn as (...a: unknown[]) => Promise<unknown>)]),
  ) as typeof activities;
}
