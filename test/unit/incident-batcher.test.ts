import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { IncidentBatcher } from '../../forwarder/incident-batcher.js';
import { RecentIncidents } from '../../forwarder/recent-incidents.js';
import type { PodAlert } from '../../domain/alert.js';

const alert = (id: string, raw?: unknown): PodAlert => ({
  source: 'falco',
  alertId: id,
  category: 'crypto-mining',
  severity: 'high',
  detectedAt: '2026-11-28T10:00:00Z',
  cluster: { name: 'prod' },
  namespace: 'shop',
  podName: 'web-1',
  ...(raw ? { raw } : {}),
});

/** A send whose answers the test releases one by one, recording what each signal carried. */
function controlledSend() {
  const sent: string[][] = [];
  const pending: { resolve(v: string): void; reject(e: Error): void }[] = [];
  const send = (alerts: PodAlert[]) => {
    sent.push(alerts.map((a) => a.alertId));
    return new Promise<string>((resolve, reject) => pending.push({ resolve, reject }));
  };
  return {
    sent,
    send,
    answer: (v = 'ok') => pending.shift()!.resolve(v),
    fail: (m: string) => pending.shift()!.reject(new Error(m)),
  };
}

describe('IncidentBatcher', () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());
  const make = (send: (a: PodAlert[]) => Promise<string>, over = {}) =>
    new IncidentBatcher(send, { intervalMs: 200, maxAlerts: 3, maxBytes: 100_000, ...over }, () => Date.now());

  it('sends the first alert of a quiet incident at once, and what arrives meanwhile together after the interval', async () => {
    const s = controlledSend();
    const b = make(s.send);
    const first = b.submit('i1', alert('a1'));
    expect(s.sent).toEqual([['a1']]);
    const later = [b.submit('i1', alert('a2')), b.submit('i1', alert('a3'))];
    s.answer('run-1');
    await expect(first).resolves.toBe('run-1');
    expect(s.sent).toHaveLength(1); // still inside the interval
    await vi.advanceTimersByTimeAsync(200);
    expect(s.sent).toEqual([['a1'], ['a2', 'a3']]);
    s.answer('run-1');
    await expect(Promise.all(later)).resolves.toEqual(['run-1', 'run-1']);
    b.close();
  });

  it('never has two signals in flight for one incident, and splits batches by count and bytes', async () => {
    const s = controlledSend();
    const b = make(s.send, { maxBytes: 1200 });
    void b.submit('i1', alert('a0'));
    const rest = ['a1', 'a2', 'a3', 'a4'].map((id) => b.submit('i1', alert(id)));
    const big = b.submit('i1', alert('big', { text: 'x'.repeat(1000) }));
    await vi.advanceTimersByTimeAsync(1000);
    expect(s.sent).toEqual([['a0']]); // the first is still unanswered
    s.answer();
    await vi.advanceTimersByTimeAsync(0);
    expect(s.sent).toEqual([['a0'], ['a1', 'a2', 'a3']]); // full: goes without waiting out the interval
    s.answer();
    await vi.advanceTimersByTimeAsync(0);
    expect(s.sent.at(-1)).toEqual(['a4']); // 'big' does not fit beside it
    s.answer();
    await vi.advanceTimersByTimeAsync(200);
    expect(s.sent.at(-1)).toEqual(['big']);
    s.answer();
    await Promise.all([...rest, big]);
    b.close();
  });

  it('rejects exactly the alerts a failed signal carried; later ones go in a new signal', async () => {
    const s = controlledSend();
    const b = make(s.send);
    const first = b.submit('i1', alert('a1'));
    const second = b.submit('i1', alert('a2'));
    s.fail('Temporal is unreachable');
    await expect(first).rejects.toThrow('Temporal is unreachable');
    await vi.advanceTimersByTimeAsync(200);
    expect(s.sent).toEqual([['a1'], ['a2']]);
    s.answer();
    await expect(second).resolves.toBe('ok');
    b.close();
  });

  it('through a burst, doubles the interval with each signal up to maxIntervalMs; a quiet spell starts over', async () => {
    const s = controlledSend();
    const b = make(s.send, { intervalMs: 100, maxIntervalMs: 400 });
    const at: number[] = [];
    const t0 = Date.now();
    for (const id of ['a1', 'a2', 'a3', 'a4', 'a5']) {
      void b.submit('i1', alert(id));
      while (s.sent.length < at.length + 1) await vi.advanceTimersByTimeAsync(10);
      at.push(Date.now() - t0);
      s.answer();
      await vi.advanceTimersByTimeAsync(0);
    }
    expect(s.sent).toEqual([['a1'], ['a2'], ['a3'], ['a4'], ['a5']]);
    // Spacing 100, 200, 400, then held at 400 (each alert arrives as the last signal is answered).
    expect(at.slice(1).map((t, i) => t - at[i]!)).toEqual([100, 200, 400, 400]);
    await vi.advanceTimersByTimeAsync(801); // quiet for twice the interval
    void b.submit('i1', alert('a6'));
    expect(s.sent.at(-1)).toEqual(['a6']); // at once again
    b.close();
  });

  it("lets another sender (the spool's deliverer) use an incident's lane, paced with it", async () => {
    const s = controlledSend();
    const b = make(s.send, { intervalMs: 100, maxIntervalMs: 1000 });
    const answered: string[] = [];
    b.onAnswered = (id) => answered.push(id);
    expect(b.dueIn('i1')).toBe(0);
    expect(b.inBurst('i1')).toBe(false);
    void b.submit('i1', alert('a1'));
    expect(b.dueIn('i1')).toBe(Infinity); // in flight
    expect(b.inBurst('i1')).toBe(true);
    await vi.advanceTimersByTimeAsync(30);
    s.answer();
    await vi.advanceTimersByTimeAsync(0);
    expect(answered).toEqual(['i1']);
    expect(b.dueIn('i1')).toBe(70);
    await vi.advanceTimersByTimeAsync(70);
    const spooled = b.sendNow('i1', [alert('s1'), alert('s2')]);
    expect(s.sent).toEqual([['a1'], ['s1', 's2']]);
    s.answer('run-1');
    await expect(spooled).resolves.toBe('run-1');
    expect(b.dueIn('i1')).toBe(200); // the second signal of the burst: the interval doubled
    b.close();
  });

  it('keeps incidents apart: a busy one does not delay another', async () => {
    const s = controlledSend();
    const b = make(s.send);
    void b.submit('i1', alert('a1'));
    void b.submit('i1', alert('a2'));
    void b.submit('i2', alert('b1'));
    expect(s.sent).toEqual([['a1'], ['b1']]);
    b.close();
  });
});

describe('RecentIncidents', () => {
  it('forgets an incident after its time, and the least recent one past capacity', () => {
    let t = 0;
    const r = new RecentIncidents(2, 1000, () => t);
    r.touch('a');
    r.touch('b');
    t = 500;
    r.touch('a');
    r.touch('c'); // capacity 2: 'b' goes
    expect([r.has('a'), r.has('b'), r.has('c')]).toEqual([true, false, true]);
    t = 1600;
    expect([r.has('a'), r.has('c')]).toEqual([false, false]);
  });
});
