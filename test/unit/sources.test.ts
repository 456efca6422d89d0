import { describe, expect, it } from 'vitest';
import { DEFAULT_ROUTES, route, routesSchema, globMatch } from '../../domain/routing.js';
import { normalizeBody, type Normalized } from '../../domain/sources/index.js';
import { guardDutySeverity } from '../../domain/sources/guardduty.js';
import { regionFromDomain } from '../../domain/sources/xdr.js';
import { inputErrorsOf } from '../support/input-errors.js';
import { fixture } from '../support/alert-fixtures.js';

const one = (
  source: Parameters<typeof normalizeBody>[0],
  body: unknown,
  query: Record<string, unknown> = {},
): Normalized => normalizeBody(source, body, query, 100)[0]!;
const alertOf = (n: Normalized) => {
  if (n.kind !== 'alert') throw new Error(`not actionable: ${n.reason}`);
  return n.alert;
};

describe('Falco', () => {
  it('normalizes a Falcosidekick stratum alert, cluster from the query', () => {
    const n = one('falco', fixture('falco-stratum'), { cluster: 'prod-eks', region: 'eu-west-1' });
    expect(n.type).toBe('Detect crypto miners using the Stratum protocol');
    expect(alertOf(n)).toMatchObject({
      source: 'falco',
      alertId: expect.stringMatching(/^falco-[0-9a-f]{32}$/),
      category: 'crypto-mining',
      severity: 'critical',
      detectedAt: '2026-11-27T10:21:07.123Z',
      cluster: { name: 'prod-eks', region: 'eu-west-1' },
      namespace: 'shop',
      podName: 'checkout-7d9f8b6c5d-x2x9q',
      container: { id: '3ad7b26ded6d', name: 'miner', image: 'docker.io/library/alpine:3.20' },
      process: { name: 'xmrig', pid: 4121 },
    });
    expect(alertOf(n).podUid).toBeUndefined();
    expect(alertOf(n).raw).toMatchObject({ uuid: '5f0c2d2a-4b1e-4f55-9d7e-2b8a1f3c9e01' });
  });

  it('names the event by its content, not the uuid Falcosidekick replaces on every delivery', () => {
    const event = fixture('falco-stratum');
    const id = (e: Record<string, any>) => alertOf(one('falco', e, { cluster: 'c1' })).alertId;
    const relayed = { ...event, uuid: 'a7e3c1d0-0000-4000-8000-000000000002' };
    expect(id(relayed)).toBe(id(event));
    // Falcosidekick cuts long strings in large payloads: the identity reads only the output's start.
    expect(id({ ...event, output: `${'x'.repeat(600)}` })).toBe(id({ ...event, output: `${'x'.repeat(512)}…[...]` }));
    // Another event of the same rule on the same pod differs in time (nanoseconds), or output.
    expect(id({ ...event, time: '2026-11-27T10:21:07.123456790Z' })).not.toBe(id(event));
    expect(id({ ...event, output: `${event.output} (2nd connection)` })).not.toBe(id(event));
  });

  it('reads k8s.pod.uid, a numeric-string pid and null image; derives a stable ID when uuid is missing', () => {
    const a = alertOf(one('falco', fixture('falco-known-miner'), { cluster: 'c1' }));
    expect(a).toMatchObject({
      podUid: '8f14e45f-ceea-467a-9af0-1d2e3f4a5b6c',
      process: { pid: 77 },
      container: { id: '9b2c4d6e8f01', name: 'app' },
    });
    expect(a.container!.image).toBeUndefined();
    expect(a.alertId).toMatch(/^falco-[0-9a-f]{32}$/);
    expect(alertOf(one('falco', fixture('falco-known-miner'), { cluster: 'c1' })).alertId).toBe(a.alertId);
  });

  it('acknowledges an event outside any pod (<NA>) as not actionable, "host" container and all', () => {
    const n = one('falco', fixture('falco-host-event'), { cluster: 'c1' });
    expect(n).toMatchObject({ kind: 'not-actionable', reason: expect.stringContaining('not from a Kubernetes pod') });
  });

  it('classifies a non-mining rule so the default routes ignore it', () => {
    const n = one('falco', fixture('falco-shell'), { cluster: 'c1' });
    expect(alertOf(n)).toMatchObject({ category: 'runtime-detection', severity: 'low' });
    expect(route(n as Extract<Normalized, { kind: 'alert' }>, DEFAULT_ROUTES)).toMatchObject({
      action: 'ignore',
      route: null,
    });
  });

  it('requires the cluster in the query', () => {
    expect(inputErrorsOf(() => one('falco', fixture('falco-stratum')))).toEqual([
      'query.cluster: Invalid input: expected string, received undefined',
    ]);
  });
});

