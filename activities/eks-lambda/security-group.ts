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
import { CLUSTER_SG_TAG, incidentTags } from '../../domain/aws-resources.js';
import { awsCode, ignoring, type AwsClients } from './clients.js';

const tagList = (incidentId: string, extra: Record<string, string> = {}) =>
  Object.entries({ ...incidentTags(incidentId), ...extra }).map(([Key, Value]) => ({ Key, Value }));
const https = (peer: string) => ({ IpProtocol: 'tcp', FromPort: 443, ToPort: 443, UserIdGroupPairs: [{ GroupId: peer }] });

async function findGroup(aws: AwsClients, name: string, vpcId: string): Promise<string | undefined> {
  const { SecurityGroups } = await aws.ec2.send(
    new DescribeSecurityGroupsCommand({ Filters: [{ Name: 'group-name', Values: [name] }, { Name: 'vpc-id', Values: [vpcId] }] }),
  );
  return SecurityGroups?.[0]?.GroupId;
}

/**
 * The function's group may only reach the API server (443 to the cluster group), and the cluster group
 * accepts 443 from it. Not the whole VPC CIDR, as the reference playbook opened.
 */
export async function createSecurityGroup(
  aws: AwsClients,
  p: { name: string; incidentId: string; vpcId: string; clusterSecurityGroupId: string },
): Promise<{ groupId: string }> {
  let groupId = await findGroup(aws, p.name, p.vpcId);
  if (!groupId) {
    const out = await aws.ec2.send(
      new CreateSecurityGroupCommand({
        GroupName: p.name,
        Description: 'pod-responder remediation function: HTTPS to the cluster API only',
        VpcId: p.vpcId,
        TagSpecifications: [{ ResourceType: 'security-group', Tags: tagList(p.incidentId, { [CLUSTER_SG_TAG]: p.clusterSecurityGroupId }) }],
      }),
    );
    groupId = out.GroupId!;
    // Replace the default allow-all egress with the one rule the function needs.
    await ignoring(['InvalidPermission.NotFound'], () =>
      aws.ec2.send(new RevokeSecurityGroupEgressCommand({ GroupId: groupId, IpPermissions: [{ IpProtocol: '-1', IpRanges: [{ CidrIp: '0.0.0.0/0' }] }] })),
    );
  }
  await ignoring(['InvalidPermission.Duplicate'], () =>
    aws.ec2.send(new AuthorizeSecurityGroupEgressCommand({ GroupId: groupId, IpPermissions: [https(p.clusterSecurityGroupId)] })),
  );
  await ignoring(['InvalidPermission.Duplicate'], () =>
    aws.ec2.send(
      new AuthorizeSecurityGroupIngressCommand({
        GroupId: p.clusterSecurityGroupId,
        IpPermissions: [https(groupId)],
        TagSpecifications: [{ ResourceType: 'security-group-rule', Tags: tagList(p.incidentId) }],
      }),
    ),
  );
  return { groupId };
}

/**
 * Revokes the cluster group's rule, then deletes the group. Lambda releases its network interfaces
 * minutes after the function is gone, so DependencyViolation is retried (durably, by Temporal) until it clears.
 */
export async function deleteSecurityGroup(
  aws: AwsClients,
  p: { name: string; vpcId: string; clusterSecurityGroupId: string },
): Promise<{ deleted: boolean }> {
  const groupId = await findGroup(aws, p.name, p.vpcId);
  if (!groupId) return { deleted: false };
  if (p.clusterSecurityGroupId) {
    await ignoring(['InvalidPermission.NotFound', 'InvalidGroup.NotFound'], () =>
      aws.ec2.send(new RevokeSecurityGroupIngressCommand({ GroupId: p.clusterSecurityGroupId, IpPermissions: [https(groupId)] })),
    );
  }
  try {
    await aws.ec2.send(new DeleteSecurityGroupCommand({ GroupId: groupId }));
    return { deleted: true };
  } catch (err) {
    const code = awsCode(err);
    if (code === 'InvalidGroup.NotFound') return { deleted: false };
    if (code === 'DependencyViolation') {
      throw ApplicationFailure.retryable(`security group ${groupId} is still in use (Lambda network interfaces not yet released)`, 'DependencyViolation');
    }
    throw err;
  }
}
