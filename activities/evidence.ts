/**
 * The evidence bundle, captured after isolation and before the pod is killed: what the cluster holds about the
 * pod (remediation/evidence.ts: manifests, events, every container's logs, optionally checkpoints), read and
 * written by the incident's executor, and what the incident knows (the alerts, the decision, the policy),
 * written here. One prefix per incident run, with a manifest listing each object's SHA-256. Within a time
 * budget: what is not captured in time is listed as missing, and the kill is never held back longer.
 *
 * Through the EKS executor the function inside the cluster's VPC reads the cluster's part, which it can reach
 * (443 to the cluster security group is its only egress), and returns it to the worker in pieces; the worker
 * writes it (eks-lambda/evidence-through-function.ts).
 */
import { GetObjectLockConfigurationCommand, type S3Client } from '@aws-sdk/client-s3';
import { Context } from '@temporalio/activity';
import type { PodAlert } from '../domain/alert.js';
import type { Decision } from '../domain/decide.js';
import type { Policy } from '../domain/policy.js';
import {
  describe as describeError,
  json,
  putEvidence,
  s3Deadline,
  s3For,
  sha256,
  type EvidenceCapture,
  type EvidenceDestination,
  type EvidenceRequest,
} from '../remediation/evidence.js';
import type { KubeClients } from '../remediation/kube.js';
import type { PodTarget } from '../remediation/protocol.js';
import { runOperation } from '../remediation/run.js';
import type { AwsClients } from './eks-lambda/clients.js';
import type { TargetCluster } from './eks-lambda/cluster.js';

export interface EvidenceConfig {
  bucket?: string | undefined;
  prefix: string;
  region?: string | undefined;
  /** An S3-compatible endpoint (MinIO, the local stack); unset: AWS. */
  endpoint?: string | undefined;
  logBytesPerContainer: number;
  /** Retention set on each object when the bucket has Object Lock enabled but no default retention. */
  retentionDays: number;
  /** Evidence bytes per answer of the EKS executor's function (before base64); default and most 4 MiB. */
  functionResponseBytes?: number | undefined;
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
  /** False on an EKS executor recorded before evidence went through it: only what the incident knows is written. */
  readCluster: boolean;
  /** The EKS executor's function of this stretch: it reads the cluster and writes its part. Unset: the worker does. */
  via?: { cluster: TargetCluster; functionName: string };
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
  /** Where each container checkpoint was written on its node (policy checkpointContainers). */
  checkpoints?: EvidenceCapture['checkpoints'];
}

