/** Seeds moto, through the front, with what an account with EKS clusters has. */
import { CreateSubnetCommand, CreateVpcCommand, EC2Client } from '@aws-sdk/client-ec2';
import { CreateClusterCommand, DescribeClusterCommand, EKSClient } from '@aws-sdk/client-eks';
import {
  AttachRolePolicyCommand,
  CreatePolicyCommand,
  CreateRoleCommand,
  IAMClient,
  PutRolePolicyCommand,
} from '@aws-sdk/client-iam';
import { AssumeRoleCommand, STSClient } from '@aws-sdk/client-sts';
import { readFileSync } from 'node:fs';
import {
  AWS_DEFAULTS,
  FUNCTION_BOUNDARY,
  SEEDED_CLUSTERS,
  STACK_EVIDENCE_BUCKETS,
  WORKER_ROLE,
  type StackAws,
} from './aws.js';

/** A policy of deploy/aws/ as an operator installs it: EVIDENCE_BUCKET replaced by their bucket. */
export function deployPolicy(file: 'worker-policy.json' | 'function-boundary-policy.json', bucket: string): string {
  return readFileSync(new URL(`../deploy/aws/${file}`, import.meta.url), 'utf8').replaceAll('EVIDENCE_BUCKET', bucket);
}

/** The worker's role as deploy/aws/ describes it, and a session of it (through the front, which remembers the keys). */
async function workerRole(iam: IAMClient, sts: STSClient): Promise<StackAws['worker']> {
  const { Role } = await iam.send(
    new CreateRoleCommand({
      RoleName: WORKER_ROLE,
      AssumeRolePolicyDocument: JSON.stringify({
        Version: '2012-10-17',
        Statement: [
          {
            Effect: 'Allow',
            Principal: { Service: 'pods.eks.amazonaws.com' },
            Action: ['sts:AssumeRole', 'sts:TagSession'],
          },
        ],
      }),
    }),
  );
  await iam.send(
    new PutRolePolicyCommand({
      RoleName: WORKER_ROLE,
      PolicyName: WORKER_ROLE,
      PolicyDocument: deployPolicy('worker-policy.json', STACK_EVIDENCE_BUCKETS),
    }),
  );
  const { Credentials: c } = await sts.send(
    new AssumeRoleCommand({ RoleArn: Role!.Arn!, RoleSessionName: 'worker-under-test', DurationSeconds: 43_200 }),
  );
  return {
    roleArn: Role!.Arn!,
    accessKeyId: c!.AccessKeyId!,
    secretAccessKey: c!.SecretAccessKey!,
    sessionToken: c!.SessionToken!,
  };
}

/** Creates, through the front (so it learns each cluster's authentication mode), what an account with EKS clusters has. */
export async function seedAws(endpoint: string, faultsUrl: string): Promise<StackAws> {
  const { region, accessKeyId, secretAccessKey, accountId } = AWS_DEFAULTS;
  const config = { endpoint, region, credentials: { accessKeyId, secretAccessKey } };
  const ec2 = new EC2Client(config);
  const iam = new IAMClient(config);
  const eks = new EKSClient(config);
  const sts = new STSClient(config);
  try {
    const boundary = iam.send(
      new CreatePolicyCommand({
        PolicyName: FUNCTION_BOUNDARY,
        PolicyDocument: deployPolicy('function-boundary-policy.json', STACK_EVIDENCE_BUCKETS),
      }),
    );
    const worker = workerRole(iam, sts);
    const network = (async () => {
      const { Vpc } = await ec2.send(
        new CreateVpcCommand({
          CidrBlock: '10.42.0.0/16',
          TagSpecifications: [{ ResourceType: 'vpc', Tags: [{ Key: 'Name', Value: 'devstack' }] }],
        }),
      );
      const subnets = await Promise.all(
        ['a', 'b'].map((az, i) =>
          ec2.send(
            new CreateSubnetCommand({
              VpcId: Vpc!.VpcId!,
              CidrBlock: `10.42.${i + 1}.0/24`,
              AvailabilityZone: `${region}${az}`,
              TagSpecifications: [{ ResourceType: 'subnet', Tags: [{ Key: 'Name', Value: `devstack-private-${az}` }] }],
            }),
          ),
        ),
      );
      return { vpcId: Vpc!.VpcId!, subnetIds: subnets.map((s) => s.Subnet!.SubnetId!) };
    })();
    const clusterRole = (async () => {
      const { Role } = await iam.send(
        new CreateRoleCommand({
          RoleName: 'devstack-eks-cluster',
          AssumeRolePolicyDocument: JSON.stringify({
            Version: '2012-10-17',
            Statement: [{ Effect: 'Allow', Principal: { Service: 'eks.amazonaws.com' }, Action: 'sts:AssumeRole' }],
          }),
        }),
      );
      await iam.send(
        new AttachRolePolicyCommand({
          RoleName: Role!.RoleName!,
          PolicyArn: 'arn:aws:iam::aws:policy/AmazonEKSClusterPolicy',
        }),
      );
      return Role!.Arn!;
    })();
    const { vpcId, subnetIds } = await network;
    const roleArn = await clusterRole;
    const modes = {
      [SEEDED_CLUSTERS.local]: 'API_AND_CONFIG_MAP',
      [SEEDED_CLUSTERS.configMapOnly]: 'CONFIG_MAP',
    } as const;
    await Promise.all(
      Object.entries(modes).map(([name, authenticationMode]) =>
        eks.send(
          new CreateClusterCommand({
            name,
            version: '1.34',
            roleArn,
            resourcesVpcConfig: { subnetIds, endpointPrivateAccess: true, endpointPublicAccess: false },
            // No creator entry: the stack's admin is the apiserver's static token, not an IAM principal.
            accessConfig: { authenticationMode, bootstrapClusterCreatorAdminPermissions: false },
          }),
        ),
      ),
    );
    const { cluster } = await eks.send(new DescribeClusterCommand({ name: SEEDED_CLUSTERS.local }));
    return {
      endpoint,
      region,
      accessKeyId,
      secretAccessKey,
      accountId,
      clusters: { ...SEEDED_CLUSTERS },
      vpcId,
      subnetIds,
      clusterSecurityGroupId: cluster!.resourcesVpcConfig!.clusterSecurityGroupId!,
      faultsUrl,
      permissionsBoundaryArn: (await boundary).Policy!.Arn!,
      worker: await worker,
    };
  } finally {
    ec2.destroy();
    iam.destroy();
    eks.destroy();
    sts.destroy();
  }
}
