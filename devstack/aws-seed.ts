/** Seeds moto, through the front, with what an account with EKS clusters has. */
import { CreateSubnetCommand, CreateVpcCommand, EC2Client } from '@aws-sdk/client-ec2';
import { CreateClusterCommand, DescribeClusterCommand, EKSClient } from '@aws-sdk/client-eks';
import { AttachRolePolicyCommand, CreateRoleCommand, IAMClient } from '@aws-sdk/client-iam';
import { AWS_DEFAULTS, SEEDED_CLUSTERS, type StackAws } from './aws.js';

/** Creates, through the front (so it learns each cluster's authentication mode), what an account with EKS clusters has. */
export async function seedAws(endpoint: string, faultsUrl: string): Promise<StackAws> {
  const { region, accessKeyId, secretAccessKey, accountId } = AWS_DEFAULTS;
  const config = { endpoint, region, credentials: { accessKeyId, secretAccessKey } };
  const ec2 = new EC2Client(config);
  const iam = new IAMClient(config);
  const eks = new EKSClient(config);
  try {
    const network = (async () => {
      const { Vpc } = await ec2.send(
        new CreateVpcCommand({ CidrBlock: '10.42.0.0/16', TagSpecifications: [{ ResourceType: 'vpc', Tags: [{ Key: 'Name', Value: 'devstack' }] }] }),
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
      await iam.send(new AttachRolePolicyCommand({ RoleName: Role!.RoleName!, PolicyArn: 'arn:aws:iam::aws:policy/AmazonEKSClusterPolicy' }));
      return Role!.Arn!;
    })();
    const { vpcId, subnetIds } = await network;
    const roleArn = await clusterRole;
    const modes = { [SEEDED_CLUSTERS.local]: 'API_AND_CONFIG_MAP', [SEEDED_CLUSTERS.configMapOnly]: 'CONFIG_MAP' } as const;
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
    };
  } finally {
    ec2.destroy();
    iam.destroy();
    eks.destroy();
  }
}
