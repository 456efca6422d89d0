/**
 * An upgrade while incidents run, with Worker Deployment Versioning (docs/changing-the-workflow.md): build A
 * parks incidents (holding a suspension, awaiting approval); build B is deployed beside it and made current.
 * An incident stays on the build it started on until it continues as new at a wait, then runs on the current
 * build; new incidents start on B. The harness for the next change to the workflow: run build A from another
 * workflow module (`workflowsPath`) to upgrade from a real older playbook.
 */
import { Client, Connection, type WorkflowHandle } from '@temporalio/client';
import type { temporal } from '@temporalio/proto';
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { answerProposal } from '../../client/approvals.js';
import { respondToAlert } from '../../temporal-client/incidents.js';
import type { PodAlert } from '../../domain/alert.js';
import { policySchema, type PolicyInput } from '../../domain/policy.js';
import { configSchema, type Config } from '../../config/config.js';
import { installLogging } from '../../worker/logging.js';
import { createWorker, type StartedWorker } from '../../worker/worker.js';
import { restoreUpdate, statusQuery, type IncidentResult } from '../../workflows/messages.js';
import { createNamespace, createWorkload, podExists, testKube, type TestKube } from '../support/cluster.js';
import { alertFor } from '../support/responder.js';

const deploymentName = `pod-responder-upgrade-${randomBytes(3).toString('hex')}`;
const taskQueue = `upgrade-${randomBytes(4).toString('hex')}`;
const configFor = (buildId: string): Config =>
  configSchema.parse({
    temporal: { address: inject('temporalAddress'), taskQueue, deployment: { name: deploymentName, buildId } },
    direct: { kubeconfig: inject('kubeconfigPath'), cluster: 'local' },
  });
let client: Client;
let kube: TestKube;
const workers: StartedWorker[] = [];
beforeAll(async () => {
  installLogging('ERROR');
  client = new Client({ connection: await Connection.connect({ address: inject('temporalAddress') }) });
  kube = testKube();
});
afterAll(async () => {
  for (const w of workers) await w.shutdown();
  await client?.connection.close();
});

async function startBuild(buildId: string): Promise<StartedWorker> {
  const w = await createWorker(configFor(buildId));
  workers.push(w);
  void w.run();
  return w;
}

/** What an operator does after deploying a build: `temporal worker deployment set-current-version`. */
async function makeCurrent(buildId: string): Promise<void> {
  // The version exists once its worker has polled.
  for (let i = 0; ; i++) {
    try {
      await client.workflowService.setWorkerDeploymentCurrentVersion({
        namespace: 'default',
        deploymentName,
        buildId,
        identity: 'upgrade-test',
      });
      return;
    } catch (err) {
      if (i >= 100) throw err;
      await new Promise((r) => setTimeout(r, 200));
    }
  }
}

async function respond(alert: PodAlert, policy: PolicyInput, buildId: string): Promise<WorkflowHandle> {
  const started = await respondToAlert(client, { ...configFor(buildId), policy: policySchema.parse(policy) }, alert);
  return client.workflow.getHandle(started.workflowId);
}

async function waitFor<T>(what: string, read: () => Promise<T>, ok: (v: T) => boolean): Promise<T> {
  for (let i = 0; i < 150; i++) {
    const v = await read();
    if (ok(v)) return v;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`timed out waiting for ${what}`);
}

/** The builds that completed a run's workflow tasks, in order, deduplicated: which code ran it. */
async function buildsOf(h: WorkflowHandle, runId?: string): Promise<string[]> {
  const { events } = await client.workflow.getHandle(h.workflowId, runId).fetchHistory();
  const builds = (events ?? []).flatMap((e: temporal.api.history.v1.IHistoryEvent) => {
    const b = e.workflowTaskCompletedEventAttributes?.deploymentVersion?.buildId;
    return b ? [b] : [];
  });
  return builds.filter((b, i) => b !== builds[i - 1]);
}

