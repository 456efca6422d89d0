/**
 * The sweeper and the clusters' executor groups, through moto behind the front (which models Lambda's network
 * interfaces and what a function's security groups let it reach), the dev server and a worker of its own
 * namespace: a group is changed only when it will be deleted, every listing is followed to its last page, and a
 * listing that fails is reported, not taken for "nothing there".
 */
import {
  CreateSecurityGroupCommand,
  CreateTagsCommand,
  DeleteSecurityGroupCommand,
  DescribeSecurityGroupsCommand,
} from '@aws-sdk/client-ec2';
import { CreateAccessEntryCommand, DeleteAccessEntryCommand, DescribeClusterCommand } from '@aws-sdk/client-eks';
import { CreateRoleCommand, DeleteRoleCommand } from '@aws-sdk/client-iam';
import {
  CreateFunctionCommand,
  DeleteFunctionCommand,
  GetFunctionConfigurationCommand,
  InvokeCommand,
} from '@aws-sdk/client-lambda';
import { randomBytes } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { awsClientFactory } from '../../activities/eks-lambda/clients.js';
import { deleteExecutorGroup, listExecutorGroups } from '../../activities/eks-lambda/executor-group.js';
import { listTaggedResources } from '../../activities/eks-lambda/sweep.js';
import { trustPolicy } from '../../activities/eks-lambda/role.js';
import {
  CLUSTER_SG_TAG,
  executorGroupTags,
  LAST_USED_TAG,
  ownerTags,
  resourceNames,
  tagList,
} from '../../domain/aws-resources.js';
import { buildLambdaZip } from '../../lambda/build.js';
import { bundleLambdaZip } from '../aws/lambda-zip.js';
import { awsStack, dropExecutorGroup, ensureExecutorGroupFor, executorGroupOf } from '../support/aws.js';
import { startResponder, type Responder } from '../support/responder.js';
import { ensureNamespace } from '../support/temporal-namespace.js';
import { until } from '../support/until.js';

const aws = awsStack();
const INSTALLATION = `sweep-${randomBytes(3).toString('hex')}`;
const clients = awsClientFactory({ endpoint: aws.endpoint });
let r: Responder;
let probeZip: Uint8Array;

beforeAll(async () => {
  // Its own namespace: no incident of another test file runs on the cluster there, so its groups are idle.
  const namespace = `pod-responder-${INSTALLATION}`;
  await ensureNamespace(namespace);
  const { path: lambdaZip } = await buildLambdaZip(
    path.join(mkdtempSync(path.join(tmpdir(), 'pod-responder-zip-')), 'remediation.zip'),
  );
  r = await startResponder({
    executor: 'eks-lambda',
    namespace,
    eks: { endpoint: aws.endpoint, lambdaZip, installationId: INSTALLATION },
  });
  probeZip = await bundleLambdaZip(fileURLToPath(new URL('../aws/fixtures/kube-probe.ts', import.meta.url)), {
    external: ['@aws-sdk/*'],
  });
});
afterAll(async () => {
  await r?.close();
  clients.cache.close();
});
afterEach(async () => aws.faults.clear());

const group = () =>
  ensureExecutorGroupFor(aws.clients, INSTALLATION, aws.clusters.local, aws.vpcId, aws.clusterSecurityGroupId);
const dropGroup = () =>
  dropExecutorGroup(aws.clients, INSTALLATION, aws.clusters.local, aws.vpcId, aws.clusterSecurityGroupId);
const stampLastUsed = (groupId: string, at: Date) =>
  aws.clients.ec2.send(
    new CreateTagsCommand({ Resources: [groupId], Tags: [{ Key: LAST_USED_TAG, Value: at.toISOString() }] }),
  );
const hoursAgo = (h: number) => new Date(Date.now() - h * 3_600_000);
async function clusterGroupAdmits(groupId: string): Promise<boolean> {
  const { SecurityGroups } = await aws.clients.ec2.send(
    new DescribeSecurityGroupsCommand({ GroupIds: [aws.clusterSecurityGroupId] }),
  );
  return (SecurityGroups?.[0]?.IpPermissions ?? []).some(
    (p) => p.FromPort === 443 && p.UserIdGroupPairs?.some((u) => u.GroupId === groupId),
  );
}

