/**
 * What is ours, and AWS as it really behaves, through the real parts (moto behind the test front, the
 * kube-apiserver, Temporal): resources with our names that are not ours, two installations in one account,
 * functions that are Pending before Active, access entries that take effect late or outlived their role.
 */
import {
  CreateSecurityGroupCommand,
  DeleteSecurityGroupCommand,
  DescribeSecurityGroupsCommand,
} from '@aws-sdk/client-ec2';
import { CreateAccessEntryCommand, DeleteAccessEntryCommand, DescribeAccessEntryCommand } from '@aws-sdk/client-eks';
import { CreateRoleCommand, DeleteRoleCommand, GetRoleCommand, ListRoleTagsCommand } from '@aws-sdk/client-iam';
import { CreateFunctionCommand, DeleteFunctionCommand, GetFunctionCommand } from '@aws-sdk/client-lambda';
import type { WorkflowHandle } from '@temporalio/client';
import { WorkflowFailedError } from '@temporalio/client';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { trustPolicy } from '../../activities/eks-lambda/role.js';
import { CLUSTER_SG_TAG, executorGroupTags, ownerTags, resourceNames, tagList } from '../../domain/aws-resources.js';
import { buildLambdaZip } from '../../lambda/build.js';
import { incidentWorkflowId } from '../../workflows/ids.js';
import { statusQuery } from '../../workflows/messages.js';
import { awsStack, dropExecutorGroup, executorGroupOf, leftovers } from '../support/aws.js';
import {
  createEksNamespace,
  createNamespace,
  createWorkload,
  podExists,
  testKube,
  type TestKube,
  type Workload,
} from '../support/cluster.js';
import { ownTemporal, type OwnTemporal } from '../../devstack/temporal-server.js';
import { alertFor, startResponder, waitForPendingActivity, type Responder } from '../support/responder.js';
import { ensureNamespace } from '../support/temporal-namespace.js';
import { until } from '../support/until.js';
import { closedStatus } from '../support/closed-status.js';

const aws = awsStack();
const INSTALLATION = 'ownership-tests';
const names = (incidentId: string, session = 1) => resourceNames(incidentId, session, INSTALLATION);
let r: Responder;
let kube: TestKube;
let lambdaZip: string;

let boundaryArn: string;

beforeAll(async () => {
  ({ path: lambdaZip } = await buildLambdaZip(
    path.join(mkdtempSync(path.join(tmpdir(), 'pod-responder-zip-')), 'remediation.zip'),
  ));
  // The boundary deploy/aws/worker-policy.json demands, which the stack made from the shipped document as an operator would.
  boundaryArn = aws.permissionsBoundaryArn;
  r = await startResponder({
    executor: 'eks-lambda',
    eks: { endpoint: aws.endpoint, lambdaZip, installationId: INSTALLATION, permissionsBoundaryArn: boundaryArn },
  });
  kube = testKube();
});
afterAll(async () => r?.close());
afterEach(async () => aws.faults.clear());

const onEks = (ns: string, w: Workload) =>
  alertFor(ns, w, { cluster: { name: aws.clusters.local, region: aws.region } });
const ourExecutorGroup = () => executorGroupOf(aws.clients, INSTALLATION, aws.clusters.local, aws.vpcId);
const dropOurExecutorGroup = () =>
  dropExecutorGroup(aws.clients, INSTALLATION, aws.clusters.local, aws.vpcId, aws.clusterSecurityGroupId);
/** A group made directly under our executor group's name (ours removed first), with the tags given; its ID. */
async function plantExecutorGroup(tags: (clusterArn: string) => Record<string, string>): Promise<string> {
  await dropOurExecutorGroup();
  const { name, clusterArn } = await ourExecutorGroup();
  const { GroupId } = await aws.clients.ec2.send(
    new CreateSecurityGroupCommand({
      GroupName: name,
      Description: 'planted by a test',
      VpcId: aws.vpcId,
      TagSpecifications: [{ ResourceType: 'security-group', Tags: tagList(tags(clusterArn)) }],
    }),
  );
  return GroupId!;
}
const leftBy = (installationId: string, incidentId: string) =>
  leftovers(aws.clients, installationId, incidentId, aws.clusters.local, aws.clusterSecurityGroupId);
