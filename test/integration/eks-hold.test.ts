/**
 * Holding a suspension on EKS, through the real parts (moto behind the test front, the bundled handler run by the
 * front, the real kube-apiserver): each hold check deploys the function stack, reads the suspension back, and
 * removes the stack; between checks nothing is deployed. A restore is taken at any moment of the hold: between
 * checks and during one (it waits for the check). The checks here are seconds apart, below the floor an operator's
 * config enforces (300 s), so a test sees several in one run.
 */
import { WorkflowFailedError, type WorkflowHandle } from '@temporalio/client';
import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { respondToAlert } from '../../temporal-client/incidents.js';
import type { PodAlert } from '../../domain/alert.js';
import { resourceNames } from '../../domain/aws-resources.js';
import { policySchema } from '../../domain/policy.js';
import { buildLambdaZip } from '../../lambda/build.js';
import { mergePatch } from '../../remediation/kube.js';
import { incidentWorkflowId } from '../../workflows/ids.js';
import { restoreUpdate, statusQuery, type IncidentStatus } from '../../workflows/messages.js';
import type { IncidentWorkflow } from '../../workflows/malicious-pod-response.js';
import { awsStack, leftovers } from '../support/aws.js';
import { createEksNamespace, createWorkload, testKube, type TestKube, type Workload } from '../support/cluster.js';
import { alertFor, startResponder, waitForPendingActivity, type Responder } from '../support/responder.js';
import { until } from '../support/until.js';
import { killProcessGroup, startWorkerProcess } from '../support/worker-process.js';
import { closedStatus } from '../support/closed-status.js';

const aws = awsStack();
const INSTALLATION = 'eks-hold-tests';
const names = (incidentId: string, session: number) => resourceNames(incidentId, session, INSTALLATION).base;
let r: Responder;
let kube: TestKube;

beforeAll(async () => {
  const { path: lambdaZip } = await buildLambdaZip(
    path.join(mkdtempSync(path.join(tmpdir(), 'pod-responder-zip-')), 'remediation.zip'),
  );
  r = await startResponder({
    executor: 'eks-lambda',
    eks: { endpoint: aws.endpoint, lambdaZip, installationId: INSTALLATION },
  });
  kube = testKube();
});
afterAll(async () => r?.close());
afterEach(async () => aws.faults.clear());

/** A Deployment on the EKS cluster and a critical alert about its pod (which suspends the Deployment). */
async function deploymentOnEks(prefix: string) {
  const ns = await createEksNamespace(kube, prefix);
  const w = await createWorkload(kube, ns, 'Deployment');
  const alert = alertFor(ns, w, { severity: 'critical', cluster: { name: aws.clusters.local, region: aws.region } });
  return { ns, w, alert };
}

/** Responds, and waits for the suspension to be held, checked every `everySeconds`. */
/** The function of the incident's executor stretch `stretch` cannot be invoked (a retryable fault, until cleared): that
 * stretch sits with its whole stack deployed. Returns the fault, to clear it. */
function blockInvoke(alert: PodAlert, stretch: number) {
  return aws.faults.failCall('lambda', 'Invoke', {
    status: 500,
    code: 'ServiceException',
    times: 0,
    match: names(incidentWorkflowId(alert), stretch),
  });
}

async function holdOnEks(alert: PodAlert, everySeconds: number): Promise<WorkflowHandle<IncidentWorkflow>> {
  const h = await r.respond(alert, { holdSuspensionSeconds: 900, eksHoldCheckSeconds: everySeconds });
  await r.waitForStage(h, 'holding', 90_000);
  return h;
}

const status = (h: WorkflowHandle): Promise<IncidentStatus> => h.query(statusQuery);
const replicas = async (ns: string, w: Workload) =>
  (await kube.apps.readNamespacedDeployment({ namespace: ns, name: w.name })).spec?.replicas;
const noLeaks = async (incidentId: string) =>
  expect(
    await leftovers(aws.clients, INSTALLATION, incidentId, aws.clusters.local, aws.clusterSecurityGroupId),
  ).toEqual([]);

