/**
 * What stolen worker credentials can do to IAM: the stack's worker role carries deploy/aws/worker-policy.json, and
 * the AWS front evaluates it, conditions included, as IAM would (moto evaluates nothing). A role's name is not
 * ownership: a role named pod-responder-* without the function boundary, or without our tag, is refused every write.
 * The EKS flow itself, under the same role, is covered by eks-lambda.test.ts, eks-ownership.test.ts and
 * credentials.test.ts (their workers sign as this role).
 */
import {
  AttachRolePolicyCommand,
  CreatePolicyCommand,
  CreateRoleCommand,
  DeleteRoleCommand,
  DeleteRolePolicyCommand,
  DetachRolePolicyCommand,
  GetRoleCommand,
  IAMClient,
  ListRolePoliciesCommand,
  PutRolePolicyCommand,
  TagRoleCommand,
} from '@aws-sdk/client-iam';
import { CreateFunctionCommand, LambdaClient } from '@aws-sdk/client-lambda';
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { trustPolicy } from '../../activities/eks-lambda/role.js';
import { LAMBDA_VPC_POLICY_ARN, ownerTags, tagList } from '../../domain/aws-resources.js';
import { REVOCABLE_TAG, revocationDocument } from '../../domain/revocation.js';
import { awsStack } from '../support/aws.js';

const aws = awsStack();
const admin = aws.clients.iam;
const asWorker = { endpoint: aws.endpoint, region: aws.region, credentials: aws.worker, maxAttempts: 1 };
const workerIam = new IAMClient(asWorker);
const workerLambda = new LambdaClient(asWorker);

const ALLOW_EVERYTHING = JSON.stringify({
  Version: '2012-10-17',
  Statement: [{ Effect: 'Allow', Action: '*', Resource: '*' }],
});
const owner = { installationId: 'iam-escalation', incidentId: 'incident-1' };
const unique = (prefix: string) => `${prefix}-${randomBytes(4).toString('hex')}`;

/** The error a call failed with: its name and message (AccessDenied is what IAM answers a refused call). */
async function failure(p: Promise<unknown>): Promise<{ name: string; message: string }> {
  try {
    await p;
  } catch (err) {
    return { name: (err as Error).name, message: (err as Error).message };
  }
  throw new Error('the call succeeded');
}

const inline = async (role: string) =>
  ((await admin.send(new ListRolePoliciesCommand({ RoleName: role }))).PolicyNames ?? []).sort();

