/** Runs a real worker (in this test process) against the shared dev server, on a queue of its own. */
import { Client, Connection, type WorkflowHandle } from '@temporalio/client';
import { randomBytes } from 'node:crypto';
import { inject } from 'vitest';
import { respondToAlert } from '../../client/incidents.js';
import type { PodAlert } from '../../domain/alert.js';
import type { PolicyInput } from '../../domain/policy.js';
import { policySchema } from '../../domain/policy.js';
import { configSchema, type Config } from '../../worker/config.js';
import { installLogging } from '../../worker/logging.js';
import { createWorker, type StartedWorker } from '../../worker/worker.js';
import { statusQuery, type IncidentStatus } from '../../workflows/messages.js';
import type { maliciousPodResponse } from '../../workflows/malicious-pod-response.js';
export { alertFor } from '../../devstack/fixtures.js';

export interface Responder {
  config: Config;
  client: Client;
  worker: StartedWorker;
  respond(alert: PodAlert, policy?: PolicyInput): Promise<WorkflowHandle<typeof maliciousPodResponse>>;
  waitForStage(handle: WorkflowHandle, stage: IncidentStatus['stage'], timeoutMs?: number): Promise<IncidentStatus>;
  close(): Promise<void>;
}

export async function startResponder(options: { executor?: 'direct' | 'eks-lambda'; eks?: { endpoint: string; lambdaZip: string; sweepRegions?: string[] } } = {}): Promise<Responder> {
  const config = configSchema.parse({
    temporal: { address: inject('temporalAddress'), taskQueue: `test-${randomBytes(4).toString('hex')}` },
    direct: { kubeconfig: inject('kubeconfigPath') },
    executor: options.executor ?? 'direct',
    ...(options.eks ? { eks: options.eks } : {}),
  });
  installLogging('ERROR'); // retried activity failures are expected here; assertions say what went wrong
  const worker = await createWorker(config);
  void worker.run();
  const connection = await Connection.connect({ address: config.temporal.address });
  const client = new Client({ connection });
  return {
    config,
    client,
    worker,
    async respond(alert, policy = {}) {
      const started = await respondToAlert(client, { ...config, policy: policySchema.parse(policy) }, alert);
      return client.workflow.getHandle<typeof maliciousPodResponse>(started.workflowId, started.runId);
    },
    async waitForStage(handle, stage, timeoutMs = 30_000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const s = await handle.query(statusQuery);
        if (s.stage === stage) return s;
        if (Date.now() > deadline) throw new Error(`incident stayed in stage ${s.stage}, expected ${stage}: ${JSON.stringify(s.timeline)}`);
        await new Promise((r) => setTimeout(r, 200));
      }
    },
    async close() {
      await worker.shutdown();
      await connection.close();
    },
  };
}
