/**
 * The workflow's activities, mocked: a cluster with one pod of a Deployment, answering the remediation core's
 * operations as the direct executor would when everything works. Every request is recorded, so a test asserts
 * what the incident asked the cluster to do; `answer` replaces one operation's answer (a revert, a failure).
 */
import type { Activities } from '../../activities/index.js';
import type { Notification, NotifyReport } from '../../activities/notify.js';
import { createPolicyFloorActivities } from '../../activities/policy-floor.js';
import type { PodAlert } from '../../domain/alert.js';
import type { PodFacts, WorkloadRef } from '../../domain/workload.js';
import type { CoreRequest, CoreResponses } from '../../remediation/protocol.js';

type Op = CoreRequest['op'];
type Answer<O extends Op> = (request: Extract<CoreRequest, { op: O }>) => CoreResponses[O] | Promise<CoreResponses[O]>;

export const NAMESPACE = 'shop';
export const POD = 'web-7d4b9c-x2x9z';
const CONTAINER_ID = 'a1b2c3d4e5f6a1b2c3d4e5f6';

export const deployment: WorkloadRef = {
  apiVersion: 'apps/v1',
  kind: 'Deployment',
  namespace: NAMESPACE,
  name: 'web',
  uid: 'uid-deploy',
};

export const podFacts: PodFacts = {
  namespace: NAMESPACE,
  name: POD,
  uid: '3f1c2a9e-5b7d-4e8f-9a0b-1c2d3e4f5a6b',
  labels: { app: 'web' },
  nodeName: 'node-1',
  containers: [{ name: 'app', image: 'registry.example/web:1', containerIds: [`containerd://${CONTAINER_ID}`] }],
  owners: [
    { apiVersion: 'apps/v1', kind: 'ReplicaSet', name: 'web-7d4b9c', uid: 'uid-rs', supported: true },
    { apiVersion: 'apps/v1', kind: 'Deployment', name: 'web', uid: 'uid-deploy', supported: true },
  ],
};

let seq = 0;
/** An alert about the fake pod, detected at `nowMs` (the test server's clock, which time skipping moves on). */
export function alertAt(nowMs: number, over: Partial<PodAlert> = {}): PodAlert {
  seq += 1;
  return {
    source: 'falco',
    alertId: `wf-${nowMs}-${seq}`,
    category: 'crypto-mining',
    severity: 'high',
    detectedAt: new Date(nowMs).toISOString(),
    cluster: { name: 'local' },
    namespace: NAMESPACE,
    podName: POD,
    podUid: podFacts.uid,
    container: { id: CONTAINER_ID.slice(0, 12), name: 'app' },
    process: { name: 'xmrig', commandLine: 'xmrig -o stratum+tcp://pool.example:3333' },
    ...over,
  };
}

export interface FakeCluster {
  /** What the worker registers: only the activities the direct executor's incidents call. */
  activities: Pick<Activities, 'runDirect' | 'countRecentIncidents' | 'notify' | 'checkIncidentPolicy'>;
  /** Every core request, in order. */
  requests: CoreRequest[];
  notifications: Notification[];
  /** The ops asked so far, in order (`requests` mapped to their op). */
  ops(): Op[];
  answer<O extends Op>(op: O, fn: Answer<O>): void;
}

