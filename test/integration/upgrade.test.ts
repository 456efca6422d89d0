/**
 * An upgrade while incidents run: a worker on the pre-v2 code parks incidents (holding a suspension,
 * awaiting approval), stops, and a worker on today's code takes over the same task queue. The parked
 * incidents replay and finish on the code they started with; new incidents run v2.
 */
import { Client, Connection } from '@temporalio/client';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { answerProposal } from '../../client/approvals.js';
import { respondToAlert } from '../../client/incidents.js';
import type { PodAlert } from '../../domain/alert.js';
import { policySchema, type PolicyInput } from '../../domain/policy.js';
import { configSchema } from '../../config/config.js';
import { installLogging } from '../../worker/logging.js';
import { createWorker } from '../../worker/worker.js';
import { incidentWorkflowId } from '../../workflows/ids.js';
import type { IncidentStatusV1 } from '../../workflows/legacy/messages-v1.js';
import { alertSignal, restoreUpdate, statusQuery, type IncidentStatus } from '../../workflows/messages.js';
import { createNamespace, createWorkload, podExists, testKube, type TestKube } from '../support/cluster.js';
import { alertFor } from '../support/responder.js';

const config = configSchema.parse({
  temporal: { address: inject('temporalAddress'), taskQueue: `upgrade-${randomBytes(4).toString('hex')}` },
  direct: { kubeconfig: inject('kubeconfigPath'), cluster: 'local' },
});
const legacyWorkflows = fileURLToPath(new URL('../support/legacy-workflows.ts', import.meta.url));
let client: Client;
let kube: TestKube;
beforeAll(async () => {
  installLogging('ERROR');
  client = new Client({ connection: await Connection.connect({ address: config.temporal.address }) });
  kube = testKube();
});
afterAll(async () => client?.connection.close());

/** Starts an incident the way starters did before v2: one `alert` signal with the start. */
async function startAsBefore(alert: PodAlert, policy: PolicyInput) {
  await client.workflow.signalWithStart('maliciousPodResponse', {
    workflowId: incidentWorkflowId(alert),
    taskQueue: config.temporal.taskQueue,
    args: [{ alert, policy: policySchema.parse(policy), executor: { kind: 'direct' } }],
    signal: alertSignal,
    signalArgs: [alert],
  });
  return client.workflow.getHandle(incidentWorkflowId(alert));
}

async function waitForStage(handle: ReturnType<Client['workflow']['getHandle']>, stage: string) {
  for (let i = 0; i < 150; i++) {
    if ((await handle.query(statusQuery)).stage === stage) return;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`incident did not reach ${stage}`);
}

describe('upgrading the worker while incidents run', () => {
  it('incidents parked on the old code finish on it; new ones run v2', { timeout: 120_000 }, async () => {
    const ns = await createNamespace(kube, 'upgrade');
    const held = await createWorkload(kube, ns, 'StatefulSet');
    const pending = await createWorkload(kube, ns, 'Pod');

    const before = await createWorker(config, { workflowsPath: legacyWorkflows });
    void before.run();
    const holding = await startAsBefore(alertFor(ns, held, { severity: 'critical' }), { holdSuspensionSeconds: 600 });
    const awaiting = await startAsBefore(alertFor(ns, pending), { requireApprovalFor: ['terminate-pod'] });
    await waitForStage(holding, 'holding');
    await waitForStage(awaiting, 'awaiting-approval');
    await before.shutdown();

    const after = await createWorker(config);
    void after.run();
    try {
      // A repeat from today's forwarder (the batched `alerts` signal) reaches the old incident too.
      const repeat = alertFor(ns, held);
      await respondToAlert(client, config, repeat);
      const parked = (await holding.query(statusQuery)) as unknown as IncidentStatusV1;
      expect(parked.alertIds).toContain(repeat.alertId);

      // The CLI's approve sees an incident from before v2 and answers it the old way.
      expect(await answerProposal(awaiting, 'approved', { by: 'ana' })).toMatchObject({ answer: 'approved', sentAsSignal: true });
      const approved = (await awaiting.result()) as unknown as IncidentStatusV1;
      expect(approved.outcome).toBe('pod-terminated');
      expect(approved).toHaveProperty('alertIds'); // the v1 result: it finished on v1
      expect(await podExists(kube, ns, pending.name)).toBe(false);

      await holding.executeUpdate(restoreUpdate, { args: [{ by: 'ana' }] });
      const restored = (await holding.result()) as unknown as IncidentStatusV1;
      expect(restored.outcome).toBe('workload-restored');
      expect((await kube.apps.readNamespacedStatefulSet({ namespace: ns, name: held.name })).spec?.replicas).toBe(2);

      // A new incident on the upgraded worker runs v2.
      const fresh = await createWorkload(kube, ns, 'Pod');
      const started = await respondToAlert(client, config, alertFor(ns, fresh));
      const result = (await client.workflow.getHandle(started.workflowId).result()) as IncidentStatus;
      expect(result).toMatchObject({ outcome: 'pod-terminated', run: 1 });
    } finally {
      await after.shutdown();
    }
  });
});
