import { describe, expect, it } from 'vitest';
import type { PodAlert } from '../../domain/alert.js';
import { identityCheck, preflightCheck } from '../../domain/checks.js';
import { defaultPolicy } from '../../domain/policy.js';
import type { PodFacts } from '../../domain/workload.js';

const now = Date.parse('2026-11-27T12:00:00Z');
const full = 'a'.repeat(12) + 'b'.repeat(52);
const alert: PodAlert = {
  source: 'falco',
  alertId: 'x',
  category: 'crypto-mining',
  severity: 'high',
  detectedAt: '2026-11-27T11:59:00Z',
  cluster: { name: 'c' },
  namespace: 'shop',
  podName: 'p',
  podUid: '0f8fad5b-d9cb-469f-a165-70867728950e',
  container: { id: 'a'.repeat(12), name: 'app' },
};
const pod: PodFacts = {
  namespace: 'shop',
  name: 'p',
  uid: '0f8fad5b-d9cb-469f-a165-70867728950e',
  labels: {},
  containers: [{ name: 'app', image: 'i', containerIds: [`containerd://${full}`] }],
  owners: [],
};

describe('preflightCheck', () => {
  it('passes a fresh alert in an ordinary namespace', () => {
    expect(preflightCheck(alert, defaultPolicy, now)).toBeNull();
  });
  it.each(['kube-system', 'kube-public', 'kube-node-lease'])('dismisses %s', (namespace) => {
    expect(preflightCheck({ ...alert, namespace }, defaultPolicy, now)?.code).toBe('protected-namespace');
  });
  it('dismisses stale and future-dated alerts with the numbers', () => {
    expect(preflightCheck({ ...alert, detectedAt: '2026-11-27T10:00:00Z' }, defaultPolicy, now)).toEqual({
      code: 'stale-alert',
      message: 'alert is 7200s old, older than maxAlertAgeSeconds=3600',
    });
    expect(preflightCheck({ ...alert, detectedAt: '2026-11-27T13:00:00Z' }, defaultPolicy, now)?.code).toBe(
      'future-alert',
    );
  });
});

describe('identityCheck', () => {
  it('accepts the same pod by UID and short container ID', () => {
    expect(identityCheck(alert, pod, defaultPolicy)).toBeNull();
  });
  it('accepts a container ID from before a restart', () => {
    const restarted = {
      ...pod,
      containers: [{ ...pod.containers[0]!, containerIds: ['containerd://' + 'c'.repeat(64), `containerd://${full}`] }],
    };
    expect(identityCheck(alert, restarted, defaultPolicy)).toBeNull();
  });
  it.each<[string, PodFacts | null, string]>([
    ['gone', null, 'pod-gone'],
    ['replaced', { ...pod, uid: '11111111-2222-4333-8444-555555555555' }, 'pod-replaced'],
    [
      'other container id',
      { ...pod, containers: [{ ...pod.containers[0]!, containerIds: ['containerd://' + 'c'.repeat(64)] }] },
      'container-mismatch',
    ],
    ['no such container', { ...pod, containers: [{ ...pod.containers[0]!, name: 'other' }] }, 'container-mismatch'],
    ['protected label', { ...pod, labels: { 'pod-responder.io/protected': 'true' } }, 'protected-label'],
  ])('%s -> %s', (_n, facts, code) => {
    expect(identityCheck(alert, facts, defaultPolicy)?.code).toBe(code);
  });
  it('matches a key-only protected label selector on any value', () => {
    const policy = { ...defaultPolicy, protectedLabels: ['security.example.com/honeypot'] };
    expect(identityCheck(alert, { ...pod, labels: { 'security.example.com/honeypot': 'yes' } }, policy)?.message).toBe(
      'pod shop/p carries protected label security.example.com/honeypot',
    );
  });
});