const tagsOfRole = async (name: string) =>
  Object.fromEntries(
    ((await aws.clients.iam.send(new ListRoleTagsCommand({ RoleName: name }))).Tags ?? []).map((t) => [t.Key, t.Value]),
  );
const roleArn = (name: string) => `arn:aws:iam::${aws.accountId}:role/${name}`;

/** A role made outside the incident; `bounded`: with the function boundary, as an earlier attempt of ours makes it. */
async function createRole(name: string, tags: Record<string, string> = {}, bounded = false): Promise<void> {
  await aws.clients.iam.send(
    new CreateRoleCommand({
      RoleName: name,
      AssumeRolePolicyDocument: trustPolicy(aws.accountId),
      Tags: tagList(tags),
      ...(bounded ? { PermissionsBoundary: boundaryArn } : {}),
    }),
  );
}

/** The attempt each execution of an activity type ended on (history records only a retried activity's last start). */
async function attempts(handle: WorkflowHandle, activityType: string): Promise<number[]> {
  const history = await handle.fetchHistory();
  const scheduled = new Map<string, string>();
  const seen: number[] = [];
  for (const e of history.events ?? []) {
    const s = e.activityTaskScheduledEventAttributes;
    if (s) scheduled.set(String(e.eventId), s.activityType?.name ?? '');
    const started = e.activityTaskStartedEventAttributes;
    if (started && scheduled.get(String(started.scheduledEventId)) === activityType) seen.push(started.attempt ?? 0);
  }
  return seen;
}

