/**
 * The forwarder as operations see it: Temporal going away and coming back, readiness, metrics,
 * rate limits, logs that attackers cannot forge, draining on shutdown, and the CLI process.
 */
import { Client, Connection } from '@temporalio/client';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { inject } from 'vitest';
import type { AlertSink } from '../../forwarder/server.js';
import { ownTemporal } from '../../devstack/temporal-server.js';
import { TemporalGateway } from '../../forwarder/temporal-gateway.js';
import { freePorts } from '../../devstack/probes.js';
import { freshFixture } from '../support/alert-fixtures.js';
import { bearer, startForwarder, TOKENS } from '../support/forwarder.js';
import { until } from '../support/until.js';

const uid = () => randomBytes(4).toString('hex');
const falcoAlert = (cluster: string, pod: string) =>
  freshFixture('falco-stratum', { cluster, namespace: 'shop', pod, id: `ops-${uid()}` });

describe('Temporal unavailable', () => {
  it('answers 503 with Retry-After while Temporal is down (no spool), and the resent alerts land after it is back', async () => {
    const own = await ownTemporal();
    const { address } = own;
    const start = () => own.start();
    const stop = () => own.stop();
    start();
    const fwd = await startForwarder({
      temporalAddress: address,
      forwarder: { temporalTimeoutMs: 1500 },
    });
    try {
      await until('Temporal ready', async () => (await fetch(`${fwd.url}/readyz`)).status === 200);
      const before = falcoAlert('outage', `before-${uid()}`);
      expect((await fwd.post('/v1/alerts/falco?cluster=outage', before, bearer(TOKENS.falco))).status).toBe(202);

      await stop();
      const during = [falcoAlert('outage', `during-${uid()}`), falcoAlert('outage', `during-${uid()}`)];
      const refused = await fwd.post('/v1/alerts/falco?cluster=outage', during, bearer(TOKENS.falco));
      expect(refused.status).toBe(503);
      expect(refused.headers.get('retry-after')).toBe('5');
      expect(refused.json).toMatchObject({ accepted: 0, failed: 2 });
      expect(refused.json.results[0].error).toMatch(
        /^Temporal did not accept the alert: Temporal (is unreachable|did not answer in time)$/,
      );
      // Known down: the next request waits for one short health probe, not the whole deadline.
      const again = await fwd.post('/v1/alerts/falco?cluster=outage', during[0], bearer(TOKENS.falco));
      expect({ status: again.status, error: again.json.results[0].error }).toEqual({
        status: 503,
        error: 'Temporal did not accept the alert: Temporal is unreachable',
      });
      const ready = await fetch(`${fwd.url}/readyz`);
      expect(ready.status).toBe(503);
      expect(await ready.json()).toEqual({ status: 'not ready', reason: `Temporal at ${address} is unreachable` });
      expect((await fetch(`${fwd.url}/healthz`)).status).toBe(200); // alive, just not ready

      start();
      await until('Temporal back', async () => (await fetch(`${fwd.url}/readyz`)).status === 200);
      // The sender resends what was refused; plus the first alert again, which is a duplicate. A resend that a
      // just-restarted Temporal takes only in part is answered 503 and resent whole: what it took is a duplicate then.
      const outcomes = new Map<string, string[]>();
      const resent = await until('resend accepted', async () => {
        const r = await fwd.post('/v1/alerts/falco?cluster=outage', [...during, before], bearer(TOKENS.falco));
        for (const x of r.json.results ?? []) outcomes.set(x.alertId, [...(outcomes.get(x.alertId) ?? []), x.outcome]);
        return r.status === 202 && r;
      });
      expect(resent.json).toMatchObject({ failed: 0, results: [{}, {}, { outcome: 'duplicate' }] });
      // Each refused alert accepted exactly once over the resends, the first one never again.
      for (const [id, seen] of outcomes)
        expect(seen.filter((o) => o === 'accepted').length, `${id}: ${seen.join(', ')}`).toBe(
          id === resent.json.results[2].alertId ? 0 : 1,
        );

      const connection = await Connection.connect({ address });
      try {
        const client = new Client({ connection });
        const expected = [before, ...during]
          .map((a) => `pod-incident:outage:shop:${a.output_fields['k8s.pod.name']}`)
          .sort();
        const ids = await until('all three incidents listed', async () => {
          const found: string[] = [];
          for await (const w of client.workflow.list({ query: `TaskQueue = "${fwd.config.temporal.taskQueue}"` }))
            found.push(w.workflowId);
          return found.length === 3 && found.sort();
        });
        expect(ids).toEqual(expected);
      } finally {
        await connection.close();
      }
      const metrics = await (await fetch(`${fwd.url}/metrics`)).text();
      expect(metrics).toMatch(/pod_responder_forwarder_alerts_failed_total\{source="falco"\} [3-9]\n/); // 3, more if a resend was taken in part
      expect(metrics).toContain('pod_responder_forwarder_alerts_accepted_total{source="falco"} 3');
    } finally {
      await fwd.close();
      await stop();
    }
  });

  it('an incident whose run takes no more signals gets 202 saturated, never 503; other pods are accepted', async () => {
    // A dev server of its own whose runs take 3 signals (the default is 10,000), and no worker: the run never continues as new.
    const limited = await ownTemporal({ extra: ['--dynamic-config-value', 'history.maximumSignalsPerExecution=3'] });
    limited.start();
    const fwd = await startForwarder({ temporalAddress: limited.address, forwarder: { batchIntervalMs: 0 } });
    try {
      await until('Temporal ready', async () => (await fetch(`${fwd.url}/readyz`)).status === 200);
      const first = falcoAlert('sat', `pod-${uid()}`);
      const outcomes: string[] = [];
      for (let i = 0; i < 5; i++) {
        const r = await fwd.post(
          '/v1/alerts/falco?cluster=sat',
          { ...first, output: `${first.output} #${i}` },
          bearer(TOKENS.falco),
        );
        expect(r.status).toBe(202);
        outcomes.push(r.json.results[0].outcome);
      }
      expect(outcomes).toEqual(['accepted', 'accepted', 'accepted', 'saturated', 'saturated']);
      const other = await fwd.post(
        '/v1/alerts/falco?cluster=sat',
        falcoAlert('sat', `pod-${uid()}`),
        bearer(TOKENS.falco),
      );
      expect(other.json.results[0].outcome).toBe('accepted');
      const metrics = await (await fetch(`${fwd.url}/metrics`)).text();
      expect(metrics).toContain('pod_responder_forwarder_alerts_saturated_total{source="falco"} 2');
      expect(metrics).not.toContain('pod_responder_forwarder_alerts_failed_total{source="falco"}');
    } finally {
      await fwd.close();
      await limited.stop();
    }
  });
});

