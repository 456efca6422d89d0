/**
 * Cutting the credentials: a miner that took the pod's cloud credentials keeps using them after the pod is gone
 * (an IRSA or EKS Pod Identity session stays valid for hours). When policy `revokeCredentials` allows it, right
 * after the kill (and, when suspending, after the suspension, so no replacement pod waits on IAM), the IAM role
 * its ServiceAccount maps to gets an inline policy denying every session issued before T (activities/credentials.ts,
 * domain/revocation.ts). T is the kill's: the DELETE answered plus its grace period, so a session the dying pod
 * obtains while its kubelet stops it is denied too. Decided before the call, so a retried activity writes the same
 * policy. Only roles tagged pod-responder.io/revocable=true are touched; a failure is noted, never fatal.
 * Released by `restore`; otherwise left in place (spent after 12 h, pruned by the next revocation on the role).
 */
import { isCancellation, proxyActivities, workflowInfo } from '@temporalio/workflow';
import type { Activities } from '../../activities/index.js';
import {
  parseRoleArn,
  REVOCABLE_TAG,
  revocationPolicyName,
  revocationTime,
  undoRevocationCommand,
} from '../../domain/revocation.js';
import type { PodFacts } from '../../domain/workload.js';
import type { CredentialsStatus } from '../messages.js';
import { failureMessage } from './failures.js';
import type { Incident } from './incident.js';

const aws = proxyActivities<Activities>({
  startToCloseTimeout: '20 seconds',
  // After the kill, but the verification (and a suspension's verification) waits for it: bounded, whatever AWS does.
  scheduleToCloseTimeout: '1 minute',
  retry: { maximumAttempts: 3, initialInterval: '1 second' },
});

interface RoleFound {
  roleArn: string | null;
  via: 'irsa' | 'pod-identity' | null;
  detail: string;
  /** No role found, but only because something could not be read: `failed`, not `no-role`. */
  unknown?: boolean;
}

export async function cutCredentials(i: Incident, pod: PodFacts): Promise<void> {
  if (i.state.credentials || i.policy.revokeCredentials !== true) return;
  const notBefore = revocationTime(i.state.killedAt ? Date.parse(i.state.killedAt) : Date.now());
  const at = () => new Date().toISOString();
  const base: CredentialsStatus = {
    state: 'failed',
    serviceAccount: pod.serviceAccount ? `${pod.namespace}/${pod.serviceAccount.name}` : null,
    role: null,
    via: null,
    policyName: null,
    notBefore: null,
    at: at(),
    detail: '',
    undo: null,
  };
  let attempt = base;
  try {
    const found = await roleOfPod(i, pod);
    if (!found.roleArn) {
      record(i, { ...base, state: found.unknown ? 'failed' : 'no-role', at: at(), detail: found.detail });
      return;
    }
    const policyName = revocationPolicyName(i.id, workflowInfo().firstExecutionRunId);
    const roleName = parseRoleArn(found.roleArn)?.name ?? found.roleArn;
    // Should the call fail ambiguously (a timeout), the policy may be in place after all: the command removes it.
    attempt = {
      ...base,
      role: found.roleArn,
      via: found.via,
      policyName,
      notBefore,
      detail: found.detail,
      undo: undoRevocationCommand(roleName, policyName),
    };
    const r = await aws.revokeRoleSessions.executeWithOptions(
      {
        summary: `revoke IAM role ${roleName}'s sessions issued before ${notBefore} (${found.via}, service account ${base.serviceAccount})`,
      },
      [{ incidentId: i.id, roleArn: found.roleArn, policyName, notBefore }],
    );
    record(i, {
      ...attempt,
      state: r.state,
      at: at(),
      detail: `${found.detail}; ${r.detail}`,
      undo: r.state === 'revoked' ? attempt.undo : null,
    });
  } catch (err) {
    if (isCancellation(err)) throw err;
    // Revocation that fails must not fail the response: say so, and go on.
    const why = `not revoked (${failureMessage(err)}); going on`;
    record(i, { ...attempt, state: 'failed', at: at(), detail: attempt.detail ? `${attempt.detail}; ${why}` : why });
  }
}

