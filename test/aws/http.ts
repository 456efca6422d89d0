/** Buffered HTTP plumbing for the front: every request and reply is small enough to hold in memory. */
import { request as httpRequest, Agent, type IncomingHttpHeaders, type IncomingMessage } from 'node:http';

export interface Reply {
  status: number;
  headers: Record<string, string>;
  body: Buffer;
}

/** What the front knows about one incoming AWS call. */
export interface InboundRequest {
  method: string;
  /** Raw path, still percent-encoded (REST labels such as an ARN are encoded). */
  path: string;
  query: URLSearchParams;
  /** path + '?' + query as received. */
  url: string;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

export function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

export function jsonReply(status: number, value: unknown, headers: Record<string, string> = {}): Reply {
  return {
    status,
    headers: { 'content-type': 'application/json', ...headers },
    body: Buffer.from(JSON.stringify(value)),
  };
}

// Hop-by-hop headers and lengths are the transport's business, recomputed on each leg.
const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'transfer-encoding',
  'content-length',
  'upgrade',
  'proxy-connection',
]);

export function endToEndHeaders(headers: IncomingHttpHeaders): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(headers)) {
    if (v === undefined || HOP_BY_HOP.has(k.toLowerCase())) continue;
    out[k] = Array.isArray(v) ? v.join(', ') : v;
  }
  return out;
}

const agent = new Agent({ keepAlive: true, maxSockets: 32 });

/** Sends the request to `base` unchanged (same method, path, headers and body) and buffers the answer. */
export function forward(base: string, req: InboundRequest): Promise<Reply> {
  const target = new URL(base);
  return new Promise((resolve, reject) => {
    const out = httpRequest(
      {
        agent,
        hostname: target.hostname,
        port: target.port,
        method: req.method,
        path: req.url,
        headers: { ...endToEndHeaders(req.headers), 'content-length': String(req.body.length) },
      },
      (res) => {
        readBody(res).then(
          (body) => resolve({ status: res.statusCode ?? 502, headers: endToEndHeaders(res.headers), body }),
          reject,
        );
      },
    );
    out.on('error', reject);
    out.end(req.body);
  });
}

/** One page of an AWS list answer; nextToken is the offset of the next page, opaque to callers. */
export function paginate<T>(items: T[], query: URLSearchParams): { items: T[]; nextToken?: string } {
  const max = Math.min(Math.max(Number(query.get('maxResults') ?? 100), 1), 100);
  const start = query.get('nextToken') ? Number(Buffer.from(query.get('nextToken')!, 'base64url').toString()) : 0;
  const page = items.slice(start, start + max);
  const next = start + max < items.length ? Buffer.from(String(start + max)).toString('base64url') : undefined;
  return next ? { items: page, nextToken: next } : { items: page };
}
