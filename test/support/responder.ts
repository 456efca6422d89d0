/** Runs a real worker (in this test process) against the shared dev server, on a queue of its own. */
import { Client, Connection, type WorkflowHandle } from '@temporalio/client';
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, inject } from 'vitest';
import { respondToAlert } from '../../temporal-client/incidents.js';
import type { PodAlert } from '../../domain/alert.js';
import type { PolicyInput } from '../../domain/policy.js';
import { policySchema } from '../../domain/policy.js';
import { configSchema, type Config } from '../../config/config.js';
import { installLogging } from '../../worker/logging.js';
import { createWorker, type StartedWorker } from '../../worker/worker.js';
import {
  approveUpdate,
  denyUpdate,
  statusQuery,
  type ApprovalReceipt,
  type IncidentStatus,
} from '../../workflows/messages.js';
import type { IncidentWorkflow } from '../../workflows/malicious-pod-response.js';
import type { SweepInput, SweepReport } from '../../workflows/orphan-sweeper.js';
import { testKube, type TestKube } from './cluster.js';
export { alertFor } from '../../devstack/fixtures.js';

export interface Responder {
  config: Config;
  client: Client;
  worker: StartedWorker;
  respond(alert: PodAlert, policy?: PolicyInput): Promise<WorkflowHandle<IncidentWorkflow>>;
  waitForStage(handle: WorkflowHandle, stage: IncidentStatus['stage'], timeoutMs?: number): Promise<IncidentStatus>;
  /** Runs the orphan sweeper once, now, in this responder's namespace and on its task queue. */
  sweep(input: SweepInput): Promise<SweepReport>;
  /** Waits for the incident to await approval, then approves (or denies) the proposal it shows. */
  approve(handle: WorkflowHandle, by: string, reason?: string): Promise<ApprovalReceipt>;
  deny(handle: WorkflowHandle, by: string, reason?: string): Promise<ApprovalReceipt>;
  close(): Promise<void>;
}