/** The IAM role: the ServiceAccount's IRSA annotation first, else its EKS Pod Identity association. */
async function roleOfPod(i: Incident, pod: PodFacts): Promise<RoleFound> {
  const sa = pod.serviceAccount;
  if (!sa)
    return {
      roleArn: null,
      via: null,
      detail: "the pod's inspection did not report its service account",
      unknown: true,
    };
  const name = `${pod.namespace}/${sa.name}`;
  if (sa.roleArn)
    return {
      roleArn: sa.roleArn,
      via: 'irsa',
      detail: `service account ${name} is annotated with IRSA role ${sa.roleArn}`,
    };
  const irsa = sa.unreadable
    ? `service account ${name} could not be read (${sa.unreadable}), so its IRSA role is unknown`
    : `service account ${name} has no IRSA annotation`;
  const region = i.alert.cluster.region;
  // The Pod Identity API is regional and needs the EKS cluster: without a region, IRSA was the only way.
  if (!region)
    return {
      roleArn: null,
      via: null,
      detail: `${irsa}; the alert names no region, so no EKS Pod Identity association was looked up`,
      unknown: !!sa.unreadable,
    };
  const found = await aws.findPodIdentityRole.executeWithOptions(
    { summary: `find the EKS Pod Identity role of service account ${name} in ${i.alert.cluster.name}` },
    [{ cluster: i.alert.cluster.name, region, namespace: pod.namespace, serviceAccount: sa.name }],
  );
  if (!found.roleArn) return { roleArn: null, via: null, detail: `${irsa}; ${found.detail}`, unknown: !!sa.unreadable };
  const chained = found.targetRoleArn
    ? ` (it chains to ${found.targetRoleArn}, in its account: revoke that one by hand if needed)`
    : '';
  return { roleArn: found.roleArn, via: 'pod-identity', detail: `${irsa}; ${found.detail}${chained}` };
}

function record(i: Incident, c: CredentialsStatus): void {
  i.state.credentials = c;
  i.note('revoke-credentials', `${c.state}: ${c.detail}`);
}

/**
 * Removes the revocation, if in place (restore). Never throws but for cancellation: what happened is in
 * `status.credentials` and the timeline; `ok` says whether the revocation is gone.
 */
export async function releaseCredentials(i: Incident, why: string): Promise<{ ok: boolean; message: string } | null> {
  const c = i.state.credentials;
  if (c?.state !== 'revoked' || !c.role || !c.policyName || !c.notBefore) return null;
  const roleName = parseRoleArn(c.role)?.name ?? c.role;
  try {
    const r = await aws.releaseRoleRevocation.executeWithOptions(
      { summary: `remove revocation policy ${c.policyName} from IAM role ${roleName} (${why})` },
      [{ roleArn: c.role, policyName: c.policyName, notBefore: c.notBefore }],
    );
    const released = r.state === 'released';
    i.state.credentials = {
      ...c,
      state: released ? 'released' : 'revoked',
      at: new Date().toISOString(),
      detail: released
        ? `${why}: ${r.detail}`
        : `${why}, but ${r.detail}; if it is still ours, remove it by hand: ${c.undo}`,
      undo: released ? null : c.undo,
    };
    i.note('release-credentials', `${r.state}: ${why}: ${r.detail}`);
    return { ok: released, message: r.detail };
  } catch (err) {
    if (isCancellation(err)) throw err;
    const error = failureMessage(err);
    i.state.credentials = {
      ...c,
      at: new Date().toISOString(),
      detail: `${why}, but removing the revocation failed (${error}); it is still in place: ${c.undo}`,
    };
    i.note('release-credentials', `failed: ${error}`);
    return { ok: false, message: error };
  }
}

/** The dry run's line, when the policy would revoke: which role it would look for, and on which condition. */
export function wouldRevokeCredentials(i: Incident, pod: PodFacts): string | null {
  if (i.policy.revokeCredentials !== true) return null;
  const sa = pod.serviceAccount;
  const name = `${pod.namespace}/${sa?.name ?? '(unknown)'}`;
  const policy = revocationPolicyName(i.id, workflowInfo().firstExecutionRunId);
  const deny = `inline policy ${policy} denying every session issued before the kill, if the role is tagged ${REVOCABLE_TAG.key}=${REVOCABLE_TAG.value}`;
  if (sa?.roleArn) return `would-revoke-credentials of IAM role ${sa.roleArn} (IRSA, service account ${name}): ${deny}`;
  const irsa = sa?.unreadable
    ? `service account ${name} could not be read (${sa.unreadable})`
    : `service account ${name} has no IRSA annotation`;
  if (!i.alert.cluster.region)
    return `would-revoke-credentials: none to revoke (${irsa}, and the alert names no region to look up EKS Pod Identity)`;
  return `would-revoke-credentials of the IAM role EKS Pod Identity maps service account ${name} to, if an association does (${irsa}): ${deny}`;
}
