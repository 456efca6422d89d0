/** The devstack's binaries: devstack/tools.sh builds or installs them once, into version-keyed folders. */
import { spawn } from 'node:child_process';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

export interface Tools {
  temporal: string;
  kubeApiserver: string;
  kubelet: string;
  kubeControllerManager: string;
  kubeScheduler: string;
  kubeRouter: string;
  etcd: string;
  moto: string;
}

const REPO_ROOT = fileURLToPath(new URL('..', import.meta.url));
const defaultLog = (line: string) => process.stderr.write(`${line}\n`);

/** Runs devstack/tools.sh (builds on first use, ~instant afterwards) and returns the binaries. */
export async function ensureTools(log: (line: string) => void = defaultLog): Promise<Tools> {
  const paths = await runToolsScript([], log);
  const tools = {
    temporal: paths['temporal'],
    kubeApiserver: paths['kube-apiserver'],
    kubelet: paths['kubelet'],
    kubeControllerManager: paths['kube-controller-manager'],
    kubeScheduler: paths['kube-scheduler'],
    kubeRouter: paths['kube-router'],
    etcd: paths['etcd'],
    moto: paths['moto'],
  };
  if (Object.values(tools).some((p) => !p)) {
    throw new Error(`devstack/tools.sh printed unexpected output: ${JSON.stringify(paths)}`);
  }
  return tools as Tools;
}

/** The helm CLI (built on first use), for the chart's tests only: not part of a first start. */
export async function ensureHelm(log: (line: string) => void = defaultLog): Promise<string> {
  const { helm } = await runToolsScript(['helm'], log);
  if (!helm) throw new Error('devstack/tools.sh helm printed no helm=<path>');
  return helm;
}

/** The Java SDK's time-skipping test server (fetched from Maven Central on first use), for the workflow tests only. */
export async function ensureTestServer(log: (line: string) => void = defaultLog): Promise<string> {
  const { 'temporal-test-server': server } = await runToolsScript(['test-server'], log);
  if (!server) throw new Error('devstack/tools.sh test-server printed no temporal-test-server=<path>');
  return server;
}

export interface ImageBase {
  podman: string;
  /** `docker.io/library/node:22-bookworm-slim`, assembled locally: the Dockerfile's FROM resolves to it. */
  tag: string;
  /** Its image ID: a new base (another Node.js, npm or recipe) has another. */
  id: string;
}

/** podman (installed and configured on first use) and the image's base, for the image's build (devstack/image.ts). */
export async function ensureImageBase(log: (line: string) => void = defaultLog): Promise<ImageBase> {
  const { podman, 'node-base': tag, 'node-base-id': id } = await runToolsScript(['image-base'], log);
  if (!podman || !tag || !id)
    throw new Error('devstack/tools.sh image-base printed no podman, node-base or node-base-id');
  return { podman, tag, id };
}

/** tools.sh with `args`: its progress (stderr) streamed line by line, a cold build takes minutes; its `name=path` lines parsed. */
async function runToolsScript(args: string[], log: (line: string) => void): Promise<Record<string, string>> {
  const child = spawn('bash', [path.join(REPO_ROOT, 'devstack/tools.sh'), ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
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
  if (code !== 0) throw new Error(`devstack/tools.sh ${args.join(' ')} failed (exit ${code}); see its output above`);
  return Object.fromEntries(
    stdout
      .trim()
      .split('\n')
      .filter((l) => l.includes('='))
      .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
  );
}
