/**
 * Cutting the credentials a miner may have taken: worker-side AWS calls (the worker's own AWS identity, with
 * either executor). Finds the IAM role EKS Pod Identity maps the pod's ServiceAccount to (the IRSA role comes
 * from the inspection), and puts on a role, or removes from it, the inline policy that denies every session
 * issued before T (domain/revocation.ts). Only roles tagged pod-responder.io/revocable=true that carry a permissions
 * boundary (which caps whatever an inline policy could grant them) are touched; only
 * policies that are provably ours (name prefix and content) are ever deleted.
 */
import { DescribePodIdentityAssociationCommand, ListPodIdentityAssociationsCommand } from '@aws-sdk/client-eks';
import {
  DeleteRolePolicyCommand,
  GetRoleCommand,
  GetRolePolicyCommand,
  ListRolePoliciesCommand,
  PutRolePolicyCommand,
} from '@aws-sdk/client-iam';
import { ApplicationFailure, log } from '@temporalio/activity';
import {
  boundaryCommand,
  optInCommand,
  parseRoleArn,
  REVOCABLE_TAG,
  REVOCATION_PREFIX,
  revocationDocument,
  revokedBefore,
  spentRevocations,
  type RoleArnParts,
} from '../domain/revocation.js';
import {
  awsClientFactory,
  awsCode,
  classified,
  ignoring,
  type AwsClients,
  type AwsConfig,
} from './eks-lambda/clients.js';

export interface PodIdentityLookup {
  /** The EKS cluster's name: the alert's cluster name. */
  cluster: string;
  region: string;
  namespace: string;
  serviceAccount: string;
}

export interface PodIdentityRole {
  /** Null when no association maps the ServiceAccount (or the cluster is not an EKS cluster in that region). */
  roleArn: string | null;
  associationId?: string;
  /** Cross-account chaining: the role the pod's session assumes next (not revoked here: another account's). */
  targetRoleArn?: string;
  detail: string;
}

export interface RevokeInput {
  incidentId: string;
  roleArn: string;
  policyName: string;
  /** T, decided in the workflow: a retry writes the identical document. */
  notBefore: string;
}

export interface RevokeResult {
  /** refused: the role is not opted in, not in this account, or a policy of that name is not ours. */
  state: 'revoked' | 'refused';
  detail: string;
  /** Spent revocation policies of ours removed from the role on the way (T more than 12 h past). */
  pruned: string[];
}

export interface ReleaseInput {
  roleArn: string;
  policyName: string;
  notBefore: string;
}

export interface ReleaseResult {
  /** left-intact: the policy under our name is not the one this incident put, so it was not deleted. */
  state: 'released' | 'left-intact';
  detail: string;
}

/** IAM is global: any region's clients reach it. */
const IAM_REGION = 'us-east-1';

