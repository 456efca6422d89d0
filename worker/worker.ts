import { Client, Connection } from '@temporalio/client';
import { NativeConnection, Worker } from '@temporalio/worker';
import { fileURLToPath } from 'node:url';
import { createActivities } from '../activities/index.js';
import type { Config } from './config.js';
import { ensureSweeperSchedule } from './schedules.js';

/** Workflow source next to this file: `.ts` when run from source (tsx, tests), `.js` from `dist/`. */
export function workflowsPath(): string {
  const ext = import.meta.url.endsWith('.ts') ? '.ts' : '.js';
  return fileURLToPath(new URL(`../workflows/index${ext}`, import.meta.url));
}

export interface StartedWorker {
  worker: Worker;
  run(): Promise<void>;
  /** Stops polling, lets activities in flight finish, then closes connections. */
  shutdown(): Promise<void>;
}

export async function createWorker(config: Config, options: { taskQueue?: string; identity?: string } = {}): Promise<StartedWorker> {
  const connection = await NativeConnection.connect({ address: config.temporal.address });
  const clientConnection = await Connection.connect({ address: config.temporal.address });
  const client = new Client({ connection: clientConnection, namespace: config.temporal.namespace });
  const worker = await Worker.create({
    connection,
    namespace: config.temporal.namespace,
    taskQueue: options.taskQueue ?? config.temporal.taskQueue,
    workflowsPath: workflowsPath(),
    activities: createActivities({ direct: config.direct, eks: config.eks, temporal: client }),
    ...(options.identity ? { identity: options.identity } : {}),
  });
  await ensureSweeperSchedule(client, config);
  let running: Promise<void> | null = null;
  return {
    worker,
    run() {
      running ??= worker.run().finally(async () => {
        await connection.close();
        await clientConnection.close();
      });
      return running;
    },
    async shutdown() {
      if (worker.getState() === 'RUNNING') worker.shutdown();
      await running;
    },
  };
}
