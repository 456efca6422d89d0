/** What every part of the front shares: where moto and Kubernetes are, and the log. */
import { EC2Client } from '@aws-sdk/client-ec2';
import { EKSClient } from '@aws-sdk/client-eks';
import { IAMClient } from '@aws-sdk/client-iam';
import { LambdaClient } from '@aws-sdk/client-lambda';
import { STSClient } from '@aws-sdk/client-sts';
import type { Classified } from './classify.js';
import type { InboundRequest, Reply } from './http.js';
import type { KubeTarget } from './kube-admin.js';

export interface FrontContext {
  region: string;
  accountId: string;
  /** SDK clients straight to moto: the front's own look-ups are not the caller's AWS calls and are not counted. */
  moto: { ec2: EC2Client; eks: EKSClient; iam: IAMClient; lambda: LambdaClient; sts: STSClient };
  /** The kube-apiserver standing in for the EKS clusters; undefined until it is up. */
  kube(): KubeTarget | undefined;
  log: (line: string) => void;
}

/** Handles one AWS call, or returns undefined to let it through to moto unchanged (`forward` sends it, or `changed` instead). */
export type Interceptor = (
  call: Classified,
  req: InboundRequest,
  forward: (changed?: InboundRequest) => Promise<Reply>,
) => Promise<Reply | undefined> | undefined;

export function motoClients(motoUrl: string, region: string): FrontContext['moto'] {
  const config = {
    endpoint: motoUrl,
    region,
    credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
    maxAttempts: 1,
  };
  return {
    ec2: new EC2Client(config),
    eks: new EKSClient(config),
    iam: new IAMClient(config),
    lambda: new LambdaClient(config),
    sts: new STSClient(config),
  };
}

export function parseJson(body: Buffer): Record<string, unknown> {
  if (body.length === 0) return {};
  const value: unknown = JSON.parse(body.toString('utf8'));
  return value && typeof value === 'object' ? (value as Record<string, unknown>) : {};
}
