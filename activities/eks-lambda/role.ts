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
import { BOUNDARY_REQUIRED } from '../../config/config.js';
import { LAMBDA_VPC_POLICY_ARN, ownerTags, tagList, tagMap, type Owner } from '../../domain/aws-resources.js';
import { awsCode, ignoring, type AwsClients } from './clients.js';
import { leaveIfForeign, refuseIfForeign, type Removal } from './ownership.js';

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

export interface RoleSpec {
  name: string;
  owner: Owner;
  accountId: string;
  /**
   * The managed policy every role we create carries as its permissions boundary. Required: the worker's IAM policy
   * allows writes only on roles that carry it, so a role without it could be neither finished nor removed.
   */
  permissionsBoundary: string | undefined;
}

export async function createRole(aws: AwsClients, p: RoleSpec): Promise<{ roleArn: string }> {
  // A worker configured for the direct executor can still be handed an EKS incident: it refuses here, before anything exists.
  if (!p.permissionsBoundary)
    throw ApplicationFailure.nonRetryable(
      `cannot create IAM role ${p.name}: ${BOUNDARY_REQUIRED}`,
      'PermissionsBoundaryRequired',
    );
  let roleArn: string;
  try {
    const out = await aws.iam.send(
      new CreateRoleCommand({
        RoleName: p.name,
        AssumeRolePolicyDocument: trustPolicy(p.accountId),
        Description: `pod-responder remediation function for ${p.owner.incidentId}`.slice(0, 1000),
        MaxSessionDuration: 3600,
        PermissionsBoundary: p.permissionsBoundary,
        Tags: tagList(ownerTags(p.owner)),
      }),
    );
    roleArn = out.Role!.Arn!;
  } catch (err) {
    if (awsCode(err) !== 'EntityAlreadyExistsException') throw err;
    // Ours from an earlier attempt: adopt it. Someone else's: never touch it.
    const { Role } = await aws.iam.send(new GetRoleCommand({ RoleName: p.name }));
    refuseIfForeign(`IAM role ${p.name}`, tagMap(Role?.Tags), p.owner);
    // Ours but made under another boundary (the setting changed between attempts): IAM would refuse the writes that follow.
    const boundary = Role?.PermissionsBoundary?.PermissionsBoundaryArn;
    if (boundary !== p.permissionsBoundary) {
      throw ApplicationFailure.nonRetryable(
        `IAM role ${p.name} is ours but carries ${boundary ? `the permissions boundary ${boundary}` : 'no permissions boundary'}, not ${p.permissionsBoundary}: ` +
          `not adopted (the worker may change only roles that carry the configured boundary); the incident's undo deletes it if it has no policy, else delete it by hand ` +
          `(aws iam detach-role-policy / delete-role-policy, then aws iam delete-role --role-name ${p.name})`,
        'PermissionsBoundaryMismatch',
      );
    }
    roleArn = Role!.Arn!;
  }
  await aws.iam.send(new AttachRolePolicyCommand({ RoleName: p.name, PolicyArn: LAMBDA_VPC_POLICY_ARN }));
  return { roleArn };
}

/** Detach and delete every policy, then the role. A role that is already gone is success; one not ours is left. */
export async function deleteRole(aws: AwsClients, name: string, owner: Owner): Promise<Removal> {
  const found = await ignoring(['NoSuchEntityException'], () => aws.iam.send(new GetRoleCommand({ RoleName: name })));
  if (!found) return { deleted: false };
  const foreign = leaveIfForeign(`IAM role ${name}`, tagMap(found.Role?.Tags), owner);
  if (foreign) return foreign;
  const attached = await ignoring(['NoSuchEntityException'], () =>
    aws.iam.send(new ListAttachedRolePoliciesCommand({ RoleName: name })),
  );
  for (const p of attached?.AttachedPolicies ?? []) {
    await ignoring(['NoSuchEntityException'], () =>
      aws.iam.send(new DetachRolePolicyCommand({ RoleName: name, PolicyArn: p.PolicyArn })),
    );
  }
  const inline = await ignoring(['NoSuchEntityException'], () =>
    aws.iam.send(new ListRolePoliciesCommand({ RoleName: name })),
  );
  for (const policyName of inline?.PolicyNames ?? []) {
    await ignoring(['NoSuchEntityException'], () =>
      aws.iam.send(new DeleteRolePolicyCommand({ RoleName: name, PolicyName: policyName })),
    );
  }
  const gone = await ignoring(['NoSuchEntityException'], () => aws.iam.send(new DeleteRoleCommand({ RoleName: name })));
  return { deleted: gone !== undefined };
}
