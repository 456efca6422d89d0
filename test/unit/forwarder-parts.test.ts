import { describe, expect, it } from 'vitest';
import { AcceptedAlerts } from '../../client/forwarder/accepted-alerts.js';
import { authenticate, signBody } from '../../client/forwarder/auth.js';
import { TokenBucket } from '../../client/forwarder/rate-limit.js';

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
    expect(await Promise.all([a, b])).toEqual([{ value: 'run-1', shared: false }, { value: 'run-1', shared: true }]);
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
  it('accepts the token or a signature of the exact bytes', () => {
    const creds = { token: 't'.repeat(20), hmacSecret: 's'.repeat(20) };
    expect(authenticate(creds, { authorization: `Bearer ${'t'.repeat(20)}` }, body)).toBe(true);
    expect(authenticate(creds, { 'x-signature-256': signBody('s'.repeat(20), body) }, body)).toBe(true);
    expect(authenticate(creds, { 'x-signature-256': signBody('s'.repeat(20), '{"a":2}') }, body)).toBe(false);
    expect(authenticate(creds, {}, body)).toBe(false);
  });
  it('never accepts anything for a source without credentials', () => {
    expect(authenticate({}, { authorization: 'Bearer ' }, body)).toBe(false);
  });
});
