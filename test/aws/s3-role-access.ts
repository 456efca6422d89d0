/**
 * S3 as a function's role sees it. moto lets any credentials read and write any object; real S3 evaluates
 * the caller's role: its inline policies must allow the action on the object, its permissions boundary too,
 * and a change to its policies takes a moment to reach S3 (IAM is eventually consistent). Here, for calls
 * signed with credentials the front minted for a Lambda function's role (or saw issued by AssumeRole):
 *
 *   PUT object          s3:PutObject (and s3:PutObjectRetention when it sets Object Lock retention)
 *   GET / HEAD object   s3:GetObject
 *   anything else       s3:<METHOD> — which no policy here grants: denied
 *
 * Allowed when an Allow statement of an inline policy and of the boundary (if any) matches action and resource
 * (`*` globs) with its conditions (s3:ResourceAccount is moto's one account; iam-conditions.ts), no Deny matches,
 * and the role's inline policies last changed through the front more than the `rolePolicy` delay ago. Everything else (the worker's and the tests' own credentials) goes to moto unchanged.
 */
import {
  GetPolicyCommand,
  GetPolicyVersionCommand,
  GetRoleCommand,
  GetRolePolicyCommand,
  ListRolePoliciesCommand,
} from '@aws-sdk/client-iam';
import { credentialScope } from './classify.js';
import type { FrontContext, Interceptor } from './context.js';
import type { CredentialsRegistry } from './credentials.js';
import type { Reply } from './http.js';
import { evaluate, type Statement } from './iam-conditions.js';

const list = <T>(x: T | T[]): T[] => (Array.isArray(x) ? x : [x]);

export class S3RoleAccess {
  /** Role name -> when its inline policies last changed through the front. */
  private readonly changedAt = new Map<string, number>();

  constructor(
    private readonly ctx: FrontContext,
    private readonly credentials: CredentialsRegistry,
    private readonly propagationSeconds: (roleName: string) => number,
  ) {}

  readonly intercept: Interceptor = (call, req) => {
    if (call.service === 'iam' && (call.action === 'PutRolePolicy' || call.action === 'DeleteRolePolicy')) {
      const role = call.params.get('RoleName');
      if (role) this.changedAt.set(role, Date.now());
      return undefined;
    }
    if (call.service !== 's3') return undefined;
    const creds = this.credentials.get(credentialScope(req)?.accessKeyId ?? '');
    if (!creds) return undefined;
    const path = decodeURIComponent(req.path).replace(/^\/+/, '');
    const slash = path.indexOf('/');
    if (slash < 0) return Promise.resolve(denied(`${req.method} on a bucket`, creds.roleArn));
    const resource = `arn:aws:s3:::${path}`;
    const actions =
      req.method === 'PUT' && !req.query.has('retention')
        ? ['s3:PutObject', ...(req.headers['x-amz-object-lock-mode'] ? ['s3:PutObjectRetention'] : [])]
        : req.method === 'GET' || req.method === 'HEAD'
          ? ['s3:GetObject']
          : [`s3:${req.method}`];
    return this.allowed(creds.roleArn, actions, resource).then((why) => (why ? denied(why, creds.roleArn) : undefined));
  };

  /** Null when every action is allowed on the resource; else why not, as AWS would put it. */
  private async allowed(roleArn: string, actions: string[], resource: string): Promise<string | null> {
    const roleName = roleArn.slice(roleArn.lastIndexOf('/') + 1);
    const changed = this.changedAt.get(roleName);
    if (changed !== undefined && Date.now() - changed < this.propagationSeconds(roleName) * 1000) {
      return `${actions[0]} on ${resource}: the role's policies changed ${Date.now() - changed} ms ago and have not reached S3 yet`;
    }
    const iam = this.ctx.moto.iam;
    const inline: Statement[] = [];
    for (const name of (await iam.send(new ListRolePoliciesCommand({ RoleName: roleName }))).PolicyNames ?? []) {
      const doc =
        (await iam.send(new GetRolePolicyCommand({ RoleName: roleName, PolicyName: name }))).PolicyDocument ?? '{}';
      inline.push(...list((JSON.parse(decodeURIComponent(doc)) as { Statement: Statement | Statement[] }).Statement));
    }
    const boundaryArn = (await iam.send(new GetRoleCommand({ RoleName: roleName }))).Role?.PermissionsBoundary
      ?.PermissionsBoundaryArn;
    let boundary: Statement[] | undefined;
    if (boundaryArn) {
      const version = (await iam.send(new GetPolicyCommand({ PolicyArn: boundaryArn }))).Policy?.DefaultVersionId;
      const doc =
        (await iam.send(new GetPolicyVersionCommand({ PolicyArn: boundaryArn, VersionId: version }))).PolicyVersion
          ?.Document ?? '{}';
      boundary = list((JSON.parse(decodeURIComponent(doc)) as { Statement: Statement | Statement[] }).Statement);
    }
    // Every bucket in moto belongs to its one account: the role's own.
    const context = { 'aws:principalaccount': this.ctx.accountId, 's3:resourceaccount': this.ctx.accountId };
    for (const action of actions) {
      const verdict = evaluate(inline, boundary, action, resource, context);
      if (!verdict.allowed) return `${action} on ${resource} ${verdict.reason}`;
    }
    return null;
  }
}

function denied(why: string, roleArn: string): Reply {
  const message = `User: ${roleArn} is not authorized to perform ${why}`;
  const body = `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>AccessDenied</Code><Message>${message.replace(/[<>&]/g, ' ')}</Message><RequestId>front</RequestId></Error>`;
  return { status: 403, headers: { 'content-type': 'application/xml' }, body: Buffer.from(body) };
}
