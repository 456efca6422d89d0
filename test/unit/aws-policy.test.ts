/**
 * The AWS permissions pod-responder needs, as shipped in deploy/aws/: every call the code makes (read from its
 * source, not from a list kept by hand) is allowed, no action is a wildcard, and each dangerous grant is bounded.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { INCIDENT_TAG, INSTALLATION_TAG, LAMBDA_VPC_POLICY_ARN, MANAGED_TAG } from '../../domain/aws-resources.js';
import { revocationDocument } from '../../domain/revocation.js';
import { REVOCABLE_TAG } from '../../domain/revocation.js';

const root = path.resolve(import.meta.dirname, '../..');

interface Statement {
  Sid?: string;
  Effect: 'Allow' | 'Deny';
  Action: string | string[];
  Resource: string | string[];
  Condition?: Record<string, Record<string, string | string[]>>;
}
interface PolicyDocument {
  Version: string;
  Statement: Statement[];
}

const list = <T>(x: T | T[]): T[] => (Array.isArray(x) ? x : [x]);
const policy = (file: string): PolicyDocument => JSON.parse(readFileSync(path.join(root, 'deploy/aws', file), 'utf8'));
const WORKER = policy('worker-policy.json');
const FORWARDER = policy('forwarder-sqs-policy.json');
const BOUNDARY = policy('function-boundary-policy.json');

/** The IAM prefix of each SDK client package. */
const PREFIX: Record<string, string> = {
  iam: 'iam',
  ec2: 'ec2',
  eks: 'eks',
  lambda: 'lambda',
  'cloudwatch-logs': 'logs',
  sqs: 'sqs',
  s3: 's3',
};
/** Operations whose IAM action has another name (AWS service authorization reference). */
const RENAMED: Record<string, string> = {
  'lambda:Invoke': 'lambda:InvokeFunction',
  'sqs:DeleteMessageBatch': 'sqs:DeleteMessage',
  'sqs:ChangeMessageVisibilityBatch': 'sqs:ChangeMessageVisibility',
  'sqs:SendMessageBatch': 'sqs:SendMessage',
  's3:GetObjectLockConfiguration': 's3:GetBucketObjectLockConfiguration',
};
/** Actions AWS also authorizes for a call, as the code makes it (tags on create, a VPC function, a passed role). */
const ALSO_AUTHORIZED: Record<string, string[]> = {
  'iam:CreateRole': ['iam:TagRole'],
  'ec2:CreateSecurityGroup': ['ec2:CreateTags'],
  'ec2:AuthorizeSecurityGroupIngress': ['ec2:CreateTags'],
  'eks:CreateAccessEntry': ['eks:TagResource'],
  // Retention set with the object (a bucket with Object Lock and no default rule).
  's3:PutObject': ['s3:PutObjectRetention'],
  'lambda:CreateFunction': [
    'iam:PassRole',
    'lambda:TagResource',
    'ec2:DescribeSecurityGroups',
    'ec2:DescribeSubnets',
    'ec2:DescribeVpcs',
  ],
};
/** What AWSLambdaVPCAccessExecutionRole grants: the boundary may allow no more. */
const VPC_EXECUTION_ROLE_ACTIONS = [
  'logs:CreateLogGroup',
  'logs:CreateLogStream',
  'logs:PutLogEvents',
  'ec2:CreateNetworkInterface',
  'ec2:DescribeNetworkInterfaces',
  'ec2:DescribeSubnets',
  'ec2:DeleteNetworkInterface',
  'ec2:AssignPrivateIpAddresses',
  'ec2:UnassignPrivateIpAddresses',
];

function sources(dir: string): string[] {
  if (dir.endsWith('.ts')) return [dir];
  return readdirSync(dir).flatMap((f) => {
    const p = path.join(dir, f);
    return statSync(p).isDirectory() ? sources(p) : f.endsWith('.ts') ? [p] : [];
  });
}

