/**
 * A time-skipping Temporal for workflow tests: the Java SDK's test server (test/workflow/global-setup.ts), the real
 * workflow bundle, and a worker per test whose activities are a fake cluster. Time moves on only while a test
 * awaits a result (or `env.sleep`s), so a 7-day hold takes milliseconds, and a test queries the incident between.
 */
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { DefaultLogger, Runtime, Worker } from '@temporalio/worker';
import type { WorkflowHandle } from '@temporalio/client';
import { inject } from 'vitest';
import { SEARCH_ATTRIBUTE_TYPES } from '../../domain/search-attributes.js';
import { defaultPolicy } from '../../domain/policy-defaults.js';
import type { Policy } from '../../domain/policy.js';
import { workflowBundle } from '../../worker/workflow-bundle.js';
import { workflowsPath } from '../../worker/worker.js';
import { statusQuery, type IncidentStatus, type Stage } from '../../workflows/messages.js';
import type { IncidentInput, IncidentWorkflow } from '../../workflows/malicious-pod-response.js';
import { alertAt, fakeCluster, type FakeCluster, type FakeEks } from './fake-cluster.js';

export async function startTestServer(): Promise<TestWorkflowEnvironment> {
  // The workflow's own log lines (every timeline note) and the worker's state changes would drown the test output.
  Runtime.install({ logger: new DefaultLogger('WARN') });
  const env = await TestWorkflowEnvironment.createTimeSkipping({
    server: { executable: { type: 'existing-path', path: inject('testServerPath') } },
  });
  // The incident upserts these; the test server, like any namespace, refuses ones not registered.
  const KEYWORD = 2; // temporal.api.enums.v1.IndexedValueType
  await env.connection.operatorService.addSearchAttributes({
    namespace: env.namespace ?? 'default',
    searchAttributes: Object.fromEntries(Object.keys(SEARCH_ATTRIBUTE_TYPES).map((k) => [k, KEYWORD])),
  });
  return env;
}

/** A policy for tests: the defaults, no evidence capture (its activity is not mocked), and `over`. */
export function testPolicy(over: Partial<Policy> = {}): Policy {
  return { ...defaultPolicy, evidenceSeconds: 0, ...over };
}

export interface Incident {
  handle: WorkflowHandle<IncidentWorkflow>;
  cluster: FakeCluster;
  status(): Promise<IncidentStatus>;
  /** Polls `status` (real time; the server's clock stands still meanwhile) until the stage is `stage`. */
  untilStage(stage: Stage): Promise<IncidentStatus>;
}

let n = 0;

/**
 * Starts an incident about the fake pod on a worker of its own and runs `body` while the worker runs; the worker
 * stops when `body` ends, and an incident still running then is terminated. `body` gets the incident: await
 * `handle.result()` there to let time skip.
 */
export async function withIncident<T>(
  env: TestWorkflowEnvironment,
  opts: {
    policy?: Partial<Policy>;
    alert?: Parameters<typeof alertAt>[1];
    cluster?: FakeCluster;
    /** The EKS executor, its AWS steps mocked too (fakeEks); default: the direct executor. */
    eks?: FakeEks;
  },
  body: (i: Incident) => Promise<T>,
): Promise<T> {
  n += 1;
  const taskQueue = `wf-test-${process.pid}-${n}`;
  const cluster = opts.cluster ?? fakeCluster();
  const worker = await Worker.create({
    connection: env.nativeConnection,
    namespace: env.namespace ?? 'default',
    taskQueue,
    workflowBundle: await workflowBundle(workflowsPath()),
    activities: { ...cluster.activities, ...opts.eks?.activities },
  });
  const input: IncidentInput = {
    alert: alertAt(await env.currentTimeMs(), opts.alert),
    policy: testPolicy(opts.policy),
    executor: { kind: opts.eks ? 'eks-lambda' : 'direct' },
  };
  return worker.runUntil(async () => {
    const handle = await env.client.workflow.start<IncidentWorkflow>('maliciousPodResponse', {
      taskQueue,
      workflowId: `incident-${taskQueue}`,
      args: [input],
    });
    const status = () => handle.query(statusQuery);
    const untilStage = async (stage: Stage): Promise<IncidentStatus> => {
      const deadline = Date.now() + 10_000;
      for (;;) {
        const s = await status();
        if (s.stage === stage) return s;
        if (Date.now() > deadline)
          throw new Error(
            `incident stayed in stage ${s.stage}, expected ${stage}: ${JSON.stringify(s.timeline.map((t) => t.event))}`,
          );
        await new Promise((r) => setTimeout(r, 50));
      }
    };
    try {
      return await body({ handle, cluster, status, untilStage });
    } finally {
      // An incident left waiting would stop time for the next test: the server does not skip past a timer whose
      // workflow task no worker will take.
      if ((await handle.describe()).status.name === 'RUNNING') await handle.terminate('the test is over');
    }
  });
}
