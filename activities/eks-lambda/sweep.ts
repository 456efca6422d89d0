import { DescribeSecurityGroupsCommand } from '@aws-sdk/client-ec2';
import { DescribeAccessEntryCommand, ListAccessEntriesCommand, ListClustersCommand } from '@aws-sdk/client-eks';
import { ListRolesCommand, ListRoleTagsCommand } from '@aws-sdk/client-iam';
import { ListFunctionsCommand, ListTagsCommand } from '@aws-sdk/client-lambda';
import { CLUSTER_SG_TAG, INCIDENT_TAG, INSTALLATION_TAG, MANAGED_TAG, RESOURCE_PREFIX, tagMap } from '../../domain/aws-resources.js';
import type { AwsClients } from './clients.js';

/**
 * A resource carrying our tags: this installation's, or tagged before installations existed (`legacy`).
 * Untagged resources and other installations' are never listed, so never removed.
 */
export type TaggedResource = { incidentId: string; region: string; legacy?: true } & (
  | { kind: 'function'; name: string }
  | { kind: 'access-entry'; clusterName: string; principalArn: string }
  | { kind: 'security-group'; name: string; groupId: string; vpcId: string; clusterSecurityGroupId: string }
  | { kind: 'iam-role'; name: string }
);

export async function listTaggedResources(aws: (region: string) => AwsClients, regions: string[], installationId: string): Promise<TaggedResource[]> {
  /** The incident (and whether the tags predate installations) if the tags say the resource is this installation's. */
  const ours = (tags: Record<string, string | undefined> | undefined): { incidentId: string; legacy?: true } | undefined => {
    const incidentId = tags?.[INCIDENT_TAG];
    if (tags?.[MANAGED_TAG] !== 'true' || !incidentId) return undefined;
    const installation = tags[INSTALLATION_TAG];
    if (installation === undefined) return { incidentId, legacy: true };
    return installation === installationId ? { incidentId } : undefined;
  };
  const found: TaggedResource[] = [];
  /**
   * The tags of a resource listed a moment ago, or undefined once it is gone: incidents remove their own
   * resources while the sweeper lists, and a resource that vanished in between is nothing to sweep.
   */
  const tagsOrGone = async <T>(read: () => Promise<T>): Promise<T | undefined> => {
    try {
      return await read();
    } catch (err) {
      const name = (err as { name?: string }).name;
      if (name === 'NoSuchEntityException' || name === 'ResourceNotFoundException') return undefined;
      throw err;
    }
  };
  for (const region of regions) {
    const c = aws(region);
    let marker: string | undefined;
    do {
      const page = await c.lambda.send(new ListFunctionsCommand({ Marker: marker }));
      for (const f of page.Functions ?? []) {
        if (!f.FunctionName?.startsWith(RESOURCE_PREFIX)) continue;
        const owner = ours((await tagsOrGone(() => c.lambda.send(new ListTagsCommand({ Resource: f.FunctionArn }))))?.Tags);
        if (owner) found.push({ kind: 'function', region, name: f.FunctionName, ...owner });
      }
      marker = page.NextMarker;
    } while (marker);

    const groups = await c.ec2.send(new DescribeSecurityGroupsCommand({ Filters: [{ Name: `tag:${MANAGED_TAG}`, Values: ['true'] }] }));
    for (const g of groups.SecurityGroups ?? []) {
      const tags = tagMap(g.Tags);
      const owner = ours(tags);
      if (owner && g.GroupId && g.GroupName && g.VpcId) {
        found.push({ kind: 'security-group', region, ...owner, name: g.GroupName, groupId: g.GroupId, vpcId: g.VpcId, clusterSecurityGroupId: tags[CLUSTER_SG_TAG] ?? '' });
      }
    }

    for (const clusterName of (await c.eks.send(new ListClustersCommand({}))).clusters ?? []) {
      const entries = await c.eks.send(new ListAccessEntriesCommand({ clusterName })).catch(() => ({ accessEntries: [] as string[] }));
      for (const principalArn of entries.accessEntries ?? []) {
        if (!principalArn.includes(`:role/${RESOURCE_PREFIX}`)) continue;
        const described = await tagsOrGone(() => c.eks.send(new DescribeAccessEntryCommand({ clusterName, principalArn })));
        const owner = ours(described?.accessEntry?.tags);
        if (owner) found.push({ kind: 'access-entry', region, clusterName, principalArn, ...owner });
      }
    }
  }
  const iam = aws(regions[0] ?? 'us-east-1').iam;
  let marker: string | undefined;
  do {
    const page = await iam.send(new ListRolesCommand({ Marker: marker }));
    for (const r of page.Roles ?? []) {
      if (!r.RoleName?.startsWith(RESOURCE_PREFIX)) continue;
      const listed = await tagsOrGone(() => iam.send(new ListRoleTagsCommand({ RoleName: r.RoleName })));
      const owner = listed && ours(tagMap(listed.Tags));
      if (owner) found.push({ kind: 'iam-role', region: 'global', name: r.RoleName, ...owner });
    }
    marker = page.IsTruncated ? page.Marker : undefined;
  } while (marker);
  return found;
}
