/**
 * A flood through the real parts: Falco events posted to a forwarder (with its spool, as deployed), a worker and the
 * dev server. Every run of the incident's chain ends within historyBytesPerRun, and the incident counts every
 * distinct alert once. Before the fix a run continued as new only once its history had passed historyBytesPerRun,
 * and its continue-as-new event (the carried ledger) and the signals landing while it closed came on top.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { statusQuery } from '../../workflows/messages.js';
import { createNamespace, createWorkload, testKube, type TestKube } from '../support/cluster.js';
import { bearer, startForwarder, TOKENS, type TestForwarder } from '../support/forwarder.js';
import { startResponder, type Responder } from '../support/responder.js';
import { until } from '../support/until.js';

const LIMIT = 1024 * 1024;
const ALERTS = 20_000;
const RATE = 500;

let kube: TestKube;
let responder: Responder;
let fwd: TestForwarder;
beforeAll(async () => {
  kube = testKube();
  responder = await startResponder();
  fwd = await startForwarder({
    taskQueue: responder.config.temporal.taskQueue,
    spool: true,
    // Hold checks off: a check is not a wait, and this is about the waits' continue-as-new.
    config: { policy: { historyBytesPerRun: LIMIT, holdSuspensionSeconds: 3600, holdCheckSeconds: 0 } },
  });
}, 120_000);
afterAll(async () => {
  await fwd?.close();
  await responder?.close();
});

/** Falcosidekick's body for one event about the pod (Falco's identity: rule, time, container, output). */
function falcoEvent(ns: string, pod: string, containerId: string, i: number): string {
  const time = new Date().toISOString().replace('Z', `${String(i % 1e6).padStart(6, '0')}Z`);
  return JSON.stringify({
    uuid: randomUUID(),
    rule: 'Detect crypto miners using the Stratum protocol',
    priority: 'Critical',
    time,
    source: 'syscall',
    tags: ['T1496'],
    output: `Outbound connection to a Stratum mining pool (pod ${pod}, connection ${i})`,
    output_fields: { 'k8s.ns.name': ns, 'k8s.pod.name': pod, 'container.id': containerId, 'proc.name': 'xmrig' },
  });
}

describe('an alert flood through the forwarder', () => {
  it(
    `${ALERTS} distinct alerts at ${RATE}/s: every run within historyBytesPerRun, each alert counted once`,
    { timeout: 300_000 },
    async () => {
      const ns = await createNamespace(kube, 'floodbytes');
      const w = await createWorkload(kube, ns, 'Deployment');
      const pod = w.pod.metadata!.name!;
      const containerId = w.pod.containerId.slice(0, 12);
      const url = `${fwd.url}/v1/alerts/falco?cluster=local`;
      const outcomes = new Map<string, number>();
      let inFlight = 0;
      const t0 = performance.now();
      const sends: Promise<void>[] = [];
      // Open loop, as Falcosidekick sends: one request per event on its schedule, whatever the answers take.
      for (let i = 0; i < ALERTS; i++) {
        const due = t0 + (i * 1000) / RATE - performance.now();
        if (due > 2) await new Promise((r) => setTimeout(r, due));
        while (inFlight >= 200) await new Promise((r) => setTimeout(r, 5));
        inFlight++;
        const body = falcoEvent(ns, pod, containerId, i);
        sends.push(
          fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', ...bearer(TOKENS.falco) }, body })
            .then(async (res) => {
              const outcome =
                res.status === 202
                  ? ((await res.json()) as { results: { outcome: string }[] }).results[0]!.outcome
                  : `HTTP ${res.status}`;
              outcomes.set(outcome, (outcomes.get(outcome) ?? 0) + 1);
            })
            .finally(() => inFlight--),
        );
      }
      await Promise.all(sends);
      // Accepted at once, or on disk in the spool to go with the incident's next signal: 202 either way, none refused.
      expect([...outcomes.keys()].sort()).toEqual(['accepted', 'queued'].filter((o) => outcomes.has(o)));

      const workflowId = `pod-incident:local:${ns}:${pod}`;
      const handle = responder.client.workflow.getHandle(workflowId);
      const status = await until(
        'the incident to count every alert',
        async () => {
          const s = await handle.query(statusQuery);
          return s.alerts.count >= ALERTS && s;
        },
        180_000,
      );
      expect(status.alerts).toMatchObject({ count: ALERTS, duplicates: 0, invalid: 0, otherPods: 0 });
      expect(status.run).toBeGreaterThanOrEqual(3);

      // Every run of the chain, the open one included, within the byte limit.
      const runs: { runId: string; status: string; bytes: number; events: number }[] = [];
      for await (const run of responder.client.workflow.list({ query: `WorkflowId = '${workflowId}'` })) {
        const d = await responder.client.workflow.getHandle(workflowId, run.runId).describe();
        runs.push({ runId: run.runId, status: d.status.name, bytes: d.historySize ?? NaN, events: d.historyLength });
      }
      expect(runs.length).toBeGreaterThanOrEqual(3);
      const over = runs.filter((r) => !(r.bytes <= LIMIT));
      expect(over, JSON.stringify(runs)).toEqual([]);
      await handle.terminate('test done');
    },
  );
});
