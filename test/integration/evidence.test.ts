/**
 * The evidence bundle, through the real worker, dev server, kube-apiserver (its node proxy reaching a
 * kubelet stand-in for the logs) and moto's S3: captured after isolation and before the kill, every object
 * hashed in the manifest, Object Lock retention when the bucket has it, a budget overrun listed as missing
 * without holding the kill back.
 */
import {
  CreateBucketCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  S3Client,
} from '@aws-sdk/client-s3';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from 'vitest';
import { resourceNames } from '../../domain/aws-resources.js';
import { buildLambdaZip } from '../../lambda/build.js';
import { kubeClients, kubeConfigFromFile } from '../../remediation/kube.js';
import { runOperation } from '../../remediation/run.js';
import { awsStack, leftovers } from '../support/aws.js';
import {
  createEksNamespace,
  createNamespace,
  createPod,
  podExists,
  testKube,
  type TestKube,
} from '../support/cluster.js';
import { startKubelet, type KubeletStandIn } from '../support/kubelet.js';
import { alertFor, startResponder, type Responder } from '../support/responder.js';
import { until } from '../support/until.js';
import { closedStatus } from '../support/closed-status.js';

const aws = awsStack();
const s3 = new S3Client({ region: aws.region, endpoint: aws.endpoint, forcePathStyle: true });
const bucket = `evidence-${randomBytes(4).toString('hex')}`;
const lockedBucket = `evidence-locked-${randomBytes(4).toString('hex')}`;
let r: Responder;
let locked: Responder;
let onEks: Responder;
const INSTALLATION = 'evidence-tests';
let kube: TestKube;
let kubelet: KubeletStandIn;

beforeAll(async () => {
  await s3.send(new CreateBucketCommand({ Bucket: bucket }));
  await s3.send(new CreateBucketCommand({ Bucket: lockedBucket, ObjectLockEnabledForBucket: true }));
  const evidence = (b: string) => ({ bucket: b, endpoint: aws.endpoint, region: aws.region });
  const { path: lambdaZip } = await buildLambdaZip(
    path.join(mkdtempSync(path.join(tmpdir(), 'pod-responder-zip-')), 'remediation.zip'),
  );
  [r, locked, onEks] = await Promise.all([
    startResponder({ evidence: evidence(bucket) }),
    startResponder({ evidence: evidence(lockedBucket) }),
    // Small answers, so a 1 MiB log comes back from the function in several.
    startResponder({
      executor: 'eks-lambda',
      eks: { endpoint: aws.endpoint, lambdaZip, sweepRegions: [aws.region], installationId: INSTALLATION },
      evidence: evidence(bucket),
      evidenceResponseBytes: 256 * 1024,
    }),
  ]);
  kube = testKube();
  kubelet = await startKubelet();
});
afterAll(async () => {
  await Promise.all([r?.close(), locked?.close(), onEks?.close()]);
  await kubelet?.close();
  s3.destroy();
});

