/**
 * Alerts about a pod whose incident has closed with the pod killed: answered `closed`, with no new run and no
 * signal, whether the forwarder remembers the close or learns it from Temporal; a new pod with the same name
 * still starts an incident. Through a real forwarder, worker, Temporal dev server and kube-apiserver.
 */
import { Client, Connection } from '@temporalio/client';
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it, inject } from 'vitest';
import type { IncidentResult } from '../../workflows/messages.js';
import { signalledAlertIds } from '../support/history.js';
import { freshFixture } from '../support/alert-fixtures.js';
import { createNamespace, createPod, testKube, type TestKube } from '../support/cluster.js';
import { bearer, startForwarder, TOKENS, type TestForwarder } from '../support/forwarder.js';
import { startResponder, type Responder } from '../support/responder.js';

let connection: Connection;
let client: Client;
let kube: TestKube;
let responder: Responder;

beforeAll(async () => {
  connection = await Connection.connect({ address: inject('temporalAddress') });
  client = new Client({ connection });
  kube = testKube();
  responder = await startResponder();
});
afterAll(async () => {
  await responder?.close();
  await connection?.close();
});

const id = () => randomBytes(4).toString('hex');
const FALCO = '/v1/alerts/falco?cluster=local';

const metric = async (fwd: TestForwarder, name: string): Promise<number> => {
  const text = await (await fetch(`${fwd.url}/metrics`)).text();
  const m = new RegExp(`^pod_responder_forwarder_${name}\\{source="falco"\\} (\\d+)$`, 'm').exec(text);
  return m ? Number(m[1]) : 0;
};

describe('alerts about a closed incident’s pod', () => {
  let fwd: TestForwarder;
  beforeAll(async () => {
    fwd = await startForwarder({ taskQueue: responder.config.temporal.taskQueue });
  });
  afterAll(() => fwd?.close());

  it('are answered closed without a run or a signal; a new pod with the same name starts an incident', async () => {
    const ns = await createNamespace(kube, 'closed');
    const pod = await createPod(kube, ns, 'miner');
    const workflowId = `pod-incident:local:${ns}:miner`;
    const alert = (containerId: string) =>
      freshFixture('falco-stratum', {
        cluster: 'local',
        namespace: ns,
        pod: 'miner',
        id: `c-${id()}`,
        containerId,
        containerName: 'app',
      });

    const first = await fwd.post(FALCO, alert(pod.containerId), bearer(TOKENS.falco));
    expect(first.json.results[0]).toMatchObject({ outcome: 'accepted', workflowId });
    const firstRun = first.json.results[0].runId as string;
    const result = (await client.workflow.getHandle(workflowId, firstRun).result()) as IncidentResult;
    expect(result).toMatchObject({ outcome: 'pod-terminated', dismissal: null });

    // Late alerts about the killed pod (its container), one at a time and as a batch, and a copy of one.
    const late = alert(pod.containerId);
    const one = await fwd.post(FALCO, late, bearer(TOKENS.falco));
    expect(one.status).toBe(202);
    expect(one.json).toMatchObject({ accepted: 0, closed: 1 });
    expect(one.json.results[0]).toMatchObject({ outcome: 'closed', workflowId });
    expect(one.json.results[0].reason).toMatch(
      /^incident closed .* \(pod-terminated, the pod killed at .*\); this alert is about that pod/,
    );
    const batch = await fwd.post(
      FALCO,
      [alert(pod.containerId), alert(pod.containerId), alert(pod.containerId)],
      bearer(TOKENS.falco),
    );
    expect(batch.status).toBe(202);
    expect(batch.json.results.map((r: { outcome: string }) => r.outcome)).toEqual(['closed', 'closed', 'closed']);
    const copy = await fwd.post(FALCO, { ...late, uuid: `relayed-${id()}` }, bearer(TOKENS.falco));
    expect(copy.json.results[0].outcome).toBe('closed');

    // Nothing reached Temporal: the same run is the latest, and it took the first alert only.
    expect((await client.workflow.getHandle(workflowId).describe()).runId).toBe(firstRun);
    expect(await signalledAlertIds(client.workflow.getHandle(workflowId, firstRun))).toEqual([
      first.json.results[0].alertId,
    ]);
    expect(await metric(fwd, 'alerts_closed_total')).toBe(5);
    expect(await metric(fwd, 'alerts_accepted_total')).toBe(1);

    // A forwarder that never saw the incident (restarted, or another replica) learns the close from Temporal.
    const other = await startForwarder({ taskQueue: responder.config.temporal.taskQueue });
    try {
      const again = await other.post(FALCO, alert(pod.containerId), bearer(TOKENS.falco));
      expect(again.json.results[0]).toMatchObject({ outcome: 'closed', workflowId });
      expect(await metric(other, 'alerts_closed_total')).toBe(1);
      expect(await metric(other, 'alerts_accepted_total')).toBe(0);
    } finally {
      await other.close();
    }
    expect((await client.workflow.getHandle(workflowId).describe()).runId).toBe(firstRun);

    // A new pod with the same name (a StatefulSet's replacement, a miner back): other containers, a new incident.
    const replacement = await createPod(kube, ns, 'miner');
    const fresh = await fwd.post(FALCO, alert(replacement.containerId), bearer(TOKENS.falco));
    expect(fresh.json.results[0]).toMatchObject({ outcome: 'accepted', workflowId });
    const secondRun = fresh.json.results[0].runId as string;
    expect(secondRun).not.toBe(firstRun);
    const second = (await client.workflow.getHandle(workflowId, secondRun).result()) as IncidentResult;
    expect(second).toMatchObject({ outcome: 'pod-terminated', pod: { uid: replacement.metadata!.uid } });
    expect(await signalledAlertIds(client.workflow.getHandle(workflowId, secondRun))).toEqual([
      fresh.json.results[0].alertId,
    ]);
    expect(await metric(fwd, 'alerts_closed_total')).toBe(5);
    expect(await metric(fwd, 'alerts_accepted_total')).toBe(2);

    // And once that one closed too, a late alert about the replacement is answered closed as well.
    const lateReplacement = await fwd.post(FALCO, alert(replacement.containerId), bearer(TOKENS.falco));
    expect(lateReplacement.json.results[0].outcome).toBe('closed');
    expect((await client.workflow.getHandle(workflowId).describe()).runId).toBe(secondRun);
  });
});

