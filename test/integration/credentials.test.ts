/**
 * Cutting the credentials, through the real worker, dev server, kube-apiserver (the ServiceAccount's IRSA
 * annotation) and moto's IAM behind the test front (which adds EKS Pod Identity): the role opted in gets an
 * inline policy denying sessions issued before T (the kill's), right after the kill; restore while watching removes it; a role
 * not opted in is left untouched; a dry run changes nothing in IAM; spent revocations are pruned; an IAM quota
 * refusal is reported and the kill goes on.
 */
import { CreatePodIdentityAssociationCommand, DeletePodIdentityAssociationCommand } from '@aws-sdk/client-eks';
import {
  CreatePolicyCommand,
  CreateRoleCommand,
  GetRoleCommand,
  GetRolePolicyCommand,
  ListRolePoliciesCommand,
  PutRolePolicyCommand,
} from '@aws-sdk/client-iam';
import type { V1OwnerReference } from '@kubernetes/client-node';
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodePolicyDocument, REVOCABLE_TAG, revocationDocument } from '../../domain/revocation.js';
import { restoreUpdate, statusQuery } from '../../workflows/messages.js';
import { awsStack } from '../support/aws.js';
import { createNamespace, markRunning, podExists, testKube, type TestKube, type Workload } from '../support/cluster.js';
import { alertFor, startResponder, type Responder } from '../support/responder.js';
import { refusal } from '../support/updates.js';
import { activitySummaries as summaries } from '../support/history.js';
import { closedStatus } from '../support/closed-status.js';

const aws = awsStack();
const iam = aws.clients.iam;
let r: Responder;
let kube: TestKube;

beforeAll(async () => {
  // The direct executor acts in the cluster; the revocation uses the worker's own AWS identity (the front).
  r = await startResponder({ eks: { endpoint: aws.endpoint, lambdaZip: 'unused-by-the-direct-executor.zip' } });
  kube = testKube();
});
afterAll(async () => r?.close());

const HOUR = 3600 * 1000;
const TRUST = JSON.stringify({
  Version: '2012-10-17',
  Statement: [
    { Effect: 'Allow', Principal: { Service: 'pods.eks.amazonaws.com' }, Action: ['sts:AssumeRole', 'sts:TagSession'] },
  ],
});

/** The most an application's role may ever do, as its owner set it: what caps any inline policy written on the role. */
let appBoundary: Promise<string> | undefined;
const appBoundaryArn = () =>
  (appBoundary ??= iam
    .send(
      new CreatePolicyCommand({
        PolicyName: `shop-app-boundary-${randomBytes(3).toString('hex')}`,
        PolicyDocument: JSON.stringify({
          Version: '2012-10-17',
          Statement: [{ Effect: 'Allow', Action: 's3:GetObject', Resource: 'arn:aws:s3:::shop/*' }],
        }),
      }),
    )
    .then((out) => out.Policy!.Arn!));

/**
 * An application's role, as its owner made it: opted in (tagged) or not, with an inline policy of its own, and
 * (by default when opted in, as an opted-in role must) a permissions boundary.
 */
async function appRole(optedIn: boolean, bounded = optedIn): Promise<{ name: string; arn: string }> {
  const name = `miner-app-${randomBytes(4).toString('hex')}`;
  const { Role } = await iam.send(
    new CreateRoleCommand({
      RoleName: name,
      AssumeRolePolicyDocument: TRUST,
      Tags: optedIn ? [{ Key: REVOCABLE_TAG.key, Value: REVOCABLE_TAG.value }] : [{ Key: 'team', Value: 'shop' }],
      ...(bounded ? { PermissionsBoundary: await appBoundaryArn() } : {}),
    }),
  );
  await iam.send(
    new PutRolePolicyCommand({
      RoleName: name,
      PolicyName: 'app-access',
      PolicyDocument: JSON.stringify({
        Version: '2012-10-17',
        Statement: [{ Effect: 'Allow', Action: 's3:GetObject', Resource: 'arn:aws:s3:::shop/*' }],
      }),
    }),
  );
  return { name, arn: Role!.Arn! };
}

