/**
 * Smoke test of the stack's AWS: moto behind the test front, through the real AWS SDK. What the EKS
 * executor will need: IAM roles with managed policies, EKS access entries that grant Kubernetes
 * access, a Lambda function in the cluster's VPC that authenticates to the kube-apiserver with an
 * EKS token, Lambda's timeout and error answers, faults on demand, slow ENI release.
 */
import {
  AuthorizeSecurityGroupIngressCommand,
  CreateSecurityGroupCommand,
  DeleteSecurityGroupCommand,
  EC2Client,
  RevokeSecurityGroupIngressCommand,
} from '@aws-sdk/client-ec2';
import {
  AssociateAccessPolicyCommand,
  CreateAccessEntryCommand,
  DeleteAccessEntryCommand,
  DescribeAccessEntryCommand,
  DescribeClusterCommand,
  DisassociateAccessPolicyCommand,
  EKSClient,
  ListAccessEntriesCommand,
  ListAssociatedAccessPoliciesCommand,
} from '@aws-sdk/client-eks';
import {
  AttachRolePolicyCommand,
  CreateRoleCommand,
  IAMClient,
  ListAttachedRolePoliciesCommand,
} from '@aws-sdk/client-iam';
import {
  CreateFunctionCommand,
  DeleteFunctionCommand,
  GetFunctionCommand,
  GetFunctionConfigurationCommand,
  InvokeCommand,
  LambdaClient,
} from '@aws-sdk/client-lambda';
import { AssumeRoleCommand, STSClient } from '@aws-sdk/client-sts';
import { KubeConfig, RbacAuthorizationV1Api } from '@kubernetes/client-node';
import { zipSync, strToU8 } from 'fflate';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { AwsFaults } from './aws/faults.js';
import { eksToken } from './aws/fixtures/kube-probe.js';
import { bundleLambdaZip } from './aws/lambda-zip.js';
import { createNamespace, testKube } from './support/cluster.js';
import { until } from './support/until.js';

const aws = inject('aws');
const config = {
  endpoint: aws.endpoint,
  region: aws.region,
  credentials: { accessKeyId: aws.accessKeyId, secretAccessKey: aws.secretAccessKey },
};
const iam = new IAMClient(config);
const ec2 = new EC2Client(config);
const eks = new EKSClient(config);
const lambda = new LambdaClient(config);
const sts = new STSClient(config);
const faults = new AwsFaults(aws.faultsUrl);
const EDIT = 'arn:aws:eks::aws:cluster-access-policy/AmazonEKSEditPolicy';
const VPC_ACCESS = 'arn:aws:iam::aws:policy/service-role/AWSLambdaVPCAccessExecutionRole';

const suffix = () => randomBytes(3).toString('hex');

function rbac(): RbacAuthorizationV1Api {
  const kc = new KubeConfig();
  kc.loadFromFile(inject('kubeconfigPath'));
  return kc.makeApiClient(RbacAuthorizationV1Api);
}

async function createLambdaRole(name: string): Promise<string> {
  const { Role } = await iam.send(
    new CreateRoleCommand({
      RoleName: name,
      AssumeRolePolicyDocument: JSON.stringify({
        Version: '2012-10-17',
        Statement: [{ Effect: 'Allow', Principal: { Service: 'lambda.amazonaws.com' }, Action: 'sts:AssumeRole' }],
      }),
    }),
  );
  await iam.send(new AttachRolePolicyCommand({ RoleName: name, PolicyArn: VPC_ACCESS }));
  return Role!.Arn!;
}

async function errorOf(p: Promise<unknown>): Promise<{ name: string; status?: number }> {
  try {
    await p;
  } catch (err) {
    const e = err as { name: string; $metadata?: { httpStatusCode?: number } };
    return { name: e.name, status: e.$metadata?.httpStatusCode };
  }
  throw new Error('expected the call to fail');
}

/** Waits out the function's Pending state. */
const active = (name: string) =>
  until(
    `function ${name} Active`,
    async () => (await lambda.send(new GetFunctionConfigurationCommand({ FunctionName: name }))).State === 'Active',
    20_000,
  );
const decode = (payload: Uint8Array | undefined) => JSON.parse(Buffer.from(payload ?? []).toString('utf8'));

