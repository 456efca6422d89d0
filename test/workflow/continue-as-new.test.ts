/**
 * Continue-as-new under a flood: an incident awaiting approval takes hundreds of alerts, continues as new when its
 * run's history reaches historyEventsPerRun, and the next run carries everything: the open proposal (still
 * answerable), the exact count, and the alert-ID ledger (a resend of an ID seen in an earlier run is a duplicate).
 */
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { PodAlert } from '../../domain/alert.js';
import { alertAt } from './fake-cluster.js';
import { startTestServer, withIncident } from './env.js';
import { closedStatus } from '../support/closed-status.js';

let env: TestWorkflowEnvironment;
beforeAll(async () => {
  env = await startTestServer();
});
afterAll(async () => {
  await env?.teardown();
});

it('carries the proposal, the alert count and the ledger across continue-as-new', async () => {
  const policy = {
    requireApprovalFor: ['suspend-workload' as const],
    historyEventsPerRun: 100,
    holdSuspensionSeconds: 3600,
    holdCheckSeconds: 0,
  };
  await withIncident(env, { alert: { severity: 'critical' }, policy }, async (i) => {
    const waiting = await i.untilStage('awaiting-approval');
    expect(waiting.run).toBe(1);
    const now = await env.currentTimeMs();
    const flood: PodAlert[] = Array.from({ length: 300 }, () => alertAt(now));
    // 60 signals of 5: each signal is a history event, so the run passes 100 events and continues as new.
    for (let b = 0; b < flood.length; b += 5) await i.handle.signal('alerts', flood.slice(b, b + 5));
    const deadline = Date.now() + 10_000;
    let s = await i.status();
    while (s.run < 2 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 50));
      s = await i.status();
    }
    expect(s.run).toBeGreaterThanOrEqual(2);
    expect(s.timeline.some((t) => t.event === 'continued-as-new')).toBe(true);
    // The ledger came along: IDs seen in the first run are duplicates now.
    await i.handle.signal('alerts', flood.slice(0, 20));
    const answered = await i.handle.executeUpdate('approve', {
      args: [{ proposalId: waiting.proposal!.id, by: 'analyst' }],
    });
    expect(answered).toMatchObject({ proposalId: 'p1', answer: 'approved', action: 'suspend-workload' });
    const result = await closedStatus(i.handle);
    expect(result.outcome).toBe('workload-suspended');
    expect(result.alerts).toMatchObject({ count: 301, duplicates: 20, invalid: 0, otherPods: 0 });
    expect(result.alerts.recent).toHaveLength(5);
    expect(result.proposal).toMatchObject({ id: 'p1', answer: { answer: 'approved', by: 'analyst' } });
    expect(result.pastProposals).toEqual([]);
    // One suspension, one kill, whatever the number of runs.
    expect(i.cluster.ops().filter((op) => op === 'terminate-pod' || op === 'suspend-workload')).toEqual([
      'terminate-pod',
      'suspend-workload',
    ]);
  });
});
