/** The secured-Temporal settings: their validation messages, and the connection options the three programs share. */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../config/config.js';
import { describeTemporalSecurity, temporalConnectionOptions } from '../../config/temporal-connection.js';
import { inputErrorsOf } from '../support/input-errors.js';

const dir = mkdtempSync(path.join(tmpdir(), 'pod-responder-tls-config-'));
const file = (name: string, text: string) => {
  const p = path.join(dir, name);
  writeFileSync(p, text);
  return p;
};
// The configuration checks the PEM shape only; the TLS stacks check the rest when they connect.
const CERT = '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n';
const ca = file('ca.pem', CERT);
const cert = file('client.pem', CERT);
const key = file('client.key', '-----BEGIN EC PRIVATE KEY-----\nMHcC\n-----END EC PRIVATE KEY-----\n');
const keyFile = file('api-key', 'tc-key-0123\n');
const missing = path.join(dir, 'missing.pem');

describe('temporal TLS and API key configuration', () => {
  it('reads every variable into its field', () => {
    const c = loadConfig({
      POD_RESPONDER_TEMPORAL_TLS: 'true',
      POD_RESPONDER_TEMPORAL_TLS_CA: ca,
      POD_RESPONDER_TEMPORAL_TLS_CERT: cert,
      POD_RESPONDER_TEMPORAL_TLS_KEY: key,
      POD_RESPONDER_TEMPORAL_TLS_SERVER_NAME: 'temporal.internal',
      POD_RESPONDER_TEMPORAL_API_KEY_FILE: keyFile,
    });
    expect(c.temporal).toMatchObject({
      tls: { enabled: true, caFile: ca, certFile: cert, keyFile: key, serverName: 'temporal.internal' },
      apiKeyFile: keyFile,
    });
    expect(loadConfig({ POD_RESPONDER_TEMPORAL_API_KEY: 'tc-key-0123' }).temporal.apiKey).toBe('tc-key-0123');
  });

  it('takes `tls: true` as a shorthand, and a variable adds to it instead of replacing it', () => {
    const f = file('tls-true.json', JSON.stringify({ temporal: { tls: true } }));
    expect(loadConfig({}, f).temporal.tls).toEqual({ enabled: true });
    expect(loadConfig({ POD_RESPONDER_TEMPORAL_TLS_CA: ca }, f).temporal.tls).toEqual({ enabled: true, caFile: ca });
    const off = file('tls-false.json', JSON.stringify({ temporal: { tls: false, apiKey: 'k' } }));
    expect(loadConfig({}, off).temporal).toMatchObject({ tls: { enabled: false }, apiKey: 'k' });
  });

  it.each<[string, Record<string, string>, string[]]>([
    ['flag not a boolean', { POD_RESPONDER_TEMPORAL_TLS: 'yes' }, ['temporal.tls.enabled: must be true or false']],
    [
      'certificate without key',
      { POD_RESPONDER_TEMPORAL_TLS_CERT: cert },
      ['temporal.tls.keyFile: is needed with certFile: a client certificate goes with its private key'],
    ],
    [
      'key without certificate',
      { POD_RESPONDER_TEMPORAL_TLS_KEY: key },
      ['temporal.tls.certFile: is needed with keyFile: a client private key goes with its certificate'],
    ],
    [
      'CA file missing',
      { POD_RESPONDER_TEMPORAL_TLS_CA: missing },
      [`temporal.tls.caFile: cannot read ${missing} (ENOENT)`],
    ],
    ['CA file a folder', { POD_RESPONDER_TEMPORAL_TLS_CA: dir }, [`temporal.tls.caFile: cannot read ${dir} (EISDIR)`]],
    [
      'certificate and key files missing',
      { POD_RESPONDER_TEMPORAL_TLS_CERT: missing, POD_RESPONDER_TEMPORAL_TLS_KEY: `${missing}.key` },
      [
        `temporal.tls.certFile: cannot read ${missing} (ENOENT)`,
        `temporal.tls.keyFile: cannot read ${missing}.key (ENOENT)`,
      ],
    ],
    [
      'CA not PEM',
      { POD_RESPONDER_TEMPORAL_TLS_CA: keyFile },
      [`temporal.tls.caFile: ${keyFile} is not a PEM certificate (no "-----BEGIN CERTIFICATE-----" line)`],
    ],
    [
      'key and certificate swapped',
      { POD_RESPONDER_TEMPORAL_TLS_CERT: key, POD_RESPONDER_TEMPORAL_TLS_KEY: cert },
      [
        `temporal.tls.certFile: ${key} is not a PEM certificate (no "-----BEGIN CERTIFICATE-----" line)`,
        `temporal.tls.keyFile: ${cert} is not a PEM private key (no "-----BEGIN ... PRIVATE KEY-----" line)`,
      ],
    ],
    [
      'TLS off with TLS settings',
      {
        POD_RESPONDER_TEMPORAL_TLS: 'false',
        POD_RESPONDER_TEMPORAL_TLS_CA: ca,
        POD_RESPONDER_TEMPORAL_TLS_SERVER_NAME: 't',
      },
      ['temporal.tls.enabled: is false, but caFile, serverName are set: remove them, or turn TLS on'],
    ],
    [
      'API key twice',
      { POD_RESPONDER_TEMPORAL_API_KEY: 'k', POD_RESPONDER_TEMPORAL_API_KEY_FILE: keyFile },
      ['temporal.apiKeyFile: set apiKey or apiKeyFile, not both'],
    ],
    [
      'API key with its header prefix',
      { POD_RESPONDER_TEMPORAL_API_KEY: 'Bearer k' },
      ['temporal.apiKey: must be the key alone: "Bearer " is added when it is sent'],
    ],
    [
      'API key file missing',
      { POD_RESPONDER_TEMPORAL_API_KEY_FILE: missing },
      [`temporal.apiKeyFile: cannot read ${missing} (ENOENT)`],
    ],
    [
      'API key file empty',
      { POD_RESPONDER_TEMPORAL_API_KEY_FILE: file('empty-key', '\n') },
      [`temporal.apiKeyFile: ${path.join(dir, 'empty-key')}: the key is empty`],
    ],
    [
      'API key file of two words',
      { POD_RESPONDER_TEMPORAL_API_KEY_FILE: file('two-words', 'a b\n') },
      [`temporal.apiKeyFile: ${path.join(dir, 'two-words')}: the key must not contain whitespace`],
    ],
  ])('%s -> exact errors', (_n, env, errors) => {
    expect(inputErrorsOf(() => loadConfig(env))).toEqual(errors);
  });

  it('lists every problem of the file at once: an unknown key and an unreadable file', () => {
    const f = file('bad-tls.json', JSON.stringify({ temporal: { tls: { caFile: missing, verify: false } } }));
    expect(inputErrorsOf(() => loadConfig({}, f))).toEqual([
      'temporal.tls: Unrecognized key: "verify"',
      `temporal.tls.caFile: cannot read ${missing} (ENOENT)`,
    ]);
  });
});

