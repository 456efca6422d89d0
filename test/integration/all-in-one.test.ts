/**
 * All in one (client/all-in-one.ts): the forwarder on the worker's own connection starts a new incident eagerly,
 * its first workflow task coming back in the start call's answer; an incident that is running, or has closed, gets
 * the alert as before. Through the real worker and forwarder, the Temporal dev server and kube-apiserver.
 */
import { Client, Connection } from '@temporalio/client';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { configSchema, type Config } from '../../config/config.js';
import { freePorts } from '../../devstack/probes.js';
import { respondToAlert } from '../../temporal-client/incidents.js';
import { installLogging } from '../../worker/logging.js';
import { startAllInOne, type AllInOne } from '../../client/all-in-one.js';
import { createWorker } from '../../worker/worker.js';
import type { IncidentResult } from '../../workflows/messages.js';
import { normalizeBody } from '../../domain/sources/index.js';
import { signalledAlertIds } from '../support/history.js';
import { freshFixture } from '../support/alert-fixtures.js';
import { createNamespace, createPod, createWorkload, podExists, testKube, type TestKube } from '../support/cluster.js';
import { bearer, startForwarder, TOKENS } from '../support/forwarder.js';
import { directClusters } from '../support/responder.js';
import { until } from '../support/until.js';

let kube: TestKube;
let connection: Connection;
let client: Client;
let config: Config;
let aio: AllInOne;

beforeAll(async () => {
  kube = testKube();
  connection = await Connection.connect({ address: inject('temporalAddress') });
  client = new Client({ connection });
  config = configSchema.parse({
    temporal: { address: inject('temporalAddress'), taskQueue: `aio-${randomBytes(4).toString('hex')}` },
    direct: { kubeconfig: inject('kubeconfigPath'), ...directClusters() },
    forwarder: { host: '127.0.0.1', port: 0, sources: { falco: { token: TOKENS.falco } }, spool: { enabled: false } },
    metrics: { port: 0 },
    logLevel: 'ERROR',
  });
  installLogging('ERROR');
  aio = await startAllInOne(config, createWorker);
});
afterAll(async () => {
  await aio?.stop();
  await connection?.close();
});

const FALCO = '/v1/alerts/falco?cluster=local';
const id = () => randomBytes(4).toString('hex');
const falco = (ns: string, pod: string, containerId: string) =>
  freshFixture('falco-stratum', {
    cluster: 'local',
    namespace: ns,
    pod,
    id: `a-${id()}`,
    containerId,
    containerName: 'app',
  });