async function waitForStage(
  handle: WorkflowHandle,
  stage: IncidentStatus['stage'],
  timeoutMs = 30_000,
): Promise<IncidentStatus> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const s = await handle.query(statusQuery);
    if (s.stage === stage) return s;
    if (Date.now() > deadline)
      throw new Error(`incident stayed in stage ${s.stage}, expected ${stage}: ${JSON.stringify(s.timeline)}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

async function answer(
  handle: WorkflowHandle,
  update: typeof approveUpdate,
  by: string,
  reason?: string,
): Promise<ApprovalReceipt> {
  const s = await waitForStage(handle, 'awaiting-approval');
  return handle.executeUpdate(update, { args: [{ proposalId: s.proposal!.id, by, ...(reason ? { reason } : {}) }] });
}

/** The stack's kubeconfig reaches one kube-apiserver (context `devstack`); tests give it several cluster names. */
export function directClusters(
  extra: string[] = [],
  current = 'local',
): { cluster: string; contexts: Record<string, string> } {
  return { cluster: current, contexts: Object.fromEntries(extra.map((c) => [c, 'devstack'])) };
}

export async function startResponder(
  options: {
    executor?: 'direct' | 'eks-lambda';
    eks?: {
      endpoint: string;
      lambdaZip: string;
      sweepRegions?: string[];
      installationId?: string;
      permissionsBoundaryArn?: string;
    };
    /** Another Temporal namespace (see temporal-namespace.ts); default: the dev server's `default`. */
    namespace?: string;
    /** Cluster names (beyond `local`) that alerts may name: all reach the stack's one kube-apiserver. */
    clusters?: string[];
    /** A Temporal server of the test's own (ownTemporal), instead of the shared dev server. */
    temporalAddress?: string;
    /** Where evidence bundles go (the config's evidence section). */
    evidence?: Record<string, unknown>;
    /** Evidence bytes in one answer of the EKS executor's function (default: the most Lambda allows). */
    evidenceResponseBytes?: number;
    /** Notification targets (the config's notify section). */
    notify?: Record<string, unknown>[];
    /** The name of the cluster the kubeconfig's current context reaches (default `local`). */
    cluster?: string;
    /** The worker's limits (the config's worker section). */
    worker?: Record<string, unknown>;
    /** A stack of the test's own (the real node's tests): its kubeconfig instead of the shared stack's. */
    kubeconfig?: string;
    /** Another responder's task queue: a worker started again after an outage (default: a queue of its own). */
    taskQueue?: string;
    /** The worker's policy floor (the config's policyFloor section; default: the policy's defaults). */
    policyFloor?: Record<string, unknown>;
  } = {},
): Promise<Responder> {
  const config = configSchema.parse({
    temporal: {
      address: options.temporalAddress ?? inject('temporalAddress'),
      taskQueue: options.taskQueue ?? `test-${randomBytes(4).toString('hex')}`,
      ...(options.namespace ? { namespace: options.namespace } : {}),
    },
    direct: {
      kubeconfig: options.kubeconfig ?? inject('kubeconfigPath'),
      ...directClusters(options.clusters, options.cluster),
    },
    executor: options.executor ?? 'direct',
    // The boundary the stack made from deploy/aws/ (a worker with the EKS executor refuses to start without one).
    ...(options.eks ? { eks: { permissionsBoundaryArn: inject('aws').permissionsBoundaryArn, ...options.eks } } : {}),
    ...(options.evidence ? { evidence: options.evidence } : {}),
    ...(options.notify ? { notify: options.notify } : {}),
    ...(options.worker ? { worker: options.worker } : {}),
    ...(options.policyFloor ? { policyFloor: options.policyFloor } : {}),
  });
  installLogging('ERROR'); // retried activity failures are expected here; assertions say what went wrong
  // With AWS, the worker signs as the stack's worker role: the front holds its IAM calls to deploy/aws/worker-policy.json.
  const worker = await createWorker(config, {
    ...(options.eks ? { awsCredentials: inject('aws').worker } : {}),
    ...(options.evidenceResponseBytes ? { evidenceResponseBytes: options.evidenceResponseBytes } : {}),
  });
  void worker.run();
  const connection = await Connection.connect({ address: config.temporal.address });
  const client = new Client({ connection, namespace: config.temporal.namespace });
  return {
    config,
    client,
    worker,
    async respond(alert, policy = {}) {
      const started = await respondToAlert(client, { ...config, policy: policySchema.parse(policy) }, alert);
      // Not pinned to the run: an incident continues as new, and messages go to its current run.
      return client.workflow.getHandle<IncidentWorkflow>(started.workflowId);
    },
    approve: (handle, by, reason) => answer(handle, approveUpdate, by, reason),
    deny: (handle, by, reason) => answer(handle, denyUpdate, by, reason),
    waitForStage,
    sweep: (input) =>
      client.workflow.execute('orphanSweeper', {
        taskQueue: config.temporal.taskQueue,
        workflowId: `sweep-${randomBytes(4).toString('hex')}`,
        args: [input],
      }) as Promise<SweepReport>,
    async close() {
      await worker.shutdown();
      await connection.close();
    },
  };
}

/** Waits until the incident has an activity of this type pending (attempt `minAttempt` or later): a step held by a fault. */
export async function waitForPendingActivity(
  handle: WorkflowHandle,
  activityType: string,
  minAttempt = 1,
  timeoutMs = 60_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const pending = (await handle.describe()).raw.pendingActivities ?? [];
    if (pending.some((a) => a.activityType?.name === activityType && (a.attempt ?? 0) >= minAttempt)) return;
    if (Date.now() > deadline)
      throw new Error(`no pending ${activityType} (attempt >= ${minAttempt}) within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** A real worker for the calling test file and clients of the stack's cluster: ready before its tests, stopped after. */
export function useResponder(): { readonly r: Responder; readonly kube: TestKube } {
  const ctx = {} as { r: Responder; kube: TestKube };
  beforeAll(async () => {
    ctx.r = await startResponder();
    ctx.kube = testKube();
  });
  afterAll(async () => ctx.r?.close());
  return ctx;
}
