import { ApplicationFailure, proxyActivities, proxyLocalActivities } from '@temporalio/workflow';
import type { TargetCluster } from '../activities/eks-lambda/cluster.js';
import type { Activities } from '../activities/index.js';
import { resourceNames } from '../domain/aws-resources.js';
import { EXECUTOR_UNAVAILABLE } from '../domain/failure-types.js';
import type { CoreRequest, CoreResponse } from '../remediation/protocol.js';
import type { Compensations } from './compensations.js';

/**
 * Where the remediation core runs. `direct`: in the worker, with a kubeconfig.
 * `eks-lambda`: in a short-lived function deployed into the cluster's VPC, for private API endpoints.
 */
export type ExecutorSpec = { kind: 'direct' } | { kind: 'eks-lambda' };

export interface ExecutorTarget {
  incidentId: string;
  cluster: string;
  region: string | undefined;
  /** The only namespace the executor is granted access to. */
  namespace: string;
}

/** An executor opened for one stretch of an incident: runs core operations; what it deploys, it undoes via the saga. */
export interface ExecutorSession {
  /** `withinSeconds`: a step the kill waits for that is not the kill (isolation) gets this much, retries included. */
  run<R extends CoreRequest>(request: R, summary: string, withinSeconds?: number): Promise<CoreResponse<R>>;
  /** The EKS executor's function of this stretch (the evidence activity invokes it to capture the cluster's part). */
  lambda?: { cluster: TargetCluster; functionName: string };
}

/** Thrown when the executor cannot be used for this cluster: the incident ends as needs-manual-action. */
export { EXECUTOR_UNAVAILABLE };

const DIRECT_RETRY = {
  initialInterval: '1 second',
  backoffCoefficient: 2,
  maximumInterval: '30 seconds',
  maximumAttempts: 8,
} as const;
const { runDirect } = proxyActivities<Activities>({ startToCloseTimeout: '1 minute', retry: DIRECT_RETRY });

/**
 * The kill path's calls (the pod read, its isolation, the DELETE by UID) run as local activities on the direct
 * executor: the worker holding the workflow task runs them inside that task, so an incident that may kill at once
 * reads, isolates and deletes in its first workflow task, with no activity task matching between (docs/kill-first.md).
 * Each is idempotent (a read; a policy adopted only when ours; a DELETE by UID, "not found" being done), so a worker
 * lost mid-call costs a re-run by the next worker once the workflow task times out, nothing more.
 * Only where the worker says its cache has room for them (`localCalls`, worker/cache-room.ts): elsewhere a full cache
 * can evict an incident mid-call, and its first task is lost until it times out.
 */
const LOCAL_OPS: ReadonlySet<CoreRequest['op']> = new Set(['inspect', 'isolate-pod', 'terminate-pod']);
const local = proxyLocalActivities<Activities>({ startToCloseTimeout: '1 minute', retry: DIRECT_RETRY });

// AWS activities heartbeat every 2 s: a worker that dies mid-step is noticed within the heartbeat timeout.
const deploy = proxyActivities<Activities>({
  startToCloseTimeout: '2 minutes',
  heartbeatTimeout: '10 seconds',
  retry: { initialInterval: '1 second', backoffCoefficient: 2, maximumInterval: '30 seconds', maximumAttempts: 10 },
});

/** Undo steps retry until done: nothing may leak. */
const undo = proxyActivities<Activities>({
  startToCloseTimeout: '2 minutes',
  heartbeatTimeout: '10 seconds',
  retry: { initialInterval: '2 seconds', backoffCoefficient: 2, maximumInterval: '1 minute' },
});

const invoke = proxyActivities<Activities>({
  // The function's own timeout is 30 s; the invoke call adds cold start and transport.
  startToCloseTimeout: '90 seconds',
  heartbeatTimeout: '10 seconds',
  retry: { initialInterval: '2 seconds', backoffCoefficient: 2, maximumInterval: '30 seconds', maximumAttempts: 5 },
});

/** A call with a budget: attempts of `attemptSeconds`, retried within `totalSeconds` in all. */
function bounded(totalSeconds: number, attemptSeconds: number, where: 'local' | 'task-queue' = 'task-queue') {
  if (where === 'local') {
    // No heartbeat: a local activity lives inside the workflow task, whose timeout notices a lost worker.
    return proxyLocalActivities<Activities>({
      startToCloseTimeout: `${attemptSeconds} seconds`,
      scheduleToCloseTimeout: `${totalSeconds} seconds`,
      retry: { initialInterval: '1 second', backoffCoefficient: 2, maximumInterval: '5 seconds' },
    });
  }
  return proxyActivities<Activities>({
    startToCloseTimeout: `${attemptSeconds} seconds`,
    scheduleToCloseTimeout: `${totalSeconds} seconds`,
    heartbeatTimeout: '10 seconds',
    retry: { initialInterval: '1 second', backoffCoefficient: 2, maximumInterval: '5 seconds' },
  });
}

