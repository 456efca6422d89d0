/**
 * The host side of the real node (docs/real-node.md): whether this machine can run containers, and the resources the
 * node's parts leave on the host, each removed on stop. What the node adds is found by comparing with a snapshot taken
 * before it started, so nothing that was already on the machine is touched.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

/** The bridge the pods' veths join; its address is the node's InternalIP and where the pool listens. */
export const BRIDGE = 'prn0';
export const POD_SUBNET = '10.244.0.0/24';
export const NODE_IP = '10.244.0.1';
/** The CNI network's name: containerd's CNI library caches its results under /var/lib/cni/results/<name>-*. */
export const CNI_NETWORK = 'pod-responder';
/** One real node per machine: its iptables chains, /run/netns and the kubepods cgroups are machine-wide. */
export const HOST_LOCK = '/run/pod-responder-node.pid';

const TABLES = ['filter', 'nat', 'mangle', 'raw'];
const IPTABLES = ['iptables', 'ip6tables'];
/** Sysctls the kubelet (protectKernelDefaults: false) and kube-router set; put back as they were. */
const SYSCTLS = [
  'vm/overcommit_memory',
  'vm/panic_on_oom',
  'kernel/panic',
  'kernel/panic_on_oops',
  'kernel/keys/root_maxkeys',
  'kernel/keys/root_maxbytes',
  'net/ipv4/ip_forward',
  'net/bridge/bridge-nf-call-iptables',
  'net/bridge/bridge-nf-call-ip6tables',
];
const REQUIRED = [
  ['containerd', 'containerd'],
  ['runc', 'runc'],
  ['ctr', 'containerd'],
  ['/usr/lib/cni/bridge', 'containernetworking-plugins'],
  ['/usr/lib/cni/host-local', 'containernetworking-plugins'],
  ['/usr/lib/cni/loopback', 'containernetworking-plugins'],
  ['iptables', 'iptables'],
  ['ipset', 'ipset'],
  ['/bin/busybox', 'busybox-static'],
  ['openssl', 'openssl'],
] as const;

function onPath(cmd: string): boolean {
  if (cmd.startsWith('/')) return fs.existsSync(cmd);
  return (process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin')
    .split(':')
    .some((dir) => fs.existsSync(path.join(dir, cmd)));
}

/** What this machine lacks to run a real node: empty when it can. Each entry says what is missing and how to get it. */
export function realNodeMissing(): string[] {
  const missing: string[] = [];
  if (process.platform !== 'linux') return [`a Linux host (this is ${process.platform})`];
  if (process.getuid?.() !== 0) missing.push('root (containerd, the kubelet and the CNI bridge need it)');
  if (!fs.existsSync('/sys/fs/cgroup/memory') && !fs.existsSync('/sys/fs/cgroup/cgroup.controllers')) {
    missing.push('cgroups (neither /sys/fs/cgroup/memory nor a cgroup2 root is mounted)');
  }
  if (!fs.existsSync('/proc/sys/net/bridge')) missing.push('bridge netfilter (modprobe br_netfilter)');
  for (const [cmd, pkg] of REQUIRED)
    if (!onPath(cmd)) missing.push(`${cmd} (Debian package ${pkg}; devstack/node-deps.sh installs it)`);
  return missing;
}

function run(cmd: string, args: string[]): string {
  return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}
function tryRun(cmd: string, args: string[]): boolean {
  return spawnSync(cmd, args, { stdio: 'ignore' }).status === 0;
}

/** The host state the node may change, as lists of names that can be compared. */
export interface HostSnapshot {
  chains: Record<string, string[]>; // "iptables filter" -> chain names
  ipsets: string[];
  links: string[];
  netns: string[];
  mounts: string[];
  cgroups: string[]; // kubepods directories, all hierarchies
  podLogLinks: string[];
  sysctls: Record<string, string>;
  cniResults: string[];
  /** Files and folders under the kubelet's and containerd's fixed host paths. */
  files: string[];
}

/**
 * Host paths the kubelet and containerd write to whatever their configured folders: shim sockets and runc state
 * (/run/containerd), CNI caches (/var/lib/cni), pod log links (/var/log/containers), the device-plugin socket
 * (/var/lib/kubelet/device-plugins), pod network namespaces (/run/netns).
 */
const HOST_PATHS = [
  '/run/containerd',
  '/run/netns',
  '/var/lib/cni',
  '/var/log/containers',
  '/var/log/pods',
  '/var/lib/kubelet',
];

function walk(p: string, depth: number, out: string[]): string[] {
  let st: fs.Stats;
  try {
    st = fs.lstatSync(p);
  } catch {
    return out;
  }
  out.push(p);
  if (st.isDirectory() && depth > 0 && !p.startsWith('/run/netns/'))
    for (const e of listDir(p)) walk(path.join(p, e), depth - 1, out);
  return out;
}
function hostFiles(): string[] {
  return HOST_PATHS.flatMap((p) => walk(p, 4, []));
}

function chainNames(bin: string, table: string): string[] {
  const out = spawnSync(bin, ['-w', '5', '-t', table, '-S'], { encoding: 'utf8' });
  if (out.status !== 0) return [];
  return out.stdout
    .split('\n')
    .filter((l) => l.startsWith('-N '))
    .map((l) => l.slice(3).trim());
}

function cgroupRoots(): string[] {
  const roots: string[] = [];
  for (const line of fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    const fields = line.split(' ');
    const sep = fields.indexOf('-');
    if (sep > 0 && (fields[sep + 1] === 'cgroup' || fields[sep + 1] === 'cgroup2')) roots.push(fields[4]!);
  }
  return roots;
}

/**
 * Podman's container storage and run state: the image tests build and run the project's image with podman while a
 * node may run (docs/image.md). Its mounts come and go on their own and are podman's to remove, not the node's.
 */
const OTHER_RUNTIMES = ['/var/lib/containers/storage/', '/run/containers/storage/', '/run/libpod/'];

export function mountPoints(): string[] {
  return fs
    .readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => l.split(' ')[4]!.replace(/\\040/g, ' '))
    .filter((m) => !OTHER_RUNTIMES.some((p) => m.startsWith(p)));
}

