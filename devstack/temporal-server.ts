/**
 * A Temporal dev server of its own, for tests and benchmarks that stop and start Temporal (or change its
 * limits) without disturbing the shared one. On disk, so it keeps its data across a restart.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { SEARCH_ATTRIBUTE_TYPES } from '../domain/search-attributes.js';
import { freePorts } from './probes.js';
import { ensureTools } from './tools.js';

export interface OwnTemporal {
  address: string;
  start(): void;
  /** SIGTERM, and waits for it to exit. */
  stop(): Promise<void>;
}

export async function ownTemporal(o: { extra?: string[]; uiPort?: number } = {}): Promise<OwnTemporal> {
  const { temporal } = await ensureTools(() => {});
  const [port] = await freePorts(1);
  const dbFile = path.join(mkdtempSync(path.join(tmpdir(), 'pod-responder-temporal-')), 'temporal.db');
  let server: ChildProcess | undefined;
  const kill = () => server?.kill('SIGKILL');
  process.once('exit', kill);
  return {
    address: `127.0.0.1:${port}`,
    start() {
      server = spawn(temporal, temporalDevServerArgs(port!, { dbFile, extra: o.extra, uiPort: o.uiPort }), {
        stdio: 'ignore',
      });
    },
    async stop() {
      const s = server;
      if (!s || s.exitCode !== null || s.signalCode !== null) return;
      const exited = new Promise((r) => s.once('exit', r));
      s.kill('SIGTERM');
      await exited;
    },
  };
}

/** `temporal server start-dev` on loopback with pod-responder's search attributes; `dbFile` keeps its data across restarts. */
export function temporalDevServerArgs(
  port: number,
  o: { uiPort?: number | undefined; dbFile?: string; logLevel?: string; extra?: string[] } = {},
): string[] {
  const args = ['server', 'start-dev', '--ip=127.0.0.1', `--port=${port}`, `--log-level=${o.logLevel ?? 'error'}`];
  args.push(...(o.uiPort ? [`--ui-port=${o.uiPort}`] : ['--headless']));
  if (o.dbFile) args.push(`--db-filename=${o.dbFile}`);
  for (const [name, type] of Object.entries(SEARCH_ATTRIBUTE_TYPES)) args.push(`--search-attribute=${name}=${type}`);
  return [...args, ...(o.extra ?? [])];
}
