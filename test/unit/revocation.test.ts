import { describe, expect, it } from 'vitest';
import {
  parseRoleArn,
  REVOCATION_PREFIX,
  revocationDocument,
  revocationPolicyName,
  revocationTime,
  revokedBefore,
  spentRevocations,
  undoRevocationCommand,
} from '../../domain/revocation.js';

const T = '2026-11-27T10:00:00Z';
const HOUR = 3600 * 1000;

describe('the revocation policy', () => {
  it('denies everything to sessions issued before T, exactly as AWS documents it', () => {
    expect(JSON.parse(revocationDocument(T))).toEqual({
      Version: '2012-10-17',
      Statement: [
        {
          Sid: 'PodResponderRevokeOlderSessions',
          Effect: 'Deny',
          Action: '*',
          Resource: '*',
          Condition: { DateLessThan: { 'aws:TokenIssueTime': T } },
        },
      ],
    });
    // The same T gives the same bytes: a retried activity writes what the first attempt wrote.
    expect(revocationDocument(T)).toBe(revocationDocument(T));
    expect(() => revocationDocument('2026-11-27T10:00:00.123Z')).toThrow(/to the second/);
  });

  it('T is the next whole second, in UTC without a fraction', () => {
    expect(revocationTime(Date.parse('2026-11-27T10:00:00.001Z'))).toBe('2026-11-27T10:00:01Z');
    expect(revocationTime(Date.parse(T))).toBe(T);
  });

  it('is named from the incident chain: stable, distinct per incident, within IAM limits', () => {
    const a = revocationPolicyName('pod-incident:local:shop:miner', 'run-1');
    expect(a).toBe(revocationPolicyName('pod-incident:local:shop:miner', 'run-1'));
    expect(a).not.toBe(revocationPolicyName('pod-incident:local:shop:miner', 'run-2'));
    expect(a).toMatch(new RegExp(`^${REVOCATION_PREFIX}[0-9a-f]{16}$`));
    expect(a.length).toBeLessThanOrEqual(128);
  });

  it("is recognised as ours by name and content, in any key order and in IAM's URL-encoded form", () => {
    const name = revocationPolicyName('i', 'r');
    expect(revokedBefore(name, revocationDocument(T))).toBe(T);
    expect(revokedBefore(name, encodeURIComponent(revocationDocument(T)))).toBe(T);
    const reordered = JSON.stringify({
      Statement: {
        Condition: { DateLessThan: { 'aws:TokenIssueTime': T } },
        Resource: ['*'],
        Action: ['*'],
        Effect: 'Deny',
      },
      Version: '2012-10-17',
    });
    expect(revokedBefore(name, reordered)).toBe(T);
  });

  it("is never mistaken for someone else's policy", () => {
    const name = revocationPolicyName('i', 'r');
    const doc = JSON.parse(revocationDocument(T));
    const s = doc.Statement[0];
    const variant = (statement: unknown) => JSON.stringify({ ...doc, Statement: [statement] });
    expect(revokedBefore('AWSRevokeOlderSessions', revocationDocument(T))).toBeNull(); // not our name
    expect(revokedBefore(name, variant({ ...s, Effect: 'Allow' }))).toBeNull();
    expect(revokedBefore(name, variant({ ...s, Action: 's3:*' }))).toBeNull();
    expect(revokedBefore(name, variant({ ...s, Resource: 'arn:aws:s3:::b/*' }))).toBeNull();
    expect(revokedBefore(name, variant({ ...s, Sid: 'Theirs' }))).toBeNull();
    expect(revokedBefore(name, variant({ ...s, NotAction: 'iam:*' }))).toBeNull();
    expect(
      revokedBefore(
        name,
        variant({
          ...s,
          Condition: { DateLessThan: { 'aws:TokenIssueTime': T }, Bool: { 'aws:MultiFactorAuthPresent': 'false' } },
        }),
      ),
    ).toBeNull();
    expect(revokedBefore(name, variant({ ...s, Condition: { DateLessThan: { 'aws:CurrentTime': T } } }))).toBeNull();
    expect(
      revokedBefore(name, variant({ ...s, Condition: { DateLessThan: { 'aws:TokenIssueTime': 'soon' } } })),
    ).toBeNull();
    expect(revokedBefore(name, JSON.stringify({ ...doc, Statement: [s, s] }))).toBeNull();
    expect(revokedBefore(name, '{not json')).toBeNull();
  });
});

describe('pruning', () => {
  const now = Date.parse(T);
  const ours = (id: string, t: string) => ({ name: revocationPolicyName(id, 'r'), document: revocationDocument(t) });
  const iso = (ms: number) => new Date(ms).toISOString().replace('.000Z', 'Z');

  it('removes only our revocations whose T is more than 12 h past: every session they deny has expired', () => {
    const spent = ours('old', iso(now - 13 * HOUR));
    const edge = ours('edge', iso(now - 12 * HOUR));
    const live = ours('live', iso(now - 11 * HOUR));
    const theirs = {
      name: 'app-access',
      document: JSON.stringify({
        Version: '2012-10-17',
        Statement: [{ Effect: 'Allow', Action: 's3:GetObject', Resource: '*' }],
      }),
    };
    const lookalike = {
      name: `${REVOCATION_PREFIX}0000000000000000`,
      document: JSON.stringify({ Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: '*', Resource: '*' }] }),
    };
    expect(spentRevocations([spent, edge, live, theirs, lookalike], now, 'new')).toEqual([spent.name]);
  });

  it('never prunes the policy being put, however old its T', () => {
    const mine = ours('mine', iso(now - 48 * HOUR));
    expect(spentRevocations([mine], now, mine.name)).toEqual([]);
  });
});

describe('role ARNs', () => {
  it('are parsed with their path and account; anything else is not a role', () => {
    expect(parseRoleArn('arn:aws:iam::123456789012:role/miner-app')).toEqual({
      partition: 'aws',
      account: '123456789012',
      path: '/',
      name: 'miner-app',
    });
    expect(parseRoleArn('arn:aws-cn:iam::123456789012:role/team/a/app')).toEqual({
      partition: 'aws-cn',
      account: '123456789012',
      path: '/team/a/',
      name: 'app',
    });
    for (const bad of [
      '',
      'miner-app',
      'arn:aws:iam::123456789012:user/bob',
      'arn:aws:iam::1234:role/x',
      'arn:aws:iam::123456789012:role/a b',
    ])
      expect(parseRoleArn(bad), bad).toBeNull();
  });

  it('give the exact command that undoes a revocation by hand', () => {
    expect(undoRevocationCommand('app', 'pod-responder-revoke-0123')).toBe(
      'aws iam delete-role-policy --role-name app --policy-name pod-responder-revoke-0123',
    );
  });
});