/** A function in the group (the stack's reach probe), as an incident's would be while it runs. */
async function functionIn(
  groupId: string,
): Promise<{ name: string; reachCluster: () => Promise<string>; remove: () => Promise<void> }> {
  const name = resourceNames(`sweep-probe-${randomBytes(3).toString('hex')}`, 1, INSTALLATION).base;
  const { Role } = await aws.clients.iam.send(
    new CreateRoleCommand({ RoleName: name, AssumeRolePolicyDocument: trustPolicy(aws.accountId) }),
  );
  await aws.faults.functionPendingSeconds(0, name);
  await aws.clients.lambda.send(
    new CreateFunctionCommand({
      FunctionName: name,
      Runtime: 'nodejs22.x',
      Role: Role!.Arn!,
      Handler: 'index.reach',
      Code: { ZipFile: probeZip },
      Timeout: 20,
      VpcConfig: { SubnetIds: aws.subnetIds, SecurityGroupIds: [groupId] },
    }),
  );
  await until(
    `function ${name} Active`,
    async () =>
      (await aws.clients.lambda.send(new GetFunctionConfigurationCommand({ FunctionName: name }))).State === 'Active',
    20_000,
  );
  const { cluster } = await aws.clients.eks.send(new DescribeClusterCommand({ name: aws.clusters.local }));
  return {
    name,
    reachCluster: async () => {
      const event = {
        endpoint: cluster!.endpoint!,
        certificateAuthority: cluster!.certificateAuthority!.data!,
        bucket: 'none',
        key: 'none',
        timeoutMs: 3000,
      };
      const res = await aws.clients.lambda.send(
        new InvokeCommand({ FunctionName: name, Payload: JSON.stringify(event) }),
      );
      return (JSON.parse(Buffer.from(res.Payload ?? []).toString('utf8')) as { cluster: string }).cluster;
    },
    remove: async () => {
      await aws.clients.lambda.send(new DeleteFunctionCommand({ FunctionName: name }));
      await aws.clients.iam.send(new DeleteRoleCommand({ RoleName: name }));
    },
  };
}

