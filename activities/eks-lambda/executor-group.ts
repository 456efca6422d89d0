import {
  CreateSecurityGroupCommand,
  CreateTagsCommand,
  DescribeNetworkInterfacesCommand,
  DescribeSecurityGroupsCommand,
  type Filter,
  type SecurityGroup,
} from '@aws-sdk/client-ec2';
import type { ApplicationFailure } from '@temporalio/activity';
import {
  CLUSTER_SG_TAG,
  EXECUTOR_GROUP_TAG,
  executorGroupName,
  executorGroupTags,
  INSTALLATION_TAG,
  LAST_USED_TAG,
  MANAGED_TAG,
  notOurExecutorGroupBecause,
  tagList,
  tagMap,
} from '../../domain/aws-resources.js';
import { awsCode, type AwsClients } from './clients.js';
import { foreignResource, leftIntact, type Removal } from './ownership.js';
import {
  allowClusterIngress,
  findGroup,
  removeRestrictedGroup,
  restrictToClusterApi,
  revokeClusterIngress,
} from './security-group.js';

export interface ExecutorGroupTarget {
  installationId: string;
  clusterArn: string;
  vpcId: string;
  clusterSecurityGroupId: string;
}

/**
 * The cluster's executor group, made on first use and adopted after: HTTPS to the cluster API only, and one
 * ingress rule on the cluster group for all of this installation's incidents there. Concurrent incidents race to
 * create it; the losers adopt the winner's. Each use stamps it, so the sweeper removes only a group left idle.
 */
export async function ensureExecutorGroup(
  aws: AwsClients,
  p: ExecutorGroupTarget,
): Promise<{ groupId: string; name: string }> {
  const name = executorGroupName(p.installationId, p.clusterArn);
  const tags = { ...executorGroupTags(p.installationId, p.clusterArn), [CLUSTER_SG_TAG]: p.clusterSecurityGroupId };
  let found = await findGroup(aws, name, p.vpcId);
  if (!found) {
    try {
      const out = await aws.ec2.send(
        new CreateSecurityGroupCommand({
          GroupName: name,
          Description: 'pod-responder remediation functions: HTTPS to the cluster API only',
          VpcId: p.vpcId,
          TagSpecifications: [{ ResourceType: 'security-group', Tags: tagList(tags) }],
        }),
      );
      found = { groupId: out.GroupId!, tags };
    } catch (err) {
      if (awsCode(err) !== 'InvalidGroup.Duplicate') throw err;
      found = await findGroup(aws, name, p.vpcId);
      if (!found) throw err;
    }
  }
  const why = notOurExecutorGroupBecause(found.tags, p.installationId, p.clusterArn);
  if (why) throw foreignResource(`security group ${name} (${found.groupId})`, why);
  const { groupId } = found;
  // Every use: whichever attempt created the group may have died before taking its default allow-all egress away.
  await restrictToClusterApi(aws, groupId, p.clusterSecurityGroupId, executorGroupTags(p.installationId, p.clusterArn));
  await aws.ec2.send(
    new CreateTagsCommand({ Resources: [groupId], Tags: [{ Key: LAST_USED_TAG, Value: new Date().toISOString() }] }),
  );
  return { groupId, name };
}

export interface ExecutorGroup {
  region: string;
  name: string;
  groupId: string;
  vpcId: string;
  clusterArn: string;
  clusterName: string;
  clusterSecurityGroupId: string;
  lastUsed?: string;
}

/** A listing and what kept it from being complete (a region's error), reported rather than taken for "none". */
export interface Listing<T> {
  items: T[];
  errors: string[];
}

/** EC2's largest page; tests pass smaller ones to see every page followed. */
export const SECURITY_GROUP_PAGE = 1000;

/** This installation's executor groups in these regions, every page. */
export async function listExecutorGroups(
  aws: (region: string) => AwsClients,
  regions: string[],
  installationId: string,
  pageSize = SECURITY_GROUP_PAGE,
): Promise<Listing<ExecutorGroup>> {
  const items: ExecutorGroup[] = [];
  const errors: string[] = [];
  for (const region of regions) {
    try {
      for (const g of await describeGroups(
        aws(region),
        [
          { Name: `tag:${MANAGED_TAG}`, Values: ['true'] },
          { Name: `tag:${INSTALLATION_TAG}`, Values: [installationId] },
        ],
        pageSize,
      )) {
        const tags = tagMap(g.Tags);
        const clusterArn = tags[EXECUTOR_GROUP_TAG];
        if (!clusterArn || !g.GroupId || !g.GroupName || !g.VpcId) continue;
        items.push({
          region,
          name: g.GroupName,
          groupId: g.GroupId,
          vpcId: g.VpcId,
          clusterArn,
          clusterName: clusterArn.slice(clusterArn.lastIndexOf('/') + 1),
          clusterSecurityGroupId: tags[CLUSTER_SG_TAG] ?? '',
          ...(tags[LAST_USED_TAG] ? { lastUsed: tags[LAST_USED_TAG] } : {}),
        });
      }
    } catch (err) {
      errors.push(`${region}: listing security groups: ${awsCode(err) || 'Error'}: ${(err as Error).message}`);
    }
  }
  return { items, errors };
}