describe('a resource with our name that is not ours', () => {
  /** Each case puts a foreign resource where the incident's own would go, and says how to remove it afterwards. */
  const cases: Record<
    string,
    (base: string, incidentId: string) => Promise<{ exists: () => Promise<boolean>; remove: () => Promise<void> }>
  > = {
    'IAM role (untagged)': async (base) => {
      await createRole(base, { team: 'payments' });
      return {
        exists: async () => (await tagsOfRole(base))['team'] === 'payments',
        remove: async () => void (await aws.clients.iam.send(new DeleteRoleCommand({ RoleName: base }))),
      };
    },
    'executor security group (another installation)': async () => {
      // Where this installation's executor group for the cluster goes: made by someone else.
      const GroupId = await plantExecutorGroup((clusterArn) => executorGroupTags('someone-else', clusterArn));
      return {
        exists: async () =>
          !!(await aws.clients.ec2.send(new DescribeSecurityGroupsCommand({ GroupIds: [GroupId] }))).SecurityGroups
            ?.length,
        remove: async () => void (await aws.clients.ec2.send(new DeleteSecurityGroupCommand({ GroupId }))),
      };
    },
    'access entry (another incident)': async (base, incidentId) => {
      // The role is ours (an earlier attempt made it); the entry for it was made by someone else.
      await createRole(base, ownerTags({ installationId: INSTALLATION, incidentId }), true);
      await aws.clients.eks.send(
        new CreateAccessEntryCommand({
          clusterName: aws.clusters.local,
          principalArn: roleArn(base),
          tags: ownerTags({ installationId: INSTALLATION, incidentId: 'pod-incident:other' }),
        }),
      );
      const principal = { clusterName: aws.clusters.local, principalArn: roleArn(base) };
      return {
        exists: async () => !!(await aws.clients.eks.send(new DescribeAccessEntryCommand(principal))).accessEntry,
        remove: async () => void (await aws.clients.eks.send(new DeleteAccessEntryCommand(principal))),
      };
    },
    'function (untagged)': async (base) => {
      const role = `pod-responder-foreign-${randomBytes(4).toString('hex')}`;
      await createRole(role);
      await aws.clients.lambda.send(
        new CreateFunctionCommand({
          FunctionName: base,
          Runtime: 'nodejs22.x',
          Handler: 'index.handler',
          Role: roleArn(role),
          Code: { ZipFile: readFileSync(lambdaZip) },
        }),
      );
      return {
        exists: async () =>
          !!(await aws.clients.lambda.send(new GetFunctionCommand({ FunctionName: base }))).Configuration,
        remove: async () => {
          await aws.clients.lambda.send(new DeleteFunctionCommand({ FunctionName: base }));
          await aws.clients.iam.send(new DeleteRoleCommand({ RoleName: role }));
        },
      };
    },
  };

  it.each(Object.keys(cases))('%s: refused, left intact, the incident says why, and ours is removed', async (kind) => {
    const ns = await createEksNamespace(kube, 'foreign');
    const w = await createWorkload(kube, ns, 'Pod');
    const alert = onEks(ns, w);
    const incidentId = incidentWorkflowId(alert);
    const foreign = await cases[kind]!(names(incidentId).base, incidentId);

    const handle = await r.respond(alert);
    await expect(handle.result()).rejects.toBeInstanceOf(WorkflowFailedError);
    const s = await handle.query(statusQuery);
    expect(s.outcome).toBe('failed');
    expect(s.problem).toMatch(/exists but is not ours \(.+\); left intact/);
    // The shared executor group is never an incident's to undo; the others are, and the foreign one is left.
    const leftIntact = s.cleanup.filter((c) => c.status === 'left-intact');
    expect(leftIntact).toHaveLength(kind.startsWith('executor') ? 0 : 1);
    for (const c of leftIntact) expect(c.note).toMatch(/is not ours \(.+\); left intact/);
    expect(s.cleanup.filter((c) => c.status !== 'left-intact').every((c) => c.status === 'done')).toBe(true);
    if (leftIntact.length)
      expect(s.timeline.some((t) => t.event === 'compensation' && t.detail.includes('left-intact'))).toBe(true);
    expect(await podExists(kube, ns, w.name)).toBe(true);

    expect(await foreign.exists()).toBe(true);
    await foreign.remove();
    await aws.faults.clear();
    expect(await leftBy(INSTALLATION, incidentId)).toEqual([]);
  });
});

