import { describe, expect, it } from 'vitest';
import { bareContainerId, parseAlert } from '../../domain/alert.js';
import { sameContainer } from '../../domain/alert-values.js';
import { inputErrorsOf } from '../support/input-errors.js';

const valid = {
  source: 'falco',
  alertId: 'f-1',
  category: 'crypto-mining',
  severity: 'critical',
  detectedAt: '2026-11-27T10:00:00.123456789Z',
  cluster: { name: 'prod-eu', region: 'eu-west-1' },
  namespace: 'shop',
  podName: 'web-7d9f8b6c5-x2x9z',
  podUid: '0f8fad5b-d9cb-469f-a165-70867728950e',
  container: {
    id: 'containerd://3f4e5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b1c2d3e4f',
    name: 'web',
    image: 'nginx:1.27',
  },
  process: { name: 'xmrig', commandLine: 'xmrig -o pool:3333', pid: 4242 },
  raw: { anything: true },
};

const errorsOf = (input: unknown): string[] => inputErrorsOf(() => parseAlert(input));

describe('PodAlert schema', () => {
  it('accepts a complete alert and a minimal one', () => {
    expect(parseAlert(valid).podName).toBe('web-7d9f8b6c5-x2x9z');
    const { podUid: _u, container: _c, process: _p, raw: _r, ...minimal } = valid;
    expect(parseAlert({ ...minimal, cluster: { name: 'local' } }).cluster.region).toBeUndefined();
  });

  it.each<[string, unknown, string]>([
    [
      'missing namespace',
      { ...valid, namespace: undefined },
      'namespace: Invalid input: expected string, received undefined',
    ],
    [
      'upper-case namespace',
      { ...valid, namespace: 'Shop' },
      'namespace: must be a DNS-1123 label (lowercase alphanumerics and "-")',
    ],
    ['bad pod name', { ...valid, podName: 'web_1' }, 'podName: must be a DNS-1123 subdomain'],
    [
      'unknown severity',
      { ...valid, severity: 'severe' },
      'severity: Invalid option: expected one of "low"|"medium"|"high"|"critical"',
    ],
    ['bad time', { ...valid, detectedAt: 'yesterday' }, 'detectedAt: Invalid ISO datetime'],
    ['bad uid', { ...valid, podUid: 'abc' }, 'podUid: Invalid UUID'],
    [
      'bad container id',
      { ...valid, container: { id: 'xyz' } },
      'container.id: must be a container ID: [runtime://]hex, 12 to 64 hex digits',
    ],
    [
      'bad region',
      { ...valid, cluster: { name: 'prod', region: 'Europe' } },
      'cluster.region: must be an AWS region such as us-east-1',
    ],
    ['unknown field', { ...valid, pod: 'x' }, '(root): Unrecognized key: "pod"'],
    ['not an object', 'alert', '(root): Invalid input: expected object, received string'],
  ])('%s -> exact error', (_name, input, message) => {
    expect(errorsOf(input)).toContain(message);
  });

  it('lists every bad field at once', () => {
    expect(errorsOf({ ...valid, namespace: 'A', podName: '', severity: 'x' })).toHaveLength(3);
  });

  it('compares container IDs without the runtime scheme', () => {
    expect(bareContainerId('containerd://abc123abc123')).toBe('abc123abc123');
    expect(bareContainerId('abc123abc123')).toBe('abc123abc123');
  });
});

describe('sameContainer (what a repeat before the kill must not be: docs/repeats.md)', () => {
  const full = 'containerd://3f4e5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b1c2d3e4f';
  const c = (container?: { id?: string; name?: string }) => (container ? { container } : {});
  it("Falco's 12-hex short ID and the runtime's full ID are one container", () => {
    expect(sameContainer(c({ id: '3f4e5a6b7c8d' }), c({ id: full }))).toBe(true);
    expect(sameContainer(c({ id: full }), c({ id: '3f4e5a6b7c8d', name: 'other' }))).toBe(true);
  });
  it('another ID is another container, even under the same name (a restarted container)', () => {
    expect(sameContainer(c({ id: 'aaaaaaaaaaaa', name: 'web' }), c({ id: 'bbbbbbbbbbbb', name: 'web' }))).toBe(false);
  });
  it('without IDs on both, names decide; knowing neither counts as the same', () => {
    expect(sameContainer(c({ name: 'web' }), c({ id: full, name: 'sidecar' }))).toBe(false);
    expect(sameContainer(c({ name: 'web' }), c({ name: 'web' }))).toBe(true);
    expect(sameContainer(c(), c({ id: full, name: 'web' }))).toBe(true);
    expect(sameContainer(c({ id: full }), c({ name: 'web' }))).toBe(true);
  });
});
