/**
 * A worker bounded by worker.maxCachedIncidents keeps no more incidents in memory than that, however many are
 * parked; an evicted incident is rebuilt from its history when its answer arrives, and finishes as it would have.
 * Through the real worker, dev server and kube-apiserver.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createNamespace, createWorkload, podExists, testKube, type TestKube } from '../support/cluster.js';
import { alertFor, startResponder, type Responder } from '../support/responder.js';
import { until } from '../support/until.js';

let r: Responder;
let kube: TestKube;
beforeAll(async () => {
  r = await startResponder({ worker: { maxCachedIncidents: 2 } });
  kube = testKube();
});
afterAll(async () => r?.close());

describe('a worker with room for two incidents in memory', () => {
  it('parks five awaiting approval with at most two cached, then takes every answer and finishes each', async () => {
    const ns = await createNamespace(kube, 'limits');
    const pods = await Promise.all([0, 1, 2, 3, 4].map(() => createWorkload(kube, ns, 'Pod')));
    const handles = await Promise.all(
      pods.map((w) =>
        r.respond(alertFor(ns, w), { requireApprovalFor: ['terminate-pod'], isolate: false, evidenceSeconds: 0 }),
      ),
    );
    for (const h of handles) await r.waitForStage(h, 'awaiting-approval');
    // Evicting is the worker's own business, done between tasks: it settles at the limit, not above.
    await until(
      'the cache to hold two incidents at most',
      async () => r.worker.worker.getStatus().numCachedWorkflows <= 2,
      10_000,
    );

    for (const h of handles) await r.approve(h, 'lead');
    const results = await Promise.all(handles.map((h) => h.result()));
    expect(results.map((x) => x.outcome)).toEqual(Array(5).fill('pod-terminated'));
    for (const w of pods) expect(await podExists(kube, ns, w.name)).toBe(false);
    await until(
      'the cache to hold two incidents at most',
      async () => r.worker.worker.getStatus().numCachedWorkflows <= 2,
      10_000,
    );
  });
});