describe('limits and logs', () => {
  it('rate-limits alerts that start incidents, per source, with Retry-After; repeats and other sources pass', async () => {
    const fwd = await startForwarder({
      forwarder: {
        sources: { falco: { token: TOKENS.falco, ratePerSecond: 0.5, burst: 3 }, xdr: { token: TOKENS.xdr } },
      },
    });
    try {
      const first = falcoAlert('rl', `a-${uid()}`);
      expect(
        (await fwd.post('/v1/alerts/falco?cluster=rl', [first, falcoAlert('rl', `b-${uid()}`)], bearer(TOKENS.falco)))
          .status,
      ).toBe(202);
      // Two more new pods: one token is left.
      const more = [falcoAlert('rl', `c-${uid()}`), falcoAlert('rl', `d-${uid()}`)];
      const limited = await fwd.post('/v1/alerts/falco?cluster=rl', more, bearer(TOKENS.falco));
      expect({
        status: limited.status,
        error: limited.json.error,
        retryAfter: limited.headers.get('retry-after'),
      }).toEqual({
        status: 429,
        error:
          'rate limit for new incidents from source "falco" exceeded; resend the request (accepted alerts are deduplicated)',
        retryAfter: '2',
      });
      expect(limited.json.results.map((r: { outcome: string }) => r.outcome)).toEqual(['accepted', 'rate-limited']);
      // A flood about a pod whose incident runs is never limited: 200 repeats in 20 requests.
      const floods = await Promise.all(
        Array.from({ length: 20 }, () =>
          fwd.post(
            '/v1/alerts/falco?cluster=rl',
            Array.from({ length: 10 }, () => ({ ...first, output: `${first.output} ${uid()}` })),
            bearer(TOKENS.falco),
          ),
        ),
      );
      expect(floods.map((f) => f.status)).toEqual(Array(20).fill(202));
      const xdr = freshFixture('xdr-cryptominer', {
        cluster: 'rl',
        namespace: 'shop',
        pod: `x-${uid()}`,
        id: `x-${uid()}`,
      });
      expect((await fwd.post('/v1/alerts/xdr', xdr, bearer(TOKENS.xdr))).status).toBe(202);
      const metrics = await (await fetch(`${fwd.url}/metrics`)).text();
      expect(metrics).toContain('pod_responder_forwarder_alerts_rate_limited_total{source="falco"} 1');
      expect(metrics).toContain(
        'pod_responder_forwarder_requests_rejected_total{source="falco",status="429",reason="rate-limited"} 1',
      );
      // Batching: 200 repeats for one incident took far fewer signals.
      const signals = Number(/^pod_responder_forwarder_signals_total (\d+)/m.exec(metrics)?.[1]);
      expect(signals).toBeLessThanOrEqual(10);
    } finally {
      await fwd.close();
    }
  });

  it('writes attacker-chosen text into logs only JSON-escaped, one line per event', async () => {
    const fwd = await startForwarder();
    try {
      const forged = '\n{"level":"ERROR","msg":"forged"}\u001b[31m\r';
      const alert = falcoAlert('logs', `l-${uid()}`);
      alert.output = `evil${forged}`;
      alert.rule = `Detect crypto miners using the Stratum protocol${forged}`;
      expect(
        (await fwd.post(`/v1/alerts/falco?cluster=logs&x=${encodeURIComponent(forged)}`, alert, bearer(TOKENS.falco)))
          .status,
      ).toBe(400);
      const accepted = await fwd.post('/v1/alerts/falco?cluster=logs', alert, bearer(TOKENS.falco));
      expect(accepted.json.results[0]).toMatchObject({
        outcome: 'accepted',
        alertId: expect.stringMatching(/^falco-[0-9a-f]{32}$/),
      });
      const entries = fwd.logs.map((line) => {
        expect(line.endsWith('\n')).toBe(true);
        // eslint-disable-next-line no-control-regex -- the point: no escape character reaches the log line
        expect(line.slice(0, -1)).not.toMatch(/[\n\r\u001b]/);
        return JSON.parse(line) as Record<string, unknown>;
      });
      expect(entries.some((e) => e.msg === 'forged')).toBe(false);
      expect(entries.find((e) => e.msg === 'alert')).toMatchObject({
        level: 'INFO',
        service: 'forwarder',
        source: 'falco',
        alertId: accepted.json.results[0].alertId,
        type: alert.rule,
        outcome: 'accepted',
      });
      expect(entries.find((e) => e.msg === 'request' && e.status === 400)).toMatchObject({
        url: `/v1/alerts/falco?cluster=logs&x=${encodeURIComponent(forged)}`,
      });
    } finally {
      await fwd.close();
    }
  });
});

