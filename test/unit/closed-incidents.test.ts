import { describe, expect, it } from 'vitest';
import { aboutGonePod, ClosedIncidents, gonePodOf, type ClosedRun } from '../../forwarder/closed-incidents.js';
import type { PodAlert } from '../../domain/alert.js';
import type { IncidentResult } from '../../workflows/messages.js';

const KILLED_AT = '2026-12-07T10:00:02.000Z';
const UID = '0b8e6a4c-3d1f-4c1e-9a57-2f1d6c0e9b11';
const CONTAINER = 'a1b2c3d4e5f6a7b8c9d0e1f2a3b4c5d6e7f8a9b0c1d2e3f4a5b6c7d8e9f0a1b2';

const alert = (over: Partial<PodAlert> = {}): PodAlert => ({
  source: 'falco',
  alertId: 'a1',
  category: 'crypto-mining',
  severity: 'critical',
  detectedAt: '2026-12-07T10:00:05.000Z', // after the kill
  cluster: { name: 'prod' },
  namespace: 'shop',
  podName: 'miner-0',
  ...over,
});

/** A final result (the workflow's summary). */
const result = (over: Partial<IncidentResult>): IncidentResult => ({
  schemaVersion: 1,
  incidentId: 'pod-incident:prod:shop:miner-0',
  outcome: 'pod-terminated',
  problem: null,
  actions: [],
  runs: 1,
  pod: { uid: UID, containerIds: [`containerd://${CONTAINER}`] },
  killedAt: KILLED_AT,
  dismissal: null,
  ...over,
});

describe('gonePodOf', () => {
  it('knows the killed pod after a kill outcome: its UID, bare container IDs, and the kill time', () => {
    for (const outcome of ['pod-terminated', 'workload-suspended', 'workload-restored'] as const)
      expect(gonePodOf(result({ outcome }), 0)).toMatchObject({
        uid: UID,
        containerIds: [CONTAINER],
        goneAt: Date.parse(KILLED_AT),
      });
  });

  it('knows a pod-gone dismissal by the time the run closed on it, with no identity', () => {
    const r = result({ outcome: 'dismissed', killedAt: null, pod: null, dismissal: 'pod-gone' });
    expect(gonePodOf(r, 99)).toMatchObject({ uid: null, containerIds: [], goneAt: 99 });
  });

  it('knows nothing after other ends: the pod may still be there, so a new alert starts a new run', () => {
    expect(gonePodOf(result({ outcome: 'needs-manual-action' }), 0)).toBeNull();
    expect(gonePodOf(result({ outcome: 'failed' }), 0)).toBeNull();
    expect(gonePodOf(result({ outcome: 'dry-run', killedAt: null }), 0)).toBeNull();
    expect(gonePodOf(result({ outcome: 'dismissed', dismissal: 'stale-alert' }), 0)).toBeNull();
    expect(gonePodOf(result({ outcome: 'dismissed', dismissal: 'pod-replaced' }), 0)).toBeNull();
    expect(gonePodOf(null, 0)).toBeNull(); // terminated, cancelled, failed: no result
  });
});

describe('aboutGonePod', () => {
  const killed = gonePodOf(result({}), 0)!;

  it('the same UID is the killed pod, whenever detected; another UID is a new pod with the same name', () => {
    expect(aboutGonePod(alert({ podUid: UID }), killed)).toBe(true);
    expect(aboutGonePod(alert({ podUid: '7c1d2e3f-0000-4000-8000-000000000000' }), killed)).toBe(false);
    // The UID decides over a container ID that would match.
    expect(
      aboutGonePod(alert({ podUid: '7c1d2e3f-0000-4000-8000-000000000000', container: { id: CONTAINER } }), killed),
    ).toBe(false);
  });

  it("one of its containers (Falco's 12-hex short ID, or with the runtime's scheme) is the killed pod", () => {
    expect(aboutGonePod(alert({ container: { id: CONTAINER.slice(0, 12) } }), killed)).toBe(true);
    expect(aboutGonePod(alert({ container: { id: `containerd://${CONTAINER}` } }), killed)).toBe(true);
    expect(aboutGonePod(alert({ container: { id: 'ffffffffffff' } }), killed)).toBe(false);
  });

  it('naming neither, only a detection from before the kill is certainly the killed pod’s', () => {
    expect(aboutGonePod(alert({ detectedAt: '2026-12-07T10:00:01.000Z' }), killed)).toBe(true);
    expect(aboutGonePod(alert({ detectedAt: KILLED_AT }), killed)).toBe(true);
    expect(aboutGonePod(alert({ detectedAt: '2026-12-07T10:00:05.000Z' }), killed)).toBe(false);
    expect(aboutGonePod(alert({ container: { name: 'app' } }), killed)).toBe(false);
  });

  it('after a pod-gone dismissal, only detections from before the run looked', () => {
    const gone = { uid: null, containerIds: [], goneAt: Date.parse('2026-12-07T10:00:09.000Z'), why: '' };
    expect(aboutGonePod(alert({ podUid: UID, detectedAt: '2026-12-07T10:00:08.000Z' }), gone)).toBe(true);
    expect(aboutGonePod(alert({ podUid: UID, detectedAt: '2026-12-07T10:00:10.000Z' }), gone)).toBe(false);
    expect(aboutGonePod(alert({ container: { id: CONTAINER }, detectedAt: '2026-12-07T10:00:10.000Z' }), gone)).toBe(
      false,
    );
  });
});

describe('ClosedIncidents', () => {
  const run = (workflowId: string, closedAt: number): ClosedRun => ({
    workflowId,
    closedAt,
    outcome: 'pod-terminated',
    gonePod: { uid: UID, containerIds: [CONTAINER], goneAt: closedAt - 1000, why: 'pod-terminated' },
  });

  it('answers for the gone pod within the window of the close only', () => {
    let now = 1_000_000;
    const c = new ClosedIncidents(10, 60_000, () => now);
    c.remember(run('i1', now));
    expect(c.goneFor(alert({ podUid: UID }), 'i1')).toBeDefined();
    expect(c.goneFor(alert({ podUid: UID }), 'i2')).toBeUndefined();
    expect(c.goneFor(alert({ podUid: '7c1d2e3f-0000-4000-8000-000000000000' }), 'i1')).toBeUndefined();
    now += 60_001;
    expect(c.goneFor(alert({ podUid: UID }), 'i1')).toBeUndefined();
    expect(c.get('i1')).toBeUndefined();
  });

  it('a run closed before the window is remembered as closed, but answers no alert', () => {
    const now = 1_000_000;
    const c = new ClosedIncidents(10, 60_000, () => now);
    c.remember(run('i1', now - 120_000));
    expect(c.get('i1')).toBeDefined();
    expect(c.goneFor(alert({ podUid: UID }), 'i1')).toBeUndefined();
  });

  it('forgets a run once another is current, and the least recently learned beyond its capacity; off at 0', () => {
    const now = 1_000_000;
    const c = new ClosedIncidents(2, 60_000, () => now);
    c.remember(run('i1', now));
    c.remember(run('i2', now));
    c.remember(run('i3', now));
    expect([c.get('i1'), c.get('i2'), c.get('i3')].map(Boolean)).toEqual([false, true, true]);
    c.forget('i2');
    expect(c.get('i2')).toBeUndefined();
    const off = new ClosedIncidents(10, 0, () => now);
    off.remember(run('i1', now));
    expect(off.get('i1')).toBeUndefined();
  });
});
