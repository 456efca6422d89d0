/** Names and tags of the AWS resources an incident creates: derived from the workflow ID, so retries adopt. */

export const INCIDENT_TAG = 'pod-responder:incident';
export const MANAGED_TAG = 'pod-responder:managed';
/** On the function's security group: the cluster group whose ingress rule must be revoked with it. */
export const CLUSTER_SG_TAG = 'pod-responder:cluster-security-group';
/** Every role, group and function name starts with it (no IAM path: EKS access entries match roles without one). */
export const RESOURCE_PREFIX = 'pod-responder-';
export const EDIT_POLICY_ARN = 'arn:aws:eks::aws:cluster-access-policy/AmazonEKSEditPolicy';
export const LAMBDA_VPC_POLICY_ARN = 'arn:aws:iam::aws:policy/service-role/AWSLambdaVPCAccessExecutionRole';

/** FNV-1a, 64 bit: a stable short hash with no Node API, so workflow code can use it too. */
export function fnv1a64(text: string): string {
  let h = 0xcbf29ce484222325n;
  for (const byte of new TextEncoder().encode(text)) {
    h ^= BigInt(byte);
    h = (h * 0x100000001b3n) & 0xffffffffffffffffn;
  }
  return h.toString(16).padStart(16, '0');
}

export interface IncidentResourceNames {
  /** IAM role, security group and Lambda function share it (≤ 64 chars, IAM's limit). */
  base: string;
  logGroup: string;
}

/** `session` separates executor deployments of one incident (remediation, then a later restore). */
export function resourceNames(incidentId: string, session: number): IncidentResourceNames {
  const base = `${RESOURCE_PREFIX}${fnv1a64(incidentId)}-s${session}`;
  return { base, logGroup: `/aws/lambda/${base}` };
}

export function incidentTags(incidentId: string): Record<string, string> {
  return { [INCIDENT_TAG]: incidentId, [MANAGED_TAG]: 'true' };
}