describe('two installations in one AWS account', () => {
  it('run the same incident at once, each with its own resources, and each sweeper removes only its own', async () => {
    const other = `pod-responder-b-${randomBytes(3).toString('hex')}`;
    await ensureNamespace(other);
    // Installation B: its own Temporal namespace, the installation ID that defaults to it.
    const b = await startResponder({
      executor: 'eks-lambda',
      namespace: other,
      eks: { endpoint: aws.endpoint, lambdaZip },
    });
    try {
      const ns = await createEksNamespace(kube, 'twoinst');
      const w = await createWorkload(kube, ns, 'Pod');
      const alert = onEks(ns, w);
      const incidentId = incidentWorkflowId(alert);
      const [baseA, baseB] = [names(incidentId).base, resourceNames(incidentId, 1, other).base];
      expect(baseA).not.toBe(baseB);
      // Both hold at Invoke with everything deployed.
      for (const base of [baseA, baseB])
        await aws.faults.failCall('lambda', 'Invoke', { status: 500, code: 'ServiceException', times: 0, match: base });
      const [a, bh] = [await r.respond(alert), await b.respond(alert)];
      expect(a.workflowId).toBe(bh.workflowId); // the same incident ID in both installations
      await waitForPendingActivity(a, 'invokeRemediationFunction');
      await waitForPendingActivity(bh, 'invokeRemediationFunction');
      expect(await leftBy(INSTALLATION, incidentId)).toHaveLength(3);
      expect(await leftBy(other, incidentId)).toHaveLength(3);
      // Each installation's functions are in its own executor group for the cluster.
      const [groupA, groupB] = [
        await ourExecutorGroup(),
        await executorGroupOf(aws.clients, other, aws.clusters.local, aws.vpcId),
      ];
      expect(groupA.groupId).toBeDefined();
      expect(groupB.groupId).toBeDefined();
      expect(groupA.groupId).not.toBe(groupB.groupId);
      expect(await tagsOfRole(baseB)).toEqual(ownerTags({ installationId: other, incidentId }));
      // Both installations' roles carry the permissions boundary (required with the EKS executor).
      for (const base of [baseA, baseB])
        expect(
          (await aws.clients.iam.send(new GetRoleCommand({ RoleName: base }))).Role?.PermissionsBoundary
            ?.PermissionsBoundaryArn,
        ).toBe(boundaryArn);

      // A's incident is cut off (no compensations); A's sweeper runs while B's incident is live.
      await a.terminate('operator pulled the plug');
      const report = await r.sweep({ regions: [aws.region] });
      const removed = report.removed.filter((x) => x.incidentId === incidentId);
      expect(removed.map((x) => x.status)).toEqual(['done', 'done', 'done']);
      expect(removed.every((x) => !JSON.stringify(x).includes(baseB))).toBe(true);
      expect(await leftBy(INSTALLATION, incidentId)).toEqual([]);
      expect(await leftBy(other, incidentId)).toHaveLength(3);

      // B's sweeper finds its incident running and leaves everything, its executor group too however idle the
      // sweep allows; released, B finishes and cleans up.
      const reportB = await b.sweep({ regions: [aws.region], executorGroupIdleMinutes: 0 });
      expect(reportB.removed.filter((x) => x.incidentId === incidentId)).toEqual([]);
      expect(reportB.executorGroups).toEqual([]);
      await aws.faults.clear();
      expect((await closedStatus(bh)).outcome).toBe('pod-terminated');
      expect(await leftBy(other, incidentId)).toEqual([]);
      // No incident runs, but B's group was used moments ago: within the default hour, it stays.
      expect((await b.sweep({ regions: [aws.region] })).executorGroups).toEqual([]);

      // No incident runs in B's namespace any more: B's sweeper removes B's executor group (once Lambda has let
      // go of it) and never A's, which A's incidents on the cluster may still need.
      await until(
        "B's executor group swept",
        async () => {
          const sweep = await b.sweep({ regions: [aws.region], executorGroupIdleMinutes: 0 });
          expect(sweep.executorGroups?.map((g) => g.name) ?? []).not.toContain(groupA.name);
          return sweep.executorGroups?.some((g) => g.name === groupB.name && g.status === 'done');
        },
        30_000,
      );
      expect((await executorGroupOf(aws.clients, other, aws.clusters.local, aws.vpcId)).groupId).toBeUndefined();
      expect((await ourExecutorGroup()).groupId).toBe(groupA.groupId);
    } finally {
      await b.close();
    }
  });

  it('a sweeper leaves resources tagged before installations existed unless their incident is closed here', async () => {
    const incidentId = `pod-incident:${aws.clusters.local}:nowhere:${randomBytes(3).toString('hex')}`;
    const legacy = resourceNames(incidentId, 1).base; // a pre-installation name and tags
    await createRole(legacy, { 'pod-responder:managed': 'true', 'pod-responder:incident': incidentId });
    const report = await r.sweep({ regions: [aws.region] });
    // No workflow with that ID here: it may be another installation's live incident.
    expect(report.removed.filter((x) => x.incidentId === incidentId)).toEqual([]);
    expect((await aws.clients.iam.send(new GetRoleCommand({ RoleName: legacy }))).Role?.RoleName).toBe(legacy);
    await aws.clients.iam.send(new DeleteRoleCommand({ RoleName: legacy }));
  });
});

