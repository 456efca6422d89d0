import { describe, expect, it } from 'vitest';
import { AcceptedAlerts } from '../../forwarder/accepted-alerts.js';
import { authenticate, signBody } from '../../forwarder/auth.js';
import { TokenBucket } from '../../forwarder/rate-limit.js';
import {
  authenticateSender,
  credentialsOf,
  SenderLimits,
  withBoundCluster,
  type Credential,
} from '../../forwarder/credentials.js';
import { Spool } from '../../forwarder/spool.js';
import { configSchema } from '../../config/config.js';
import Database from 'better-sqlite3';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';

describe('TokenBucket', () => {
  it('allows a burst, then refills at the rate, and says how long to wait', () => {
    let now = 0;
    const b = new TokenBucket(2, 4, () => now);
    expect([b.take(3), b.take(1), b.take(1)]).toEqual([0, 0, 1]);
    now = 1000; // +2 tokens
    expect(b.take(2)).toBe(0);
    expect(b.take(3)).toBe(2);
    // More than the burst can never pass at once: the wait is for a full bucket.
    expect(b.take(10)).toBe(2);
  });
});

describe('AcceptedAlerts', () => {
  it('shares one submission among concurrent copies and remembers only successes', async () => {
    const cache = new AcceptedAlerts<string>(2);
    let calls = 0;
    let release!: (v: string) => void;
    const submit = () => (calls++, new Promise<string>((r) => (release = r)));
    const a = cache.once('k', submit);
    const b = cache.once('k', submit);
    release('run-1');
    expect(await Promise.all([a, b])).toEqual([
      { value: 'run-1', shared: false },
      { value: 'run-1', shared: true },
    ]);
    expect(calls).toBe(1);
    expect(cache.get('k')).toBe('run-1');
    await expect(cache.once('bad', () => Promise.reject(new Error('down')))).rejects.toThrow('down');
    expect(cache.get('bad')).toBeUndefined();
  });

  it('forgets the oldest beyond its capacity', async () => {
    const cache = new AcceptedAlerts<number>(2);
    for (const k of ['a', 'b', 'c']) await cache.once(k, async () => 1);
    expect([cache.get('a'), cache.get('b'), cache.get('c')]).toEqual([undefined, 1, 1]);
  });
});

describe('authenticate', () => {
  const body = Buffer.from('{"a":1}');
  const now = Date.UTC(2026, 11, 7);
  const at = now / 1000;
  it('accepts the token or a signature of "<timestamp>.<exact bytes>" within the window', () => {
    const creds = { token: 't'.repeat(20), hmacSecret: 's'.repeat(20) };
    expect(authenticate(creds, { authorization: `Bearer ${'t'.repeat(20)}` }, body)).toEqual({ result: 'ok' });
    expect(authenticate(creds, signBody('s'.repeat(20), body, at - 300), body, 300, now)).toEqual({ result: 'ok' });
    expect(authenticate(creds, signBody('s'.repeat(20), '{"a":2}', at), body, 300, now)).toEqual({ result: 'no' });
    expect(
      authenticate(
        creds,
        { ...signBody('s'.repeat(20), body, at - 400), 'x-signature-timestamp': String(at) },
        body,
        300,
        now,
      ),
    ).toEqual({ result: 'no' });
    expect(authenticate(creds, {}, body)).toEqual({ result: 'no' });
  });
  it('refuses a signature replayed after the window, saying why', () => {
    const creds = { hmacSecret: 's'.repeat(20) };
    expect(authenticate(creds, signBody('s'.repeat(20), body, at - 301), body, 300, now)).toEqual({
      result: 'refused',
      reason:
        "signature timestamp 1796601299 is 301 s old; it must be within 300 s of the forwarder's clock (a replayed request, or a clock to fix)",
    });
  });
  it('never accepts anything for a source without credentials', () => {
    expect(authenticate({}, { authorization: 'Bearer ' }, body)).toEqual({ result: 'no' });
  });
});

