/**
 * The worker's policy floor, through the real worker, dev server and kube-apiserver: a client that can start a
 * workflow sends its own policy; the worker's floor (its config's policyFloor) decides the loosest it may be.
 * The floor here protects one more namespace than the defaults and requires approval to suspend a workload.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { signBody } from '../../forwarder/auth.js';
import { respondToAlert } from '../../temporal-client/incidents.js';
import type { PodAlert } from '../../domain/alert.js';
import { POLICY_DEFAULTS } from '../../domain/policy-defaults.js';
import { policySchema, type Policy, type PolicyInput } from '../../domain/policy.js';
import { INCIDENT_TASK_TIMEOUT, incidentWorkflowId } from '../../workflows/ids.js';
import type { IncidentInput, IncidentWorkflow } from '../../workflows/malicious-pod-response.js';
import { freshFixture } from '../support/alert-fixtures.js';
import { createNamespace, createWorkload, podExists, testKube, type TestKube } from '../support/cluster.js';
import { HMAC_SECRET, startForwarder, type TestForwarder } from '../support/forwarder.js';
import { alertFor, startResponder, type Responder } from '../support/responder.js';
import { closedStatus } from '../support/closed-status.js';
import { freshState } from '../../workflows/incident/state.js';

let r: Responder;
let kube: TestKube;
/** A namespace only the worker's floor protects (the policy defaults do not). */
let guarded: string;
let floor: { protectedNamespaces: string[]; requireApprovalFor: ['suspend-workload'] };

beforeAll(async () => {
  kube = testKube();
  guarded = await createNamespace(kube, 'guarded');
  floor = {
    protectedNamespaces: [...POLICY_DEFAULTS.protectedNamespaces, guarded],
    requireApprovalFor: ['suspend-workload'],
  };
  r = await startResponder({ policyFloor: floor });
});
afterAll(async () => r?.close());

/** Starts the incident as any client that may start workflows can: its own input, its own policy, no forwarder. */
async function startDirectly(alert: PodAlert, policy: Partial<Policy>, extra: Partial<IncidentInput> = {}) {
  const input: IncidentInput = {
    alert,
    policy: { ...policySchema.parse({}), ...policy },
    executor: { kind: 'direct' },
    ...extra,
  };
  return r.client.workflow.start<IncidentWorkflow>('maliciousPodResponse', {
    taskQueue: r.config.temporal.taskQueue,
    workflowId: extra.carried ? `forged-${randomBytes(4).toString('hex')}` : incidentWorkflowId(alert),
    args: [input],
    workflowTaskTimeout: INCIDENT_TASK_TIMEOUT,
  });
}

const networkPolicies = async (ns: string) =>
  (await kube.networking.listNamespacedNetworkPolicy({ namespace: ns })).items.map((p) => p.metadata!.name);

describe('a policy looser than the floor', () => {
  it("started directly with the floor's namespace and approval dropped: failed, naming each field, and the pod untouched", async () => {
    const w = await createWorkload(kube, guarded, 'Deployment');
    const handle = await startDirectly(alertFor(guarded, w, { severity: 'critical' }), {
      protectedNamespaces: [],
      requireApprovalFor: [],
      holdSuspensionSeconds: 0,
    });
    const result = await closedStatus(handle);
    expect(result.outcome).toBe('failed');
    expect(result.problem).toBe(
      "the incident's policy is looser than this worker's policy floor: " +
        `protectedNamespaces: lacks kube-system, kube-public, kube-node-lease, ${guarded} (the floor protects them); ` +
        'requireApprovalFor: lacks suspend-workload (the floor requires approval for it); ' +
        "nothing was done (start it with a policy at least as strict, or change the worker's policyFloor)",
    );
    expect(result.actions).toEqual([]);
    expect(result.pod).toBeNull(); // not even read
    expect(result.timeline.map((t) => t.event)).toContain('policy-refused');
    expect(await podExists(kube, guarded, w.pod.metadata!.name!)).toBe(true);
    expect((await kube.apps.readNamespacedDeployment({ namespace: guarded, name: w.name })).spec?.replicas).toBe(3);
    expect(await networkPolicies(guarded)).toEqual([]);
    expect((await handle.describe()).status.name).toBe('COMPLETED');
  });

  it('a value that is no policy value at all is refused the same way, with the field and why', async () => {
    const ns = await createNamespace(kube, 'floorbad');
    const w = await createWorkload(kube, ns, 'Pod');
    const handle = await startDirectly(alertFor(ns, w), { protectedNamespaces: 'kube-system' as unknown as string[] });
    const result = await closedStatus(handle);
    expect(result.outcome).toBe('failed');
    expect(result.problem).toBe(
      "the incident's policy is invalid: protectedNamespaces: Invalid input: expected array, received string; nothing was done",
    );
    expect(await podExists(kube, ns, w.name)).toBe(true);
  });

  it('state carried into a run the incident did not continue is refused: a forged continue-as-new cannot skip the check', async () => {
    const ns = await createNamespace(kube, 'floorforged');
    const w = await createWorkload(kube, ns, 'Pod');
    const alert = alertFor(ns, w);
    // A real pod to forge a state about: an incident awaiting approval under a strict policy.
    const real = await startDirectly(alert, {
      protectedNamespaces: floor.protectedNamespaces,
      requireApprovalFor: ['terminate-pod', 'suspend-workload'],
    });
    const waiting = await r.waitForStage(real, 'awaiting-approval');
    await real.terminate('test: forge from its status');
    const forged = await startDirectly(
      alert,
      { protectedNamespaces: [] },
      {
        carried: {
          state: { ...freshState(real.workflowId, alert), phase: { name: 'act', pod: waiting.pod! } },
          seenAlerts: '',
        },
      },
    );
    const result = await closedStatus(forged);
    expect(result.outcome).toBe('failed');
    expect(result.problem).toBe(
      "the input carries an earlier run's state, but this run was started, not continued as new by the incident: only the incident itself may hand its state on; nothing was done",
    );
    expect(await podExists(kube, ns, w.name)).toBe(true);
  });
});