describe('the worker role cannot escalate through IAM', () => {
  it('cannot write, attach or remove a policy on a role named pod-responder-* that lacks the boundary: its own role first', async () => {
    const denied = await failure(
      workerIam.send(
        new PutRolePolicyCommand({
          RoleName: 'pod-responder-worker',
          PolicyName: 'mine-now',
          PolicyDocument: ALLOW_EVERYTHING,
        }),
      ),
    );
    expect(denied.name).toBe('AccessDenied');
    expect(denied.message).toBe(
      `User: arn:aws:sts::${aws.accountId}:assumed-role/pod-responder-worker/session is not authorized to perform: iam:PutRolePolicy on resource: ` +
        `arn:aws:iam::${aws.accountId}:role/pod-responder-worker because no identity-based policy allows the iam:PutRolePolicy action`,
    );
    expect(await inline('pod-responder-worker')).toEqual(['pod-responder-worker']);
    expect(
      (
        await failure(
          workerIam.send(
            new DeleteRolePolicyCommand({ RoleName: 'pod-responder-worker', PolicyName: 'pod-responder-worker' }),
          ),
        )
      ).name,
    ).toBe('AccessDenied');
    expect(
      (
        await failure(
          workerIam.send(
            new AttachRolePolicyCommand({ RoleName: 'pod-responder-worker', PolicyArn: LAMBDA_VPC_POLICY_ARN }),
          ),
        )
      ).name,
    ).toBe('AccessDenied');

    // Even tagged as ours: the tag is not the boundary.
    const tagged = unique('pod-responder-lookalike');
    await admin.send(
      new CreateRoleCommand({
        RoleName: tagged,
        AssumeRolePolicyDocument: trustPolicy(aws.accountId),
        Tags: tagList(ownerTags(owner)),
      }),
    );
    expect(
      (
        await failure(
          workerIam.send(
            new PutRolePolicyCommand({ RoleName: tagged, PolicyName: 'mine-now', PolicyDocument: ALLOW_EVERYTHING }),
          ),
        )
      ).name,
    ).toBe('AccessDenied');
    expect(
      (
        await failure(
          workerIam.send(new AttachRolePolicyCommand({ RoleName: tagged, PolicyArn: LAMBDA_VPC_POLICY_ARN })),
        )
      ).name,
    ).toBe('AccessDenied');
    expect(await inline(tagged)).toEqual([]);
  });

  it('creates a role only with the boundary and our tags alone, and then may finish and remove it, but never widen it', async () => {
    const name = unique('pod-responder-test');
    const create = (extra: Partial<ConstructorParameters<typeof CreateRoleCommand>[0]>) =>
      workerIam.send(
        new CreateRoleCommand({
          RoleName: name,
          AssumeRolePolicyDocument: trustPolicy(aws.accountId),
          Tags: tagList(ownerTags(owner)),
          ...extra,
        }),
      );
    expect((await failure(create({}))).name).toBe('AccessDenied'); // no boundary
    expect((await failure(create({ PermissionsBoundary: LAMBDA_VPC_POLICY_ARN }))).name).toBe('AccessDenied'); // another boundary
    // Our tags plus the revocation opt-in: only our ownership keys may be set.
    const optIn = tagList({ ...ownerTags(owner), [REVOCABLE_TAG.key]: REVOCABLE_TAG.value });
    expect((await failure(create({ PermissionsBoundary: aws.permissionsBoundaryArn, Tags: optIn }))).name).toBe(
      'AccessDenied',
    );
    expect((await failure(create({ PermissionsBoundary: aws.permissionsBoundaryArn, Tags: [] }))).name).toBe(
      'AccessDenied',
    ); // untagged
    expect((await failure(admin.send(new GetRoleCommand({ RoleName: name })))).name).toBe('NoSuchEntityException');

    await create({ PermissionsBoundary: aws.permissionsBoundaryArn });
    await workerIam.send(new AttachRolePolicyCommand({ RoleName: name, PolicyArn: LAMBDA_VPC_POLICY_ARN }));
    // The boundary caps it, but the grant is still only the one managed policy: no other may be attached.
    expect(
      (
        await failure(
          workerIam.send(
            new AttachRolePolicyCommand({ RoleName: name, PolicyArn: 'arn:aws:iam::aws:policy/AdministratorAccess' }),
          ),
        )
      ).name,
    ).toBe('AccessDenied');
    // No inline policy on a function role, even one of ours (nothing the function does needs one); an inline policy
    // found there (an older version's) may be removed.
    expect(
      (
        await failure(
          workerIam.send(
            new PutRolePolicyCommand({
              RoleName: name,
              PolicyName: 'evidence-write',
              PolicyDocument: ALLOW_EVERYTHING,
            }),
          ),
        )
      ).name,
    ).toBe('AccessDenied');
    await admin.send(
      new PutRolePolicyCommand({ RoleName: name, PolicyName: 'evidence-write', PolicyDocument: ALLOW_EVERYTHING }),
    );
    await workerIam.send(new DeleteRolePolicyCommand({ RoleName: name, PolicyName: 'evidence-write' }));
    await workerIam.send(new DetachRolePolicyCommand({ RoleName: name, PolicyArn: LAMBDA_VPC_POLICY_ARN }));
    await workerIam.send(new DeleteRoleCommand({ RoleName: name }));
  });

  it('cannot mark a role as opted in to revocation, nor delete or pass a role of the prefix that is not tagged ours', async () => {
    const foreign = unique('pod-responder-theirs');
    const { Role } = await admin.send(
      new CreateRoleCommand({
        RoleName: foreign,
        AssumeRolePolicyDocument: JSON.stringify({
          Version: '2012-10-17',
          Statement: [{ Effect: 'Allow', Principal: { Service: 'lambda.amazonaws.com' }, Action: 'sts:AssumeRole' }],
        }),
      }),
    );
    expect(
      (
        await failure(
          workerIam.send(
            new TagRoleCommand({ RoleName: foreign, Tags: [{ Key: REVOCABLE_TAG.key, Value: REVOCABLE_TAG.value }] }),
          ),
        )
      ).name,
    ).toBe('AccessDenied');
    expect((await failure(workerIam.send(new DeleteRoleCommand({ RoleName: foreign })))).name).toBe('AccessDenied');
    const passed = await failure(
      workerLambda.send(
        new CreateFunctionCommand({
          FunctionName: foreign,
          Runtime: 'nodejs22.x',
          Handler: 'index.handler',
          Role: Role!.Arn!,
          Code: { ZipFile: Buffer.from('not run') },
          VpcConfig: { SubnetIds: aws.subnetIds, SecurityGroupIds: [] },
        }),
      ),
    );
    expect(passed.name).toBe('AccessDeniedException');
    expect(passed.message).toContain(`is not authorized to perform: iam:PassRole on resource: ${Role!.Arn!}`);
    expect((await admin.send(new GetRoleCommand({ RoleName: foreign }))).Role?.RoleName).toBe(foreign);
  });

  it('writes a revocation only on an opted-in role that carries a boundary of its own', async () => {
    const { Policy } = await admin.send(
      new CreatePolicyCommand({
        PolicyName: unique('app-boundary'),
        PolicyDocument: JSON.stringify({
          Version: '2012-10-17',
          Statement: [{ Effect: 'Allow', Action: 's3:GetObject', Resource: 'arn:aws:s3:::shop/*' }],
        }),
      }),
    );
    const app = async (bounded: boolean) => {
      const name = unique('shop-app');
      await admin.send(
        new CreateRoleCommand({
          RoleName: name,
          AssumeRolePolicyDocument: trustPolicy(aws.accountId),
          Tags: [{ Key: REVOCABLE_TAG.key, Value: REVOCABLE_TAG.value }],
          ...(bounded ? { PermissionsBoundary: Policy!.Arn! } : {}),
        }),
      );
      return name;
    };
    const revocation = revocationDocument('2026-11-28T12:00:00Z');
    const unbounded = await app(false);
    expect(
      (
        await failure(
          workerIam.send(
            new PutRolePolicyCommand({
              RoleName: unbounded,
              PolicyName: 'pod-responder-revoke-1',
              PolicyDocument: revocation,
            }),
          ),
        )
      ).name,
    ).toBe('AccessDenied');
    expect(await inline(unbounded)).toEqual([]);
    const bounded = await app(true);
    await workerIam.send(
      new PutRolePolicyCommand({ RoleName: bounded, PolicyName: 'pod-responder-revoke-1', PolicyDocument: revocation }),
    );
    expect(await inline(bounded)).toEqual(['pod-responder-revoke-1']);
    await workerIam.send(new DeleteRolePolicyCommand({ RoleName: bounded, PolicyName: 'pod-responder-revoke-1' }));
  });
});