const manifestOf = async (b: string, location: string) =>
  JSON.parse((await text(b, `${location.slice(`s3://${b}/`.length)}manifest.json`)).toString()) as {
    objects: { key: string; sha256: string; bytes: number }[];
    missing: string[];
    capturedBy: string;
  };

/** A pod on the stand-in's node with these containers, each with a few lines of logs. */
async function podWithContainers(prefix: string, containers: string[]) {
  const ns = await createNamespace(kube, prefix);
  const name = `miner-${randomBytes(2).toString('hex')}`;
  const pod = await kube.core.createNamespacedPod({
    namespace: ns,
    body: {
      metadata: { name, labels: { app: name } },
      spec: {
        nodeName: kubelet.node,
        containers: containers.map((c) => ({ name: c, image: `registry.example/${c}:1` })),
      },
    },
  });
  const ids = containers.map(() => randomBytes(32).toString('hex'));
  pod.status = {
    phase: 'Running',
    containerStatuses: containers.map((c, i) => ({
      name: c,
      image: `registry.example/${c}:1`,
      imageID: '',
      ready: true,
      restartCount: 0,
      containerID: `containerd://${ids[i]}`,
      state: { running: {} },
    })),
  };
  const updated = await kube.core.replaceNamespacedPodStatus({ namespace: ns, name, body: pod });
  for (const c of containers) kubelet.logs.set(`${ns}/${name}/${c}`, `${c} says hello\n`);
  return {
    ns,
    name,
    workload: { kind: 'Pod', name, uid: updated.metadata!.uid!, pod: Object.assign(updated, { containerId: ids[0]! }) },
  };
}

const text = async (b: string, key: string) =>
  Buffer.from(await (await s3.send(new GetObjectCommand({ Bucket: b, Key: key }))).Body!.transformToByteArray());
const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

afterEach(async () => {
  kubelet.checkpointing = true;
  kubelet.delays.clear();
  await aws.faults.clear();
});

/** A miner pod on the stand-in's node, with 1 MiB of current logs and a few lines from its previous instance. */
async function minerWithLogs(prefix: string, eks = false) {
  const ns = eks ? await createEksNamespace(kube, prefix) : await createNamespace(kube, prefix);
  const pod = await createPod(kube, ns, `miner-${randomBytes(2).toString('hex')}`, undefined, {}, kubelet.node);
  const name = pod.metadata!.name!;
  const logs = 'stratum+tcp://pool.example:3333 accepted share\n'.repeat(Math.ceil((1 << 20) / 47)).slice(0, 1 << 20);
  kubelet.logs.set(`${ns}/${name}/app`, logs);
  kubelet.logs.set(`${ns}/${name}/app/previous`, 'xmrig 6.21 starting\n');
  return { ns, pod, name, logs, workload: { kind: 'Pod', name, uid: pod.metadata!.uid!, pod } };
}

describe('the evidence bundle', () => {
  it('is captured between isolation and the kill: manifest, owners, node, events, both log instances; every hash matches', async () => {
    const m = await minerWithLogs('evidence');
    const handle = await r.respond(alertFor(m.ns, m.workload));
    const result = await closedStatus(handle);
    expect(result.outcome).toBe('pod-terminated');
    expect(await podExists(kube, m.ns, m.name)).toBe(false);

    const ev = result.evidence!;
    const prefix = `pod-responder/local/${m.ns}/${m.name}/`;
    expect(ev.location).toMatch(new RegExp(`^s3://${bucket}/${prefix}[0-9a-f-]+/$`));
    expect(ev.missing).toEqual([]);
    expect(ev.objectLock).toBe('not enabled on the bucket');
    const key = ev.location!.slice(`s3://${bucket}/`.length);
    const manifestBody = await text(bucket, `${key}manifest.json`);
    expect(sha256(manifestBody)).toBe(ev.manifestSha256);
    const manifest = JSON.parse(manifestBody.toString()) as {
      objects: { key: string; sha256: string; bytes: number }[];
      missing: string[];
      incidentId: string;
    };
    expect(manifest.incidentId).toBe(handle.workflowId);
    expect(manifest.objects.map((o) => o.key).sort()).toEqual([
      'alerts.json',
      'decision.json',
      'events.json',
      'logs/app.log',
      'logs/app.previous.log',
      'node.json',
      'pod.json',
    ]);
    for (const o of manifest.objects) {
      const body = await text(bucket, `${key}${o.key}`);
      expect(sha256(body), o.key).toBe(o.sha256);
      expect(body.length, o.key).toBe(o.bytes);
    }
    // What each holds: the pod as it ran (isolation label already on it), its node, the logs byte for byte.
    const pod = JSON.parse((await text(bucket, `${key}pod.json`)).toString());
    expect(pod.metadata.uid).toBe(m.pod.metadata!.uid);
    expect(pod.metadata.labels['pod-responder.io/isolated']).toBeDefined();
    expect(pod.metadata.managedFields).toBeUndefined();
    expect(JSON.parse((await text(bucket, `${key}node.json`)).toString()).metadata.name).toBe(kubelet.node);
    expect((await text(bucket, `${key}logs/app.log`)).toString()).toBe(m.logs);
    expect((await text(bucket, `${key}logs/app.previous.log`)).toString()).toBe('xmrig 6.21 starting\n');
    expect(kubelet.requests).toContain(`GET /containerLogs/${m.ns}/${m.name}/app?limitBytes=${1 << 20}`);
    const listed = await s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: key }));
    expect(listed.KeyCount).toBe(manifest.objects.length + 1);

    const events = result.timeline.map((e) => e.event);
    expect(events.indexOf('isolate-pod')).toBeLessThan(events.indexOf('evidence'));
    expect(events.indexOf('evidence')).toBeLessThan(events.indexOf('delete-pod'));
    expect(result.timeline.find((e) => e.event === 'evidence')!.detail).toContain(ev.location!);
  });

  it('on a bucket with Object Lock and no default retention, each object gets GOVERNANCE retention', async () => {
    const m = await minerWithLogs('evidence-lock');
    const result = await closedStatus(await locked.respond(alertFor(m.ns, m.workload)));
    const ev = result.evidence!;
    expect(ev.objectLock).toMatch(/^GOVERNANCE retention until \d{4}-/);
    const key = ev.location!.slice(`s3://${lockedBucket}/`.length);
    // HeadObject (moto's GetObjectRetention answer is not XML the SDK parses).
    const head = await s3.send(new HeadObjectCommand({ Bucket: lockedBucket, Key: `${key}pod.json` }));
    expect(head.ObjectLockMode).toBe('GOVERNANCE');
    expect(head.ObjectLockRetainUntilDate!.getTime()).toBeGreaterThan(Date.now() + 29 * 86_400_000);
  });

  it('a container whose logs do not come in time: only its logs are listed as missing, and the kill goes on within the budget', async () => {
    const p = await podWithContainers('evidence-slow', ['app', 'sidecar', 'miner']);
    kubelet.delays.set(`${p.ns}/${p.name}/miner`, 30_000);
    const result = await closedStatus(await r.respond(alertFor(p.ns, p.workload), { evidenceSeconds: 2 }));
    expect(result.outcome).toBe('pod-terminated');
    const ev = result.evidence!;
    expect(ev.missing).toEqual(['logs of miner: not captured within the 2s budget']);
    expect(ev.seconds).toBeLessThan(2 + 3);
    const manifest = await manifestOf(bucket, ev.location!);
    expect(manifest.objects.map((o) => o.key).filter((k) => k.startsWith('logs/'))).toEqual([
      'logs/app.log',
      'logs/sidecar.log',
    ]);
    expect(manifest.missing).toEqual(ev.missing);
  });

  it('with checkpointContainers: each container checkpointed through the node proxy, where the node wrote it recorded', async (ctx) => {
    if (!kubelet.proxyable) ctx.skip(); // the node proxy refuses loopback, and this machine has no other address
    const p = await podWithContainers('evidence-cp', ['app', 'miner']);
    const handle = await r.respond(alertFor(p.ns, p.workload), { checkpointContainers: true });
    const result = await closedStatus(handle);
    expect(result.outcome).toBe('pod-terminated');
    const ev = result.evidence!;
    expect(ev.missing).toEqual([]);
    expect(ev.checkpoints!.map((c) => c.container).sort()).toEqual(['app', 'miner']);
    for (const c of ev.checkpoints!) {
      expect(c.node).toBe(kubelet.node);
      expect(c.path).toMatch(
        new RegExp(`^/var/lib/kubelet/checkpoints/checkpoint-${p.name}_${p.ns}-${c.container}-\\d{4}-.+\\.tar$`),
      );
      expect(kubelet.requests).toContain(`POST /checkpoint/${p.ns}/${p.name}/${c.container}`);
    }
    const manifest = await manifestOf(bucket, ev.location!);
    expect(manifest.objects.map((o) => o.key)).toEqual(
      expect.arrayContaining(['checkpoints.json', 'checkpoints/app.json', 'checkpoints/miner.json']),
    );
    expect(result.timeline.find((e) => e.event === 'evidence')!.detail).toContain('checkpoints on the node: ');
    // The bundle is findable from the incident's row in the UI.
    const attrs = (await handle.describe()).searchAttributes as Record<string, unknown[]>;
    expect(attrs['PodResponderEvidence']).toEqual([ev.location]);
  });

  it('a kubelet without the checkpoint feature: the checkpoint is listed as missing, the rest captured, the kill not delayed', async (ctx) => {
    if (!kubelet.proxyable) ctx.skip();
    const p = await podWithContainers('evidence-nocp', ['app']);
    kubelet.checkpointing = false;
    const result = await closedStatus(await r.respond(alertFor(p.ns, p.workload), { checkpointContainers: true }));
    expect(result.outcome).toBe('pod-terminated');
    expect(result.evidence!.missing).toEqual([expect.stringMatching(/^checkpoint of app: HTTP 404/)]);
    expect(result.evidence!.checkpoints ?? []).toEqual([]);
    expect((await manifestOf(bucket, result.evidence!.location!)).objects.map((o) => o.key)).toContain('logs/app.log');
  });

  it('through the EKS executor: the function reads the cluster (all it can reach) and returns it in pieces; the worker writes the whole bundle', async () => {
    const m = await minerWithLogs('evidence-eks', true);
    const since = (await aws.faults.calls()).length;
    const handle = await onEks.respond(
      alertFor(m.ns, m.workload, { cluster: { name: aws.clusters.local, region: aws.region } }),
    );
    const result = await closedStatus(handle);
    expect(result.outcome).toBe('pod-terminated');
    const ev = result.evidence!;
    expect(ev.missing).toEqual([]);
    const manifest = await manifestOf(bucket, ev.location!);
    const { base } = resourceNames(handle.workflowId, 1, INSTALLATION);
    expect(manifest.capturedBy).toBe(`function ${base}`);
    expect(manifest.objects.map((o) => o.key).sort()).toEqual([
      'alerts.json',
      'decision.json',
      'events.json',
      'logs/app.log',
      'logs/app.previous.log',
      'node.json',
      'pod.json',
    ]);
    const key = ev.location!.slice(`s3://${bucket}/`.length);
    for (const o of manifest.objects) expect(sha256(await text(bucket, `${key}${o.key}`)), o.key).toBe(o.sha256);
    expect((await text(bucket, `${key}logs/app.log`)).toString()).toBe(m.logs);
    // 1 MiB of logs at 256 KiB an answer: the function was asked again for the rest, four times at least.
    const calls = await aws.faults.calls(since);
    const invokes = calls.filter((c) => c.service === 'lambda' && c.action === 'Invoke');
    expect(invokes.length).toBeGreaterThanOrEqual(1 + 4 + 1); // the isolation, the reads, the kill
    // No grant to write, because the function writes nothing.
    expect(calls.filter((c) => c.service === 'iam' && /^(Put|Delete)RolePolicy$/.test(c.action))).toEqual([]);
    expect(
      await leftovers(aws.clients, INSTALLATION, handle.workflowId, aws.clusters.local, aws.clusterSecurityGroupId),
    ).toEqual([]);
    expect(result.timeline.find((e) => e.event === 'evidence')!.detail).toContain(ev.location!);
  });

  it("a pod replaced under the same name while its logs are read: the other pod's logs are not taken for the alerted pod's", async () => {
    const m = await minerWithLogs('evidence-replaced');
    kubelet.delays.set(`${m.ns}/${m.name}/app`, 3000);
    const handle = await r.respond(alertFor(m.ns, m.workload));
    // While the kubelet holds the log read, the pod is deleted and another made under its name, with its own logs.
    await until(
      'the logs asked for',
      async () => kubelet.requests.some((q) => q.startsWith(`GET /containerLogs/${m.ns}/${m.name}/app`)),
      30_000,
    );
    await kube.core.deleteNamespacedPod({ namespace: m.ns, name: m.name, gracePeriodSeconds: 0 });
    await until('the pod gone', async () => !(await podExists(kube, m.ns, m.name)), 10_000);
    const other = await createPod(kube, m.ns, m.name, undefined, {}, kubelet.node);
    expect(other.metadata!.uid).not.toBe(m.pod.metadata!.uid);
    kubelet.logs.set(`${m.ns}/${m.name}/app`, 'an innocent replacement\n');
    kubelet.logs.delete(`${m.ns}/${m.name}/app/previous`);
    const ev = (await closedStatus(handle)).evidence!;
    expect(ev.missing).toEqual(
      expect.arrayContaining([
        expect.stringMatching(
          new RegExp(
            `^logs/app\\.log: pod ${m.ns}/${m.name} is another pod now \\(uid ${other.metadata!.uid}, the alerted pod's was ${m.pod.metadata!.uid}\\)`,
          ),
        ),
      ]),
    );
    const manifest = await manifestOf(bucket, ev.location!);
    expect(manifest.objects.map((o) => o.key)).not.toContain('logs/app.log');
    // What was read before the replacement is the alerted pod's.
    const pod = JSON.parse((await text(bucket, `${ev.location!.slice(`s3://${bucket}/`.length)}pod.json`)).toString());
    expect(pod.metadata.uid).toBe(m.pod.metadata!.uid);
  });

  it("a pod already replaced under the same name when evidence is read: nothing of it is captured as the alerted pod's", async () => {
    const m = await minerWithLogs('evidence-replaced-before');
    await kube.core.deleteNamespacedPod({ namespace: m.ns, name: m.name, gracePeriodSeconds: 0 });
    await until('the pod gone', async () => !(await podExists(kube, m.ns, m.name)), 10_000);
    const other = await createPod(kube, m.ns, m.name, undefined, {}, kubelet.node);
    // The core's capture, as the direct executor runs it, for the alerted pod (its UID) on the stack's S3.
    const got = await runOperation(kubeClients(kubeConfigFromFile(inject('kubeconfigPath'))), {
      op: 'capture-evidence',
      incidentId: 'replaced-before',
      pod: { namespace: m.ns, name: m.name, uid: m.pod.metadata!.uid!, nodeName: kubelet.node },
      to: { bucket, prefix: `replaced-before/${m.name}/`, region: aws.region, endpoint: aws.endpoint },
      budgetMs: 5000,
      logBytesPerContainer: 1 << 20,
      checkpoint: false,
    });
    expect(got.objects.map((o) => o.key)).toEqual(['node.json']); // the node it ran on, which is no pod's
    const replaced = `pod ${m.ns}/${m.name} is another pod now (uid ${other.metadata!.uid}, the alerted pod's was ${m.pod.metadata!.uid}): not the alerted pod's evidence`;
    expect(got.missing).toEqual([
      `events.json: ${replaced}`,
      `logs: ${replaced}`,
      `owners: ${replaced}`,
      `pod.json: ${replaced}`,
    ]);
  });

  it('off by policy: no bundle, no capture step', async () => {
    const m = await minerWithLogs('evidence-off');
    const result = await closedStatus(await r.respond(alertFor(m.ns, m.workload), { evidenceSeconds: 0 }));
    expect(result.outcome).toBe('pod-terminated');
    expect(result.evidence ?? null).toBeNull();
    expect(result.timeline.some((e) => e.event === 'evidence')).toBe(false);
  });
});
