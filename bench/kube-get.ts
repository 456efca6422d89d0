/**
 * `npm run bench:kube-get`: what a kept-alive connection saves the remediation core on each Kubernetes call.
 * BENCH_KUBE_GETS (default 200) sequential GETs of a pod on the local stack's kube-apiserver, in rounds of 20
 * interleaved between the remediation core's clients (remediation/kube.ts `kubeClients`) and client-node on its
 * own (`makeApiClient`: a new agent, so a TCP connection and TLS handshake, per request). The floor in the same
 * run: the same GET over one kept-alive TLS connection with Node's https alone, no client library.
 */
import { CoreV1Api } from '@kubernetes/client-node';
import { mkdtempSync, rmSync } from 'node:fs';
import { Agent, request } from 'node:https';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import { startStack } from '../devstack/stack.js';
import { kubeClients, kubeConfigFromFile } from '../remediation/kube.js';
import { envNumber, runAlone } from './processes.js';
import { quantile } from './storm-client.js';

interface Timings {
  /** Milliseconds per GET. */
  ms: number[];
  /** This process's CPU milliseconds, all GETs. */
  cpuMs: number;
}

export interface KubeGetResult {
  keptAlive: Timings;
  clientNodeAlone: Timings;
  floor: Timings;
}

const ROUND = 20;
const NAMESPACE = 'default';
const POD = 'bench-kube-get';

export async function benchKubeGet(o: { gets?: number; log?: (line: string) => void } = {}): Promise<KubeGetResult> {
  const log = o.log ?? (() => {});
  const gets = o.gets ?? envNumber('BENCH_KUBE_GETS', 200);
  const stateDir = mkdtempSync(path.join(tmpdir(), 'pod-responder-kube-get-'));
  const stack = await startStack({ stateDir, headless: true, log: () => {} });
  const timings = (): Timings => ({ ms: [], cpuMs: 0 });
  const result: KubeGetResult = { keptAlive: timings(), clientNodeAlone: timings(), floor: timings() };
  try {
    const kc = kubeConfigFromFile(stack.kubeconfigPath);
    const { core } = kubeClients(kc);
    // A KubeConfig of its own: the remediation core's clients must not change what client-node does alone.
    const alone = kubeConfigFromFile(stack.kubeconfigPath).makeApiClient(CoreV1Api);
    await core.createNamespacedPod({
      namespace: NAMESPACE,
      body: { metadata: { name: POD }, spec: { containers: [{ name: 'c', image: 'busybox' }] } },
    });
    const cluster = kc.getCurrentCluster()!;
    const floorGet = bareGet(cluster.server, Buffer.from(cluster.caData!, 'base64'), kc.getCurrentUser()!.token!);
    const timed = async (into: Timings, get: () => Promise<unknown>) => {
      const cpu0 = process.cpuUsage();
      for (let i = 0; i < ROUND; i++) {
        const t0 = performance.now();
        await get();
        into.ms.push(performance.now() - t0);
      }
      const cpu = process.cpuUsage(cpu0);
      into.cpuMs += (cpu.user + cpu.system) / 1000;
    };
    // One warm-up round each (modules, the first handshake), not counted.
    await timed(timings(), () => core.readNamespacedPod({ name: POD, namespace: NAMESPACE }));
    await timed(timings(), () => alone.readNamespacedPod({ name: POD, namespace: NAMESPACE }));
    await timed(timings(), floorGet);
    for (let done = 0; done < gets; done += ROUND) {
      await timed(result.keptAlive, () => core.readNamespacedPod({ name: POD, namespace: NAMESPACE }));
      await timed(result.clientNodeAlone, () => alone.readNamespacedPod({ name: POD, namespace: NAMESPACE }));
      await timed(result.floor, floorGet);
      log(`kube-get: ${Math.min(done + ROUND, gets)}/${gets}`);
    }
  } finally {
    await stack.stop();
    rmSync(stateDir, { recursive: true, force: true });
  }
  return result;
}

/** GET the pod over one kept-alive TLS connection, with the stack's admin token: no client library. */
function bareGet(server: string, ca: Buffer, token: string): () => Promise<void> {
  const agent = new Agent({ keepAlive: true, maxSockets: 1, ca });
  const url = new URL(`/api/v1/namespaces/${NAMESPACE}/pods/${POD}`, server);
  const headers = { accept: 'application/json', authorization: `Bearer ${token}` };
  return () =>
    new Promise<void>((resolve, reject) => {
      const req = request(url, { agent, headers }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          if (res.statusCode !== 200) reject(new Error(`GET pod: HTTP ${res.statusCode}`));
          else {
            JSON.parse(Buffer.concat(chunks).toString()); // parsed, as the clients do
            resolve();
          }
        });
      });
      req.on('error', reject);
      req.end();
    });
}

export function formatKubeGet(r: KubeGetResult): string {
  const row = (what: string, t: Timings) =>
    `| ${what} | ${quantile(t.ms, 0.5).toFixed(2)} ms | ${quantile(t.ms, 0.95).toFixed(2)} ms | ${(t.cpuMs / t.ms.length).toFixed(2)} ms |`;
  return `
## Kubernetes GET: the remediation core's kept-alive clients (${r.keptAlive.ms.length} sequential GETs of a pod each, interleaved)

| | median | p95 | client CPU per GET |
| --- | --- | --- | --- |
${row('remediation core (`kubeClients`: kept-alive agent)', r.keptAlive)}
${row('client-node alone (`makeApiClient`: a new connection per request)', r.clientNodeAlone)}
${row('floor: bare GET, one kept-alive TLS connection, no client library', r.floor)}
`;
}

/** Kept alive must cost less CPU per GET than a connection per request: the handshake is what it saves. */
export function kubeGetFailures(r: KubeGetResult): string[] {
  const perGet = (t: Timings) => t.cpuMs / t.ms.length;
  const kept = perGet(r.keptAlive);
  const alone = perGet(r.clientNodeAlone);
  return kept < alone
    ? []
    : [
        `kept-alive GETs (${kept.toFixed(2)} ms of CPU each) cost no less than client-node alone (${alone.toFixed(2)} ms)`,
      ];
}

if (process.argv[1] && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) {
  runAlone(
    'kube-get',
    () => benchKubeGet({ log: (line) => process.stderr.write(`[bench] ${line}\n`) }),
    formatKubeGet,
    kubeGetFailures,
  );
}
