/**
 * The EKS executor through the real parts: moto (IAM, EC2, Lambda, EKS) behind the test front, the bundled
 * handler run by the front under the Lambda contract, authenticating to the real kube-apiserver with an
 * IAM-derived token that only an access entry makes valid. After every incident nothing may be left.
 */
import { GetRoleCommand, ListAttachedRolePoliciesCommand, ListRolePoliciesCommand } from '@aws-sdk/client-iam';
import { DescribeSecurityGroupsCommand } from '@aws-sdk/client-ec2';
import { DescribeAccessEntryCommand, ListAssociatedAccessPoliciesCommand } from '@aws-sdk/client-eks';
import { CreateRoleCommand, DeleteRoleCommand } from '@aws-sdk/client-iam';
import { GetFunctionConfigurationCommand } from '@aws-sdk/client-lambda';
import { WorkflowFailedError } from '@temporalio/client';
import { Client, Connection } from '@temporalio/client';
import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { respondToAlert } from '../../temporal-client/incidents.js';
import { configSchema } from '../../config/config.js';
import { SWEEPER_SCHEDULE_ID } from '../../worker/schedules.js';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, inject, it, vi } from 'vitest';
import { fnv1a64, resourceNames } from '../../domain/aws-resources.js';
import { buildLambdaZip } from '../../lambda/build.js';
import { incidentWorkflowId } from '../../workflows/ids.js';
import { statusQuery } from '../../workflows/messages.js';
import { awsStack, dropExecutorGroup, ensureExecutorGroupFor, executorGroupOf, leftovers } from '../support/aws.js';
import {
  createEksNamespace,
  createWorkload,
  podExists,
  testKube,
  type TestKube,
  type Workload,
} from '../support/cluster.js';
import { closedStatus } from '../support/closed-status.js';
import { alertFor, startResponder, waitForPendingActivity, type Responder } from '../support/responder.js';
import { killProcessGroup, startWorkerProcess } from '../support/worker-process.js';

// Each test deploys and removes a whole function stack (role, access entry, function Pending then Active, invoke):
// under CI's load (every project at once on 2 cores) the first took over 60 s once, the file 468 s. A hang guard, not
// a measure: the deploy's timing is in the bench.
vi.setConfig({ testTimeout: 180_000 });

const aws = awsStack();
const INSTALLATION = 'eks-tests';
const names = (incidentId: string, session: number) => resourceNames(incidentId, session, INSTALLATION);
let r: Responder;
let kube: TestKube;

beforeAll(async () => {
  const { path: lambdaZip } = await buildLambdaZip(
    path.join(mkdtempSync(path.join(tmpdir(), 'pod-responder-zip-')), 'remediation.zip'),
  );
  r = await startResponder({
    executor: 'eks-lambda',
    eks: { endpoint: aws.endpoint, lambdaZip, sweepRegions: [aws.region], installationId: INSTALLATION },
  });
  kube = testKube();
});
afterAll(async () => r?.close());
afterEach(async () => aws.faults.clear());

const onEks = (ns: string, w: Workload, over = {}) =>
  alertFor(ns, w, { cluster: { name: aws.clusters.local, region: aws.region }, ...over });
const executorGroup = () => executorGroupOf(aws.clients, INSTALLATION, aws.clusters.local, aws.vpcId);

/**
 * What narrows a fault on `action` to this file's calls: the incident's resource names, or the executor group's
 * name or ID (its creation is made to happen again by removing the group first).
 */
async function matchFor(action: string, base: string): Promise<string> {
  const args = [aws.clients, INSTALLATION, aws.clusters.local, aws.vpcId, aws.clusterSecurityGroupId] as const;
  if (action === 'CreateSecurityGroup') {
    await dropExecutorGroup(...args);
    return (await executorGroup()).name;
  }
  if (['AuthorizeSecurityGroupEgress', 'AuthorizeSecurityGroupIngress', 'CreateTags'].includes(action))
    return ensureExecutorGroupFor(...args);
  return base;
}

const noLeaks = async (incidentId: string) =>
  expect(
    await leftovers(aws.clients, INSTALLATION, incidentId, aws.clusters.local, aws.clusterSecurityGroupId),
  ).toEqual([]);

