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
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { awsStack } from '../support/aws.js';
import { createNamespace, createPod, podExists, testKube, type TestKube } from '../support/cluster.js';
import { startKubelet, type KubeletStandIn } from '../support/kubelet.js';
import { alertFor, startResponder, type Responder } from '../support/responder.js';

const aws = awsStack();
const s3 = new S3Client({ region: aws.region, endpoint: aws.endpoint, forcePathStyle: true });
const bucket = `evidence-${randomBytes(4).toString('hex')}`;
const lockedBucket = `evidence-locked-${randomBytes(4).toString('hex')}`;
let r: Responder;
let locked: Responder;
let kube: TestKube;
let kubelet: KubeletStandIn;

beforeAll(async () => {
  await s3.send(new CreateBucketCommand({ Bucket: bucket }));
  await s3.send(new CreateBucketCommand({ Bucket: lockedBucket, ObjectLockEnabledForBucket: true }));
  const evidence = (b: string) => ({ bucket: b, endpoint: aws.endpoint, region: aws.region });
  [r, locked] = await Promise.all([startResponder({ evidence: evidence(bucket) }), startResponder({ evidence: evidence(lockedBucket) })]);
  kube = testKube();
  kubelet = await startKubelet();
});
afterAll(async () => {
  await Promise.all([r?.close(), locked?.close()]);
  await kubelet?.close();
  s3.destroy();
});

const text = async (b: string, key: string) => Buffer.from(await (await s3.send(new GetObjectCommand({ Bucket: b, Key: key }))).Body!.transformToByteArray());
const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

/** A miner pod on the stand-in's node, with 1 MiB of current logs and a few lines from its previous instance. */
async function minerWithLogs(prefix: string) {
  const ns = await createNamespace(kube, prefix);
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
    const result = await handle.result();
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
    const manifest = JSON.parse(manifestBody.toString()) as { objects: { key: string; sha256: string; bytes: number }[]; missing: string[]; incidentId: string };
    expect(manifest.incidentId).toBe(handle.workflowId);
    expect(manifest.objects.map((o) => o.key).sort()).toEqual(['alerts.json', 'decision.json', 'events.json', 'logs/app.log', 'logs/app.previous.log', 'node.json', 'pod.json']);
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
    const result = await (await locked.respond(alertFor(m.ns, m.workload))).result();
    const ev = result.evidence!;
    expect(ev.objectLock).toMatch(/^GOVERNANCE retention until \d{4}-/);
    const key = ev.location!.slice(`s3://${lockedBucket}/`.length);
    // HeadObject (moto's GetObjectRetention answer is not XML the SDK parses).
    const head = await s3.send(new HeadObjectCommand({ Bucket: lockedBucket, Key: `${key}pod.json` }));
    expect(head.ObjectLockMode).toBe('GOVERNANCE');
    expect(head.ObjectLockRetainUntilDate!.getTime()).toBeGreaterThan(Date.now() + 29 * 86_400_000);
  });

  it('a node that does not answer in time: its logs are listed as missing and the kill goes on within the budget', async () => {
    const m = await minerWithLogs('evidence-slow');
    kubelet.delays.set(`${m.ns}/${m.name}/app`, 30_000);
    const result = await (await r.respond(alertFor(m.ns, m.workload), { evidenceSeconds: 2 })).result();
    expect(result.outcome).toBe('pod-terminated');
    const ev = result.evidence!;
    expect(ev.missing).toEqual(['logs: not captured within the 2s budget']);
    expect(ev.seconds).toBeLessThan(2 + 3);
    expect(ev.objects).toBeGreaterThanOrEqual(5); // manifest, alerts, decision, pod, events (node too)
  });

  it('off by policy: no bundle, no capture step', async () => {
    const m = await minerWithLogs('evidence-off');
    const result = await (await r.respond(alertFor(m.ns, m.workload), { evidenceSeconds: 0 })).result();
    expect(result.outcome).toBe('pod-terminated');
    expect(result.evidence ?? null).toBeNull();
    expect(result.timeline.some((e) => e.event === 'evidence')).toBe(false);
  });
});
