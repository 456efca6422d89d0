/**
 * Checks a presigned STS GetCallerIdentity URL the way STS would when aws-iam-authenticator forwards
 * it: the signature is recomputed here (SigV4 query auth, written independently of the SDK's signer)
 * with the header x-k8s-aws-id set to the cluster the token is presented to, and the host the URL
 * names, whatever that is (sts.<region>.amazonaws.com normally, a local endpoint in tests).
 */
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';

export interface SigningSecret {
  secretAccessKey: string;
  sessionToken?: string;
}

export type PresignedCheck = { ok: true; accessKeyId: string } | { ok: false; reason: string };

// What aws-iam-authenticator lets through; anything else in the URL is refused.
const ALLOWED_PARAMS = new Set([
  'Action',
  'Version',
  'X-Amz-Algorithm',
  'X-Amz-Credential',
  'X-Amz-Date',
  'X-Amz-Expires',
  'X-Amz-Security-Token',
  'X-Amz-Signature',
  'X-Amz-SignedHeaders',
]);
const MAX_AGE_SECONDS = 15 * 60; // aws-iam-authenticator's cap, whatever X-Amz-Expires says
const CLOCK_SKEW_SECONDS = 5 * 60;

/** RFC 3986 encoding, as SigV4 canonical queries need (encodeURIComponent leaves !'()* alone). */
const rfc3986 = (s: string) =>
  encodeURIComponent(s).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
const hmac = (key: Buffer | string, data: string) => createHmac('sha256', key).update(data, 'utf8').digest();
const sha256Hex = (data: string) => createHash('sha256').update(data, 'utf8').digest('hex');

export function verifyPresignedCallerIdentity(
  presignedUrl: string,
  clusterId: string,
  secretFor: (accessKeyId: string) => SigningSecret | undefined,
  now = new Date(),
): PresignedCheck {
  let url: URL;
  try {
    url = new URL(presignedUrl);
  } catch {
    return { ok: false, reason: 'token is not a URL' };
  }
  if (url.pathname !== '/') return { ok: false, reason: `unexpected path ${url.pathname}` };

  // Decode by hand: URLSearchParams would turn a literal '+' into a space.
  const params = new Map<string, string>();
  for (const pair of url.search.slice(1).split('&').filter(Boolean)) {
    const i = pair.indexOf('=');
    const key = decodeURIComponent(i < 0 ? pair : pair.slice(0, i));
    if (params.has(key)) return { ok: false, reason: `query parameter ${key} given twice` };
    params.set(key, i < 0 ? '' : decodeURIComponent(pair.slice(i + 1)));
  }
  const unknown = [...params.keys()].find((k) => !ALLOWED_PARAMS.has(k));
  if (unknown) return { ok: false, reason: `query parameter ${unknown} is not allowed` };
  if (params.get('Action') !== 'GetCallerIdentity')
    return { ok: false, reason: `Action is ${params.get('Action')}, not GetCallerIdentity` };
  if (params.get('X-Amz-Algorithm') !== 'AWS4-HMAC-SHA256')
    return { ok: false, reason: `unsupported X-Amz-Algorithm ${params.get('X-Amz-Algorithm')}` };

  const signedHeaders = (params.get('X-Amz-SignedHeaders') ?? '').split(';');
  if (!signedHeaders.includes('x-k8s-aws-id'))
    return { ok: false, reason: 'X-Amz-SignedHeaders does not include x-k8s-aws-id' };
  const extra = signedHeaders.filter((h) => h !== 'host' && h !== 'x-k8s-aws-id');
  if (extra.length > 0 || !signedHeaders.includes('host')) {
    return {
      ok: false,
      reason: `X-Amz-SignedHeaders must be host;x-k8s-aws-id, is ${params.get('X-Amz-SignedHeaders')}`,
    };
  }

  const amzDate = params.get('X-Amz-Date') ?? '';
  const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(amzDate);
  if (!m) return { ok: false, reason: `bad X-Amz-Date ${amzDate}` };
  const signedAt = Date.UTC(+m[1]!, +m[2]! - 1, +m[3]!, +m[4]!, +m[5]!, +m[6]!);
  const expires = Number(params.get('X-Amz-Expires'));
  if (!Number.isInteger(expires) || expires <= 0)
    return { ok: false, reason: `bad X-Amz-Expires ${params.get('X-Amz-Expires')}` };
  const ageSeconds = (now.getTime() - signedAt) / 1000;
  if (ageSeconds > Math.min(expires, MAX_AGE_SECONDS))
    return { ok: false, reason: `token expired: signed ${ageSeconds.toFixed(0)}s ago, X-Amz-Expires=${expires}` };
  if (ageSeconds < -CLOCK_SKEW_SECONDS)
    return { ok: false, reason: `token signed ${(-ageSeconds).toFixed(0)}s in the future` };

  const scope = (params.get('X-Amz-Credential') ?? '').split('/');
  const [accessKeyId, day, region, service, terminator] = scope;
  if (scope.length !== 5 || terminator !== 'aws4_request' || !accessKeyId || !region) {
    return { ok: false, reason: `bad X-Amz-Credential ${params.get('X-Amz-Credential')}` };
  }
  if (service !== 'sts') return { ok: false, reason: `credential scope is for ${service}, not sts` };
  if (day !== amzDate.slice(0, 8))
    return { ok: false, reason: `credential scope date ${day} does not match X-Amz-Date ${amzDate}` };

  const secret = secretFor(accessKeyId);
  if (!secret) return { ok: false, reason: `access key ${accessKeyId} is unknown (not issued through the front)` };
  if (secret.sessionToken !== params.get('X-Amz-Security-Token'))
    return { ok: false, reason: `X-Amz-Security-Token does not belong to access key ${accessKeyId}` };

  const canonicalQuery = [...params]
    .filter(([k]) => k !== 'X-Amz-Signature')
    .map(([k, v]) => [rfc3986(k), rfc3986(v)] as const)
    .sort(([a, av], [b, bv]) => (a < b ? -1 : a > b ? 1 : av < bv ? -1 : av > bv ? 1 : 0))
    .map(([k, v]) => `${k}=${v}`)
    .join('&');
  const canonicalRequest = [
    'GET',
    '/',
    canonicalQuery,
    `host:${url.host}\nx-k8s-aws-id:${clusterId}\n`,
    'host;x-k8s-aws-id',
    sha256Hex(''), // a GET has an empty payload
  ].join('\n');
  const credentialScope = scope.slice(1).join('/');
  const stringToSign = ['AWS4-HMAC-SHA256', amzDate, credentialScope, sha256Hex(canonicalRequest)].join('\n');
  const signingKey = hmac(hmac(hmac(hmac(`AWS4${secret.secretAccessKey}`, day), region), 'sts'), 'aws4_request');
  const expected = hmac(signingKey, stringToSign);
  const given = Buffer.from(params.get('X-Amz-Signature') ?? '', 'hex');
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
    return {
      ok: false,
      reason: `signature mismatch for host ${url.host} and x-k8s-aws-id ${clusterId} (wrong secret, cluster or host?)`,
    };
  }
  return { ok: true, accessKeyId };
}
