/**
 * IAM as the worker's role sees it. moto lets any credentials do anything; real AWS evaluates the caller's
 * policies, conditions included. Here, for calls signed with credentials the front saw issued (AssumeRole through
 * it, or minted for a function's role: the stack's worker runs as the role `pod-responder-worker`, whose inline
 * policy is deploy/aws/worker-policy.json):
 *
 *   every IAM call          iam:<Action> on the role it names (or `role/` for listings), with the keys IAM sets:
 *                           aws:ResourceTag/* (the role's tags), iam:PermissionsBoundary (the requested boundary
 *                           on CreateRole; the role's own on Put/Delete/Attach/DetachRolePolicy), iam:PolicyARN,
 *                           aws:RequestTag/* and aws:TagKeys (CreateRole, TagRole; CreateRole with tags is also
 *                           authorized as iam:TagRole, with the request's tags and no resource tags)
 *   lambda:CreateFunction   iam:PassRole on its role, with iam:PassedToService and the role's tags
 *
 * against the caller's inline and attached policies and its permissions boundary (iam-conditions.ts). Refused:
 * 403 AccessDenied (AccessDeniedException for Lambda) naming the action, resource and reason, as AWS does. Other
 * services' calls, and calls with the stack's own keys, go to moto unchanged.
 */
import {
  GetPolicyCommand,
  GetPolicyVersionCommand,
  GetRoleCommand,
  GetRolePolicyCommand,
  ListAttachedRolePoliciesCommand,
  ListRolePoliciesCommand,
  type Role,
} from '@aws-sdk/client-iam';
import { awsError } from './aws-errors.js';
import { credentialScope, type Classified } from './classify.js';
import type { FrontContext, Interceptor } from './context.js';
import type { CredentialsRegistry } from './credentials.js';
import { evaluate, statementsOf, type RequestContext, type Statement } from './iam-conditions.js';
import type { InboundRequest, Reply } from './http.js';

/** Actions whose request context carries iam:PermissionsBoundary: the role's current boundary. */
const BOUNDARY_OF_THE_ROLE = new Set([
  'PutRolePolicy',
  'DeleteRolePolicy',
  'AttachRolePolicy',
  'DetachRolePolicy',
  'DeleteRolePermissionsBoundary',
]);
const POLICY_ARN_KEYED = new Set(['AttachRolePolicy', 'DetachRolePolicy']);

interface Check {
  action: string;
  resource: string;
  ctx: RequestContext;
}

export class IamAuthorization {
  constructor(
    private readonly ctx: FrontContext,
    private readonly credentials: CredentialsRegistry,
  ) {}

  readonly intercept: Interceptor = (call, req) => {
    if (call.service !== 'iam' && !(call.service === 'lambda' && call.action === 'CreateFunction')) return undefined;
    const creds = this.credentials.get(credentialScope(req)?.accessKeyId ?? '');
    if (!creds) return undefined;
    return this.authorize(call, req, creds.roleArn);
  };

  private async authorize(call: Classified, req: InboundRequest, principalArn: string): Promise<Reply | undefined> {
    const checks = call.service === 'iam' ? await this.iamChecks(call) : await this.passRoleCheck(req);
    if (!checks.length) return undefined;
    const { identity, boundary } = await this.policiesOf(principalArn);
    for (const c of checks) {
      const ctx: RequestContext = {
        'aws:principalaccount': this.ctx.accountId,
        'aws:principalarn': principalArn,
        ...c.ctx,
      };
      const result = evaluate(identity, boundary, c.action, c.resource, ctx);
      if (result.allowed) continue;
      const session = principalArn.replace(':iam::', ':sts::').replace(':role/', ':assumed-role/') + '/session';
      const message = `User: ${session} is not authorized to perform: ${c.action} on resource: ${c.resource} ${result.reason}`;
      this.ctx.log(`[aws-front] ${call.service}:${call.action} refused by IAM: ${message}`);
      return awsError(
        call.protocol,
        call.service,
        403,
        call.service === 'lambda' ? 'AccessDeniedException' : 'AccessDenied',
        message,
      );
    }
    return undefined;
  }