describe('Kubernetes rights', () => {
  it('in a namespace the cluster owner did not bind, RBAC refuses; the incident says how to bind it and leaves nothing', async () => {
    const ns = await createNamespace(kube, 'unbound');
    const w = await createWorkload(kube, ns, 'Pod');
    const handle = await r.respond(onEks(ns, w));
    await expect(handle.result()).rejects.toBeInstanceOf(WorkflowFailedError);
    const s = await handle.query(statusQuery);
    expect(s.problem).toContain('403');
    expect(s.problem).toContain('deploy/kubernetes/eks-remediator-rbac.yaml');
    expect(await podExists(kube, ns, w.name)).toBe(true);
    expect(await leftBy(INSTALLATION, handle.workflowId)).toEqual([]);
  });
});

describe('the sweeper while incidents clean up', () => {
  it('a role removed between the listing and its tags is nothing to sweep: the sweep goes on, and a later one removes what is left', async () => {
    const incidentId = `pod-incident:${aws.clusters.local}:gone:${randomBytes(3).toString('hex')}`;
    const name = names(incidentId).base;
    const tags = Object.entries(ownerTags({ installationId: INSTALLATION, incidentId })).map(([Key, Value]) => ({
      Key,
      Value,
    }));
    await aws.clients.iam.send(
      new CreateRoleCommand({
        RoleName: name,
        AssumeRolePolicyDocument: JSON.stringify({ Version: '2012-10-17', Statement: [] }),
        Tags: tags,
      }),
    );
    // As IAM answers once an incident's cleanup deleted the role after ListRoles listed it.
    await aws.faults.failCall('iam', 'ListRoleTags', {
      status: 404,
      code: 'NoSuchEntity',
      message: `The role with name ${name} cannot be found.`,
      times: 1,
      match: name,
    });
    const first = await r.sweep({ regions: [aws.region] });
    expect(first.removed.filter((x) => x.incidentId === incidentId)).toEqual([]);
    const second = await r.sweep({ regions: [aws.region] });
    expect(second.removed.filter((x) => x.incidentId === incidentId).map((x) => [x.kind, x.status])).toEqual([
      ['iam-role', 'done'],
    ]);
  });
});

describe('dry run on the EKS executor', () => {
  it('deploys nothing: it stops where reading the pod would need the function, and says so', async () => {
    const ns = await createEksNamespace(kube, 'dryrun');
    const w = await createWorkload(kube, ns, 'Pod');
    const handle = await r.respond(onEks(ns, w), { mode: 'dry-run' });
    const result = await closedStatus(handle);
    expect(result.outcome).toBe('dry-run');
    expect(result.wouldHaveDone).toEqual([
      `would-deploy the EKS executor in ${aws.clusters.local} (IAM role, access entry, function) to read pod ${ns}/${w.pod.metadata!.name}, then decide and act; nothing deployed in a dry run`,
    ]);
    const history = await handle.fetchHistory();
    expect(history.events!.filter((e) => e.activityTaskScheduledEventAttributes)).toEqual([]);
    expect(await leftBy(INSTALLATION, handle.workflowId)).toEqual([]);
    expect(await podExists(kube, ns, w.name)).toBe(true);
  });
});

describe('a role of ours without the function boundary', () => {
  it('(made before the boundary was required) is not adopted: the incident says how to remove it, and deploys nothing', async () => {
    const ns = await createEksNamespace(kube, 'unbounded');
    const w = await createWorkload(kube, ns, 'Pod');
    const alert = onEks(ns, w);
    const incidentId = incidentWorkflowId(alert);
    const base = names(incidentId).base;
    await createRole(base, ownerTags({ installationId: INSTALLATION, incidentId }));
    const handle = await r.respond(alert);
    await closedStatus(handle).catch(() => undefined);
    const s = await handle.query(statusQuery);
    expect(s.problem).toContain(
      `IAM role ${base} is ours but carries no permissions boundary, not ${boundaryArn}: not adopted (the worker may change only roles that carry the configured boundary); ` +
        `the incident's undo deletes it if it has no policy, else delete it by hand (aws iam detach-role-policy / delete-role-policy, then aws iam delete-role --role-name ${base})`,
    );
    // Nothing else deployed. The undo still removes the role: ours by its tags, and with no policy to detach it
    // needs no call that IAM conditions on the boundary.
    expect(await leftBy(INSTALLATION, incidentId)).toEqual([]);
    expect(await podExists(kube, ns, w.name)).toBe(true);
  });
});

