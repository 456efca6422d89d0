/**
 * Dry run (policy `mode: dry-run`): the incident validates and decides as it would, then records what it
 * would have done, in order, and ends as `dry-run` having changed nothing. What a user runs first, before
 * letting a responder act on production. Reads go through the direct executor (the worker's own access); the
 * EKS executor would have to deploy a function to read the pod, so a dry run there stops before the pod is read.
 */
import type { Decision } from '../../domain/decide.js';
import { describeWorkload } from '../../remediation/protocol.js';
import type { PodFacts, WorkloadRef } from '../../domain/workload.js';
import { wouldRevokeCredentials } from './credentials.js';
import type { Incident } from './incident.js';
import { done, type Phase } from './state.js';

export const isDryRun = (i: Incident): boolean => i.policy.mode === 'dry-run';

/** The phase that ends a dry run, once the decision is known. */
export function wouldAct(i: Incident, p: PodFacts, decision: Exclude<Decision, { action: 'dismiss' }>): Phase {
  const pod = `pod ${p.namespace}/${p.name} (uid ${p.uid})`;
  const would: string[] = [];
  const action = decision.action === 'await-approval' ? decision.proposed : decision.action;
  if (decision.action === 'await-approval')
    would.push(
      `would-propose ${action} for approval (policy requireApprovalFor) and wait up to ${i.policy.approvalTimeoutSeconds}s; then, if approved:`,
    );
  if (i.policy.isolate !== false)
    would.push(`would-isolate ${pod}: label pod-responder.io/isolated and a deny-all NetworkPolicy`);
  would.push(`would-terminate-pod ${pod}, grace period ${i.policy.terminateGracePeriodSeconds}s`);
  const workload =
    decision.action === 'suspend-workload'
      ? decision.workload
      : decision.action === 'await-approval'
        ? decision.workload
        : undefined;
  if (action === 'suspend-workload' && workload)
    would.push(
      `would-suspend-workload ${describeWorkload(workload)}: ${meansOf(workload)}, held ${i.policy.holdSuspensionSeconds}s for restore`,
    );
  // After the kill (and the suspension), as the live incident does: T is the kill's.
  const revoke = wouldRevokeCredentials(i, p);
  if (revoke) would.push(revoke);
  return finish(i, would, decision.reason);
}

/** A dry run on the EKS executor: reading the pod would deploy a function, so it stops here. */
export function wouldDeploy(i: Incident): Phase {
  const { namespace, podName, cluster } = i.alert;
  return finish(
    i,
    [
      `would-deploy the EKS executor in ${cluster.name} (IAM role, access entry, function) to read pod ${namespace}/${podName}, then decide and act; nothing deployed in a dry run`,
    ],
    'the EKS executor reads the cluster only through the function it deploys',
  );
}

function finish(i: Incident, would: string[], reason: string): Phase {
  i.state.wouldHaveDone = would;
  for (const w of would) i.note('dry-run', w);
  return done('dry-run', `dry run: nothing was changed (${reason}); the incident would have: ${would.join('; ')}`);
}

function meansOf(w: WorkloadRef): string {
  switch (w.kind) {
    case 'DaemonSet':
      return 'nodeSelector pod-responder.io/suspended=true (matches no node)';
    case 'Job':
      return 'spec.suspend: true';
    case 'CronJob':
      return 'spec.suspend: true, and its active Jobs suspended';
    default:
      return 'replicas to 0 through the scale subresource';
  }
}