describe('credentials', () => {
  const source = configSchema.parse({}).forwarder.sources.falco;
  const creds = credentialsOf('falco', {
    ...source,
    token: 'd'.repeat(16),
    credentials: [{ name: 'eu', token: 'e'.repeat(16), clusters: ['eu-1', 'eu-2'], burst: 1 }],
  });
  const [own, eu] = creds as [Credential, Credential];

  it('finds the credential a request carries; the source\'s own is "default"', () => {
    expect(
      authenticateSender(creds, { authorization: `Bearer ${'e'.repeat(16)}` }, Buffer.from('{}'), 300),
    ).toMatchObject({ name: 'eu' });
    expect(
      authenticateSender(creds, { authorization: `Bearer ${'d'.repeat(16)}` }, Buffer.from('{}'), 300),
    ).toMatchObject({ name: 'default' });
    expect(authenticateSender(creds, { authorization: `Bearer ${'x'.repeat(16)}` }, Buffer.from('{}'), 300)).toBeNull();
    expect(credentialsOf('xdr', configSchema.parse({}).forwarder.sources.xdr)).toEqual([]);
  });

  it('fills in the cluster only for a credential bound to exactly one', () => {
    const one = { ...eu, clusters: ['eu-1'] };
    expect(withBoundCluster({}, one)).toEqual({ cluster: 'eu-1' });
    expect(withBoundCluster({ cluster: 'other' }, one)).toEqual({ cluster: 'other' }); // then refused by refusal()
    expect(withBoundCluster({}, eu)).toEqual({});
  });

  it('limits a bound credential per cluster, and an unbound one as a whole (inventing clusters gains nothing)', () => {
    const limits = new SenderLimits();
    expect(limits.take(eu, 'eu-1')).toBe(0);
    expect(limits.take(eu, 'eu-1')).toBeGreaterThan(0);
    expect(limits.take(eu, 'eu-2')).toBe(0);
    const unbound = { ...own, burst: 2 };
    expect([limits.take(unbound, 'a'), limits.take(unbound, 'b'), limits.take(unbound, 'c')].map((w) => w > 0)).toEqual(
      [false, false, true],
    );
  });
});

describe('Spool', () => {
  it('groups writes that come while the last commit is recent into one commit (one fsync), and keeps every one', async () => {
    const file = path.join(mkdtempSync(path.join(tmpdir(), 'spool-group-')), 'spool.db');
    const spool = Spool.open(file, { maxEntries: 1000 });
    const item = (i: number) => ({
      incident: `i${i % 4}`,
      alertId: `a${i}`,
      source: 'falco',
      alert: { alertId: `a${i}` } as never,
    });
    try {
      await spool.add(item(0));
      const before = spool.commits;
      // 40 writes, each in a turn of the event loop of its own (as requests parsed one by one arrive).
      const writes: Promise<string>[] = [];
      for (let i = 1; i <= 40; i++) {
        writes.push(spool.add(item(i)));
        await new Promise((r) => setImmediate(r));
      }
      expect(await Promise.all(writes)).toEqual(Array(40).fill('queued'));
      // One commit per turn was 40; spaced after the last commit's time, far fewer.
      expect(spool.commits - before).toBeLessThan(20);
      expect(spool.depth).toBe(41);
    } finally {
      spool.close();
    }
  });

  it('opens a spool written before senders were recorded; its entries wait on the default limit', () => {
    const file = path.join(mkdtempSync(path.join(tmpdir(), 'spool-old-')), 'spool.db');
    const db = new Database(file);
    db.exec(`CREATE TABLE spool (seq INTEGER PRIMARY KEY AUTOINCREMENT, incident TEXT NOT NULL, alert_id TEXT NOT NULL, source TEXT NOT NULL,
      alert TEXT NOT NULL, received_at INTEGER NOT NULL, attempts INTEGER NOT NULL DEFAULT 0, last_error TEXT, UNIQUE (incident, alert_id))`);
    db.prepare('INSERT INTO spool (incident, alert_id, source, alert, received_at) VALUES (?, ?, ?, ?, ?)').run(
      'i1',
      'a1',
      'falco',
      '{"alertId":"a1"}',
      1,
    );
    db.close();
    const spool = Spool.open(file, { maxEntries: 10 });
    try {
      expect(spool.take('i1', 10, 1 << 20)).toMatchObject([{ alertId: 'a1', source: 'falco', sender: null }]);
    } finally {
      spool.close();
    }
  });
});