describe('temporalConnectionOptions', () => {
  const options = (env: Record<string, string>) =>
    temporalConnectionOptions(loadConfig({ TEMPORAL_ADDRESS: 'temporal.example:7233', ...env }).temporal);

  it('is plaintext with nothing set', () => {
    expect(options({})).toEqual({ address: 'temporal.example:7233', tls: false });
  });

  it('turns TLS on with the system CAs for an API key (Temporal Cloud), unless TLS is explicitly off', () => {
    expect(options({ POD_RESPONDER_TEMPORAL_API_KEY: 'k1' })).toEqual({
      address: 'temporal.example:7233',
      tls: {},
      apiKey: 'k1',
    });
    expect(options({ POD_RESPONDER_TEMPORAL_API_KEY: 'k1', POD_RESPONDER_TEMPORAL_TLS: 'false' })).toEqual({
      address: 'temporal.example:7233',
      tls: false,
      apiKey: 'k1',
    });
    expect(options({ POD_RESPONDER_TEMPORAL_TLS: 'true' })).toEqual({ address: 'temporal.example:7233', tls: {} });
  });

  it('reads the key from its file without the trailing newline a Secret has', () => {
    expect(options({ POD_RESPONDER_TEMPORAL_API_KEY_FILE: keyFile }).apiKey).toBe('tc-key-0123');
  });

  it('carries the CA, the client pair and the server name, as bytes of the files', () => {
    const o = options({
      POD_RESPONDER_TEMPORAL_TLS_CA: ca,
      POD_RESPONDER_TEMPORAL_TLS_CERT: cert,
      POD_RESPONDER_TEMPORAL_TLS_KEY: key,
      POD_RESPONDER_TEMPORAL_TLS_SERVER_NAME: 'temporal.internal',
    });
    expect(o.tls).toEqual({
      serverRootCACertificate: Buffer.from(CERT),
      clientCertPair: {
        crt: Buffer.from(CERT),
        key: Buffer.from('-----BEGIN EC PRIVATE KEY-----\nMHcC\n-----END EC PRIVATE KEY-----\n'),
      },
      serverNameOverride: 'temporal.internal',
    });
    expect(o.apiKey).toBeUndefined();
  });

  it('describes the connection for logs without the key itself', () => {
    const c = loadConfig({ POD_RESPONDER_TEMPORAL_API_KEY: 'secret-key-value', POD_RESPONDER_TEMPORAL_TLS_CA: ca });
    expect(describeTemporalSecurity(c.temporal)).toEqual({ tls: true, ca, apiKey: '(set)' });
    expect(describeTemporalSecurity(loadConfig({ POD_RESPONDER_TEMPORAL_API_KEY_FILE: keyFile }).temporal)).toEqual({
      tls: true,
      apiKey: keyFile,
    });
    expect(describeTemporalSecurity(loadConfig({}).temporal)).toEqual({ tls: false });
  });
});
