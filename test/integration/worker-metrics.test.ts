/**
 * The worker's Prometheus endpoint, through the real worker, dev server, kube-apiserver and forwarder: the
 * incidents' metrics move exactly as the incidents did, the SDK's own are on the same endpoint, `pod-responder
 * worker` serves it where its start line says, and every query of the Grafana dashboard
 * (deploy/grafana/pod-responder.json) names a metric that the worker's or the forwarder's /metrics exposes.
 */
import { Context } from '@temporalio/activity';
import { NativeConnection, Worker } from '@temporalio/worker';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { jsonLogger } from '../../worker/logging.js';
import { installRuntime } from '../../worker/runtime.js';
import { restoreUpdate, type IncidentStatus } from '../../workflows/messages.js';
import { closedStatus } from '../support/closed-status.js';
import { freshFixture } from '../support/alert-fixtures.js';
import { createNamespace, createWorkload, testKube, type TestKube } from '../support/cluster.js';
import { bearer, startForwarder, TOKENS, type TestForwarder } from '../support/forwarder.js';
import { alertFor, startResponder, type Responder } from '../support/responder.js';
import { parseSamples, total } from '../support/prometheus.js';
import { until } from '../support/until.js';

const root = path.resolve(import.meta.dirname, '../..');
const hex = () => randomBytes(4).toString('hex');

/** Metric names /metrics exposes: every sample's, and every declared family's (prom-client declares labelled ones before their first sample). */
function exposedNames(text: string): Set<string> {
  const names = new Set(parseSamples(text).map((s) => s.name));
  for (const [, name, type] of text.matchAll(/^# TYPE (\S+) (\S+)$/gm)) {
    if (type === 'histogram') for (const suffix of ['_bucket', '_sum', '_count']) names.add(name! + suffix);
    else names.add(name!);
  }
  return names;
}

const PROMQL_KEYWORDS = new Set([
  'by',
  'without',
  'on',
  'ignoring',
  'group_left',
  'group_right',
  'and',
  'or',
  'unless',
  'bool',
  'offset',
]);

/** The metric names a PromQL expression selects: identifiers that are not functions, keywords, labels or strings. */
function metricNames(expr: string): string[] {
  const bare = expr
    .replace(/"(?:[^"\\]|\\.)*"/g, '""')
    .replace(/\{[^}]*\}/g, ' ')
    .replace(/\[[^\]]*\]/g, ' ')
    .replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' ');
  const names: string[] = [];
  for (const m of bare.matchAll(/[a-zA-Z_:][\w:]*/g)) {
    const after = bare.slice(m.index + m[0].length).trimStart();
    if (after.startsWith('(') || PROMQL_KEYWORDS.has(m[0])) continue;
    names.push(m[0]);
  }
  return [...new Set(names)];
}

async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
  const { port } = s.address() as { port: number };
  await new Promise((resolve) => s.close(resolve));
  return port;
}

const scrape = async (url: string): Promise<string> => (await fetch(url)).text();