export function createCredentialsActivities(
  config: AwsConfig,
  clients: (region: string) => AwsClients = awsClientFactory(config),
) {
  const activities = {
    async findPodIdentityRole(p: PodIdentityLookup): Promise<PodIdentityRole> {
      const { eks } = clients(p.region);
      const sa = `${p.namespace}/${p.serviceAccount}`;
      let associationId: string | undefined;
      try {
        let nextToken: string | undefined;
        do {
          const page = await eks.send(
            new ListPodIdentityAssociationsCommand({
              clusterName: p.cluster,
              namespace: p.namespace,
              serviceAccount: p.serviceAccount,
              nextToken,
            }),
          );
          associationId ??= page.associations?.find(
            (a) => a.namespace === p.namespace && a.serviceAccount === p.serviceAccount,
          )?.associationId;
          nextToken = page.nextToken;
        } while (nextToken && !associationId);
      } catch (err) {
        // Not an EKS cluster (a kubeconfig context the alerts call by this name): IRSA was the only way.
        if (awsCode(err) === 'ResourceNotFoundException')
          return {
            roleArn: null,
            detail: `no EKS cluster ${p.cluster} in ${p.region}, so no EKS Pod Identity association`,
          };
        throw err;
      }
      if (!associationId)
        return {
          roleArn: null,
          detail: `no EKS Pod Identity association for service account ${sa} in cluster ${p.cluster}`,
        };
      const { association } = await eks.send(
        new DescribePodIdentityAssociationCommand({ clusterName: p.cluster, associationId }),
      );
      if (!association?.roleArn)
        return { roleArn: null, detail: `EKS Pod Identity association ${associationId} names no role` };
      log.info('pod identity association found', {
        cluster: p.cluster,
        serviceAccount: sa,
        associationId,
        roleArn: association.roleArn,
      });
      return {
        roleArn: association.roleArn,
        associationId,
        ...(association.targetRoleArn ? { targetRoleArn: association.targetRoleArn } : {}),
        detail: `EKS Pod Identity association ${associationId} maps ${sa} to ${association.roleArn}`,
      };
    },

    async revokeRoleSessions(p: RevokeInput): Promise<RevokeResult> {
      const { iam } = clients(IAM_REGION);
      const refused = (detail: string): RevokeResult => {
        log.warn('credentials revocation refused', { roleArn: p.roleArn, incidentId: p.incidentId, detail });
        return { state: 'refused', detail, pruned: [] };
      };
      const arn = parseRoleArn(p.roleArn);
      if (!arn) return refused(`${p.roleArn} is not an IAM role ARN: nothing revoked`);
      const checked = await optedIn(iam, p.roleArn, arn);
      if (checked) return refused(checked);

      const names = await inlinePolicies(iam, arn.name);
      const documents = new Map<string, string>();
      for (const name of names.filter((n) => n.startsWith(REVOCATION_PREFIX))) {
        const doc = await policyDocument(iam, arn.name, name);
        if (doc !== null) documents.set(name, doc);
      }
      const mine = documents.get(p.policyName);
      if (mine !== undefined && revokedBefore(p.policyName, mine) === null) {
        return refused(
          `role ${arn.name} has an inline policy named ${p.policyName} that is not a revocation of ours: left intact, nothing revoked`,
        );
      }
      // Spent ones first: the room they free may be what the new one needs (10,240 characters for all of a role's inline policies).
      const pruned: string[] = [];
      for (const name of spentRevocations(
        [...documents].map(([name, document]) => ({ name, document })),
        Date.now(),
        p.policyName,
      )) {
        await ignoring(['NoSuchEntityException'], () =>
          iam.send(new DeleteRolePolicyCommand({ RoleName: arn.name, PolicyName: name })),
        );
        pruned.push(name);
      }
      if (pruned.length) log.info('spent revocation policies pruned', { role: arn.name, pruned });

      if (mine === undefined || revokedBefore(p.policyName, mine) !== p.notBefore) {
        try {
          await iam.send(
            new PutRolePolicyCommand({
              RoleName: arn.name,
              PolicyName: p.policyName,
              PolicyDocument: revocationDocument(p.notBefore),
            }),
          );
        } catch (err) {
          if (awsCode(err) === 'LimitExceededException' || awsCode(err) === 'LimitExceeded') {
            throw ApplicationFailure.nonRetryable(
              `IAM refused the revocation policy on role ${arn.name}: its inline policies would exceed IAM's quota of 10,240 characters per role ` +
                `(${pruned.length} spent revocation policies of ours were pruned; the rest are not ours to remove). Shrink or remove an inline policy of the role, ` +
                `or deny its older sessions by hand (IAM console: Roles > ${arn.name} > Revoke active sessions). AWS said: ${(err as Error).message}`,
              'LimitExceeded',
            );
          }
          throw err;
        }
      }
      log.info('role sessions revoked', {
        role: p.roleArn,
        policy: p.policyName,
        notBefore: p.notBefore,
        incidentId: p.incidentId,
      });
      return {
        state: 'revoked',
        detail: `inline policy ${p.policyName} on role ${arn.name} denies every session issued before ${p.notBefore}${pruned.length ? `; pruned spent revocations: ${pruned.join(', ')}` : ''}`,
        pruned,
      };
    },

    async releaseRoleRevocation(p: ReleaseInput): Promise<ReleaseResult> {
      const { iam } = clients(IAM_REGION);
      const arn = parseRoleArn(p.roleArn);
      if (!arn) return { state: 'left-intact', detail: `${p.roleArn} is not an IAM role ARN` };
      const doc = await policyDocument(iam, arn.name, p.policyName);
      if (doc === null)
        return { state: 'released', detail: `policy ${p.policyName} was already gone from role ${arn.name}` };
      // Ours by name and content, and this incident's T: a policy someone edited since is not ours to delete.
      const t = revokedBefore(p.policyName, doc);
      if (t !== p.notBefore) {
        return {
          state: 'left-intact',
          detail: `policy ${p.policyName} on role ${arn.name} is not the revocation this incident put (${t ? `it denies sessions before ${t}` : 'its content differs'}): left intact`,
        };
      }
      await ignoring(['NoSuchEntityException'], () =>
        iam.send(new DeleteRolePolicyCommand({ RoleName: arn.name, PolicyName: p.policyName })),
      );
      log.info('role revocation released', { role: p.roleArn, policy: p.policyName });
      return { state: 'released', detail: `policy ${p.policyName} deleted from role ${arn.name}` };
    },
  };
  return Object.fromEntries(
    Object.entries(activities).map(([k, fn]) => [k, classified(k, fn as (...a: unknown[]) => Promise<unknown>)]),
  ) as typeof activities;
}

