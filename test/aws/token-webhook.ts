/**
 * EKS authentication for the devstack's kube-apiserver: a TokenReview (authentication.k8s.io/v1)
 * webhook that accepts aws-iam-authenticator tokens (`k8s-aws-v1.<base64url presigned STS URL>`),
 * verifies them (sts-presigned.ts) for the cluster the apiserver stands for, and authenticates the
 * role behind the access key only if that role has an access entry on the cluster.
 */
import type { CredentialsRegistry } from './credentials.js';
import type { EksAccessEntries } from './eks-access-entries.js';
import { verifyPresignedCallerIdentity } from './sts-presigned.js';

const TOKEN_PREFIX = 'k8s-aws-v1.';

interface TokenReviewStatus {
  authenticated: boolean;
  user?: { username: string; uid: string; groups: string[]; extra: Record<string, string[]> };
  error?: string;
}

export function reviewToken(
  body: unknown,
  deps: {
    clusterName: string;
    credentials: CredentialsRegistry;
    entries: EksAccessEntries;
    log: (line: string) => void;
  },
): unknown {
  const token = (body as { spec?: { token?: unknown } })?.spec?.token;
  const status = authenticate(typeof token === 'string' ? token : '', deps);
  return { apiVersion: 'authentication.k8s.io/v1', kind: 'TokenReview', status };
}

function authenticate(token: string, deps: Parameters<typeof reviewToken>[1]): TokenReviewStatus {
  // Not an EKS token (e.g. a service account token that its own authenticator refused): not ours to log.
  if (!token.startsWith(TOKEN_PREFIX)) return { authenticated: false };
  const refuse = (reason: string): TokenReviewStatus => {
    deps.log(`[aws-front] token webhook: refused (${deps.clusterName}): ${reason}`);
    return { authenticated: false, error: reason };
  };
  const url = Buffer.from(token.slice(TOKEN_PREFIX.length), 'base64url').toString('utf8');
  const check = verifyPresignedCallerIdentity(url, deps.clusterName, (key) => deps.credentials.get(key));
  if (!check.ok) return refuse(check.reason);
  const creds = deps.credentials.get(check.accessKeyId)!;
  const entry = deps.entries.lookup(deps.clusterName, creds.roleArn);
  if (!entry)
    return refuse(
      `no access entry for ${creds.roleArn} (access key ${check.accessKeyId}) on cluster ${deps.clusterName}`,
    );
  if (Date.now() < entry.effectiveAt)
    return refuse(`the access entry for ${creds.roleArn} is not in effect yet (EKS propagation)`);
  return {
    authenticated: true,
    user: {
      username: entry.username,
      uid: `aws-iam-authenticator:${creds.roleArn.split(':')[4]}:${check.accessKeyId}`,
      groups: entry.kubernetesGroups,
      extra: {
        accessKeyId: [check.accessKeyId],
        arn: [creds.roleArn],
        canonicalArn: [creds.roleArn],
      },
    },
  };
}