describe('AWS as it really behaves', () => {
  it('waits for a Pending function to become Active, then invokes it once', async () => {
    const ns = await createEksNamespace(kube, 'pending');
    const w = await createWorkload(kube, ns, 'Pod');
    const alert = onEks(ns, w);
    await aws.faults.functionPendingSeconds(8, names(incidentWorkflowId(alert)).base);
    const handle = await r.respond(alert);
    expect((await closedStatus(handle)).outcome).toBe('pod-terminated');
    expect(await attempts(handle, 'invokeRemediationFunction')).toEqual([1, 1, 1, 1, 1]); // inspect, isolate, delete, verify, release: none retried
    const history = await handle.fetchHistory();
    const at = (e: { eventTime?: { seconds?: unknown } | null }) => Number(e.eventTime?.seconds ?? 0);
    const created = history.events!.find(
      (e) => e.activityTaskScheduledEventAttributes?.activityType?.name === 'createRemediationFunction',
    )!;
    const completed = history.events!.find(
      (e) => e.activityTaskCompletedEventAttributes?.scheduledEventId?.toString() === String(created.eventId),
    )!;
    expect(at(completed) - at(created)).toBeGreaterThanOrEqual(7);
    expect(await leftBy(INSTALLATION, handle.workflowId)).toEqual([]);
  });

  it('invokes again while a new access entry is not yet in effect (401), then acts', async () => {
    const ns = await createEksNamespace(kube, 'authlag');
    const w = await createWorkload(kube, ns, 'Pod');
    const alert = onEks(ns, w);
    await aws.faults.accessEntryDelaySeconds(10, names(incidentWorkflowId(alert)).base);
    const handle = await r.respond(alert);
    expect((await closedStatus(handle)).outcome).toBe('pod-terminated');
    expect(await podExists(kube, ns, w.name)).toBe(false);
    expect(await attempts(handle, 'invokeRemediationFunction')).toEqual([1, 1, 1, 1, 1]); // inspect, isolate, delete, verify, release: none retried
    expect(await leftBy(INSTALLATION, handle.workflowId)).toEqual([]);
  });

  it('recreates an access entry made before its role was (it names a role that no longer exists)', async () => {
    const ns = await createEksNamespace(kube, 'stale');
    const w = await createWorkload(kube, ns, 'Pod');
    const alert = onEks(ns, w);
    const incidentId = incidentWorkflowId(alert);
    const base = names(incidentId).base;
    const tags = ownerTags({ installationId: INSTALLATION, incidentId });
    await createRole(base, tags, true);
    const principal = { clusterName: aws.clusters.local, principalArn: roleArn(base) };
    await aws.clients.eks.send(new CreateAccessEntryCommand({ ...principal, tags }));
    await new Promise((res) => setTimeout(res, 1100));
    await aws.clients.iam.send(new DeleteRoleCommand({ RoleName: base }));
    await createRole(base, tags, true);
    const { Role } = await aws.clients.iam.send(new GetRoleCommand({ RoleName: base }));

    await aws.faults.failCall('lambda', 'Invoke', { status: 500, code: 'ServiceException', times: 0, match: base });
    const handle = await r.respond(alert);
    await waitForPendingActivity(handle, 'invokeRemediationFunction');
    const { accessEntry } = await aws.clients.eks.send(new DescribeAccessEntryCommand(principal));
    expect(accessEntry!.createdAt!.getTime()).toBeGreaterThanOrEqual(Role!.CreateDate!.getTime());
    await aws.faults.clear();
    expect((await closedStatus(handle)).outcome).toBe('pod-terminated');
    expect(await leftBy(INSTALLATION, incidentId)).toEqual([]);
  });

  it('removes the default allow-all egress of the executor group an earlier attempt made and died before restricting', async () => {
    const ns = await createEksNamespace(kube, 'egress');
    const w = await createWorkload(kube, ns, 'Pod');
    const alert = onEks(ns, w);
    const incidentId = incidentWorkflowId(alert);
    const base = names(incidentId).base;
    // What a worker SIGKILLed between CreateSecurityGroup and RevokeSecurityGroupEgress leaves: our group, open egress.
    const GroupId = await plantExecutorGroup((clusterArn) => ({
      ...executorGroupTags(INSTALLATION, clusterArn),
      [CLUSTER_SG_TAG]: aws.clusterSecurityGroupId,
    }));
    const egressOf = async () =>
      (
        await aws.clients.ec2.send(new DescribeSecurityGroupsCommand({ GroupIds: [GroupId] }))
      ).SecurityGroups![0]!.IpPermissionsEgress!.map((p) => [
        p.IpProtocol,
        p.FromPort ?? null,
        (p.IpRanges ?? []).map((x) => x.CidrIp),
      ]);
    expect(await egressOf()).toEqual([['-1', null, ['0.0.0.0/0']]]);

    await aws.faults.failCall('lambda', 'Invoke', { status: 500, code: 'ServiceException', times: 0, match: base });
    const handle = await r.respond(alert);
    await waitForPendingActivity(handle, 'invokeRemediationFunction');
    expect(await egressOf()).toEqual([['tcp', 443, []]]);
    await aws.faults.clear();
    expect((await closedStatus(handle)).outcome).toBe('pod-terminated');
    expect(await leftBy(INSTALLATION, incidentId)).toEqual([]);
  });
});

