/**
 * A local stack of real parts: etcd + kube-apiserver (no kubelet, no controllers) and
 * the Temporal dev server; with `aws`, also moto behind the AWS test front (devstack/aws.ts),
 * whose EKS clusters authenticate to this kube-apiserver. Used by `npm run stack up` and by
 * vitest's global setup.
 *
 * Every start is fresh: etcd data, certs and keys under stateDir are recreated and Temporal
 * and moto run in memory, so Kubernetes, Temporal and AWS state can never disagree across restarts.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import { request } from 'node:https';
import { createRequire } from 'node:module';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Connection } from '@temporalio/client';
import { SEARCH_ATTRIBUTE_TYPES } from '../domain/search-attributes.js';
import { applyEksRbac } from './eks-rbac.js';
import { MOTO_ENV, webhookKubeconfig, type AwsFrontOptions, type StackAws } from './aws.js';
import { aggregateClusterRoles } from './rbac-aggregation.js';

export type { StackAws } from './aws.js';

export interface Stack {
  temporalAddress: string;
  temporalUiUrl: string | null;
  kubeconfigPath: string;
  kubeApiUrl: string;
  adminToken: string;
  /** Present when started with `aws: true`. */
  aws?: StackAws;
  /** Resolves (with the log tail) if a part of the stack dies before stop() is called. */
  crashed: Promise<string>;
  stop(): Promise<void>;
}

export interface StackOptions {
  stateDir: string;
  temporalPort?: number;
  temporalUiPort?: number;
  kubeApiPort?: number;
  headless?: boolean;
  /** Also start moto and the AWS front, and seed a VPC and EKS clusters backed by this kube-apiserver. */
  aws?: boolean;
  /** The AWS front's port (default: any free one). */
  awsPort?: number;
  /** How long DeleteSecurityGroup answers DependencyViolation after a VPC Lambda is deleted (default 2). */
  eniReleaseSeconds?: number;
  /** Defaults 2 s and 1 s: never 0, so every test meets AWS's lifecycle, as production does. */
  functionPendingSeconds?: number;
  accessEntryDelaySeconds?: number;
  log?: (line: string) => void;
}

export interface Tools {
  temporal: string;
  kubeApiserver: string;
  etcd: string;
  moto: string;
}

const REPO_ROOT = fileURLToPath(new URL('..', import.meta.url));
const AWS_MAIN = fileURLToPath(new URL('./aws-main.ts', import.meta.url));
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

// ---------------------------------------------------------------------------------------
// Child processes

interface Proc {
  name: string;
  child: ChildProcess;
  logPath: string;
  exited: Promise<void>;
}

const live = new Set<ChildProcess>();
let exitHookInstalled = false;

// If the parent dies by SIGKILL or a crash no JS handler runs; the kernel's parent-death signal
// (set via util-linux's setpriv, which then execs the real binary) still takes the children down.
const SETPRIV = ['/usr/bin/setpriv', '/bin/setpriv'].find((p) => fs.existsSync(p));

function launch(name: string, logDir: string, cmd: string, args: string[], env?: Record<string, string>): Proc {
  if (!exitHookInstalled) {
    // Covers normal exits and process.exit(); SIGINT/SIGTERM are the caller's business
    // (cli.ts stops the stack; vitest exits, which lands here).
    process.on('exit', () => live.forEach((c) => c.kill('SIGKILL')));
    exitHookInstalled = true;
  }
  const logPath = path.join(logDir, `${name}.log`);
  const fd = fs.openSync(logPath, 'w');
  const [file, argv] = SETPRIV ? [SETPRIV, ['--pdeathsig', 'KILL', '--', cmd, ...args]] : [cmd, args];
  const child = spawn(file, argv, { stdio: ['ignore', fd, fd], ...(env ? { env: { ...process.env, ...env } } : {}) });
  fs.closeSync(fd);
  live.add(child);
  const exited = new Promise<void>((resolve) => {
    child.once('error', (err) => {
      fs.appendFileSync(logPath, `\n[devstack] failed to spawn ${cmd}: ${err.message}\n`);
      live.delete(child);
      resolve();
    });
    child.once('exit', () => {
      live.delete(child);
      resolve();
    });
  });
  return { name, child, logPath, exited };
}

async function kill(proc: Proc): Promise<void> {
  if (proc.child.exitCode !== null || proc.child.signalCode !== null) return;
  proc.child.kill('SIGTERM');
  const timer = setTimeout(() => proc.child.kill('SIGKILL'), 5000); // keeps vitest's 10s teardown budget
  await proc.exited;
  clearTimeout(timer);
}

