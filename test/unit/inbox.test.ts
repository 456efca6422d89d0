import { describe, expect, it } from 'vitest';
import { formatInbox, inboxQuery } from '../../client/inbox.js';
import { inputErrorsOf } from '../support/input-errors.js';

describe('inbox query', () => {
  const now = Date.parse('2026-11-28T12:00:00Z');
  it('turns filters into the visibility query the Temporal UI takes too', () => {
    expect(inboxQuery({}, now)).toBe(`WorkflowType = 'maliciousPodResponse'`);
    expect(inboxQuery({ stage: 'awaiting-approval', cluster: 'prod-eu', namespace: 'shop', since: '2h' }, now)).toBe(
      `WorkflowType = 'maliciousPodResponse' AND PodResponderStage = 'awaiting-approval' AND PodResponderCluster = 'prod-eu' AND PodResponderNamespace = 'shop' AND StartTime > '2026-11-28T10:00:00.000Z'`,
    );
    expect(inboxQuery({ outcome: 'needs-manual-action', since: '2026-11-27T00:00:00+01:00' }, now)).toBe(
      `WorkflowType = 'maliciousPodResponse' AND PodResponderOutcome = 'needs-manual-action' AND StartTime > '2026-11-26T23:00:00.000Z'`,
    );
  });

  it.each<[string, object, string]>([
    ['unknown stage', { stage: 'waiting' }, 'stage: Invalid option: expected one of'],
    ['a quote in a namespace', { namespace: "shop' OR 1=1" }, 'namespace: must be a DNS-1123 label'],
    [
      'a since that is neither',
      { since: 'yesterday' },
      'since: must be a duration (30m, 12h, 7d) or an ISO 8601 time with its offset',
    ],
  ])('%s -> exact error, no query', (_n, filters, message) => {
    expect(inputErrorsOf(() => inboxQuery(filters)).some((e) => e.startsWith(message))).toBe(true);
  });

  it('prints a table with a dash for what an incident does not have yet', () => {
    const row = {
      workflowId: 'pod-incident:local:shop:miner',
      status: 'RUNNING',
      stage: 'awaiting-approval',
      outcome: '',
      cluster: 'local',
      namespace: 'shop',
      pod: 'miner',
      workload: '',
      started: '2026-11-28T11:00:00.000Z',
    };
    expect(formatInbox([row]).split('\n')[1]).toBe(
      '2026-11-28T11:00:00.000Z  awaiting-approval  -        local    shop       miner  -         pod-incident:local:shop:miner',
    );
    expect(formatInbox([])).toBe('no incidents match\n');
  });
});
