import { DescribeSecurityGroupsCommand } from '@aws-sdk/client-ec2';
import { DescribeAccessEntryCommand, ListAccessEntriesCommand, ListClustersCommand } from '@aws-sdk/client-eks';
import { ListRolesCommand, ListRoleTagsCommand } from '@aws-sdk/client-iam';
import { ListFunctionsCommand, ListTagsCommand } from '@aws-sdk/client-lambda';
import type { Client } from '@temporalio/client';
import { CLUSTER_SG_TAG, INCIDENT_TAG, MANAGED_TAG, RESOURCE_PREFIX } from '../../domain/aws-resources.js';
import type { AwsClients } from './clients.js';

/** A resource carrying our tags. Untagged resources are never listed, so never removed. */
export type TaggedResource = { incidentId: string; region: string } & (
  | { kind: 'function'; name: string }
  | { kind: 'access-entry'; clusterName: string; principalArn: string }
  | { kind: 'security-group'; name: string; groupId: string; vpcId: string; clusterSecurityGroupId: string }
  | { kind: 'iam-role'; name: string }
);

const ours = (tags: Record<string, string | undefined> | undefined): string | undefined =>
  tags?.[MANAGED_TAG] === 'true' ? tags[INCIDENT_TAG] : undefined;
const tagMap = (list: { Key?: string; Value?: string }[] | undefined) => Object.fromEntries((list ?? []).map((t) => [t.Key ?? '', t.Value]));

export async function listTaggedResources(aws: (region: string) => AwsClients, regions: string[]): Promise<TaggedResource[]> {
  const found: TaggedResource[] = [];
  for (const region of regions) {
    const c = aws(region);
    let marker: string | undefined;
    do {
      const page = await c.lambda.send(new ListFunctionsCommand({ Marker: marker }));
      for (const f of page.Functions ?? []) {
        if (!f.FunctionName?.startsWith(RESOURCE_PREFIX)) continue;
        const incidentId = ours((await c.lambda.send(new ListTagsCommand({ Resource: f.FunctionArn }))).Tags);
        if (incidentId) found.push({ kind: 'function', region, name: f.FunctionName, incidentId });
      }
      marker = page.NextMarker;
    } while (marker);

    const groups = await c.ec2.send(new DescribeSecurityGroupsCommand({ Filters: [{ Name: `tag:${MANAGED_TAG}`, Values: ['true'] }] }));
    for (const g of groups.SecurityGroups ?? []) {
      const tags = tagMap(g.Tags);
      const incidentId = ours(tags);
      if (incidentId && g.GroupId && g.GroupName && g.VpcId) {
        found.push({ kind: 'security-group', region, incidentId, name: g.GroupName, groupId: g.GroupId, vpcId: g.VpcId, clusterSecurityGroupId: tags[CLUSTER_SG_TAG] ?? '' });
      }
    }

    for (const clusterName of (await c.eks.send(new ListClustersCommand({}))).clusters ?? []) {
      const entries = await c.eks.send(new ListAccessEntriesCommand({ clusterName })).catch(() => ({ accessEntries: [] as string[] }));
      for (const principalArn of entries.accessEntries ?? []) {
        if (!principalArn.includes(`:role/${RESOURCE_PREFIX}`)) continue;
        const { accessEntry } = await c.eks.send(new DescribeAccessEntryCommand({ clusterName, principalArn }));
        const incidentId = ours(accessEntry?.tags);
        if (incidentId) found.push({ kind: 'access-entry', region, clusterName, principalArn, incidentId });
      }
    }
  }
  const iam = aws(regions[0] ?? 'us-east-1').iam;
  let marker: string | undefined;
  do {
    const page = await iam.send(new ListRolesCommand({ Marker: marker }));
    for (const r of page.Roles ?? []) {
      if (!r.RoleName?.startsWith(RESOURCE_PREFIX)) continue;
      const incidentId = ours(tagMap((await iam.send(new ListRoleTagsCommand({ RoleName: r.RoleName }))).Tags));
      if (incidentId && r.RoleName) found.push({ kind: 'iam-role', region: 'global', name: r.RoleName, incidentId });
    }
    marker = page.IsTruncated ? page.Marker : undefined;
  } while (marker);
  return found;
}

/** Incidents whose workflow is no longer running (or never existed here): their resources are orphans. */
export async function closedIncidents(client: Client, incidentIds: string[]): Promise<string[]> {
  const closed: string[] = [];
  for (const id of new Set(incidentIds)) {
    try {
      const d = await client.workflow.getHandle(id).describe();
      if (d.status.name !== 'RUNNING') closed.push(id);
    } catch (err) {
      if ((err as Error).name === 'WorkflowNotFoundError') closed.push(id);
      else throw err;
    }
  }
  return closed;
}
