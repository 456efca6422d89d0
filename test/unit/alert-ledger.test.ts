import { describe, expect, it } from 'vitest';
import { withRawExcerpt, type PodAlert } from '../../domain/alert.js';
import { AlertLedger, hash64 } from '../../workflows/incident/alert-ledger.js';

describe('AlertLedger', () => {
  it('counts an ID once, survives serialization, and forgets the oldest past its capacity', () => {
    const l = new AlertLedger(3);
    expect(['a', 'b', 'a', 'c'].map((id) => l.record(id))).toEqual([true, true, false, true]);
    const restored = AlertLedger.from(l.serialize(), 3);
    expect(restored.record('b')).toBe(false);
    expect(restored.record('d')).toBe(true); // capacity 3: 'a' is forgotten
    expect([restored.has('a'), restored.has('b'), restored.has('c'), restored.has('d')]).toEqual([
      false,
      true,
      true,
      true,
    ]);
  });

  it('keeps 11 bytes per ID and no two of 200,000 realistic IDs collide', () => {
    const l = new AlertLedger(200_000);
    let fresh = 0;
    for (let i = 0; i < 200_000; i++) if (l.record(`falco-${1764324000000 + i}-${i % 7}`)) fresh++;
    expect(fresh).toBe(200_000);
    expect(l.serialize()).toHaveLength(200_000 * 11);
    expect(hash64('x')).toMatch(/^[A-Za-z0-9_-]{11}$/);
  });
});

describe('withRawExcerpt', () => {
  const a: PodAlert = {
    source: 'falco',
    alertId: 'a',
    category: 'c',
    severity: 'high',
    detectedAt: '2026-11-28T10:00:00Z',
    cluster: { name: 'p' },
    namespace: 'n',
    podName: 'p',
  };
  it('keeps a small raw, cuts a large one to an excerpt once, and is not fooled by a fake excerpt', () => {
    expect(withRawExcerpt({ ...a, raw: { small: 1 } }).raw).toEqual({ small: 1 });
    const cut = withRawExcerpt({ ...a, raw: { big: 'x'.repeat(5000) } }, 100);
    expect(cut.raw).toEqual({ excerpt: `{"big":"${'x'.repeat(92)}`, truncatedFromChars: 5010 });
    expect(withRawExcerpt(cut, 100)).toBe(cut);
    const fake = { ...a, raw: { excerpt: 'y'.repeat(5000), truncatedFromChars: 1 } };
    expect(JSON.stringify(withRawExcerpt(fake, 100).raw).length).toBeLessThan(200);
  });
});
