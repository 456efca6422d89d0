/**
 * The cluster's side of the evidence bundle, run by either executor: the pod's manifest as it ran, its owners'
 * manifests, its node, the events about them, each container's logs (current and previous, size-limited), and
 * optionally a checkpoint of each container through the kubelet's checkpoint API. Within a deadline: what is
 * not captured in time is listed as missing, never waited for.
 *
 * Bound to the pod's UID: the pod is read by name (the API has no other way), so a pod replaced under the same
 * name is another pod; its manifest and logs are never taken for the alerted pod's (the logs are read by name,
 * so the UID is read again after them).
 *
 * Two ways out. `capture-evidence` (the worker, direct executor): each part written to S3 as soon as it is
 * read, only keys and hashes come back. `read-evidence` (the EKS executor's function, which may reach the
 * cluster API and nothing else): what was read is returned to the worker in pieces that fit Lambda's
 * response, and the worker writes it; what does not fit is read again by a later call, from an offset.
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
}

/** What the function reads for the worker to write (the function reaches the cluster API and nothing else). */
export interface EvidenceReadRequest extends Omit<EvidenceRequest, 'op' | 'to'> {
  op: 'read-evidence';
  /** Bytes of evidence one answer may carry, before base64 (which adds a third): within Lambda's 6 MB response. */
  responseBytes: number;
  /** A later call: only the rest of these items, read again, from their offsets. */
  rest?: EvidenceRest[];
}

/** An item not (wholly) in an answer: the worker asks for it again from `offset`. */
export interface EvidenceRest {
  name: string;
  offset: number;
  /** The item's length when first read: a re-read takes exactly as much (a log's first bytes do not change). */
  total: number;
}

/** Bytes [offset, offset + data's length) of one item of `total` bytes, whose SHA-256 is `sha256`. */
export interface EvidencePiece {
  name: string;
  offset: number;
  total: number;
  sha256: string;
  /** base64 */
  data: string;
}

export interface EvidenceReadAnswer {
  pieces: EvidencePiece[];
  rest: EvidenceRest[];
  missing: string[];
  checkpoints: EvidenceCapture['checkpoints'];
}

/** The most one answer carries before base64: 4 MiB is 5.6 MB encoded, leaving room for the rest of the JSON in 6 MB. */
export const MAX_RESPONSE_BYTES = 4 * 1024 * 1024;

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
const strip = <T extends { metadata?: { managedFields?: unknown } }>(o: T): T => ({
  ...o,
  metadata: { ...o.metadata, managedFields: undefined },
});

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
  const objects: EvidenceObject[] = [];
  const { missing, checkpoints } = await gather(kube, r, async (item) => {
    objects.push(await putEvidence(r.to, item.name, item.body));
  });
  objects.sort((a, b) => a.key.localeCompare(b.key));
  return { objects, missing: missing.sort(), checkpoints };
}

/**
 * The function's side: everything read (or, on a later call, the items asked for, read again), packed into an
 * answer of at most `responseBytes` of evidence, the smallest items first; the rest is named with its offset.
 */
