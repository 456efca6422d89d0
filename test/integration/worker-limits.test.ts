/**
 * A worker bounded by worker.maxCachedIncidents keeps no more incidents in memory than that, however many are
 * parked; an evicted incident is rebuilt from its history when its answer arrives, and finishes as it would have.
 * Its kill path runs as local activities only where the cache holds twice the workflow tasks at once
 * (worker/cache-room.ts): with less, a full cache evicts incidents waiting on them, and their first task is lost.
 * Through the real worker, dev server and kube-apiserver.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createNamespace, createWorkload, podExists, testKube, type TestKube } from '../support/cluster.js';
import { localActivitySummaries, workflowTaskTimeouts } from '../support/history.js';
import { alertFor, startResponder, type Responder } from '../support/responder.js';
import { until } from '../support/until.js';

let kube: TestKube;
beforeAll(() => {
  kube = testKube();
});

/** Starts `n` incidents at once that wait for approval, answers them once all wait, and checks each finishes. */
async function parkAndApprove(r: Responder, n: number, cached: number) {
  const ns = await createNamespace(kube, 'limits');
  const pods = await Promise.all(Array.from({ length: n }, () => createWorkload(kube, ns, 'Pod')));
  const handles = await Promise.all(
    pods.map((w) =>
      r.respond(alertFor(ns, w), { requireApprovalFor: ['terminate-pod'], isolate: false, evidenceSeconds: 0 }),
    ),
  );
  for (const h of handles) await r.waitForStage(h, 'awaiting-approval');
  // Evicting is the worker's own business, done between tasks: it settles at the limit, not above.
  const settled = async () =>
    until(
      `the cache to hold ${cached} incidents at most`,
      async () => r.worker.worker.getStatus().numCachedWorkflows <= cached,
      10_000,
    );
  await settled();

  for (const h of handles) await r.approve(h, 'lead');
  const results = await Promise.all(handles.map((h) => h.result()));
  expect(results.map((x) => x.outcome)).toEqual(Array(n).fill('pod-terminated'));
  for (const w of pods) expect(await podExists(kube, ns, w.name)).toBe(false);
  await settled();
  return handles;
}

describe('a worker with room for two incidents in memory', () => {
  let r: Responder;
  beforeAll(async () => {
    r = await startResponder({ worker: { maxCachedIncidents: 2 } });
  });
  afterAll(async () => r?.close());

  it('parks five awaiting approval with at most two cached, then takes every answer and finishes each', async () => {
    const handles = await parkAndApprove(r, 5, 2);
    // No more cached than tasks at once: the pod read went through the task queue, not as a local activity.
    for (const h of handles)
      expect((await localActivitySummaries(h)).filter((s) => s.startsWith('inspect'))).toEqual([]);
  });
});

describe('a worker with room for four incidents and two workflow tasks at once', () => {
  let r: Responder;
  beforeAll(async () => {
    r = await startResponder({ worker: { maxCachedIncidents: 4, maxConcurrentWorkflowTasks: 2 } });
  });
  afterAll(async () => r?.close());

  it('reads each of eight pods in its first workflow task, as a local activity, and loses no task to eviction', async () => {
    const handles = await parkAndApprove(r, 8, 4);
    for (const h of handles) {
      expect((await localActivitySummaries(h)).filter((s) => s.startsWith('inspect'))).toHaveLength(1);
      expect(await workflowTaskTimeouts(h)).toBe(0);
    }
  });
});
