/**
 * Evidence before destruction: once the pod is isolated and the incident is about to kill it, the bundle
 * (activities/evidence.ts) is captured within the policy's budget, in one attempt. It never holds the kill back
 * for longer: what is not captured in time is listed as missing, and a capture that fails outright is noted and
 * passed. A pod that is not cut off the network (isolation off, failed, or not enforceable) is killed first, with
 * no bundle: a miner still reaching its pool is not kept alive for its logs (docs/kill-first.md).
 */
import { isCancellation, proxyActivities, upsertSearchAttributes } from '@temporalio/workflow';
import { SA } from '../../domain/search-attributes.js';
import type { Activities } from '../../activities/index.js';
import type { PodFacts } from '../../domain/workload.js';
import { podTarget } from '../../remediation/protocol.js';
import type { ExecutorSession } from '../executor.js';
import { failureMessage } from './failures.js';
import type { Incident } from './incident.js';
import { podIsolated } from './isolation.js';

/** Beyond the policy's budget: the writes of what was read just in time, and the manifest (remediation/evidence.ts). */
export const EVIDENCE_SLACK_SECONDS = 20;

/** Keeps the evidence before the kill destroys it, only while the pod is cut off: otherwise the kill comes first. */
export async function captureEvidence(i: Incident, exec: ExecutorSession, inspected: PodFacts): Promise<void> {
  const pod = podTarget(inspected);
  const budget = i.policy.evidenceSeconds ?? 0;
  if (i.state.evidence || budget <= 0) return;
  if (!podIsolated(i)) {
    const iso = i.state.isolation;
    const why = !iso ? 'isolation is off (policy isolate: false)' : `isolation is ${iso.state} (${iso.detail})`;
    i.state.evidence = {
      location: null,
      objects: 0,
      bytes: 0,
      missing: [`everything: not captured before the kill, since the pod is not cut off the network: ${why}`],
      objectLock: 'n/a',
      manifestSha256: null,
      seconds: 0,
    };
    i.note('evidence', `skipped: the pod is not cut off the network (${why}), so the kill comes first`);
    return;
  }
  // One attempt: a worker that dies mid-capture costs the bundle, not another budget before the kill.
  const { captureEvidence: capture } = proxyActivities<Activities>({
    startToCloseTimeout: `${budget + EVIDENCE_SLACK_SECONDS} seconds`,
    heartbeatTimeout: `${Math.max(10, budget)} seconds`,
    retry: { maximumAttempts: 1 },
  });
  const a = i.state.alerts;
  try {
    const bundle = await capture.executeWithOptions(
      {
        summary: `capture evidence of pod ${pod.namespace}/${pod.name} (budget ${budget}s${exec.lambda ? `, cluster part by ${exec.lambda.functionName}` : ''})`,
      },
      [
        {
          incidentId: i.id,
          cluster: i.alert.cluster.name,
          region: i.alert.cluster.region,
          pod,
          alerts: [a.first, ...a.recent],
          decision: i.state.decision,
          policy: i.policy,
          budgetSeconds: budget,
          readCluster: i.input.executor.kind === 'direct',
          // Through the EKS executor its function reads the cluster and writes that part, under this prefix only.
          ...(exec.lambda ? { via: exec.lambda } : {}),
        },
      ],
    );
    i.state.evidence = bundle;
    // Findable from the incident's row in the Temporal UI (PodResponderEvidence).
    if (bundle.location) upsertSearchAttributes([{ key: SA.evidence, value: bundle.location }]);
    const where = bundle.location ?? 'nowhere';
    const checkpoints = bundle.checkpoints?.length
      ? `; checkpoints on the node: ${bundle.checkpoints.map((c) => `${c.container} at ${c.node}:${c.path}`).join(', ')}`
      : '';
    i.note(
      'evidence',
      `${where}: ${bundle.objects} objects, ${bundle.bytes} bytes in ${bundle.seconds}s; object lock: ${bundle.objectLock}${checkpoints}${bundle.missing.length ? `; missing: ${bundle.missing.join('; ')}` : ''}`,
    );
  } catch (err) {
    if (isCancellation(err)) throw err;
    const why = failureMessage(err);
    i.state.evidence = {
      location: null,
      objects: 0,
      bytes: 0,
      missing: [`everything: ${why}`],
      objectLock: 'n/a',
      manifestSha256: null,
      seconds: 0,
    };
    i.note('evidence', `not captured (${why}); going on with the response`);
  }
}
