/**
 * IAM's policy evaluation, as far as pod-responder's policies need it, for the test front (moto evaluates none):
 * an explicit Deny wins; else an Allow of the identity's policies is needed, and one of its permissions boundary
 * too when it has one. A statement matches when its Action and Resource globs match and every condition holds.
 *
 * Conditions: the String*, Arn*, Null and Date* operators, their IfExists forms, and ForAllValues/ForAnyValue on
 * multivalued keys; an operator it does not know throws (a test must not pass by a condition it skipped). Policy
 * variables (`${aws:PrincipalAccount}`) are replaced in resources and condition values. Missing keys follow IAM:
 * a condition on an absent key fails, except with IfExists, Null, or ForAllValues (which holds for no values).
 */

export interface Statement {
  Sid?: string;
  Effect: 'Allow' | 'Deny';
  Action: string | string[];
  Resource: string | string[];
  Condition?: Record<string, Record<string, string | string[] | boolean>>;
}

/** Condition keys of one request, lower-cased; a multivalued key (aws:TagKeys) is an array. */
export type RequestContext = Record<string, string | string[]>;

export interface Evaluation {
  allowed: boolean;
  /** Why not, as AWS words it ("because no identity-based policy allows the iam:PutRolePolicy action"). */
  reason?: string;
}

const list = <T>(x: T | T[] | undefined): T[] => (x === undefined ? [] : Array.isArray(x) ? x : [x]);
const escape = (s: string) => s.replace(/[.+^${}()|[\]\\]/g, '\\$&');
/** IAM globs: `*` any run of characters, `?` any one. */
const glob = (pattern: string, caseInsensitive = false) =>
  new RegExp(`^${escape(pattern).replaceAll('*', '.*').replaceAll('?', '.')}$`, caseInsensitive ? 'i' : '');

function substitute(value: string, ctx: RequestContext): string {
  return value.replace(/\$\{([^}]+)\}/g, (whole, key: string) => {
    const v = ctx[key.toLowerCase()];
    if (typeof v !== 'string') throw new Error(`policy variable ${whole} has no value in this request`);
    return v;
  });
}

type Compare = (actual: string, expected: string) => boolean;

const STRING: Record<string, Compare> = {
  StringEquals: (a, e) => a === e,
  StringNotEquals: (a, e) => a !== e,
  StringEqualsIgnoreCase: (a, e) => a.toLowerCase() === e.toLowerCase(),
  StringNotEqualsIgnoreCase: (a, e) => a.toLowerCase() !== e.toLowerCase(),
  StringLike: (a, e) => glob(e).test(a),
  StringNotLike: (a, e) => !glob(e).test(a),
  ArnEquals: (a, e) => glob(e).test(a),
  ArnLike: (a, e) => glob(e).test(a),
  ArnNotEquals: (a, e) => !glob(e).test(a),
  ArnNotLike: (a, e) => !glob(e).test(a),
  DateEquals: (a, e) => Date.parse(a) === Date.parse(e),
  DateNotEquals: (a, e) => Date.parse(a) !== Date.parse(e),
  DateLessThan: (a, e) => Date.parse(a) < Date.parse(e),
  DateLessThanEquals: (a, e) => Date.parse(a) <= Date.parse(e),
  DateGreaterThan: (a, e) => Date.parse(a) > Date.parse(e),
  DateGreaterThanEquals: (a, e) => Date.parse(a) >= Date.parse(e),
};
/** Negated operators hold when no expected value matches; the others when any does. */
const NEGATED = new Set([
  'StringNotEquals',
  'StringNotEqualsIgnoreCase',
  'StringNotLike',
  'ArnNotEquals',
  'ArnNotLike',
  'DateNotEquals',
]);

function conditionHolds(
  operator: string,
  key: string,
  expectedRaw: string | string[] | boolean,
  ctx: RequestContext,
): boolean {
  const expected = list(expectedRaw).map((e) => substitute(String(e), ctx));
  const actual = ctx[key.toLowerCase()];
  const values = list(actual);
  if (operator === 'Null') {
    const absent = actual === undefined || values.length === 0;
    return expected.some((e) => (e === 'true') === absent);
  }
  const m = /^(ForAllValues:|ForAnyValue:)?(\w+?)(IfExists)?$/.exec(operator);
  const compare = m ? STRING[m[2]!] : undefined;
  if (!m || !compare)
    throw new Error(`the test front does not evaluate the condition operator ${operator} (key ${key})`);
  const [, set, base, ifExists] = m as unknown as [string, string | undefined, string, string | undefined];
  const one = (a: string) =>
    NEGATED.has(base) ? expected.every((e) => compare(a, e)) : expected.some((e) => compare(a, e));
  if (set === 'ForAllValues:') return values.every(one);
  if (values.length === 0) return ifExists !== undefined;
  if (set === 'ForAnyValue:') return values.some(one);
  if (values.length > 1)
    throw new Error(`condition key ${key} has several values: use ForAllValues or ForAnyValue (${operator})`);
  return one(values[0]!);
}

export function statementMatches(s: Statement, action: string, resource: string, ctx: RequestContext): boolean {
  if (!list(s.Action).some((a) => glob(a, true).test(action))) return false;
  if (!list(s.Resource).some((r) => glob(substitute(r, ctx)).test(resource))) return false;
  return Object.entries(s.Condition ?? {}).every(([operator, keys]) =>
    Object.entries(keys).every(([key, expected]) => conditionHolds(operator, key, expected, ctx)),
  );
}

/** One request against the identity's policies and, when it has one, its permissions boundary. */
export function evaluate(
  identity: Statement[],
  boundary: Statement[] | undefined,
  action: string,
  resource: string,
  ctx: RequestContext,
): Evaluation {
  const matching = (set: Statement[], effect: 'Allow' | 'Deny') =>
    set.filter((s) => s.Effect === effect && statementMatches(s, action, resource, ctx));
  const denied = [...matching(identity, 'Deny'), ...(boundary ? matching(boundary, 'Deny') : [])];
  if (denied.length) return { allowed: false, reason: `with an explicit deny in ${denied[0]!.Sid ?? 'a statement'}` };
  if (!matching(identity, 'Allow').length)
    return { allowed: false, reason: `because no identity-based policy allows the ${action} action` };
  if (boundary && !matching(boundary, 'Allow').length)
    return { allowed: false, reason: `because no permissions boundary allows the ${action} action` };
  return { allowed: true };
}

/** A policy document's statements (IAM returns documents URL-encoded; moto does not). */
export function statementsOf(document: string | undefined): Statement[] {
  if (!document) return [];
  let text = document;
  try {
    JSON.parse(text);
  } catch {
    text = decodeURIComponent(document);
  }
  return list((JSON.parse(text) as { Statement: Statement | Statement[] }).Statement);
}