async function post(body: unknown, url = aio.url) {
  const res = await fetch(`${url}${FALCO}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...bearer(TOKENS.falco) },
    body: JSON.stringify(body),
  });
  return { status: res.status, json: (await res.json()) as any };
}

const eagerStarts = async (result: string): Promise<number> => {
  const text = await (await fetch(`${aio.url}/metrics`)).text();
  const m = new RegExp(`^pod_responder_forwarder_eager_starts_total\\{result="${result}"\\} (\\d+)$`, 'm').exec(text);
  return m ? Number(m[1]) : 0;
};

/** Whether the server handed the run's first workflow task back in the start call's answer (its started event says). */
async function startedEagerly(workflowId: string, runId: string): Promise<boolean> {
  const history = await client.workflow.getHandle(workflowId, runId).fetchHistory();
  return history.events![0]!.workflowExecutionStartedEventAttributes!.eagerExecutionAccepted === true;
}

describe('all in one: the forwarder on the worker’s connection', () => {
  it('a new incident starts eagerly and kills the pod; a repeat goes to the running incident as a signal', async () => {
    const ns = await createNamespace(kube, 'aio-eager');
    const w = await createWorkload(kube, ns, 'Deployment'); // killed, then watched for repeats: the run stays open
    const pod = w.pod.metadata!.name!;
    const before = await eagerStarts('eager');
    const first = await post(falco(ns, pod, w.pod.containerId));
    expect(first.status).toBe(202);
    const { workflowId, runId } = first.json.results[0];
    expect(first.json.results[0]).toMatchObject({ outcome: 'accepted', workflowId: `pod-incident:local:${ns}:${pod}` });
    expect(await startedEagerly(workflowId, runId)).toBe(true);
    expect(await eagerStarts('eager')).toBe(before + 1);
    await until('the pod killed', async () => !(await podExists(kube, ns, pod)));
    // A plain start: the first alert is the run's input, not a signal.
    expect(await signalledAlertIds(client.workflow.getHandle(workflowId, runId))).toEqual([]);

    const existing = await eagerStarts('existing');
    const repeat = await post(falco(ns, pod, w.pod.containerId));
    expect(repeat.json.results[0]).toMatchObject({ outcome: 'accepted', workflowId, runId });
    await until('the repeat signalled', async () =>
      (await signalledAlertIds(client.workflow.getHandle(workflowId, runId))).includes(repeat.json.results[0].alertId),
    );
    expect(await signalledAlertIds(client.workflow.getHandle(workflowId, runId))).toEqual([
      repeat.json.results[0].alertId,
    ]);
    // The forwarder knew the incident: no start was tried first.
    expect(await eagerStarts('existing')).toBe(existing);
    expect(await eagerStarts('eager')).toBe(before + 1);
    await client.workflow.getHandle(workflowId).terminate('test done');
  });

  it('an incident it did not start (another forwarder, the CLI) still gets the alert as a signal', async () => {
    const ns = await createNamespace(kube, 'aio-running');
    const w = await createWorkload(kube, ns, 'Deployment');
    const pod = w.pod.metadata!.name!;
    const started = await respondToAlert(client, config, normalized(falco(ns, pod, w.pod.containerId)));
    const existing = await eagerStarts('existing');
    const alert = await post(falco(ns, pod, w.pod.containerId));
    expect(alert.json.results[0]).toMatchObject({ outcome: 'accepted', runId: started.runId });
    expect(await eagerStarts('existing')).toBe(existing + 1);
    // A signal that arrives during a workflow task is in history once the task completes.
    await until('the alert signalled', async () =>
      (await signalledAlertIds(client.workflow.getHandle(started.workflowId, started.runId))).includes(
        alert.json.results[0].alertId,
      ),
    );
    await client.workflow.getHandle(started.workflowId).terminate('test done');
  });

  it('an alert about a closed incident’s killed pod is answered closed: no new run, no signal', async () => {
    const ns = await createNamespace(kube, 'aio-closed');
    const pod = await createPod(kube, ns, 'miner');
    const started = await respondToAlert(client, config, normalized(falco(ns, 'miner', pod.containerId)));
    const result = (await client.workflow.getHandle(started.workflowId, started.runId).result()) as IncidentResult;
    expect(result.outcome).toBe('pod-terminated');
    const existing = await eagerStarts('existing');
    const late = await post(falco(ns, 'miner', pod.containerId));
    expect(late.json.results[0]).toMatchObject({ outcome: 'closed', workflowId: started.workflowId });
    expect(await eagerStarts('existing')).toBe(existing + 1);
    expect((await client.workflow.getHandle(started.workflowId).describe()).runId).toBe(started.runId);
    expect(await signalledAlertIds(client.workflow.getHandle(started.workflowId, started.runId))).toHaveLength(1); // the start's own signal
  });

  it('control: a forwarder on a connection of its own (the split deployment) starts through matching', async () => {
    const fwd = await startForwarder({ taskQueue: config.temporal.taskQueue });
    try {
      const ns = await createNamespace(kube, 'aio-split');
      const pod = await createPod(kube, ns, 'miner');
      const res = await post(falco(ns, 'miner', pod.containerId), fwd.url);
      const { workflowId, runId } = res.json.results[0];
      expect(res.json.results[0].outcome).toBe('accepted');
      expect(await startedEagerly(workflowId, runId)).toBe(false);
      const result = (await client.workflow.getHandle(workflowId, runId).result()) as IncidentResult;
      expect(result.outcome).toBe('pod-terminated'); // served by the all-in-one's worker all the same
    } finally {
      await fwd.close();
    }
  });
});

describe('`pod-responder all-in-one`', () => {
  it('serves the alert endpoint and the worker’s probes, kills a pod through an eager start, and drains on SIGTERM', async () => {
    const [fwdPort, healthPort] = await freePorts(2);
    const root = path.resolve(import.meta.dirname, '../..');
    const p = spawn(path.join(root, 'node_modules/.bin/tsx'), [path.join(root, 'client/cli.ts'), 'all-in-one'], {
      cwd: root,
      env: {
        PATH: process.env.PATH,
        HOME: process.env.HOME,
        TEMPORAL_ADDRESS: inject('temporalAddress'),
        POD_RESPONDER_TASK_QUEUE: `aio-cli-${id()}`,
        KUBECONFIG: inject('kubeconfigPath'),
        POD_RESPONDER_CLUSTER: 'local',
        POD_RESPONDER_FALCO_TOKEN: TOKENS.falco,
        POD_RESPONDER_FORWARDER_HOST: '127.0.0.1',
        POD_RESPONDER_FORWARDER_PORT: String(fwdPort),
        POD_RESPONDER_HEALTH_PORT: String(healthPort),
        POD_RESPONDER_METRICS_PORT: '0',
        POD_RESPONDER_SPOOL_PATH: path.join(mkdtempSync(path.join(tmpdir(), 'pod-responder-aio-')), 'spool.db'),
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    p.stdout.on('data', (d: Buffer) => (out += d.toString()));
    p.stderr.on('data', (d: Buffer) => (out += d.toString()));
    const exited = new Promise<number | null>((r) => p.once('exit', (code) => r(code)));
    try {
      const url = `http://127.0.0.1:${fwdPort}`;
      await until('the worker ready', async () => (await fetch(`http://127.0.0.1:${healthPort}/readyz`)).ok, 120_000);
      await until('the forwarder ready', async () => (await fetch(`${url}/readyz`)).ok);
      await until('both start lines', async () =>
        ['worker started', 'forwarder started'].every((m) => out.includes(`"msg":"${m}"`)),
      );

      const ns = await createNamespace(kube, 'aio-cli');
      const pod = await createPod(kube, ns, 'miner');
      const res = await post(falco(ns, 'miner', pod.containerId), url);
      expect(res.json.results[0].outcome).toBe('accepted');
      const { workflowId, runId } = res.json.results[0];
      expect(await startedEagerly(workflowId, runId)).toBe(true);
      expect(((await client.workflow.getHandle(workflowId, runId).result()) as IncidentResult).outcome).toBe(
        'pod-terminated',
      );
    } finally {
      p.kill('SIGTERM');
    }
    expect(await exited, out.slice(-3000)).toBe(0);
    expect(out).toContain('"msg":"all-in-one draining"');
    expect(out).toContain('"msg":"all-in-one stopped"');
  });
});

/** A Falco event as the forwarder normalizes it (for incidents started without the forwarder). */
function normalized(event: Record<string, unknown>) {
  const [n] = normalizeBody('falco', event, { cluster: 'local' }, 1);
  if (n?.kind !== 'alert') throw new Error(`not an alert: ${JSON.stringify(n)}`);
  return n.alert;
}