describe('shutdown', () => {
  it('drains requests in flight and refuses new ones', async () => {
    // The real gateway, held at a gate so requests are provably in flight when close() starts.
    let open!: () => void;
    const gate = new Promise<void>((r) => (open = r));
    let entered = 0;
    const fwd = await startForwarder({
      sink: (config): AlertSink => {
        const real = TemporalGateway.create(config);
        return {
          submit: async (a) => (entered++, await gate, real.submit(a)),
          ready: () => real.ready(),
          close: () => real.close(),
        };
      },
    });
    const pods = [0, 1, 2, 3, 4].map(() => `drain-${uid()}`);
    const inFlight = pods.map((p) =>
      fwd.post('/v1/alerts/falco?cluster=drain', falcoAlert('drain', p), bearer(TOKENS.falco)),
    );
    await until('5 requests in flight', async () => entered === 5);
    const closed = fwd.close();
    await new Promise((r) => setTimeout(r, 100));
    await expect(fetch(`${fwd.url}/healthz`)).rejects.toThrow(); // listener closed: no new work
    open();
    const answers = await Promise.all(inFlight);
    await closed;
    expect(answers.map((a) => a.status)).toEqual([202, 202, 202, 202, 202]);
    const connection = await Connection.connect({ address: inject('temporalAddress') });
    try {
      const client = new Client({ connection });
      for (const p of pods) {
        const handle = client.workflow.getHandle(`pod-incident:drain:shop:${p}`);
        expect((await handle.describe()).status.name).toBe('RUNNING');
        await handle.terminate('test done');
      }
    } finally {
      await connection.close();
    }
  });
});

describe('pod-responder forwarder (the CLI process)', () => {
  const root = path.resolve(import.meta.dirname, '../..');
  const spoolFile = () => path.join(mkdtempSync(path.join(tmpdir(), 'pod-responder-spool-')), 'spool.db');
  const run = (env: NodeJS.ProcessEnv) =>
    spawn(path.join(root, 'node_modules/.bin/tsx'), [path.join(root, 'client/cli.ts'), 'forwarder'], {
      cwd: root,
      env: {
        PATH: process.env.PATH,
        HOME: process.env.HOME,
        TEMPORAL_ADDRESS: inject('temporalAddress'),
        POD_RESPONDER_SPOOL_PATH: spoolFile(),
        ...env,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
  const exit = (p: ChildProcess) => new Promise<number | null>((r) => p.once('exit', (code) => r(code)));

  it('refuses to start without any source credential, naming the variables', async () => {
    const p = run({ POD_RESPONDER_FORWARDER_PORT: '0' });
    let stderr = '';
    p.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    expect(await exit(p)).toBe(2);
    expect(stderr).toContain(
      'forwarder.sources: no source has a token or HMAC secret; set at least one of POD_RESPONDER_XDR_TOKEN, POD_RESPONDER_XDR_HMAC_SECRET',
    );
  });

  it('serves, and exits 0 on SIGTERM', async () => {
    const [port] = await freePorts(1);
    const p = run({
      POD_RESPONDER_FORWARDER_PORT: String(port),
      POD_RESPONDER_FORWARDER_HOST: '127.0.0.1',
      POD_RESPONDER_FALCO_TOKEN: TOKENS.falco,
    });
    let stdout = '';
    p.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    const exited = exit(p);
    await until('ready', async () => (await fetch(`http://127.0.0.1:${port}/readyz`)).ok);
    expect(JSON.parse(stdout.split('\n').find((l) => l.includes('forwarder started'))!)).toMatchObject({
      level: 'INFO',
      sources: ['falco'],
      temporal: inject('temporalAddress'),
    });
    p.kill('SIGTERM');
    expect(await exited).toBe(0);
    expect(stdout).toContain('"msg":"forwarder stopped"');
  });
});
