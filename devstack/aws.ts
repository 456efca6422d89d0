/**
 * The devstack's AWS: moto in server mode behind the test front (test/aws/front.ts), seeded with the
 * network, role and EKS clusters an incident needs (aws-seed.ts). stack.ts starts moto and the front
 * (aws-main.ts) as processes; this file holds what they share, without the AWS SDK, which loads slowly
 * in vitest's global setup.
 */

export interface StackAws {
  /** The front's URL: every AWS SDK client in tests (and the code under test) uses it as its endpoint. */
  endpoint: string;
  region: string;
  accessKeyId: string;
  secretAccessKey: string;
  accountId: string;
  /** EKS cluster names: `local` (API_AND_CONFIG_MAP, the cluster alerts name) and a CONFIG_MAP-only one. */
  clusters: { local: string; configMapOnly: string };
  vpcId: string;
  subnetIds: string[];
  /** The EKS-created security group of `local` (DescribeCluster's resourcesVpcConfig.clusterSecurityGroupId). */
  clusterSecurityGroupId: string;
  /** The front's fault and call-count control API; see test/aws/faults.ts. */
  faultsUrl: string;
  /** `pod-responder-function-boundary`, made from deploy/aws/function-boundary-policy.json as an operator would. */
  permissionsBoundaryArn: string;
  /**
   * Credentials of the role `pod-responder-worker`, whose inline policy is deploy/aws/worker-policy.json (and which
   * has no boundary, like a real worker role): the front evaluates that policy, conditions included, for IAM calls
   * signed with them (test/aws/iam-authorization.ts). Tests give them to the worker under test.
   */
  worker: { roleArn: string; accessKeyId: string; secretAccessKey: string; sessionToken: string };
}

/** The stack's evidence buckets (any name containing "evidence"), for EVIDENCE_BUCKET in the shipped policies. */
export const STACK_EVIDENCE_BUCKETS = '*evidence*';
export const WORKER_ROLE = 'pod-responder-worker';
export const FUNCTION_BOUNDARY = 'pod-responder-function-boundary';

// moto's defaults: any credentials work, and this is the account it reports.
export const AWS_DEFAULTS = {
  region: 'us-east-1',
  accessKeyId: 'test',
  secretAccessKey: 'test',
  accountId: '123456789012',
};
export const SEEDED_CLUSTERS = { local: 'local', configMapOnly: 'config-map-only' };

/** Environment for moto_server. Managed policies cannot be switched on through /moto-api/config (moto 5.2 ignores its iam key there). */
export const MOTO_ENV = {
  MOTO_IAM_LOAD_MANAGED_POLICIES: 'true',
  // No EC2 instances are launched: skip loading moto's AMI catalogue (faster first EC2 call).
  MOTO_EC2_LOAD_DEFAULT_AMIS: 'false',
  PYTHONUNBUFFERED: '1',
};

/**
 * Lambda without Docker: moto's LambdaSimpleBackend, which keeps functions but does not run them
 * (the front does). It is a different backend object, so this must happen before any Lambda call.
 */
export async function configureMoto(motoUrl: string): Promise<void> {
  const res = await fetch(`${motoUrl}/moto-api/config`, {
    method: 'POST',
    body: JSON.stringify({ lambda: { use_docker: false } }),
  });
  const config = (await res.json()) as { lambda?: { use_docker?: boolean } };
  if (config.lambda?.use_docker !== false)
    throw new Error(`moto did not take lambda.use_docker=false: ${JSON.stringify(config)}`);
}

/** A kubeconfig pointing kube-apiserver's token webhook at the front (plain HTTP on loopback). */
export function webhookKubeconfig(webhookUrl: string): string {
  return [
    'apiVersion: v1',
    'kind: Config',
    'clusters:',
    '- name: aws-iam-authenticator',
    '  cluster:',
    `    server: ${webhookUrl}`,
    'users:',
    '- name: kube-apiserver',
    '  user: {}',
    'contexts:',
    '- name: webhook',
    '  context:',
    '    cluster: aws-iam-authenticator',
    '    user: kube-apiserver',
    'current-context: webhook',
    '',
  ].join('\n');
}

/** Options of the front's process (aws-main.ts), passed as JSON in argv. */
export interface AwsFrontOptions {
  motoUrl: string;
  port: number;
  eniReleaseSeconds: number;
  /** How long a new function stays Pending (Lambda: tens of seconds for a VPC function). */
  functionPendingSeconds: number;
  /** How long a new access entry authenticates nobody (EKS: seconds, sometimes a minute). */
  accessEntryDelaySeconds: number;
  lambdaWorkDir: string;
}