describe('EKS Lambda executor', () => {
  it('terminates a pod through the in-VPC function and removes all it deployed', async () => {
    const ns = await createEksNamespace(kube, 'eks');
    const w = await createWorkload(kube, ns, 'Pod');
    const handle = await r.respond(onEks(ns, w));
    const result = await closedStatus(handle);
    expect(result.outcome).toBe('pod-terminated');
    expect(await podExists(kube, ns, w.name)).toBe(false);
    const base = names(handle.workflowId, 1).base;
    expect(result.cleanup).toEqual([
      { name: `delete function ${base}`, status: 'done' },
      { name: `delete access entry for ${base}`, status: 'done' },
      { name: `delete IAM role ${base}`, status: 'done' },
    ]);
    await noLeaks(handle.workflowId);
  });

  it("maps the function to the incident namespace's remediator groups only, and HTTPS to the cluster group only", async () => {
    const ns = await createEksNamespace(kube, 'eksgrant');
    const w = await createWorkload(kube, ns, 'Pod');
    // A retryable Invoke fault keeps the first stretch's resources deployed, so they can be inspected.
    const alert = onEks(ns, w);
    const base = names(incidentWorkflowId(alert), 1).base;
    await aws.faults.failCall('lambda', 'Invoke', { status: 500, code: 'ServiceException', times: 0, match: base });
    const handle = await r.respond(alert);
    await waitForPendingActivity(handle, 'invokeRemediationFunction');

    const { Role } = await aws.clients.iam.send(new GetRoleCommand({ RoleName: base }));
    const trust = JSON.parse(decodeURIComponent(Role!.AssumeRolePolicyDocument!));
    expect(trust.Statement).toEqual([
      expect.objectContaining({
        Principal: { Service: 'lambda.amazonaws.com' },
        Action: 'sts:AssumeRole',
        Condition: { StringEquals: { 'aws:SourceAccount': aws.accountId } },
      }),
    ]);
    expect(Object.fromEntries((Role!.Tags ?? []).map((t) => [t.Key, t.Value]))).toMatchObject({
      'pod-responder:incident': handle.workflowId,
      'pod-responder:managed': 'true',
      'pod-responder:installation': INSTALLATION,
    });
    const attached = await aws.clients.iam.send(new ListAttachedRolePoliciesCommand({ RoleName: base }));
    expect(attached.AttachedPolicies?.map((p) => p.PolicyArn)).toEqual([
      'arn:aws:iam::aws:policy/service-role/AWSLambdaVPCAccessExecutionRole',
    ]);
    expect((await aws.clients.iam.send(new ListRolePoliciesCommand({ RoleName: base }))).PolicyNames).toEqual([]);

    // No EKS access policy (Edit grants Secrets and pods/exec): groups that only the namespace's RoleBinding empowers.
    const principal = { clusterName: aws.clusters.local, principalArn: Role!.Arn! };
    expect(
      (await aws.clients.eks.send(new ListAssociatedAccessPoliciesCommand(principal))).associatedAccessPolicies,
    ).toEqual([]);
    expect(
      (await aws.clients.eks.send(new DescribeAccessEntryCommand(principal))).accessEntry?.kubernetesGroups,
    ).toEqual(['pod-responder:remediator', `pod-responder:remediator:${ns}`]);

    // The function is in the cluster's executor group, whose only egress is HTTPS to the cluster group.
    const group = await executorGroup();
    const fn = await aws.clients.lambda.send(new GetFunctionConfigurationCommand({ FunctionName: base }));
    expect(fn.VpcConfig?.SecurityGroupIds).toEqual([group.groupId]);
    const { SecurityGroups } = await aws.clients.ec2.send(
      new DescribeSecurityGroupsCommand({ GroupIds: [group.groupId!] }),
    );
    const egress = SecurityGroups?.[0]?.IpPermissionsEgress ?? [];
    expect(
      egress.map((p) => [
        p.IpProtocol,
        p.FromPort,
        p.ToPort,
        p.UserIdGroupPairs?.map((g) => g.GroupId),
        p.IpRanges ?? [],
      ]),
    ).toEqual([['tcp', 443, 443, [aws.clusterSecurityGroupId], []]]);

    await aws.faults.clear();
    expect((await closedStatus(handle)).outcome).toBe('pod-terminated');
    await noLeaks(handle.workflowId);
  });

  it('suspends and restores a Deployment, each stretch with its own short-lived function', async () => {
    const ns = await createEksNamespace(kube, 'ekssus');
    const w = await createWorkload(kube, ns, 'Deployment');
    const handle = await r.respond(onEks(ns, w, { severity: 'critical' }), { holdSuspensionSeconds: 300 });
    const held = await r.waitForStage(handle, 'holding', 60_000);
    expect((await kube.apps.readNamespacedDeployment({ namespace: ns, name: w.name })).spec?.replicas).toBe(0);
    expect(held.cleanup.every((c) => c.status === 'done')).toBe(true);
    await noLeaks(handle.workflowId); // nothing stays deployed while the suspension is held

    await handle.executeUpdate('restore', { args: [{ by: 'ana' }] });
    const result = await closedStatus(handle);
    expect(result.outcome).toBe('workload-restored');
    expect((await kube.apps.readNamespacedDeployment({ namespace: ns, name: w.name })).spec?.replicas).toBe(3);
    expect(result.cleanup).toHaveLength(6);
    expect(result.cleanup.some((c) => c.name.includes(names(handle.workflowId, 2).base))).toBe(true);
    await noLeaks(handle.workflowId);
  });

  it('stops as needs-manual-action on a cluster that does not accept access entries, creating nothing', async () => {
    const ns = await createEksNamespace(kube, 'ekscm');
    const w = await createWorkload(kube, ns, 'Pod');
    const handle = await r.respond(
      alertFor(ns, w, { cluster: { name: aws.clusters.configMapOnly, region: aws.region } }),
    );
    const result = await closedStatus(handle);
    expect(result.outcome).toBe('needs-manual-action');
    expect(result.problem).toContain('does not accept access entries (authentication mode CONFIG_MAP)');
    expect(result.cleanup).toEqual([]);
    expect(await podExists(kube, ns, w.name)).toBe(true);
  });

  // Each case runs a whole incident with retries; other files' incidents load the same machine meanwhile.
  describe(
    'a permanent failure at each deploy step fails the incident and leaves nothing',
    { timeout: 180_000 },
    () => {
      it.each([
        ['iam', 'CreateRole', 'AccessDenied', 403],
        ['iam', 'AttachRolePolicy', 'AccessDenied', 403],
        ['ec2', 'CreateSecurityGroup', 'UnauthorizedOperation', 403],
        ['ec2', 'AuthorizeSecurityGroupEgress', 'UnauthorizedOperation', 403],
        ['ec2', 'AuthorizeSecurityGroupIngress', 'UnauthorizedOperation', 403],
        ['eks', 'CreateAccessEntry', 'AccessDeniedException', 403],
        ['lambda', 'CreateFunction', 'AccessDeniedException', 403],
        ['lambda', 'Invoke', 'AccessDeniedException', 403],
      ])('%s:%s', async (service, action, code, status) => {
        const ns = await createEksNamespace(kube, 'eksfail');
        const w = await createWorkload(kube, ns, 'Pod');
        const alert = onEks(ns, w);
        // Narrow the fault to this incident's resources where the request names them (other files use AWS too),
        // or to this file's executor group, made afresh when the fault is on its creation.
        const match = await matchFor(action, names(incidentWorkflowId(alert), 1).base);
        await aws.faults.failCall(service, action, { status, code, times: 0, match });
        const handle = await r.respond(alert);
        await expect(handle.result()).rejects.toBeInstanceOf(WorkflowFailedError);
        const s = await handle.query(statusQuery);
        expect(s.outcome).toBe('failed');
        expect(s.problem).toContain(code);
        expect(s.cleanup.length).toBeGreaterThan(0);
        expect(s.cleanup.every((c) => c.status === 'done')).toBe(true);
        await aws.faults.clear();
        await noLeaks(handle.workflowId);
      });
    },
  );

  describe('transient failures are retried until done, deploying and removing', { timeout: 180_000 }, () => {
    it.each([
      ['iam', 'CreateRole'],
      ['ec2', 'CreateSecurityGroup'],
      ['ec2', 'AuthorizeSecurityGroupEgress'],
      ['ec2', 'CreateTags'],
      ['eks', 'CreateAccessEntry'],
      ['lambda', 'CreateFunction'],
      ['lambda', 'Invoke'],
      ['lambda', 'DeleteFunction'],
      ['eks', 'DeleteAccessEntry'],
      ['iam', 'DetachRolePolicy'],
      ['iam', 'DeleteRole'],
    ])('%s:%s', async (service, action) => {
      const ns = await createEksNamespace(kube, 'eksretry');
      const w = await createWorkload(kube, ns, 'Pod');
      const alert = onEks(ns, w);
      const match = await matchFor(action, names(incidentWorkflowId(alert), 1).base);
      await aws.faults.failCall(service, action, { status: 500, code: 'InternalFailure', times: 2, match });
      const handle = await r.respond(alert);
      expect((await closedStatus(handle)).outcome).toBe('pod-terminated');
      expect((await aws.faults.state()).faults[0]?.fired).toBe(2);
      await noLeaks(handle.workflowId);
    });
  });

  it('cancellation mid-deploy removes what was created', async () => {
    const ns = await createEksNamespace(kube, 'ekscancel');
    const w = await createWorkload(kube, ns, 'Pod');
    // CreateFunction keeps failing (retryably), so the incident sits in the middle of its deployment.
    const alert = onEks(ns, w);
    await aws.faults.failCall('lambda', 'CreateFunction', {
      status: 500,
      code: 'ServiceException',
      times: 0,
      match: names(incidentWorkflowId(alert), 1).base,
    });
    const handle = await r.respond(alert);
    await waitForPendingActivity(handle, 'createRemediationFunction');
    await handle.cancel();
    await expect(handle.result()).rejects.toBeInstanceOf(WorkflowFailedError);
    const s = await handle.query(statusQuery);
    expect(s.outcome).toBe('cancelled');
    expect(s.cleanup.map((c) => c.status)).toEqual(['done', 'done', 'done']);
    expect(await podExists(kube, ns, w.name)).toBe(true);
    await noLeaks(handle.workflowId);
  });

  it('the orphan sweeper removes what a terminated incident left, and never an untagged resource', async () => {
    const ns = await createEksNamespace(kube, 'ekssweep');
    const w = await createWorkload(kube, ns, 'Pod');
    const decoy = `pod-responder-untagged-${fnv1a64(ns).slice(0, 8)}`;
    await aws.clients.iam.send(
      new CreateRoleCommand({
        RoleName: decoy,
        AssumeRolePolicyDocument: JSON.stringify({ Version: '2012-10-17', Statement: [] }),
      }),
    );
    // Held at Invoke (retryable fault), with everything deployed, then terminated: compensations never run.
    const alert = onEks(ns, w);
    await aws.faults.failCall('lambda', 'Invoke', {
      status: 500,
      code: 'ServiceException',
      times: 0,
      match: names(incidentWorkflowId(alert), 1).base,
    });
    const handle = await r.respond(alert);
    await waitForPendingActivity(handle, 'invokeRemediationFunction');
    await handle.terminate('operator pulled the plug');
    await aws.faults.clear();
    expect(
      await leftovers(aws.clients, INSTALLATION, handle.workflowId, aws.clusters.local, aws.clusterSecurityGroupId),
    ).toHaveLength(3);

    const report = await r.sweep({ regions: [aws.region] });
    const mine = report.removed.filter((x) => x.incidentId === handle.workflowId);
    expect(mine.map((x) => [x.kind, x.status])).toEqual([
      ['function', 'done'],
      ['access-entry', 'done'],
      ['iam-role', 'done'],
    ]);
    await noLeaks(handle.workflowId);
    expect((await aws.clients.iam.send(new GetRoleCommand({ RoleName: decoy }))).Role?.RoleName).toBe(decoy);

    // The worker put the sweeper on a Schedule when it started.
    const schedule = await r.client.schedule.getHandle(SWEEPER_SCHEDULE_ID).describe();
    expect(schedule.action).toMatchObject({
      type: 'startWorkflow',
      workflowType: 'orphanSweeper',
      args: [{ regions: [aws.region] }],
    });
    expect(schedule.spec.intervals?.map((i) => i.every)).toEqual([15 * 60_000]);
    expect(schedule.policies.overlap).toBe('SKIP');
    await aws.clients.iam.send(new DeleteRoleCommand({ RoleName: decoy }));
  });
});