export function fakeCluster(): FakeCluster {
  const requests: CoreRequest[] = [];
  const notifications: Notification[] = [];
  let podGone = false;
  const target = `pod ${NAMESPACE}/${POD} (uid ${podFacts.uid})`;
  const defaults: { [O in Op]?: Answer<O> } = {
    inspect: () => ({ pod: podGone ? null : podFacts }),
    'isolate-pod': (r) => ({
      result: { action: 'isolate-pod', target, status: 'done', message: 'deny-all NetworkPolicy created' },
      record: {
        incidentId: r.incidentId,
        namespace: NAMESPACE,
        networkPolicy: `isolate-${r.incidentId}`,
        label: { key: 'pod-responder.io/isolate', value: r.incidentId },
        pod: r.pod,
      },
    }),
    'release-isolation': () => ({
      result: { action: 'release-isolation', target, status: 'done', message: 'NetworkPolicy deleted' },
    }),
    'terminate-pod': () => {
      podGone = true;
      return { result: { action: 'delete-pod', target, status: 'done', message: 'deleted with uid precondition' } };
    },
    'suspend-workload': (r) => ({
      result: {
        action: 'suspend-workload',
        target: `Deployment ${NAMESPACE}/web`,
        status: 'done',
        message: 'replicas 3 -> 0',
      },
      record: {
        incidentId: r.incidentId,
        workload: r.workload,
        changes: [{ type: 'replicas', target: r.workload, prior: 3 }],
      },
    }),
    'restore-workload': () => ({
      result: {
        action: 'restore-workload',
        target: `Deployment ${NAMESPACE}/web`,
        status: 'done',
        message: 'replicas 0 -> 3',
      },
    }),
    verify: () => ({ ok: true, checks: [{ target: `${target} `, ok: true, observed: 'gone' }] }),
    'check-suspension': () => ({ reverted: [], gone: [] }),
  };
  const answers = new Map<Op, Answer<Op>>(Object.entries(defaults) as [Op, Answer<Op>][]);
  return {
    requests,
    notifications,
    ops: () => requests.map((r) => r.op),
    answer: (op, fn) => void answers.set(op, fn as unknown as Answer<Op>),
    activities: {
      async runDirect<R extends CoreRequest>(_cluster: string, request: R): Promise<CoreResponses[R['op']]> {
        requests.push(request);
        const fn = answers.get(request.op);
        if (!fn) throw new Error(`the fake cluster has no answer for ${request.op}`);
        return (await fn(request)) as CoreResponses[R['op']];
      },
      // The worker's own check, against its default floor: a test's policy is as strict as the floor asks.
      ...createPolicyFloorActivities(),
      async countRecentIncidents() {
        return 0;
      },
      async notify(n: Notification): Promise<NotifyReport> {
        notifications.push(n);
        return { delivered: [], failed: [] };
      },
    },
  };
}

/** The EKS executor's AWS steps, mocked: each deploy and undo recorded by name; the function runs `cluster`'s core. */
export interface FakeEks {
  activities: Record<string, (...args: never[]) => Promise<unknown>>;
  /** Every deploy and undo step, in order (`create role`, `delete function`, ...). */
  steps: string[];
}

export function fakeEks(cluster: FakeCluster): FakeEks {
  const steps: string[] = [];
  const step =
    <T>(name: string, answer: T) =>
    async () => {
      steps.push(name);
      return answer;
    };
  return {
    steps,
    activities: {
      describeTargetCluster: async (name: string, region: string) => ({
        name,
        region,
        arn: `arn:aws:eks:${region}:123456789012:cluster/${name}`,
        accountId: '123456789012',
        endpoint: 'https://eks.example',
        certificateAuthority: '',
        vpcId: 'vpc-1',
        subnetIds: ['subnet-1'],
        clusterSecurityGroupId: 'sg-cluster',
        authenticationMode: 'API_AND_CONFIG_MAP',
        installationId: 'test',
      }),
      createFunctionRole: step('create role', { roleArn: 'arn:aws:iam::123456789012:role/fn' }),
      ensureExecutorSecurityGroup: step('use executor group', { groupId: 'sg-executor' }),
      createFunctionAccessEntry: step('create access entry', undefined),
      createRemediationFunction: step('create function', undefined),
      deleteRemediationFunction: step('delete function', { leftIntact: undefined }),
      deleteFunctionAccessEntry: step('delete access entry', { leftIntact: undefined }),
      deleteFunctionRole: step('delete role', { leftIntact: undefined }),
      invokeRemediationFunction: async (_target: unknown, _name: string, request: CoreRequest) =>
        cluster.activities.runDirect('local', request),
    },
  };
}
