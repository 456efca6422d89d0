import { afterEach, describe, expect, it, vi } from 'vitest';
import { awsClientFactory } from '../../activities/eks-lambda/clients.js';
import { clientCache } from '../../remediation/client-cache.js';

afterEach(() => vi.useRealTimers());

describe('the client cache', () => {
  it('keeps the most recently used, and destroys an evicted client only after the grace', () => {
    vi.useFakeTimers();
    const destroyed: string[] = [];
    const cache = clientCache({ max: 2, graceMs: 1000, make: (k) => ({ k }), destroy: (c) => destroyed.push(c.k) });
    const a = cache.get('a');
    cache.get('b');
    expect(cache.get('a')).toBe(a); // a hit: a is now the most recent
    cache.get('c'); // evicts b, the least recently used
    expect(cache.size).toBe(2);
    expect(destroyed).toEqual([]); // a call made through b a moment ago may still be running
    vi.advanceTimersByTime(1000);
    expect(destroyed).toEqual(['b']);
    expect(cache.get('a')).toBe(a);
    expect(cache.get('b')).not.toBe(undefined); // made again on demand
    cache.close();
    expect(destroyed.sort()).toEqual(['a', 'b', 'b', 'c']);
  });

  it('close destroys the clients still waiting out their grace', () => {
    vi.useFakeTimers();
    const destroyed: string[] = [];
    const cache = clientCache({ max: 1, graceMs: 60_000, make: (k) => ({ k }), destroy: (c) => destroyed.push(c.k) });
    cache.get('a');
    cache.get('b');
    cache.close();
    expect(destroyed.sort()).toEqual(['a', 'b']);
  });
});

describe('AWS clients per region', () => {
  it("are bounded however many regions alerts name; an evicted region's clients are destroyed", () => {
    vi.useFakeTimers();
    const aws = awsClientFactory({ endpoint: 'http://127.0.0.1:1' }, { regions: 3, graceMs: 10 });
    const first = aws('eu-west-1');
    const spies = Object.values(first).map((c) => vi.spyOn(c, 'destroy'));
    expect(aws('eu-west-1')).toBe(first);
    for (let i = 1; i <= 20; i++) aws(`xx-fake-${i}`);
    expect(aws.cache.size).toBe(3);
    vi.advanceTimersByTime(10);
    for (const spy of spies) expect(spy).toHaveBeenCalledTimes(1);
    expect(aws('eu-west-1')).not.toBe(first);
    aws.cache.close();
  });
});
