/**
 * A throwaway PKI for TLS tests, made with openssl at test start: a CA, a server certificate it signs (for
 * 127.0.0.1, localhost and temporal.test), a client certificate it signs (mTLS), and a second, unrelated CA
 * that signed nothing the server holds (the "wrong CA"). EC P-256 keys: quick to make, and both TLS stacks in
 * play (Node's for the client Connection, rustls for the worker's NativeConnection) accept them.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';

export interface TestPki {
  dir: string;
  /** PEM file paths. */
  caFile: string;
  serverCertFile: string;
  serverKeyFile: string;
  clientCertFile: string;
  clientKeyFile: string;
  otherCaFile: string;
  /** A name the server certificate holds that does not resolve: for the server name override. */
  serverAltName: string;
  read(file: string): Buffer;
}

const SERVER_ALT_NAME = 'temporal.test';

export function makeTestPki(): TestPki {
  const dir = mkdtempSync(path.join(tmpdir(), 'pod-responder-pki-'));
  const f = (name: string) => path.join(dir, name);
  const openssl = (...args: string[]) => execFileSync('openssl', args, { stdio: ['ignore', 'ignore', 'pipe'] });
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];

  const ca = (name: string) =>
    openssl(
      'req',
      '-x509',
      ...ec,
      '-subj',
      `/CN=${name}`,
      '-days',
      '1',
      '-keyout',
      f(`${name}.key`),
      '-out',
      f(`${name}.pem`),
      '-addext',
      'basicConstraints=critical,CA:TRUE',
      '-addext',
      'keyUsage=critical,keyCertSign,cRLSign',
    );
  const leaf = (name: string, extensions: string) => {
    openssl('req', ...ec, '-subj', `/CN=${name}`, '-keyout', f(`${name}.key`), '-out', f(`${name}.csr`));
    writeFileSync(f(`${name}.ext`), extensions);
    openssl(
      'x509',
      '-req',
      '-in',
      f(`${name}.csr`),
      '-CA',
      f('test-ca.pem'),
      '-CAkey',
      f('test-ca.key'),
      '-CAcreateserial',
      '-days',
      '1',
      '-out',
      f(`${name}.pem`),
      '-extfile',
      f(`${name}.ext`),
    );
  };

  ca('test-ca');
  ca('other-ca');
  leaf(
    'temporal-server',
    `subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:${SERVER_ALT_NAME}\nextendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\n`,
  );
  leaf('pod-responder-client', 'extendedKeyUsage=clientAuth\nbasicConstraints=CA:FALSE\n');
  return {
    dir,
    caFile: f('test-ca.pem'),
    serverCertFile: f('temporal-server.pem'),
    serverKeyFile: f('temporal-server.key'),
    clientCertFile: f('pod-responder-client.pem'),
    clientKeyFile: f('pod-responder-client.key'),
    otherCaFile: f('other-ca.pem'),
    serverAltName: SERVER_ALT_NAME,
    read: (file) => readFileSync(file),
  };
}