/** Every AWS SDK command the given source trees send, as IAM actions (with those AWS authorizes alongside). */
function actionsCalledBy(...dirs: string[]): string[] {
  const actions = new Set<string>();
  for (const file of dirs.flatMap((d) => sources(path.join(root, d)))) {
    const text = readFileSync(file, 'utf8');
    for (const imp of text.matchAll(/import\s*\{([^}]*)\}\s*from\s*'@aws-sdk\/client-([\w-]+)'/g)) {
      const prefix = PREFIX[imp[2]!];
      for (const name of imp[1]!.split(',').map((n) => n.trim().replace(/^type\s+/, ''))) {
        if (!name.endsWith('Command') || !new RegExp(`new ${name}\\(`).test(text)) continue;
        expect(prefix, `${path.relative(root, file)} uses @aws-sdk/client-${imp[2]}: add its IAM prefix`).toBeDefined();
        const action = `${prefix}:${name.slice(0, -'Command'.length)}`;
        for (const a of [RENAMED[action] ?? action, ...(ALSO_AUTHORIZED[action] ?? [])]) actions.add(a);
      }
    }
  }
  return [...actions].sort();
}

const statementsFor = (doc: PolicyDocument, action: string) =>
  doc.Statement.filter((s) => s.Effect === 'Allow' && list(s.Action).includes(action));
const allowed = (doc: PolicyDocument) => new Set(doc.Statement.flatMap((s) => list(s.Action)));

