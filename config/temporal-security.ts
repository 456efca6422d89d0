/**
 * How the worker, the CLI and the forwarder reach a secured Temporal: TLS (server CA, client certificate for
 * mTLS, server name override) and an API key (Temporal Cloud). Checked when the configuration loads, so a
 * missing or unreadable file stops the program at start, naming the field and the path, not at first connect.
 */
import { readFileSync } from 'node:fs';
import { z } from 'zod';

/** Environment variables are strings: "true"/"false" become booleans, anything else fails with the message. */
const flag = z.preprocess(
  (v) => (v === 'true' ? true : v === 'false' ? false : v),
  z.boolean({ error: 'must be true or false' }),
);

const path = z.string().min(1, 'must be a file path');

/**
 * `temporal.tls`: `true` is TLS with the system's CAs (Temporal Cloud with an API key), `false` plaintext even
 * with an API key (a local proxy), an object the details. Any file or serverName implies TLS.
 */
export const temporalTlsSchema = z.preprocess(
  (v) => (typeof v === 'boolean' ? { enabled: v } : v),
  z.strictObject({
    enabled: flag
      .optional()
      .describe(
        'TLS on (`temporal.tls: true` says the same; `false`: plaintext even with an API key, for a local proxy). On anyway when a file, serverName or an API key needs it.',
      ),
    caFile: path.optional().describe("PEM CA that signed the server's certificate. Default: the system's CAs."),
    certFile: path.optional().describe('PEM client certificate for mTLS (with keyFile: both or neither).'),
    keyFile: path.optional().describe("The client certificate's PEM key."),
    serverName: z
      .string()
      .min(1, 'must be a host name')
      .optional()
      .describe("The name the server's certificate is checked against (and SNI), when it is not the address's host."),
  }),
);

export const temporalApiKeyFields = {
  apiKey: z
    .string()
    .optional()
    .describe('An API key (Temporal Cloud), sent as `authorization: Bearer <key>`; turns TLS on. Prefer apiKeyFile.'),
  apiKeyFile: path
    .optional()
    .describe(
      'A file holding the API key (a mounted Secret; a trailing newline is ignored). Read at start: restart after a rotation.',
    ),
};

type TlsInput = z.output<typeof temporalTlsSchema>;
interface SecurityInput {
  tls?: TlsInput | undefined;
  apiKey?: string | undefined;
  apiKeyFile?: string | undefined;
}

const PEM_CERTIFICATE = /-----BEGIN CERTIFICATE-----/;
const PEM_PRIVATE_KEY = /-----BEGIN [A-Z ]*PRIVATE KEY-----/;

/** Reads a file the configuration names; the error text is the config error (field and path are added by the caller). */
export function readConfiguredFile(file: string): { text: string } | { error: string } {
  try {
    return { text: readFileSync(file, 'utf8') };
  } catch (err) {
    return { error: `cannot read ${file} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})` };
  }
}

/** The key as the server must see it: a Secret file's trailing newline is not part of it. */
export function apiKeyProblem(key: string): string | null {
  if (key === '') return 'is empty';
  if (/^bearer\s/i.test(key)) return 'must be the key alone: "Bearer " is added when it is sent';
  if (/\s/.test(key)) return 'must not contain whitespace';
  return null;
}

/** Cross-field and file checks of `temporal`'s TLS and API key settings, as zod issues on their fields. */
export function checkTemporalSecurity(t: SecurityInput, ctx: z.RefinementCtx): void {
  const issue = (path: (string | number)[], message: string) => ctx.addIssue({ code: 'custom', path, message });
  const tls = t.tls ?? {};
  if (tls.certFile && !tls.keyFile)
    issue(['tls', 'keyFile'], 'is needed with certFile: a client certificate goes with its private key');
  if (tls.keyFile && !tls.certFile)
    issue(['tls', 'certFile'], 'is needed with keyFile: a client private key goes with its certificate');
  if (tls.enabled === false) {
    const set = (['caFile', 'certFile', 'keyFile', 'serverName'] as const).filter((k) => tls[k]);
    if (set.length)
      issue(
        ['tls', 'enabled'],
        `is false, but ${set.join(', ')} ${set.length > 1 ? 'are' : 'is'} set: remove ${set.length > 1 ? 'them' : 'it'}, or turn TLS on`,
      );
  }
  const pem = (key: 'caFile' | 'certFile' | 'keyFile', shape: RegExp, what: string) => {
    const file = tls[key];
    if (!file) return;
    const read = readConfiguredFile(file);
    if ('error' in read) issue(['tls', key], read.error);
    else if (!shape.test(read.text)) issue(['tls', key], `${file} is not a PEM ${what}`);
  };
  pem('caFile', PEM_CERTIFICATE, 'certificate (no "-----BEGIN CERTIFICATE-----" line)');
  pem('certFile', PEM_CERTIFICATE, 'certificate (no "-----BEGIN CERTIFICATE-----" line)');
  pem('keyFile', PEM_PRIVATE_KEY, 'private key (no "-----BEGIN ... PRIVATE KEY-----" line)');

  if (t.apiKey !== undefined && t.apiKeyFile !== undefined) issue(['apiKeyFile'], 'set apiKey or apiKeyFile, not both');
  else if (t.apiKey !== undefined) {
    const problem = apiKeyProblem(t.apiKey);
    if (problem) issue(['apiKey'], problem);
  } else if (t.apiKeyFile !== undefined) {
    const read = readConfiguredFile(t.apiKeyFile);
    const problem = 'error' in read ? read.error : apiKeyProblem(read.text.trim());
    if (problem) issue(['apiKeyFile'], 'error' in read ? problem : `${t.apiKeyFile}: the key ${problem}`);
  }
}
