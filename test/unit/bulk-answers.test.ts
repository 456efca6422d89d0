/**
 * How a bulk answer sorts what each incident says back, with a stand-in client (the whole path, with a real
 * worker and cluster, is in test/integration/cli.test.ts): refusals and closed incidents are skipped with the
 * incident's reason, other errors are failures, and never more than `atOnce` answers are in flight.
 */
import { ApplicationFailure, WorkflowNotFoundError, WorkflowUpdateFailedError, type Client } from '@temporalio/client';
import { describe, expect, it } from 'vitest';
import { answerAll, atOnceFor } from '../../client/bulk-answers.js';

type Reply = 'ok' | 'refused' | 'expired' | 'outdated' | 'closed' | 'down' | 'answered-already';

const EXPIRED =
  'proposal p2 (terminate-pod pod x) expired at 2026-12-07T12:00:00.000Z: no answer is taken after it; on expiry the incident is dismissed (policy onApprovalTimeout: dismiss)';
const OUTDATED =
  'proposal p2 (terminate-pod pod x) is outdated: the facts now call for suspend-workload Deployment shop/web (escalated by soc: confirmed); a new proposal replaces it: answer that one';

function fakeClient(replies: Record<string, Reply>, delayMs = 0) {
  const sent: { workflowId: string; update: string; args: unknown }[] = [];
  let inFlight = 0;
  let maxInFlight = 0;
  const client = {
    workflow: {
      getHandle: (workflowId: string) => ({
        query: async () => {
          inFlight++;
          maxInFlight = Math.max(maxInFlight, inFlight);
          await new Promise((r) => setTimeout(r, delayMs));
          inFlight--;
          if (replies[workflowId] === 'down') throw new Error('14 UNAVAILABLE: connection refused');
          const answered = replies[workflowId] === 'answered-already';
          return {
            run: 1,
            stage: answered ? 'remediating' : 'awaiting-approval',
            proposal: {
              id: 'p2',
              action: 'terminate-pod',
              target: 'pod x',
              answer: answered ? { answer: 'approved' } : null,
            },
          };
        },
        executeUpdate: async (update: { name: string }, { args }: { args: unknown[] }) => {
          if (replies[workflowId] === 'refused')
            throw new WorkflowUpdateFailedError(
              'Workflow Update failed',
              ApplicationFailure.create({
                message: 'p2 was superseded; p3 (suspend-workload Deployment shop/web) awaits an answer',
              }),
            );
          if (replies[workflowId] === 'expired')
            throw new WorkflowUpdateFailedError(
              'Workflow Update failed',
              ApplicationFailure.create({ type: 'ProposalExpired', message: EXPIRED }),
            );
          if (replies[workflowId] === 'outdated')
            throw new WorkflowUpdateFailedError(
              'Workflow Update failed',
              ApplicationFailure.create({ type: 'ProposalOutdated', message: OUTDATED }),
            );
          if (replies[workflowId] === 'closed')
            throw new WorkflowNotFoundError('workflow execution already completed', workflowId, undefined);
          sent.push({ workflowId, update: update.name, args: args[0] });
          return { proposalId: 'p2', answer: 'approved', action: 'terminate-pod', target: 'pod x' };
        },
      }),
    },
  } as unknown as Client;
  return { client, sent, maxInFlight: () => maxInFlight };
}

describe('answerAll', () => {
  it('answers each open proposal by its ID, skips refusals and closed incidents, and counts other errors as failures', async () => {
    const { client, sent } = fakeClient({ a: 'ok', b: 'refused', c: 'closed', d: 'down', e: 'answered-already' });
    const report = await answerAll(
      client,
      ['a', 'b', 'c', 'd', 'e'].map((workflowId) => ({ workflowId })),
      'approved',
      { by: 'ana', reason: 'campaign', atOnce: 2 },
    );
    expect(sent).toEqual([
      { workflowId: 'a', update: 'approve', args: { proposalId: 'p2', by: 'ana', reason: 'campaign' } },
    ]);
    expect(report).toMatchObject({
      total: 5,
      answered: 1,
      skipped: 3,
      failed: 1,
      notTried: 0,
      skippedBecause: { 'refused by the incident': 1, 'no longer awaiting an answer': 2 },
    });
    expect(report.samples).toEqual([
      {
        workflowId: 'b',
        result: 'skipped',
        reason: 'p2 was superseded; p3 (suspend-workload Deployment shop/web) awaits an answer',
      },
      { workflowId: 'c', result: 'skipped', reason: 'closed' },
      { workflowId: 'd', result: 'failed', reason: '14 UNAVAILABLE: connection refused' },
      { workflowId: 'e', result: 'skipped', reason: 'stage remediating, nothing awaits an answer' },
    ]);
  });

  it("counts an expired and an outdated proposal apart, with the incident's reason", async () => {
    const { client, sent } = fakeClient({ x: 'expired', y: 'outdated', z: 'expired' });
    const report = await answerAll(
      client,
      ['x', 'y', 'z'].map((workflowId) => ({ workflowId })),
      'approved',
      { by: 'ana', atOnce: 1 },
    );
    expect(sent).toEqual([]);
    expect(report).toMatchObject({
      answered: 0,
      skipped: 3,
      failed: 0,
      skippedBecause: { 'proposal expired': 2, 'proposal outdated': 1 },
    });
    expect(report.samples).toEqual([
      { workflowId: 'x', result: 'skipped', reason: EXPIRED },
      { workflowId: 'y', result: 'skipped', reason: OUTDATED },
      { workflowId: 'z', result: 'skipped', reason: EXPIRED },
    ]);
  });

  it('keeps at most atOnce answers in flight, and a stop leaves the rest untried', async () => {
    const ids = Array.from({ length: 30 }, (_, i) => ({ workflowId: `w${i}` }));
    const { client, maxInFlight } = fakeClient(
      Object.fromEntries(ids.map(({ workflowId }) => [workflowId, 'ok' as const])),
      5,
    );
    const all = await answerAll(client, ids, 'approved', { by: 'ana', atOnce: 4 });
    expect(all).toMatchObject({ answered: 30, notTried: 0 });
    expect(maxInFlight()).toBe(4);

    const stop = new AbortController();
    const stopped = await answerAll(
      fakeClient({}, 5).client,
      ids,
      'denied',
      { by: 'ana', atOnce: 3 },
      {
        stop: stop.signal,
        onProgress: (p) => p.answered === 6 && stop.abort(),
      },
    );
    // The answers in flight when it stopped finish; no new one starts.
    expect(stopped.answered).toBeGreaterThanOrEqual(6);
    expect(stopped.answered).toBeLessThanOrEqual(8);
    expect(stopped.notTried).toBe(30 - stopped.answered);
  });

  it('refuses bad options with exact errors, and derives atOnce from the cache', async () => {
    await expect(answerAll(fakeClient({}).client, [], 'approved', { by: '', atOnce: 0 })).rejects.toThrow(
      'invalid options:\n  - by: must name who is answering\n  - atOnce: Too small: expected number to be >=1',
    );
    expect([atOnceFor(0), atOnceFor(50), atOnceFor(100), atOnceFor(400)]).toEqual([1, 8, 16, 66]);
  });
});
