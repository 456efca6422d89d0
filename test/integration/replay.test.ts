/**
 * Replays recorded incident histories against the current workflow code: a change that makes the code
 * nondeterministic against its own histories (an activity or timer that depends on something not in the
 * history) fails here, and so does a change made without re-recording.
 *
 * test/histories/ holds one history per scenario, recorded on today's code, some of them mid-flight (holding,
 * awaiting approval). No release exists, so there is one version: re-record after every change to the workflow:
 *   RECORD_HISTORIES=1 npx vitest run test/integration/replay.test.ts
 * After the first release, an incident stays on the build it started on (Worker Deployment Versioning, docs/changing-the-workflow.md
 * "Changing the workflow"), so a change never has to replay another build's histories.
 */
import { historyFromJSON, historyToJSON } from '@temporalio/common/lib/proto-utils.js';
import { Worker } from '@temporalio/worker';
import { execFileSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { buildLambdaZip } from '../../lambda/build.js';
import { mergePatch } from '../../remediation/kube.js';
import { installLogging } from '../../worker/logging.js';
import { workflowsPath } from '../../worker/worker.js';
import { workflowBundle as bundleFrom } from '../../worker/workflow-bundle.js';
import { alertsSignal, escalateSignal, restoreUpdate, statusQuery } from '../../workflows/messages.js';
import { awsStack } from '../support/aws.js';
import {
  bindEksNamespace,
  createNamespace,
  createWorkload,
  markRunning,
  testKube,
  type TestKube,
} from '../support/cluster.js';
import { alertFor, startResponder, type Responder } from '../support/responder.js';
import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';
import { CreatePolicyCommand, CreateRoleCommand } from '@aws-sdk/client-iam';
import { randomBytes } from 'node:crypto';
import { REVOCABLE_TAG } from '../../domain/revocation.js';
import { respondToAlert } from '../../temporal-client/incidents.js';
import { configSchema } from '../../config/config.js';
import { startHoldingRelay } from '../support/holding-relay.js';
import { until } from '../support/until.js';
import { killProcessGroup, startWorkerProcess } from '../support/worker-process.js';

const dir = new URL('../histories/', import.meta.url);
const recording = Boolean(process.env.RECORD_HISTORIES);
installLogging('WARN');

describe.runIf(recording)('record histories', () => {
  let r: Responder;
  let eks: Responder;
  /** With an evidence bucket and the worker's AWS identity: the bundle and the credentials revocation. */
  let full: Responder;
  let kube: TestKube;
  const aws = awsStack();
  const bucket = `replay-evidence-${randomBytes(3).toString('hex')}`;
  beforeAll(async () => {
    r = await startResponder();
    await new S3Client({ region: aws.region, endpoint: aws.endpoint, forcePathStyle: true }).send(
      new CreateBucketCommand({ Bucket: bucket }),
    );
    full = await startResponder({
      evidence: { bucket, endpoint: aws.endpoint, region: aws.region },
      eks: { endpoint: aws.endpoint, lambdaZip: 'unused-by-the-direct-executor.zip' },
    });
    const { path: lambdaZip } = await buildLambdaZip(
      path.join(mkdtempSync(path.join(tmpdir(), 'pod-responder-zip-')), 'remediation.zip'),
    );
    eks = await startResponder({
      executor: 'eks-lambda',
      eks: { endpoint: aws.endpoint, lambdaZip, sweepRegions: [aws.region] },
    });
    kube = testKube();
  });
  afterAll(async () => {
    await r?.close();
    await eks?.close();
    await full?.close();
  });

  /** Each returns the workflow ID, and a run ID when the run to keep is not the latest. */
  const scenarios: Record<string, (ns: string) => Promise<{ workflowId: string; runId?: string }>> = {
    'terminate-bare-pod': async (ns) => {
      const h = await r.respond(alertFor(ns, await createWorkload(kube, ns, 'Pod')));
      await h.result();
      return h;
    },
    'escalate-suspend-restore-deployment': async (ns) => {
      const h = await r.respond(alertFor(ns, await createWorkload(kube, ns, 'Deployment')), {
        holdSuspensionSeconds: 300,
      });
      await r.waitForStage(h, 'watching');
      await h.signal(escalateSignal, { by: 'soc', reason: 'confirmed' });
      await r.waitForStage(h, 'holding');
      await h.executeUpdate(restoreUpdate, { args: [{ by: 'soc' }] });
      await h.result();
      return h;
    },
    'approved-suspend-cronjob': async (ns) => {
      const h = await r.respond(alertFor(ns, await createWorkload(kube, ns, 'CronJob'), { severity: 'critical' }), {
        requireApprovalFor: ['suspend-workload'],
        holdSuspensionSeconds: 0,
      });
      await r.approve(h, 'lead');
      await h.result();
      return h;
    },
    'dismissed-stale': async (ns) => {
      const w = await createWorkload(kube, ns, 'Pod');
      const h = await r.respond(alertFor(ns, w, { detectedAt: new Date(Date.now() - 7200_000).toISOString() }));
      await h.result();
      return h;
    },
    'eks-lambda-terminate': async (ns) => {
      await bindEksNamespace(kube, ns);
      const w = await createWorkload(kube, ns, 'Pod');
      const h = await eks.respond(alertFor(ns, w, { cluster: { name: aws.clusters.local, region: aws.region } }));
      await h.result();
      return h;
    },
    // Held on EKS: a hold check deploys and removes its own function stack; restore after it.
    'eks-hold-checked-restored': async (ns) => {
      await bindEksNamespace(kube, ns);
      const w = await createWorkload(kube, ns, 'Deployment');
      const alert = alertFor(ns, w, {
        severity: 'critical',
        cluster: { name: aws.clusters.local, region: aws.region },
      });
      // Seconds apart, below the floor an operator's config enforces (300 s).
      const h = await eks.respond(alert, { holdSuspensionSeconds: 300, eksHoldCheckSeconds: 2 });
      await eks.waitForStage(h, 'holding', 90_000);
      for (let i = 0; i < 600 && (await h.query(statusQuery)).cleanup.length < 6; i++)
        await new Promise((res) => setTimeout(res, 100));
      await h.executeUpdate(restoreUpdate, { args: [{ by: 'soc' }] });
      await h.result();
      return h;
    },
    'cancelled-while-holding': async (ns) => {
      const h = await r.respond(alertFor(ns, await createWorkload(kube, ns, 'Deployment'), { severity: 'critical' }), {
        holdSuspensionSeconds: 300,
      });
      await r.waitForStage(h, 'holding');
      await h.cancel();
      await h.result().catch(() => undefined);
      return h;
    },
    // The first run of a flooded incident, ending in continue-as-new.
    'flood-continued-as-new': async (ns) => {
      const w = await createWorkload(kube, ns, 'Deployment');
      const first = alertFor(ns, w);
      const h = await r.respond(first, { historyEventsPerRun: 100 });
      await r.waitForStage(h, 'watching');
      const { runId } = await h.describe();
      for (let n = 0; n < 60; n++) await h.signal(alertsSignal, [{ ...first, alertId: `${first.alertId}-r${n}` }]);
      for (let i = 0; i < 100 && (await h.query(statusQuery)).run === 1; i++)
        await new Promise((res) => setTimeout(res, 100));
      expect((await h.query(statusQuery)).run).toBeGreaterThan(1);
      await h.terminate('recorded');
      return { workflowId: h.workflowId, runId };
    },
    // Isolated while awaiting approval, then denied: the isolation is released in a stretch of its own.
    'denied-after-isolation': async (ns) => {
      const h = await r.respond(alertFor(ns, await createWorkload(kube, ns, 'Pod')), {
        requireApprovalFor: ['terminate-pod'],
      });
      await r.deny(h, 'lead', 'not a miner');
      await h.result();
      return h;
    },
    // A held suspension undone by a self-heal, re-applied by a hold check, then restored.
    'hold-reverted-then-restored': async (ns) => {
      const w = await createWorkload(kube, ns, 'Deployment');
      const h = await r.respond(alertFor(ns, w, { severity: 'critical' }), {
        holdCheckSeconds: 1,
        holdSuspensionSeconds: 300,
      });
      await r.waitForStage(h, 'holding');
      await kube.apps.patchNamespacedDeployment(
        { namespace: ns, name: w.name, body: { spec: { replicas: 3 } }, fieldManager: 'argocd-application-controller' },
        mergePatch,
      );
      for (let i = 0; i < 100 && !(await h.query(statusQuery)).hold?.reverts; i++)
        await new Promise((res) => setTimeout(res, 100));
      await r.waitForStage(h, 'holding');
      await h.executeUpdate(restoreUpdate, { args: [{ by: 'soc' }] });
      await h.result();
      return h;
    },
    // Evidence captured (its search attribute set), IRSA credentials revoked before the kill, released by restore while watching.
    'evidence-revoke-restore': async (ns) => {
      const role = `replay-app-${randomBytes(3).toString('hex')}`;
      const trust = JSON.stringify({
        Version: '2012-10-17',
        Statement: [{ Effect: 'Allow', Principal: { Service: 'pods.eks.amazonaws.com' }, Action: 'sts:AssumeRole' }],
      });
      // Opted in, with the permissions boundary an opted-in role must carry for the revocation to write on it.
      const boundary = await aws.clients.iam.send(
        new CreatePolicyCommand({
          PolicyName: `${role}-boundary`,
          PolicyDocument: JSON.stringify({
            Version: '2012-10-17',
            Statement: [{ Effect: 'Allow', Action: 's3:GetObject', Resource: 'arn:aws:s3:::shop/*' }],
          }),
        }),
      );
      const { Role } = await aws.clients.iam.send(
        new CreateRoleCommand({
          RoleName: role,
          AssumeRolePolicyDocument: trust,
          Tags: [{ Key: REVOCABLE_TAG.key, Value: REVOCABLE_TAG.value }],
          PermissionsBoundary: boundary.Policy!.Arn!,
        }),
      );
      await kube.core.createNamespacedServiceAccount({
        namespace: ns,
        body: { metadata: { name: 'miner', annotations: { 'eks.amazonaws.com/role-arn': Role!.Arn! } } },
      });
      // A Job's pod running as that service account (a pod's service account cannot be changed after creation).
      const job = await kube.batch.createNamespacedJob({
        namespace: ns,
        body: {
          metadata: { name: 'miner' },
          spec: {
            template: {
              spec: {
                serviceAccountName: 'miner',
                restartPolicy: 'Never',
                containers: [{ name: 'app', image: 'registry.example/app:1' }],
              },
            },
          },
        },
      });
      const owner = { apiVersion: 'batch/v1', kind: 'Job', name: 'miner', uid: job.metadata!.uid!, controller: true };
      const pod = await kube.core.createNamespacedPod({
        namespace: ns,
        body: {
          metadata: { name: 'miner-x1', ownerReferences: [owner] },
          spec: { serviceAccountName: 'miner', containers: [{ name: 'app', image: 'registry.example/app:1' }] },
        },
      });
      const running = await markRunning(kube, pod);
      const w = { kind: 'Job', name: 'miner', uid: job.metadata!.uid!, pod: running };
      const h = await full.respond(alertFor(ns, w), { revokeCredentials: true, watchSeconds: 30 });
      await full.waitForStage(h, 'watching');
      await h.executeUpdate(restoreUpdate, { args: [{ by: 'soc' }] });
      await h.terminate('recorded');
      return h;
    },
    'running-mid-hold': async (ns) => {
      const h = await r.respond(alertFor(ns, await createWorkload(kube, ns, 'StatefulSet'), { severity: 'critical' }), {
        holdSuspensionSeconds: 3600,
      });
      await r.waitForStage(h, 'holding');
      return h;
    },
    'running-mid-approval': async (ns) => {
      const h = await r.respond(alertFor(ns, await createWorkload(kube, ns, 'Deployment')), {
        requireApprovalFor: ['terminate-pod'],
      });
      await r.waitForStage(h, 'awaiting-approval');
      return h;
    },
    // A worker process SIGKILLed while the first workflow task's pod read (a local activity) waits on a stalled
    // network path: the task times out, a new worker runs the task again from the start, reads, and kills.
    'worker-killed-mid-local-activity': async (ns) => {
      const w = await createWorkload(kube, ns, 'Pod');
      const relay = await startHoldingRelay(
        inject('kubeconfigPath'),
        mkdtempSync(path.join(tmpdir(), 'pod-responder-relay-')),
      );
      const taskQueue = `record-crash-${randomBytes(3).toString('hex')}`;
      const env = {
        PATH: process.env.PATH,
        HOME: process.env.HOME,
        TEMPORAL_ADDRESS: inject('temporalAddress'),
        POD_RESPONDER_TASK_QUEUE: taskQueue,
        KUBECONFIG: relay.kubeconfig,
        POD_RESPONDER_CLUSTER: 'local',
        POD_RESPONDER_LOG_LEVEL: 'WARN',
      };
      let worker = await startWorkerProcess(env);
      try {
        relay.hold();
        const config = configSchema.parse({
          temporal: { address: inject('temporalAddress'), taskQueue },
          policy: { evidenceSeconds: 0 },
        });
        const { workflowId } = await respondToAlert(r.client, config, alertFor(ns, w));
        await until('the pod read waiting on the held relay', async () => relay.heldFromClients > 0, 30_000);
        await killProcessGroup(worker);
        relay.release();
        worker = await startWorkerProcess(env);
        const result = await r.client.workflow.getHandle(workflowId).result();
        expect(result.outcome).toBe('pod-terminated');
        return { workflowId };
      } finally {
        await killProcessGroup(worker);
        await relay.close();
      }
    },
  };
  const only = process.env.RECORD_ONLY?.split(',');

  it.each(Object.keys(scenarios).filter((n) => !only || only.includes(n)))('%s', async (name) => {
    const ns = await createNamespace(kube, 'record');
    const { workflowId, runId } = await scenarios[name]!(ns);
    // The canonical proto3 JSON (as `temporal workflow show -o json` writes it) that historyFromJSON reads back.
    const history = await r.client.workflow.getHandle(workflowId, runId).fetchHistory();
    writeFileSync(new URL(`${name}.json`, dir), historyToJSON(history));
    if (name.startsWith('running-')) await r.client.workflow.getHandle(workflowId).terminate('recorded');
  });
});

describe('replay recorded histories', () => {
  const files = readdirSync(dir).filter((f) => f.endsWith('.json'));

  it.skipIf(recording)('has a history of every scenario, mid-flight ones among them', () => {
    expect(files.sort()).toEqual([
      'approved-suspend-cronjob.json',
      'cancelled-while-holding.json',
      'denied-after-isolation.json',
      'dismissed-stale.json',
      'eks-hold-checked-restored.json',
      'eks-lambda-terminate.json',
      'escalate-suspend-restore-deployment.json',
      'evidence-revoke-restore.json',
      'flood-continued-as-new.json',
      'hold-reverted-then-restored.json',
      'running-mid-approval.json',
      'running-mid-hold.json',
      'terminate-bare-pod.json',
      'worker-killed-mid-local-activity.json',
    ]);
  });

  it.skipIf(recording)(
    'the direct executor recorded its kill path as local activities, a worker killed mid-call too',
    () => {
      const markers = (file: string) => {
        const { events } = historyFromJSON(JSON.parse(readFileSync(new URL(file, dir), 'utf8')));
        return events!.flatMap((e) => {
          const data = e.markerRecordedEventAttributes ? e.userMetadata?.summary?.data : undefined;
          return data ? [(JSON.parse(Buffer.from(data).toString()) as string).split(' ')[0]] : [];
        });
      };
      expect(markers('terminate-bare-pod.json')).toEqual(expect.arrayContaining(['inspect', 'isolate', 'delete']));
      const crash = historyFromJSON(
        JSON.parse(readFileSync(new URL('worker-killed-mid-local-activity.json', dir), 'utf8')),
      ).events!;
      // The killed worker's first task timed out; the next worker's recorded the read and the DELETE.
      const timedOut = crash.findIndex((e) => e.workflowTaskTimedOutEventAttributes);
      const firstMarker = crash.findIndex((e) => e.markerRecordedEventAttributes && e.userMetadata?.summary);
      expect(timedOut).toBeGreaterThan(-1);
      expect(firstMarker).toBeGreaterThan(timedOut);
      expect(markers('worker-killed-mid-local-activity.json')).toEqual(expect.arrayContaining(['inspect', 'delete']));
    },
  );

  it.each(files)('%s replays without nondeterminism', async (file) => {
    const history = historyFromJSON(JSON.parse(readFileSync(new URL(file, dir), 'utf8')));
    await expect(
      Worker.runReplayHistory({ workflowsPath: workflowsPath(), replayName: file }, history),
    ).resolves.toBeUndefined();
  });

  it('the compiled worker (dist/, as the image runs it) replays an incident that checks repeat alerts', async () => {
    // The alert schema is loaded on the first repeat alert, by a require that webpack must resolve in dist/ too.
    const root = new URL('../../', import.meta.url);
    execFileSync(
      process.execPath,
      [createRequire(import.meta.url).resolve('typescript/bin/tsc'), '-p', 'tsconfig.build.json'],
      { cwd: root },
    );
    const workflowBundle = await bundleFrom(new URL('dist/workflows/index.js', root).pathname);
    const file = 'flood-continued-as-new.json';
    const history = historyFromJSON(JSON.parse(readFileSync(new URL(file, dir), 'utf8')));
    await expect(Worker.runReplayHistory({ workflowBundle, replayName: file }, history)).resolves.toBeUndefined();
  }, 180_000);
});
