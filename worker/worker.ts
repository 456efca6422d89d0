import { Client, Connection } from '@temporalio/client';
import { NativeConnection, Runtime, Worker, type WorkerOptions } from '@temporalio/worker';
import { fileURLToPath } from 'node:url';
import { createActivities } from '../activities/index.js';
import type { AwsConfig } from '../activities/eks-lambda/clients.js';
import { workflowBundle } from './workflow-bundle.js';
import { INCIDENT_TASK_TIMEOUT } from '../workflows/ids.js';
import { checkWorkerConfig, type Config } from '../config/config.js';
import { temporalConnectError, temporalConnectionOptions } from '../config/temporal-connection.js';
import { ensureSweeperSchedule } from './schedules.js';
import { SEARCH_ATTRIBUTE_TYPES } from '../domain/search-attributes.js';
import { killPathLocal, workflowTaskSlots } from './cache-room.js';

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

export interface WorkerOverrides {
  taskQueue?: string;
  identity?: string;
  /** Another workflow module. */
  workflowsPath?: string;
  /** Activity interceptors (the latency bench times each remediation call with one). */
  interceptors?: WorkerOptions['interceptors'];
  /** The AWS identity of IAM, EC2, EKS and Lambda calls, instead of the SDK's default chain (tests: the stack's worker role). */
  awsCredentials?: AwsConfig['credentials'];
  /** Evidence bytes in one answer of the EKS executor's function, below Lambda's limit (tests: several answers). */
  evidenceResponseBytes?: number;
}

export async function createWorker(config: Config, opts: WorkerOverrides = {}): Promise<StartedWorker> {
  checkWorkerConfig(config);
  const connectionOptions = temporalConnectionOptions(config.temporal);
  const connection = await NativeConnection.connect(connectionOptions).catch(async (err: unknown) => {
    throw await temporalConnectError(config.temporal, err);
  });
  const clientConnection = await Connection.connect(connectionOptions).catch(async (err: unknown) => {
    await connection.close();
    throw await temporalConnectError(config.temporal, err);
  });
  const client = new Client({ connection: clientConnection, namespace: config.temporal.namespace });
  await checkSearchAttributes(clientConnection, config.temporal.namespace);
  const options: WorkerOptions & { isolateExecutionTimeout: string } = {
    connection,
    namespace: config.temporal.namespace,
    taskQueue: opts.taskQueue ?? config.temporal.taskQueue,
    workflowBundle: await workflowBundle(opts.workflowsPath ?? workflowsPath(), Runtime.instance().logger),
    activities: createActivities({
      direct: config.direct,
      eks: {
        ...config.eks,
        installationId: config.eks.installationId ?? config.temporal.namespace,
        ...(config.eks.permissionsBoundaryArn ? { permissionsBoundary: config.eks.permissionsBoundaryArn } : {}),
        ...(opts.awsCredentials ? { credentials: opts.awsCredentials } : {}),
      },
      evidence: {
        ...config.evidence,
        endpoint: config.evidence.endpoint ?? config.eks.endpoint,
        functionResponseBytes: opts.evidenceResponseBytes,
      },
      notify: { targets: config.notify, uiUrl: config.temporal.uiUrl, namespace: config.temporal.namespace },
      temporal: client,
      policyFloor: config.policyFloor,
      localCalls: killPathLocal(config.worker),
    }),
    ...(config.temporal.deployment
      ? {
          workerDeploymentOptions: {
            useWorkerVersioning: true,
            version: { deploymentName: config.temporal.deployment.name, buildId: config.temporal.deployment.buildId },
            // An incident runs on the build it started on; it moves to a newer one only by continuing as new.
            defaultVersioningBehavior: 'PINNED' as const,
          },
        }
      : {}),
    ...(opts.identity ? { identity: opts.identity } : {}),
    ...(opts.interceptors ? { interceptors: opts.interceptors } : {}),
    // A worker back from an outage during an alert flood gets the backlog of alert signals in one activation;
    // the 5 s default fails it, and on Node 20 a timed-out isolate can take the whole process down, every
    // time it is retried. SDK 1.24 reads this option but does not declare it (hence the type above).
    isolateExecutionTimeout: INCIDENT_TASK_TIMEOUT,
    // Bounded memory: parked incidents beyond the cache are evicted and replayed when a message or timer wakes them.
    maxCachedWorkflows: config.worker.maxCachedIncidents,
    maxConcurrentActivityTaskExecutions: config.worker.maxConcurrentActivities,
    // A task runs on a cached incident: no more of them at once than the cache holds (the SDK would lower it, warning).
    maxConcurrentWorkflowTaskExecutions: workflowTaskSlots(config.worker),
    shutdownGraceTime: `${config.worker.shutdownGraceSeconds}s`,
  };
  const worker = await Worker.create(options);
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

/**
 * An incident that upserts a search attribute the namespace lacks fails its workflow task until someone
 * registers it: mid-response, before the kill. So a worker refuses to start without them, saying how to fix it.
 * A connection not allowed to list them (a restricted API key) only warns.
 */
export async function checkSearchAttributes(connection: Connection, namespace: string): Promise<void> {
  let registered: Record<string, unknown>;
  try {
    registered = (await connection.operatorService.listSearchAttributes({ namespace })).customAttributes ?? {};
  } catch (err) {
    console.warn(
      JSON.stringify({
        level: 'warn',
        msg: "could not list the namespace's search attributes; make sure they are registered (docs/deploy.md: Register the search attributes)",
        namespace,
        error: (err as Error).message,
      }),
    );
    return;
  }
  const missing = Object.entries(SEARCH_ATTRIBUTE_TYPES).filter(([name]) => !(name in registered));
  if (missing.length) {
    const flags = missing.map(([name, type]) => `--name ${name} --type ${type}`).join(' ');
    throw new Error(
      `namespace ${namespace} lacks the search attributes ${missing.map(([n]) => n).join(', ')}: incidents would stall; register them first: ` +
        `temporal operator search-attribute create --namespace ${namespace} ${flags}`,
    );
  }
}