/** Executor stretch `session` has deployed and fully removed its stack (its three undos are in the cleanup). */
const removed = (s: IncidentStatus, incidentId: string, session: number) =>
  s.cleanup.filter((c) => c.name.endsWith(names(incidentId, session)) && c.status === 'done').length === 3;

/** Waits until hold check `n` (stretch n + 1: stretch 1 suspended the workload) has ended and removed its stack. */
async function checkDone(h: WorkflowHandle, n: number): Promise<IncidentStatus> {
  return until(
    `hold check ${n} done and its stack removed`,
    async () => {
      const s = await status(h);
      return (s.hold?.checks ?? 0) >= n && removed(s, h.workflowId, n + 1) && s;
    },
    120_000,
  );
}

describe('a suspension held on EKS', () => {
  it(
    'is checked through three checks, one finding a revert, each deploying and removing its stack; then restored, leaving nothing',
    { timeout: 300_000 },
    async () => {
      const { ns, w, alert } = await deploymentOnEks('ekshold');
      const h = await holdOnEks(alert, 4);
      expect(await replicas(ns, w)).toBe(0);

      // Check 1: found as suspended; its stack is gone again and the incident is back to (still) holding.
      const first = await checkDone(h, 1);
      expect(first.hold).toMatchObject({ checks: 1, reverts: 0 });
      expect(first.stage).toBe('holding');
      await noLeaks(h.workflowId); // nothing deployed between checks

      // A GitOps self-heal scales the Deployment back up: the next check finds it and scales it down again.
      await kube.apps.patchNamespacedDeployment(
        { namespace: ns, name: w.name, body: { spec: { replicas: 3 } }, fieldManager: 'argocd-application-controller' },
        mergePatch,
      );
      const reverted = await until(
        'the revert found',
        async () => {
          const s = await status(h);
          return (s.hold?.reverts ?? 0) >= 1 && s;
        },
        120_000,
      );
      expect(reverted.hold!.lastRevert).toMatchObject({
        observed: `Deployment ${ns}/${w.name}: spec.replicas=3`,
        by: 'argocd-application-controller',
      });
      await until('scaled down again', async () => (await replicas(ns, w)) === 0);

      // One more check after the revert's: three in all; then one clean check, whose AWS calls are counted.
      const third = await checkDone(h, 3);
      const from = (await aws.faults.calls()).length;
      const fourth = await checkDone(h, 4);
      const calls = (await aws.faults.calls(from)).filter((c) => !c.action.startsWith('List')); // the sweeper lists; a check never does
      const byAction = calls.reduce<Record<string, number>>(
        (m, c) => ({ ...m, [`${c.service}:${c.action}`]: (m[`${c.service}:${c.action}`] ?? 0) + 1 }),
        {},
      );
      console.log(`AWS calls of one EKS hold check (no revert): ${calls.length} ${JSON.stringify(byAction)}`);
      expect(fourth.hold!.reverts).toBe(1);
      expect(third.hold!.checks).toBeGreaterThanOrEqual(3);
      // docs/eks.md: 24 calls here (19 fixed, the rest polls while the function is Pending); the bound there assumes at most 40.
      expect(calls.length).toBeLessThanOrEqual(40);
      expect(byAction['lambda:CreateFunction']).toBe(1);
      expect(byAction['lambda:DeleteFunction']).toBe(1);

      // Restore after several checks (refused on the old code: the first check's cleanup left the stage `cleaning-up`).
      const result = await h.executeUpdate(restoreUpdate, { args: [{ by: 'ana', reason: 'false positive' }] });
      expect(result.status).toBe('done');
      const end = await closedStatus(h);
      expect(end.outcome).toBe('workload-restored');
      expect(await replicas(ns, w)).toBe(3);
      // Every stretch (suspend, each check, restore) removed all three of its resources.
      expect(end.cleanup.length).toBe(3 * end.executorSessions);
      expect(end.cleanup.every((c) => c.status === 'done')).toBe(true);
      await noLeaks(h.workflowId);
    },
  );

  it(
    'takes a restore asked during a check after the first: it waits for the check, then restores; nothing is left',
    { timeout: 240_000 },
    async () => {
      const { ns, w, alert } = await deploymentOnEks('eksholdrace');
      // The second check's function (stretch 3) cannot be invoked for now (a retryable fault): that check is under way.
      await blockInvoke(alert, 3);
      const h = await holdOnEks(alert, 4);
      await checkDone(h, 1);
      await waitForPendingActivity(h, 'invokeRemediationFunction', 2, 120_000);

      // Refused on the old code: the first check's cleanup had left the stage `cleaning-up`.
      const restoring = h.executeUpdate(restoreUpdate, { args: [{ by: 'ana' }] });
      const waiting = await until('the restore taken and waiting for the check', async () => {
        const s = await status(h);
        return s.restore?.state === 'restoring' && s;
      });
      expect(waiting.stage).toBe('restoring');
      expect(removed(waiting, h.workflowId, 3)).toBe(false); // the check's stack is still deployed: it has not ended
      await aws.faults.clear();

      expect((await restoring).status).toBe('done');
      const end = await closedStatus(h);
      expect(end.outcome).toBe('workload-restored');
      expect(await replicas(ns, w)).toBe(3);
      expect(end.hold!.checks).toBe(2);
      expect(end.cleanup.length).toBe(3 * end.executorSessions);
      expect(end.cleanup.every((c) => c.status === 'done')).toBe(true);
      await noLeaks(h.workflowId);
    },
  );

  it(
    'takes a restore asked during the check that ends the hold (the last revert allowed): restored after it, not needs-manual-action',
    { timeout: 240_000 },
    async () => {
      const { ns, w, alert } = await deploymentOnEks('eksholdlast');
      // The first check (stretch 2) is held at Invoke until the revert is made and the restore asked.
      const held = await blockInvoke(alert, 2);
      const h = await r.respond(alert, { holdSuspensionSeconds: 900, eksHoldCheckSeconds: 2, maxReverts: 1 });
      await r.waitForStage(h, 'holding', 90_000);
      await waitForPendingActivity(h, 'invokeRemediationFunction', 2, 120_000);
      await kube.apps.patchNamespacedDeployment(
        { namespace: ns, name: w.name, body: { spec: { replicas: 3 } }, fieldManager: 'argocd-application-controller' },
        mergePatch,
      );
      const restoring = h.executeUpdate(restoreUpdate, { args: [{ by: 'ana' }] });
      await until('the restore taken', async () => (await status(h)).restore?.state === 'restoring');
      await aws.faults.remove(held);

      // The check finds the revert, re-applies it, and ends the hold (maxReverts 1); then the restore runs.
      expect((await restoring).status).toBe('done');
      const end = await closedStatus(h);
      expect(end.hold).toMatchObject({ checks: 1, reverts: 1 });
      expect(end.outcome).toBe('workload-restored');
      expect(
        end.timeline.some(
          (e) =>
            e.event === 'hold-ended-before-restore' &&
            e.detail.startsWith('suspension reverted 1 times by argocd-application-controller'),
        ),
      ).toBe(true);
      expect(await replicas(ns, w)).toBe(3);
      expect(end.cleanup.length).toBe(9);
      expect(end.cleanup.every((c) => c.status === 'done')).toBe(true);
      await noLeaks(h.workflowId);
    },
  );

  it(
    "cancelled during a check, removes that check's stack and leaves the workload suspended, saying so",
    { timeout: 240_000 },
    async () => {
      const { ns, w, alert } = await deploymentOnEks('eksholdcancel');
      // The first check's function (stretch 2) cannot be invoked: the check sits with its whole stack deployed.
      await blockInvoke(alert, 2);
      const h = await holdOnEks(alert, 2);
      await waitForPendingActivity(h, 'invokeRemediationFunction', 1, 120_000);
      expect(
        await leftovers(aws.clients, INSTALLATION, h.workflowId, aws.clusters.local, aws.clusterSecurityGroupId),
      ).toHaveLength(3);

      await h.cancel();
      await expect(h.result()).rejects.toBeInstanceOf(WorkflowFailedError);
      const end = await status(h);
      expect(end.outcome).toBe('cancelled');
      expect(end.problem).toContain('the workload is left suspended');
      expect(end.cleanup.length).toBe(6); // the suspension's stretch and the check's
      expect(end.cleanup.every((c) => c.status === 'done')).toBe(true);
      expect(await replicas(ns, w)).toBe(0);
      await noLeaks(h.workflowId);
    },
  );
});