describe('a burst of alerts about one incident', () => {
  it('the first is accepted at once, the rest answered queued (batched) at once and delivered in a few signals', async () => {
    // No worker polls this task queue: the incident only collects its signals, so their count is the forwarder's doing.
    const fwd = await startForwarder({ spool: true });
    try {
      const ns = `burst-${id()}`;
      const workflowId = `pod-incident:local:${ns}:miner`;
      const alert = () =>
        freshFixture('falco-stratum', { cluster: 'local', namespace: ns, pod: 'miner', id: `b-${id()}` });
      const answers = [];
      for (let i = 0; i < 40; i++) answers.push(await fwd.post(FALCO, alert(), bearer(TOKENS.falco)));
      expect(answers.map((a) => a.status)).toEqual(Array(40).fill(202));
      const outcomes = answers.map((a) => a.json.results[0] as { outcome: string; reason?: string });
      expect(outcomes[0]!.outcome).toBe('accepted');
      expect(outcomes.slice(1).map((o) => o.outcome)).toEqual(Array(39).fill('queued'));
      expect(outcomes.slice(1).every((o) => o.reason?.startsWith('batched: '))).toBe(true);
      expect(await metric(fwd, 'alerts_batched_total')).toBe(39);

      // Every alert reaches the incident once, in a few signals: the interval doubles through the burst (100 ms, 200, ...).
      const ids = answers.map((a) => a.json.results[0].alertId as string);
      const runId = answers[0]!.json.results[0].runId as string;
      let got: string[] = [];
      for (const deadline = Date.now() + 20_000; Date.now() < deadline; await new Promise((r) => setTimeout(r, 200))) {
        got = await signalledAlertIds(client.workflow.getHandle(workflowId, runId));
        if (got.length >= ids.length) break;
      }
      expect(got).toEqual(ids);
      const signals = (await client.workflow.getHandle(workflowId, runId).fetchHistory()).events!.filter(
        (e) => e.workflowExecutionSignaledEventAttributes,
      ).length;
      // Signals at 0, 100, 300, 700, 1500, 3100 ms...: 40 alerts posted one after another take 4 to 7 signals.
      expect(signals).toBeGreaterThanOrEqual(2);
      expect(signals).toBeLessThanOrEqual(8);
      await client.workflow.getHandle(workflowId).terminate('test done');
    } finally {
      await fwd.close();
    }
  });

  it('a repeat after the lane’s interval lapsed, still within the burst, is queued at once too: no sender waits on Temporal', async () => {
    const fwd = await startForwarder({ spool: true });
    try {
      const ns = `lapse-${id()}`;
      const workflowId = `pod-incident:local:${ns}:miner`;
      const alert = () =>
        freshFixture('falco-stratum', { cluster: 'local', namespace: ns, pod: 'miner', id: `l-${id()}` });
      const first = await fwd.post(FALCO, alert(), bearer(TOKENS.falco));
      expect(first.json.results[0].outcome).toBe('accepted');
      // Past the first interval (100 ms), well inside the burst (quiet after batchMaxIntervalMs, 2 s).
      await new Promise((r) => setTimeout(r, 400));
      const repeat = await fwd.post(FALCO, alert(), bearer(TOKENS.falco));
      expect(repeat.json.results[0]).toMatchObject({ outcome: 'queued' });
      expect(repeat.json.results[0].reason).toMatch(/^batched: /);
      const runId = first.json.results[0].runId as string;
      const ids = [first, repeat].map((a) => a.json.results[0].alertId as string);
      let got: string[] = [];
      for (const deadline = Date.now() + 20_000; Date.now() < deadline; await new Promise((r) => setTimeout(r, 200))) {
        got = await signalledAlertIds(client.workflow.getHandle(workflowId, runId));
        if (got.length >= ids.length) break;
      }
      expect(got).toEqual(ids);
      await client.workflow.getHandle(workflowId).terminate('test done');
    } finally {
      await fwd.close();
    }
  });
});