const inlinePolicies = async (role: string) =>
  ((await iam.send(new ListRolePoliciesCommand({ RoleName: role }))).PolicyNames ?? []).sort();
const documentOf = async (role: string, policy: string) =>
  decodePolicyDocument(
    (await iam.send(new GetRolePolicyCommand({ RoleName: role, PolicyName: policy }))).PolicyDocument!,
  );

/** A running-looking pod that uses `serviceAccountName` (if given), owned by a ReplicaSet when `owned`. */
async function minerUsing(ns: string, serviceAccountName: string | undefined, owned: boolean): Promise<Workload> {
  const name = `miner-${randomBytes(2).toString('hex')}`;
  let owner: V1OwnerReference | undefined;
  if (owned) {
    const template = {
      metadata: { labels: { app: 'miner' } },
      spec: { containers: [{ name: 'app', image: 'registry.example/app:1' }] },
    };
    const rs = await kube.apps.createNamespacedReplicaSet({
      namespace: ns,
      body: {
        metadata: { name: 'miner-rs' },
        spec: { replicas: 2, selector: { matchLabels: { app: 'miner' } }, template },
      },
    });
    owner = {
      apiVersion: 'apps/v1',
      kind: 'ReplicaSet',
      name: rs.metadata!.name!,
      uid: rs.metadata!.uid!,
      controller: true,
    };
  }
  const pod = await kube.core.createNamespacedPod({
    namespace: ns,
    body: {
      metadata: { name, labels: { app: 'miner' }, ...(owner ? { ownerReferences: [owner] } : {}) },
      spec: {
        ...(serviceAccountName ? { serviceAccountName } : {}),
        containers: [{ name: 'app', image: 'registry.example/app:1' }],
      },
    },
  });
  const updated = await markRunning(kube, pod);
  return {
    kind: owned ? 'ReplicaSet' : 'Pod',
    name,
    uid: updated.metadata!.uid!,
    pod: updated,
  };
}

async function serviceAccount(ns: string, name: string, roleArn?: string): Promise<void> {
  await kube.core.createNamespacedServiceAccount({
    namespace: ns,
    body: { metadata: { name, ...(roleArn ? { annotations: { 'eks.amazonaws.com/role-arn': roleArn } } : {}) } },
  });
}

