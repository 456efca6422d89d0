/**
 * Temporal with its visibility store lagging or down, for tests and benchmarks: a plaintext HTTP/2 (h2c) relay in
 * front of the dev server that passes every gRPC call through unchanged, except the visibility queries
 * (ListWorkflowExecutions, CountWorkflowExecutions, ...). Those are held `stallMs` before they are relayed, or,
 * with `fail`, answered UNAVAILABLE at once: what a client sees when Elasticsearch or the SQL visibility store is
 * slow or unreachable while the rest of the server (history, matching) works.
 */
import * as http2 from 'node:http2';

export interface VisibilityStallProxy {
  /** host:port to give a worker or client instead of the dev server's. */
  address: string;
  /** Hold each visibility call this long before relaying it (0: relay at once). */
  stallMs: number;
  /** Answer each visibility call UNAVAILABLE (after `stallMs`). */
  fail: boolean;
  /** Visibility calls seen, by method name. */
  visibilityCalls: string[];
  close(): Promise<void>;
}

const VISIBILITY =
  /\/(ListWorkflowExecutions|CountWorkflowExecutions|ScanWorkflowExecutions|ListOpenWorkflowExecutions|ListClosedWorkflowExecutions)$/;
const GRPC_UNAVAILABLE = '14';
const { NGHTTP2_CANCEL, NGHTTP2_INTERNAL_ERROR } = http2.constants;
const OWN_PSEUDO = new Set([':scheme', ':authority']);

export async function startVisibilityStallProxy(o: {
  backend: string;
  stallMs?: number;
  fail?: boolean;
}): Promise<VisibilityStallProxy> {
  const open = new Set<http2.ServerHttp2Session>();
  // Held calls: a stall of minutes must not keep the process alive once the proxy is closed.
  const held = new Set<NodeJS.Timeout>();
  const server = http2.createServer();
  const proxy: VisibilityStallProxy = {
    address: '',
    stallMs: o.stallMs ?? 0,
    fail: o.fail ?? false,
    visibilityCalls: [],
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const timer of held) clearTimeout(timer);
        held.clear();
        for (const session of open) session.destroy(); // a worker's long polls would hold close() forever
      }),
  };

  server.on('session', (session) => {
    open.add(session);
    const upstream = http2.connect(`http://${o.backend}`);
    upstream.on('error', () => session.destroy());
    session.on('close', () => {
      open.delete(session);
      upstream.close();
    });
    session.on('error', () => upstream.destroy());

    session.on('stream', (stream, headers) => {
      stream.on('error', () => {});
      const path = String(headers[':path']);
      const visibility = VISIBILITY.exec(path)?.[1];
      const relay = () => {
        if (stream.closed) return; // the caller gave up (its deadline) while the call was held
        if (visibility && proxy.fail) {
          stream.respond(
            {
              ':status': 200,
              'content-type': 'application/grpc',
              'grpc-status': GRPC_UNAVAILABLE,
              'grpc-message': 'test proxy: visibility store unavailable',
            },
            { endStream: true },
          );
          return;
        }
        relayCall(upstream, stream, headers);
      };
      if (!visibility) return relay();
      proxy.visibilityCalls.push(visibility);
      // Held: the request's body stays buffered in the stream until it is relayed.
      stream.pause();
      const timer = setTimeout(() => {
        held.delete(timer);
        stream.resume();
        relay();
      }, proxy.stallMs);
      held.add(timer);
    });
  });

  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  proxy.address = `127.0.0.1:${(server.address() as { port: number }).port}`;
  return proxy;
}

/** One gRPC call relayed as a stream: headers, data and trailers unchanged; a cancel on either side reaches the other. */
function relayCall(
  upstream: http2.ClientHttp2Session,
  stream: http2.ServerHttp2Stream,
  headers: http2.IncomingHttpHeaders,
): void {
  const forwarded = Object.fromEntries(Object.entries(headers).filter(([k]) => !OWN_PSEUDO.has(k)));
  let call: http2.ClientHttp2Stream;
  try {
    call = upstream.request(forwarded, { endStream: false });
  } catch {
    stream.close(NGHTTP2_INTERNAL_ERROR);
    return;
  }
  call.on('error', () => {});
  let trailers: http2.IncomingHttpHeaders = {};
  call.on('response', (response) => {
    const out = Object.fromEntries(Object.entries(response).filter(([k]) => !k.startsWith(':') || k === ':status'));
    if ('grpc-status' in response) {
      stream.respond(out, { endStream: true }); // trailers-only (an error status)
      return;
    }
    stream.respond(out, { waitForTrailers: true });
    call.pipe(stream);
  });
  call.on(
    'trailers',
    (t: http2.IncomingHttpHeaders) =>
      (trailers = Object.fromEntries(
        Object.entries(t).filter(([k]) => !k.startsWith(':')),
      ) as http2.IncomingHttpHeaders),
  );
  stream.on('wantTrailers', () => stream.sendTrailers(trailers));
  stream.pipe(call);
  stream.on('close', () => {
    if (!call.closed) call.close(stream.rstCode || NGHTTP2_CANCEL);
  });
  call.on('close', () => {
    if (!stream.closed && call.rstCode) stream.close(call.rstCode);
  });
}