function listDir(dir: string): string[] {
  try {
    return fs.readdirSync(dir);
  } catch {
    return [];
  }
}

export function snapshotHost(): HostSnapshot {
  const chains: Record<string, string[]> = {};
  for (const bin of IPTABLES) for (const t of TABLES) chains[`${bin} ${t}`] = chainNames(bin, t);
  const sysctls: Record<string, string> = {};
  for (const s of SYSCTLS) {
    try {
      sysctls[s] = fs.readFileSync(`/proc/sys/${s}`, 'utf8').trim();
    } catch {
      // not on this kernel
    }
  }
  return {
    chains,
    ipsets: spawnSync('ipset', ['list', '-n'], { encoding: 'utf8' }).stdout?.split('\n').filter(Boolean) ?? [],
    links: run('ip', ['-o', 'link', 'show'])
      .split('\n')
      .filter(Boolean)
      .map((l) => l.split(':')[1]!.trim().split('@')[0]!),
    netns: listDir('/run/netns'),
    mounts: mountPoints(),
    cgroups: cgroupRoots().flatMap((root) =>
      fs.existsSync(path.join(root, 'kubepods')) ? [path.join(root, 'kubepods')] : [],
    ),
    podLogLinks: listDir('/var/log/containers'),
    sysctls,
    cniResults: listDir('/var/lib/cni/results').filter((f) => f.startsWith(`${CNI_NETWORK}-`)),
    files: hostFiles(),
  };
}

/** Differences between two snapshots, as readable lines: what the node left behind. */
export function leftovers(before: HostSnapshot, after: HostSnapshot): string[] {
  const added = (what: string, a: string[], b: string[]) => b.filter((x) => !a.includes(x)).map((x) => `${what} ${x}`);
  const out: string[] = [];
  for (const key of Object.keys(after.chains))
    out.push(...added(`${key} chain`, before.chains[key] ?? [], after.chains[key]!));
  out.push(...added('ipset', before.ipsets, after.ipsets));
  out.push(...added('link', before.links, after.links));
  out.push(...added('netns', before.netns, after.netns));
  out.push(...added('mount', before.mounts, after.mounts));
  out.push(...added('cgroup', before.cgroups, after.cgroups));
  out.push(...added('/var/log/containers/', before.podLogLinks, after.podLogLinks));
  out.push(...added('/var/lib/cni/results/', before.cniResults, after.cniResults));
  out.push(...added('file', before.files, after.files));
  for (const [k, v] of Object.entries(before.sysctls))
    if (after.sysctls[k] !== v) out.push(`sysctl ${k} ${v} -> ${after.sysctls[k]}`);
  return out;
}

