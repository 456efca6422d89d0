import { CreateSecurityGroupCommand, CreateTagsCommand, DescribeSecurityGroupsCommand } from '@aws-sdk/client-ec2';
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
import { findGroup, removeRestrictedGroup, restrictToClusterApi } from './security-group.js';

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
export async function ensureExecutorGroup(aws: AwsClients, p: ExecutorGroupTarget): Promise<{ groupId: string; name: string }> {
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
  await aws.ec2.send(new CreateTagsCommand({ Resources: [groupId], Tags: [{ Key: LAST_USED_TAG, Value: new Date().toISOString() }] }));
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

/** This installation's executor groups in these regions. */
export async function listExecutorGroups(aws: (region: string) => AwsClients, regions: string[], installationId: string): Promise<ExecutorGroup[]> {
  const found: ExecutorGroup[] = [];
  for (const region of regions) {
    const { SecurityGroups } = await aws(region).ec2.send(
      new DescribeSecurityGroupsCommand({ Filters: [{ Name: `tag:${MANAGED_TAG}`, Values: ['true'] }, { Name: `tag:${INSTALLATION_TAG}`, Values: [installationId] }] }),
    );
    for (const g of SecurityGroups ?? []) {
      const tags = tagMap(g.Tags);
      const clusterArn = tags[EXECUTOR_GROUP_TAG];
      if (!clusterArn || !g.GroupId || !g.GroupName || !g.VpcId) continue;
      found.push({
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
  }
  return found;
}

/** Removes the group as the incident's own groups are removed, after checking again that it is ours. */
export async function deleteExecutorGroup(aws: AwsClients, g: Pick<ExecutorGroup, 'name' | 'vpcId' | 'clusterArn' | 'clusterSecurityGroupId'>, installationId: string): Promise<Removal> {
  const found = await findGroup(aws, g.name, g.vpcId);
  if (!found) return { deleted: false };
  const why = notOurExecutorGroupBecause(found.tags, installationId, g.clusterArn);
  if (why) return leftIntact(`security group ${g.name}`, why);
  return removeRestrictedGroup(aws, found.groupId, g.clusterSecurityGroupId);
}
