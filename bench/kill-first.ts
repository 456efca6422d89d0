/**
 * The kill first, with Temporal visibility stalled (`npm run bench:kill-first`, BENCH_ONLY=kill-first): alert
 * accepted by Temporal -> pod gone (a watch), for a Deployment's pod under the default policy (isolation, evidence
 * budget, earlier incidents counted), on a worker that reaches the dev server through the visibility-stall proxy
 * (devstack/visibility-stall-proxy.ts). Runs alternate: visibility answering at once, and visibility holding every
 * query for ten minutes (a lagging or dead visibility store); beside them the floor, a bare DELETE with a UID
 * precondition on the same kube-apiserver. The pods are on no node, so the API server removes them at the DELETE:
 * "gone" is the kill as the incident asked for it. Also: alert -> incident closed, which the stalled count prolongs
 * (by its budget, COUNT_EARLIER_INCIDENTS_BUDGET), after the kill. Sizes: BENCH_KILL_FIRST_RUNS (default 8 of each).
 */
import { Watch } from '@kubernetes/client-node';
import { Client, Connection } from '@temporalio/client';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { respondToAlert } from '../temporal-client/incidents.js';
import { configSchema } from '../config/config.js';
import { alertFor, createNamespace, createWorkload, fixtureKube } from '../devstack/fixtures.js';
import { startStack } from '../devstack/stack.js';
import { startVisibilityStallProxy } from '../devstack/visibility-stall-proxy.js';
import { kubeConfigFromFile } from '../remediation/kube.js';
import { installLogging } from '../worker/logging.js';
import { createWorker } from '../worker/worker.js';
import { statusQuery } from '../workflows/messages.js';

const STALL_MS = 10 * 60_000;

export interface KillFirstResult {
  runs: number;
  goneMs: { normal: number[]; stalled: number[] };
  closedMs: { normal: number[]; stalled: number[] };
  bareMs: number[];
  /** Outcomes and the earlier-incidents note of each stalled run, to check the count gave up after the kill. */
  stalledNotes: string[];
  failures: string[];
}

export async function benchKillFirst(o: { log: (line: string) => void; runs?: number }): Promise<KillFirstResult> {
  const runs = o.runs ?? Number(process.env.BENCH_KILL_FIRST_RUNS ?? 8);
  installLogging('ERROR');
  const stateDir = mkdtempSync(path.join(tmpdir(), 'pod-responder-bench-kill-first-'));
  const stack = await startStack({ stateDir, headless: true, log: () => {} });
  const proxy = await startVisibilityStallProxy({ backend: stack.temporalAddress });
  const kube = fixtureKube(stack.kubeconfigPath);
  const kc = kubeConfigFromFile(stack.kubeconfigPath);
  const config = configSchema.parse({
    temporal: { address: proxy.address, taskQueue: 'kill-first' },
    direct: { kubeconfig: stack.kubeconfigPath, cluster: 'local' },
    policy: { watchSeconds: 0 },
  });
  const connection = await Connection.connect({ address: stack.temporalAddress });
  const client = new Client({ connection });
  const worker = await createWorker(config);
  const running = worker.run();

  const deleted = new Map<string, (t: number) => void>();
  const goneAt = (key: string) => new Promise<number>((resolve) => deleted.set(key, resolve));
  const watch = await new Watch(kc).watch(
    '/api/v1/pods',
    {},
    (type: string, obj: { metadata?: { namespace?: string; name?: string } }) => {
      if (type === 'DELETED') deleted.get(`${obj.metadata?.namespace}/${obj.metadata?.name}`)?.(Date.now());
    },
    () => undefined,
  );

  const result: KillFirstResult = {
    runs,
    goneMs: { normal: [], stalled: [] },
    closedMs: { normal: [], stalled: [] },
    bareMs: [],
    stalledNotes: [],
    failures: [],
  };
  o.log(`kill-first: warming up, then ${runs} runs with visibility answering and ${runs} with it stalled, alternating`);
  for (let i = -2; i < runs * 2; i++) {
    const stalled = i >= 0 && i % 2 === 1;
    proxy.stallMs = stalled ? STALL_MS : 0;
    const ns = await createNamespace(kube, stalled ? 'stalled' : 'normal');
    const w = await createWorkload(kube, ns, 'Deployment');
    const gone = goneAt(`${ns}/${w.pod.metadata!.name}`);
    const started = await respondToAlert(client, config, alertFor(ns, w));
    const accepted = Date.now();
    const handle = client.workflow.getHandle(started.workflowId);
    await handle.result();
    const incident = await handle.query(statusQuery);
    const closed = Date.now();
    const goneMs = (await gone) - accepted;
    if (i < 0) continue; // warm-up: the first workflow tasks pay for the bundle and connections
    const row = stalled ? 'stalled' : 'normal';
    result.goneMs[row].push(goneMs);
    result.closedMs[row].push(closed - accepted);
    if (incident.outcome !== 'pod-terminated')
      result.failures.push(`${row} run ${i}: outcome ${incident.outcome} (${incident.problem ?? ''})`);
    if (stalled) {
      const note =
        incident.timeline.find((t) => t.event === 'earlier-incidents')?.detail ?? 'no earlier-incidents note';
      result.stalledNotes.push(note);
      if (!note.startsWith('not counted'))
        result.failures.push(`stalled run ${i}: the count answered (${note}): the proxy did not stall it`);
    }

    const bare = await kube.core.createNamespacedPod({
      namespace: ns,
      body: { metadata: { name: 'bare' }, spec: { containers: [{ name: 'app', image: 'app:1' }] } },
    });
    const bareGone = goneAt(`${ns}/bare`);
    const t = Date.now();
    await kube.core.deleteNamespacedPod({
      namespace: ns,
      name: 'bare',
      gracePeriodSeconds: 0,
      body: { preconditions: { uid: bare.metadata!.uid! }, gracePeriodSeconds: 0 },
    });
    result.bareMs.push((await bareGone) - t);
  }

  watch.abort();
  await worker.shutdown();
  await running;
  await connection.close();
  await proxy.close();
  await stack.stop();
  rmSync(stateDir, { recursive: true, force: true });
  return result;
}

const q = (xs: number[], p: number) => {
  const s = [...xs].filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  return s.length ? s[Math.min(s.length - 1, Math.floor(p * s.length))]! : NaN;
};

export function formatKillFirst(r: KillFirstResult): string {
  const ms = (x: number) => (x >= 10_000 ? `${(x / 1000).toFixed(1)} s` : `${x.toFixed(1)} ms`);
  const row = (label: string, xs: number[]) => `| ${label} | ${ms(q(xs, 0.5))} | ${ms(q(xs, 0.95))} |`;
  return `
## kill-first: alert accepted -> pod gone, Temporal visibility answering or stalled (${r.runs} runs each, alternating)

| from the alert accepted by Temporal to | p50 | p95 |
| --- | --- | --- |
${row('pod gone, visibility answering', r.goneMs.normal)}
${row('pod gone, visibility stalled (every query held 10 min)', r.goneMs.stalled)}
${row('incident closed, visibility answering', r.closedMs.normal)}
${row('incident closed, visibility stalled (the count gives up, after the kill)', r.closedMs.stalled)}
${row('floor: bare DELETE with UID precondition -> gone', r.bareMs)}

Stalled runs' earlier-incidents note: ${[...new Set(r.stalledNotes.map((n) => n.replace(/Deployment \S+/, 'Deployment <ns>/app').replace(/(Deadline exceeded after )[^)]*/, '$1...')))].join(' | ')}
`;
}

export function killFirstFailures(r: KillFirstResult): string[] {
  return r.failures;
}
