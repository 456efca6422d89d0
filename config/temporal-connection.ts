/**
 * The options the worker (NativeConnection), the CLI and the forwarder (Connection) connect to Temporal with,
 * built in one place so the three reach a secured Temporal the same way. In SDK 1.24 both connections take the
 * same TLSConfig and a string API key (the client also takes a function, the worker does not: a string it is).
 */
import type { ConnectionOptions, TLSConfig } from '@temporalio/client';
import { isIP } from 'node:net';
import { checkServerIdentity, connect as tlsConnect } from 'node:tls';
import type { NativeConnectionOptions } from '@temporalio/worker';
import { InputError } from '../domain/validation-errors.js';
import type { Config } from './config.js';
import { readConfiguredFile } from './temporal-security.js';

export interface TemporalConnectionOptions {
  address: string;
  /** false: plaintext. Passed explicitly, so an API key without TLS (tls.enabled: false) stays plaintext. */
  tls: TLSConfig | false;
  apiKey?: string;
}

// Compile-time proof that one object fits both SDK connections.
type Fits<T> = TemporalConnectionOptions extends T ? true : never;
const fitsBoth: [Fits<ConnectionOptions>, Fits<NativeConnectionOptions>] = [true, true];
void fitsBoth;

type TemporalConfig = Config['temporal'];

/** TLS is on when asked for, or when anything needs it: a file, a server name, or an API key (Temporal Cloud). */
export function temporalUsesTls(t: TemporalConfig): boolean {
  const tls = t.tls ?? {};
  return (
    tls.enabled ?? Boolean(tls.caFile || tls.certFile || tls.keyFile || tls.serverName || t.apiKey || t.apiKeyFile)
  );
}

/** Reads the files the configuration names (checked when it loaded; read again here, where they are used). */
export function temporalConnectionOptions(t: TemporalConfig): TemporalConnectionOptions {
  const read = (field: string, file: string): Buffer => {
    const r = readConfiguredFile(file);
    if ('error' in r) throw new InputError('configuration', [`temporal.${field}: ${r.error}`]);
    return Buffer.from(r.text);
  };
  const apiKey = t.apiKey ?? (t.apiKeyFile ? read('apiKeyFile', t.apiKeyFile).toString('utf8').trim() : undefined);
  const options: TemporalConnectionOptions = { address: t.address, tls: false, ...(apiKey ? { apiKey } : {}) };
  if (!temporalUsesTls(t)) return options;
  const tls = t.tls ?? {};
  options.tls = {
    ...(tls.caFile ? { serverRootCACertificate: read('tls.caFile', tls.caFile) } : {}),
    ...(tls.certFile && tls.keyFile
      ? { clientCertPair: { crt: read('tls.certFile', tls.certFile), key: read('tls.keyFile', tls.keyFile) } }
      : {}),
    ...(tls.serverName ? { serverNameOverride: tls.serverName } : {}),
  };
  return options;
}

/** How this program reaches Temporal, for logs and errors: never the key itself. */
export function describeTemporalSecurity(t: TemporalConfig): Record<string, string | boolean> {
  const tls = t.tls ?? {};
  return {
    tls: temporalUsesTls(t),
    ...(tls.caFile ? { ca: tls.caFile } : {}),
    ...(tls.certFile ? { clientCert: tls.certFile } : {}),
    ...(tls.serverName ? { serverName: tls.serverName } : {}),
    ...(t.apiKeyFile ? { apiKey: t.apiKeyFile } : t.apiKey ? { apiKey: '(set)' } : {}),
  };
}

/**
 * A failed connect in words an operator can act on: where, how, and which setting to look at. The SDKs'
 * messages are often only "Failed to connect before the deadline", so on failure one TLS handshake is tried
 * by hand (probeTls) to learn why; the SDK's own error stays as the cause.
 */
export async function temporalConnectError(t: TemporalConfig, err: unknown): Promise<Error> {
  const text = `${(err as Error)?.message ?? err} ${(err as { cause?: Error })?.cause?.message ?? ''}`.trim();
  const how = Object.entries(describeTemporalSecurity(t))
    .map(([k, v]) => (v === true ? k : v === false ? `no ${k}` : `${k} ${v}`))
    .join(', ');
  const where = `cannot connect to Temporal at ${t.address} (${how})`;
  const hint = sdkHint(t, text) ?? (await probeTls(t).then((probe) => probeHint(t, probe)));
  return hint ? new Error(`${where}: ${hint}`, { cause: err }) : new Error(`${where}: ${text}`);
}

