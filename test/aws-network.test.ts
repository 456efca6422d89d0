/**
 * The test front's network model (test/aws/function-network.ts): a VPC function reaches only what its
 * security groups allow. The EKS executor's function, with its one rule (443 to the cluster group), reaches
 * the cluster API and not S3; given egress to the S3 prefix list it does; without the cluster group's ingress
 * it loses the API.
 */
import {
  AuthorizeSecurityGroupEgressCommand,
  AuthorizeSecurityGroupIngressCommand,
  CreateSecurityGroupCommand,
  DeleteSecurityGroupCommand,
  DescribeManagedPrefixListsCommand,
  EC2Client,
  RevokeSecurityGroupEgressCommand,
  RevokeSecurityGroupIngressCommand,
} from '@aws-sdk/client-ec2';
import { DescribeClusterCommand, EKSClient } from '@aws-sdk/client-eks';
import { CreateRoleCommand, IAMClient, PutRolePolicyCommand } from '@aws-sdk/client-iam';
import {
  CreateFunctionCommand,
  DeleteFunctionCommand,
  GetFunctionConfigurationCommand,
  InvokeCommand,
  LambdaClient,
} from '@aws-sdk/client-lambda';
import { CreateBucketCommand, HeadObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { AwsFaults } from './aws/faults.js';
import { bundleLambdaZip } from './aws/lambda-zip.js';
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
const s3 = new S3Client({ ...config, forcePathStyle: true });
const faults = new AwsFaults(aws.faultsUrl);
const name = `net-probe-${randomBytes(3).toString('hex')}`;
const bucket = `net-${randomBytes(4).toString('hex')}`;
let groupId: string;
let s3PrefixList: string;
const toCluster = () => ({
  IpProtocol: 'tcp',
  FromPort: 443,
  ToPort: 443,
  UserIdGroupPairs: [{ GroupId: aws.clusterSecurityGroupId }],
});
const fromFunction = () => ({
  GroupId: aws.clusterSecurityGroupId,
  IpPermissions: [{ IpProtocol: 'tcp', FromPort: 443, ToPort: 443, UserIdGroupPairs: [{ GroupId: groupId }] }],
});

beforeAll(async () => {
  const zip = await bundleLambdaZip(fileURLToPath(new URL('./aws/fixtures/kube-probe.ts', import.meta.url)), {
    external: ['@aws-sdk/*'],
  });
  await s3.send(new CreateBucketCommand({ Bucket: bucket }));
  const { Role } = await iam.send(
    new CreateRoleCommand({
      RoleName: name,
      AssumeRolePolicyDocument: JSON.stringify({
        Version: '2012-10-17',
        Statement: [{ Effect: 'Allow', Principal: { Service: 'lambda.amazonaws.com' }, Action: 'sts:AssumeRole' }],
      }),
    }),
  );
  // IAM would let it write: only the network can stop it.
  await iam.send(
    new PutRolePolicyCommand({
      RoleName: name,
      PolicyName: 'write',
      PolicyDocument: JSON.stringify({
        Version: '2012-10-17',
        Statement: [{ Effect: 'Allow', Action: 's3:PutObject', Resource: `arn:aws:s3:::${bucket}/*` }],
      }),
    }),
  );
  // The EKS executor's group as the code makes it: the default egress gone, 443 to the cluster group, and its ingress.
  groupId = (
    await ec2.send(new CreateSecurityGroupCommand({ GroupName: name, Description: 'network probe', VpcId: aws.vpcId }))
  ).GroupId!;
  await ec2.send(
    new RevokeSecurityGroupEgressCommand({
      GroupId: groupId,
      IpPermissions: [{ IpProtocol: '-1', IpRanges: [{ CidrIp: '0.0.0.0/0' }] }],
    }),
  );
  await ec2.send(new AuthorizeSecurityGroupEgressCommand({ GroupId: groupId, IpPermissions: [toCluster()] }));
  await ec2.send(new AuthorizeSecurityGroupIngressCommand(fromFunction()));
  const { PrefixLists } = await ec2.send(
    new DescribeManagedPrefixListsCommand({
      Filters: [{ Name: 'prefix-list-name', Values: [`com.amazonaws.${aws.region}.s3`] }],
    }),
  );
  s3PrefixList = PrefixLists![0]!.PrefixListId!;
  await faults.functionPendingSeconds(0, name);
  await lambda.send(
    new CreateFunctionCommand({
      FunctionName: name,
      Runtime: 'nodejs22.x',
      Role: Role!.Arn!,
      Handler: 'index.reach',
      Code: { ZipFile: zip },
      Timeout: 20,
      VpcConfig: { SubnetIds: aws.subnetIds, SecurityGroupIds: [groupId] },
    }),
  );
  await until(
    `function ${name} Active`,
    async () => (await lambda.send(new GetFunctionConfigurationCommand({ FunctionName: name }))).State === 'Active',
    20_000,
  );
});

afterAll(async () => {
  await lambda.send(new DeleteFunctionCommand({ FunctionName: name })).catch(() => undefined);
  await ec2.send(new RevokeSecurityGroupIngressCommand(fromFunction())).catch(() => undefined);
  await until(
    'the probe group deleted',
    async () =>
      await ec2.send(new DeleteSecurityGroupCommand({ GroupId: groupId })).then(
        () => true,
        () => false,
      ),
    30_000,
  ).catch(() => undefined);
  await faults.clear();
  for (const c of [iam, ec2, eks, lambda, s3]) c.destroy();
});

async function reach(key: string): Promise<{ cluster: string; s3: string }> {
  const { cluster } = await eks.send(new DescribeClusterCommand({ name: aws.clusters.local }));
  const event = {
    endpoint: cluster!.endpoint!,
    certificateAuthority: cluster!.certificateAuthority!.data!,
    bucket,
    key,
    timeoutMs: 3000,
  };
  const res = await lambda.send(new InvokeCommand({ FunctionName: name, Payload: JSON.stringify(event) }));
  const payload = JSON.parse(Buffer.from(res.Payload ?? []).toString('utf8'));
  expect(res.FunctionError, JSON.stringify(payload)).toBeUndefined();
  return payload;
}

const written = (key: string) =>
  s3.send(new HeadObjectCommand({ Bucket: bucket, Key: key })).then(
    () => true,
    () => false,
  );

describe('a VPC function reaches what its security groups allow', () => {
  it("with only 443 to the cluster group (the EKS executor's rule): the cluster API answers, S3 does not, nothing is written", async () => {
    const got = await reach('only-cluster');
    expect(got.cluster).toMatch(/^HTTP \d{3}$/);
    expect(got.s3).not.toBe('written');
    expect(await written('only-cluster')).toBe(false);
  });

  it('given egress to the S3 prefix list: it writes to S3', async () => {
    const rule = {
      GroupId: groupId,
      IpPermissions: [
        { IpProtocol: 'tcp', FromPort: 443, ToPort: 443, PrefixListIds: [{ PrefixListId: s3PrefixList }] },
      ],
    };
    await ec2.send(new AuthorizeSecurityGroupEgressCommand(rule));
    try {
      expect(await reach('with-prefix-list')).toEqual({
        cluster: expect.stringMatching(/^HTTP \d{3}$/),
        s3: 'written',
      });
      expect(await written('with-prefix-list')).toBe(true);
    } finally {
      await ec2.send(new RevokeSecurityGroupEgressCommand(rule));
    }
  });

  it("without the cluster group's ingress from its group: it loses the cluster API", async () => {
    await ec2.send(new RevokeSecurityGroupIngressCommand(fromFunction()));
    try {
      expect((await reach('no-ingress')).cluster).toBe('no answer within 3000 ms');
    } finally {
      await ec2.send(new AuthorizeSecurityGroupIngressCommand(fromFunction()));
    }
    expect((await reach('ingress-back')).cluster).toMatch(/^HTTP \d{3}$/);
  });
});