export async function openExecutor(
  spec: ExecutorSpec,
  target: ExecutorTarget,
  compensations: Compensations,
  session: number,
  opts: { localCalls: boolean } = { localCalls: false },
): Promise<ExecutorSession> {
  switch (spec.kind) {
    case 'direct':
      // Nothing to deploy, so nothing to compensate: the worker already reaches the cluster.
      return {
        run: <R extends CoreRequest>(request: R, summary: string, withinSeconds?: number) => {
          const where = opts.localCalls && LOCAL_OPS.has(request.op) ? 'local' : 'task-queue';
          const args: [string, CoreRequest] = [target.cluster, request];
          if (withinSeconds)
            return bounded(withinSeconds, Math.min(10, withinSeconds), where).runDirect.executeWithOptions(
              { summary },
              args,
            ) as Promise<CoreResponse<R>>;
          return (where === 'local' ? local : { runDirect }).runDirect.executeWithOptions({ summary }, args) as Promise<
            CoreResponse<R>
          >;
        },
      };
    case 'eks-lambda':
      return deployLambda(target, compensations, session);
  }
}

/** Each step registers its undo before it starts, so a failure or crash at any point leaves nothing behind. */
async function deployLambda(
  t: ExecutorTarget,
  compensations: Compensations,
  session: number,
): Promise<ExecutorSession> {
  const region = t.region;
  if (!region) {
    throw ApplicationFailure.nonRetryable(
      `the alert names no region for cluster ${t.cluster}: the EKS executor needs one`,
      EXECUTOR_UNAVAILABLE,
    );
  }
  const cluster = await deploy.describeTargetCluster.executeWithOptions(
    { summary: `describe EKS cluster ${t.cluster} (${region})` },
    [t.cluster, region],
  );
  // The installation comes from the worker with the cluster; a history recorded before installations keeps its names.
  const { base } = resourceNames(t.incidentId, session, cluster.installationId);
  if (cluster.authenticationMode === 'CONFIG_MAP') {
    // Switching it is irreversible; that is the cluster owner's decision, not an incident's.
    throw ApplicationFailure.nonRetryable(
      `EKS cluster ${t.cluster} does not accept access entries (authentication mode CONFIG_MAP); enable API_AND_CONFIG_MAP or use the direct executor`,
      EXECUTOR_UNAVAILABLE,
    );
  }

  // Each undo checks the resource's tags first: one that is not ours (the create refused it) is left intact.
  compensations.add(`delete IAM role ${base}`, async () => {
    return (await undo.deleteFunctionRole.executeWithOptions({ summary: `delete IAM role ${base}` }, [region, base]))
      .leftIntact;
  });
  const { roleArn } = await deploy.createFunctionRole.executeWithOptions({ summary: `create IAM role ${base}` }, [
    region,
    base,
    t.incidentId,
    cluster.accountId,
  ]);

  const groupId = await useExecutorGroup(region, cluster);

  const entry = { clusterName: t.cluster, roleArn };
  compensations.add(`delete access entry for ${base}`, async () => {
    return (
      await undo.deleteFunctionAccessEntry.executeWithOptions({ summary: `delete EKS access entry for ${base}` }, [
        region,
        entry,
      ])
    ).leftIntact;
  });
  await deploy.createFunctionAccessEntry.executeWithOptions(
    { summary: `map ${base} to the remediator groups of namespace ${t.namespace}` },
    [region, { ...entry, namespace: t.namespace, incidentId: t.incidentId }],
  );

  compensations.add(`delete function ${base}`, async () => {
    return (
      await undo.deleteRemediationFunction.executeWithOptions(
        { summary: `delete function ${base} and its log group` },
        [region, base],
      )
    ).leftIntact;
  });
  await deploy.createRemediationFunction.executeWithOptions(
    { summary: `create function ${base} in ${cluster.vpcId}` },
    [region, { name: base, incidentId: t.incidentId, roleArn, subnetIds: cluster.subnetIds, groupId }],
  );

  return {
    run: <R extends CoreRequest>(request: R, summary: string, withinSeconds?: number) =>
      // Bounded, one invocation fits (the function's own timeout is 30 s; it is warm after the inspection).
      (withinSeconds ? bounded(withinSeconds, withinSeconds) : invoke).invokeRemediationFunction.executeWithOptions(
        { summary: `${summary} (via ${base})` },
        [cluster, base, request],
      ) as Promise<CoreResponse<R>>,
    lambda: { cluster, functionName: base },
  };
}

/**
 * The cluster's shared executor group (one ingress rule on the cluster group for all incidents, within its
 * 60-rule quota). Not undone by the incident: the sweeper removes it once no incident has used it for a while.
 */
async function useExecutorGroup(region: string, cluster: TargetCluster): Promise<string> {
  const { groupId } = await deploy.ensureExecutorSecurityGroup.executeWithOptions(
    { summary: `use the executor security group of ${cluster.name} (443 to ${cluster.clusterSecurityGroupId})` },
    [region, { clusterArn: cluster.arn, vpcId: cluster.vpcId, clusterSecurityGroupId: cluster.clusterSecurityGroupId }],
  );
  return groupId;
}
