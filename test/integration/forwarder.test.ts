/**
 * The alert forwarder over real HTTP, against the real Temporal dev server (and, end to end, a real
 * worker and kube-apiserver): vendor payloads in, one durable incident per pod out.
 */
import { Client, Connection } from '@temporalio/client';
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inject } from 'vitest';
import { signBody } from '../../forwarder/auth.js';
import { signalledAlertIds } from '../support/history.js';
import { fixture, freshFixture } from '../support/alert-fixtures.js';
import { createNamespace, createWorkload, podExists, testKube, type TestKube } from '../support/cluster.js';
import { bearer, HMAC_SECRET, startForwarder, TOKENS, type TestForwarder } from '../support/forwarder.js';
import { startResponder, type Responder } from '../support/responder.js';

let connection: Connection;
let client: Client;
let kube: TestKube;

beforeAll(async () => {
  connection = await Connection.connect({ address: inject('temporalAddress') });
  client = new Client({ connection });
  kube = testKube();
});
afterAll(async () => {
  await connection?.close();
});

const uid = () => randomBytes(4).toString('hex');

/** Workflows started on a task queue (the dev server's visibility is updated within a moment). */
async function workflowsOn(taskQueue: string, expected?: number): Promise<string[]> {
  for (let i = 0; ; i++) {
    const ids: string[] = [];
    for await (const w of client.workflow.list({ query: `TaskQueue = "${taskQueue}"` })) ids.push(w.workflowId);
    if (expected === undefined || ids.length === expected || i >= 20) return ids.sort();
    await new Promise((r) => setTimeout(r, 250));
  }
}

describe('end to end: every source starts a response that kills the pod', () => {
  let responder: Responder;
  let fwd: TestForwarder;
  beforeAll(async () => {
    responder = await startResponder({ clusters: ['dups', 'mixed', 'prod'] });
    fwd = await startForwarder({ taskQueue: responder.config.temporal.taskQueue });
  });
  afterAll(async () => {
    await fwd?.close();
    await responder?.close();
  });

  const cases: [string, string, Record<string, string>][] = [
    ['falco-stratum', '/v1/alerts/falco?cluster=local', bearer(TOKENS.falco)],
    ['guardduty-miner-executed', '/v1/alerts/guardduty', bearer(TOKENS.guardduty)],
    ['xdr-cryptominer', '/v1/alerts/xdr', bearer(TOKENS.xdr)],
    ['normalized', '/v1/alerts', {}],
  ];
  it.each(cases)('%s', async (name, path, headers) => {
    const ns = await createNamespace(kube, 'fwd');
    const w = await createWorkload(kube, ns, 'Pod');
    const body = freshFixture(name, {
      cluster: 'local',
      namespace: ns,
      pod: w.name,
      id: `e2e-${uid()}`,
      uid: w.uid,
      containerId: w.pod.containerId,
      containerName: 'app',
    });
    const raw = JSON.stringify(body);
    const res = await fwd.post(path, raw, path === '/v1/alerts' ? signBody(HMAC_SECRET, raw) : headers);
    expect(res.status, JSON.stringify(res.json)).toBe(202);
    const [result] = res.json.results;
    expect(result).toMatchObject({
      outcome: 'accepted',
      workflowId: `pod-incident:local:${ns}:${w.name}`,
      route: 'crypto-mining',
    });
    expect(result.ui).toBe(
      `http://localhost:8233/namespaces/default/workflows/${encodeURIComponent(result.workflowId)}`,
    );
    const outcome = await client.workflow.getHandle(result.workflowId).result();
    expect(outcome).toMatchObject({ outcome: 'pod-terminated' });
    expect(await podExists(kube, ns, w.name)).toBe(false);
  });
});

