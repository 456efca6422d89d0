import { DeleteRolePolicyCommand, PutRolePolicyCommand } from '@aws-sdk/client-iam';
import type { EvidenceCapture, EvidenceDestination, EvidenceRequest } from '../../remediation/evidence.js';
import type { AwsClients } from './clients.js';
import type { TargetCluster } from './cluster.js';
import { invokeFunction } from './function.js';

/** The inline policy that lets a function write one bundle, for the one call that writes it. */
export const EVIDENCE_WRITE_POLICY = 'evidence-write';

/**
 * The cluster's part of a bundle, read and written by the EKS executor's function of the stretch: its role may
 * write under exactly this bundle's prefix for this one call (loaded only by an incident that has such a function).
 */
export async function captureThroughFunction(
  aws: AwsClients,
  via: { cluster: TargetCluster; functionName: string },
  request: EvidenceRequest & { awaitWriteAccess: true },
): Promise<EvidenceCapture> {
  const { cluster, functionName } = via;
  const partition = cluster.arn.split(':')[1] ?? 'aws';
  await aws.iam.send(new PutRolePolicyCommand({ RoleName: functionName, PolicyName: EVIDENCE_WRITE_POLICY, PolicyDocument: JSON.stringify(writeOnlyPolicy(partition, request.to)) }));
  try {
    const event = { cluster: { name: cluster.name, region: cluster.region, endpoint: cluster.endpoint, certificateAuthority: cluster.certificateAuthority }, request };
    return (await invokeFunction(aws, functionName, event)) as EvidenceCapture;
  } finally {
    // The role goes with the stretch anyway; its right to write goes now.
    await aws.iam.send(new DeleteRolePolicyCommand({ RoleName: functionName, PolicyName: EVIDENCE_WRITE_POLICY })).catch(() => undefined);
  }
}

/** Put objects under exactly the bundle's prefix (and set their retention when the bucket needs it); read nothing. */
export function writeOnlyPolicy(partition: string, to: EvidenceDestination) {
  return {
    Version: '2012-10-17',
    Statement: [
      {
        Sid: 'WriteThisBundleOnly',
        Effect: 'Allow',
        Action: to.retainUntil ? ['s3:PutObject', 's3:PutObjectRetention'] : ['s3:PutObject'],
        Resource: `arn:${partition}:s3:::${to.bucket}/${to.prefix}*`,
      },
    ],
  };
}
