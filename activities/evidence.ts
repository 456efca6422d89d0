/**
 * The evidence bundle, captured after isolation and before the pod is killed: the pod's manifest as it ran,
 * its owners' manifests, its node, the events about them, every container's logs (current and previous,
 * size-limited), the alerts, the decision and the policy. Written to S3 (any S3-compatible store), one prefix
 * per incident, with a manifest listing each object's SHA-256. Within a time budget: what is not captured in
 * time is listed as missing, and the kill is never held back longer.
 */
import { GetObjectLockConfigurationCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { Context } from '@temporalio/activity';
import { createHash } from 'node:crypto';
import type { PodAlert } from '../domain/alert.js';
import type { Decision } from '../domain/decide.js';
import type { Policy } from '../domain/policy.js';
import { kubeFailure, type KubeClients } from '../remediation/kube.js';
import type { PodTarget } from '../remediation/protocol.js';
import { readWorkload } from '../remediation/workloads.js';

export interface EvidenceConfig {
  bucket?: string | undefined;
  prefix: string;
  region?: string | undefined;
  /** An S3-compatible endpoint (MinIO, the local stack); unset: AWS. */
  endpoint?: string | undefined;
  logBytesPerContainer: number;
  /** Retention set on each object when the bucket has Object Lock enabled but no default retention. */
  retentionDays: number;
}

export interface EvidenceInput {
  incidentId: string;
  cluster: string;
  region?: string | undefined;
  pod: PodTarget;
  alerts: PodAlert[];
  decision: Decision | null;
  policy: Policy;
  budgetSeconds: number;
  /** False on the EKS executor: the worker cannot reach the cluster, only what the incident knows is written. */
  readCluster: boolean;
}

export interface EvidenceBundle {
  /** `s3://bucket/prefix/`, or null when nothing could be written. */
  location: string | null;
  objects: number;
  bytes: number;
  /** What is not in the bundle, and why. */
  missing: string[];
  objectLock: string;
  /** SHA-256 of manifest.json: the one hash that vouches for the rest. */
  manifestSha256: string | null;
  seconds: number;
}

interface Item {
  name: string;
  body: Buffer;
}

const json = (v: unknown) => Buffer.from(`${JSON.stringify(v, null, 2)}\n`);
const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');
/** Managed fields are bookkeeping; the manifest as it ran is the rest. */
const strip = <T extends { metadata?: { managedFields?: unknown } }>(o: T): T => ({ ...o, metadata: { ...o.metadata, managedFields: undefined } });

export function createEvidenceActivities(config: EvidenceConfig, kubeFor: (cluster: string) => KubeClients) {
  let s3: S3Client | undefined;
  const client = (region: string | undefined) =>
    (s3 ??= new S3Client({
      ...(config.region || region ? { region: config.region ?? region } : {}),
      ...(config.endpoint ? { endpoint: config.endpoint, forcePathStyle: true } : {}),
    }));

  return {
    async captureEvidence(input: EvidenceInput): Promise<EvidenceBundle> {
      const started = Date.now();
      const deadline = started + input.budgetSeconds * 1000;
      const missing: string[] = [];
      const bucket = config.bucket;
      if (!bucket) {
        return { location: null, objects: 0, bytes: 0, missing: ['everything: no evidence bucket configured (evidence.bucket, POD_RESPONDER_EVIDENCE_BUCKET)'], objectLock: 'n/a', manifestSha256: null, seconds: 0 };
      }
      // The run that captures it: a retried attempt writes the same keys, a later incident on the pod its own.
      const runId = Context.current().info.workflowExecution?.runId ?? 'no-run';
      const p = input.pod;
      const prefix = `${config.prefix}${input.cluster}/${p.namespace}/${p.name}/${runId}/`;
      const s3c = client(input.region);
      const lock = await objectLockOf(s3c, bucket);

      const items: Item[] = [
        { name: 'alerts.json', body: json(input.alerts) },
        { name: 'decision.json', body: json({ decision: input.decision, policy: input.policy }) },
      ];
      if (input.readCluster) {
        const kube = kubeFor(input.cluster);
        // Everything at once, each part for itself: a slow or refused read costs its own part only.
        const parts = clusterParts(kube, p, config.logBytesPerContainer, missing);
        const settled = await Promise.all(parts.map((part) => withDeadline(part.read(), deadline).then((r) => ({ part, r }))));
        for (const { part, r } of settled) {
          if (r.kind === 'timeout') missing.push(`${part.name}: not captured within the ${input.budgetSeconds}s budget`);
          else if (r.kind === 'error') missing.push(`${part.name}: ${r.error}`);
          else items.push(...r.value);
        }
      } else {
        missing.push('cluster objects and logs: the EKS executor reads the cluster only through its function, which does not capture evidence');
      }

      const written: { key: string; sha256: string; bytes: number }[] = [];
      const put = async (name: string, body: Buffer) => {
        await s3c.send(new PutObjectCommand({ Bucket: bucket, Key: `${prefix}${name}`, Body: body, ContentType: name.endsWith('.json') ? 'application/json' : 'text/plain', ...lock.put }));
        Context.current().heartbeat(name);
      };
      for (const item of items) {
        if (Date.now() > deadline + 5000) {
          missing.push(`${item.name}: not written within the budget`);
          continue;
        }
        await put(item.name, item.body);
        written.push({ key: item.name, sha256: sha256(item.body), bytes: item.body.length });
      }
      const manifest = json({ incidentId: input.incidentId, runId, pod: p, capturedAt: new Date().toISOString(), objectLock: lock.describe, objects: written, missing });
      await put('manifest.json', manifest);
      return {
        location: `s3://${bucket}/${prefix}`,
        objects: written.length + 1,
        bytes: written.reduce((n, w) => n + w.bytes, manifest.length),
        missing,
        objectLock: lock.describe,
        manifestSha256: sha256(manifest),
        seconds: Math.round((Date.now() - started) / 100) / 10,
      };
    },
  };

  async function objectLockOf(s3c: S3Client, bucket: string): Promise<{ describe: string; put: object }> {
    try {
      const { ObjectLockConfiguration: c } = await s3c.send(new GetObjectLockConfigurationCommand({ Bucket: bucket }));
      if (c?.ObjectLockEnabled !== 'Enabled') return { describe: 'not enabled on the bucket', put: {} };
      const d = c.Rule?.DefaultRetention;
      if (d) return { describe: `the bucket's default retention (${d.Mode}, ${d.Days ? `${d.Days} days` : `${d.Years} years`})`, put: {} };
      const until = new Date(Date.now() + config.retentionDays * 86_400_000);
      return { describe: `GOVERNANCE retention until ${until.toISOString()} on each object`, put: { ObjectLockMode: 'GOVERNANCE', ObjectLockRetainUntilDate: until } };
    } catch (err) {
      const code = (err as { name?: string }).name;
      if (code === 'ObjectLockConfigurationNotFoundError') return { describe: 'not enabled on the bucket', put: {} };
      throw err;
    }
  }
}

type Settled<T> = { kind: 'ok'; value: T } | { kind: 'error'; error: string } | { kind: 'timeout' };

function withDeadline<T>(p: Promise<T>, deadline: number): Promise<Settled<T>> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve({ kind: 'timeout' }), Math.max(0, deadline - Date.now()));
    p.then(
      (value) => resolve({ kind: 'ok', value }),
      (err: unknown) => resolve({ kind: 'error', error: describe(err) }),
    ).finally(() => clearTimeout(timer));
  });
}

