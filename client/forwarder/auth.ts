import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';

export interface SourceCredentials {
  token?: string | undefined;
  hmacSecret?: string | undefined;
}

export const SIGNATURE_HEADER = 'x-signature-256';

export const isEnabled = (c: SourceCredentials): boolean => Boolean(c.token || c.hmacSecret);

/**
 * True when the request carries the source's bearer token, or an HMAC-SHA256 of the exact body
 * bytes (`X-Signature-256: sha256=<hex>`). Comparisons are constant-time over fixed-length digests,
 * so neither a token's length nor its prefix leaks through timing.
 */
export function authenticate(creds: SourceCredentials, headers: IncomingHttpHeaders, body: Buffer): boolean {
  if (creds.token) {
    const match = /^Bearer\s+(\S+)\s*$/i.exec(headers.authorization ?? '');
    if (match && sameDigest(match[1]!, creds.token)) return true;
  }
  if (creds.hmacSecret) {
    const header = headers[SIGNATURE_HEADER];
    const match = typeof header === 'string' ? /^sha256=([0-9a-fA-F]{64})$/.exec(header.trim()) : null;
    if (match) {
      const expected = createHmac('sha256', creds.hmacSecret).update(body).digest();
      if (timingSafeEqual(Buffer.from(match[1]!, 'hex'), expected)) return true;
    }
  }
  return false;
}

function sameDigest(given: string, expected: string): boolean {
  const digest = (s: string) => createHash('sha256').update(s).digest();
  return timingSafeEqual(digest(given), digest(expected));
}

/** For senders and tests: the header value that signs `body`. */
export const signBody = (secret: string, body: string | Buffer): string => `sha256=${createHmac('sha256', secret).update(body).digest('hex')}`;
