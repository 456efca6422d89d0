/** The devstack's binaries: devstack/tools.sh builds or installs them once, into version-keyed folders. */
import { spawn } from 'node:child_process';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

export interface Tools {
  temporal: string;
  kubeApiserver: string;
  etcd: string;
  moto: string;
}

const REPO_ROOT = fileURLToPath(new URL('..', import.meta.url));
const defaultLog = (line: string) => process.stderr.write(`${line}\n`);

/** Runs devstack/tools.sh (builds on first use, ~instant afterwards) and returns the binaries. */
export async function ensureTools(log: (line: string) => void = defaultLog): Promise<Tools> {
  const child = spawn('bash', [path.join(REPO_ROOT, 'devstack/tools.sh')], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  // Stream build progress line by line: a cold build takes many minutes.
  let pending = '';
  child.stderr.on('data', (d: Buffer) => {
    const lines = (pending + d.toString()).split('\n');
    pending = lines.pop() ?? '';
    lines.forEach(log);
  });
  const code = await new Promise<number | null>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', resolve);
  });
  if (pending) log(pending);
  if (code !== 0) throw new Error(`devstack/tools.sh failed (exit ${code}); see its output above`);
  const paths = Object.fromEntries(
    stdout.trim().split('\n').map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
  );
  const tools = { temporal: paths['temporal'], kubeApiserver: paths['kube-apiserver'], etcd: paths['etcd'], moto: paths['moto'] };
  if (!tools.temporal || !tools.kubeApiserver || !tools.etcd || !tools.moto) {
    throw new Error(`devstack/tools.sh printed unexpected output:\n${stdout}`);
  }
  return tools as Tools;
}

/** The helm CLI (built on first use), for the chart's tests only: not part of a first start. */
export async function ensureHelm(): Promise<string> {
  const child = spawn('bash', [path.join(REPO_ROOT, 'devstack/tools.sh'), 'helm'], { stdio: ['ignore', 'pipe', 'inherit'] });
  let stdout = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  const code = await new Promise<number | null>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', resolve);
  });
  const helm = /^helm=(.+)$/m.exec(stdout)?.[1];
  if (code !== 0 || !helm) throw new Error(`devstack/tools.sh helm failed (exit ${code}); see its output above`);
  return helm;
}