/** Host processes running in the node's pods, found by pod UID in their cgroup path (as a responder on the node would). */
export function podProcesses(podUid: string): number[] {
  const needle = podUid.replace(/-/g, '_');
  const pids: number[] = [];
  for (const pid of listDir('/proc')) {
    if (!/^\d+$/.test(pid)) continue;
    try {
      const cg = fs.readFileSync(`/proc/${pid}/cgroup`, 'utf8');
      if (cg.includes(`pod${podUid}`) || cg.includes(`pod${needle}`)) pids.push(Number(pid));
    } catch {
      // exited meanwhile
    }
  }
  return pids;
}

/**
 * Whether kube-router enforces a NetworkPolicy on this pod address: its per-pod chain (every pod has one) runs
 * through a policy's chain, not only the default one that accepts unselected pods.
 */
export function podFirewallFor(podIp: string): boolean {
  const iptables = (chain: string) =>
    spawnSync('iptables', ['-w', '5', '-S', chain], { encoding: 'utf8' }).stdout ?? '';
  const jump = iptables('KUBE-ROUTER-INPUT')
    .split('\n')
    .find((r) => r.includes(`-s ${podIp}/32`) && r.includes('-j KUBE-POD-FW-'));
  const chain = jump && /-j (KUBE-POD-FW-\S+)/.exec(jump)?.[1];
  if (!chain) return false;
  return iptables(chain)
    .split('\n')
    .some((r) => /-j KUBE-NWPLCY-/.test(r) && !r.includes('-j KUBE-NWPLCY-DEFAULT'));
}

/** Every process in a kubepods cgroup: the containers, whoever started them. */
function containerProcesses(): number[] {
  const pids: number[] = [];
  for (const pid of listDir('/proc')) {
    if (!/^\d+$/.test(pid) || Number(pid) === process.pid) continue;
    try {
      if (/:\/kubepods/m.test(fs.readFileSync(`/proc/${pid}/cgroup`, 'utf8'))) pids.push(Number(pid));
    } catch {
      // exited meanwhile
    }
  }
  return pids;
}

/** Processes whose command line mentions `needle` (the node's containerd socket: its shims). */
export function processesMentioning(needle: string): number[] {
  const pids: number[] = [];
  for (const pid of listDir('/proc')) {
    if (!/^\d+$/.test(pid) || Number(pid) === process.pid) continue;
    try {
      if (fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(needle)) pids.push(Number(pid));
    } catch {
      // exited meanwhile
    }
  }
  return pids;
}

function killAll(pids: number[]): void {
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
}

/** Removes `dir` and every cgroup below it, deepest first (a cgroup is removed with rmdir once empty). */
function removeCgroupTree(dir: string): void {
  for (const entry of listDir(dir)) {
    const sub = path.join(dir, entry);
    try {
      if (fs.statSync(sub).isDirectory()) removeCgroupTree(sub);
    } catch {
      // gone
    }
  }
  try {
    fs.rmdirSync(dir);
  } catch {
    // still has a process for a moment; the caller retries
  }
}

/**
 * Removes what the node added since `before`: container processes and shims, mounts, network namespaces (their veths
 * go with them), the bridge, iptables/ip6tables chains and the rules that jump to them, ipsets, kubepods cgroups,
 * pod log links, CNI result caches, and sysctls put back. Best effort, each step on its own; returns what remains.
 */