/** Every page of DescribeSecurityGroups with these filters. */
export async function describeGroups(
  aws: AwsClients,
  Filters: Filter[],
  pageSize = SECURITY_GROUP_PAGE,
): Promise<SecurityGroup[]> {
  const out: SecurityGroup[] = [];
  let NextToken: string | undefined;
  do {
    const page = await aws.ec2.send(
      new DescribeSecurityGroupsCommand({ Filters, MaxResults: pageSize, ...(NextToken ? { NextToken } : {}) }),
    );
    out.push(...(page.SecurityGroups ?? []));
    NextToken = page.NextToken;
  } while (NextToken);
  return out;
}

/** What removing an idle executor group did; `inUse`: left as it was, because something may still use it. */
export type GroupRemoval = Removal & { inUse?: string };

/**
 * Removes the group as the incident's own groups are removed, but only once it is sure to go: the list the sweep
 * decided from is old by now. Read again first, changing nothing: its tags (ours? used since it was listed?) and
 * its network interfaces (a function still holds it). Only then the cluster group's rule is revoked (EC2 will not
 * delete a group another group's rule names) and the group deleted; if EC2 still refuses, or the group was used
 * meanwhile, the rule is put back, so a function that came in between keeps the API.
 */
export async function deleteExecutorGroup(
  aws: AwsClients,
  g: Pick<ExecutorGroup, 'name' | 'vpcId' | 'clusterArn' | 'clusterSecurityGroupId'> & {
    lastUsed?: string | undefined;
  },
  installationId: string,
): Promise<GroupRemoval> {
  const found = await findGroup(aws, g.name, g.vpcId);
  if (!found) return { deleted: false };
  const why = notOurExecutorGroupBecause(found.tags, installationId, g.clusterArn);
  if (why) return leftIntact(`security group ${g.name}`, why);
  const usedSince = (tags: Record<string, string | undefined>) =>
    tags[LAST_USED_TAG] !== g.lastUsed
      ? `used again at ${tags[LAST_USED_TAG]} (listed as last used ${g.lastUsed ?? 'never'})`
      : undefined;
  const busy = usedSince(found.tags) ?? (await heldBy(aws, found.groupId));
  if (busy)
    return {
      deleted: false,
      inUse: `security group ${g.name} (${found.groupId}) ${busy}; left with its rule on the cluster group`,
    };

  if (g.clusterSecurityGroupId) await revokeClusterIngress(aws, found.groupId, g.clusterSecurityGroupId);
  // An incident that stamped the group between the reads and the revoke is about to deploy into it.
  const again = await findGroup(aws, g.name, g.vpcId);
  const since = again && usedSince(again.tags);
  if (since) return putBack(aws, g, found.groupId, installationId, since);
  try {
    return await removeRestrictedGroup(aws, found.groupId, '');
  } catch (err) {
    if ((err as ApplicationFailure).type !== 'DependencyViolation') throw err;
    return putBack(
      aws,
      g,
      found.groupId,
      installationId,
      'still in use (EC2 refused to delete it: DependencyViolation)',
    );
  }
}

async function putBack(
  aws: AwsClients,
  g: Pick<ExecutorGroup, 'name' | 'clusterArn' | 'clusterSecurityGroupId'>,
  groupId: string,
  installationId: string,
  why: string,
): Promise<GroupRemoval> {
  if (g.clusterSecurityGroupId)
    await allowClusterIngress(aws, groupId, g.clusterSecurityGroupId, executorGroupTags(installationId, g.clusterArn));
  return {
    deleted: false,
    inUse: `security group ${g.name} (${groupId}) ${why}; its rule on the cluster group put back`,
  };
}

/** The network interfaces that hold the group (a function's, or one Lambda has not released yet), or undefined. */
async function heldBy(aws: AwsClients, groupId: string): Promise<string | undefined> {
  const { NetworkInterfaces = [] } = await aws.ec2.send(
    new DescribeNetworkInterfacesCommand({ Filters: [{ Name: 'group-id', Values: [groupId] }], MaxResults: 5 }),
  );
  if (NetworkInterfaces.length === 0) return undefined;
  const which = NetworkInterfaces.map(
    (n) => `${n.NetworkInterfaceId}${n.InterfaceType ? ` (${n.InterfaceType})` : ''}`,
  ).join(', ');
  return `is held by network interface${NetworkInterfaces.length > 1 ? 's' : ''} ${which}`;
}