describe('a policy at least as strict as the floor', () => {
  it('started directly, tighter than the floor: runs with its own stricter policy (approval for the kill too)', async () => {
    const ns = await createNamespace(kube, 'floortight');
    const w = await createWorkload(kube, ns, 'Pod');
    const tight: PolicyInput = {
      protectedNamespaces: [...floor.protectedNamespaces, 'payments'],
      requireApprovalFor: ['terminate-pod', 'suspend-workload'],
      terminateGracePeriodSeconds: 5,
      repeatThreshold: 3,
    };
    const handle = await startDirectly(alertFor(ns, w), policySchema.parse(tight));
    const waiting = await r.waitForStage(handle, 'awaiting-approval');
    expect(waiting.proposal).toMatchObject({ id: 'p1', action: 'terminate-pod' });
    await r.approve(handle, 'ana');
    expect((await closedStatus(handle)).outcome).toBe('pod-terminated');
    expect(await podExists(kube, ns, w.name)).toBe(false);
  });

  it('a protected namespace the starter kept is still dismissed as protected', async () => {
    const w = await createWorkload(kube, guarded, 'Pod');
    const result = await closedStatus(
      await startDirectly(alertFor(guarded, w), {
        protectedNamespaces: floor.protectedNamespaces,
        requireApprovalFor: ['suspend-workload'],
      }),
    );
    expect(result.outcome).toBe('dismissed');
    expect(result.dismissal?.code).toBe('protected-namespace');
    expect(await podExists(kube, guarded, w.name)).toBe(true);
  });
});

describe("the forwarder's normal path", () => {
  let fwd: TestForwarder;
  beforeAll(async () => {
    // One config for both, as the Helm chart has it: the policy the forwarder starts incidents with meets the floor.
    fwd = await startForwarder({
      taskQueue: r.config.temporal.taskQueue,
      config: { policy: floor, policyFloor: floor },
    });
  });
  afterAll(() => fwd?.close());

  it('an alert through the forwarder still kills the pod', async () => {
    const ns = await createNamespace(kube, 'floorfwd');
    const w = await createWorkload(kube, ns, 'Pod');
    const raw = JSON.stringify(
      freshFixture('normalized', {
        cluster: 'local',
        namespace: ns,
        pod: w.name,
        id: `floor-${randomBytes(4).toString('hex')}`,
        uid: w.uid,
        containerId: w.pod.containerId,
        containerName: 'app',
      }),
    );
    const res = await fwd.post('/v1/alerts', raw, signBody(HMAC_SECRET, raw));
    expect(res.status, JSON.stringify(res.json)).toBe(202);
    const result = await closedStatus(r.client.workflow.getHandle(res.json.results[0].workflowId));
    expect(result).toMatchObject({ outcome: 'pod-terminated', problem: null });
    expect(await podExists(kube, ns, w.name)).toBe(false);
  });

  it('respondToAlert (what the forwarder and the CLI call) with the default policy is refused by this floor, naming it', async () => {
    const ns = await createNamespace(kube, 'floorcli');
    const w = await createWorkload(kube, ns, 'Pod');
    const started = await respondToAlert(r.client, { ...r.config, policy: policySchema.parse({}) }, alertFor(ns, w));
    const result = await closedStatus(r.client.workflow.getHandle(started.workflowId));
    expect(result.outcome).toBe('failed');
    expect(result.problem).toContain(
      `protectedNamespaces: lacks ${guarded} (the floor protects them); requireApprovalFor: lacks suspend-workload`,
    );
    expect(await podExists(kube, ns, w.name)).toBe(true);
  });
});
