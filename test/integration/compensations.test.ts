/** The saga undo stack on the real dev server: reverse order, retried until done, after failure and cancellation. */
import { Client, Connection, WorkflowFailedError } from '@temporalio/client';
import { Worker, NativeConnection } from '@temporalio/worker';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { installLogging } from '../../worker/logging.js';
import { parkedQuery, sagaWorkflow } from '../support/saga-workflows.js';

const taskQueue = `saga-${randomBytes(4).toString('hex')}`;
const log: string[] = [];
const undoFailures = new Map<string, number>();
let worker: Worker;
let running: Promise<void>;
let client: Client;

beforeAll(async () => {
  installLogging('ERROR');
  const address = inject('temporalAddress');
  worker = await Worker.create({
    connection: await NativeConnection.connect({ address }),
    taskQueue,
    workflowsPath: fileURLToPath(new URL('../support/saga-workflows.ts', import.meta.url)),
    activities: {
      async deploy(step: string) {
        log.push(`deploy ${step}`);
      },
      async undo(step: string) {
        const left = undoFailures.get(step) ?? 0;
        if (left > 0) {
          undoFailures.set(step, left - 1);
          log.push(`undo ${step} failed`);
          throw new Error(`transient failure undoing ${step}`);
        }
        log.push(`undo ${step}`);
      },
    },
  });
  running = worker.run();
  client = new Client({ connection: await Connection.connect({ address }) });
});

afterAll(async () => {
  worker?.shutdown();
  await running;
});

const start = (args: Parameters<typeof sagaWorkflow>) =>
  client.workflow.start(sagaWorkflow, { taskQueue, workflowId: `saga-${randomBytes(4).toString('hex')}`, args });

describe('Compensations', () => {
  it('undoes every step newest first, retrying an undo until it succeeds', async () => {
    log.length = 0;
    undoFailures.set('b', 2);
    const outcomes = await (await start([['a', 'b', 'c']])).result();
    expect(log).toEqual([
      'deploy a',
      'deploy b',
      'deploy c',
      'undo c',
      'undo b failed',
      'undo b failed',
      'undo b',
      'undo a',
    ]);
    expect(outcomes.map((o) => o.status)).toEqual(['done', 'done', 'done']);
  });

  it('undoes exactly the steps that ran when one fails mid-run, and the failure surfaces', async () => {
    log.length = 0;
    const handle = await start([['a', 'b', 'c'], 'b']);
    await expect(handle.result()).rejects.toBeInstanceOf(WorkflowFailedError);
    // b's undo was registered before b ran: undo must be safe for something never created (idempotent).
    expect(log).toEqual(['deploy a', 'undo b', 'undo a']);
  });

  it('still undoes everything when the workflow is cancelled', async () => {
    log.length = 0;
    const handle = await start([['a', 'b', 'c'], undefined, 'c']);
    for (let i = 0; i < 100 && !(await handle.query(parkedQuery)); i++) await new Promise((r) => setTimeout(r, 50));
    await handle.cancel();
    await expect(handle.result()).rejects.toBeInstanceOf(WorkflowFailedError);
    expect(log).toEqual(['deploy a', 'deploy b', 'undo c', 'undo b', 'undo a']);
    expect((await handle.describe()).status.name).toBe('CANCELLED');
  });
});