// The worker SIGKILLed in the middle of each step, then restarted: the incident finishes from its
// history and leaves nothing behind. In this file, not its own, so no other file's injected faults
// (which cannot all be narrowed to one incident) run alongside it.
const taskQueue = `crash-${randomBytes(4).toString('hex')}`;
let env: NodeJS.ProcessEnv;
let crashClient: Client;
let worker: ChildProcess | undefined;

const startWorker = (): Promise<ChildProcess> => startWorkerProcess(env);
const kill = killProcessGroup;

beforeAll(async () => {
  const { path: crashZip } = await buildLambdaZip(
    path.join(mkdtempSync(path.join(tmpdir(), 'pod-responder-zip-')), 'remediation.zip'),
  );
  env = {
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    TEMPORAL_ADDRESS: inject('temporalAddress'),
    POD_RESPONDER_TASK_QUEUE: taskQueue,
    POD_RESPONDER_EXECUTOR: 'eks-lambda',
    POD_RESPONDER_AWS_ENDPOINT: aws.endpoint,
    POD_RESPONDER_LAMBDA_ZIP: crashZip,
    POD_RESPONDER_INSTALLATION_ID: INSTALLATION,
    POD_RESPONDER_PERMISSIONS_BOUNDARY_ARN: aws.permissionsBoundaryArn,
    POD_RESPONDER_LOG_LEVEL: 'INFO',
    // The worker's role (deploy/aws/worker-policy.json, held to it by the front), as its Pod Identity would give it.
    AWS_ACCESS_KEY_ID: aws.worker.accessKeyId,
    AWS_SECRET_ACCESS_KEY: aws.worker.secretAccessKey,
    AWS_SESSION_TOKEN: aws.worker.sessionToken,
    AWS_REGION: aws.region,
  };
  crashClient = new Client({ connection: await Connection.connect({ address: inject('temporalAddress') }) });
});