// The worker SIGKILLed during a hold check, with the check's whole stack deployed, then restarted: the check finishes
// from the history, its stack is removed, and the hold goes on to a restore.
describe('a hold check when the worker dies', () => {
  const taskQueue = `ekshold-crash-${randomBytes(4).toString('hex')}`;
  let worker: ChildProcess | undefined;
  const env = (lambdaZip: string): NodeJS.ProcessEnv => ({
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    TEMPORAL_ADDRESS: r.config.temporal.address,
    POD_RESPONDER_TASK_QUEUE: taskQueue,
    POD_RESPONDER_EXECUTOR: 'eks-lambda',
    POD_RESPONDER_AWS_ENDPOINT: aws.endpoint,
    POD_RESPONDER_LAMBDA_ZIP: lambdaZip,
    POD_RESPONDER_INSTALLATION_ID: INSTALLATION,
    POD_RESPONDER_PERMISSIONS_BOUNDARY_ARN: aws.permissionsBoundaryArn,
    POD_RESPONDER_METRICS_PORT: '0',
    // The worker's role (deploy/aws/worker-policy.json, which the front holds it to), as its Pod Identity would give it.
    AWS_ACCESS_KEY_ID: aws.worker.accessKeyId,
    AWS_SECRET_ACCESS_KEY: aws.worker.secretAccessKey,
    AWS_SESSION_TOKEN: aws.worker.sessionToken,
    AWS_REGION: aws.region,
  });
  afterAll(async () => {
    if (worker && worker.exitCode === null && worker.signalCode === null) await killProcessGroup(worker);
  });

  it(
    'is finished by the restarted worker, its stack removed; the hold goes on and is restored, leaving nothing',
    { timeout: 240_000 },
    async () => {
      const start = () => startWorkerProcess(env(r.config.eks.lambdaZip));
      const { ns, w, alert } = await deploymentOnEks('eksholdcrash');
      const held = await blockInvoke(alert, 2);
      worker = await start();
      const policy = policySchema.parse({ holdSuspensionSeconds: 900, eksHoldCheckSeconds: 2 });
      const started = await respondToAlert(
        r.client,
        { ...r.config, temporal: { ...r.config.temporal, taskQueue }, policy },
        alert,
      );
      const h = r.client.workflow.getHandle<IncidentWorkflow>(started.workflowId);
      await waitForPendingActivity(h, 'invokeRemediationFunction', 2, 120_000);
      await killProcessGroup(worker);
      expect(
        await leftovers(aws.clients, INSTALLATION, h.workflowId, aws.clusters.local, aws.clusterSecurityGroupId),
      ).toHaveLength(3);

      await aws.faults.remove(held);
      worker = await start();
      const after = await checkDone(h, 1);
      expect(after.stage).toBe('holding');
      await h.executeUpdate(restoreUpdate, { args: [{ by: 'ana' }] });
      const end = await closedStatus(h);
      expect(end.outcome).toBe('workload-restored');
      expect(await replicas(ns, w)).toBe(3);
      expect(end.cleanup.length).toBe(3 * end.executorSessions);
      expect(end.cleanup.every((c) => c.status === 'done')).toBe(true);
      await noLeaks(h.workflowId);
      await killProcessGroup(worker);
    },
  );
});
