/**
 * The Helm chart installed on the real node (docs/deploy.md, "Helm"; docs/real-node.md): the project's image imported
 * into the node's containerd; `helm install` with a values file as a user writes it; the worker (on its own service
 * account, under the chart's RBAC) and the forwarder running as pods and Ready; `helm test` passing (the forwarder
 * answers, Temporal sees the worker polling); then a Falco alert posted to the forwarder's Service stops a miner
 * Deployment: its pod killed and the Deployment held at 0 replicas, no miner process left, the pool hearing nothing.
 *
 * This node has no kube-proxy (and the kernel no IPVS for kube-router's service proxy), so ClusterIPs do not route:
 * the worker reaches the API through the chart's `apiServer` value (the node's address, where the devstack relays
 * kube-apiserver), and the test posts to the Service's ready endpoint, read from its EndpointSlice, where kube-proxy
 * would send the request.
 */
import { DiscoveryV1Api, KubeConfig, type V1Pod } from '@kubernetes/client-node';
import { Client, Connection } from '@temporalio/client';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { createNamespace } from '../../devstack/fixtures.js';
import { ensureImage, IMAGE_REPOSITORY, podmanMissing, type ProjectImage } from '../../devstack/image.js';
import { podProcesses } from '../../devstack/node-host.js';
import { ensureHelm } from '../../devstack/tools.js';
import { statusQuery, type IncidentStatus } from '../../workflows/messages.js';
import { freshFixture } from '../support/alert-fixtures.js';
import { until } from '../support/until.js';
import {
  createMinerDeployment,
  heardFrom,
  nodeMissing,
  poolHears,
  runningPods,
  skipWhy,
  useRealNode,
} from './real-node.js';

const CHART = path.resolve(import.meta.dirname, '../../deploy/helm/pod-responder');

const imageMissing = podmanMissing();
const why = skipWhy || (imageMissing.length ? `the image cannot be built here: ${imageMissing.join('; ')}` : '');

function run(cmd: string, args: string[], timeoutMs = 10 * 60_000): Promise<{ code: number; out: string }> {
  return new Promise((resolve) => {
    execFile(cmd, args, { maxBuffer: 16 << 20, timeout: timeoutMs }, (err, stdout, stderr) =>
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, out: `${stdout}${stderr}` }),
    );
  });
}

const RELEASE = 'pr';
const NS = 'pod-responder';
const READY = (p: V1Pod) => p.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') === true;

