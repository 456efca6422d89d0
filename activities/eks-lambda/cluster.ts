import { DescribeClusterCommand } from '@aws-sdk/client-eks';
import { ApplicationFailure } from '@temporalio/activity';
import type { AwsClients } from './clients.js';

export interface TargetCluster {
  name: string;
  region: string;
  arn: string;
  accountId: string;
  endpoint: string;
  certificateAuthority: string;
  vpcId: string;
  subnetIds: string[];
  clusterSecurityGroupId: string;
  authenticationMode: string;
  /**
   * The installation that deploys into it (the worker's); names and tags carry it. Absent in histories
   * recorded before installations existed, whose stretches keep the names they had.
   */
  installationId?: string;
}

export async function describeTargetCluster(aws: AwsClients, name: string, region: string): Promise<TargetCluster> {
  const { cluster } = await aws.eks.send(new DescribeClusterCommand({ name }));
  const vpc = cluster?.resourcesVpcConfig;
  if (!cluster?.arn || !cluster.endpoint || !vpc?.vpcId || !vpc.subnetIds?.length || !vpc.clusterSecurityGroupId) {
    throw ApplicationFailure.nonRetryable(
      `EKS cluster ${name} in ${region} lacks an endpoint, VPC, subnets or cluster security group: cannot deploy into it`,
      'ClusterNotReady',
    );
  }
  return {
    name,
    region,
    arn: cluster.arn,
    accountId: cluster.arn.split(':')[4] ?? '',
    endpoint: cluster.endpoint,
    certificateAuthority: cluster.certificateAuthority?.data ?? '',
    vpcId: vpc.vpcId,
    subnetIds: vpc.subnetIds,
    clusterSecurityGroupId: vpc.clusterSecurityGroupId,
    authenticationMode: cluster.accessConfig?.authenticationMode ?? 'CONFIG_MAP',
  };
}
