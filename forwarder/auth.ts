import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';

export interface SourceCredentials {
  token?: string | undefined;
  hmacSecret?: string | undefined;
}

export const SIGNATURE_HEADER = 'x-signature-256';
export const TIMESTAMP_HEADER = 'x-signature-timestamp';

export const isEnabled = (c: SourceCredentials): boolean => Boolean(c.token || c.hmacSecret);

/**
 * `ok`: the request carries the source's bearer token, or `X-Signature-256: sha256=<hex HMAC-SHA256 of
 * "<timestamp>.<body>">` with `X-Signature-Timestamp: <unix seconds>` within `windowSeconds` of now: a
 * captured request cannot be replayed later. A signature made right but outside the window, or of the
 * body alone (senders from before the timestamp), gets its own refusal, since only a holder of the
 * secret can make one. Comparisons are constant-time over fixed-length digests.
 */
export type Authentication = { result: 'ok' } | { result: 'refused'; reason: string } | { result: 'no' };

export function authenticate(
  creds: SourceCredentials,
  headers: IncomingHttpHeaders,
  body: Buffer,
  windowSeconds = 300,
  nowMs = Date.now(),
): Authentication {
  if (creds.token) {
    const match = /^Bearer\s+(\S+)\s*$/i.exec(headers.authorization ?? '');
    if (match && sameDigest(match[1]!, creds.token)) return { result: 'ok' };
  }
  if (creds.hmacSecret) {
    const header = headers[SIGNATURE_HEADER];
    const match = typeof header === 'string' ? /^sha256=([0-9a-fA-F]{64})$/.exec(header.trim()) : null;
    if (match) {
      const given = Buffer.from(match[1]!, 'hex');
      const ts = headers[TIMESTAMP_HEADER];
      if (typeof ts === 'string' && /^\d{1,12}$/.test(ts.trim())) {
        if (timingSafeEqual(given, hmac(creds.hmacSecret, `${ts.trim()}.`, body))) {
          const skew = Math.round(nowMs / 1000 - Number(ts));
          if (Math.abs(skew) <= windowSeconds) return { result: 'ok' };
          return {
            result: 'refused',
            reason: `signature timestamp ${ts.trim()} is ${Math.abs(skew)} s ${skew > 0 ? 'old' : 'in the future'}; it must be within ${windowSeconds} s of the forwarder's clock (a replayed request, or a clock to fix)`,
          };
        }
      } else if (timingSafeEqual(given, hmac(creds.hmacSecret, '', body))) {
        return {
          result: 'refused',
          reason: `${TIMESTAMP_HEADER} is required: sign "<unix seconds>.<body>" and send the seconds in ${TIMESTAMP_HEADER}`,
        };
      }
    }
  }
  return { result: 'no' };
}

function hmac(secret: string, prefix: string, body: Buffer | string): Buffer {
  return createHmac('sha256', secret).update(prefix).update(body).digest();
}

function sameDigest(given: string, expected: string): boolean {
  const digest = (s: string) => createHash('sha256').update(s).digest();
  return timingSafeEqual(digest(given), digest(expected));
}

/** For senders and tests: the headers that sign `body` at `seconds` (default now). */
export function signBody(
  secret: string,
  body: string | Buffer,
  seconds = Math.floor(Date.now() / 1000),
): Record<string, string> {
  return {
    [SIGNATURE_HEADER]: `sha256=${hmac(secret, `${seconds}.`, body).toString('hex')}`,
    [TIMESTAMP_HEADER]: String(seconds),
  };
}
