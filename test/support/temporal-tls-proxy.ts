/**
 * A secured Temporal for tests: a TLS endpoint in front of the dev server's plaintext gRPC port (the dev server
 * has no TLS of its own). It terminates TLS and HTTP/2 (ALPN h2), and relays each gRPC call as a stream to the
 * dev server, with its headers, data and trailers unchanged. Terminating HTTP/2 (rather than piping bytes) lets
 * it see the `authorization` header, so an API key is checked end to end, as Temporal Cloud does.
 *
 * - `requireClientCert`: mTLS; a client without a certificate signed by the test CA is refused in the handshake.
 * - `apiKey`: every call must carry `authorization: Bearer <apiKey>`, or gets UNAUTHENTICATED.
 */
import * as http2 from 'node:http2';
import type { TLSSocket } from 'node:tls';
import type { TestPki } from './test-pki.js';

export interface TemporalTlsProxy {
  address: string;
  /** Handshakes refused, with Node's reason (e.g. "peer did not return a certificate"). */
  refusals: string[];
  /** gRPC calls relayed: path, and the client certificate's CN when there was one. */
  calls: { path: string; clientCn: string | null }[];
  /** Calls refused for a missing or wrong API key. */
  unauthenticated: number;
  close(): Promise<void>;
}

const GRPC_UNAUTHENTICATED = '16';
const { NGHTTP2_CANCEL, NGHTTP2_INTERNAL_ERROR } = http2.constants;
/** Hop-by-hop in HTTP/2 terms: set by each session itself. */
const OWN_PSEUDO = new Set([':scheme', ':authority']);

export async function startTemporalTlsProxy(o: {
  backend: string;
  pki: TestPki;
  requireClientCert: boolean;
  apiKey?: string;
}): Promise<TemporalTlsProxy> {
  const open = new Set<http2.ServerHttp2Session>();
  const proxy: TemporalTlsProxy = {
    address: '',
    refusals: [],
    calls: [],
    unauthenticated: 0,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        // Open sessions (a worker's long polls) would hold close() forever.
        for (const session of open) session.destroy();
      }),
  };
  const server = http2.createSecureServer({
    key: o.pki.read(o.pki.serverKeyFile),
    cert: o.pki.read(o.pki.serverCertFile),
    ca: o.pki.read(o.pki.caFile),
    requestCert: o.requireClientCert,
    rejectUnauthorized: o.requireClientCert,
    ALPNProtocols: ['h2'],
    allowHTTP1: false,
  });
  server.on('tlsClientError', (err) => proxy.refusals.push(err.message));

  server.on('session', (session) => {
    open.add(session);
    session.on('close', () => open.delete(session));
    // One upstream HTTP/2 session per client session, closed with it: a TCP proxy's lifecycle.
    const upstream = http2.connect(`http://${o.backend}`);
    upstream.on('error', () => session.destroy());
    session.on('close', () => upstream.close());
    session.on('error', () => upstream.destroy());
    const cert = (session.socket as TLSSocket).getPeerCertificate?.();
    const clientCn = cert && 'subject' in cert && cert.subject ? (cert.subject.CN as string) : null;

    session.on('stream', (stream, headers) => {
      stream.on('error', () => {});
      if (o.apiKey && headers.authorization !== `Bearer ${o.apiKey}`) {
        proxy.unauthenticated++;
        // Trailers-only response: how a gRPC server refuses a call.
        stream.respond(
          {
            ':status': 200,
            'content-type': 'application/grpc',
            'grpc-status': GRPC_UNAUTHENTICATED,
            'grpc-message': 'test proxy: missing or wrong API key',
          },
          { endStream: true },
        );
        return;
      }
      proxy.calls.push({ path: String(headers[':path']), clientCn });
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
        (t) =>
          (trailers = Object.fromEntries(
            Object.entries(t).filter(([k]) => !k.startsWith(':')),
          ) as http2.IncomingHttpHeaders),
      );
      stream.on('wantTrailers', () => stream.sendTrailers(trailers));
      stream.pipe(call);
      // A call cancelled on one side (a long poll the worker gives up, a server reset) is cancelled on the other.
      stream.on('close', () => {
        if (!call.closed) call.close(stream.rstCode || NGHTTP2_CANCEL);
      });
      call.on('close', () => {
        if (!stream.closed && call.rstCode) stream.close(call.rstCode);
      });
    });
  });

  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  proxy.address = `127.0.0.1:${(server.address() as { port: number }).port}`;
  return proxy;
}
