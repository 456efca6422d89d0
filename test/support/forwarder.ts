/** A real forwarder on a loopback port, talking to the shared Temporal dev server (or another). */
import { randomBytes } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { inject } from 'vitest';
import { TemporalGateway } from '../../forwarder/temporal-gateway.js';
import { createForwarder, type AlertSink, type Forwarder } from '../../forwarder/server.js';
import { Spool } from '../../forwarder/spool.js';
import { configSchema, type Config } from '../../config/config.js';

export const TOKENS = {
  xdr: 'xdr-token-0123456789abcdef',
  falco: 'falco-token-0123456789abcdef',
  guardduty: 'gd-token-0123456789abcdef',
};
export const HMAC_SECRET = 'normalized-hmac-secret-0123456789';

export interface TestForwarder extends Forwarder {
  url: string;
  config: Config;
  logs: string[];
  post(
    path: string,
    body: unknown,
    headers?: Record<string, string>,
  ): Promise<{ status: number; headers: Headers; json: any }>;
}

export async function startForwarder(
  options: {
    taskQueue?: string;
    temporalAddress?: string;
    forwarder?: Record<string, unknown>;
    sink?: (config: Config) => AlertSink;
    /** A spool file (a fresh temp one for `true`); none by default: what Temporal does not take is a 503. */
    spool?: boolean | string;
    /** More of the temporal section (clusterTaskQueues). */
    temporal?: Record<string, unknown>;
    /** Other configuration sections (policy, eks), as the config file has them. */
    config?: Record<string, unknown>;
  } = {},
): Promise<TestForwarder> {
  const config = configSchema.parse({
    ...options.config,
    temporal: {
      address: options.temporalAddress ?? inject('temporalAddress'),
      taskQueue: options.taskQueue ?? `fwd-${randomBytes(4).toString('hex')}`,
      ...options.temporal,
    },
    logLevel: 'INFO',
    forwarder: {
      host: '127.0.0.1',
      port: 0,
      sources: {
        xdr: { token: TOKENS.xdr },
        falco: { token: TOKENS.falco },
        guardduty: { token: TOKENS.guardduty },
        normalized: { hmacSecret: HMAC_SECRET },
      },
      ...options.forwarder,
    },
  });
  const logs: string[] = [];
  const spoolPath =
    options.spool === true
      ? path.join(mkdtempSync(path.join(tmpdir(), 'pod-responder-spool-')), 'spool.db')
      : options.spool || null;
  const spool = spoolPath
    ? Spool.open(spoolPath, {
        maxEntries: config.forwarder.spool.maxEntries,
        maxBytes: config.forwarder.spool.maxBytes,
      })
    : null;
  const sink = options.sink ? options.sink(config) : TemporalGateway.create(config);
  const forwarder = createForwarder({ config, sink, spool, logStream: { write: (line) => void logs.push(line) } });
  const url = await forwarder.listen();
  return {
    ...forwarder,
    url,
    config,
    logs,
    async post(path, body, headers = {}) {
      const res = await fetch(`${url}${path}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...headers },
        body: typeof body === 'string' || Buffer.isBuffer(body) ? body : JSON.stringify(body),
      });
      const text = await res.text();
      let json: unknown;
      try {
        json = JSON.parse(text);
      } catch {
        json = text;
      }
      return { status: res.status, headers: res.headers, json };
    },
  };
}

export const bearer = (token: string) => ({ authorization: `Bearer ${token}` });