const CONCURRENT_INCIDENTS = 100;

describe('a DaemonSet miner: many incidents on one cluster at once', () => {
  // A Temporal server of its own: 100 incidents at once beside the other test files once took the shared dev
  // server's (SQLite) shard down and failed every file after.
  let temporal: OwnTemporal;
  let d: Responder;
  beforeAll(async () => {
    temporal = await ownTemporal();
    temporal.start();
    d = await until('worker on its own Temporal', () =>
      startResponder({
        temporalAddress: temporal.address,
        executor: 'eks-lambda',
        eks: { endpoint: aws.endpoint, lambdaZip, installationId: INSTALLATION, permissionsBoundaryArn: boundaryArn },
      }),
    );
  }, 60_000);
  afterAll(async () => {
    await d?.close();
    await temporal?.stop();
  });

  it(`${CONCURRENT_INCIDENTS} concurrent incidents share the executor group: one rule on the cluster group (quota 60), every pod killed, nothing left`, async () => {
    const ns = await createEksNamespace(kube, 'daemonset');
    const pods = await Promise.all(Array.from({ length: CONCURRENT_INCIDENTS }, () => createWorkload(kube, ns, 'Pod')));
    const handles = await Promise.all(pods.map((w) => d.respond(onEks(ns, w))));
    const results = await Promise.all(handles.map((h) => h.result()));
    expect(results.map((x) => x.outcome)).toEqual(Array(CONCURRENT_INCIDENTS).fill('pod-terminated'));
    for (const w of pods) expect(await podExists(kube, ns, w.name)).toBe(false);

    const group = await ourExecutorGroup();
    const { SecurityGroups } = await aws.clients.ec2.send(
      new DescribeSecurityGroupsCommand({ GroupIds: [aws.clusterSecurityGroupId] }),
    );
    const fromOurGroup = (SecurityGroups![0]!.IpPermissions ?? [])
      .flatMap((p) => p.UserIdGroupPairs ?? [])
      .filter((g) => g.GroupId === group.groupId);
    expect(fromOurGroup).toHaveLength(1);
    for (const h of handles) expect(await leftBy(INSTALLATION, h.workflowId)).toEqual([]);
  }, 600_000);
});