describe('the executor group sweep', () => {
  it('a group idle by its tag but held by a running function: nothing is revoked, and the function keeps the API', async () => {
    const groupId = await group();
    const fn = await functionIn(groupId);
    try {
      await stampLastUsed(groupId, hoursAgo(2));
      expect(await fn.reachCluster()).toMatch(/^HTTP \d{3}$/);
      const report = await r.sweep({ regions: [aws.region], executorGroupIdleMinutes: 60 });
      const ours = report.executorGroups!.filter((g) => g.groupId === groupId);
      expect(ours.map((g) => g.status)).toEqual(['in-use']);
      expect(ours[0]!.error).toMatch(
        /is held by network interface eni-\w+ \(lambda\); left with its rule on the cluster group$/,
      );
      expect(await clusterGroupAdmits(groupId)).toBe(true);
      expect(await fn.reachCluster()).toMatch(/^HTTP \d{3}$/);
    } finally {
      await fn.remove();
    }
    // Once Lambda lets go of it, the next sweep removes it, its rule on the cluster group first.
    await until(
      'the group swept',
      async () => {
        const report = await r.sweep({ regions: [aws.region], executorGroupIdleMinutes: 60 });
        return report.executorGroups!.some((g) => g.groupId === groupId && g.status === 'done');
      },
      30_000,
    );
    expect(await clusterGroupAdmits(groupId)).toBe(false);
    expect((await executorGroupOf(aws.clients, INSTALLATION, aws.clusters.local, aws.vpcId)).groupId).toBeUndefined();
  });

  it('a group used again after the sweep listed it: read again, it is left with its rule', async () => {
    const groupId = await group();
    await stampLastUsed(groupId, hoursAgo(2));
    const listed = (await listExecutorGroups(clients, [aws.region], INSTALLATION)).items.find(
      (g) => g.groupId === groupId,
    )!;
    expect(listed.lastUsed).toBeDefined();
    await group(); // an incident starts on the cluster: it stamps the group, then deploys its function
    const removal = await deleteExecutorGroup(aws.clients, listed, INSTALLATION);
    expect(removal.deleted).toBe(false);
    expect(removal.inUse).toMatch(
      new RegExp(
        `^security group \\S+ \\(${groupId}\\) used again at \\S+ \\(listed as last used ${listed.lastUsed}\\); left with its rule on the cluster group$`,
      ),
    );
    expect(await clusterGroupAdmits(groupId)).toBe(true);
    await dropGroup();
  });

  it('every listing is followed to its last page', async () => {
    // This installation's executor groups of four clusters, and an orphan of each kind, at one item a page.
    const real = await group();
    const fakes: string[] = [];
    for (let i = 0; i < 3; i++) {
      const clusterArn = `arn:aws:eks:${aws.region}:${aws.accountId}:cluster/elsewhere-${i}-${INSTALLATION}`;
      const { GroupId } = await aws.clients.ec2.send(
        new CreateSecurityGroupCommand({
          GroupName: `fake-executor-${i}-${INSTALLATION}`,
          Description: 'an executor group of another cluster',
          VpcId: aws.vpcId,
          TagSpecifications: [
            {
              ResourceType: 'security-group',
              Tags: tagList({
                ...executorGroupTags(INSTALLATION, clusterArn),
                [CLUSTER_SG_TAG]: aws.clusterSecurityGroupId,
              }),
            },
          ],
        }),
      );
      fakes.push(GroupId!);
    }
    const incidentId = `pod-incident:${aws.clusters.local}:paged:${randomBytes(3).toString('hex')}`;
    const roles = [1, 2].map((s) => resourceNames(incidentId, s, INSTALLATION).base);
    for (const role of roles) {
      await aws.clients.iam.send(
        new CreateRoleCommand({
          RoleName: role,
          AssumeRolePolicyDocument: trustPolicy(aws.accountId),
          Tags: tagList(ownerTags({ installationId: INSTALLATION, incidentId })),
        }),
      );
      await aws.clients.eks.send(
        new CreateAccessEntryCommand({
          clusterName: aws.clusters.local,
          principalArn: `arn:aws:iam::${aws.accountId}:role/${role}`,
          tags: ownerTags({ installationId: INSTALLATION, incidentId }),
        }),
      );
    }
    try {
      const since = (await aws.faults.calls()).length;
      const groups = await listExecutorGroups(clients, [aws.region], INSTALLATION, 1);
      expect(groups.errors).toEqual([]);
      expect(groups.items.map((g) => g.groupId).sort()).toEqual([real, ...fakes].sort());
      const tagged = await listTaggedResources(clients, [aws.region], INSTALLATION, {
        securityGroups: 1,
        clusters: 1,
        accessEntries: 1,
        functions: 1,
        roles: 1,
      });
      expect(tagged.errors).toEqual([]);
      const mine = tagged.items.filter((t) => t.incidentId === incidentId);
      expect(
        mine
          .filter((t) => t.kind === 'iam-role')
          .map((t) => (t as { name: string }).name)
          .sort(),
      ).toEqual([...roles].sort());
      expect(
        mine
          .filter((t) => t.kind === 'access-entry')
          .map((t) => (t as { principalArn: string }).principalArn)
          .sort(),
      ).toEqual(roles.map((n) => `arn:aws:iam::${aws.accountId}:role/${n}`).sort());
      // The pages were there to follow.
      const calls = await aws.faults.calls(since);
      const count = (action: string) => calls.filter((c) => c.action === action).length;
      expect(count('DescribeSecurityGroups')).toBeGreaterThanOrEqual(4 + 1);
      expect(count('ListAccessEntries')).toBeGreaterThanOrEqual(2);
      expect(count('ListRoles')).toBeGreaterThanOrEqual(2);
    } finally {
      for (const role of roles) {
        await aws.clients.eks.send(
          new DeleteAccessEntryCommand({
            clusterName: aws.clusters.local,
            principalArn: `arn:aws:iam::${aws.accountId}:role/${role}`,
          }),
        );
        await aws.clients.iam.send(new DeleteRoleCommand({ RoleName: role }));
      }
      for (const id of fakes) await aws.clients.ec2.send(new DeleteSecurityGroupCommand({ GroupId: id }));
      await dropGroup();
    }
  });

  it('a listing that fails is reported in the sweep, and the rest is swept', async () => {
    await aws.faults.failCall('eks', 'ListAccessEntries', {
      status: 403,
      code: 'AccessDeniedException',
      message: 'not authorized to list access entries',
      times: 1,
      match: aws.clusters.local,
    });
    const report = await r.sweep({ regions: [aws.region] });
    expect(report.errors).toEqual([
      `${aws.region}: listing access entries of EKS cluster ${aws.clusters.local}: AccessDeniedException: not authorized to list access entries`,
    ]);
    expect(report.scanned).toBeGreaterThanOrEqual(0);
  });
});
