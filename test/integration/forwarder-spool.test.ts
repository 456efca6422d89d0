/**
 * The forwarder's durable spool, with senders that never resend (Falcosidekick): Temporal down for the
 * whole of a burst, the forwarder SIGKILLed in the middle of it, a spool at its bound, the rate limit.
 * Real forwarder processes, a Temporal dev server of the test's own, a real worker and kube-apiserver.
 */
import { Client, Connection } from '@temporalio/client';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { createRequire } from 'node:module';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import { describe, expect, inject, it } from 'vitest';
import { freePorts } from '../../devstack/probes.js';
import { configSchema } from '../../config/config.js';
import { installLogging } from '../../worker/logging.js';
import { createWorker } from '../../worker/worker.js';
import { statusQuery } from '../../workflows/messages.js';
import { createNamespace, createPod, testKube } from '../support/cluster.js';
import { bearer, startForwarder, TOKENS } from '../support/forwarder.js';
import { ownTemporal } from '../../devstack/temporal-server.js';
import { directClusters } from '../support/responder.js';
import { until } from '../support/until.js';

const uid = () => randomBytes(4).toString('hex');
const root = path.resolve(import.meta.dirname, '../..');
const TSX = pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href;

/**
 * A Falco event as Falcosidekick 2.34 posts it: sorted output_fields, nanosecond time, a fresh uuid each delivery.
 * A double holds nanoseconds since 1970 only to 256 ns, so evt.time steps by 256 to stay distinct per event.
 */
function falcosidekick(namespace: string, pod: string, containerId: string, n: number) {
  return {
    hostname: 'ip-10-0-1-17',
    output: `10:21:07.123456789: Critical Outbound connection to a Stratum pool (connection ${n}) k8s.ns=${namespace} k8s.pod=${pod}`,
    output_fields: {
      'container.id': containerId,
      'evt.time': 1764238867123456768 + 256 * n,
      'k8s.ns.name': namespace,
      'k8s.pod.name': pod,
      'proc.cmdline': 'xmrig -o stratum+tcp://pool.example:3333',
      'proc.name': 'xmrig',
    },
    priority: 'Critical',
    rule: 'Detect crypto miners using the Stratum protocol',
    source: 'syscall',
    tags: ['T1496', 'mitre_impact'],
    time: new Date().toISOString().replace('Z', `${String(n % 1e6).padStart(6, '0')}Z`),
    uuid: crypto.randomUUID(),
  };
}

async function post(url: string, body: unknown): Promise<{ status: number; json: any }> {
  const res = await fetch(url, {
    method: 'POST',
    headers: {
      'content-type': 'application/json; charset=utf-8',
      'user-agent': 'Falcosidekick',
      ...bearer(TOKENS.falco),
    },
    body: JSON.stringify(body),
  });
  return { status: res.status, json: await res.json() };
}

async function metric(base: string, name: string): Promise<number> {
  const text = await (await fetch(`${base}/metrics`)).text();
  return Number(new RegExp(`^pod_responder_forwarder_${name} (\\S+)`, 'm').exec(text)?.[1] ?? NaN);
}

/** `pod-responder forwarder` as its own process (node itself, not the tsx wrapper: a SIGKILL must reach it). */
function forwarderProcess(env: NodeJS.ProcessEnv): ChildProcess {
  return spawn(process.execPath, ['--import', TSX, path.join(root, 'client/cli.ts'), 'forwarder'], {
    cwd: root,
    env: {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      POD_RESPONDER_FALCO_TOKEN: TOKENS.falco,
      POD_RESPONDER_FORWARDER_HOST: '127.0.0.1',
      POD_RESPONDER_LOG_LEVEL: 'WARN',
      ...env,
    },
    stdio: 'ignore',
  });
}