/** What the SDK said, when it says enough (the worker's Rust core names certificate problems; both name a refused key). */
function sdkHint(t: TemporalConfig, text: string): string | null {
  if (/UNAUTHENTICATED|valid authentication credentials|PERMISSION_DENIED/i.test(text)) {
    return t.apiKey || t.apiKeyFile
      ? 'the server refused the API key (temporal.apiKey / apiKeyFile)'
      : 'the server wants credentials: an API key (temporal.apiKeyFile) or a client certificate';
  }
  if (/UnknownIssuer/.test(text)) return untrustedServer(t);
  if (/NotValidForName/.test(text)) return wrongName(t);
  return null;
}

const untrustedServer = (t: TemporalConfig) =>
  t.tls?.caFile
    ? `the server's certificate is not signed by the CA in temporal.tls.caFile (${t.tls.caFile})`
    : "the server's certificate is not signed by a CA this system trusts: set temporal.tls.caFile to its CA";
const wrongName = (t: TemporalConfig) =>
  `the server's certificate is not valid for the name ${t.tls?.serverName ?? hostOf(t.address)}: set temporal.tls.serverName to a name it holds`;
const hostOf = (address: string) => address.slice(0, address.lastIndexOf(':'));

type Probe = { ok: true } | { ok: false; code: string; message: string };

/**
 * One TLS handshake with the configured CA, client certificate and name, waiting for the server's first
 * HTTP/2 frame: with TLS 1.3 a server refuses a client certificate only after the handshake, by an alert.
 * With TLS off, the handshake (unverified) tells whether the server wants TLS after all.
 */
async function probeTls(t: TemporalConfig, timeoutMs = 3000): Promise<Probe> {
  const on = temporalUsesTls(t);
  const opts = on ? temporalConnectionOptions(t).tls || {} : {};
  const host = hostOf(t.address).replace(/^\[(.*)\]$/, '$1');
  const servername = opts.serverNameOverride ?? (isIP(host) ? undefined : host);
  return new Promise<Probe>((resolve) => {
    const socket = tlsConnect({
      host,
      port: Number(t.address.slice(t.address.lastIndexOf(':') + 1)),
      ALPNProtocols: ['h2'],
      ...(servername ? { servername } : {}),
      ...(opts.serverRootCACertificate ? { ca: Buffer.from(opts.serverRootCACertificate) } : {}),
      ...(opts.clientCertPair
        ? { cert: Buffer.from(opts.clientCertPair.crt), key: Buffer.from(opts.clientCertPair.key) }
        : {}),
      rejectUnauthorized: on,
      // The name check of the SDKs: the override, else the address's host (an IP address against IP SANs).
      checkServerIdentity: (_name, cert) => checkServerIdentity(opts.serverNameOverride ?? host, cert),
    });
    const done = (p: Probe) => {
      clearTimeout(timer);
      socket.destroy();
      resolve(p);
    };
    const timer = setTimeout(
      () => done({ ok: false, code: 'ETIMEDOUT', message: `no TLS answer within ${timeoutMs} ms` }),
      timeoutMs,
    );
    socket.once('data', () => done({ ok: true }));
    socket.once('error', (e: NodeJS.ErrnoException) => done({ ok: false, code: e.code ?? '', message: e.message }));
  });
}

function probeHint(t: TemporalConfig, p: Probe): string | null {
  if (!temporalUsesTls(t)) {
    if (!p.ok) return null;
    return t.tls?.enabled === false
      ? 'the server speaks TLS and this connection does not: remove temporal.tls.enabled: false'
      : 'the server speaks TLS and this connection does not: set temporal.tls.enabled: true (or a CA, or an API key, which turn it on)';
  }
  if (p.ok) return null;
  const { code, message } = p;
  if (code === 'ECONNREFUSED' || code === 'ENOTFOUND' || code === 'EAI_AGAIN')
    return `nothing answers at ${t.address} (${code})`;
  if (/CERTIFICATE_REQUIRED/.test(code))
    return 'the server asks for a client certificate (mTLS): set temporal.tls.certFile and keyFile';
  if (/UNKNOWN_CA|BAD_CERTIFICATE|CERTIFICATE_UNKNOWN|DECRYPT_ERROR/.test(code)) {
    return t.tls?.certFile
      ? `the server refused the client certificate in temporal.tls.certFile (${t.tls.certFile}): it is not signed by a CA the server trusts`
      : `the server refused the handshake (${message.trim()})`;
  }
  if (/SELF_SIGNED|UNABLE_TO_VERIFY|UNABLE_TO_GET_ISSUER|CERT_UNTRUSTED|CERT_SIGNATURE_FAILURE/.test(code))
    return untrustedServer(t);
  if (code === 'ERR_TLS_CERT_ALTNAME_INVALID') return wrongName(t);
  if (/WRONG_VERSION_NUMBER|PACKET_LENGTH_TOO_LONG|ECONNRESET/.test(code))
    return `the server at ${t.address} does not speak TLS: turn TLS off (temporal.tls.enabled: false) or use its TLS port`;
  return null;
}
