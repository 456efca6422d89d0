/**
 * Names and tags of the AWS resources an incident creates. Names derive from the installation and the
 * incident, so retries adopt; tags say whose a resource is, and nothing without our tags is ever changed.
 */

export const INCIDENT_TAG = 'pod-responder:incident';
export const MANAGED_TAG = 'pod-responder:managed';
/** Which pod-responder installation (its own Temporal namespace, or cluster of Temporal) deployed it. */
export const INSTALLATION_TAG = 'pod-responder:installation';
/** On the function's security group: the cluster group whose ingress rule must be revoked with it. */
export const CLUSTER_SG_TAG = 'pod-responder:cluster-security-group';
/** On a cluster's shared executor security group: the cluster (ARN) whose functions it serves. */
export const EXECUTOR_GROUP_TAG = 'pod-responder:executor-group-for';
/** On a cluster's shared executor security group: when an incident last deployed with it (ISO time). */
export const LAST_USED_TAG = 'pod-responder:last-used';
/** Every role, group and function name starts with it (no IAM path: EKS access entries match roles without one). */
export const RESOURCE_PREFIX = 'pod-responder-';
/**
 * The function's Kubernetes identity: no EKS access policy (the narrowest, AmazonEKSEditPolicy, grants Secrets and
 * pods/exec), but groups the cluster owner binds (deploy/kubernetes/eks-remediator-rbac.yaml): this one to reading
 * nodes cluster-wide, and the namespace's own group to the remediation verbs, by a RoleBinding in that namespace.
 */
export const REMEDIATOR_GROUP = 'pod-responder:remediator';
export const remediatorGroups = (namespace: string): string[] => [REMEDIATOR_GROUP, `${REMEDIATOR_GROUP}:${namespace}`];
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

/**
 * `session` separates executor deployments of one incident (remediation, then a later restore).
 * Without an installation: the names of resources deployed before installations existed (still undone by them).
 */
export function resourceNames(incidentId: string, session: number, installationId?: string): IncidentResourceNames {
  const base = `${RESOURCE_PREFIX}${fnv1a64(installationId === undefined ? incidentId : `${installationId}\n${incidentId}`)}-s${session}`;
  return { base, logGroup: `/aws/lambda/${base}` };
}

/**
 * One security group per installation and cluster, shared by every incident's functions there: one ingress rule
 * on the cluster's security group however many incidents run (its default quota is 60 rules).
 */
export function executorGroupName(installationId: string, clusterArn: string): string {
  return `${RESOURCE_PREFIX}${fnv1a64(`${installationId}\n${clusterArn}`)}-executors`;
}

export function executorGroupTags(installationId: string, clusterArn: string): Record<string, string> {
  return { [MANAGED_TAG]: 'true', [INSTALLATION_TAG]: installationId, [EXECUTOR_GROUP_TAG]: clusterArn };
}

/** Undefined when the tags prove the group is this installation's executor group for this cluster; otherwise why not. */
export function notOurExecutorGroupBecause(
  tags: Record<string, string | undefined> | undefined,
  installationId: string,
  clusterArn: string,
): string | undefined {
  if (tags?.[MANAGED_TAG] !== 'true') return `it is not tagged ${MANAGED_TAG}=true`;
  if (tags[INSTALLATION_TAG] !== installationId)
    return `it belongs to installation ${tags[INSTALLATION_TAG] ?? '(none)'}`;
  if (tags[EXECUTOR_GROUP_TAG] !== clusterArn) return `it is not the executor group for ${clusterArn}`;
  return undefined;
}

/** Who a resource belongs to: one incident of one installation. */
export interface Owner {
  installationId: string;
  incidentId: string;
}

export function ownerTags(owner: Owner): Record<string, string> {
  return { [MANAGED_TAG]: 'true', [INSTALLATION_TAG]: owner.installationId, [INCIDENT_TAG]: owner.incidentId };
}

/**
 * Undefined when the tags prove the resource is this owner's; otherwise why not. A resource tagged before
 * installations existed (no installation tag) counts as the incident's own: its undo must still remove it.
 */
export function notOwnedBecause(
  tags: Record<string, string | undefined> | undefined,
  owner: Owner,
): string | undefined {
  if (tags?.[MANAGED_TAG] !== 'true') return `it is not tagged ${MANAGED_TAG}=true`;
  const installation = tags[INSTALLATION_TAG];
  if (installation !== undefined && installation !== owner.installationId)
    return `it belongs to installation ${installation}`;
  if (tags[INCIDENT_TAG] !== owner.incidentId) return `it belongs to incident ${tags[INCIDENT_TAG] ?? '(none)'}`;
  return undefined;
}

export const tagMap = (list: { Key?: string; Value?: string }[] | undefined): Record<string, string | undefined> =>
  Object.fromEntries((list ?? []).map((t) => [t.Key ?? '', t.Value]));

export const tagList = (tags: Record<string, string>) => Object.entries(tags).map(([Key, Value]) => ({ Key, Value }));
