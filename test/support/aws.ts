/** AWS side of the EKS executor tests: clients on the stack's moto front, and a leak check. */
import { DescribeSecurityGroupsCommand } from '@aws-sdk/client-ec2';
import { DescribeClusterCommand, ListAccessEntriesCommand } from '@aws-sdk/client-eks';
import { ListRolesCommand } from '@aws-sdk/client-iam';
import { ListFunctionsCommand } from '@aws-sdk/client-lambda';
import { inject } from 'vitest';
import { awsClientFactory, type AwsClients } from '../../activities/eks-lambda/clients.js';
import { deleteExecutorGroup, ensureExecutorGroup } from '../../activities/eks-lambda/executor-group.js';
import { findGroup } from '../../activities/eks-lambda/security-group.js';
import { executorGroupName, LAST_USED_TAG, resourceNames } from '../../domain/aws-resources.js';
import { AwsFaults } from '../aws/faults.js';
import { until } from './until.js';

export function awsStack() {
  const aws = inject('aws');
  // The SDK (worker activities and these clients) reads credentials from the environment.
  process.env.AWS_ACCESS_KEY_ID = aws.accessKeyId;
  process.env.AWS_SECRET_ACCESS_KEY = aws.secretAccessKey;
  process.env.AWS_REGION = aws.region;
  const clients: AwsClients = awsClientFactory({ endpoint: aws.endpoint })(aws.region);
  return { ...aws, clients, faults: new AwsFaults(aws.faultsUrl) };
}

/**
 * Everything in AWS whose name derives from the incident, tagged or not: IAM roles, Lambda functions,
 * security groups (and the cluster group's rules naming them), EKS access entries. Must be [] after an incident.
 */
export async function leftovers(
  c: AwsClients,
  installationId: string,
  incidentId: string,
  clusterName: string,
  clusterSecurityGroupId: string,
): Promise<string[]> {
  const prefix = resourceNames(incidentId, 0, installationId).base.replace(/-s0$/, '');
  const left: string[] = [];
  const roles = await c.iam.send(new ListRolesCommand({ MaxItems: 1000 }));
  for (const r of roles.Roles ?? []) if (r.RoleName?.startsWith(prefix)) left.push(`iam role ${r.RoleName}`);
  const fns = await c.lambda.send(new ListFunctionsCommand({ MaxItems: 1000 }));
  for (const f of fns.Functions ?? []) if (f.FunctionName?.startsWith(prefix)) left.push(`function ${f.FunctionName}`);
  const groups = await c.ec2.send(new DescribeSecurityGroupsCommand({}));
  const ours = new Set<string>();
  for (const g of groups.SecurityGroups ?? []) {
    if (g.GroupName?.startsWith(prefix)) {
      left.push(`security group ${g.GroupName}`);
      ours.add(g.GroupId!);
    }
  }
  const clusterGroup = groups.SecurityGroups?.find((g) => g.GroupId === clusterSecurityGroupId);
  for (const p of clusterGroup?.IpPermissions ?? []) {
    for (const pair of p.UserIdGroupPairs ?? []) {
      if (ours.has(pair.GroupId!)) left.push(`ingress rule on ${clusterSecurityGroupId} from ${pair.GroupId}`);
    }
  }
  const entries = await c.eks.send(new ListAccessEntriesCommand({ clusterName }));
  for (const e of entries.accessEntries ?? []) if (e.includes(`/${prefix}`)) left.push(`access entry ${e}`);
  return left;
}

/** A cluster's executor security group for one installation (shared by its incidents), as tests see it. */
export async function executorGroupOf(c: AwsClients, installationId: string, clusterName: string, vpcId: string) {
  // The chaos tests of another file may hold DescribeCluster of this cluster with an injected 500 for a while.
  const { cluster } = await until(
    `describe cluster ${clusterName}`,
    () => c.eks.send(new DescribeClusterCommand({ name: clusterName })),
    120_000,
  );
  const clusterArn = cluster!.arn!;
  const name = executorGroupName(installationId, clusterArn);
  const found = await findGroup(c, name, vpcId);
  return { name, clusterArn, groupId: found?.groupId };
}

/** Makes sure the group exists (setup for a test that fails a call naming it), as an incident would. */
export async function ensureExecutorGroupFor(
  c: AwsClients,
  installationId: string,
  clusterName: string,
  vpcId: string,
  clusterSecurityGroupId: string,
): Promise<string> {
  const { clusterArn } = await executorGroupOf(c, installationId, clusterName, vpcId);
  return (await ensureExecutorGroup(c, { installationId, clusterArn, vpcId, clusterSecurityGroupId })).groupId;
}

/** Removes the group (waiting out the ENIs of functions deleted just before), so the next incident creates it. */
export async function dropExecutorGroup(
  c: AwsClients,
  installationId: string,
  clusterName: string,
  vpcId: string,
  clusterSecurityGroupId: string,
): Promise<void> {
  const { name, clusterArn } = await executorGroupOf(c, installationId, clusterName, vpcId);
  const deadline = Date.now() + 60_000;
  for (;;) {
    // As the sweep does: removed only as last used when read now, and once no network interface holds it.
    const lastUsed = (await findGroup(c, name, vpcId))?.tags[LAST_USED_TAG];
    const removal = await deleteExecutorGroup(
      c,
      { name, vpcId, clusterArn, clusterSecurityGroupId, lastUsed },
      installationId,
    );
    if (!removal.inUse) return;
    if (Date.now() > deadline) throw new Error(removal.inUse);
    await new Promise((r) => setTimeout(r, 500));
  }
}
