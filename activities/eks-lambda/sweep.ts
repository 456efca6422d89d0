import { DescribeAccessEntryCommand, ListAccessEntriesCommand, ListClustersCommand } from '@aws-sdk/client-eks';
import { ListRolesCommand, ListRoleTagsCommand } from '@aws-sdk/client-iam';
import { ListFunctionsCommand, ListTagsCommand } from '@aws-sdk/client-lambda';
import {
  CLUSTER_SG_TAG,
  INCIDENT_TAG,
  INSTALLATION_TAG,
  MANAGED_TAG,
  RESOURCE_PREFIX,
  tagMap,
} from '../../domain/aws-resources.js';
import { awsCode, type AwsClients } from './clients.js';
import { describeGroups, SECURITY_GROUP_PAGE, type Listing } from './executor-group.js';

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

/** Page sizes of the listings (each service's largest); tests pass smaller ones to see every page followed. */
export interface PageSizes {
  securityGroups: number;
  clusters: number;
  accessEntries: number;
  functions: number;
  roles: number;
}
export const LARGEST_PAGES: PageSizes = {
  securityGroups: SECURITY_GROUP_PAGE,
  clusters: 100,
  accessEntries: 100,
  functions: 50,
  roles: 1000,
};

/**
 * This installation's tagged resources in these regions, every page of every listing. A listing that fails is
 * reported in `errors` (what it was, and why) and the rest goes on: a region or cluster that could not be listed
 * is not taken for one with nothing in it.
 */
export async function listTaggedResources(
  aws: (region: string) => AwsClients,
  regions: string[],
  installationId: string,
  pages: PageSizes = LARGEST_PAGES,
): Promise<Listing<TaggedResource>> {
  /** The incident (and whether the tags predate installations) if the tags say the resource is this installation's. */
  const ours = (
    tags: Record<string, string | undefined> | undefined,
  ): { incidentId: string; legacy?: true } | undefined => {
    const incidentId = tags?.[INCIDENT_TAG];
    if (tags?.[MANAGED_TAG] !== 'true' || !incidentId) return undefined;
    const installation = tags[INSTALLATION_TAG];
    if (installation === undefined) return { incidentId, legacy: true };
    return installation === installationId ? { incidentId } : undefined;
  };
  const found: TaggedResource[] = [];
  const errors: string[] = [];
  const listing = async (what: string, list: () => Promise<void>) => {
    try {
      await list();
    } catch (err) {
      errors.push(`${what}: ${awsCode(err) || 'Error'}: ${(err as Error).message}`);
    }
  };
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
    await listing(`${region}: listing functions`, async () => {
      let marker: string | undefined;
      do {
        const page = await c.lambda.send(new ListFunctionsCommand({ Marker: marker, MaxItems: pages.functions }));
        for (const f of page.Functions ?? []) {
          if (!f.FunctionName?.startsWith(RESOURCE_PREFIX)) continue;
          const owner = ours(
            (await tagsOrGone(() => c.lambda.send(new ListTagsCommand({ Resource: f.FunctionArn }))))?.Tags,
          );
          if (owner) found.push({ kind: 'function', region, name: f.FunctionName, ...owner });
        }
        marker = page.NextMarker;
      } while (marker);
    });

    await listing(`${region}: listing security groups`, async () => {
      for (const g of await describeGroups(
        c,
        [{ Name: `tag:${MANAGED_TAG}`, Values: ['true'] }],
        pages.securityGroups,
      )) {
        const tags = tagMap(g.Tags);
        const owner = ours(tags);
        if (owner && g.GroupId && g.GroupName && g.VpcId) {
          found.push({
            kind: 'security-group',
            region,
            ...owner,
            name: g.GroupName,
            groupId: g.GroupId,
            vpcId: g.VpcId,
            clusterSecurityGroupId: tags[CLUSTER_SG_TAG] ?? '',
          });
        }
      }
    });

    const clusters: string[] = [];
    await listing(`${region}: listing EKS clusters`, async () => {
      let nextToken: string | undefined;
      do {
        const page = await c.eks.send(new ListClustersCommand({ maxResults: pages.clusters, nextToken }));
        clusters.push(...(page.clusters ?? []));
        nextToken = page.nextToken;
      } while (nextToken);
    });
    for (const clusterName of clusters) {
      await listing(`${region}: listing access entries of EKS cluster ${clusterName}`, async () => {
        let nextToken: string | undefined;
        do {
          const page = await notOnConfigMapClusters(() =>
            c.eks.send(new ListAccessEntriesCommand({ clusterName, maxResults: pages.accessEntries, nextToken })),
          );
          for (const principalArn of page.accessEntries ?? []) {
            if (!principalArn.includes(`:role/${RESOURCE_PREFIX}`)) continue;
            const described = await tagsOrGone(() =>
              c.eks.send(new DescribeAccessEntryCommand({ clusterName, principalArn })),
            );
            const owner = ours(described?.accessEntry?.tags);
            if (owner) found.push({ kind: 'access-entry', region, clusterName, principalArn, ...owner });
          }
          nextToken = page.nextToken;
        } while (nextToken);
      });
    }
  }
  const iam = aws(regions[0] ?? 'us-east-1').iam;
  await listing('listing IAM roles', async () => {
    let marker: string | undefined;
    do {
      const page = await iam.send(new ListRolesCommand({ Marker: marker, MaxItems: pages.roles }));
      for (const r of page.Roles ?? []) {
        if (!r.RoleName?.startsWith(RESOURCE_PREFIX)) continue;
        const listed = await tagsOrGone(() => iam.send(new ListRoleTagsCommand({ RoleName: r.RoleName })));
        const owner = listed && ours(tagMap(listed.Tags));
        if (owner) found.push({ kind: 'iam-role', region: 'global', name: r.RoleName, ...owner });
      }
      marker = page.IsTruncated ? page.Marker : undefined;
    } while (marker);
  });
  return { items: found, errors };
}

/**
 * A cluster that does not accept access entries (authentication mode CONFIG_MAP) has none of ours: the EKS
 * executor refuses such clusters before it makes anything. EKS answers its listing with this error.
 */
async function notOnConfigMapClusters<T extends { accessEntries?: string[]; nextToken?: string }>(
  list: () => Promise<T>,
): Promise<T | { accessEntries: string[]; nextToken?: undefined }> {
  try {
    return await list();
  } catch (err) {
    if (awsCode(err) === 'InvalidRequestException' && /authentication mode/i.test((err as Error).message))
      return { accessEntries: [] };
    throw err;
  }
}
