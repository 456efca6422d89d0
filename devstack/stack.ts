/**
 * A local stack of real parts: etcd + kube-apiserver (no kubelet, no controllers) and
 * the Temporal dev server; with `aws`, also moto behind the AWS test front (devstack/aws.ts),
 * whose EKS clusters authenticate to this kube-apiserver. Used by `npm run stack up` and by
 * vitest's global setup.
 *
 * Every start is fresh: etcd data, certs and keys under stateDir are recreated and Temporal
 * and moto run in memory, so Kubernetes, Temporal and AWS state can never disagree across restarts.
 */
import * as fs from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { SEARCH_ATTRIBUTE_TYPES } from '../domain/search-attributes.js';
import { applyEksRbac } from './eks-rbac.js';
import { freePorts, httpsStatus } from './probes.js';
import { prepareKubeApiserver } from './kube-apiserver-args.js';
import { kill, launch, tail, waitFor, type Proc } from './processes.js';
import { temporalDevServerArgs } from './temporal-server.js';
import { ensureTools } from './tools.js';
import { MOTO_ENV, webhookKubeconfig, type AwsFrontOptions, type StackAws } from './aws.js';
import { aggregateClusterRoles } from './rbac-aggregation.js';
import { NODE_IP, realNodeMissing } from './node-host.js';
import { prepareRealNode, startRealNode, type RealNode } from './real-node.js';
import type { KubeTarget } from '../test/aws/kube-admin.js';

export type { StackAws } from './aws.js';

export interface Stack {
  temporalAddress: string;
  temporalUiUrl: string | null;
  kubeconfigPath: string;
  kubeApiUrl: string;
  adminToken: string;
  /** Present when started with `aws: true` (and not `awsInBackground`). */
  aws?: StackAws;
  /** With `aws: true`: resolves once moto is seeded and wired to this kube-apiserver (at once unless `awsInBackground`). */
  awsReady?: Promise<StackAws>;
  /** With `aws: true`: where the AWS front listens, known before it is ready. */
  awsEndpoint?: string;
  /**
   * Resolves once kube-apiserver has bootstrapped (the default RBAC roles and priority classes) and the default
   * roles are aggregated: at once unless `kubeBootstrapInBackground`.
   */
  kubeReady: Promise<void>;
  /**
   * With `realNode` on a machine that can run containers: the node, its pool, and control of its kubelet. With
   * `nodeInBackground`, set once `nodeReady` resolves.
   */
  node?: RealNode;
  /** With `realNode` on a machine that can run containers: resolves once the node is Ready (at once unless `nodeInBackground`). */
  nodeReady?: Promise<RealNode>;
  /** With `realNode` where containers cannot run: what this machine lacks (the stack then has no node, as without it). */
  nodeMissing?: string[];
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
  /**
   * Return once Kubernetes and Temporal are ready, and let AWS (loading the SDK, then seeding moto: the
   * slowest part of a start) finish behind `awsReady`. For `npm start`, whose worker needs AWS only for evidence.
   */
  awsInBackground?: boolean;
  /**
   * Return once the Kubernetes API serves, and let its bootstrap finish behind `kubeReady`: kube-apiserver creates
   * the default RBAC roles and priority classes each after a fixed 1 s wait, which a start would otherwise sit
   * out. The stack's admin (system:masters) needs neither; clients bound to the default roles (the tests) do.
   */
  kubeBootstrapInBackground?: boolean;
  /** The AWS front's port (default: any free one). */
  awsPort?: number;
  /** How long DeleteSecurityGroup answers DependencyViolation after a VPC Lambda is deleted (default 2). */
  eniReleaseSeconds?: number;
  /** Defaults 2 s and 1 s: never 0, so every test meets AWS's lifecycle, as production does. */
  functionPendingSeconds?: number;
  accessEntryDelaySeconds?: number;
  /**
   * Also run a real node (docs/real-node.md): containerd, kubelet, controller manager, scheduler, kube-router and a
   * stand-in mining pool. One per machine: a second stack asking for one waits for the first to stop. Where this
   * machine cannot run containers, the stack says what is missing and starts without it.
   */
  realNode?: boolean;
  /**
   * Return once Kubernetes and Temporal are ready, and let the real node become Ready behind `nodeReady`. For
   * `npm start`, whose worker and forwarder need no node (its demo miner does).
   */
  nodeInBackground?: boolean;
  log?: (line: string) => void;
}

