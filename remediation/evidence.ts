/**
 * The cluster's side of the evidence bundle, run by either executor (in the worker, or in the function inside
 * the cluster's VPC): the pod's manifest as it ran, its owners' manifests, its node, the events about them,
 * each container's logs (current and previous, size-limited), and optionally a checkpoint of each container
 * through the kubelet's checkpoint API. Each part is written to S3 as soon as it is read, under the prefix the
 * worker chose (the function may write there and nowhere else, and read nothing); only the keys and hashes
 * come back. Within a deadline: what is not captured in time is listed as missing, never waited for.
 */
import { PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { createHash } from 'node:crypto';
import { clientCache } from './client-cache.js';
import { kubeFailure, type KubeClients } from './kube.js';
import type { PodTarget } from './protocol.js';
import { readWorkload } from './workloads.js';

export interface EvidenceDestination {
  bucket: string;
  /** Ends with '/': one prefix per incident run. */
  prefix: string;
  region?: string;
  /** An S3-compatible endpoint (MinIO, the local stack); unset: AWS. */
  endpoint?: string;
  /** Object Lock retention to set on each object (a bucket with Object Lock and no default rule). */
  retainUntil?: string;
}

export interface EvidenceRequest {
  op: 'capture-evidence';
  incidentId: string;
  pod: PodTarget;
  to: EvidenceDestination;
  /** Milliseconds from the start of the operation; each part not done by then is listed as missing. */
  budgetMs: number;
  logBytesPerContainer: number;
  /** Ask each container's kubelet for a checkpoint (policy checkpointContainers). */
  checkpoint: boolean;
  /**
   * Retry a write refused as AccessDenied until the deadline: the function's right to write the prefix is
   * granted just before it runs, and IAM takes a moment to apply it everywhere.
   */
  awaitWriteAccess?: boolean;
}

export interface EvidenceObject {
  key: string;
  sha256: string;
  bytes: number;
}

export interface EvidenceCapture {
  objects: EvidenceObject[];
  missing: string[];
  /** Where each checkpoint was written on its node (the kubelet keeps it there; pod-responder does not copy it). */
  checkpoints: { container: string; node: string; path: string }[];
}

interface Item {
  name: string;
  body: Buffer;
}

interface Part {
  name: string;
  read(): Promise<Item[]>;
  /** Its reads keep the deadline themselves and list their own gaps (per container); only its writes get a grace. */
  ownDeadlines?: boolean;
}

/** Writes of what was read just in time may finish this long after the deadline. */
const WRITE_GRACE_MS = 5000;
/**
 * Every S3 call's deadline, its SDK retries included: S3 that hangs (or a network path that drops packets)
 * costs a listed gap, never an open-ended wait while the pod waits to be killed.
 */
export const S3_CALL_TIMEOUT_MS = 5000;

export const json = (v: unknown) => Buffer.from(`${JSON.stringify(v, null, 2)}\n`);
export const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');
/** Managed fields are bookkeeping; the manifest as it ran is the rest. */
const strip = <T extends { metadata?: { managedFields?: unknown } }>(o: T): T => ({ ...o, metadata: { ...o.metadata, managedFields: undefined } });

/** One client per region and endpoint, shared by every bundle; the region may come from the alert, so few are kept. */
const s3Clients = clientCache<S3Client>({
  max: 8,
  graceMs: 5 * 60_000,
  make: (key) => {
    const { region, endpoint } = JSON.parse(key) as Pick<EvidenceDestination, 'region' | 'endpoint'>;
    return new S3Client({ ...(region ? { region } : {}), ...(endpoint ? { endpoint, forcePathStyle: true } : {}) });
  },
  destroy: (c) => c.destroy(),
});
export function s3For(to: Pick<EvidenceDestination, 'region' | 'endpoint'>): S3Client {
  return s3Clients.get(JSON.stringify({ region: to.region, endpoint: to.endpoint }));
}

export async function captureEvidence(kube: KubeClients, r: EvidenceRequest): Promise<EvidenceCapture> {
  const deadline = Date.now() + r.budgetMs;
  const missing: string[] = [];
  const objects: EvidenceObject[] = [];
  const checkpoints: EvidenceCapture['checkpoints'] = [];

  const write = async (item: Item) => {
    for (let wait = 250; ; wait = Math.min(wait * 2, 2000)) {
      try {
        objects.push(await putEvidence(r.to, item.name, item.body));
        return;
      } catch (err) {
        const denied = (err as { name?: string }).name === 'AccessDenied';
        if (!denied || !r.awaitWriteAccess || Date.now() + wait > deadline) throw err;
        await new Promise((res) => setTimeout(res, wait));
      }
    }
  };

  // Every part at once, each read then written for itself: a slow or refused read costs its own part only.
  const parts = clusterParts(kube, r, deadline, missing, checkpoints);
  await Promise.all(
    parts.map(async (part) => {
      const outcome = await withDeadline(
        part.read().then((items) => Promise.all(items.map((it) => write(it).catch((err: unknown) => missing.push(`${it.name}: not written: ${describe(err)}`))))),
        part.ownDeadlines ? deadline + WRITE_GRACE_MS : deadline,
      );
      if (outcome.kind === 'timeout') missing.push(`${part.name}: not captured within the ${Math.round(r.budgetMs / 1000)}s budget`);
      else if (outcome.kind === 'error') missing.push(`${part.name}: ${outcome.error}`);
    }),
  );
  objects.sort((a, b) => a.key.localeCompare(b.key));
  return { objects, missing: missing.sort(), checkpoints };
}

/** Writes one object of a bundle (with its retention, when the bucket needs one set) and says what was written. */
export async function putEvidence(to: EvidenceDestination, name: string, body: Buffer): Promise<EvidenceObject> {
  await s3For(to).send(
    new PutObjectCommand({
      Bucket: to.bucket,
      Key: `${to.prefix}${name}`,
      Body: body,
      ContentType: name.endsWith('.json') ? 'application/json' : 'text/plain',
      ...(to.retainUntil ? { ObjectLockMode: 'GOVERNANCE', ObjectLockRetainUntilDate: new Date(to.retainUntil) } : {}),
    }),
    { abortSignal: s3Deadline() },
  );
  return { key: name, sha256: sha256(body), bytes: body.length };
}

/** The abort signal every S3 call of a bundle carries (its message names the deadline). */
export function s3Deadline(ms = S3_CALL_TIMEOUT_MS): AbortSignal {
  return AbortSignal.timeout(ms);
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

export function describe(err: unknown): string {
  const f = kubeFailure(err);
  if (f.status) return `HTTP ${f.status} ${f.reason}: ${f.message}`;
  const name = (err as { name?: string }).name;
  return name && name !== 'Error' ? `${name}: ${f.message}` : f.message;
}

/** One part per thing that can fail on its own: each manifest, each container's logs, each checkpoint. */
function clusterParts(kube: KubeClients, r: EvidenceRequest, deadline: number, missing: string[], checkpoints: EvidenceCapture['checkpoints']): Part[] {
  const p = r.pod;
  const podRead = kube.core.readNamespacedPod({ namespace: p.namespace, name: p.name });
  podRead.catch(() => undefined); // each part reports it for itself
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
  return [...parts, ...containerParts(kube, r, podRead, deadline, missing, checkpoints)];
}

/**
 * The containers are known once the pod is read, so their parts are one each, started together: the logs of
 * each (both instances), and its checkpoint when asked. A container that does not answer in time loses its
 * own part only.
 */
function containerParts(
  kube: KubeClients,
  r: EvidenceRequest,
  podRead: Promise<{ spec?: { containers?: { name: string }[]; initContainers?: { name: string }[] } }>,
  deadline: number,
  missing: string[],
  checkpoints: EvidenceCapture['checkpoints'],
): Part[] {
  const p = r.pod;
  const names = podRead.then((pod) => [...(pod.spec?.initContainers ?? []), ...(pod.spec?.containers ?? [])].map((c) => c.name));
  names.catch(() => undefined);
  // A part that starts the per-container reads when the names are known, and reports each container's own gaps.
  const perContainer = (label: string, read: (container: string) => Promise<Item[]>): Part => ({
    name: label,
    ownDeadlines: true,
    read: async () => {
      const out = await Promise.all(
        (await names).map((c) =>
          withDeadline(read(c), deadline).then((s) => {
            if (s.kind === 'ok') return s.value;
            missing.push(`${label} of ${c}: ${s.kind === 'error' ? s.error : `not captured within the ${Math.round(r.budgetMs / 1000)}s budget`}`);
            return [];
          }),
        ),
      );
      return out.flat();
    },
  });
  const parts = [
    perContainer('logs', async (c) => {
      const out: Item[] = [];
      await Promise.all(
        [false, true].map(async (previous) => {
          const name = `logs/${c}${previous ? '.previous' : ''}.log`;
          try {
            const text = await kube.core.readNamespacedPodLog({ namespace: p.namespace, name: p.name, container: c, previous, limitBytes: r.logBytesPerContainer });
            out.push({ name, body: Buffer.from(text) });
          } catch (err) {
            // No previous instance is the usual case, not a gap in the evidence.
            if (previous && kubeFailure(err).status === 400) return;
            missing.push(`${name}: ${describe(err)}`);
          }
        }),
      );
      return out;
    }),
  ];
  if (r.checkpoint && p.nodeName) {
    const node = p.nodeName;
    parts.push(
      perContainer('checkpoint', async (c) => {
        // The kubelet's checkpoint API through the API server's node proxy; the archive stays on the node.
        const answer = await kube.core.connectPostNodeProxyWithPath({ name: node, path: `checkpoint/${p.namespace}/${p.name}/${c}` });
        const items = (typeof answer === 'string' ? (JSON.parse(answer) as { items?: string[] }) : (answer as { items?: string[] })).items ?? [];
        for (const path of items) checkpoints.push({ container: c, node, path });
        return [{ name: `checkpoints/${c}.json`, body: json({ container: c, node, paths: items }) }];
      }),
    );
  } else if (r.checkpoint) missing.push('checkpoint: the pod is on no node');
  return parts;
}