export async function readEvidence(kube: KubeClients, r: EvidenceReadRequest): Promise<EvidenceReadAnswer> {
  const items: Item[] = [];
  let missing: string[];
  let checkpoints: EvidenceCapture['checkpoints'] = [];
  const from = new Map((r.rest ?? []).map((x) => [x.name, x]));
  if (r.rest) {
    missing = [];
    const deadline = Date.now() + r.budgetMs;
    await Promise.all(
      r.rest.map(async (x) => {
        const read = await withDeadline(readAgain(kube, r, x), deadline);
        if (read.kind === 'ok') items.push(read.value);
        else
          missing.push(
            `${x.name}: ${read.kind === 'error' ? read.error : `not read again within the ${Math.round(r.budgetMs / 1000)}s budget`}`,
          );
      }),
    );
  } else {
    ({ missing, checkpoints } = await gather(kube, r, async (item) => void items.push(item)));
  }
  const budget = Math.max(1, Math.min(r.responseBytes, MAX_RESPONSE_BYTES));
  let used = 0;
  const pieces: EvidencePiece[] = [];
  const rest: EvidenceRest[] = [];
  const left = (it: Item) => it.body.length - (from.get(it.name)?.offset ?? 0);
  for (const it of items.sort((a, b) => left(a) - left(b) || a.name.localeCompare(b.name))) {
    const offset = from.get(it.name)?.offset ?? 0;
    const take = Math.min(left(it), budget - used);
    if (take <= 0 && left(it) > 0) {
      rest.push({ name: it.name, offset, total: it.body.length });
      continue;
    }
    pieces.push({
      name: it.name,
      offset,
      total: it.body.length,
      sha256: sha256(it.body),
      data: it.body.subarray(offset, offset + take).toString('base64'),
    });
    used += take;
    if (offset + take < it.body.length) rest.push({ name: it.name, offset: offset + take, total: it.body.length });
  }
  return { pieces, rest, missing: missing.sort(), checkpoints };
}

/**
 * Reads every part at once, each handed to `deliver` as soon as it is read: a slow or refused read costs its
 * own part only. A delivery that fails is listed as not written.
 */