function describe(err: unknown): string {
  const f = kubeFailure(err);
  return f.status ? `HTTP ${f.status} ${f.reason}: ${f.message}` : f.message;
}

interface Part {
  name: string;
  read(): Promise<Item[]>;
}

/** The cluster's side of the bundle, one part per thing that can fail on its own. */
function clusterParts(kube: KubeClients, p: PodTarget, logBytes: number, missing: string[]): Part[] {
  const podRead = kube.core.readNamespacedPod({ namespace: p.namespace, name: p.name });
  const parts: Part[] = [
    { name: 'pod.json', read: async () => [{ name: 'pod.json', body: json(strip(await podRead)) }] },
    {
      name: 'owners',
      read: async () => {
        const out: Item[] = [];
        let meta = (await podRead).metadata;
        for (let depth = 0; depth < 4; depth++) {
          const owner = meta?.ownerReferences?.find((o) => o.controller);
          if (!owner) break;
          const obj = await readWorkload(kube, { kind: owner.kind, namespace: p.namespace, name: owner.name }).catch(() => null);
          if (!obj) break;
          out.push({ name: `owners/${owner.kind}-${owner.name}.json`, body: json(strip(obj as { metadata?: { managedFields?: unknown } })) });
          meta = obj.metadata;
        }
        return out;
      },
    },
    {
      name: 'events.json',
      read: async () => {
        const events = await kube.core.listNamespacedEvent({ namespace: p.namespace });
        const pod = await podRead;
        const uids = new Set([p.uid, ...(pod.metadata?.ownerReferences ?? []).map((o) => o.uid)]);
        return [{ name: 'events.json', body: json(events.items.filter((e) => uids.has(e.involvedObject.uid ?? '')).map(strip)) }];
      },
    },
  ];
  if (p.nodeName) {
    const nodeName = p.nodeName;
    parts.push({ name: 'node.json', read: async () => [{ name: 'node.json', body: json(strip(await kube.core.readNode({ name: nodeName }))) }] });
  }
  // Logs: one part for every container, both instances of each read at once; a node that does not answer in
  // time loses the logs part as a whole (listed as missing), never the manifests.
  const containers = podRead.then((pod) => [...(pod.spec?.initContainers ?? []), ...(pod.spec?.containers ?? [])].map((c) => c.name));
  parts.push({
    name: 'logs',
    read: async () => {
      const out: Item[] = [];
      await Promise.all(
        (await containers).flatMap((c) =>
          [false, true].map(async (previous) => {
            const name = `logs/${c}${previous ? '.previous' : ''}.log`;
            try {
              const text = await kube.core.readNamespacedPodLog({ namespace: p.namespace, name: p.name, container: c, previous, limitBytes: logBytes });
              out.push({ name, body: Buffer.from(text) });
            } catch (err) {
              // No previous instance is the usual case, not a gap in the evidence.
              if (previous && kubeFailure(err).status === 400) return;
              missing.push(`${name}: ${describe(err)}`);
            }
          }),
        ),
      );
      return out.sort((a, b) => a.name.localeCompare(b.name));
    },
  });
  return parts;
}