describe('cutting the credentials', () => {
  it("IRSA: the opted-in role denies sessions issued before T, the kill's, put right after the kill; restore while watching removes it", async () => {
    const role = await appRole(true);
    const ns = await createNamespace(kube, 'creds');
    await serviceAccount(ns, 'miner-sa', role.arn);
    const w = await minerUsing(ns, 'miner-sa', true);
    const startedAt = Date.now();
    const h = await r.respond(alertFor(ns, w), { revokeCredentials: true, watchSeconds: 600 });
    const watching = await r.waitForStage(h, 'watching');

    const c = watching.credentials!;
    expect(c).toMatchObject({ state: 'revoked', via: 'irsa', role: role.arn, serviceAccount: `${ns}/miner-sa` });
    expect(c.policyName).toMatch(/^pod-responder-revoke-[0-9a-f]{16}$/);
    expect(c.undo).toBe(`aws iam delete-role-policy --role-name ${role.name} --policy-name ${c.policyName}`);
    // T: the kill's, to the second: the DELETE answered plus its grace period (2 s), by when the kubelet has stopped
    // the container, so a session the dying pod obtains after the DELETE is denied too.
    const t = Date.parse(c.notBefore!);
    expect(c.notBefore).toMatch(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$/);
    expect(t).toBeGreaterThanOrEqual(Math.floor(startedAt / 1000) * 1000);
    const deleted = Date.parse(watching.timeline.find((e) => e.event === 'delete-pod')!.at);
    expect(watching.killedAt).toBe(new Date(deleted + 2000).toISOString());
    expect(t).toBe(Math.ceil((deleted + 2000) / 1000) * 1000);
    expect(await documentOf(role.name, c.policyName!)).toEqual(JSON.parse(revocationDocument(c.notBefore!)));
    expect(await documentOf(role.name, c.policyName!)).toMatchObject({
      Statement: [
        {
          Effect: 'Deny',
          Action: '*',
          Resource: '*',
          Condition: { DateLessThan: { 'aws:TokenIssueTime': c.notBefore } },
        },
      ],
    });
    expect(await inlinePolicies(role.name)).toEqual(['app-access', c.policyName!].sort());
    expect(await podExists(kube, ns, w.name)).toBe(false);
    const events = watching.timeline.map((e) => e.event);
    // After the kill: nothing that is not the kill delays it (docs/kill-first.md).
    expect(events.indexOf('revoke-credentials')).toBeGreaterThan(events.indexOf('delete-pod'));
    expect(events.indexOf('delete-pod')).toBeGreaterThan(events.indexOf('isolate-pod'));
    expect(await summaries(h)).toContain(
      `revoke IAM role ${role.name}'s sessions issued before ${c.notBefore} (irsa, service account ${ns}/miner-sa)`,
    );

    // Restore while watching: the revocation only (the pod is gone); the watch goes on.
    const restored = await h.executeUpdate(restoreUpdate, {
      args: [{ by: 'analyst', reason: 'a load test, not a miner' }],
    });
    expect(restored).toMatchObject({ action: 'release-credentials', target: `IAM role ${role.arn}`, status: 'done' });
    expect(await inlinePolicies(role.name)).toEqual(['app-access']);
    const after = await h.query(statusQuery);
    expect(after.stage).toBe('watching');
    expect(after.credentials).toMatchObject({ state: 'released', undo: null, policyName: c.policyName });
    expect(after.credentials!.detail).toBe(
      `restored by analyst (a load test, not a miner): policy ${c.policyName} deleted from role ${role.name}`,
    );
    expect(after.restore).toBeNull(); // a suspension restored later is still its own restore
    expect(await refusal(h.executeUpdate(restoreUpdate, { args: [{ by: 'analyst' }] }))).toMatch(
      /^nothing to restore: this incident has not suspended a workload, and its credentials revocation is already released/,
    );
    await h.terminate('test done');
  });

  it('a held suspension: restore puts the workload back and releases the revocation with it', async () => {
    const role = await appRole(true);
    const ns = await createNamespace(kube, 'creds-hold');
    await serviceAccount(ns, 'miner-sa', role.arn);
    const w = await minerUsing(ns, 'miner-sa', true);
    const h = await r.respond(alertFor(ns, w, { severity: 'critical' }), {
      revokeCredentials: true,
      holdCheckSeconds: 0,
    });
    const holding = await r.waitForStage(h, 'holding');
    const c = holding.credentials!;
    expect(c.state).toBe('revoked');
    expect(await inlinePolicies(role.name)).toContain(c.policyName);
    expect(await h.executeUpdate(restoreUpdate, { args: [{ by: 'analyst' }] })).toMatchObject({
      action: 'restore-workload',
      status: 'done',
    });
    const result = await closedStatus(h);
    expect(result.outcome).toBe('workload-restored');
    expect(result.credentials).toMatchObject({
      state: 'released',
      detail: `restored by analyst: policy ${c.policyName} deleted from role ${role.name}`,
    });
    expect(await inlinePolicies(role.name)).toEqual(['app-access']);
    expect((await kube.apps.readNamespacedReplicaSet({ namespace: ns, name: 'miner-rs' })).spec?.replicas).toBe(2);
  });

  it('an action awaiting approval revokes nothing until it is approved', async () => {
    const role = await appRole(true);
    const ns = await createNamespace(kube, 'creds-approve');
    await serviceAccount(ns, 'miner-sa', role.arn);
    const w = await minerUsing(ns, 'miner-sa', false);
    const h = await r.respond(alertFor(ns, w), { revokeCredentials: true, requireApprovalFor: ['terminate-pod'] });
    const waiting = await r.waitForStage(h, 'awaiting-approval');
    expect(waiting.isolation?.state).toBe('isolated');
    expect(waiting.credentials ?? null).toBeNull();
    expect(await inlinePolicies(role.name)).toEqual(['app-access']);
    await r.approve(h, 'lead');
    const result = await closedStatus(h);
    expect(result.outcome).toBe('pod-terminated');
    expect(result.credentials!.state).toBe('revoked');
    expect(Date.parse(result.credentials!.notBefore!)).toBeGreaterThanOrEqual(
      Date.parse(result.proposal!.answer!.at) - 1000,
    );
    expect(await inlinePolicies(role.name)).toEqual(['app-access', result.credentials!.policyName!].sort());
  });

  it('a role not opted in is not touched: refused, with how to opt in; the kill goes on', async () => {
    const role = await appRole(false);
    const ns = await createNamespace(kube, 'creds-refused');
    await serviceAccount(ns, 'miner-sa', role.arn);
    const w = await minerUsing(ns, 'miner-sa', false);
    const result = await closedStatus(await r.respond(alertFor(ns, w), { revokeCredentials: true }));
    expect(result.outcome).toBe('pod-terminated');
    expect(result.credentials).toMatchObject({ state: 'refused', via: 'irsa', role: role.arn, undo: null });
    // The worker's role may not even read a role that is not opted in (deploy/aws/worker-policy.json; the front evaluates it).
    expect(result.credentials!.detail).toContain(
      `the worker may not read role ${role.name} (AccessDenied): its IAM policy allows only roles tagged ${REVOCABLE_TAG.key}=true`,
    );
    expect(result.credentials!.detail).toContain(
      `aws iam tag-role --role-name ${role.name} --tags Key=pod-responder.io/revocable,Value=true`,
    );
    expect(await inlinePolicies(role.name)).toEqual(['app-access']);
    expect((await iam.send(new GetRoleCommand({ RoleName: role.name }))).Role!.Tags).toEqual([
      { Key: 'team', Value: 'shop' },
    ]);
    expect(await podExists(kube, ns, w.name)).toBe(false);
  });

  it('an opted-in role without a permissions boundary is not touched: refused before writing, with how to set one; the kill goes on', async () => {
    const role = await appRole(true, false);
    const ns = await createNamespace(kube, 'creds-unbounded');
    await serviceAccount(ns, 'miner-sa', role.arn);
    const w = await minerUsing(ns, 'miner-sa', false);
    const result = await closedStatus(await r.respond(alertFor(ns, w), { revokeCredentials: true }));
    expect(result.outcome).toBe('pod-terminated');
    expect(result.credentials).toMatchObject({ state: 'refused', via: 'irsa', role: role.arn, undo: null });
    expect(result.credentials!.detail).toContain(
      `role ${role.name} is opted in but has no permissions boundary: not touched; an opted-in role must carry one, which caps what any inline policy can grant it ` +
        `(aws iam put-role-permissions-boundary --role-name ${role.name} --permissions-boundary `,
    );
    // Nothing written: its own policy only.
    expect(await inlinePolicies(role.name)).toEqual(['app-access']);
    expect(await podExists(kube, ns, w.name)).toBe(false);
  });

  it("EKS Pod Identity: the association's role is found through the EKS API and revoked (no ServiceAccount object needed)", async () => {
    const role = await appRole(true);
    const ns = await createNamespace(kube, 'creds-pi');
    const { association } = await aws.clients.eks.send(
      new CreatePodIdentityAssociationCommand({
        clusterName: aws.clusters.local,
        namespace: ns,
        serviceAccount: 'pi-sa',
        roleArn: role.arn,
      }),
    );
    try {
      // The ServiceAccount does not exist: inspection still works, and the association is what maps it.
      const w = await minerUsing(ns, 'pi-sa', false);
      const h = await r.respond(alertFor(ns, w, { cluster: { name: aws.clusters.local, region: aws.region } }), {
        revokeCredentials: true,
      });
      const result = await closedStatus(h);
      expect(result.outcome).toBe('pod-terminated');
      expect(result.pod!.serviceAccount).toEqual({ name: 'pi-sa' });
      const c = result.credentials!;
      expect(c).toMatchObject({ state: 'revoked', via: 'pod-identity', role: role.arn, serviceAccount: `${ns}/pi-sa` });
      expect(c.detail).toContain(
        `EKS Pod Identity association ${association!.associationId} maps ${ns}/pi-sa to ${role.arn}`,
      );
      expect(await documentOf(role.name, c.policyName!)).toEqual(JSON.parse(revocationDocument(c.notBefore!)));
      expect(await summaries(h)).toContain(
        `find the EKS Pod Identity role of service account ${ns}/pi-sa in ${aws.clusters.local}`,
      );
    } finally {
      await aws.clients.eks.send(
        new DeletePodIdentityAssociationCommand({
          clusterName: aws.clusters.local,
          associationId: association!.associationId,
        }),
      );
    }
  });

  it('no IRSA annotation and no association: nothing to revoke, said so', async () => {
    const ns = await createNamespace(kube, 'creds-none');
    await serviceAccount(ns, 'plain');
    const w = await minerUsing(ns, 'plain', false);
    const result = await closedStatus(
      await r.respond(alertFor(ns, w, { cluster: { name: aws.clusters.local, region: aws.region } }), {
        revokeCredentials: true,
      }),
    );
    expect(result.outcome).toBe('pod-terminated');
    expect(result.credentials).toMatchObject({ state: 'no-role', role: null, serviceAccount: `${ns}/plain` });
    expect(result.credentials!.detail).toBe(
      `service account ${ns}/plain has no IRSA annotation; no EKS Pod Identity association for service account ${ns}/plain in cluster ${aws.clusters.local}`,
    );
  });

  it('a dry run says it would revoke, and changes nothing in IAM', async () => {
    const role = await appRole(true);
    const ns = await createNamespace(kube, 'creds-dry');
    await serviceAccount(ns, 'miner-sa', role.arn);
    const w = await minerUsing(ns, 'miner-sa', false);
    const before = {
      policies: await inlinePolicies(role.name),
      role: (await iam.send(new GetRoleCommand({ RoleName: role.name }))).Role,
    };
    const result = await closedStatus(await r.respond(alertFor(ns, w), { mode: 'dry-run', revokeCredentials: true }));
    expect(result.outcome).toBe('dry-run');
    const line = result.wouldHaveDone!.find((l) => l.startsWith('would-revoke-credentials'));
    expect(line).toMatch(
      new RegExp(
        `^would-revoke-credentials of IAM role ${role.arn} \\(IRSA, service account ${ns}/miner-sa\\): inline policy pod-responder-revoke-[0-9a-f]{16} denying every session issued before the kill, if the role is tagged pod-responder.io/revocable=true$`,
      ),
    );
    expect(result.wouldHaveDone!.indexOf(line!)).toBeGreaterThan(
      result.wouldHaveDone!.findIndex((l) => l.startsWith('would-terminate-pod')),
    );
    expect(result.credentials ?? null).toBeNull();
    expect({
      policies: await inlinePolicies(role.name),
      role: (await iam.send(new GetRoleCommand({ RoleName: role.name }))).Role,
    }).toEqual(before);
    expect(await podExists(kube, ns, w.name, w.uid)).toBe(true);
  });

  it('spent revocations of ours (T more than 12 h past) are pruned; live ones and other policies stay', async () => {
    const role = await appRole(true);
    const iso = (ms: number) => new Date(Math.floor(ms / 1000) * 1000).toISOString().replace('.000Z', 'Z');
    const put = (name: string, doc: string) =>
      iam.send(new PutRolePolicyCommand({ RoleName: role.name, PolicyName: name, PolicyDocument: doc }));
    const spent = 'pod-responder-revoke-00000000000000aa';
    const live = 'pod-responder-revoke-00000000000000bb';
    const lookalike = 'pod-responder-revoke-00000000000000cc';
    await put(spent, revocationDocument(iso(Date.now() - 13 * HOUR)));
    await put(live, revocationDocument(iso(Date.now() - 2 * HOUR)));
    // Our name, not our content (it denies S3 only): never deleted, however old.
    await put(
      lookalike,
      JSON.stringify({
        Version: '2012-10-17',
        Statement: [
          {
            Effect: 'Deny',
            Action: 's3:*',
            Resource: '*',
            Condition: { DateLessThan: { 'aws:TokenIssueTime': iso(Date.now() - 20 * HOUR) } },
          },
        ],
      }),
    );
    const ns = await createNamespace(kube, 'creds-prune');
    await serviceAccount(ns, 'miner-sa', role.arn);
    const w = await minerUsing(ns, 'miner-sa', false);
    const result = await closedStatus(await r.respond(alertFor(ns, w), { revokeCredentials: true }));
    const c = result.credentials!;
    expect(c.state).toBe('revoked');
    expect(c.detail).toContain(`pruned spent revocations: ${spent}`);
    expect(await inlinePolicies(role.name)).toEqual(['app-access', c.policyName!, live, lookalike].sort());
  });

  it("IAM's inline-policy quota refusing it: failed with a clear message, and the pod is still killed", async () => {
    const role = await appRole(true);
    const ns = await createNamespace(kube, 'creds-limit');
    await serviceAccount(ns, 'miner-sa', role.arn);
    const w = await minerUsing(ns, 'miner-sa', false);
    // A quota stays exceeded: every PutRolePolicy on the role fails (the SDK itself tries 3 times: to it, LimitExceeded is throttling).
    const fault = await aws.faults.failCall('iam', 'PutRolePolicy', {
      times: 0,
      status: 409,
      code: 'LimitExceeded',
      message: 'Maximum policy size of 10240 bytes exceeded for role',
      match: role.name,
    });
    try {
      const result = await closedStatus(await r.respond(alertFor(ns, w), { revokeCredentials: true }));
      expect(result.outcome).toBe('pod-terminated');
      expect(result.credentials).toMatchObject({ state: 'failed', role: role.arn, via: 'irsa' });
      expect(result.credentials!.undo).toBe(
        `aws iam delete-role-policy --role-name ${role.name} --policy-name ${result.credentials!.policyName}`,
      );
      expect(result.credentials!.detail).toMatch(
        /; not revoked \(revokeRoleSessions failed: IAM refused the revocation policy on role miner-app-\w+: its inline policies would exceed IAM's quota of 10,240 characters per role/,
      );
      expect(result.credentials!.detail).toMatch(/; not revoked \(.*\); going on$/);
      expect(await inlinePolicies(role.name)).toEqual(['app-access']);
      expect(await podExists(kube, ns, w.name)).toBe(false);
      // Not retried by Temporal: no retry makes room in the quota.
      expect((await aws.faults.state()).faults.find((f) => f.id === fault)!.fired).toBeLessThanOrEqual(3);
    } finally {
      await aws.faults.remove(fault);
    }
  });

  it('a revocation whose answer is lost (IAM applied it, then failed the call): retried, the same policy, once; the pod killed', async () => {
    const role = await appRole(true);
    const ns = await createNamespace(kube, 'creds-lost');
    await serviceAccount(ns, 'miner-sa', role.arn);
    const w = await minerUsing(ns, 'miner-sa', false);
    // Every attempt the SDK makes in the first activity attempt takes effect and answers 500: Temporal retries the activity.
    const fault = await aws.faults.failCall('iam', 'PutRolePolicy', { times: 3, when: 'after', match: role.name });
    try {
      const result = await closedStatus(await r.respond(alertFor(ns, w), { revokeCredentials: true }));
      expect(result.outcome).toBe('pod-terminated');
      const c = result.credentials!;
      expect(c.state).toBe('revoked');
      expect((await aws.faults.state()).faults.find((f) => f.id === fault)!.fired).toBe(3);
      // Written again with the same T (decided by the workflow, not the attempt): one policy, the right one.
      expect(await inlinePolicies(role.name)).toEqual(['app-access', c.policyName!].sort());
      expect(await documentOf(role.name, c.policyName!)).toEqual(JSON.parse(revocationDocument(c.notBefore!)));
      expect(await podExists(kube, ns, w.name)).toBe(false);
    } finally {
      await aws.faults.remove(fault);
    }
  });
});
