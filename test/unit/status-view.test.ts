/**
 * The status is a view of the incident's state (workflows/incident/view.ts, docs/status.md): versioned, without the
 * control state, the open proposal and the closed ones told apart, the wait's deadline from the phase.
 */
import { describe, expect, it } from 'vitest';
import type { PodAlert } from '../../domain/alert.js';
import type { PodFacts, WorkloadRef } from '../../domain/workload.js';
import { freshState, type IncidentState } from '../../workflows/incident/state.js';
import { resultSummary, statusView } from '../../workflows/incident/view.js';
import type { Proposal } from '../../workflows/messages.js';

const alert: PodAlert = {
  source: 'falco',
  alertId: 'a1',
  category: 'crypto-mining',
  severity: 'high',
  detectedAt: '2026-12-07T11:59:00Z',
  cluster: { name: 'prod' },
  namespace: 'shop',
  podName: 'web-1',
};
const pod: PodFacts = { namespace: 'shop', name: 'web-1', uid: 'u1', labels: {}, containers: [], owners: [] };
const workload: WorkloadRef = { apiVersion: 'apps/v1', kind: 'Deployment', namespace: 'shop', name: 'web', uid: 'd1' };
const proposal = (id: string, answered: boolean): Proposal => ({
  id,
  action: 'terminate-pod',
  target: 'pod shop/web-1 (uid u1)',
  workload: null,
  reason: 'first alert',
  proposedAt: '2026-12-07T12:00:00.000Z',
  expiresAt: '2026-12-07T12:15:00.000Z',
  answer: answered ? { answer: 'superseded', at: '2026-12-07T12:01:00.000Z' } : null,
});
const state = (over: Partial<IncidentState>): IncidentState => ({ ...freshState('incident-1', alert), ...over });

describe('the status view', () => {
  it('is versioned and shows no control state: the phase is not in it, its deadline and outcome are', () => {
    const view = statusView(state({ phase: { name: 'watch', pod, workload, until: '2026-12-07T13:00:00Z' } }));
    expect(view.schemaVersion).toBe(1);
    expect(view).not.toHaveProperty('phase');
    expect(view).not.toHaveProperty('next');
    expect(view.waitingUntil).toBe('2026-12-07T13:00:00Z');
    expect(view.outcome).toBeNull();
    const closed = statusView(state({ phase: { name: 'done', outcome: 'pod-terminated', problem: null } }));
    expect([closed.outcome, closed.waitingUntil]).toEqual(['pod-terminated', null]);
  });

  it('shows the open proposal as `proposal` and the closed ones as `pastProposals`; without one open, the newest closed', () => {
    const p1 = proposal('p1', true);
    const p2 = proposal('p2', false);
    const waiting = statusView(state({ phase: { name: 'await-approval', pod, proposal: p2 }, proposals: [p1] }));
    expect(waiting.proposal?.id).toBe('p2');
    expect(waiting.pastProposals.map((p) => p.id)).toEqual(['p1']);
    expect(waiting.waitingUntil).toBe(p2.expiresAt);
    const after = statusView(state({ phase: { name: 'act', pod }, proposals: [p1, { ...p2, answer: null }] }));
    expect(after.proposal?.id).toBe('p2');
    expect(after.pastProposals.map((p) => p.id)).toEqual(['p1']);
  });

  it('names the same fields whatever the state holds: a field added to the state is not shown until the view says so', () => {
    const s = state({});
    const view = statusView({ ...s, internalOnly: 'x' } as IncidentState);
    expect(view).not.toHaveProperty('internalOnly');
    expect(Object.keys(statusView(s)).sort()).toEqual(Object.keys(view).sort());
  });

  it('the result is a summary: the outcome, the problem, the actions without their messages, the runs, the pod gone', () => {
    const s = state({
      run: 2,
      problem: 'p',
      actions: [{ action: 'delete-pod', target: 'pod shop/web-1', status: 'done', message: 'a long message' }],
      pod: {
        namespace: 'shop',
        name: 'web-1',
        uid: 'uid-1',
        labels: {},
        containers: [{ name: 'app', image: 'x', containerIds: ['containerd://c1', 'containerd://c0'] }],
        owners: [],
      },
      killedAt: '2026-12-07T10:00:02.000Z',
    });
    expect(resultSummary(s, 'pod-terminated')).toEqual({
      schemaVersion: 1,
      incidentId: 'incident-1',
      outcome: 'pod-terminated',
      problem: 'p',
      actions: [{ action: 'delete-pod', target: 'pod shop/web-1', status: 'done' }],
      runs: 2,
      pod: { uid: 'uid-1', containerIds: ['containerd://c1', 'containerd://c0'] },
      killedAt: '2026-12-07T10:00:02.000Z',
      dismissal: null,
    });
  });

  it("the result names no pod when validation read another one under the alert's name", () => {
    const s = state({
      pod: { uid: 'other-uid', containers: [] } as unknown as IncidentState['pod'],
      dismissal: { code: 'pod-replaced', message: 'another UID' },
    });
    s.alerts.first = { ...s.alerts.first, podUid: 'alerted-uid' };
    expect(resultSummary(s, 'dismissed')).toMatchObject({ pod: null, dismissal: 'pod-replaced' });
  });
});
