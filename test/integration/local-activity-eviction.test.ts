/**
 * A minimal reproduction, on the real dev server, of what kept the kill path's local activities off on a worker with
 * a small cache (docs/kill-first.md, "Where the cache is small"): with its workflow cache full, the SDK's core
 * (@temporalio/* 1.24.0) makes room for a run it must load by evicting the least recently used run, even one whose
 * workflow task is waiting on local activities. That run's local activities are cancelled, the markers of those done
 * are dropped (core logs "There should not be any outgoing commands ... This is an SDK bug."), and its workflow task
 * is never answered: it times out, and the next attempt runs the task, local activities included, again.
 * Here, as in worker-limits.test.ts, a cache of two and two workflow tasks at once: five runs started together.
 *
 * If this starts failing after an SDK upgrade, core has stopped evicting such runs: worker/cache-room.ts (the kill
 * path local only on a worker whose cache holds twice its workflow tasks at once) can be revisited.
 */
import { Client, Connection, type WorkflowHandle } from '@temporalio/client';
import { Context } from '@temporalio/activity';
import { NativeConnection, Worker } from '@temporalio/worker';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { installLogging } from '../../worker/logging.js';
import { workflowTaskTimeouts } from '../support/history.js';
import { finishSignal, stageQuery } from '../support/local-activity-eviction-workflows.js';
import { until } from '../support/until.js';

const workflowsPath = fileURLToPath(new URL('../support/local-activity-eviction-workflows.ts', import.meta.url));
const LOCAL_ACTIVITY_MS = 400;
const TASK_TIMEOUT = '5 seconds';
/** Local activity calls, per workflow ID. */
const calls = new Map<string, number>();
let client: Client;
const workers: { worker: Worker; running: Promise<void> }[] = [];

beforeAll(async () => {
  installLogging('ERROR');
  client = new Client({ connection: await Connection.connect({ address: inject('temporalAddress') }) });
});

afterAll(async () => {
  for (const { worker, running } of workers) {
    worker.shutdown();
    await running;
  }
});

async function startWorker(maxCachedWorkflows: number): Promise<string> {
  const taskQueue = `la-evict-${randomBytes(4).toString('hex')}`;
  const worker = await Worker.create({
    connection: await NativeConnection.connect({ address: inject('temporalAddress') }),
    taskQueue,
    workflowsPath,
    maxCachedWorkflows,
    maxConcurrentWorkflowTaskExecutions: 2,
    activities: {
      slow: async (ms: number) => {
        const id = Context.current().info.workflowExecution?.workflowId ?? 'unknown';
        if (ms > 0) calls.set(id, (calls.get(id) ?? 0) + 1);
        await new Promise((r) => setTimeout(r, ms));
      },
    },
  });
  workers.push({ worker, running: worker.run() });
  return taskQueue;
}

/** Starts `n` runs at once and waits until each has finished its first workflow task. */
async function startAtOnce(taskQueue: string, n: number): Promise<WorkflowHandle[]> {
  const handles = await Promise.all(
    Array.from({ length: n }, (_, i) =>
      client.workflow.start('slowThenParked', {
        taskQueue,
        workflowId: `slow-${randomBytes(4).toString('hex')}`,
        // Of different lengths, as pod reads are: one finishes while another still waits.
        args: [LOCAL_ACTIVITY_MS * (1 + i)],
        workflowTaskTimeout: TASK_TIMEOUT,
      }),
    ),
  );
  for (const h of handles) await until('the run parked', async () => (await h.query(stageQuery)) === 'parked', 120_000);
  return handles;
}

async function tally(handles: WorkflowHandle[]): Promise<{ reruns: number; timeouts: number }> {
  let reruns = 0;
  let timeouts = 0;
  for (const h of handles) {
    reruns += (calls.get(h.workflowId) ?? 0) - 1;
    timeouts += await workflowTaskTimeouts(h);
    await h.signal(finishSignal);
  }
  return { reruns, timeouts };
}

describe('a full workflow cache evicts runs whose workflow task waits on a local activity (core 1.24)', () => {
  // A race in core: a run must be loaded while another waits on its local activities. It showed in every round on a
  // machine at load 15 to 24, and in no round of three at load 3 (CI's first run here saw none either), so it cannot be
  // an assertion of the suite: POD_RESPONDER_REPRO_LA_EVICTION=1 runs it (docs/kill-first.md). The control below runs.
  it.runIf(process.env.POD_RESPONDER_REPRO_LA_EVICTION === '1')(
    'a cache of two, two tasks at once, five runs started together: first tasks are lost, time out and run again',
    async () => {
      const handles = await startAtOnce(await startWorker(2), 5);
      const { reruns, timeouts } = await tally(handles);
      expect(timeouts).toBeGreaterThan(0);
      expect(reruns).toBeGreaterThan(0);
    },
  );

  it('control: a cache of four for the same two tasks at once: each first task runs once', async () => {
    const handles = await startAtOnce(await startWorker(4), 5);
    expect(await tally(handles)).toEqual({ reruns: 0, timeouts: 0 });
  });
});
