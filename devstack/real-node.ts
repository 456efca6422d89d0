/**
 * A real node for the local cluster (docs/real-node.md): containerd + runc + a CNI bridge, the kubelet, the controller
 * manager and scheduler, kube-router as the NetworkPolicy enforcer, and a stand-in mining pool on the node's bridge
 * address. Pods run as processes on this machine; everything the node creates on the host is removed on stop.
 *
 * Two phases, because kube-apiserver must know the node before it starts: prepareRealNode() gives its extra tokens
 * and flags; startRealNode() runs the node: its host part at once, its API part once the API has bootstrapped.
 */
import { randomBytes } from 'node:crypto';
import { execFile, execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { kubeRequest, type KubeTarget } from '../test/aws/kube-admin.js';
import {
  BRIDGE,
  CNI_NETWORK,
  HOST_LOCK,
  NODE_IP,
  POD_SUBNET,
  cleanHost,
  snapshotHost,
  type HostSnapshot,
} from './node-host.js';
import { IMAGES, POOL_PORT, buildImageArchive } from './node-images.js';
import { startPool, type Pool } from './node-pool.js';
import { startRelay, type Relay } from './node-relay.js';
import { kill, launch, tail, waitFor, type Proc } from './processes.js';

export const NODE_NAME = 'pod-responder-node';
/** Locally administered (02:…), "prn" in the middle. */
const BRIDGE_MAC = '02:70:72:6e:00:01';
const CLUSTER_CIDR = POD_SUBNET; // one node: the controller manager gives it the whole range
/**
 * Where pods reach kube-apiserver and Temporal: relays on the node's address (devstack/node-relay.ts), fixed ports
 * like a cluster's (one node per machine; the address exists only on the bridge).
 */
export const NODE_API_PORT = 6443;
export const NODE_TEMPORAL_PORT = 7233;
/** How long the node may miss status updates before the controller manager marks it NotReady. */
export const NODE_GRACE_SECONDS = 10;

export interface RealNodeTools {
  kubelet: string;
  kubeControllerManager: string;
  kubeScheduler: string;
  kubeRouter: string;
}

export interface RealNodePrep {
  nodeDir: string;
  /** Lines for kube-apiserver's token file: the node's parts authenticate with these. */
  tokenLines: string[];
  /** Extra kube-apiserver flags: reach the kubelet by InternalIP with a client certificate the kubelet trusts. */
  apiserverArgs: string[];
  tokens: { kubelet: string; controllerManager: string; scheduler: string; kubeRouter: string };
}

export interface RealNode {
  nodeName: string;
  nodeIp: string;
  pool: Pool;
  /**
   * kube-apiserver as pods reach it: no kube-proxy routes the `kubernetes` Service's ClusterIP, so a pod that talks to
   * the API sets KUBERNETES_SERVICE_HOST/PORT to these (the chart's apiServer value).
   */
  apiServer: { host: string; port: number };
  /** Temporal's frontend as pods reach it (host:port). */
  temporalAddress: string;
  /**
   * Imports an image archive (`docker save` or OCI) into the node's containerd, in the namespace the kubelet uses
   * (`ctr -n k8s.io images import`): no registry is reachable here, so this is how an image gets onto the node.
   */
  importImage(archive: string): Promise<void>;
  /** Stops the kubelet alone (the node goes NotReady after NODE_GRACE_SECONDS); startKubelet() brings it back. */
  stopKubelet(): Promise<void>;
  startKubelet(): void;
  /** Resolves (with the log tail) if a part of the node dies other than by stop() or stopKubelet(). */
  crashed: Promise<string>;
  /** Stops every part and removes what the node made on the host; resolves with anything that could not be removed. */
  stop(): Promise<string[]>;
}

function openssl(args: string[]): void {
  execFileSync('openssl', args, { stdio: ['ignore', 'ignore', 'pipe'] });
}

export function prepareRealNode(stateDir: string): RealNodePrep {
  const nodeDir = path.join(stateDir, 'node');
  fs.rmSync(nodeDir, { recursive: true, force: true });
  const pki = path.join(nodeDir, 'pki');
  fs.mkdirSync(pki, { recursive: true });
  // A CA the kubelet trusts for client certificates, and the one certificate it signs: kube-apiserver's, for logs,
  // exec and the like. Anonymous requests to the kubelet are refused.
  const p = (f: string) => path.join(pki, f);
  openssl([
    'req',
    '-x509',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:P-256',
    '-nodes',
    '-days',
    '7',
    '-subj',
    '/CN=pod-responder-kubelet-client-ca',
    '-keyout',
    p('ca.key'),
    '-out',
    p('ca.crt'),
  ]);
  openssl([
    'req',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:P-256',
    '-nodes',
    '-subj',
    '/O=system:masters/CN=kube-apiserver-kubelet-client',
    '-keyout',
    p('apiserver-kubelet-client.key'),
    '-out',
    p('apiserver-kubelet-client.csr'),
  ]);
  openssl([
    'x509',
    '-req',
    '-in',
    p('apiserver-kubelet-client.csr'),
    '-CA',
    p('ca.crt'),
    '-CAkey',
    p('ca.key'),
    '-CAcreateserial',
    '-days',
    '7',
    '-out',
    p('apiserver-kubelet-client.crt'),
  ]);

  const token = () => randomBytes(24).toString('hex');
  const tokens = { kubelet: token(), controllerManager: token(), scheduler: token(), kubeRouter: token() };
  return {
    nodeDir,
    tokens,
    tokenLines: [
      // The Node authorizer scopes the kubelet to its own node's objects.
      `${tokens.kubelet},system:node:${NODE_NAME},system:node:${NODE_NAME},"system:nodes"`,
      `${tokens.controllerManager},system:kube-controller-manager,system:kube-controller-manager`,
      `${tokens.scheduler},system:kube-scheduler,system:kube-scheduler`,
      `${tokens.kubeRouter},system:pod-responder:kube-router,system:pod-responder:kube-router`,
    ],
    apiserverArgs: [
      // Node names resolve nowhere here: reach the kubelet by the InternalIP it registers.
      '--kubelet-preferred-address-types=InternalIP',
      `--kubelet-client-certificate=${p('apiserver-kubelet-client.crt')}`,
      `--kubelet-client-key=${p('apiserver-kubelet-client.key')}`,
    ],
  };
}

function kubeconfig(kube: KubeTarget, token: string): string {
  return JSON.stringify({
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [
      {
        name: 'devstack',
        cluster: { server: kube.url, 'certificate-authority-data': Buffer.from(kube.caPem).toString('base64') },
      },
    ],
    users: [{ name: 'u', user: { token } }],
    contexts: [{ name: 'c', context: { cluster: 'devstack', user: 'u' } }],
    'current-context': 'c',
  });
}

/** kube-router's NetworkPolicy controller reads these and writes nothing. */
const KUBE_ROUTER_ROLE = {
  apiVersion: 'rbac.authorization.k8s.io/v1',
  kind: 'ClusterRole',
  metadata: { name: 'pod-responder:kube-router' },
  rules: [
    {
      apiGroups: [''],
      resources: ['pods', 'namespaces', 'nodes', 'services', 'endpoints'],
      verbs: ['get', 'list', 'watch'],
    },
    { apiGroups: ['networking.k8s.io'], resources: ['networkpolicies'], verbs: ['get', 'list', 'watch'] },
    { apiGroups: ['discovery.k8s.io'], resources: ['endpointslices'], verbs: ['get', 'list', 'watch'] },
  ],
};

/** One node per machine: waits for another stack's node to stop, and cleans up after one whose process died. */
async function lockHost(nodeDir: string, log: (l: string) => void): Promise<() => void> {
  const stateFile = `${HOST_LOCK}.json`;
  const deadline = Date.now() + 15 * 60_000;
  for (let said = false; ;) {
    try {
      fs.writeFileSync(HOST_LOCK, String(process.pid), { flag: 'wx' });
      return () => {
        fs.rmSync(stateFile, { force: true });
        fs.rmSync(HOST_LOCK, { force: true });
      };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    const pid = Number(fs.readFileSync(HOST_LOCK, 'utf8'));
    let alive = false;
    try {
      if (pid) process.kill(pid, 0);
      alive = pid > 0;
    } catch {
      // gone
    }
    if (!alive) {
      // Its node's leftovers: clean them with the snapshot it took before starting, then take the lock.
      try {
        const prev = JSON.parse(fs.readFileSync(stateFile, 'utf8')) as {
          before: HostSnapshot;
          containerdSocket: string;
          nodeDir: string;
        };
        const left = await cleanHost(prev.before, prev);
        log(
          `[node] cleaned up after a node whose process (${pid}) died${left.length ? `; still left: ${left.join(', ')}` : ''}`,
        );
      } catch {
        // no state: nothing was started yet
      }
      fs.rmSync(HOST_LOCK, { force: true });
      continue;
    }
    if (Date.now() > deadline)
      throw new Error(`devstack: the real node is still in use by process ${pid} (${HOST_LOCK})`);
    if (!said) log(`[node] waiting for the real node of process ${pid} to stop (one per machine)`);
    said = true;
    await new Promise((r) => setTimeout(r, 1000));
  }
}

export async function startRealNode(o: {
  prep: RealNodePrep;
  logDir: string;
  tools: RealNodeTools;
  /**
   * The API, once its bootstrap roles exist (the controllers need them). The host's part (bridge, containerd, the
   * images) does not wait for it: the node starts beside kube-apiserver, not after it.
   */
  kube: Promise<KubeTarget>;
  /** The Temporal dev server's port on loopback, relayed to pods. */
  temporalPort: number;
  log: (line: string) => void;
}): Promise<RealNode> {
  const { nodeDir, tokens } = o.prep;
  const started = Date.now();
  const release = await lockHost(nodeDir, o.log);
  const before = snapshotHost();
  const containerdSocket = path.join(nodeDir, 'containerd', 'containerd.sock');
  fs.writeFileSync(`${HOST_LOCK}.json`, JSON.stringify({ before, containerdSocket, nodeDir }));
  const procs: Proc[] = [];
  let stopping = false;
  let reportCrash: (why: string) => void = () => undefined;
  const crashed = new Promise<string>((resolve) => (reportCrash = resolve));
  const watch = (p: Proc) => {
    procs.push(p);
    void p.exited.then(() => {
      if (!stopping && p !== stoppedKubelet)
        reportCrash(`devstack: ${p.name} exited unexpectedly\n--- ${p.logPath} (tail) ---\n${tail(p.logPath)}\n---`);
    });
    return p;
  };
  let stoppedKubelet: Proc | undefined;
  let pool: Pool | undefined;
  const relays: Relay[] = [];
  let kubelet: Proc | undefined;
  const stop = async () => {
    stopping = true;
    // The node's own parts first, so nothing restarts a container while containerd's are killed.
    await Promise.all(procs.filter((p) => p.name !== 'containerd').map(kill));
    await Promise.all(procs.map(kill));
    await pool?.close();
    await Promise.all(relays.map((r) => r.close()));
    const left = await cleanHost(before, { containerdSocket, nodeDir });
    release();
    return left;
  };

  try {
    // --- The bridge, made here with the node's address so the kubelet can register it as its InternalIP before
    // any pod exists. The CNI bridge plugin joins pods to it; not as gateway, so it never enables IP forwarding:
    // pods reach this address and each other, nothing beyond.
    spawnSync('ip', ['link', 'delete', BRIDGE], { stdio: 'ignore' });
    // A fixed MAC: a bridge without one takes its lowest port's, so it changed whenever a pod went and every other
    // pod's ARP entry for the node's address went stale (their connections stalled for half a minute).
    execFileSync('ip', ['link', 'add', BRIDGE, 'address', BRIDGE_MAC, 'type', 'bridge']);
    execFileSync('ip', ['addr', 'add', `${NODE_IP}/24`, 'dev', BRIDGE]);
    execFileSync('ip', ['link', 'set', BRIDGE, 'up']);
    fs.writeFileSync('/proc/sys/net/bridge/bridge-nf-call-iptables', '1'); // so iptables sees pod-to-pod traffic

    const cni = path.join(nodeDir, 'cni');
    fs.mkdirSync(path.join(cni, 'net.d'), { recursive: true });
    fs.writeFileSync(
      path.join(cni, 'net.d', '10-pod-responder.conflist'),
      JSON.stringify({
        cniVersion: '1.0.0',
        name: CNI_NETWORK,
        plugins: [
          {
            type: 'bridge',
            bridge: BRIDGE,
            isGateway: false,
            ipMasq: false,
            hairpinMode: true,
            ipam: {
              type: 'host-local',
              ranges: [[{ subnet: POD_SUBNET, rangeStart: '10.244.0.10' }]],
              dataDir: path.join(cni, 'ipam'),
            },
          },
        ],
      }),
    );

    // --- containerd: its own root, state and socket in the node's folder.
    const cdDir = path.join(nodeDir, 'containerd');
    fs.mkdirSync(cdDir, { recursive: true });
    const cdConfig = path.join(cdDir, 'config.toml');
    fs.writeFileSync(
      cdConfig,
      `version = 2
root = "${cdDir}/root"
state = "${cdDir}/state"
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.internal.v1.tracing"]
[grpc]
  address = "${containerdSocket}"
[ttrpc]
  address = "${containerdSocket}.ttrpc"
[plugins."io.containerd.internal.v1.opt"]
  path = "${cdDir}/opt"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "${IMAGES.pause}"
  # This sandbox refuses a negative oom_score_adj, which the kubelet asks for every sandbox.
  restrict_oom_score_adj = true
  enable_selinux = false
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        BinaryName = "runc"
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "${cni}/net.d"
`,
    );
    const containerd = launch('containerd', o.logDir, 'containerd', ['--config', cdConfig]);
    watch(containerd);
    const ctr = (args: string[]) =>
      execFileSync('ctr', ['--address', containerdSocket, '-n', 'k8s.io', ...args], {
        stdio: ['ignore', 'pipe', 'pipe'],
      });
    await waitFor(containerd, `its socket ${containerdSocket}`, 30_000, async () => {
      if (!fs.existsSync(containerdSocket)) return false;
      ctr(['version']);
      return true;
    });
    ctr(['images', 'import', '--no-unpack=false', buildImageArchive(nodeDir)]);
    const kube = await o.kube;

    // --- The controllers and the scheduler.
    const write = (name: string, token: string) => {
      const f = path.join(nodeDir, `${name}.kubeconfig`);
      fs.writeFileSync(f, kubeconfig(kube, token), { mode: 0o600 });
      return f;
    };
    const kcmConfig = write('kube-controller-manager', tokens.controllerManager);
    const stateDir = path.dirname(o.prep.nodeDir);
    watch(
      launch('kube-controller-manager', o.logDir, o.tools.kubeControllerManager, [
        `--kubeconfig=${kcmConfig}`,
        `--authentication-kubeconfig=${kcmConfig}`,
        `--authorization-kubeconfig=${kcmConfig}`,
        '--secure-port=0',
        '--leader-elect=false',
        // Each controller acts as its own service account, with the roles Kubernetes gives it.
        '--use-service-account-credentials=true',
        `--service-account-private-key-file=${path.join(stateDir, 'kube', 'sa.key')}`,
        '--allocate-node-cidrs=true',
        `--cluster-cidr=${CLUSTER_CIDR}`,
        '--node-cidr-mask-size=24',
        `--node-monitor-grace-period=${NODE_GRACE_SECONDS}s`,
        '--node-monitor-period=2s',
        '--v=1',
      ]),
    );
    const schedConfig = write('kube-scheduler', tokens.scheduler);
    watch(
      launch('kube-scheduler', o.logDir, o.tools.kubeScheduler, [
        `--kubeconfig=${schedConfig}`,
        `--authentication-kubeconfig=${schedConfig}`,
        `--authorization-kubeconfig=${schedConfig}`,
        '--secure-port=0',
        '--leader-elect=false',
        '--v=1',
      ]),
    );

    // --- The kubelet.
    const kubeletDir = path.join(nodeDir, 'kubelet');
    fs.mkdirSync(kubeletDir, { recursive: true });
    const kubeletConfig = path.join(nodeDir, 'kubelet.yaml');
    fs.writeFileSync(
      kubeletConfig,
      JSON.stringify({
        apiVersion: 'kubelet.config.k8s.io/v1beta1',
        kind: 'KubeletConfiguration',
        cgroupDriver: 'cgroupfs',
        failSwapOn: false,
        failCgroupV1: false, // this machine's cgroups are v1
        address: NODE_IP,
        port: 10250,
        readOnlyPort: 0,
        healthzPort: 0,
        authentication: {
          anonymous: { enabled: false },
          webhook: { enabled: false },
          x509: { clientCAFile: path.join(nodeDir, 'pki', 'ca.crt') },
        },
        authorization: { mode: 'AlwaysAllow' }, // any client the CA signed: kube-apiserver alone
        containerRuntimeEndpoint: `unix://${containerdSocket}`,
        podLogsDir: path.join(nodeDir, 'pod-logs'),
        resolvConf: '',
        // The disk is shared with everything else on this machine: never evict or garbage-collect the local images.
        evictionHard: {
          'memory.available': '100Mi',
          'nodefs.available': '1%',
          'imagefs.available': '1%',
          'nodefs.inodesFree': '1%',
        },
        imageGCHighThresholdPercent: 100,
        imageGCLowThresholdPercent: 99,
        nodeStatusUpdateFrequency: '2s',
        nodeStatusReportFrequency: '10s',
        syncFrequency: '10s',
        fileCheckFrequency: '10s',
        serializeImagePulls: false,
        maxPods: 50,
      }),
    );
    const kubeletArgs = [
      `--config=${kubeletConfig}`,
      `--kubeconfig=${write('kubelet', tokens.kubelet)}`,
      `--root-dir=${kubeletDir}`,
      `--cert-dir=${path.join(kubeletDir, 'pki')}`,
      `--hostname-override=${NODE_NAME}`,
      `--node-ip=${NODE_IP}`,
      '--v=1',
    ];
    const startKubelet = () => {
      kubelet = launch('kubelet', o.logDir, o.tools.kubelet, kubeletArgs);
      watch(kubelet);
    };
    startKubelet();

    // --- kube-router, NetworkPolicy only: no routing (one node), no service proxy.
    const admin = kube;
    for (const [url, body] of [
      ['/apis/rbac.authorization.k8s.io/v1/clusterroles', KUBE_ROUTER_ROLE],
      [
        '/apis/rbac.authorization.k8s.io/v1/clusterrolebindings',
        {
          apiVersion: 'rbac.authorization.k8s.io/v1',
          kind: 'ClusterRoleBinding',
          metadata: { name: 'pod-responder:kube-router' },
          roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'pod-responder:kube-router' },
          subjects: [{ apiGroup: 'rbac.authorization.k8s.io', kind: 'User', name: 'system:pod-responder:kube-router' }],
        },
      ],
    ] as const) {
      const res = await kubeRequest(admin, 'POST', url, body);
      if (res.status !== 201 && res.status !== 409)
        throw new Error(`devstack: ${url}: ${res.status} ${JSON.stringify(res.body)}`);
    }
    // --- Ready: from the kubelet's own status.
    await waitFor(kubelet!, `node ${NODE_NAME} Ready`, 120_000, async () => {
      const res = await kubeRequest(admin, 'GET', `/api/v1/nodes/${NODE_NAME}`);
      if (res.status !== 200) return false;
      const node = res.body as {
        spec?: { podCIDR?: string };
        status?: { conditions?: { type: string; status: string }[] };
      };
      return (
        !!node.spec?.podCIDR && node.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') === true
      );
    });
    // kube-router finds its node by name at start, so it starts once the node is registered; ready once its
    // chains are in place.
    const kubeRouter = launch('kube-router', o.logDir, o.tools.kubeRouter, [
      `--kubeconfig=${write('kube-router', tokens.kubeRouter)}`,
      `--hostname-override=${NODE_NAME}`,
      '--run-firewall=true',
      '--run-router=false',
      '--run-service-proxy=false',
      '--run-loadbalancer=false',
      '--enable-ipv6=false',
      '--health-port=0',
      '--metrics-port=0',
      '--iptables-sync-period=1m',
      '--v=1',
    ]);
    watch(kubeRouter);

    await waitFor(
      kubeRouter,
      'its iptables chains (KUBE-ROUTER-INPUT)',
      60_000,
      async () => spawnSync('iptables', ['-w', '5', '-S', 'KUBE-ROUTER-INPUT'], { stdio: 'ignore' }).status === 0,
    );
    pool = await startPool(NODE_IP, POOL_PORT);
    // Each pushed as soon as it listens, so a failed start closes what did.
    const relay = async (name: string, port: number, targetHost: string, targetPort: number) => {
      const r = await startRelay({ name, host: NODE_IP, port, targetHost, targetPort });
      relays.push(r);
      return r;
    };
    const apiUrl = new URL(kube.url);
    const api = await relay('kube-apiserver', NODE_API_PORT, apiUrl.hostname, Number(apiUrl.port));
    const temporal = await relay('Temporal', NODE_TEMPORAL_PORT, '127.0.0.1', o.temporalPort);
    o.log(
      `[node] ${NODE_NAME} Ready in ${((Date.now() - started) / 1000).toFixed(1)}s (pool ${pool.address}, report ${pool.reportUrl}; for pods: kube-apiserver ${api.address}, Temporal ${temporal.address})`,
    );
    return {
      nodeName: NODE_NAME,
      nodeIp: NODE_IP,
      pool,
      apiServer: { host: api.host, port: api.port },
      temporalAddress: temporal.address,
      // Not execFileSync: the pool and the relays run in this process, and a large import takes seconds.
      importImage: (archive) =>
        new Promise((resolve, reject) =>
          execFile(
            'ctr',
            ['--address', containerdSocket, '-n', 'k8s.io', 'images', 'import', archive],
            { maxBuffer: 16 << 20 },
            (err, _stdout, stderr) =>
              err ? reject(new Error(`ctr images import ${archive}: ${err.message}\n${stderr}`)) : resolve(),
          ),
        ),
      stopKubelet: async () => {
        stoppedKubelet = kubelet;
        if (kubelet) await kill(kubelet);
      },
      crashed,
      startKubelet,
      stop,
    };
  } catch (err) {
    const left = await stop();
    if (left.length) o.log(`[node] after a failed start, still left on the host: ${left.join(', ')}`);
    throw err;
  }
}