describe('upgrading the worker while incidents run (Worker Deployment Versioning)', () => {
  it(
    'parked incidents stay on their build until they continue as new at a wait; new ones start on the current build',
    { timeout: 150_000 },
    async () => {
      const ns = await createNamespace(kube, 'upgrade');
      const held = await createWorkload(kube, ns, 'StatefulSet');
      const pending = await createWorkload(kube, ns, 'Pod');

      await startBuild('build-a');
      await makeCurrent('build-a');
      // A hold with no checks wakes only for restore or its end; one with checks wakes every 2 s.
      const quiet = await respond(
        alertFor(ns, await createWorkload(kube, ns, 'Deployment'), { severity: 'critical' }),
        { holdSuspensionSeconds: 600 },
        'build-a',
      );
      const holding = await respond(
        alertFor(ns, held, { severity: 'critical' }),
        { holdSuspensionSeconds: 600, holdCheckSeconds: 2 },
        'build-a',
      );
      const awaiting = await respond(alertFor(ns, pending), { requireApprovalFor: ['terminate-pod'] }, 'build-a');
      await waitFor(
        'holding',
        () => holding.query(statusQuery),
        (s) => s.stage === 'holding',
      );
      await waitFor(
        'holding',
        () => quiet.query(statusQuery),
        (s) => s.stage === 'holding',
      );
      await waitFor(
        'awaiting approval',
        () => awaiting.query(statusQuery),
        (s) => s.stage === 'awaiting-approval',
      );
      const firstRun = (await holding.describe()).runId;

      const a = workers[0]!;
      await startBuild('build-b');
      await makeCurrent('build-b');

      // A new incident starts on B.
      const fresh = await createWorkload(kube, ns, 'Pod');
      const started = await respond(alertFor(ns, fresh), {}, 'build-b');
      expect(((await started.result()) as IncidentResult).outcome).toBe('pod-terminated');
      expect(await buildsOf(started)).toEqual(['build-b']);

      // The held incident moves to B at its next wait: its run on A ends, run 2 carries it on, on B.
      const moved = await waitFor(
        'the hold to continue as new',
        () => holding.query(statusQuery),
        (s) => s.run === 2,
      );
      expect(moved.timeline.map((t) => t.detail)).toContainEqual(
        expect.stringContaining('to move to the current worker build'),
      );
      expect(await buildsOf(holding, firstRun)).toEqual(['build-a']);

      // The answer reaches the incident awaiting approval on A, which finishes on A.
      expect(await answerProposal(awaiting, 'approved', { by: 'ana' })).toMatchObject({ answer: 'approved' });
      expect(((await awaiting.result()) as IncidentResult).outcome).toBe('pod-terminated');
      expect(await buildsOf(awaiting)).toEqual(['build-a']);
      expect(await podExists(kube, ns, pending.name)).toBe(false);

      // The quiet hold has not woken since: it stays on A while A runs, and is still held there.
      expect(await buildsOf(quiet)).toEqual(['build-a']);
      const onA = `TemporalWorkerDeploymentVersion='${deploymentName}:build-a' AND ExecutionStatus='Running'`;
      await waitFor(
        'visibility to show the quiet hold alone on A',
        async () => (await client.workflow.count(onA)).count,
        (n) => n === 1,
      );
      await quiet.executeUpdate(restoreUpdate, { args: [{ by: 'ana' }] });
      expect(((await quiet.result()) as IncidentResult).outcome).toBe('workload-restored');
      expect(await buildsOf(quiet)).toEqual(['build-a']);

      // Build A can go once no running incident is on it (the query in docs/changing-the-workflow.md).
      await waitFor(
        'build A to drain',
        async () => (await client.workflow.count(onA)).count,
        (n) => n === 0,
      );
      await a.shutdown();
      // The held incident now runs on B alone, restored there.
      await holding.executeUpdate(restoreUpdate, { args: [{ by: 'ana' }] });
      const restored = (await holding.result()) as IncidentResult;
      expect(restored).toMatchObject({ outcome: 'workload-restored', runs: 2 });
      expect(await buildsOf(holding)).toEqual(['build-b']);
      expect((await kube.apps.readNamespacedStatefulSet({ namespace: ns, name: held.name })).spec?.replicas).toBe(2);
    },
  );
});