/** `aws`: the worker's AWS clients, loaded only by an incident whose EKS executor captures through its function. */
export function createEvidenceActivities(
  config: EvidenceConfig,
  kubeFor: (cluster: string) => KubeClients,
  aws: () => Promise<(region: string) => AwsClients>,
) {
  return {
    async captureEvidence(input: EvidenceInput): Promise<EvidenceBundle> {
      const started = Date.now();
      const deadline = started + input.budgetSeconds * 1000;
      const bucket = config.bucket;
      if (!bucket) {
        return {
          location: null,
          objects: 0,
          bytes: 0,
          missing: ['everything: no evidence bucket configured (evidence.bucket, POD_RESPONDER_EVIDENCE_BUCKET)'],
          objectLock: 'n/a',
          manifestSha256: null,
          seconds: 0,
        };
      }
      // The run that captures it: a retried attempt writes the same keys, a later incident on the pod its own.
      const runId = Context.current().info.workflowExecution?.runId ?? 'no-run';
      const p = input.pod;
      const prefix = `${config.prefix}${input.cluster}/${p.namespace}/${p.name}/${runId}/`;
      const region = config.region ?? input.region;
      const where: EvidenceDestination = {
        bucket,
        prefix,
        ...(region ? { region } : {}),
        ...(config.endpoint ? { endpoint: config.endpoint } : {}),
      };
      const lock = await objectLockOf(s3For(where), bucket);
      const to: EvidenceDestination = { ...where, ...lock.put };
      const beat = setInterval(() => Context.current().heartbeat('capturing'), 2000);
      try {
        const cluster = await clusterPart(input, to, deadline);
        const written = [...cluster.objects];
        const missing = [...cluster.missing];
        // At once, each within S3_CALL_TIMEOUT_MS; then the manifest: the whole capture stays within its budget plus a few calls.
        const incidentPart = [
          ['alerts.json', json(input.alerts)],
          ['decision.json', json({ decision: input.decision, policy: input.policy })],
          ...(cluster.checkpoints.length ? ([['checkpoints.json', json(cluster.checkpoints)]] as const) : []),
        ] as const;
        written.push(...(await Promise.all(incidentPart.map(([name, body]) => putEvidence(to, name, body)))));
        written.sort((a, b) => a.key.localeCompare(b.key));
        const manifest = json({
          incidentId: input.incidentId,
          runId,
          pod: p,
          capturedAt: new Date().toISOString(),
          capturedBy: input.via ? `function ${input.via.functionName}` : 'the worker',
          objectLock: lock.describe,
          objects: written,
          missing,
        });
        await putEvidence(to, 'manifest.json', manifest);
        return {
          location: `s3://${bucket}/${prefix}`,
          objects: written.length + 1,
          bytes: written.reduce((n, w) => n + w.bytes, manifest.length),
          missing,
          objectLock: lock.describe,
          manifestSha256: sha256(manifest),
          seconds: Math.round((Date.now() - started) / 100) / 10,
          ...(cluster.checkpoints.length ? { checkpoints: cluster.checkpoints } : {}),
        };
      } finally {
        clearInterval(beat);
      }
    },
  };

  /** The cluster's side, by the executor of the stretch; whatever keeps it from running is listed as missing. */
  async function clusterPart(
    input: EvidenceInput,
    to: EvidenceDestination,
    deadline: number,
  ): Promise<EvidenceCapture> {
    const request: EvidenceRequest = {
      op: 'capture-evidence',
      incidentId: input.incidentId,
      pod: input.pod,
      to,
      budgetMs: 0,
      logBytesPerContainer: config.logBytesPerContainer,
      checkpoint: input.policy.checkpointContainers === true,
    };
    const nothing = (why: string): EvidenceCapture => ({
      objects: [],
      missing: [`cluster objects and logs: ${why}`],
      checkpoints: [],
    });
    if (!input.readCluster && !input.via)
      return nothing(
        'the EKS executor of this incident reads the cluster only through its function, which did not capture evidence then',
      );
    try {
      if (!input.via)
        return await runOperation(kubeFor(input.cluster), { ...request, budgetMs: Math.max(0, deadline - Date.now()) });
      const [clients, { captureThroughFunction }] = await Promise.all([
        aws(),
        import('./eks-lambda/evidence-through-function.js'),
      ]);
      return await captureThroughFunction(clients(input.via.cluster.region), input.via, request, {
        deadline,
        responseBytes: config.functionResponseBytes,
      });
    } catch (err) {
      return nothing(describeError(err));
    }
  }

  async function objectLockOf(
    s3c: S3Client,
    bucket: string,
  ): Promise<{ describe: string; put: { retainUntil?: string } }> {
    try {
      const { ObjectLockConfiguration: c } = await s3c.send(new GetObjectLockConfigurationCommand({ Bucket: bucket }), {
        abortSignal: s3Deadline(),
      });
      if (c?.ObjectLockEnabled !== 'Enabled') return { describe: 'not enabled on the bucket', put: {} };
      const d = c.Rule?.DefaultRetention;
      if (d)
        return {
          describe: `the bucket's default retention (${d.Mode}, ${d.Days ? `${d.Days} days` : `${d.Years} years`})`,
          put: {},
        };
      const until = new Date(Date.now() + config.retentionDays * 86_400_000).toISOString();
      return { describe: `GOVERNANCE retention until ${until} on each object`, put: { retainUntil: until } };
    } catch (err) {
      const code = (err as { name?: string }).name;
      if (code === 'ObjectLockConfigurationNotFoundError') return { describe: 'not enabled on the bucket', put: {} };
      throw err;
    }
  }
}