describe('duplicates', () => {
  let fwd: TestForwarder;
  beforeAll(async () => {
    fwd = await startForwarder();
  });
  afterAll(() => fwd?.close());

  it('one pod, many copies of one alert: one workflow, one signal', async () => {
    const pod = `dup-${uid()}`;
    const body = freshFixture('falco-stratum', { cluster: 'dups', namespace: 'shop', pod, id: `dup-${uid()}` });
    const post = () => fwd.post('/v1/alerts/falco?cluster=dups', body, bearer(TOKENS.falco));
    const concurrent = await Promise.all([post(), post(), post(), post(), post()]);
    const sequential = [await post(), await post(), await post()];
    const outcomes = [...concurrent, ...sequential].map((r) => (expect(r.status).toBe(202), r.json.results[0].outcome));
    expect(outcomes.filter((o) => o === 'accepted')).toHaveLength(1);
    expect(outcomes.filter((o) => o === 'duplicate')).toHaveLength(7);
    // A second alert about the same pod joins the same incident.
    const second = await fwd.post(
      '/v1/alerts/falco?cluster=dups',
      { ...body, output: `${body.output} (again)` },
      bearer(TOKENS.falco),
    );
    expect(second.json.results[0]).toMatchObject({ outcome: 'accepted', workflowId: `pod-incident:dups:shop:${pod}` });
    expect(await workflowsOn(fwd.config.temporal.taskQueue, 1)).toEqual([`pod-incident:dups:shop:${pod}`]);
    expect(await signalledAlertIds(client.workflow.getHandle(`pod-incident:dups:shop:${pod}`))).toEqual([
      concurrent[0].json.results[0].alertId,
      second.json.results[0].alertId,
    ]);
    const metrics = await (await fetch(`${fwd.url}/metrics`)).text();
    expect(metrics).toContain('pod_responder_forwarder_alerts_deduplicated_total{source="falco"} 7');
    expect(metrics).toContain('pod_responder_forwarder_alerts_accepted_total{source="falco"} 2');
    await client.workflow.getHandle(`pod-incident:dups:shop:${pod}`).terminate('test done');
  });

  it('a resend to a restarted forwarder (empty cache) is counted once by the incident', async () => {
    const responder = await startResponder({ clusters: ['dups', 'mixed', 'prod'] });
    const first = await startForwarder({ taskQueue: responder.config.temporal.taskQueue });
    const ns = await createNamespace(kube, 'fwd');
    const w = await createWorkload(kube, ns, 'Deployment');
    const body = freshFixture('guardduty-miner-executed', {
      cluster: 'local',
      namespace: ns,
      pod: w.pod.metadata!.name!,
      id: `gd-${uid()}`,
      containerId: w.pod.containerId,
      containerName: 'app',
    });
    try {
      expect((await first.post('/v1/alerts/guardduty', body, bearer(TOKENS.guardduty))).json.results[0].outcome).toBe(
        'accepted',
      );
      await first.close();
      const second = await startForwarder({ taskQueue: responder.config.temporal.taskQueue });
      const again = await second.post('/v1/alerts/guardduty', body, bearer(TOKENS.guardduty));
      await second.close();
      // The new forwarder cannot know; the incident can, and counts the alert ID once.
      expect(again.json.results[0].outcome).toBe('accepted');
      const handle = client.workflow.getHandle(again.json.results[0].workflowId);
      const status = await responder.waitForStage(handle, 'watching');
      expect(status.alerts).toMatchObject({ count: 1, first: { alertId: `${body.detail.id}#1` }, recent: [] });
      expect(status.decision).toMatchObject({ action: 'terminate-pod' });
      await handle.terminate('test done');
    } finally {
      await responder.close();
    }
  });
});

describe('alerts that start nothing', () => {
  let fwd: TestForwarder;
  beforeAll(async () => {
    fwd = await startForwarder();
  });
  afterAll(() => fwd?.close());

  it.each([
    [
      'falco-shell',
      '/v1/alerts/falco?cluster=prod',
      TOKENS.falco,
      'no routing rule responds to falco "Terminal shell in container" (category runtime-detection, low)',
    ],
    [
      'falco-host-event',
      '/v1/alerts/falco?cluster=prod',
      TOKENS.falco,
      'event is not from a Kubernetes pod (k8s.ns.name or k8s.pod.name is absent or <NA>)',
    ],
    [
      'guardduty-reverse-shell',
      '/v1/alerts/guardduty',
      TOKENS.guardduty,
      'no routing rule responds to guardduty "Execution:Runtime/ReverseShell" (category runtime-detection, high)',
    ],
    [
      'guardduty-ec2-instance',
      '/v1/alerts/guardduty',
      TOKENS.guardduty,
      'finding is about resource type Instance, not an EKS workload',
    ],
    [
      'xdr-host-malware',
      '/v1/alerts/xdr',
      TOKENS.xdr,
      'alert has no pod (original_alert.messageData.containers[0].runtimeInfo podName/namespace)',
    ],
  ])('%s is acknowledged as ignored, with the reason', async (name, path, token, reason) => {
    const res = await fwd.post(path, fixture(name), bearer(token));
    expect(res.status).toBe(200);
    expect(res.json).toMatchObject({ accepted: 0, ignored: 1, results: [{ outcome: 'ignored', reason }] });
  });

  it("a mixed batch answers 202 with each alert's outcome; only the mining alert starts an incident", async () => {
    const pod = `mixed-${uid()}`;
    const mining = freshFixture('falco-stratum', { cluster: 'mixed', namespace: 'shop', pod, id: `m-${uid()}` });
    const shell = { ...fixture('falco-shell'), time: new Date().toISOString() };
    const res = await fwd.post('/v1/alerts/falco?cluster=mixed', [shell, mining], bearer(TOKENS.falco));
    expect(res.status).toBe(202);
    expect(res.json.results.map((r: { outcome: string }) => r.outcome)).toEqual(['ignored', 'accepted']);
    expect(await workflowsOn(fwd.config.temporal.taskQueue, 1)).toEqual([`pod-incident:mixed:shop:${pod}`]);
    const metrics = await (await fetch(`${fwd.url}/metrics`)).text();
    expect(metrics).toContain('pod_responder_forwarder_alerts_ignored_total{source="falco"} 3');
    await client.workflow.getHandle(`pod-incident:mixed:shop:${pod}`).terminate('test done');
  });
});
