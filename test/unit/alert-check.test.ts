/**
 * The workflow's zod-free alert check (domain/alert-check.ts) against the schema it mirrors (podAlertSchema): the
 * same verdict on a valid alert and on each of many one-field changes to it, and the problem names a field zod
 * names. A field added to the schema and not to the check (or a rule changed in one only) fails here.
 */
import { describe, expect, it } from 'vitest';
import { checkAlert } from '../../domain/alert-check.js';
import { podAlertSchema } from '../../domain/alert.js';

const valid = {
  source: 'falco',
  alertId: 'a-1',
  category: 'crypto-mining',
  severity: 'critical',
  detectedAt: '2026-12-07T15:00:00.123Z',
  cluster: { name: 'prod_eu-1', region: 'eu-west-1' },
  namespace: 'shop',
  podName: 'web-7d4b9.abc',
  podUid: '3f2b6c1e-8a4d-4e2b-9c1a-0b5d7e9f1a2c',
  container: { id: 'containerd://' + 'ab'.repeat(32), name: 'app', image: 'nginx:1.27' },
  process: { name: 'xmrig', commandLine: 'xmrig -o pool', pid: 4242 },
  raw: { anything: ['goes', 1, null] },
};

const long = (n: number) => 'a'.repeat(n);
/** Values tried in every field: of the wrong type, empty, and the edges of each rule. */
const anywhere: unknown[] = [undefined, null, 0, 1.5, -1, true, '', [], {}, 'x', long(64), long(129), long(257)];
const perField: Record<string, unknown[]> = {
  source: [...podAlertSchema.shape.source.options, 'Falco', 'splunk', 'sysdig', 'crowdstrike', 'normalized'],
  alertId: [long(256), long(257)],
  category: [long(128), long(129)],
  severity: [...podAlertSchema.shape.severity.options, 'CRITICAL', 'urgent', 'info', 'warning', 'none'],
  detectedAt: [
    '2026-12-07T15:00:00Z',
    '2026-12-07T15:00:00+02:00',
    '2026-12-07T15:00:00-23:59',
    '2026-12-07T15:00:00+24:00',
    '2026-12-07T15:00Z',
    '2026-12-07T15:00:00',
    '2026-12-07 15:00:00Z',
    '2026-12-07T15:00:00z',
    '2024-02-29T00:00:00Z',
    '2023-02-29T00:00:00Z',
    '2000-02-29T00:00:00Z',
    '1900-02-29T00:00:00Z',
    '2026-04-31T00:00:00Z',
    '2026-13-01T00:00:00Z',
    '2026-12-07T24:00:00Z',
    '2026-12-07T15:00:60Z',
    '2026-12-07T15:00:00.Z',
    '2026-12-07',
  ],
  'cluster.name': ['a', '9abc', '_abc', '-abc', 'a-b_c', 'a.b', long(100), long(101)],
  'cluster.region': ['us-east-1', 'us-gov-west-1', 'US-east-1', 'useast1', 'u-east-1', 'us-east-'],
  namespace: ['a', 'a-b', '-a', 'a-', 'A', 'a.b', long(63), long(64)],
  podName: ['a.b-c', 'a..b', '.a', 'a.', 'A', `${long(63)}.${long(63)}.${long(63)}.${long(61)}`, long(254)],
  podUid: [
    '00000000-0000-0000-0000-000000000000',
    'ffffffff-ffff-ffff-ffff-ffffffffffff',
    '3F2B6C1E-8A4D-4E2B-9C1A-0B5D7E9F1A2C',
    '3f2b6c1e-8a4d-9e2b-9c1a-0b5d7e9f1a2c',
    '3f2b6c1e-8a4d-4e2b-cc1a-0b5d7e9f1a2c',
    '3f2b6c1e8a4d4e2b9c1a0b5d7e9f1a2c',
  ],
  'container.id': [
    long(12).replace(/a/g, 'f'),
    'ab'.repeat(32),
    'ab'.repeat(33),
    'docker://abcdef012345',
    'abcdef01234',
    'ABCDEF012345',
    'cri-o://abcdef012345',
    'x:/abcdef012345',
  ],
  'container.name': ['app', 'App', long(63), long(64)],
  'container.image': [long(1024), long(1025)],
  'process.name': [long(1024), long(1025)],
  'process.commandLine': [long(8192), long(8193)],
  'process.pid': [0, 1, 2 ** 53 - 1, 2 ** 53, -0, NaN, Infinity, '12'],
};

function withField(path: string, value: unknown): unknown {
  const alert = structuredClone(valid) as Record<string, unknown>;
  const keys = path.split('.');
  let node = alert;
  for (const k of keys.slice(0, -1)) node = node[k] as Record<string, unknown>;
  if (value === undefined) delete node[keys.at(-1)!];
  else node[keys.at(-1)!] = value;
  return alert;
}

const cases: [string, unknown][] = [['the valid alert', valid]];
for (const path of Object.keys(perField))
  for (const v of [...anywhere, ...perField[path]!])
    cases.push([`${path} = ${JSON.stringify(v)?.slice(0, 40)}`, withField(path, v)]);
for (const parent of ['', 'cluster.', 'container.', 'process.'])
  cases.push([`${parent}extra`, withField(`${parent}extra`, 1)]);
for (const whole of [null, [], 'alert', 42]) cases.push([`the alert is ${JSON.stringify(whole)}`, whole]);
for (const v of anywhere) cases.push([`container = ${JSON.stringify(v)}`, withField('container', v)]);
for (const v of anywhere) cases.push([`process = ${JSON.stringify(v)}`, withField('process', v)]);
for (const v of anywhere) cases.push([`cluster = ${JSON.stringify(v)}`, withField('cluster', v)]);

describe("the workflow's alert check", () => {
  it('is tried on an alert with every field of the schema, nested ones too', () => {
    const fields = (shape: object) => Object.keys(shape).sort();
    const { shape } = podAlertSchema;
    expect(fields(valid)).toEqual(fields(shape));
    expect(fields(valid.cluster)).toEqual(fields(shape.cluster.shape));
    expect(fields(valid.container)).toEqual(fields(shape.container.unwrap().shape));
    expect(fields(valid.process)).toEqual(fields(shape.process.unwrap().shape));
  });

  it('has cases on both sides of the schema', () => {
    const verdicts = cases.map(([, input]) => podAlertSchema.safeParse(input).success);
    expect(verdicts.filter(Boolean).length).toBeGreaterThan(40);
    expect(verdicts.filter((ok) => !ok).length).toBeGreaterThan(200);
  });

  it.each(cases)('agrees with podAlertSchema: %s', (_, input) => {
    const zod = podAlertSchema.safeParse(input);
    const ours = checkAlert(input);
    if (zod.success) expect(ours).toEqual({ alert: input });
    else {
      expect(ours).toHaveProperty('problem');
      const path = (ours as { problem: string }).problem.split(':')[0];
      const zodPaths = zod.error.issues.flatMap((i) => [
        i.path.join('.') || 'alert',
        ...('keys' in i ? i.keys.map((k) => [...i.path, k].join('.')) : []),
      ]);
      expect(zodPaths).toContain(path);
    }
  });
});
