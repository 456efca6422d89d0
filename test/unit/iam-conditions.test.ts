/**
 * The test front's IAM evaluation (test/aws/iam-conditions.ts) on the shipped worker policy: what the front lets
 * the worker's role do must be what IAM would, so these are IAM's rules on the requests that matter.
 */
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { evaluate, statementsOf, type RequestContext } from '../aws/iam-conditions.js';

const root = path.resolve(import.meta.dirname, '../..');
const WORKER = statementsOf(
  readFileSync(path.join(root, 'deploy/aws/worker-policy.json'), 'utf8').replaceAll('EVIDENCE_BUCKET', 'evidence'),
);
const ACCOUNT = '123456789012';
const BOUNDARY = `arn:aws:iam::${ACCOUNT}:policy/pod-responder-function-boundary`;
const role = (name: string) => `arn:aws:iam::${ACCOUNT}:role/${name}`;
const ctx = (extra: RequestContext): RequestContext => ({ 'aws:principalaccount': ACCOUNT, ...extra });
const ours = { 'aws:resourcetag/pod-responder:managed': 'true' };
const can = (action: string, resource: string, extra: RequestContext = {}) =>
  evaluate(WORKER, undefined, action, resource, ctx(extra)).allowed;

describe('the worker policy, as the front evaluates it', () => {
  it('writes no inline policy on a role of the prefix, and removes one only from a role under our boundary', () => {
    expect(can('iam:PutRolePolicy', role('pod-responder-worker'))).toBe(false);
    expect(can('iam:PutRolePolicy', role('pod-responder-worker'), ours)).toBe(false);
    expect(
      can('iam:PutRolePolicy', role('pod-responder-abc-s1'), { ...ours, 'iam:permissionsboundary': BOUNDARY }),
    ).toBe(false);
    expect(can('iam:DeleteRolePolicy', role('pod-responder-worker'), ours)).toBe(false);
    expect(
      can('iam:DeleteRolePolicy', role('pod-responder-abc-s1'), { ...ours, 'iam:permissionsboundary': BOUNDARY }),
    ).toBe(true);
    expect(
      can('iam:AttachRolePolicy', role('pod-responder-abc-s1'), {
        'iam:permissionsboundary': BOUNDARY,
        'iam:policyarn': 'arn:aws:iam::aws:policy/service-role/AWSLambdaVPCAccessExecutionRole',
      }),
    ).toBe(true);
    // Our boundary's name in another account is not ours.
    expect(
      can('iam:DeleteRolePolicy', role('pod-responder-abc-s1'), {
        'iam:permissionsboundary': BOUNDARY.replace(ACCOUNT, '210987654321'),
      }),
    ).toBe(false);
    expect(evaluate(WORKER, undefined, 'iam:PutRolePolicy', role('pod-responder-worker'), ctx({})).reason).toBe(
      'because no identity-based policy allows the iam:PutRolePolicy action',
    );
  });

  it('creates roles only with the boundary and only our tag keys, and tags only with those', () => {
    const tags = {
      'aws:requesttag/pod-responder:managed': 'true',
      'aws:tagkeys': ['pod-responder:managed', 'pod-responder:installation', 'pod-responder:incident'],
    };
    expect(can('iam:CreateRole', role('pod-responder-abc-s1'), { ...tags, 'iam:permissionsboundary': BOUNDARY })).toBe(
      true,
    );
    expect(can('iam:CreateRole', role('pod-responder-abc-s1'), tags)).toBe(false);
    expect(
      can('iam:CreateRole', role('pod-responder-abc-s1'), {
        ...tags,
        'aws:tagkeys': [...tags['aws:tagkeys'], 'pod-responder.io/revocable'],
        'iam:permissionsboundary': BOUNDARY,
      }),
    ).toBe(false);
    expect(can('iam:TagRole', role('pod-responder-abc-s1'), tags)).toBe(true);
    expect(
      can('iam:TagRole', role('shop-app'), {
        'aws:requesttag/pod-responder.io/revocable': 'true',
        'aws:tagkeys': ['pod-responder.io/revocable'],
      }),
    ).toBe(false);
  });

  it('passes and deletes only roles tagged ours, and passes them to Lambda only', () => {
    expect(
      can('iam:PassRole', role('pod-responder-abc-s1'), { ...ours, 'iam:passedtoservice': 'lambda.amazonaws.com' }),
    ).toBe(true);
    expect(can('iam:PassRole', role('pod-responder-abc-s1'), { 'iam:passedtoservice': 'lambda.amazonaws.com' })).toBe(
      false,
    );
    expect(
      can('iam:PassRole', role('pod-responder-abc-s1'), { ...ours, 'iam:passedtoservice': 'ec2.amazonaws.com' }),
    ).toBe(false);
    expect(can('iam:DeleteRole', role('pod-responder-abc-s1'), ours)).toBe(true);
    expect(can('iam:DeleteRole', role('pod-responder-worker'))).toBe(false);
  });

  it('revokes only on opted-in roles that carry a boundary; reads opted-in roles', () => {
    const optedIn = { 'aws:resourcetag/pod-responder.io/revocable': 'true' };
    expect(can('iam:GetRole', role('shop-app'), optedIn)).toBe(true);
    expect(can('iam:GetRole', role('shop-app'))).toBe(false);
    expect(can('iam:PutRolePolicy', role('shop-app'), optedIn)).toBe(false);
    expect(
      can('iam:PutRolePolicy', role('shop-app'), {
        ...optedIn,
        'iam:permissionsboundary': `arn:aws:iam::${ACCOUNT}:policy/shop-boundary`,
      }),
    ).toBe(true);
  });

  it('writes evidence only in the configured bucket of its own account', () => {
    const own = { 's3:resourceaccount': ACCOUNT };
    expect(can('s3:PutObject', 'arn:aws:s3:::evidence/pod-responder/c/ns/pod/run/manifest.json', own)).toBe(true);
    expect(can('s3:PutObject', 'arn:aws:s3:::attacker/pod-responder/x', own)).toBe(false);
    expect(can('s3:PutObject', 'arn:aws:s3:::evidence/pod-responder/x', { 's3:resourceaccount': '210987654321' })).toBe(
      false,
    );
    expect(can('s3:PutObject', 'arn:aws:s3:::evidence/other/x', own)).toBe(false);
  });

  it('refuses to pass a condition it cannot evaluate', () => {
    const odd = [
      {
        Effect: 'Allow' as const,
        Action: 'iam:GetRole',
        Resource: '*',
        Condition: { NumericLessThan: { 'aws:MultiFactorAuthAge': '3600' } },
      },
    ];
    expect(() => evaluate(odd, undefined, 'iam:GetRole', role('x'), ctx({}))).toThrow(
      'the test front does not evaluate the condition operator NumericLessThan',
    );
  });
});
