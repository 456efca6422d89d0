import {
  AuthorizeSecurityGroupEgressCommand,
  AuthorizeSecurityGroupIngressCommand,
  CreateSecurityGroupCommand,
  DeleteSecurityGroupCommand,
  DescribeSecurityGroupsCommand,
  RevokeSecurityGroupEgressCommand,
  RevokeSecurityGroupIngressCommand,
} from '@aws-sdk/client-ec2';
import { ApplicationFailure } from '@temporalio/activity';
import { CLUSTER_SG_TAG, ownerTags, tagList, tagMap, type Owner } from '../../domain/aws-resources.js';
import { awsCode, ignoring, type AwsClients } from './clients.js';
import { leaveIfForeign, refuseIfForeign, type Removal } from './ownership.js';

const https = (peer: string) => ({
  IpProtocol: 'tcp',
  FromPort: 443,
  ToPort: 443,
  UserIdGroupPairs: [{ GroupId: peer }],
});
const ALL_EGRESS = { IpProtocol: '-1', IpRanges: [{ CidrIp: '0.0.0.0/0' }] };

export async function findGroup(
  aws: AwsClients,
  name: string,
  vpcId: string,
): Promise<{ groupId: string; tags: Record<string, string | undefined> } | undefined> {
  const { SecurityGroups } = await aws.ec2.send(
    new DescribeSecurityGroupsCommand({
      Filters: [
        { Name: 'group-name', Values: [name] },
        { Name: 'vpc-id', Values: [vpcId] },
      ],
    }),
  );
  const g = SecurityGroups?.[0];
  return g?.GroupId ? { groupId: g.GroupId, tags: tagMap(g.Tags) } : undefined;
}

/**
 * The function's group may only reach the API server (443 to the cluster group), and the cluster group
 * accepts 443 from it. Not the whole VPC CIDR, as the reference playbook opened.
 */
export async function createSecurityGroup(
  aws: AwsClients,
  p: { name: string; owner: Owner; vpcId: string; clusterSecurityGroupId: string },
): Promise<{ groupId: string }> {
  const found = await findGroup(aws, p.name, p.vpcId);
  if (found) refuseIfForeign(`security group ${p.name} (${found.groupId})`, found.tags, p.owner);
  const groupId =
    found?.groupId ??
    (
      await aws.ec2.send(
        new CreateSecurityGroupCommand({
          GroupName: p.name,
          Description: 'pod-responder remediation function: HTTPS to the cluster API only',
          VpcId: p.vpcId,
          TagSpecifications: [
            {
              ResourceType: 'security-group',
              Tags: tagList({ ...ownerTags(p.owner), [CLUSTER_SG_TAG]: p.clusterSecurityGroupId }),
            },
          ],
        }),
      )
    ).GroupId!;
  await restrictToClusterApi(aws, groupId, p.clusterSecurityGroupId, ownerTags(p.owner));
  return { groupId };
}

/**
 * HTTPS to the cluster API and nothing else: the group's default allow-all egress revoked, 443 to the cluster
 * group, and the cluster group's rule accepting 443 from it. Every attempt, not only the one that created the
 * group: an attempt that died between create and revoke must not leave a function the default egress.
 */
export async function restrictToClusterApi(
  aws: AwsClients,
  groupId: string,
  clusterSecurityGroupId: string,
  ruleTags: Record<string, string>,
): Promise<void> {
  await ignoring(['InvalidPermission.NotFound'], () =>
    aws.ec2.send(new RevokeSecurityGroupEgressCommand({ GroupId: groupId, IpPermissions: [ALL_EGRESS] })),
  );
  await ignoring(['InvalidPermission.Duplicate'], () =>
    aws.ec2.send(
      new AuthorizeSecurityGroupEgressCommand({ GroupId: groupId, IpPermissions: [https(clusterSecurityGroupId)] }),
    ),
  );
  await allowClusterIngress(aws, groupId, clusterSecurityGroupId, ruleTags);
}

/** The cluster group's rule accepting 443 from the group (already there: done). */
export async function allowClusterIngress(
  aws: AwsClients,
  groupId: string,
  clusterSecurityGroupId: string,
  ruleTags: Record<string, string>,
): Promise<void> {
  await ignoring(['InvalidPermission.Duplicate'], () =>
    aws.ec2.send(
      new AuthorizeSecurityGroupIngressCommand({
        GroupId: clusterSecurityGroupId,
        IpPermissions: [https(groupId)],
        TagSpecifications: [{ ResourceType: 'security-group-rule', Tags: tagList(ruleTags) }],
      }),
    ),
  );
}

/** Removes the cluster group's rule accepting 443 from the group (gone already: done). */
export async function revokeClusterIngress(
  aws: AwsClients,
  groupId: string,
  clusterSecurityGroupId: string,
): Promise<void> {
  await ignoring(['InvalidPermission.NotFound', 'InvalidGroup.NotFound'], () =>
    aws.ec2.send(
      new RevokeSecurityGroupIngressCommand({ GroupId: clusterSecurityGroupId, IpPermissions: [https(groupId)] }),
    ),
  );
}

/** The incident's own group (before patch shared-executor-group): removed unless it is not ours. */
export async function deleteSecurityGroup(
  aws: AwsClients,
  p: { name: string; vpcId: string; clusterSecurityGroupId: string },
  owner: Owner,
): Promise<Removal> {
  const found = await findGroup(aws, p.name, p.vpcId);
  if (!found) return { deleted: false };
  const foreign = leaveIfForeign(`security group ${p.name} (${found.groupId})`, found.tags, owner);
  if (foreign) return foreign;
  return removeRestrictedGroup(aws, found.groupId, p.clusterSecurityGroupId);
}

/**
 * Undoes restrictToClusterApi and deletes the group: the cluster group's rule first, or EC2 refuses. Lambda
 * releases a function's network interfaces minutes after it is gone, so DependencyViolation is retried
 * (durably, by Temporal, or by the next sweep) until it clears.
 */
export async function removeRestrictedGroup(
  aws: AwsClients,
  groupId: string,
  clusterSecurityGroupId: string,
): Promise<Removal> {
  if (clusterSecurityGroupId) await revokeClusterIngress(aws, groupId, clusterSecurityGroupId);
  try {
    await aws.ec2.send(new DeleteSecurityGroupCommand({ GroupId: groupId }));
    return { deleted: true };
  } catch (err) {
    const code = awsCode(err);
    if (code === 'InvalidGroup.NotFound') return { deleted: false };
    if (code === 'DependencyViolation') {
      throw ApplicationFailure.retryable(
        `security group ${groupId} is still in use (Lambda network interfaces not yet released)`,
        'DependencyViolation',
      );
    }
    throw err;
  }
}
