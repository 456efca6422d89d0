/**
 * Cutting a pod's cloud credentials: the inline policy that denies an IAM role every session issued before a
 * time T (`aws:TokenIssueTime`, AWS's documented way to revoke a role's older sessions), how it is named, how
 * one of ours is recognised, and which of ours are spent. Pure, with no Node API: workflow code uses it too.
 */
import { fnv1a64 } from './aws-resources.js';

/** Every revocation policy's name starts with it; nothing else on a role is ever deleted. */
export const REVOCATION_PREFIX = 'pod-responder-revoke-';
/** The opt-in on the role: the worker touches no role without it (and its IAM policy demands it too). */
export const REVOCABLE_TAG = { key: 'pod-responder.io/revocable', value: 'true' } as const;
/**
 * An IAM role session lasts at most 12 hours (MaxSessionDuration), so 12 hours after T no session a policy
 * denies can still be in use: the policy is spent, and pruning it keeps the role under IAM's inline-policy quota.
 */
export const SPENT_AFTER_MS = 12 * 3600 * 1000;
/** The IRSA annotation on a ServiceAccount. */
export const IRSA_ANNOTATION = 'eks.amazonaws.com/role-arn';

const SID = 'PodResponderRevokeOlderSessions';
const ROLE_ARN = /^arn:(aws[\w-]*):iam::(\d{12}):role\/((?:[\w+=,.@-]+\/)*)([\w+=,.@-]{1,64})$/;
const ISO_SECONDS = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$/;

export interface RoleArnParts {
  partition: string;
  account: string;
  /** `/` or `/path/`. */
  path: string;
  name: string;
}

/** The parts of an IAM role ARN; null when it is not one (an annotation can hold anything). */
export function parseRoleArn(arn: string): RoleArnParts | null {
  const m = ROLE_ARN.exec(arn);
  return m ? { partition: m[1]!, account: m[2]!, path: `/${m[3]!}`, name: m[4]! } : null;
}

/**
 * One name per incident (the chain of runs, not the pod: a later incident about a pod of the same name gets
 * its own), so a retried activity writes the same policy and `restore` removes exactly this incident's.
 */
export function revocationPolicyName(incidentId: string, firstRunId: string): string {
  return `${REVOCATION_PREFIX}${fnv1a64(`${incidentId}\n${firstRunId}`)}`;
}

/** T: the next whole second (AWS's examples carry no fraction), so a session issued at this instant is denied too. */
export function revocationTime(nowMs: number): string {
  return new Date(Math.ceil(nowMs / 1000) * 1000).toISOString().replace('.000Z', 'Z');
}

/**
 * The inline policy: deny everything to any session of the role issued before T. The one wildcard action the
 * project writes, and deliberately: it is a Deny, it grants nothing, and a narrower list would leave the stolen
 * sessions whatever it forgot (it is AWS's own AWSRevokeOlderSessions policy). test/unit/aws-policy.test.ts keeps
 * it the only one.
 */
export function revocationDocument(notBefore: string): string {
  if (!ISO_SECONDS.test(notBefore)) throw new Error(`not a UTC time to the second: ${notBefore}`);
  return JSON.stringify({
    Version: '2012-10-17',
    Statement: [
      {
        Sid: SID,
        Effect: 'Deny',
        Action: '*',
        Resource: '*',
        Condition: { DateLessThan: { 'aws:TokenIssueTime': notBefore } },
      },
    ],
  });
}

/** IAM answers GetRolePolicy with the document URL-encoded (RFC 3986); moto and older tools do not. */
export function decodePolicyDocument(document: string): unknown {
  for (const text of [document, safeDecode(document)]) {
    try {
      return JSON.parse(text);
    } catch {
      /* try the next form */
    }
  }
  return null;
}

const safeDecode = (s: string): string => {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
};

const isStar = (v: unknown) => v === '*' || (Array.isArray(v) && v.length === 1 && v[0] === '*');

/**
 * T of a revocation policy of ours: our name prefix and exactly our document (one Deny of everything before a
 * time), whatever the key order or IAM's encoding. Null for anything else, which is never deleted.
 */
export function revokedBefore(policyName: string, document: string): string | null {
  if (!policyName.startsWith(REVOCATION_PREFIX)) return null;
  const doc = decodePolicyDocument(document) as { Version?: unknown; Statement?: unknown } | null;
  if (!doc || typeof doc !== 'object' || doc.Version !== '2012-10-17') return null;
  const statements = Array.isArray(doc.Statement) ? doc.Statement : [doc.Statement];
  if (statements.length !== 1) return null;
  const s = statements[0] as Record<string, unknown> | null;
  if (!s || typeof s !== 'object') return null;
  const keys = Object.keys(s).sort().join(',');
  if (keys !== 'Action,Condition,Effect,Resource' && keys !== 'Action,Condition,Effect,Resource,Sid') return null;
  if (s['Effect'] !== 'Deny' || !isStar(s['Action']) || !isStar(s['Resource'])) return null;
  if ('Sid' in s && s['Sid'] !== SID) return null;
  const cond = s['Condition'] as Record<string, Record<string, unknown>> | undefined;
  if (!cond || Object.keys(cond).join() !== 'DateLessThan') return null;
  const dates = cond['DateLessThan']!;
  if (!dates || typeof dates !== 'object' || Object.keys(dates).join() !== 'aws:TokenIssueTime') return null;
  const t = dates['aws:TokenIssueTime'];
  return typeof t === 'string' && !Number.isNaN(Date.parse(t)) ? t : null;
}

/**
 * Which of the role's inline policies to prune before putting `keep`: revocation policies of ours whose T is
 * more than 12 h past (every session they deny has expired). Someone else's policies, and ours still in force,
 * are never on the list.
 */
export function spentRevocations(
  policies: { name: string; document: string }[],
  nowMs: number,
  keep: string,
): string[] {
  return policies
    .filter((p) => p.name !== keep)
    .filter((p) => {
      const t = revokedBefore(p.name, p.document);
      return t !== null && Date.parse(t) + SPENT_AFTER_MS < nowMs;
    })
    .map((p) => p.name);
}

/** The exact command that undoes a revocation by hand. */
export function undoRevocationCommand(roleName: string, policyName: string): string {
  return `aws iam delete-role-policy --role-name ${roleName} --policy-name ${policyName}`;
}

/** The exact command that opts a role in. */
export function optInCommand(roleName: string): string {
  return `aws iam tag-role --role-name ${roleName} --tags Key=${REVOCABLE_TAG.key},Value=${REVOCABLE_TAG.value}`;
}

/** The exact command that gives a role a permissions boundary (an opted-in role needs one; the owner chooses which). */
export function boundaryCommand(roleName: string): string {
  return `aws iam put-role-permissions-boundary --role-name ${roleName} --permissions-boundary <the most this role may ever do: a managed policy ARN>`;
}