describe('the durable spool', () => {
  it(
    'Temporal down: 1,000 alerts over 50 pods are queued, survive a SIGKILL, and are delivered once Temporal is back, each counted once',
    { timeout: 240_000 },
    async () => {
      installLogging('ERROR');
      const kube = testKube();
      const ns = await createNamespace(kube, 'spool');
      const pods = await Promise.all(Array.from({ length: 50 }, (_, i) => createPod(kube, ns, `miner-${i}`)));
      const temporal = await ownTemporal(); // not started: Temporal is down from the first alert
      const [port] = await freePorts(1);
      const base = `http://127.0.0.1:${port}`;
      const url = `${base}/v1/alerts/falco?cluster=spool`;
      const taskQueue = `spool-${uid()}`;
      const env = {
        TEMPORAL_ADDRESS: temporal.address,
        POD_RESPONDER_TASK_QUEUE: taskQueue,
        POD_RESPONDER_FORWARDER_PORT: String(port),
        POD_RESPONDER_SPOOL_PATH: path.join(mkdtempSync(path.join(tmpdir(), 'pod-responder-spool-')), 'spool.db'),
        // Incidents wait for approval, so each stays open and its alert count can be read.
        POD_RESPONDER_POLICY: JSON.stringify({ requireApprovalFor: ['terminate-pod'], suspendOnSeverity: [] }),
      };
      const alerts = Array.from({ length: 1000 }, (_, n) =>
        falcosidekick(ns, pods[n % 50]!.metadata!.name!, pods[n % 50]!.containerId.slice(0, 12), n),
      );
      const send = async (batch: unknown[]) => {
        const answers: string[] = [];
        let next = 0;
        await Promise.all(
          Array.from({ length: 16 }, async () => {
            while (next < batch.length) {
              const r = await post(url, batch[next++]);
              answers.push(`${r.status} ${r.json.results?.[0]?.outcome ?? r.json.error}`);
            }
          }),
        );
        return answers;
      };

      let forwarder = forwarderProcess(env);
      await until('forwarder up', async () => (await fetch(`${base}/healthz`)).ok);
      expect(new Set(await send(alerts.slice(0, 500)))).toEqual(new Set(['202 queued']));
      const ready = await fetch(`${base}/readyz`);
      expect({ status: ready.status, body: await ready.json() }).toMatchObject({
        status: 200,
        body: { status: 'degraded', spool: { depth: 500 } },
      });

      forwarder.kill('SIGKILL');
      await new Promise((r) => forwarder.once('exit', r));
      forwarder = forwarderProcess(env);
      await until('forwarder back', async () => (await fetch(`${base}/healthz`)).ok);
      expect(await metric(base, 'spool_depth')).toBe(500); // what the killed forwarder answered 202 for is on disk
      expect(new Set(await send(alerts.slice(500)))).toEqual(new Set(['202 queued']));
      // Falcosidekick relays an event again with a new uuid: the spool holds it once.
      await send(alerts.slice(0, 20).map((a) => ({ ...a, uuid: crypto.randomUUID() })));
      expect(await metric(base, 'spool_depth')).toBe(1000);

      temporal.start();
      const config = configSchema.parse({
        temporal: { address: temporal.address, taskQueue },
        direct: { kubeconfig: inject('kubeconfigPath'), ...directClusters(['spool', 'full', 'rate', 'relay']) },
      });
      const connection = await until('Temporal up', () => Connection.connect({ address: temporal.address }));
      const worker = await until('worker up', () => createWorker(config));
      void worker.run();
      try {
        await until('spool drained', async () => (await metric(base, 'spool_depth')) === 0, 120_000);
        expect(await metric(base, 'spool_delivered_total')).toBe(1000);
        const client = new Client({ connection });
        const ids = await until('50 incidents listed', async () => {
          const found = new Set<string>();
          for await (const w of client.workflow.list({ query: `TaskQueue = "${taskQueue}"` })) found.add(w.workflowId);
          return found.size === 50 && found;
        });
        expect([...ids].sort()).toEqual(pods.map((p) => `pod-incident:spool:${ns}:${p.metadata!.name}`).sort());
        for (const id of ids) {
          const s = await until(`${id} counted`, async () => {
            const st = await client.workflow.getHandle(id).query(statusQuery);
            return st.alerts.count >= 20 && st;
          });
          expect(s.alerts.count).toBe(20);
        }
      } finally {
        forwarder.kill('SIGTERM');
        await new Promise((r) => forwarder.once('exit', r));
        await worker.shutdown();
        await connection.close();
        await temporal.stop();
      }
    },
  );

  it('a full spool answers 503 with Retry-After, counted by reason, and readiness says so', async () => {
    const temporal = await ownTemporal(); // never started
    const fwd = await startForwarder({
      temporalAddress: temporal.address,
      spool: true,
      forwarder: { spool: { maxEntries: 3 }, temporalTimeoutMs: 500 },
    });
    try {
      const answers = [];
      for (let n = 0; n < 4; n++)
        answers.push(
          await fwd.post(
            '/v1/alerts/falco?cluster=full',
            falcosidekick('shop', 'miner', 'abcdef012345', n),
            bearer(TOKENS.falco),
          ),
        );
      expect(answers.map((a) => `${a.status} ${a.json.results[0].outcome}`)).toEqual([
        '202 queued',
        '202 queued',
        '202 queued',
        '503 failed',
      ]);
      expect(answers[3]!.headers.get('retry-after')).toBe('5');
      expect(answers[3]!.json.results[0].error).toMatch(/and the spool is full \(3 alerts, [\d.]+ MiB\)$/);
      const metrics = await (await fetch(`${fwd.url}/metrics`)).text();
      expect(metrics).toContain(
        'pod_responder_forwarder_requests_rejected_total{source="falco",status="503",reason="spool-full"} 1',
      );
      expect(metrics).toContain('pod_responder_forwarder_spool_depth 3');
      const ready = await fetch(`${fwd.url}/readyz`);
      expect(ready.status).toBe(503);
    } finally {
      await fwd.close();
    }
  });

  it('the same Falco event relayed twice (two uuids) is one alert and one duplicate', async () => {
    const fwd = await startForwarder({ spool: true });
    try {
      const event = falcosidekick('relay', `pod-${uid()}`, 'abcdef012345', 1);
      const first = await fwd.post('/v1/alerts/falco?cluster=relay', event, bearer(TOKENS.falco));
      const again = await fwd.post(
        '/v1/alerts/falco?cluster=relay',
        { ...event, uuid: crypto.randomUUID() },
        bearer(TOKENS.falco),
      );
      expect([first.json.results[0].outcome, again.json.results[0].outcome]).toEqual(['accepted', 'duplicate']);
      expect(again.json.results[0].alertId).toBe(first.json.results[0].alertId);
    } finally {
      await fwd.close();
    }
  });

  it('an alert over the rate limit is spooled, not refused, and delivered as the rate allows', async () => {
    const fwd = await startForwarder({
      spool: true,
      forwarder: { sources: { falco: { token: TOKENS.falco, ratePerSecond: 1, burst: 1 } } },
    });
    try {
      const a = await fwd.post(
        '/v1/alerts/falco?cluster=rate',
        falcosidekick('shop', `a-${uid()}`, 'abcdef012345', 1),
        bearer(TOKENS.falco),
      );
      const b = await fwd.post(
        '/v1/alerts/falco?cluster=rate',
        falcosidekick('shop', `b-${uid()}`, 'abcdef012345', 2),
        bearer(TOKENS.falco),
      );
      expect([a.status, a.json.results[0].outcome, b.status, b.json.results[0].outcome]).toEqual([
        202,
        'accepted',
        202,
        'queued',
      ]);
      expect(b.json.results[0].reason).toBe(
        'over the rate limit for new incidents from falco credential "default" in cluster rate',
      );
      await until('delivered', async () => (await metric(fwd.url, 'spool_delivered_total')) === 1, 15_000);
      const connection = await Connection.connect({ address: inject('temporalAddress') });
      try {
        const { count } = await new Client({ connection }).workflow.count(
          `TaskQueue = "${fwd.config.temporal.taskQueue}"`,
        );
        expect(count).toBe(2);
      } finally {
        await connection.close();
      }
    } finally {
      await fwd.close();
    }
  });
});