describe('GuardDuty', () => {
  it('normalizes an EKS Runtime Monitoring finding', () => {
    const n = one('guardduty', fixture('guardduty-miner-executed'));
    expect(n.type).toBe('Impact:Runtime/CryptoMinerExecuted');
    expect(alertOf(n)).toMatchObject({
      source: 'guardduty',
      alertId: 'a2c7e1f0d9b84c3e8f1a2b3c4d5e6f70#1',
      category: 'crypto-mining',
      severity: 'high',
      detectedAt: '2026-11-27T10:23:58.000Z',
      cluster: { name: 'prod-eks', region: 'eu-west-1' },
      namespace: 'shop',
      podName: 'checkout-7d9f8b6c5d-x2x9q',
      podUid: '1c9b7a3e-5d2f-4e8a-9b6c-7d0e1f2a3b4c',
      container: { id: '3ad7b26ded6d1a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f70819abc', name: 'miner' },
      process: { name: 'xmrig', commandLine: '/tmp/.cache/xmrig', pid: 4121 },
    });
  });

  it('counts each recurrence of a finding as a new alert', () => {
    expect(alertOf(one('guardduty', fixture('guardduty-bitcoin-dns'))).alertId).toBe(
      'b3d8f2a1c0e94d5f8a7b6c5d4e3f2a10#3',
    );
  });

  it('routes related runtime types only when configured', () => {
    const n = one('guardduty', fixture('guardduty-reverse-shell')) as Extract<Normalized, { kind: 'alert' }>;
    expect(route(n, DEFAULT_ROUTES).action).toBe('ignore');
    const routes = routesSchema.parse([
      { name: 'shells', action: 'respond', source: ['guardduty'], type: ['Execution:Runtime/*'], minSeverity: 'high' },
      ...DEFAULT_ROUTES,
    ]);
    expect(route(n, routes)).toEqual({ action: 'respond', route: 'shells' });
  });

  it('acknowledges a finding about an EC2 instance as not actionable', () => {
    expect(one('guardduty', fixture('guardduty-ec2-instance'))).toMatchObject({
      kind: 'not-actionable',
      reason: 'finding is about resource type Instance, not an EKS workload',
    });
  });

  it("maps scores to GuardDuty's bands", () => {
    expect([1, 3.9, 4, 6.9, 7, 8.9, 9, 10].map(guardDutySeverity)).toEqual([
      'low',
      'low',
      'medium',
      'medium',
      'high',
      'high',
      'critical',
      'critical',
    ]);
  });
});

describe('Cortex XDR', () => {
  it('normalizes a Cryptominers Protection alert from its original alert', () => {
    const n = one('xdr', fixture('xdr-cryptominer'));
    expect(alertOf(n)).toMatchObject({
      source: 'xdr',
      alertId: '7421',
      category: 'crypto-mining',
      severity: 'high',
      detectedAt: '2026-11-27T10:22:10.000Z',
      cluster: { name: 'prod-eks', region: 'eu-west-1' },
      namespace: 'shop',
      podName: 'checkout-7d9f8b6c5d-x2x9q',
      container: { name: 'miner', image: 'docker.io/library/alpine:3.20' },
      process: { name: 'xmrig', pid: 4121 },
    });
  });

  it('acknowledges an alert without a pod as not actionable', () => {
    expect(one('xdr', fixture('xdr-host-malware'))).toMatchObject({ kind: 'not-actionable', alertId: '7422' });
  });

  it('takes the region from the device domain, us-east-1 from ec2.internal', () => {
    expect(regionFromDomain('eu-west-1.compute.internal')).toBe('eu-west-1');
    expect(regionFromDomain('ec2.internal')).toBe('us-east-1');
    expect(regionFromDomain('corp.example.com')).toBeUndefined();
  });
});

describe('batches and errors', () => {
  it('normalizes every item of a batch', () => {
    const items = normalizeBody(
      'normalized',
      [fixture('normalized'), { ...fixture('normalized'), alertId: 'siem-4712' }],
      {},
      100,
    );
    expect(items.map((i) => alertOf(i).alertId)).toEqual(['siem-4711', 'siem-4712']);
  });

  it('rejects a whole batch when one item is bad, naming its index and field', () => {
    const bad = { ...fixture('normalized'), podName: 'Bad_Name' };
    expect(inputErrorsOf(() => normalizeBody('normalized', [fixture('normalized'), bad], {}, 100))).toEqual([
      '[1].podName: must be a DNS-1123 subdomain',
    ]);
  });

  it('quotes dotted vendor keys in error paths', () => {
    const f = fixture('falco-stratum');
    f.output_fields['k8s.ns.name'] = 'Shop';
    expect(inputErrorsOf(() => one('falco', f, { cluster: 'c' }))).toEqual([
      'output_fields["k8s.ns.name"]: must be a DNS-1123 label (lowercase alphanumerics and "-")',
    ]);
  });

  it('caps batch size and error count', () => {
    expect(inputErrorsOf(() => normalizeBody('normalized', Array(101).fill({}), {}, 100))).toEqual([
      '(root): batch of 101 alerts exceeds the limit of 100',
    ]);
    expect(inputErrorsOf(() => normalizeBody('normalized', Array(100).fill({}), {}, 100))).toHaveLength(51);
  });
});

describe('routing', () => {
  it('matches globs literally except for *', () => {
    expect(globMatch('Execution:Runtime/*', 'Execution:Runtime/ReverseShell')).toBe(true);
    expect(globMatch('a.b', 'axb')).toBe(false);
    expect(globMatch('prod-*', 'prod-')).toBe(true);
  });

  it('lets an earlier ignore rule win', () => {
    const n = one('normalized', fixture('normalized')) as Extract<Normalized, { kind: 'alert' }>;
    const routes = routesSchema.parse([{ name: 'not-shop', action: 'ignore', namespace: ['shop'] }, ...DEFAULT_ROUTES]);
    expect(route(n, routes)).toEqual({ action: 'ignore', route: 'not-shop', reason: 'matched ignore rule "not-shop"' });
    expect(route(n, DEFAULT_ROUTES)).toEqual({ action: 'respond', route: 'crypto-mining' });
  });
});