/** kube-apiserver's readiness without the two bootstrap hooks that start with a fixed 1 s wait (see kubeBootstrapInBackground). */
const KUBE_SERVING =
  '/readyz?exclude=poststarthook/rbac/bootstrap-roles&exclude=poststarthook/scheduling/bootstrap-system-priority-classes';
const AWS_MAIN = fileURLToPath(new URL('./aws-main.ts', import.meta.url));

// ---------------------------------------------------------------------------------------
// Helpers

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
  const log = opts.log ?? ((line: string) => process.stderr.write(`${line}\n`));
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
  let node: RealNode | undefined;
  let nodeStarting: Promise<unknown> = Promise.resolve();
  // The node's API part waits for the API's bootstrap (its host part does not); a start that fails first fails it.
  let apiBootstrapped: (kube: KubeTarget) => void = () => undefined;
  let apiFailed: (err: unknown) => void = () => undefined;
  const nodeKube = new Promise<KubeTarget>((resolve, reject) => ((apiBootstrapped = resolve), (apiFailed = reject)));
  nodeKube.catch(() => undefined); // the node's start awaits it
  const stopAll = async () => {
    stopping = true;
    apiFailed(new Error('devstack: stopped before kube-apiserver bootstrapped'));
    await nodeStarting.catch(() => undefined); // a node half-started stops itself; a started one is stopped here
    if (node) {
      const left = await node.stop();
      if (left.length) log(`[node] could not remove from the host: ${left.join(', ')}`);
    }
    // etcd last: a kube-apiserver that loses etcd first floods its log with reconnect errors.
    await Promise.all(procs.filter((p) => p.name !== 'etcd').map(kill));
    await Promise.all(procs.map(kill));
    if (lambdaWorkDir) fs.rmSync(lambdaWorkDir, { recursive: true, force: true });
    release();
  };

  try {
    const tools = await ensureTools(log);
    const [etcdClient, etcdPeer, kubePort, temporalPort, uiPort, motoPort, frontPort] = (await freePorts(7)) as [
      number,
      number,
      number,
      number,
      number,
      number,
      number,
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

    const temporalArgs = temporalDevServerArgs(ports.temporal, {
      uiPort: opts.headless ? undefined : ports.ui,
      logLevel: 'warn',
    });
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
      // In the background (awsInBackground), at a lower CPU priority: kube-apiserver's start is what a start waits for.
      const background = opts.awsInBackground ?? false;
      procs.push(
        launch('moto', stateDir, tools.moto, ['-H', '127.0.0.1', '-p', String(ports.moto)], MOTO_ENV, background),
      );
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
      front = launch(
        'aws-front',
        stateDir,
        process.execPath,
        ['--import', pathToFileURL(tsx).href, AWS_MAIN, JSON.stringify(frontOpts)],
        { AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' },
        background,
      );
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

    // --- kube-apiserver: static admin token, RBAC, its own self-signed serving cert. Launched beside etcd,
    // not after it: it loads and builds its serving state meanwhile and waits for etcd on its own.
    const nodeMissing = opts.realNode ? realNodeMissing() : [];
    if (nodeMissing.length)
      log(`[node] this machine cannot run a real node; starting without one. Missing: ${nodeMissing.join('; ')}`);
    const nodePrep = opts.realNode && nodeMissing.length === 0 ? prepareRealNode(stateDir) : undefined;

    const apiserver = prepareKubeApiserver(kubeDir, {
      port: ports.kube,
      etcdUrl,
      ...(opts.aws ? { authWebhookConfig: webhookConfig } : {}),
      ...(nodePrep
        ? { node: { tokenLines: nodePrep.tokenLines, args: nodePrep.apiserverArgs, advertiseAddress: NODE_IP } }
        : {}),
    });
    const { adminToken, certDir } = apiserver;
    const kube = launch('kube-apiserver', stateDir, tools.kubeApiserver, apiserver.args);
    procs.push(kube);
    const nodeReady = nodePrep
      ? startRealNode({ prep: nodePrep, logDir: stateDir, tools, kube: nodeKube, temporalPort: ports.temporal, log })
      : Promise.resolve(undefined);
    nodeStarting = nodeReady.then((n) => (node = n));
    nodeStarting.catch(() => undefined); // awaited below
    // Loaded while the processes start, not before they are launched (a quarter of a second).
    const temporalClient = import('@temporalio/client');
    temporalClient.catch(() => undefined); // awaited below
    await waitFor(etcd, `${etcdUrl}/health`, 30_000, async () => {
      const res = await fetch(`${etcdUrl}/health`);
      return res.ok && ((await res.json()) as { health?: string }).health === 'true';
    });

    const kubeApiUrl = `https://127.0.0.1:${ports.kube}`;
    const certFile = path.join(certDir, 'apiserver.crt');
    let ca: Buffer | undefined;
    const readyz = (check: string) => async () => {
      ca = fs.existsSync(certFile) ? fs.readFileSync(certFile) : undefined; // re-read: may be mid-write
      if (!ca) return false;
      return (await httpsStatus(`${kubeApiUrl}${check}`, ca, adminToken)) === 200;
    };
    await waitFor(kube, `${kubeApiUrl}${KUBE_SERVING}`, 120_000, readyz(KUBE_SERVING));

    const kubeTarget = { url: kubeApiUrl, caPem: ca!.toString('utf8'), adminToken };
    const kubeReady = (async () => {
      await waitFor(kube, `${kubeApiUrl}/readyz`, 60_000, readyz('/readyz'));
      await aggregateClusterRoles(kubeTarget);
    })();
    kubeReady.catch(() => undefined); // awaited below, or by the caller (kubeBootstrapInBackground)
    kubeReady.then(() => apiBootstrapped(kubeTarget), apiFailed);
    if (!opts.kubeBootstrapInBackground) await kubeReady;
    const awsWired = Promise.all([awsReady, kubeReady]).then(async ([seeded]) => {
      if (!seeded) return undefined;
      // The RBAC an EKS cluster owner installs for the remediation function (deploy/kubernetes/).
      await applyEksRbac(kubeTarget);
      // The front needs the apiserver for DescribeCluster's endpoint/CA and for access policies' RBAC.
      const res = await fetch(`${frontUrl}/_kube`, { method: 'PUT', body: JSON.stringify(kubeTarget) });
      if (!res.ok)
        throw new Error(
          `devstack: the AWS front refused the kube-apiserver's coordinates: ${res.status} ${await res.text()}`,
        );
      log(`[devstack] AWS ready in ${((Date.now() - started) / 1000).toFixed(1)}s`);
      return seeded;
    });
    awsWired.catch(() => undefined); // awaited below, or by the caller (awsInBackground)
    const aws = opts.awsInBackground ? undefined : await awsWired;

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
    const { Connection } = await temporalClient;
    await waitFor(temporal, `search attributes on ${temporalAddress}`, 60_000, async () => {
      const conn = await Connection.connect({ address: temporalAddress, connectTimeout: 2000 });
      try {
        const res = await conn.operatorService.listSearchAttributes({ namespace: 'default' });
        return Object.keys(SEARCH_ATTRIBUTE_TYPES).every((k) => k in (res.customAttributes ?? {}));
      } finally {
        await conn.close();
      }
    });

    if (!opts.nodeInBackground) await nodeReady;

    const crashed = new Promise<string>((resolve) => {
      // A node that fails to start is a crash too, once the caller has the stack.
      nodeReady.then(
        (n) => void n?.crashed.then((why) => !stopping && resolve(why)),
        (err: unknown) => !stopping && resolve(`devstack: the real node did not start: ${(err as Error).message}`),
      );
      for (const p of procs) {
        void p.exited.then(() => {
          if (!stopping)
            resolve(`devstack: ${p.name} exited unexpectedly\n--- ${p.logPath} (tail) ---\n${tail(p.logPath)}\n---`);
        });
      }
    });
    log(`[devstack] ready in ${((Date.now() - started) / 1000).toFixed(1)}s (logs: ${stateDir}/*.log)`);
    const stack: Stack = {
      temporalAddress,
      temporalUiUrl: opts.headless ? null : `http://127.0.0.1:${ports.ui}`,
      kubeconfigPath,
      kubeApiUrl,
      adminToken,
      kubeReady,
      ...(node ? { node } : {}),
      ...(nodePrep ? { nodeReady: nodeReady as Promise<RealNode> } : {}),
      ...(opts.realNode && nodeMissing.length ? { nodeMissing } : {}),
      ...(aws ? { aws } : {}),
      ...(front ? { awsReady: awsWired as Promise<StackAws>, awsEndpoint: frontUrl } : {}),
      crashed,
      stop: stopAll,
    };
    void nodeReady.then(
      (n) => n && (stack.node = n),
      () => undefined,
    ); // a failure is reported through `crashed`
    return stack;
  } catch (err) {
    await stopAll();
    throw err;
  }
}