describe('the deployment permissions (deploy/aws/)', () => {
  // remediation/: the direct executor runs the core in the worker (its evidence writes among them).
  const worker = actionsCalledBy('activities', 'worker', 'workflows', 'remediation');
  const forwarder = actionsCalledBy('forwarder');

  it('are found from the code, which really calls AWS', () => {
    expect(worker).toEqual(
      expect.arrayContaining([
        'iam:CreateRole',
        'lambda:InvokeFunction',
        'eks:CreateAccessEntry',
        'ec2:RevokeSecurityGroupEgress',
        'iam:PassRole',
      ]),
    );
    expect(forwarder).toEqual(expect.arrayContaining(['sqs:ReceiveMessage', 'sqs:DeleteMessage']));
  });

  it('allow every AWS call the worker and the forwarder make, and nothing they do not', () => {
    expect([...allowed(WORKER)].sort()).toEqual(worker);
    expect([...allowed(FORWARDER)].sort()).toEqual(forwarder);
  });

  it('have no wildcard action, and a resource of ours for everything that writes', () => {
    for (const doc of [WORKER, FORWARDER, BOUNDARY]) {
      expect(doc.Version).toBe('2012-10-17');
      for (const s of doc.Statement) {
        expect(s.Effect).toBe('Allow');
        for (const a of list(s.Action)) expect(a, s.Sid).toMatch(/^[a-z0-9-]+:[A-Za-z]+$/);
      }
    }
    // Resource "*" only where AWS supports nothing narrower: listings and describes.
    for (const s of WORKER.Statement.filter((x) => list(x.Resource).includes('*'))) {
      for (const a of list(s.Action)) expect(a, s.Sid).toMatch(/:(List|Describe)[A-Za-z]+$/);
    }
  });

  const BOUNDARY_ARN = 'arn:aws:iam::${aws:PrincipalAccount}:policy/pod-responder-function-boundary';
  const OWNERSHIP_KEYS = [MANAGED_TAG, INSTALLATION_TAG, INCIDENT_TAG];
  const OUR_ROLES = 'arn:aws:iam::*:role/pod-responder-*';
  const only = (action: string) => {
    const found = statementsFor(WORKER, action);
    expect(found, action).toHaveLength(1);
    return found[0]!;
  };

  it('condition every IAM write on a role on the boundary or our ownership tag, never on the name alone', () => {
    const writes = [...allowed(WORKER)]
      .filter((a) => /^iam:(Create|Put|Delete|Attach|Detach|Tag|Untag|Pass|Update)/.test(a))
      .sort();
    expect(writes).toEqual([
      'iam:AttachRolePolicy',
      'iam:CreateRole',
      'iam:DeleteRole',
      'iam:DeleteRolePolicy',
      'iam:DetachRolePolicy',
      'iam:PassRole',
      'iam:PutRolePolicy',
      'iam:TagRole',
    ]);
    for (const a of writes) {
      for (const s of statementsFor(WORKER, a)) {
        const keys = Object.values(s.Condition ?? {}).flatMap((c) => Object.keys(c));
        expect(
          keys.some(
            (k) =>
              k === 'iam:PermissionsBoundary' ||
              k === `aws:ResourceTag/${MANAGED_TAG}` ||
              k === `aws:RequestTag/${MANAGED_TAG}`,
          ),
          `${a} in ${s.Sid}: conditioned on the boundary or our ownership tag (has ${keys.join(', ') || 'no condition'})`,
        ).toBe(true);
      }
    }
    // Creating: our boundary (this account's), our tag, and no tag key but ours.
    const createRole = only('iam:CreateRole');
    expect(createRole.Resource).toBe(OUR_ROLES);
    expect(createRole.Condition).toEqual({
      ArnEquals: { 'iam:PermissionsBoundary': BOUNDARY_ARN },
      StringEquals: { [`aws:RequestTag/${MANAGED_TAG}`]: 'true' },
      'ForAllValues:StringEquals': { 'aws:TagKeys': OWNERSHIP_KEYS },
    });
    // Tagging (AWS authorizes it for the tags CreateRole sets): our ownership keys only, so never the revocation opt-in.
    expect(only('iam:TagRole').Condition).toEqual({
      StringEquals: { [`aws:RequestTag/${MANAGED_TAG}`]: 'true' },
      'ForAllValues:StringEquals': { 'aws:TagKeys': OWNERSHIP_KEYS },
    });
    // Changing what a role may do: only a role under our boundary (which a role not made by CreateRole above cannot get).
    expect(only('iam:AttachRolePolicy').Condition).toEqual({
      ArnEquals: { 'iam:PolicyARN': LAMBDA_VPC_POLICY_ARN, 'iam:PermissionsBoundary': BOUNDARY_ARN },
    });
    expect(only('iam:DetachRolePolicy').Condition).toEqual(only('iam:AttachRolePolicy').Condition);
    // No inline policy is ever written on a function role (the function returns evidence; it writes nothing to S3).
    expect(statementsFor(WORKER, 'iam:PutRolePolicy').filter((s) => s.Resource === OUR_ROLES)).toEqual([]);
    const ourInline = statementsFor(WORKER, 'iam:DeleteRolePolicy').filter((s) => s.Resource === OUR_ROLES);
    expect(ourInline).toHaveLength(1);
    expect(ourInline[0]!.Condition).toEqual({ ArnEquals: { 'iam:PermissionsBoundary': BOUNDARY_ARN } });
    expect(list(ourInline[0]!.Action)).toEqual(['iam:DeleteRolePolicy']);
    // Removing and passing (no boundary condition key exists for them): our ownership tag.
    expect(only('iam:DeleteRole').Condition).toEqual({ StringEquals: { [`aws:ResourceTag/${MANAGED_TAG}`]: 'true' } });
    const passRole = only('iam:PassRole');
    expect(passRole.Resource).toBe(OUR_ROLES);
    expect(passRole.Condition).toEqual({
      StringEquals: { 'iam:PassedToService': 'lambda.amazonaws.com', [`aws:ResourceTag/${MANAGED_TAG}`]: 'true' },
    });
    // Nothing may set or remove a role's boundary.
    for (const a of [
      'iam:PutRolePermissionsBoundary',
      'iam:DeleteRolePermissionsBoundary',
      'iam:UntagRole',
      'iam:UpdateAssumeRolePolicy',
    ])
      expect(allowed(WORKER).has(a), a).toBe(false);
  });

  it('revoke sessions only on opted-in roles that carry a boundary, reading only opted-in roles', () => {
    const revocable = { [`aws:ResourceTag/${REVOCABLE_TAG.key}`]: REVOCABLE_TAG.value };
    const revocation = actionsCalledBy('activities/credentials.ts').filter((a) => a.startsWith('iam:'));
    expect(revocation.sort()).toEqual([
      'iam:DeleteRolePolicy',
      'iam:GetRole',
      'iam:GetRolePolicy',
      'iam:ListRolePolicies',
      'iam:PutRolePolicy',
    ]);
    const foreign = WORKER.Statement.filter((s) => list(s.Resource).includes('arn:aws:iam::*:role/*'));
    expect(foreign.map((s) => s.Sid)).toEqual([
      'ReadOptedInRolesForRevocation',
      'RevokeSessionsOfOptedInBoundedRolesOnly',
    ]);
    const [reads, writes] = foreign as [Statement, Statement];
    expect(reads.Condition).toEqual({ StringEquals: revocable });
    expect(list(reads.Action).sort()).toEqual(['iam:GetRole', 'iam:GetRolePolicy', 'iam:ListRolePolicies']);
    // IAM cannot limit what an inline policy says: the role's own boundary caps what one could grant it.
    expect(writes.Condition).toEqual({ StringEquals: revocable, Null: { 'iam:PermissionsBoundary': 'false' } });
    expect(list(writes.Action).sort()).toEqual(['iam:DeleteRolePolicy', 'iam:PutRolePolicy']);
    // Anywhere else these calls are granted, it is on our own roles only.
    for (const a of revocation) {
      for (const s of statementsFor(WORKER, a).filter((x) => !foreign.includes(x)))
        expect(s.Resource, `${a} in ${s.Sid}`).toBe(OUR_ROLES);
    }
  });

  it('bound the other grants that could escalate', () => {
    const entry = only('eks:CreateAccessEntry');
    expect(entry.Condition?.['ArnLike']).toEqual({ 'eks:principalArn': 'arn:aws:iam::*:role/pod-responder-*' });
    expect(entry.Condition?.['ForAllValues:StringLike']).toEqual({
      'eks:kubernetesGroups': ['pod-responder:remediator', 'pod-responder:remediator:*'],
    });
    // No EKS access policy is ever associated: the function's rights are RBAC on its groups (deploy/kubernetes/).
    expect(allowed(WORKER).has('eks:AssociateAccessPolicy')).toBe(false);
    expect(only('lambda:CreateFunction').Condition).toEqual({ Null: { 'lambda:VpcIds': 'false' } });
    for (const a of ['ec2:DeleteSecurityGroup', 'ec2:RevokeSecurityGroupEgress']) {
      expect(only(a).Condition).toEqual({ StringEquals: { 'aws:ResourceTag/pod-responder:managed': 'true' } });
    }
    expect(only('eks:ListPodIdentityAssociations').Resource).toBe('arn:aws:eks:*:*:cluster/*');
    expect(only('eks:DescribePodIdentityAssociation').Resource).toBe('arn:aws:eks:*:*:podidentityassociation/*/*');
  });

  it('grant S3 only in the configured bucket of our own account', () => {
    const s3 = WORKER.Statement.filter((s) => list(s.Action).some((a) => a.startsWith('s3:')));
    expect(s3.length).toBeGreaterThan(0);
    for (const s of s3) {
      for (const r of list(s.Resource))
        expect(r, s.Sid).toMatch(/^arn:aws:s3:::EVIDENCE_BUCKET(\/pod-responder\/\*)?$/);
      expect(s.Condition, s.Sid).toEqual({ StringEquals: { 's3:ResourceAccount': '${aws:PrincipalAccount}' } });
    }
    expect(only('s3:PutObject').Resource).toBe('arn:aws:s3:::EVIDENCE_BUCKET/pod-responder/*');
    expect(only('s3:GetBucketObjectLockConfiguration').Resource).toBe('arn:aws:s3:::EVIDENCE_BUCKET');
  });

  it('bound every function role to what a VPC function needs, whatever is attached to it: no S3, nothing else', () => {
    // The function returns what it read to the worker, which writes the evidence: its role needs no S3 at all.
    expect([...allowed(BOUNDARY)].sort()).toEqual([...VPC_EXECUTION_ROLE_ACTIONS].sort());
  });

  it('write no wildcard action into any policy but the revocation, which is a Deny of sessions issued before T', () => {
    const written = ['activities', 'domain', 'remediation', 'workflows', 'worker', 'config']
      .flatMap((d) => sources(path.join(root, d)))
      .filter((f) => /Action:\s*(\[\s*)?'\*'/.test(readFileSync(f, 'utf8')))
      .map((f) => path.relative(root, f));
    expect(written).toEqual(['domain/revocation.ts']);
    const revocation = JSON.parse(revocationDocument('2026-11-28T12:00:00Z')) as PolicyDocument;
    expect(revocation.Statement).toEqual([
      {
        Sid: expect.any(String),
        Effect: 'Deny',
        Action: '*',
        Resource: '*',
        Condition: { DateLessThan: { 'aws:TokenIssueTime': '2026-11-28T12:00:00Z' } },
      },
    ]);
  });
});