async function gather(
  kube: KubeClients,
  r: Omit<EvidenceRequest, 'op' | 'to'>,
  deliver: (item: Item) => Promise<void>,
): Promise<{ missing: string[]; checkpoints: EvidenceCapture['checkpoints'] }> {
  const deadline = Date.now() + r.budgetMs;
  const missing: string[] = [];
  const checkpoints: EvidenceCapture['checkpoints'] = [];
  const parts = clusterParts(kube, r, deadline, missing, checkpoints);
  await Promise.all(
    parts.map(async (part) => {
      const outcome = await withDeadline(
        part
          .read()
          .then((items) =>
            Promise.all(
              items.map((it) =>
                deliver(it).catch((err: unknown) => missing.push(`${it.name}: not written: ${describe(err)}`)),
              ),
            ),
          ),
        part.ownDeadlines ? deadline + WRITE_GRACE_MS : deadline,
      );
      if (outcome.kind === 'timeout')
        missing.push(`${part.name}: not captured within the ${Math.round(r.budgetMs / 1000)}s budget`);
      else if (outcome.kind === 'error') missing.push(`${part.name}: ${outcome.error}`);
    }),
  );
  return { missing, checkpoints };
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

type Request = Omit<EvidenceRequest, 'op' | 'to'>;
type PodObject = Awaited<ReturnType<KubeClients['core']['readNamespacedPod']>>;

/** The alerted pod, read by name and bound to its UID: a pod replaced under the same name is refused. */
async function readThePod(kube: KubeClients, p: PodTarget): Promise<PodObject> {
  const pod = await kube.core.readNamespacedPod({ namespace: p.namespace, name: p.name });
  const uid = pod.metadata?.uid;
  if (uid !== p.uid)
    throw new Error(
      `pod ${p.namespace}/${p.name} is another pod now (uid ${uid}, the alerted pod's was ${p.uid}): not the alerted pod's evidence`,
    );
  return pod;
}

/** One container's logs (current or previous), read by the pod's name: taken only if the pod is still the alerted one after. */
async function readLog(
  kube: KubeClients,
  p: PodTarget,
  container: string,
  previous: boolean,
  limitBytes: number,
): Promise<Buffer> {
  const text = await kube.core.readNamespacedPodLog({
    namespace: p.namespace,
    name: p.name,
    container,
    previous,
    limitBytes,
  });
  await readThePod(kube, p);
  return Buffer.from(text);
}

async function readEvents(kube: KubeClients, p: PodTarget, pod: PodObject): Promise<Buffer> {
  const events = await kube.core.listNamespacedEvent({ namespace: p.namespace });
  const uids = new Set([p.uid, ...(pod.metadata?.ownerReferences ?? []).map((o) => o.uid)]);
  return json(events.items.filter((e) => uids.has(e.involvedObject.uid ?? '')).map(strip));
}

const LOG_ITEM = /^logs\/(.+?)(\.previous)?\.log$/;
const OWNER_ITEM = /^owners\/([A-Za-z]+)-(.+)\.json$/;

/** An item the worker asks for again, read as the first call read it (exactly `total` bytes of a log). */
async function readAgain(kube: KubeClients, r: Request, x: EvidenceRest): Promise<Item> {
  const p = r.pod;
  const item = (body: Buffer): Item => ({ name: x.name, body });
  const log = LOG_ITEM.exec(x.name);
  if (log)
    return item(await readLog(kube, p, log[1]!, log[2] !== undefined, Math.min(x.total, r.logBytesPerContainer)));
  const owner = OWNER_ITEM.exec(x.name);
  if (owner) {
    await readThePod(kube, p);
    return item(
      json(
        strip(
          (await readWorkload(kube, { kind: owner[1]!, namespace: p.namespace, name: owner[2]! })) as {
            metadata?: { managedFields?: unknown };
          },
        ),
      ),
    );
  }
  switch (x.name) {
    case 'pod.json':
      return item(json(strip(await readThePod(kube, p))));
    case 'events.json':
      return item(await readEvents(kube, p, await readThePod(kube, p)));
    case 'node.json':
      if (p.nodeName) return item(json(strip(await kube.core.readNode({ name: p.nodeName }))));
  }
  // A checkpoint is not asked for twice (that would be a second checkpoint): its record is a few bytes, always in the first answer.
  throw new Error('cannot be read again');
}

/** One part per thing that can fail on its own: each manifest, each container's logs, each checkpoint. */
function clusterParts(
  kube: KubeClients,
  r: Request,
  deadline: number,
  missing: string[],
  checkpoints: EvidenceCapture['checkpoints'],
): Part[] {
  const p = r.pod;
  const podRead = readThePod(kube, p);
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
          const obj = await readWorkload(kube, { kind: owner.kind, namespace: p.namespace, name: owner.name }).catch(
            () => null,
          );
          if (!obj) break;
          out.push({
            name: `owners/${owner.kind}-${owner.name}.json`,
            body: json(strip(obj as { metadata?: { managedFields?: unknown } })),
          });
          meta = obj.metadata;
        }
        return out;
      },
    },
    {
      name: 'events.json',
      read: async () => [{ name: 'events.json', body: await readEvents(kube, p, await podRead) }],
    },
  ];
  if (p.nodeName) {
    const nodeName = p.nodeName;
    parts.push({
      name: 'node.json',
      read: async () => [{ name: 'node.json', body: json(strip(await kube.core.readNode({ name: nodeName }))) }],
    });
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
  r: Request,
  podRead: Promise<PodObject>,
  deadline: number,
  missing: string[],
  checkpoints: EvidenceCapture['checkpoints'],
): Part[] {
  const p = r.pod;
  const names = podRead.then((pod) =>
    [...(pod.spec?.initContainers ?? []), ...(pod.spec?.containers ?? [])].map((c) => c.name),
  );
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
            missing.push(
              `${label} of ${c}: ${s.kind === 'error' ? s.error : `not captured within the ${Math.round(r.budgetMs / 1000)}s budget`}`,
            );
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
            out.push({ name, body: await readLog(kube, p, c, previous, r.logBytesPerContainer) });
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
        const answer = await kube.core.connectPostNodeProxyWithPath({
          name: node,
          path: `checkpoint/${p.namespace}/${p.name}/${c}`,
        });
        const items =
          (typeof answer === 'string' ? (JSON.parse(answer) as { items?: string[] }) : (answer as { items?: string[] }))
            .items ?? [];
        await readThePod(kube, p); // the checkpoint was asked for by name: record it only if it was the alerted pod's
        for (const path of items) checkpoints.push({ container: c, node, path });
        return [{ name: `checkpoints/${c}.json`, body: json({ container: c, node, paths: items }) }];
      }),
    );
  } else if (r.checkpoint) missing.push('checkpoint: the pod is on no node');
  return parts;
}