describe.skipIf(nodeMissing.length > 0 || imageMissing.length > 0)(
  `the Helm chart on a real node${why ? ` (${why})` : ''}`,
  () => {
    const ctx = useRealNode({ responder: false }); // no worker on the host: the one in the cluster acts
    let helm: (args: string[], timeoutMs?: number) => Promise<{ code: number; out: string }>;
    let image: ProjectImage;
    const falcoToken = randomBytes(16).toString('hex');
    const pods = async (component: string) =>
      (
        await ctx.kube.core.listNamespacedPod({
          namespace: NS,
          labelSelector: `app.kubernetes.io/instance=${RELEASE},app.kubernetes.io/component=${component}`,
        })
      ).items.filter((p) => !p.metadata?.deletionTimestamp);

    /** For a failure message: the last lines of each of the release's pods. */
    const releaseLogs = async () => {
      const out: string[] = [];
      for (const p of (await ctx.kube.core.listNamespacedPod({ namespace: NS })).items) {
        const log = await ctx.kube.core
          .readNamespacedPodLog({ namespace: NS, name: p.metadata!.name!, tailLines: 30 })
          .catch((e: Error) => e.message);
        out.push(`--- ${p.metadata!.name} (${p.status?.phase}):\n${log}`);
      }
      return out.join('\n');
    };

    beforeAll(async () => {
      const binary = await ensureHelm();
      helm = (args, timeoutMs) => run(binary, [...args, '--kubeconfig', ctx.stack.kubeconfigPath], timeoutMs);
      image = await ensureImage((l) => console.log(l));
      await ctx.node.importImage(image.archive);

      // What a user makes before installing: the namespace, and the Secret with the alert sources' credentials.
      await ctx.kube.core.createNamespace({ body: { metadata: { name: NS } } });
      await ctx.kube.core.createNamespacedSecret({
        namespace: NS,
        body: { metadata: { name: 'alert-sources' }, stringData: { 'falco-token': falcoToken } },
      });
      // The values file a user of this cluster writes: the image they imported, where Temporal and the API server are
      // (no kube-proxy here), one replica each (one node), and no spool volume (no storage provisioner on this node).
      const values = {
        clusterName: 'local',
        image: { repository: IMAGE_REPOSITORY, tag: image.tag, pullPolicy: 'Never' },
        temporal: { address: ctx.node.temporalAddress },
        apiServer: { host: ctx.node.apiServer.host, port: ctx.node.apiServer.port },
        worker: { replicas: 1 },
        forwarder: { replicas: 1, sourcesSecret: 'alert-sources', spool: { persistence: false } },
      };
      const file = path.join(mkdtempSync(path.join(tmpdir(), 'helm-values-')), 'values-local.yaml');
      writeFileSync(file, stringify(values));
      console.log(`values:\n${stringify(values)}`);
      const install = await helm(['install', RELEASE, CHART, '-n', NS, '-f', file, '--wait', '--timeout', '5m']);
      if (install.code !== 0) {
        const state = (await ctx.kube.core.listNamespacedPod({ namespace: NS })).items.map(
          (p) =>
            `${p.metadata?.name}: ${JSON.stringify(p.status?.conditions)} ${JSON.stringify(p.status?.containerStatuses)}`,
        );
        throw new Error(`helm install failed (exit ${install.code}):\n${install.out}\npods:\n${state.join('\n')}`);
      }
    }, 40 * 60_000);

    it('the worker and the forwarder run as pods of the node and are Ready: the worker on its own service account, with its token mounted; the forwarder with none', async () => {
      const [worker] = await pods('worker');
      const [forwarder] = await pods('forwarder');
      for (const p of [worker, forwarder]) {
        expect(p, 'a pod').toBeDefined();
        expect(READY(p!), `${p!.metadata?.name} Ready`).toBe(true);
        expect(p!.status?.containerStatuses?.[0]?.image).toContain(image.tag);
        expect(podProcesses(p!.metadata!.uid!).length, `${p!.metadata?.name} processes on the host`).toBeGreaterThan(0);
      }
      expect(worker!.spec?.serviceAccountName).toBe(`${RELEASE}-pod-responder`);
      expect(worker!.spec?.volumes?.some((v) => v.projected?.sources?.some((s) => s.serviceAccountToken))).toBe(true);
      expect(forwarder!.spec?.automountServiceAccountToken).toBe(false);
      const log = await ctx.kube.core.readNamespacedPodLog({ namespace: NS, name: worker!.metadata!.name! });
      expect(log).toContain('"msg":"worker started"');
      expect(log).toContain(`"temporal":"${ctx.node.temporalAddress}"`);
    });

    it('helm test: every forwarder behind the Service answers, and Temporal sees the worker polling', async () => {
      const test = await helm(['test', RELEASE, '-n', NS, '--logs', '--timeout', '3m']);
      expect(test.code, test.out).toBe(0);
      expect(test.out.match(/Phase:\s+Succeeded/g)).toHaveLength(2);
      expect(test.out).toContain(`ok: 1 forwarder(s) behind Service ${RELEASE}-pod-responder-forwarder answer`);
      expect(test.out).toMatch(
        new RegExp(`ok: task queue pod-responder in default: workflow pollers \\["${RELEASE}-pod-responder-worker-`),
      );
    }, 240_000);

    it('an alert posted to the forwarder Service stops the miner: the in-cluster worker kills its pod and holds its Deployment at 0, no miner process is left on the host, the pool hears nothing more', async () => {
      const ns = await createNamespace(ctx.kube, 'helm-miner');
      await createMinerDeployment(ctx, ns, 'miner');
      const [miner] = await until('the miner running', async () => {
        const running = await runningPods(ctx, ns, 'miner');
        return running.length === 1 ? running : undefined;
      });
      const ip = miner!.status!.podIP!;
      const uid = miner!.metadata!.uid!;
      await poolHears(ctx, ip);

      // Where the Service sends a request (kube-proxy's job, absent here): its ready endpoint.
      const kc = new KubeConfig();
      kc.loadFromFile(ctx.stack.kubeconfigPath);
      const slices = await kc.makeApiClient(DiscoveryV1Api).listNamespacedEndpointSlice({
        namespace: NS,
        labelSelector: `kubernetes.io/service-name=${RELEASE}-pod-responder-forwarder`,
      });
      const port = slices.items[0]?.ports?.find((p) => p.name === 'http')?.port;
      const endpoint = slices.items.flatMap((s) => s.endpoints ?? []).find((e) => e.conditions?.ready);
      expect(endpoint && port, JSON.stringify(slices.items)).toBeTruthy();

      const body = freshFixture('falco-stratum', {
        cluster: 'local',
        namespace: ns,
        pod: miner!.metadata!.name!,
        uid,
        id: `helm-${randomBytes(4).toString('hex')}`,
        containerId: miner!.status!.containerStatuses![0]!.containerID!.replace(/^containerd:\/\//, ''),
        containerName: 'miner',
      });
      const res = await fetch(`http://${endpoint!.addresses[0]}:${port}/v1/alerts/falco?cluster=local`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${falcoToken}` },
        body: JSON.stringify(body),
      });
      const answer = (await res.json()) as { results: { outcome: string; workflowId: string }[] };
      expect(res.status, JSON.stringify(answer)).toBe(202);
      expect(answer.results[0]).toMatchObject({ outcome: 'accepted' });

      // Falco's "Critical" is severity critical, which the default policy answers by suspending the workload: the pod
      // is killed, the Deployment scaled to 0 and held there. "holding" is the suspension verified.
      const connection = await Connection.connect({ address: ctx.stack.temporalAddress });
      try {
        const handle = new Client({ connection }).workflow.getHandle(answer.results[0]!.workflowId);
        let status: IncidentStatus | undefined;
        try {
          status = await until(
            'the incident to stop the miner and hold its Deployment suspended',
            async () => {
              const s = await handle.query(statusQuery);
              return s.stage === 'holding' || s.stage === 'closed' ? s : undefined;
            },
            120_000,
          );
        } catch (err) {
          const last = await handle.query(statusQuery).catch((e: Error) => e.message);
          throw new Error(`${(err as Error).message}\nincident: ${JSON.stringify(last)}\n${await releaseLogs()}`, {
            cause: err,
          });
        }
        expect(status.stage, JSON.stringify(status)).toBe('holding');
        expect(status.decision).toMatchObject({
          action: 'suspend-workload',
          workload: { kind: 'Deployment', name: 'miner' },
          reason: 'severity critical suspends the workload',
        });
        expect(status.killedAt).toBeTruthy();
      } finally {
        await connection.close();
      }
      // Done by the worker in the cluster, on its service account: the only worker there is.
      expect((await ctx.kube.apps.readNamespacedDeployment({ namespace: ns, name: 'miner' })).spec?.replicas).toBe(0);
      await until('no miner process left on the host', async () => podProcesses(uid).length === 0, 30_000);
      expect(await runningPods(ctx, ns, 'miner')).toEqual([]);
      await until(
        'the pool to hear nothing more from the miner',
        async () => {
          const seen = heardFrom(ctx, ip)!;
          return seen.connections === 0 && Date.now() - Date.parse(seen.lastHeard) > 3000;
        },
        30_000,
      );
    }, 300_000);
  },
);
