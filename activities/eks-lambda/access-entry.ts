import {
  CreateAccessEntryCommand,
  DeleteAccessEntryCommand,
  DescribeAccessEntryCommand,
  type AccessEntry,
} from '@aws-sdk/client-eks';
import { GetRoleCommand } from '@aws-sdk/client-iam';
import { log } from '@temporalio/activity';
import { ownerTags, remediatorGroups, type Owner } from '../../domain/aws-resources.js';
import { awsCode, ignoring, type AwsClients } from './clients.js';
import { leaveIfForeign, refuseIfForeign, type Removal } from './ownership.js';

async function describeEntry(
  aws: AwsClients,
  clusterName: string,
  principalArn: string,
): Promise<AccessEntry | undefined> {
  const out = await ignoring(['ResourceNotFoundException'], () =>
    aws.eks.send(new DescribeAccessEntryCommand({ clusterName, principalArn })),
  );
  return out?.accessEntry;
}

/**
 * Why an entry of ours cannot be kept, if it cannot: EKS binds an entry to the role's unique ID, not its name,
 * so one made before the role was (re)created authenticates nobody; one with other groups grants the wrong thing.
 */
async function staleBecause(
  aws: AwsClients,
  entry: AccessEntry,
  roleName: string,
  groups: string[],
): Promise<string | undefined> {
  const have = [...(entry.kubernetesGroups ?? [])].sort().join(',');
  if (have !== [...groups].sort().join(',')) return `it maps to groups [${have}], not [${groups.join(',')}]`;
  const { Role } = await aws.iam.send(new GetRoleCommand({ RoleName: roleName }));
  if (entry.createdAt && Role?.CreateDate && entry.createdAt.getTime() < Role.CreateDate.getTime())
    return 'it predates its role';
  return undefined;
}

/**
 * Maps the function's role to the remediator groups of the incident's namespace: what it may do there is what
 * the cluster owner bound to them (deploy/kubernetes/), never more. No access policy is associated.
 */
export async function createAccessEntry(
  aws: AwsClients,
  p: { clusterName: string; roleArn: string; namespace: string; owner: Owner },
): Promise<void> {
  const groups = remediatorGroups(p.namespace);
  const principal = { clusterName: p.clusterName, principalArn: p.roleArn };
  const create = () =>
    aws.eks.send(
      new CreateAccessEntryCommand({
        ...principal,
        type: 'STANDARD',
        kubernetesGroups: groups,
        tags: ownerTags(p.owner),
      }),
    );
  try {
    await create();
  } catch (err) {
    if (awsCode(err) !== 'ResourceInUseException') throw err;
    // An entry for our role exists: ours from an earlier attempt, or not ours at all.
    const entry = await describeEntry(aws, p.clusterName, p.roleArn);
    if (!entry) return void (await create()); // deleted in between: ours to make
    refuseIfForeign(`access entry for ${p.roleArn} on ${p.clusterName}`, entry.tags, p.owner);
    const stale = await staleBecause(aws, entry, p.roleArn.slice(p.roleArn.lastIndexOf('/') + 1), groups);
    if (stale) {
      log.warn('recreating our access entry', { ...principal, why: stale });
      await ignoring(['ResourceNotFoundException'], () => aws.eks.send(new DeleteAccessEntryCommand(principal)));
      await create();
    }
  }
}

/** Deleting the entry also removes its policy associations. One not ours is left intact. */
export async function deleteAccessEntry(
  aws: AwsClients,
  p: { clusterName: string; roleArn: string },
  owner: Owner,
): Promise<Removal> {
  const entry = await describeEntry(aws, p.clusterName, p.roleArn);
  if (!entry) return { deleted: false };
  const foreign = leaveIfForeign(`access entry for ${p.roleArn} on ${p.clusterName}`, entry.tags, owner);
  if (foreign) return foreign;
  const out = await ignoring(['ResourceNotFoundException'], () =>
    aws.eks.send(new DeleteAccessEntryCommand({ clusterName: p.clusterName, principalArn: p.roleArn })),
  );
  return { deleted: out !== undefined };
}
