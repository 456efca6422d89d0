import type { CoreRequest, CoreResponse } from '../../remediation/protocol.js';
import { ApplicationFailure, heartbeat } from '@temporalio/activity';

const HEARTBEAT_EVERY_MS = 2000;
import { awsClientFactory, awsCode, isPermanentAwsError, type AwsConfig } from './clients.js';
import { createAccessEntry, deleteAccessEntry } from './access-entry.js';
import { describeTargetCluster, type TargetCluster } from './cluster.js';
import { createFunction, deleteFunction, invokeFunction } from './function.js';
import { createRole, deleteRole } from './role.js';
import { createSecurityGroup, deleteSecurityGroup } from './security-group.js';
import { listTaggedResources } from './sweep.js';

export interface EksLambdaConfig extends AwsConfig {
  /** The bundled handler (`npm run build` writes dist/lambda/remediation.zip). */
  lambdaZip: string;
}

export type { TargetCluster };

/** Marks AWS errors no retry can fix as non-retryable, naming the call that failed. */
function classified<A extends unknown[], R>(name: string, fn: (...args: A) => Promise<R>): (...args: A) => Promise<R> {
  return async (...args: A) => {
    // Heartbeats let Temporal notice a dead worker within the heartbeat timeout, not the whole start-to-close.
    const beat = setInterval(() => heartbeat(), HEARTBEAT_EVERY_MS);
    try {
      return await fn(...args);
    } catch (err) {
      if (isPermanentAwsError(err)) throw ApplicationFailure.nonRetryable(`${name}: ${awsCode(err)}: ${(err as Error).message}`, awsCode(err));
      throw err;
    } finally {
      clearInterval(beat);
    }
  };
}

/** Deploy, invoke and remove the in-VPC remediation function, one idempotent activity per step. */
export function createEksLambdaActivities(config: EksLambdaConfig) {
  const aws = awsClientFactory(config);
  const activities = {
    describeTargetCluster: (name: string, region: string) => describeTargetCluster(aws(region), name, region),
    createFunctionRole: (region: string, name: string, incidentId: string, accountId: string) => createRole(aws(region), name, incidentId, accountId),
    deleteFunctionRole: (region: string, name: string) => deleteRole(aws(region), name),
    createFunctionSecurityGroup: (region: string, p: Parameters<typeof createSecurityGroup>[1]) => createSecurityGroup(aws(region), p),
    deleteFunctionSecurityGroup: (region: string, p: Parameters<typeof deleteSecurityGroup>[1]) => deleteSecurityGroup(aws(region), p),
    createFunctionAccessEntry: (region: string, p: Parameters<typeof createAccessEntry>[1]) => createAccessEntry(aws(region), p),
    deleteFunctionAccessEntry: (region: string, p: Parameters<typeof deleteAccessEntry>[1]) => deleteAccessEntry(aws(region), p),
    createRemediationFunction: (region: string, p: Omit<Parameters<typeof createFunction>[1], 'zipPath'>) =>
      createFunction(aws(region), { ...p, zipPath: config.lambdaZip }),
    deleteRemediationFunction: (region: string, name: string) => deleteFunction(aws(region), name),
    listTaggedResources: (regions: string[]) => listTaggedResources(aws, regions),
    invokeRemediationFunction: async <R extends CoreRequest>(cluster: TargetCluster, name: string, request: R): Promise<CoreResponse<R>> =>
      (await invokeFunction(aws(cluster.region), name, {
        cluster: { name: cluster.name, region: cluster.region, endpoint: cluster.endpoint, certificateAuthority: cluster.certificateAuthority },
        request,
      })) as CoreResponse<R>,
  };
  return Object.fromEntries(Object.entries(activities).map(([k, fn]) => [k, classified(k, fn as (...a: unknown[]) => Promise<unknown>)])) as typeof activities;
}