/** Why the role may not be revoked (null: it may): not in this account, not found, or not tagged. */
async function optedIn(iam: AwsClients['iam'], roleArn: string, arn: RoleArnParts): Promise<string | null> {
  const optIn = `tag it to opt in: ${optInCommand(arn.name)}`;
  let role;
  try {
    role = (await iam.send(new GetRoleCommand({ RoleName: arn.name }))).Role;
  } catch (err) {
    if (awsCode(err) === 'NoSuchEntityException')
      return `role ${arn.name} does not exist in this account (${roleArn}): nothing revoked`;
    // deploy/aws/worker-policy.json lets the worker read only opted-in roles: a denial means the tag is missing (or the grant).
    if (awsCode(err) === 'AccessDenied' || awsCode(err) === 'AccessDeniedException') {
      return `the worker may not read role ${arn.name} (AccessDenied): its IAM policy allows only roles tagged ${REVOCABLE_TAG.key}=${REVOCABLE_TAG.value}; ${optIn}`;
    }
    throw err;
  }
  // A role of the same name in the worker's account is not the one another account's ARN names.
  if (role?.Arn !== roleArn)
    return `the worker's account holds ${role?.Arn ?? 'no such role'}, not ${roleArn}: a role in another account is not revoked`;
  const tag = role.Tags?.find((t) => t.Key === REVOCABLE_TAG.key)?.Value;
  if (tag !== REVOCABLE_TAG.value) {
    return `role ${arn.name} is not opted in (tag ${REVOCABLE_TAG.key}=${REVOCABLE_TAG.value}${tag === undefined ? ' absent' : `, found "${tag}"`}): not touched; ${optIn}`;
  }
  // IAM cannot limit what an inline policy says: the role's own boundary is what caps what the worker's credentials
  // could write there (deploy/aws/worker-policy.json demands it too, so this only says why before IAM refuses).
  if (!role.PermissionsBoundary?.PermissionsBoundaryArn) {
    return `role ${arn.name} is opted in but has no permissions boundary: not touched; an opted-in role must carry one, which caps what any inline policy can grant it (${boundaryCommand(arn.name)})`;
  }
  return null;
}

async function inlinePolicies(iam: AwsClients['iam'], roleName: string): Promise<string[]> {
  const names: string[] = [];
  let marker: string | undefined;
  do {
    const page = await iam.send(new ListRolePoliciesCommand({ RoleName: roleName, Marker: marker }));
    names.push(...(page.PolicyNames ?? []));
    marker = page.IsTruncated ? page.Marker : undefined;
  } while (marker);
  return names;
}

/** The inline policy's document as IAM holds it; null when the policy (or the role) is gone. */
async function policyDocument(iam: AwsClients['iam'], roleName: string, policyName: string): Promise<string | null> {
  const out = await ignoring(['NoSuchEntityException'], () =>
    iam.send(new GetRolePolicyCommand({ RoleName: roleName, PolicyName: policyName })),
  );
  return out?.PolicyDocument ?? null;
}