export async function cleanHost(
  before: HostSnapshot,
  o: { containerdSocket: string; nodeDir: string },
): Promise<string[]> {
  // 1. Processes: the containers, then their shims (which would otherwise hold mounts and namespaces).
  for (let i = 0; i < 20; i++) {
    const pids = [...containerProcesses(), ...processesMentioning(o.containerdSocket)];
    if (pids.length === 0) break;
    killAll(pids);
    await new Promise((r) => setTimeout(r, 100));
  }

  // 2. Mounts: deepest first, lazily (a netns file can stay busy for a moment).
  const ours = (m: string) =>
    [o.nodeDir, '/run/netns', '/var/run/netns', '/run/containerd'].some((p) => m === p || m.startsWith(`${p}/`));
  const added = mountPoints().filter((m) => !before.mounts.includes(m) && ours(m));
  for (const m of added.sort((a, b) => b.length - a.length)) tryRun('umount', ['-l', m]);

  // 3. Network namespaces (their veth ends go with them) and the bridge.
  // containerd's CRI names its pod namespaces cni-<uuid>.
  for (const ns of listDir('/run/netns').filter((n) => n.startsWith('cni-') && !before.netns.includes(n))) {
    tryRun('umount', ['-l', `/run/netns/${ns}`]);
    fs.rmSync(`/run/netns/${ns}`, { force: true });
  }
  const links = run('ip', ['-o', 'link', 'show'])
    .split('\n')
    .filter(Boolean)
    .map((l) => l.split(':')[1]!.trim().split('@')[0]!);
  const nodeLink = (l: string) => l === BRIDGE || l.startsWith('veth');
  for (const link of links.filter((l) => nodeLink(l) && !before.links.includes(l)))
    tryRun('ip', ['link', 'delete', link]);

  // 4. iptables and ip6tables: rules in existing chains that jump to new chains, then the new chains.
  for (const bin of IPTABLES) {
    for (const table of TABLES) {
      // The kubelet's and kube-router's chains are all KUBE-*.
      const fresh = chainNames(bin, table).filter(
        (c) => c.startsWith('KUBE-') && !(before.chains[`${bin} ${table}`] ?? []).includes(c),
      );
      if (fresh.length === 0) continue;
      const rules = spawnSync(bin, ['-w', '5', '-t', table, '-S'], { encoding: 'utf8' }).stdout.split('\n');
      for (const rule of rules) {
        const m = /^-A (\S+) (.*)$/.exec(rule);
        if (!m || fresh.includes(m[1]!)) continue;
        if (fresh.some((c) => rule.includes(`-j ${c}`) || rule.includes(`-g ${c}`))) {
          spawnSync('sh', ['-c', `${bin} -w 5 -t ${table} -D ${m[1]} ${m[2]}`], { stdio: 'ignore' });
        }
      }
      for (const c of fresh) tryRun(bin, ['-w', '5', '-t', table, '-F', c]);
      for (const c of fresh) tryRun(bin, ['-w', '5', '-t', table, '-X', c]);
    }
  }
  // 5. ipsets (only once no rule refers to them).
  const sets = spawnSync('ipset', ['list', '-n'], { encoding: 'utf8' }).stdout?.split('\n').filter(Boolean) ?? [];
  for (const s of sets.filter((x) => !before.ipsets.includes(x))) tryRun('ipset', ['destroy', s]);

  // 6. kubepods cgroups, in every hierarchy, once their processes are gone.
  for (let i = 0; i < 20; i++) {
    const trees = cgroupRoots()
      .map((r) => path.join(r, 'kubepods'))
      .filter((d) => fs.existsSync(d) && !before.cgroups.includes(d));
    if (trees.length === 0) break;
    trees.forEach(removeCgroupTree);
    await new Promise((r) => setTimeout(r, 100));
  }

  // 7. Files outside the node's folder: pod log links and CNI result caches; sysctls back as they were.
  for (const f of listDir('/var/log/containers').filter((x) => !before.podLogLinks.includes(x)))
    fs.rmSync(`/var/log/containers/${f}`, { force: true });
  for (const f of listDir('/var/lib/cni/results').filter(
    (x) => x.startsWith(`${CNI_NETWORK}-`) && !before.cniResults.includes(x),
  )) {
    fs.rmSync(`/var/lib/cni/results/${f}`, { force: true });
  }
  // Whatever else appeared under the fixed host paths (runc state, shim sockets, CNI caches, the kubelet's sockets).
  for (const f of hostFiles()
    .filter((x) => !before.files.includes(x))
    .sort((a, b) => a.length - b.length)) {
    fs.rmSync(f, { recursive: true, force: true });
  }
  for (const [k, v] of Object.entries(before.sysctls)) {
    try {
      if (fs.readFileSync(`/proc/sys/${k}`, 'utf8').trim() !== v) fs.writeFileSync(`/proc/sys/${k}`, v);
    } catch {
      // read-only here
    }
  }
  return leftovers(before, snapshotHost());
}
