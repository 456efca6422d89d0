/** A packed `alerts` batch (domain/alert-batch.ts) gives every alert back as it was, and is what makes a flood small. */
import { describe, expect, it } from 'vitest';
import type { PodAlert } from '../../domain/alert.js';
import { packAlerts, unpackAlert } from '../../domain/alert-batch.js';
import { packedSizeOf } from '../../forwarder/pipeline.js';

const base: PodAlert = {
  source: 'falco',
  alertId: 'falco-0',
  category: 'crypto-mining',
  severity: 'critical',
  detectedAt: '2026-12-07T15:00:00.000Z',
  cluster: { name: 'prod' },
  namespace: 'shop',
  podName: 'web-7d4b9',
  container: { id: 'ab12cd34ef56' },
  process: { name: 'xmrig' },
};
const repeat = (n: number, more: Partial<PodAlert> = {}): PodAlert => ({
  ...base,
  alertId: `falco-${n}`,
  detectedAt: new Date(Date.parse(base.detectedAt) + n).toISOString(),
  ...more,
});
const unpacked = (alerts: PodAlert[]) => {
  const { alerts: packed, packing } = packAlerts(alerts);
  // Through JSON, as the signal carries it.
  const sent = JSON.parse(JSON.stringify([packed, packing])) as [unknown[], unknown];
  return { packed, packing, back: sent[0].map((a, n) => (n ? unpackAlert(sent[0][0], a, sent[1]) : a)) };
};

describe('packed alert batches', () => {
  it('a flood: every repeat carries its ID and time only, and comes back whole', () => {
    const alerts = Array.from({ length: 100 }, (_, n) => repeat(n));
    const { packed, packing, back } = unpacked(alerts);
    expect(packing?.shared).toEqual([
      'source',
      'category',
      'severity',
      'cluster',
      'namespace',
      'podName',
      'container',
      'process',
    ]);
    expect(Object.keys(packed[1]!)).toEqual(['alertId', 'detectedAt']);
    expect(back).toEqual(alerts);
    // A quarter of the bytes, or less.
    expect(JSON.stringify(packed).length * 3.5).toBeLessThan(JSON.stringify(alerts).length);
  });

  it('a field that differs in one alert, or is absent from one, or from the first, is not shared', () => {
    const { container: _, ...noContainer } = repeat(3);
    const alerts = [
      repeat(0, { podUid: undefined }),
      repeat(1, { severity: 'high' }),
      noContainer,
      repeat(4, { process: { name: 'xmrig', pid: 7 }, podUid: '3f2b6c1e-8a4d-4e2b-9c1a-0b5d7e9f1a2c' }),
    ];
    const { packing, back } = unpacked(alerts);
    expect(packing?.shared).toEqual(['source', 'category', 'cluster', 'namespace', 'podName']);
    expect(back).toEqual(JSON.parse(JSON.stringify(alerts)));
  });

  it('one alert, or nothing alike: sent as it is', () => {
    expect(packAlerts([base])).toEqual({ alerts: [base] });
    expect(unpackAlert(base, { alertId: 'x' }, undefined)).toEqual({ alertId: 'x' });
    // A packing naming what is not shareable takes nothing from the first.
    expect(unpackAlert(base, { alertId: 'x' }, { shared: ['alertId', 'detectedAt', 'raw'] })).toEqual({ alertId: 'x' });
    expect(unpackAlert(base, 'junk', { shared: ['source'] })).toBe('junk');
  });

  it('the forwarder counts an alert at no less than it costs packed', () => {
    const alerts = Array.from({ length: 50 }, (_, n) => repeat(n, { process: { name: `p${n}` } }));
    const { alerts: packed } = packAlerts(alerts);
    const counted = alerts.reduce((n, a) => n + packedSizeOf(a), 0);
    expect(JSON.stringify(packed).length).toBeLessThanOrEqual(counted + JSON.stringify(alerts[0]).length);
  });
});
