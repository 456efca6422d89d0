import {
  AttachRolePolicyCommand,
  CreateRoleCommand,
  DeleteRoleCommand,
  DeleteRolePolicyCommand,
  DetachRolePolicyCommand,
  GetRoleCommand,
  ListAttachedRolePoliciesCommand,
  ListRolePoliciesCommand,
} from '@aws-sdk/client-iam';
import { ApplicationFailure } from '@temporalio/activity';
import { INCIDENT_TAG, incidentTags, LAMBDA_VPC_POLICY_ARN } from '../../domain/aws-resources.js';
import { awsCode, ignoring, type AwsClients } from './clients.js';

/** Only Lambda, and only on behalf of this account, may assume the role (confused-deputy guard). */
export function trustPolicy(accountId: string): string {
  return JSON.stringify({
    Version: '2012-10-17',
    Statement: [
      {
        Effect: 'Allow',
        Principal: { Service: 'lambda.amazonaws.com' },
        Action: 'sts:AssumeRole',
        Condition: { StringEquals: { 'aws:SourceAccount': accountId } },
      },
    ],
  });
}

export async function createRole(aws: AwsClients, name: string, incidentId: string, accountId: string): Promise<{ roleArn: string }> {
  let roleArn: string;
  try {
    const out = await aws.iam.send(
      new CreateRoleCommand({
        RoleName: name,
        AssumeRolePolicyDocument: trustPolicy(accountId),
        Description: `pod-responder remediation function for ${incidentId}`.slice(0, 1000),
        MaxSessionDuration: 3600,
        Tags: Object.entries(incidentTags(incidentId)).map(([Key, Value]) => ({ Key, Value })),
      }),
    );
    roleArn = out.Role!.Arn!;
  } catch (err) {
    if (awsCode(err) !== 'EntityAlreadyExistsException') throw err;
    // Ours from an earlier attempt: adopt it. Someone else's: never touch it.
    const { Role } = await aws.iam.send(new GetRoleCommand({ RoleName: name }));
    const owner = Role?.Tags?.find((t) => t.Key === INCIDENT_TAG)?.Value;
    if (owner !== incidentId) {
      throw ApplicationFailure.nonRetryable(`IAM role ${name} exists and is not tagged for ${incidentId}`, 'ForeignResource');
    }
    roleArn = Role!.Arn!;
  }
  await aws.iam.send(new AttachRolePolicyCommand({ RoleName: name, PolicyArn: LAMBDA_VPC_POLICY_ARN }));
  return { roleArn };
}

/** Detach and delete every policy, then the role. A role that is already gone is success. */
export async function deleteRole(aws: AwsClients, name: string): Promise<{ deleted: boolean }> {
  const attached = await ignoring(['NoSuchEntityException'], () => aws.iam.send(new ListAttachedRolePoliciesCommand({ RoleName: name })));
  if (!attached) return { deleted: false };
  for (const p of attached.AttachedPolicies ?? []) {
    await ignoring(['NoSuchEntityException'], () => aws.iam.send(new DetachRolePolicyCommand({ RoleName: name, PolicyArn: p.PolicyArn })));
  }
  const inline = await ignoring(['NoSuchEntityException'], () => aws.iam.send(new ListRolePoliciesCommand({ RoleName: name })));
  for (const policyName of inline?.PolicyNames ?? []) {
    await ignoring(['NoSuchEntityException'], () => aws.iam.send(new DeleteRolePolicyCommand({ RoleName: name, PolicyName: policyName })));
  }
  const gone = await ignoring(['NoSuchEntityException'], () => aws.iam.send(new DeleteRoleCommand({ RoleName: name })));
  return { deleted: gone !== undefined };
}