  private async iamChecks(call: Classified): Promise<Check[]> {
    const p = call.params;
    const name = p.get('RoleName');
    if (!name)
      return [
        {
          action: `iam:${call.action}`,
          resource: p.get('PolicyArn') ?? `arn:aws:iam::${this.ctx.accountId}:role/`,
          ctx: {},
        },
      ];
    const role = await this.role(name);
    const resource = role?.Arn ?? `arn:aws:iam::${this.ctx.accountId}:role${p.get('Path') ?? '/'}${name}`;
    const ctx: RequestContext = { ...resourceTags(role) };
    if (POLICY_ARN_KEYED.has(call.action) && p.get('PolicyArn')) ctx['iam:policyarn'] = p.get('PolicyArn')!;
    if (BOUNDARY_OF_THE_ROLE.has(call.action) && role?.PermissionsBoundary?.PermissionsBoundaryArn)
      ctx['iam:permissionsboundary'] = role.PermissionsBoundary.PermissionsBoundaryArn;
    const requested = requestTags(p);
    if (call.action === 'CreateRole') {
      const created: RequestContext = {
        ...requested,
        ...(p.get('PermissionsBoundary') ? { 'iam:permissionsboundary': p.get('PermissionsBoundary')! } : {}),
      };
      const checks: Check[] = [{ action: 'iam:CreateRole', resource, ctx: created }];
      // Tags set on create are authorized as TagRole too, on a role that has no tags yet.
      if (requested['aws:tagkeys']?.length) checks.push({ action: 'iam:TagRole', resource, ctx: requested });
      return checks;
    }
    if (call.action === 'TagRole') Object.assign(ctx, requested);
    if (call.action === 'UntagRole') ctx['aws:tagkeys'] = members(p, 'TagKeys');
    return [{ action: `iam:${call.action}`, resource, ctx }];
  }

  private async passRoleCheck(req: InboundRequest): Promise<Check[]> {
    const roleArn = (JSON.parse(req.body.toString('utf8') || '{}') as { Role?: string }).Role;
    if (!roleArn) return [];
    const role = await this.role(roleArn.slice(roleArn.lastIndexOf('/') + 1));
    return [
      {
        action: 'iam:PassRole',
        resource: roleArn,
        ctx: { 'iam:passedtoservice': 'lambda.amazonaws.com', ...resourceTags(role) },
      },
    ];
  }

  private async role(name: string): Promise<Role | undefined> {
    try {
      return (await this.ctx.moto.iam.send(new GetRoleCommand({ RoleName: name }))).Role;
    } catch (err) {
      if ((err as Error).name === 'NoSuchEntityException' || (err as Error).name === 'NoSuchEntity') return undefined;
      throw err;
    }
  }

  /** The caller's inline and attached policies, and its boundary, as moto holds them now. */
  private async policiesOf(
    principalArn: string,
  ): Promise<{ identity: Statement[]; boundary: Statement[] | undefined }> {
    const iam = this.ctx.moto.iam;
    const roleName = principalArn.slice(principalArn.lastIndexOf('/') + 1);
    const identity: Statement[] = [];
    for (const name of (await iam.send(new ListRolePoliciesCommand({ RoleName: roleName }))).PolicyNames ?? []) {
      identity.push(
        ...statementsOf(
          (await iam.send(new GetRolePolicyCommand({ RoleName: roleName, PolicyName: name }))).PolicyDocument,
        ),
      );
    }
    for (const attached of (await iam.send(new ListAttachedRolePoliciesCommand({ RoleName: roleName })))
      .AttachedPolicies ?? []) {
      identity.push(...(await this.managed(attached.PolicyArn!)));
    }
    const boundaryArn = (await this.role(roleName))?.PermissionsBoundary?.PermissionsBoundaryArn;
    return { identity, boundary: boundaryArn ? await this.managed(boundaryArn) : undefined };
  }

  private async managed(arn: string): Promise<Statement[]> {
    const iam = this.ctx.moto.iam;
    const version = (await iam.send(new GetPolicyCommand({ PolicyArn: arn }))).Policy?.DefaultVersionId;
    return statementsOf(
      (await iam.send(new GetPolicyVersionCommand({ PolicyArn: arn, VersionId: version }))).PolicyVersion?.Document,
    );
  }
}

function resourceTags(role: Role | undefined): RequestContext {
  return Object.fromEntries((role?.Tags ?? []).map((t) => [`aws:resourcetag/${t.Key!.toLowerCase()}`, t.Value ?? '']));
}

/** `Tags.member.N.Key/Value` as aws:RequestTag/* and aws:TagKeys. */
function requestTags(p: URLSearchParams): RequestContext {
  const ctx: RequestContext = {};
  const keys: string[] = [];
  for (let i = 1; p.has(`Tags.member.${i}.Key`); i++) {
    const key = p.get(`Tags.member.${i}.Key`)!;
    keys.push(key);
    ctx[`aws:requesttag/${key.toLowerCase()}`] = p.get(`Tags.member.${i}.Value`) ?? '';
  }
  if (keys.length) ctx['aws:tagkeys'] = keys;
  return ctx;
}

function members(p: URLSearchParams, name: string): string[] {
  const out: string[] = [];
  for (let i = 1; p.has(`${name}.member.${i}`); i++) out.push(p.get(`${name}.member.${i}`)!);
  return out;
}