let zip: Uint8Array;
beforeAll(async () => {
  // @aws-sdk stays out of the bundle: the Lambda Node.js runtime provides it, and so does the front's.
  zip = await bundleLambdaZip(fileURLToPath(new URL('./aws/fixtures/kube-probe.ts', import.meta.url)), {
    external: ['@aws-sdk/*'],
  });
});

afterAll(() => {
  for (const c of [iam, ec2, eks, lambda, sts]) c.destroy();
});

describe('AWS stack: moto behind the front', () => {
  it('creates an IAM role with an AWS managed policy attached', async () => {
    const name = `smoke-role-${suffix()}`;
    await createLambdaRole(name);
    const { AttachedPolicies } = await iam.send(new ListAttachedRolePoliciesCommand({ RoleName: name }));
    expect(AttachedPolicies?.map((p) => p.PolicyArn)).toEqual([VPC_ACCESS]);
  });

  it('describes the seeded clusters with the local kube-apiserver, its CA and their authentication modes', async () => {
    const { cluster } = await eks.send(new DescribeClusterCommand({ name: aws.clusters.local }));
    expect(cluster?.endpoint).toBe(inject('kubeApiUrl'));
    expect(Buffer.from(cluster!.certificateAuthority!.data!, 'base64').toString()).toContain(
      '-----BEGIN CERTIFICATE-----',
    );
    expect(cluster?.accessConfig?.authenticationMode).toBe('API_AND_CONFIG_MAP');
    expect(cluster?.resourcesVpcConfig).toMatchObject({
      clusterSecurityGroupId: aws.clusterSecurityGroupId,
      vpcId: aws.vpcId,
      subnetIds: aws.subnetIds,
    });
    expect(cluster?.status).toBe('ACTIVE'); // the rest is moto's

    const other = await eks.send(new DescribeClusterCommand({ name: aws.clusters.configMapOnly }));
    expect(other.cluster?.accessConfig?.authenticationMode).toBe('CONFIG_MAP');
  });

  it('keeps access entries and turns an EKS access policy into a RoleBinding in the scoped namespace', async () => {
    const namespace = await createNamespace(testKube(), 'aws-entry');
    const roleName = `smoke-entry-${suffix()}`;
    const principalArn = await createLambdaRole(roleName);
    const clusterName = aws.clusters.local;

    const { accessEntry } = await eks.send(
      new CreateAccessEntryCommand({ clusterName, principalArn, tags: { 'pod-responder.io/incident': 'x' } }),
    );
    expect(accessEntry).toMatchObject({
      clusterName,
      principalArn,
      username: principalArn,
      type: 'STANDARD',
      tags: { 'pod-responder.io/incident': 'x' },
    });
    expect(accessEntry?.createdAt).toBeInstanceOf(Date);
    expect(await errorOf(eks.send(new CreateAccessEntryCommand({ clusterName, principalArn })))).toEqual({
      name: 'ResourceInUseException',
      status: 409,
    });
    expect(
      (await eks.send(new DescribeAccessEntryCommand({ clusterName, principalArn }))).accessEntry?.accessEntryArn,
    ).toBe(accessEntry?.accessEntryArn);
    expect((await eks.send(new ListAccessEntriesCommand({ clusterName }))).accessEntries).toContain(principalArn);

    await eks.send(
      new AssociateAccessPolicyCommand({
        clusterName,
        principalArn,
        policyArn: EDIT,
        accessScope: { type: 'namespace', namespaces: [namespace] },
      }),
    );
    const { associatedAccessPolicies } = await eks.send(
      new ListAssociatedAccessPoliciesCommand({ clusterName, principalArn }),
    );
    expect(associatedAccessPolicies).toMatchObject([
      { policyArn: EDIT, accessScope: { type: 'namespace', namespaces: [namespace] } },
    ]);
    expect(
      (await eks.send(new ListAccessEntriesCommand({ clusterName, associatedPolicyArn: EDIT }))).accessEntries,
    ).toContain(principalArn);

    const bindings = (await rbac().listNamespacedRoleBinding({ namespace })).items;
    expect(bindings).toHaveLength(1);
    expect(bindings[0]).toMatchObject({
      roleRef: { kind: 'ClusterRole', name: 'edit' },
      subjects: [{ kind: 'User', name: principalArn }],
    });

    // Disassociating removes the binding; so does deleting the entry with its associations.
    await eks.send(new DisassociateAccessPolicyCommand({ clusterName, principalArn, policyArn: EDIT }));
    expect((await rbac().listNamespacedRoleBinding({ namespace })).items).toHaveLength(0);
    await eks.send(
      new AssociateAccessPolicyCommand({
        clusterName,
        principalArn,
        policyArn: EDIT,
        accessScope: { type: 'namespace', namespaces: [namespace] },
      }),
    );
    expect((await rbac().listNamespacedRoleBinding({ namespace })).items).toHaveLength(1);
    await eks.send(new DeleteAccessEntryCommand({ clusterName, principalArn }));
    expect((await rbac().listNamespacedRoleBinding({ namespace })).items).toHaveLength(0);
    expect(await errorOf(eks.send(new DescribeAccessEntryCommand({ clusterName, principalArn })))).toEqual({
      name: 'ResourceNotFoundException',
      status: 404,
    });

    // EKS refuses access entries on a cluster that authenticates with the aws-auth ConfigMap only.
    expect(
      await errorOf(eks.send(new CreateAccessEntryCommand({ clusterName: aws.clusters.configMapOnly, principalArn }))),
    ).toEqual({
      name: 'InvalidRequestException',
      status: 400,
    });
  });

  it('authenticates EKS tokens like aws-iam-authenticator, and says why it refuses one', async () => {
    const roleName = `smoke-token-${suffix()}`;
    const roleArn = await createLambdaRole(roleName);
    // Longer than the stack's 1 s default, so a loaded machine cannot let it pass before the first look.
    await faults.accessEntryDelaySeconds(4, roleName);
    await eks.send(
      new CreateAccessEntryCommand({
        clusterName: aws.clusters.local,
        principalArn: roleArn,
        kubernetesGroups: ['responders'],
      }),
    );
    const created = Date.now();
    // Credentials issued by STS through the front: it keeps their secret to check signatures.
    const { Credentials: c } = await sts.send(new AssumeRoleCommand({ RoleArn: roleArn, RoleSessionName: 'smoke' }));
    const creds = {
      accessKeyId: c!.AccessKeyId!,
      secretAccessKey: c!.SecretAccessKey!,
      sessionToken: c!.SessionToken!,
    };
    const review = async (token: string) => {
      const res = await fetch(`${aws.endpoint}/_authenticate`, {
        method: 'POST',
        body: JSON.stringify({ apiVersion: 'authentication.k8s.io/v1', kind: 'TokenReview', spec: { token } }),
      });
      return (
        (await res.json()) as {
          status: { authenticated: boolean; user?: { username: string; groups: string[] }; error?: string };
        }
      ).status;
    };
    const local = aws.clusters.local;

    // Like EKS, a new entry takes effect only after a while.
    expect(await review(await eksToken(local, aws.region, creds))).toMatchObject({
      authenticated: false,
      error: expect.stringMatching(/not in effect yet/),
    });
    await until(
      'the access entry in effect',
      async () => (await review(await eksToken(local, aws.region, creds))).authenticated,
      20_000,
    );
    expect(Date.now() - created).toBeGreaterThanOrEqual(3900);
    await faults.clear();

    expect(await review(await eksToken(local, aws.region, creds))).toMatchObject({
      authenticated: true,
      user: { username: roleArn, groups: ['responders'] },
    });
    // Signed for whatever host the SDK was pointed at, as long as the signature holds for it.
    expect((await review(await eksToken(local, aws.region, creds, { hostname: '127.0.0.1:4566' }))).authenticated).toBe(
      true,
    );

    const refusals = [
      [await eksToken('another-cluster', aws.region, creds), /signature mismatch/],
      [await eksToken(local, aws.region, { ...creds, secretAccessKey: 'wrong' }), /signature mismatch/],
      [
        await eksToken(local, aws.region, creds, { signingDate: new Date(Date.now() - 20 * 60_000), expiresIn: 3600 }),
        /expired/,
      ],
      [
        await eksToken(local, aws.region, { accessKeyId: aws.accessKeyId, secretAccessKey: aws.secretAccessKey }),
        /unknown/,
      ],
      [
        'k8s-aws-v1.' + Buffer.from('https://sts.us-east-1.amazonaws.com/?Action=AssumeRole').toString('base64url'),
        /not allowed|AssumeRole/,
      ],
    ] as const;
    for (const [token, why] of refusals) {
      const status = await review(token);
      expect(status.authenticated).toBe(false);
      expect(status.error).toMatch(why);
    }
    await eks.send(new DeleteAccessEntryCommand({ clusterName: local, principalArn: roleArn }));
    expect(await review(await eksToken(local, aws.region, creds))).toMatchObject({
      authenticated: false,
      error: expect.stringMatching(/no access entry/),
    });
    expect(await review('not-an-eks-token')).toEqual({ authenticated: false }); // another authenticator's
  });

  it('fails the nth call of an action on demand, and counts every call', async () => {
    const roleName = `smoke-fault-${suffix()}`;
    const strict = new IAMClient({ ...config, maxAttempts: 1 });
    const since = (await faults.calls()).length;
    const id = await faults.failCall('iam', 'CreateRole', { status: 500, code: 'InternalFailure', match: roleName });
    try {
      const create = () =>
        strict.send(
          new CreateRoleCommand({
            RoleName: roleName,
            AssumeRolePolicyDocument: JSON.stringify({ Version: '2012-10-17', Statement: [] }),
          }),
        );
      expect(await errorOf(create())).toEqual({ name: 'InternalFailure', status: 500 });
      const { Role } = await create();
      expect(Role?.RoleName).toBe(roleName);
    } finally {
      strict.destroy();
      await faults.remove(id); // not clear(): other test files may have faults of their own
    }
    const createRoles = (await faults.calls(since)).filter((c) => c.service === 'iam' && c.action === 'CreateRole');
    expect(createRoles.map((c) => c.status)).toEqual(expect.arrayContaining([500, 200]));
  });

  it('can lose the answer of a call that took effect, and throttle in any protocol', async () => {
    // 'after': the role is created but the caller sees a 500, so its retry meets EntityAlreadyExists.
    const roleName = `smoke-lost-${suffix()}`;
    const ids = [await faults.failCall('iam', 'CreateRole', { when: 'after', match: roleName })];
    try {
      const strict = new IAMClient({ ...config, maxAttempts: 1 });
      const create = () => strict.send(new CreateRoleCommand({ RoleName: roleName, AssumeRolePolicyDocument: '{}' }));
      expect(await errorOf(create())).toEqual({ name: 'InternalFailure', status: 500 });
      expect(await errorOf(create())).toEqual({ name: 'EntityAlreadyExistsException', status: 409 });
      strict.destroy();

      // Throttling twice on EC2 (its own XML error format): the SDK's standard retries get through.
      const groupName = `smoke-throttle-${suffix()}`;
      ids.push(
        await faults.failCall('ec2', 'CreateSecurityGroup', {
          status: 400,
          code: 'RequestLimitExceeded',
          times: 2,
          match: groupName,
        }),
      );
      const { GroupId } = await ec2.send(
        new CreateSecurityGroupCommand({ GroupName: groupName, Description: 'throttled', VpcId: aws.vpcId }),
      );
      expect(GroupId).toMatch(/^sg-/);
      const mine = (await faults.state()).faults.filter((f) => ids.includes(f.id));
      expect(mine.map((f) => [f.fault.action, f.fired])).toEqual([
        ['CreateRole', 1],
        ['CreateSecurityGroup', 2],
      ]);
      await ec2.send(new DeleteSecurityGroupCommand({ GroupId }));
    } finally {
      for (const id of ids) await faults.remove(id);
    }
  });

  it("refuses to delete a security group another group's rule references, as EC2 does", async () => {
    const { GroupId: groupId } = await ec2.send(
      new CreateSecurityGroupCommand({
        GroupName: `smoke-ref-${suffix()}`,
        Description: 'referenced',
        VpcId: aws.vpcId,
      }),
    );
    const rule = {
      GroupId: aws.clusterSecurityGroupId,
      IpPermissions: [{ IpProtocol: 'tcp', FromPort: 443, ToPort: 443, UserIdGroupPairs: [{ GroupId: groupId }] }],
    };
    await ec2.send(new AuthorizeSecurityGroupIngressCommand(rule));
    expect(await errorOf(ec2.send(new DeleteSecurityGroupCommand({ GroupId: groupId })))).toEqual({
      name: 'DependencyViolation',
      status: 400,
    });
    await ec2.send(new RevokeSecurityGroupIngressCommand(rule));
    await ec2.send(new DeleteSecurityGroupCommand({ GroupId: groupId }));
  });

  it('runs a VPC Lambda whose EKS token authenticates only once the role has an access entry', async () => {
    const namespace = await createNamespace(testKube(), 'aws-lambda');
    const name = `smoke-probe-${suffix()}`;
    const roleArn = await createLambdaRole(name);
    const { GroupId: groupId } = await ec2.send(
      new CreateSecurityGroupCommand({ GroupName: name, Description: 'probe', VpcId: aws.vpcId }),
    );
    const rule = {
      GroupId: aws.clusterSecurityGroupId,
      IpPermissions: [{ IpProtocol: 'tcp', FromPort: 443, ToPort: 443, UserIdGroupPairs: [{ GroupId: groupId }] }],
    };
    await ec2.send(new AuthorizeSecurityGroupIngressCommand(rule));
    await faults.functionPendingSeconds(5, name); // longer than the stack's 2 s default: a loaded machine cannot outrun it
    await lambda.send(
      new CreateFunctionCommand({
        FunctionName: name,
        Runtime: 'nodejs22.x',
        Role: roleArn,
        Handler: 'index.probe',
        Code: { ZipFile: zip },
        Timeout: 10,
        VpcConfig: { SubnetIds: aws.subnetIds, SecurityGroupIds: [groupId!] },
      }),
    );
    // Like Lambda, a new function is Pending for a while, and Invoke refuses it meanwhile.
    expect((await lambda.send(new GetFunctionCommand({ FunctionName: name }))).Configuration).toMatchObject({
      State: 'Pending',
      StateReasonCode: 'Creating',
    });
    expect(await errorOf(lambda.send(new InvokeCommand({ FunctionName: name, Payload: '{}' })))).toEqual({
      name: 'ResourceConflictException',
      status: 409,
    });
    await active(name);

    const { cluster } = await eks.send(new DescribeClusterCommand({ name: aws.clusters.local }));
    const event = {
      clusterName: aws.clusters.local,
      endpoint: cluster!.endpoint!,
      certificateAuthority: cluster!.certificateAuthority!.data!,
      namespace,
    };
    const invoke = async () => {
      const res = await lambda.send(new InvokeCommand({ FunctionName: name, Payload: JSON.stringify(event) }));
      expect(res.FunctionError, JSON.stringify(decode(res.Payload))).toBeUndefined();
      return decode(res.Payload) as { status: number; callerArn: string; functionName: string; remainingMs: number };
    };

    const anonymous = await invoke();
    expect(anonymous.status).toBe(401); // no access entry: the token webhook refuses the role
    expect(anonymous.callerArn).toBe(`arn:aws:sts::${aws.accountId}:assumed-role/${name}/${name}`);
    expect(anonymous.remainingMs).toBeGreaterThan(0);

    await faults.accessEntryDelaySeconds(8, name); // an invocation starts a process: longer than one takes under load
    await eks.send(new CreateAccessEntryCommand({ clusterName: aws.clusters.local, principalArn: roleArn }));
    expect((await invoke()).status).toBe(401); // the entry is not in effect yet
    await until('the access entry in effect', async () => (await invoke()).status !== 401, 30_000);
    await faults.clear();
    expect((await invoke()).status).toBe(403); // authenticated, but no policy yet
    await eks.send(
      new AssociateAccessPolicyCommand({
        clusterName: aws.clusters.local,
        principalArn: roleArn,
        policyArn: EDIT,
        accessScope: { type: 'namespace', namespaces: [namespace] },
      }),
    );
    expect((await invoke()).status).toBe(200);
    await eks.send(new DeleteAccessEntryCommand({ clusterName: aws.clusters.local, principalArn: roleArn }));

    // Teardown in the order EC2 enforces: the cluster group's rule, then the function, then (once
    // Lambda has released its ENIs) the group.
    expect(await errorOf(ec2.send(new DeleteSecurityGroupCommand({ GroupId: groupId })))).toEqual({
      name: 'DependencyViolation',
      status: 400,
    });
    await ec2.send(new RevokeSecurityGroupIngressCommand(rule));
    await lambda.send(new DeleteFunctionCommand({ FunctionName: name }));
    const deleted = Date.now();
    expect(await errorOf(ec2.send(new DeleteSecurityGroupCommand({ GroupId: groupId })))).toEqual({
      name: 'DependencyViolation',
      status: 400,
    });
    const eniRelease = (await faults.state()).eniReleaseSeconds;
    for (;;) {
      try {
        await ec2.send(new DeleteSecurityGroupCommand({ GroupId: groupId }));
        break;
      } catch (err) {
        if ((err as Error).name !== 'DependencyViolation' || Date.now() - deleted > (eniRelease + 5) * 1000) throw err;
        await new Promise((r) => setTimeout(r, 250));
      }
    }
    expect(Date.now() - deleted).toBeGreaterThanOrEqual(eniRelease * 1000 - 100);
  });

  it("answers a handler's timeout and error as Lambda does", async () => {
    const name = `smoke-sleep-${suffix()}`;
    const roleArn = await createLambdaRole(name);
    const create = (fn: string, handler: string) =>
      lambda.send(
        new CreateFunctionCommand({
          FunctionName: fn,
          Runtime: 'nodejs22.x',
          Role: roleArn,
          Handler: handler,
          Code: { ZipFile: zip },
          Timeout: 1,
        }),
      );
    await create(name, 'index.sleep');
    await create(`${name}-fail`, 'index.fail');
    await active(name);
    await active(`${name}-fail`);

    const quick = await lambda.send(new InvokeCommand({ FunctionName: name, Payload: JSON.stringify({ ms: 10 }) }));
    expect([quick.StatusCode, quick.FunctionError, decode(quick.Payload)]).toEqual([200, undefined, 'woke up']);

    // The 1 s timeout ends the invocation long before the handler's minute of sleep would (a loose bound: it tells a
    // front that enforces the timeout from one that waits the handler out, on however loaded a machine).
    const started = Date.now();
    const slow = await lambda.send(new InvokeCommand({ FunctionName: name, Payload: JSON.stringify({ ms: 60_000 }) }));
    expect(Date.now() - started).toBeLessThan(30_000);
    expect([slow.StatusCode, slow.FunctionError]).toEqual([200, 'Unhandled']);
    expect(decode(slow.Payload)).toMatchObject({
      errorType: 'Sandbox.Timedout',
      errorMessage: expect.stringContaining('Task timed out after 1.00 seconds'),
    });

    const failed = await lambda.send(
      new InvokeCommand({ FunctionName: `${name}-fail`, Payload: JSON.stringify({ message: 'boom' }) }),
    );
    expect([failed.StatusCode, failed.FunctionError]).toEqual([200, 'Unhandled']);
    expect(decode(failed.Payload)).toMatchObject({
      errorType: 'TypeError',
      errorMessage: 'boom',
      trace: expect.arrayContaining(['TypeError: boom']),
    });

    // Lambda's init phase (loading the handler: here 1.5 s of top-level await) has a limit of its own; the 1 s
    // timeout counts from the invocation. A front that counted the init against it failed under a loaded machine.
    const slowInit = zipSync({
      'index.mjs': strToU8(
        "await new Promise((r) => setTimeout(r, 1500));\nexport const handler = async () => 'ready after a slow init';\n",
      ),
    });
    await lambda.send(
      new CreateFunctionCommand({
        FunctionName: `${name}-init`,
        Runtime: 'nodejs22.x',
        Role: roleArn,
        Handler: 'index.handler',
        Code: { ZipFile: slowInit },
        Timeout: 1,
      }),
    );
    await active(`${name}-init`);
    const init = await lambda.send(new InvokeCommand({ FunctionName: `${name}-init` }));
    expect([init.StatusCode, init.FunctionError, decode(init.Payload)]).toEqual([
      200,
      undefined,
      'ready after a slow init',
    ]);

    // A function that does not exist is moto's answer.
    expect(await errorOf(lambda.send(new InvokeCommand({ FunctionName: `${name}-missing` })))).toEqual({
      name: 'ResourceNotFoundException',
      status: 404,
    });
  });
});