function tail(file: string, lines = 30): string {
  try {
    return fs.readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

/** Polls `probe` until it returns true; fails early, with the log tail, if the process dies. */
async function waitFor(proc: Proc, what: string, timeoutMs: number, probe: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let lastError = '';
  for (;;) {
    const dead = proc.child.exitCode !== null || proc.child.signalCode !== null;
    if (!dead) {
      try {
        if (await probe()) return;
      } catch (err) {
        lastError = err instanceof Error ? err.message : String(err);
      }
    }
    if (dead || Date.now() > deadline) {
      const why = dead ? `exited (${proc.child.exitCode ?? proc.child.signalCode})` : `not ready after ${timeoutMs / 1000}s`;
      throw new Error(
        `devstack: ${proc.name} ${why} while waiting for ${what}` +
          (lastError ? ` (last error: ${lastError})` : '') +
          `\n--- ${proc.logPath} (tail) ---\n${tail(proc.logPath)}\n---`,
      );
    }
    await new Promise((r) => setTimeout(r, 250));
  }
}

// ---------------------------------------------------------------------------------------
// Helpers

/** Holds all listeners open until every port is picked so one call never returns duplicates. */
/** `temporal server start-dev` on loopback with pod-responder's search attributes; `dbFile` keeps its data across restarts. */
export function temporalDevServerArgs(port: number, o: { uiPort?: number | undefined; dbFile?: string; logLevel?: string; extra?: string[] } = {}): string[] {
  const args = ['server', 'start-dev', '--ip=127.0.0.1', `--port=${port}`, `--log-level=${o.logLevel ?? 'error'}`];
  args.push(...(o.uiPort ? [`--ui-port=${o.uiPort}`] : ['--headless']));
  if (o.dbFile) args.push(`--db-filename=${o.dbFile}`);
  for (const [name, type] of Object.entries(SEARCH_ATTRIBUTE_TYPES)) args.push(`--search-attribute=${name}=${type}`);
  return [...args, ...(o.extra ?? [])];
}

export async function freePorts(count: number): Promise<number[]> {
  const servers = await Promise.all(
    Array.from({ length: count }, () => {
      const srv = createServer();
      return new Promise<typeof srv>((resolve, reject) => {
        srv.once('error', reject);
        srv.listen(0, '127.0.0.1', () => resolve(srv));
      });
    }),
  );
  const ports = servers.map((s) => (s.address() as AddressInfo).port);
  await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
  return ports;
}

function httpsStatus(url: string, ca: Buffer, token: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request(url, { ca, headers: { Authorization: `Bearer ${token}` }, timeout: 5000 }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end();
  });
}

/** Refuses to share a stateDir with a live stack (we are about to wipe its data). */
function claimStateDir(stateDir: string): () => void {
  const pidFile = path.join(stateDir, 'stack.pid');
  try {
    const pid = Number(fs.readFileSync(pidFile, 'utf8'));
    if (pid && pid !== process.pid) {
      process.kill(pid, 0); // throws if that process is gone
      throw new Error(`devstack: another stack (pid ${pid}) is using ${stateDir}; stop it first`);
    }
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT' && (err as NodeJS.ErrnoException).code !== 'ESRCH') throw err;
  }
  fs.writeFileSync(pidFile, String(process.pid));
  return () => fs.rmSync(pidFile, { force: true });
}

// ---------------------------------------------------------------------------------------

export async function startStack(opts: StackOptions): Promise<Stack> {
  const log = opts.log ?? defaultLog;
  const stateDir = path.resolve(opts.stateDir);
  fs.mkdirSync(stateDir, { recursive: true });
  const release = claimStateDir(stateDir);
  const etcdDir = path.join(stateDir, 'etcd');
  const kubeDir = path.join(stateDir, 'kube');
  fs.rmSync(etcdDir, { recursive: true, force: true });
  fs.rmSync(kubeDir, { recursive: true, force: true });
  fs.mkdirSync(path.join(kubeDir, 'certs'), { recursive: true });

  const started = Date.now();
  const procs: Proc[] = [];
  let lambdaWorkDir: string | undefined;
  let stopping = false;
  const stopAll = async () => {
    stopping = true;
    // etcd last: a kube-apiserver that loses etcd first floods its log with reconnect errors.
    await Promise.all(procs.filter((p) => p.name !== 'etcd').map(kill));
    await Promise.all(procs.map(kill));
    if (lambdaWorkDir) fs.rmSync(lambdaWorkDir, { recursive: true, force: true });
    release();
  };

  try {
    const tools = await ensureTools(log);
    const [etcdClient, etcdPeer, kubePort, temporalPort, uiPort, motoPort, frontPort] = (await freePorts(7)) as [
      number, number, number, number, number, number, number,
    ];
    const ports = {
      etcdClient,
      etcdPeer,
      kube: opts.kubeApiPort ?? kubePort,
      temporal: opts.temporalPort ?? temporalPort,
      ui: opts.temporalUiPort ?? uiPort,
      moto: motoPort,
      front: opts.awsPort ?? frontPort,
    };

    // --- etcd and Temporal start together; kube-apiserver needs etcd first.
    const etcdUrl = `http://127.0.0.1:${ports.etcdClient}`;
    const peerUrl = `http://127.0.0.1:${ports.etcdPeer}`;
    const etcd = launch('etcd', stateDir, tools.etcd, [
      '--name=devstack',
      `--data-dir=${etcdDir}`,
      `--listen-client-urls=${etcdUrl}`,
      `--advertise-client-urls=${etcdUrl}`,
      `--listen-peer-urls=${peerUrl}`,
      `--initial-advertise-peer-urls=${peerUrl}`,
      `--initial-cluster=devstack=${peerUrl}`,
      '--logger=zap',
      '--log-level=warn',
    ]);
    procs.push(etcd);

    const temporalArgs = temporalDevServerArgs(ports.temporal, { uiPort: opts.headless ? undefined : ports.ui, logLevel: 'warn' });
    const temporal = launch('temporal', stateDir, tools.temporal, temporalArgs);
    procs.push(temporal);

    // --- moto (a Python process that takes a second to import) and the AWS front (a node process
    // that loads the AWS SDK, then seeds moto through itself) start now too; the front's URL is
    // fixed up front so kube-apiserver's token webhook can point at it.
    const motoUrl = `http://127.0.0.1:${ports.moto}`;
    const frontUrl = `http://127.0.0.1:${ports.front}`;
    const webhookConfig = path.join(kubeDir, 'aws-webhook.kubeconfig');
    let front: Proc | undefined;
    if (opts.aws) {
      procs.push(launch('moto', stateDir, tools.moto, ['-H', '127.0.0.1', '-p', String(ports.moto)], MOTO_ENV));
      // Outside the repository: unpacked Lambda code must not resolve the project's node_modules.
      lambdaWorkDir = fs.mkdtempSync(path.join(tmpdir(), 'pod-responder-lambda-'));
      const frontOpts: AwsFrontOptions = {
        motoUrl,
        port: ports.front,
        eniReleaseSeconds: opts.eniReleaseSeconds ?? 2,
        functionPendingSeconds: opts.functionPendingSeconds ?? 2,
        accessEntryDelaySeconds: opts.accessEntryDelaySeconds ?? 1,
        lambdaWorkDir,
      };
      const tsx = createRequire(import.meta.url).resolve('tsx');
      front = launch('aws-front', stateDir, process.execPath, ['--import', pathToFileURL(tsx).href, AWS_MAIN, JSON.stringify(frontOpts)], {
        AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
      });
      procs.push(front);
      fs.writeFileSync(webhookConfig, webhookKubeconfig(`${frontUrl}/_authenticate`));
    }
    const awsReady = (async (): Promise<StackAws | undefined> => {
      if (!front) return undefined;
      let seeded: StackAws | undefined;
      await waitFor(front, `${frontUrl}/_ready (moto started and seeded)`, 90_000, async () => {
        const res = await fetch(`${frontUrl}/_ready`);
        if (res.ok) seeded = (await res.json()) as StackAws;
        return res.ok;
      });
      return seeded;
    })();
    awsReady.catch(() => undefined); // awaited below; don't let an early failure go unhandled meanwhile

    await waitFor(etcd, `${etcdUrl}/health`, 30_000, async () => {
      const res = await fetch(`${etcdUrl}/health`);
      return res.ok && ((await res.json()) as { health?: string }).health === 'true';
    });

    // --- kube-apiserver: static admin token, RBAC, its own self-signed serving cert.
    const adminToken = randomBytes(24).toString('hex');
    const tokenFile = path.join(kubeDir, 'tokens.csv');
    fs.writeFileSync(tokenFile, `${adminToken},devstack-admin,devstack-admin,"system:masters"\n`, { mode: 0o600 });
    const sa = generateKeyPairSync('ec', {
      namedCurve: 'prime256v1',
      publicKeyEncoding: { type: 'spki', format: 'pem' },
      privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
    });
    fs.writeFileSync(path.join(kubeDir, 'sa.pub'), sa.publicKey);
    fs.writeFileSync(path.join(kubeDir, 'sa.key'), sa.privateKey, { mode: 0o600 });

    const certDir = path.join(kubeDir, 'certs');
    const kube = launch('kube-apiserver', stateDir, tools.kubeApiserver, [
      `--etcd-servers=${etcdUrl}`,
      '--bind-address=127.0.0.1',
      '--advertise-address=127.0.0.1',
      `--secure-port=${ports.kube}`,
      // No --tls-cert-file: the apiserver writes a CA-signed cert for 127.0.0.1 here, which we trust.
      `--cert-dir=${certDir}`,
      `--token-auth-file=${tokenFile}`,
      '--authorization-mode=RBAC',
      `--service-account-issuer=https://kubernetes.default.svc`,
      `--service-account-key-file=${path.join(kubeDir, 'sa.pub')}`,
      `--service-account-signing-key-file=${path.join(kubeDir, 'sa.key')}`,
      '--service-cluster-ip-range=10.96.0.0/16',
      // No token controller runs, so the ServiceAccount plugin would reject every pod.
      '--disable-admission-plugins=ServiceAccount',
      // Malicious pods are often privileged; tests must be able to create them.
      '--allow-privileged=true',
      // The default 'lease' reconciler refuses a loopback endpoint for the kubernetes service.
      '--endpoint-reconciler-type=none',
      // etcd 3.4 has no watch progress requests, so the watch cache never learns the current
      // revision and every watch fails with "Too large resource version": read etcd directly.
      '--watch-cache=false',
      '--profiling=false',
      // EKS authentication: aws-iam-authenticator tokens, checked by the AWS front. No cache, so a
      // deleted access entry stops authenticating at once (the apiserver still caches successes 10s).
      ...(opts.aws
        ? [
            `--authentication-token-webhook-config-file=${webhookConfig}`,
            '--authentication-token-webhook-version=v1',
            '--authentication-token-webhook-cache-ttl=0s',
          ]
        : []),
    ]);
    procs.push(kube);

    const kubeApiUrl = `https://127.0.0.1:${ports.kube}`;
    const certFile = path.join(certDir, 'apiserver.crt');
    let ca: Buffer | undefined;
    await waitFor(kube, `${kubeApiUrl}/readyz`, 120_000, async () => {
      ca = fs.existsSync(certFile) ? fs.readFileSync(certFile) : undefined; // re-read: may be mid-write
      if (!ca) return false;
      return (await httpsStatus(`${kubeApiUrl}/readyz`, ca, adminToken)) === 200;
    });

    const kubeTarget = { url: kubeApiUrl, caPem: ca!.toString('utf8'), adminToken };
    await aggregateClusterRoles(kubeTarget);
    const aws = await awsReady;
    if (front) {
      // The RBAC an EKS cluster owner installs for the remediation function (deploy/kubernetes/).
      await applyEksRbac(kubeTarget);
      // The front needs the apiserver for DescribeCluster's endpoint/CA and for access policies' RBAC.
      const res = await fetch(`${frontUrl}/_kube`, { method: 'PUT', body: JSON.stringify(kubeTarget) });
      if (!res.ok) throw new Error(`devstack: the AWS front refused the kube-apiserver's coordinates: ${res.status} ${await res.text()}`);
    }

    const kubeconfigPath = path.join(stateDir, 'kubeconfig.yaml');
    fs.writeFileSync(
      kubeconfigPath,
      [
        'apiVersion: v1',
        'kind: Config',
        'clusters:',
        '- name: devstack',
        '  cluster:',
        `    server: ${kubeApiUrl}`,
        `    certificate-authority-data: ${ca!.toString('base64')}`,
        'users:',
        '- name: devstack-admin',
        '  user:',
        `    token: ${adminToken}`,
        'contexts:',
        '- name: devstack',
        '  context:',
        '    cluster: devstack',
        '    user: devstack-admin',
        'current-context: devstack',
        '',
      ].join('\n'),
      { mode: 0o600 },
    );

    // --- Temporal: ready once the frontend answers and every search attribute is registered.
    const temporalAddress = `127.0.0.1:${ports.temporal}`;
    await waitFor(temporal, `search attributes on ${temporalAddress}`, 60_000, async () => {
      const conn = await Connection.connect({ address: temporalAddress, connectTimeout: 2000 });
      try {
        const res = await conn.operatorService.listSearchAttributes({ namespace: 'default' });
        return Object.keys(SEARCH_ATTRIBUTE_TYPES).every((k) => k in (res.customAttributes ?? {}));
      } finally {
        await conn.close();
      }
    });

    const crashed = new Promise<string>((resolve) => {
      for (const p of procs) {
        void p.exited.then(() => {
          if (!stopping) resolve(`devstack: ${p.name} exited unexpectedly\n--- ${p.logPath} (tail) ---\n${tail(p.logPath)}\n---`);
        });
      }
    });
    log(`[devstack] ready in ${((Date.now() - started) / 1000).toFixed(1)}s (logs: ${stateDir}/*.log)`);
    return {
      temporalAddress,
      temporalUiUrl: opts.headless ? null : `http://127.0.0.1:${ports.ui}`,
      kubeconfigPath,
      kubeApiUrl,
      adminToken,
      ...(aws ? { aws } : {}),
      crashed,
      stop: stopAll,
    };
  } catch (err) {
    await stopAll();
    throw err;
  }
}