afterAll(async () => {
  if (worker && worker.exitCode === null && worker.signalCode === null) await kill(worker);
});

describe('worker killed at every step', () => {
  /**
   * Each step is held in place by a retryable fault on the AWS call it makes (narrowed to this incident's
   * resources where the call names them), so the kill lands while the step is running, not before or after.
   */
  it.each<[string, string, string, 'base' | 'cluster' | 'group']>([
    ['describeTargetCluster', 'eks', 'DescribeCluster', 'cluster'],
    ['createFunctionRole', 'iam', 'CreateRole', 'base'],
    ['ensureExecutorSecurityGroup', 'ec2', 'CreateTags', 'group'],
    ['createFunctionAccessEntry', 'eks', 'CreateAccessEntry', 'base'],
    ['createRemediationFunction', 'lambda', 'CreateFunction', 'base'],
    ['invokeRemediationFunction', 'lambda', 'Invoke', 'base'],
    ['deleteRemediationFunction', 'lambda', 'DeleteFunction', 'base'],
    ['deleteFunctionAccessEntry', 'eks', 'DeleteAccessEntry', 'base'],
    ['deleteFunctionRole', 'iam', 'ListAttachedRolePolicies', 'base'],
  ])(
    'killed while %s runs: restarted, the incident finishes and nothing leaks',
    async (step, service, action, scope) => {
      const group =
        scope === 'group'
          ? await ensureExecutorGroupFor(
              aws.clients,
              INSTALLATION,
              aws.clusters.local,
              aws.vpcId,
              aws.clusterSecurityGroupId,
            )
          : undefined;
      const ns = await createEksNamespace(kube, 'crash');
      const w = await createWorkload(kube, ns, 'Pod');
      const alert = alertFor(ns, w, { cluster: { name: aws.clusters.local, region: aws.region } });
      const base = names(incidentWorkflowId(alert), 1).base;
      const hold = await aws.faults.failCall(service, action, {
        status: 500,
        code: 'InternalFailure',
        times: 0,
        match: scope === 'group' ? group : scope === 'base' ? base : `/clusters/${aws.clusters.local}`,
      });
      worker = await startWorker();
      const config = configSchema.parse({
        temporal: { address: inject('temporalAddress'), taskQueue },
        executor: 'eks-lambda',
      });
      const started = await respondToAlert(crashClient, config, alert);
      const handle = crashClient.workflow.getHandle(started.workflowId);
      let held = false;
      for (let i = 0; i < 600 && !held; i++) {
        const pending = (await handle.describe()).raw.pendingActivities ?? [];
        held = pending.some((a) => a.activityType?.name === step && (a.attempt ?? 0) >= 2);
        if (!held) await new Promise((res) => setTimeout(res, 100));
      }
      expect(held).toBe(true);
      await kill(worker);
      await aws.faults.remove(hold);
      worker = await startWorker();
      const result = (await closedStatus(handle)) as { outcome: string; cleanup: { status: string }[] };
      expect(result.outcome).toBe('pod-terminated');
      expect(result.cleanup.map((c) => c.status)).toEqual(['done', 'done', 'done']);
      expect(await podExists(kube, ns, w.name)).toBe(false);
      expect(
        await leftovers(aws.clients, INSTALLATION, started.workflowId, aws.clusters.local, aws.clusterSecurityGroupId),
      ).toEqual([]);
      await kill(worker);
    },
    180_000,
  );
});
