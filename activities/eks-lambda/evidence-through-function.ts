/**
 * The cluster's part of a bundle through the EKS executor. The function runs in the cluster's VPC with one
 * egress rule, 443 to the cluster security group: it reaches the API server and nothing else, S3 included.
 * So it reads, and returns what it read to the worker in pieces that fit Lambda's synchronous response
 * (6 MB); the worker invokes it again for what did not fit, and writes every object itself. The function's
 * role needs no S3 permission, and no grant is made or removed per capture.
 */
import {
  describe as describeError,
  MAX_RESPONSE_BYTES,
  putEvidence,
  sha256,
  type EvidenceCapture,
  type EvidenceObject,
  type EvidencePiece,
  type EvidenceReadAnswer,
  type EvidenceReadRequest,
  type EvidenceRequest,
  type EvidenceRest,
} from '../../remediation/evidence.js';
import type { AwsClients } from './clients.js';
import type { TargetCluster } from './cluster.js';
import { invokeFunction } from './function.js';

/** The function runs at most 30 s: each call reads for at most this long, leaving it time to answer. */
export const FUNCTION_READ_MS = 22_000;

/** An item being put together from its pieces. */
interface Assembly {
  total: number;
  sha256: string;
  chunks: Buffer[];
  received: number;
}

export async function captureThroughFunction(
  aws: AwsClients,
  via: { cluster: TargetCluster; functionName: string },
  request: EvidenceRequest,
  opts: { deadline: number; responseBytes?: number },
): Promise<EvidenceCapture> {
  const { cluster, functionName } = via;
  const { to, op: _op, ...read } = request;
  const ask = (rest?: EvidenceRest[]): EvidenceReadRequest => ({
    ...read,
    op: 'read-evidence',
    budgetMs: Math.min(FUNCTION_READ_MS, Math.max(0, opts.deadline - Date.now())),
    responseBytes: Math.min(opts.responseBytes ?? MAX_RESPONSE_BYTES, MAX_RESPONSE_BYTES),
    ...(rest ? { rest } : {}),
  });
  const invoke = async (r: EvidenceReadRequest) => {
    const event = {
      cluster: {
        name: cluster.name,
        region: cluster.region,
        endpoint: cluster.endpoint,
        certificateAuthority: cluster.certificateAuthority,
      },
      request: r,
    };
    return (await invokeFunction(aws, functionName, event)) as EvidenceReadAnswer;
  };

  const objects: EvidenceObject[] = [];
  const missing: string[] = [];
  const writes: Promise<unknown>[] = [];
  const assembling = new Map<string, Assembly>();
  const dropped = new Set<string>();
  const write = (name: string, body: Buffer) =>
    writes.push(
      putEvidence(to, name, body).then(
        (o) => objects.push(o),
        (err: unknown) => missing.push(`${name}: not written: ${describeError(err)}`),
      ),
    );

  // The first call failing (the function cannot run, or cannot reach the API) fails the cluster part as a whole.
  let answer = await invoke(ask());
  const checkpoints = answer.checkpoints;
  for (;;) {
    missing.push(...answer.missing);
    for (const piece of answer.pieces) {
      if (dropped.has(piece.name)) continue;
      const done = take(assembling, piece);
      if (done !== 'changed') {
        if (done) write(piece.name, done);
        continue;
      }
      dropped.add(piece.name);
      missing.push(`${piece.name}: changed between the function's reads; not written`);
    }
    const rest = answer.rest.filter((r) => !dropped.has(r.name));
    if (rest.length === 0) break;
    if (Date.now() >= opts.deadline) {
      for (const r of rest)
        missing.push(`${r.name}: ${r.offset} of ${r.total} bytes returned within the budget; not written`);
      break;
    }
    try {
      answer = await invoke(ask(rest));
    } catch (err) {
      // What was already returned is written; only the rest is lost.
      for (const r of rest)
        missing.push(`${r.name}: ${r.offset} of ${r.total} bytes returned, then: ${describeError(err)}`);
      break;
    }
  }
  await Promise.all(writes);
  objects.sort((a, b) => a.key.localeCompare(b.key));
  return { objects, missing: missing.sort(), checkpoints };
}

/** Adds a piece; the whole item once its last piece is in and its hash is the one announced. */
function take(assembling: Map<string, Assembly>, piece: EvidencePiece): Buffer | 'changed' | undefined {
  const data = Buffer.from(piece.data, 'base64');
  let a = assembling.get(piece.name);
  if (!a) assembling.set(piece.name, (a = { total: piece.total, sha256: piece.sha256, chunks: [], received: 0 }));
  // A re-read that differs (a log rotated between calls) cannot be put together with what came before.
  if (a.sha256 !== piece.sha256 || a.total !== piece.total || piece.offset !== a.received) {
    assembling.delete(piece.name);
    return 'changed';
  }
  a.chunks.push(data);
  a.received += data.length;
  if (a.received < a.total) return undefined;
  assembling.delete(piece.name);
  const body = Buffer.concat(a.chunks);
  return sha256(body) === a.sha256 ? body : 'changed';
}