/** What each action ended as, read from the incident's own record: its timeline (isolation, kill, suspension) and actions (restore). */
function actionsReported(results: IncidentStatus[]): Map<string, number> {
  const counts = new Map<string, number>();
  const add = (key: string) => counts.set(key, (counts.get(key) ?? 0) + 1);
  for (const r of results) {
    for (const t of r.timeline) {
      if (!['isolate-pod', 'release-isolation', 'delete-pod', 'suspend-workload'].includes(t.event)) continue;
      const status = /^failed/.test(t.detail)
        ? 'failed'
        : /: (done|already-done|not-found|unsupported|conflict) \(/.exec(t.detail)?.[1];
      if (!status) throw new Error(`no result in ${t.event}: ${t.detail}`);
      add(`${t.event} ${status}`);
    }
    for (const a of r.actions) if (a.action === 'restore-workload') add(`${a.action} ${a.status}`);
  }
  return counts;
}

let metricsUrl: string;
let r: Responder;
let kube: TestKube;
let fwd: TestForwarder;

beforeAll(async () => {
  // The SDK's runtime is one per process and fixed by the first install: this file installs it, with the
  // endpoint, before any worker (startResponder's own installLogging then keeps it).
  const port = await freePort();
  const endpoint = installRuntime({ logger: jsonLogger('ERROR'), metrics: { host: '127.0.0.1', port } });
  expect(endpoint).toEqual({ state: 'serving', url: `http://127.0.0.1:${port}/metrics` });
  metricsUrl = (endpoint as { url: string }).url;
  r = await startResponder();
  kube = testKube();
  fwd = await startForwarder({ taskQueue: r.config.temporal.taskQueue, spool: true });
});
afterAll(async () => {
  await fwd?.close();
  await r?.close();
});

describe('incident metrics', () => {
  it('count each incident by outcome, each action by result, and alert -> acted in seconds', async () => {
    const queue = r.config.temporal.taskQueue;
    const ns = await createNamespace(kube, 'metrics');
    // Detected 20 s before it reaches us: every latency observed is at least that.
    const detectedAt = new Date(Date.now() - 20_000);

    // A: a Deployment's pod, through the forwarder (Falco, Critical): killed, Deployment suspended, held, restored.
    const deployment = await createWorkload(kube, ns, 'Deployment');
    const pod = deployment.pod.metadata!.name!;
    const falco = freshFixture('falco-stratum', {
      cluster: 'local',
      namespace: ns,
      pod,
      id: `metrics-${hex()}`,
      uid: deployment.pod.metadata!.uid!,
      containerId: deployment.pod.containerId,
      containerName: 'app',
    });
    falco.time = detectedAt.toISOString();
    const posted = await fwd.post('/v1/alerts/falco?cluster=local', falco, bearer(TOKENS.falco));
    expect(posted.status, JSON.stringify(posted.json)).toBe(202);
    const a = r.client.workflow.getHandle(posted.json.results[0].workflowId);
    await r.waitForStage(a, 'holding', 60_000);
    await a.executeUpdate(restoreUpdate, { args: [{ by: 'analyst@example.com' }] });

    // B: a bare pod whose kill waits for a person's approval.
    const bare = await createWorkload(kube, ns, 'Pod');
    const b = await r.respond(alertFor(ns, bare, { detectedAt: detectedAt.toISOString() }), {
      requireApprovalFor: ['terminate-pod'],
    });
    await r.approve(b, 'analyst@example.com');

    // C: a stale alert, dismissed: no action.
    const other = await createWorkload(kube, ns, 'Pod');
    const c = await r.respond(alertFor(ns, other, { detectedAt: new Date(Date.now() - 2 * 3600_000).toISOString() }));

    const results = [await closedStatus(a), await closedStatus(b), await closedStatus(c)];
    expect(results.map((x) => x.outcome)).toEqual(['workload-restored', 'pod-terminated', 'dismissed']);

    // The worker hands workflow metrics to the exporter once the task that made them completes: wait for all three.
    const samples = parseSamples(
      await until('three incidents on /metrics', async () => {
        const text = await scrape(metricsUrl);
        return total(parseSamples(text), 'pod_responder_incidents_total', { taskQueue: queue }) >= 3 && text;
      }),
    );

    for (const outcome of ['workload-restored', 'pod-terminated', 'dismissed']) {
      expect(
        total(samples, 'pod_responder_incidents_total', { taskQueue: queue, outcome, source: 'falco' }),
        outcome,
      ).toBe(1);
    }
    expect(total(samples, 'pod_responder_incidents_total', { taskQueue: queue })).toBe(3);

    // Every action the incidents report, counted once with its result; nothing else.
    const counted = new Map(
      samples
        .filter((s) => s.name === 'pod_responder_actions_total' && s.labels.taskQueue === queue)
        .map((s) => [`${s.labels.action} ${s.labels.result}`, s.value]),
    );
    const reported = actionsReported(results);
    expect(Object.fromEntries(counted)).toEqual(Object.fromEntries(reported));
    expect(reported.get('delete-pod done')).toBe(2);
    expect(reported.get('suspend-workload done')).toBe(1);
    expect(reported.get('restore-workload done')).toBe(1);
    expect(reported.get('isolate-pod done')).toBe(2);

    // Alert -> acted: one observation per kill and per suspension, told apart by approval, in seconds.
    const upTo = (Date.now() - detectedAt.getTime()) / 1000;
    const hist = 'pod_responder_alert_to_action_seconds';
    for (const series of [
      { action: 'delete-pod', approval: 'none' },
      { action: 'suspend-workload', approval: 'none' },
      { action: 'delete-pod', approval: 'approved' },
    ]) {
      const labels = { taskQueue: queue, ...series };
      const what = JSON.stringify(series);
      expect(total(samples, `${hist}_count`, labels), what).toBe(1);
      expect(total(samples, `${hist}_sum`, labels), what).toBeGreaterThanOrEqual(20);
      expect(total(samples, `${hist}_sum`, labels), what).toBeLessThanOrEqual(upTo);
      // The worker's buckets (domain/metrics.ts), not the SDK's default ones: none below 20 s holds it.
      expect(total(samples, `${hist}_bucket`, { ...labels, le: '10' }), what).toBe(0);
      expect(total(samples, `${hist}_bucket`, { ...labels, le: '3600' }), what).toBe(1);
    }
    expect(total(samples, `${hist}_count`, { taskQueue: queue })).toBe(3);

    // The SDK's own metrics on the same endpoint.
    expect(
      total(samples, 'temporal_workflow_completed_total', { task_queue: queue, workflow_type: 'maliciousPodResponse' }),
    ).toBeGreaterThanOrEqual(3);
    expect(total(samples, 'temporal_workflow_task_execution_latency_count', { task_queue: queue })).toBeGreaterThan(0);
  }, 180_000);
});

describe('the Grafana dashboard', () => {
  const dashboard = JSON.parse(readFileSync(path.join(root, 'deploy/grafana/pod-responder.json'), 'utf8')) as {
    panels: { title: string; type: string; panels?: unknown[]; targets?: { expr: string }[] }[];
  };
  const panels = dashboard.panels
    .flatMap((p) => [p, ...((p.panels ?? []) as typeof dashboard.panels)])
    .filter((p) => p.type !== 'row');

  it('reads metric names out of PromQL', () => {
    expect(
      metricNames(
        'histogram_quantile(0.95, sum by (le, action) (rate(a_seconds_bucket{action="delete-pod",x=~"a|b"}[$__rate_interval])))',
      ),
    ).toEqual(['a_seconds_bucket']);
    expect(metricNames('sum(increase(x_total{outcome=~"failed"}[$__range])) or vector(0)')).toEqual(['x_total']);
    expect(metricNames('sum by (approval) (rate(s_sum[5m])) / sum by (approval) (rate(s_count[5m])) > 0')).toEqual([
      's_sum',
      's_count',
    ]);
  });

  it('queries, in every panel, only metrics that the worker or the forwarder exposes', async () => {
    // The SDK shows a failure counter once something failed: fail an activity and a workflow task, as a bug would.
    const helperQueue = `metrics-helper-${hex()}`;
    const connection = await NativeConnection.connect({ address: inject('temporalAddress') });
    const helper = await Worker.create({
      connection,
      taskQueue: helperQueue,
      workflowsPath: fileURLToPath(new URL('../support/metrics-workflows.ts', import.meta.url)),
      activities: {
        async failsOnce() {
          if (Context.current().info.attempt === 1) throw new Error('the first attempt fails');
        },
      },
    });
    const running = helper.run();
    try {
      await r.client.workflow.execute('activityFailsOnce', {
        taskQueue: helperQueue,
        workflowId: `activity-fails-once-${hex()}`,
      });
      const broken = await r.client.workflow.start('workflowTaskFails', {
        taskQueue: helperQueue,
        workflowId: `workflow-task-fails-${hex()}`,
      });
      await until(
        'a failed workflow task on /metrics',
        async () =>
          total(parseSamples(await scrape(metricsUrl)), 'temporal_workflow_task_execution_failed_total', {
            task_queue: helperQueue,
          }) > 0,
      );
      await broken.terminate('the test saw its workflow task fail');
    } finally {
      helper.shutdown();
      await running;
      await connection.close();
    }
    // A refused request, so the forwarder's rejection counter has a sample (test A sent it an accepted alert).
    expect((await fwd.post('/v1/alerts/falco?cluster=local', {}, bearer('not-the-token-0123456789'))).status).toBe(401);

    const exposed = new Set([
      ...exposedNames(await scrape(metricsUrl)),
      ...exposedNames(await scrape(`${fwd.url}/metrics`)),
    ]);
    const queried = new Set<string>();
    expect(panels.length).toBeGreaterThan(10);
    for (const panel of panels) {
      expect(panel.targets?.length, panel.title).toBeGreaterThan(0);
      for (const { expr } of panel.targets!) {
        const names = metricNames(expr);
        expect(names.length, `${panel.title}: ${expr}`).toBeGreaterThan(0);
        for (const name of names) {
          expect(exposed.has(name), `${panel.title}: ${name} is not on /metrics (${expr})`).toBe(true);
          queried.add(name);
        }
      }
    }
    // And the dashboard shows what it is for: the incidents, the actions, alert -> acted, the SDK's latencies and failures, the intake.
    for (const name of [
      'pod_responder_incidents_total',
      'pod_responder_actions_total',
      'pod_responder_alert_to_action_seconds_bucket',
      'temporal_workflow_task_execution_latency_bucket',
      'temporal_workflow_task_execution_failed_total',
      'temporal_activity_execution_latency_bucket',
      'temporal_activity_execution_failed_total',
      'pod_responder_forwarder_alerts_received_total',
    ]) {
      expect(queried, name).toContain(name);
    }
  }, 120_000);
});

describe('pod-responder worker', () => {
  const started: ChildProcess[] = [];
  afterAll(async () => {
    await Promise.all(
      started
        .filter((c) => c.exitCode === null)
        .map(
          (c) =>
            new Promise((resolve) => {
              c.once('exit', resolve);
              c.kill('SIGTERM');
            }),
        ),
    );
  });

  /** Starts `client/cli.ts worker`; resolves with its stderr up to and including the start line. */
  function startWorker(
    env: NodeJS.ProcessEnv,
  ): Promise<{ child: ChildProcess; log: string; startLine: Record<string, unknown> }> {
    const child = spawn(path.join(root, 'node_modules/.bin/tsx'), [path.join(root, 'client/cli.ts'), 'worker'], {
      env,
      cwd: root,
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    started.push(child);
    return new Promise((resolve, reject) => {
      let log = '';
      child.stderr.on('data', (d: Buffer) => {
        log += d.toString();
        const line = log.split('\n').find((l) => l.includes('"msg":"worker started"'));
        if (line) resolve({ child, log, startLine: JSON.parse(line) as Record<string, unknown> });
      });
      child.on('exit', (code) => reject(new Error(`worker exited ${code}: ${log.slice(-2000)}`)));
    });
  }

  it('serves /metrics where its start line says, and runs without them when the port is taken', async () => {
    const port = await freePort();
    const taskQueue = `metrics-process-${hex()}`;
    const env = {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      TEMPORAL_ADDRESS: inject('temporalAddress'),
      KUBECONFIG: inject('kubeconfigPath'),
      POD_RESPONDER_CLUSTER: 'local',
      POD_RESPONDER_TASK_QUEUE: taskQueue,
      POD_RESPONDER_METRICS_HOST: '127.0.0.1',
      POD_RESPONDER_METRICS_PORT: String(port),
    };
    const first = await startWorker(env);
    expect(first.startLine.metrics).toBe(`http://127.0.0.1:${port}/metrics`);
    await until(
      'the SDK metrics of the worker process',
      async () =>
        total(parseSamples(await scrape(`http://127.0.0.1:${port}/metrics`)), 'temporal_num_pollers', {
          task_queue: taskQueue,
        }) > 0,
    );

    // Another worker on the same port: it says so and serves incidents anyway.
    const second = await startWorker(env);
    expect(second.startLine.metrics).toBe('unavailable');
    const error = second.log
      .split('\n')
      .filter((l) => l.includes('"level":"ERROR"'))
      .map((l) => JSON.parse(l) as { msg: string });
    expect(error.map((e) => e.msg)).toEqual([
      expect.stringContaining(
        `cannot serve metrics on 127.0.0.1:${port}: Failed to start prometheus metrics exporter: Address already in use`,
      ),
    ]);
  }, 120_000);
});
