import { proxyActivities } from '@temporalio/workflow';
import type { Activities } from '../activities/index.js';
import type { ExecutorGroup } from '../activities/eks-lambda/executor-group.js';
import type { Removal } from '../activities/eks-lambda/ownership.js';
import type { TaggedResource } from '../activities/eks-lambda/sweep.js';

export interface SweepInput {
  regions: string[];
  /** An executor group unused this long, with no incident running on its cluster, is removed. Default 60. */
  executorGroupIdleMinutes?: number;
}

export interface SweepReport {
  scanned: number;
  /** left-intact: its tags no longer prove it ours when it came to be deleted. */
  removed: (TaggedResource & { status: 'done' | 'failed' | 'left-intact'; error?: string })[];
  /**
   * Clusters' shared executor groups removed (or not) because no incident needs them any more. in-use: read again
   * before anything was changed, it had been used since it was listed, or network interfaces still held it.
   */
  executorGroups?: (ExecutorGroup & { status: 'done' | 'failed' | 'left-intact' | 'in-use'; error?: string })[];
  /** Listings that failed (a region, a service, a cluster's access entries): what they hold was not swept. */
  errors?: string[];
}

const scan = proxyActivities<Activities>({ startToCloseTimeout: '5 minutes', retry: { maximumAttempts: 3 } });
const remove = proxyActivities<Activities>({ startToCloseTimeout: '2 minutes', retry: { maximumAttempts: 5 } });

/** Dependencies first: the function holds the group's network interfaces; the entry names the role. */
const ORDER: Record<TaggedResource['kind'], number> = {
  function: 0,
  'access-entry': 1,
  'security-group': 2,
  'iam-role': 3,
};

/**
 * Removes resources tagged as this installation's whose incident is closed: a terminated workflow never ran its
 * compensations. Runs on a Temporal Schedule; what is still in use by a running incident is left alone.
 */
export async function orphanSweeper(input: SweepInput): Promise<SweepReport> {
  const { items: found, errors } = await scan.listTaggedResources.executeWithOptions(
    { summary: `list pod-responder resources in ${input.regions.join(', ')}` },
    [input.regions],
  );
  const legacy = found.filter((r) => r.legacy).map((r) => r.incidentId);
  const closed = new Set(
    await scan.closedIncidents.executeWithOptions({ summary: 'which of their incidents are closed' }, [
      found.map((r) => r.incidentId),
      legacy,
    ]),
  );
  const orphans = found.filter((r) => closed.has(r.incidentId)).sort((a, b) => ORDER[a.kind] - ORDER[b.kind]);
  const removed: SweepReport['removed'] = [];
  for (const r of orphans) {
    try {
      const { leftIntact } = await removeOne(r);
      removed.push(leftIntact ? { ...r, status: 'left-intact', error: leftIntact } : { ...r, status: 'done' });
    } catch (err) {
      // A group still held by ENIs fails now and is taken by the next sweep.
      removed.push({ ...r, status: 'failed', error: err instanceof Error ? err.message : String(err) });
    }
  }
  const groups = await sweepExecutorGroups(input, errors);
  return { scanned: found.length, removed, executorGroups: groups, errors };
}

async function sweepExecutorGroups(
  input: SweepInput,
  errors: string[],
): Promise<NonNullable<SweepReport['executorGroups']>> {
  const listed = await scan.listExecutorGroups.executeWithOptions(
    { summary: `list executor security groups in ${input.regions.join(', ')}` },
    [input.regions],
  );
  errors.push(...listed.errors);
  const groups = listed.items;
  const idle = groups.length
    ? await scan.idleExecutorGroups.executeWithOptions({ summary: 'which of them no incident needs' }, [
        groups,
        input.executorGroupIdleMinutes ?? 60,
      ])
    : [];
  const out: NonNullable<SweepReport['executorGroups']> = [];
  for (const g of idle) {
    try {
      const { leftIntact, inUse } = await remove.deleteExecutorSecurityGroup.executeWithOptions(
        { summary: `remove idle executor group ${g.name} of ${g.clusterName}` },
        [g],
      );
      out.push(
        leftIntact
          ? { ...g, status: 'left-intact', error: leftIntact }
          : inUse
            ? { ...g, status: 'in-use', error: inUse }
            : { ...g, status: 'done' },
      );
    } catch (err) {
      out.push({ ...g, status: 'failed', error: err instanceof Error ? err.message : String(err) });
    }
  }
  return out;
}

async function removeOne(r: TaggedResource): Promise<Removal> {
  const summary = `remove orphan ${r.kind} of ${r.incidentId}`;
  switch (r.kind) {
    case 'function':
      return remove.deleteRemediationFunction.executeWithOptions({ summary }, [r.region, r.name, r.incidentId]);
    case 'access-entry':
      return remove.deleteFunctionAccessEntry.executeWithOptions({ summary }, [
        r.region,
        { clusterName: r.clusterName, roleArn: r.principalArn },
        r.incidentId,
      ]);
    case 'security-group':
      return remove.deleteFunctionSecurityGroup.executeWithOptions({ summary }, [
        r.region,
        { name: r.name, vpcId: r.vpcId, clusterSecurityGroupId: r.clusterSecurityGroupId },
        r.incidentId,
      ]);
    case 'iam-role':
      return remove.deleteFunctionRole.executeWithOptions({ summary }, ['us-east-1', r.name, r.incidentId]);
  }
}
