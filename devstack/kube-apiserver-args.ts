/**
 * The stack's kube-apiserver: a static admin token, service-account signing keys (so TokenRequest works), RBAC,
 * and its own CA-signed serving certificate for 127.0.0.1; with the AWS front, EKS-style token authentication.
 */
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';

export interface KubeApiserverSetup {
  args: string[];
  adminToken: string;
  /** Where the apiserver writes its serving certificate (apiserver.crt), which clients trust. */
  certDir: string;
}

/** Writes the credentials into `kubeDir` and returns the command line. */
export function prepareKubeApiserver(
  kubeDir: string,
  o: {
    port: number;
    etcdUrl: string;
    authWebhookConfig?: string;
    /** A real node: its parts' tokens, flags, and the address pods reach the apiserver on (through a relay). */
    node?: { tokenLines: string[]; args: string[]; advertiseAddress: string };
  },
): KubeApiserverSetup {
  const adminToken = randomBytes(24).toString('hex');
  const tokenFile = path.join(kubeDir, 'tokens.csv');
  const tokenLines = [`${adminToken},devstack-admin,devstack-admin,"system:masters"`, ...(o.node?.tokenLines ?? [])];
  fs.writeFileSync(tokenFile, `${tokenLines.join('\n')}\n`, { mode: 0o600 });
  const sa = generateKeyPairSync('ec', {
    namedCurve: 'prime256v1',
    publicKeyEncoding: { type: 'spki', format: 'pem' },
    privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
  });
  fs.writeFileSync(path.join(kubeDir, 'sa.pub'), sa.publicKey);
  fs.writeFileSync(path.join(kubeDir, 'sa.key'), sa.privateKey, { mode: 0o600 });

  const certDir = path.join(kubeDir, 'certs');
  const args = [
    `--etcd-servers=${o.etcdUrl}`,
    '--bind-address=127.0.0.1',
    // With a real node, the address pods reach it on (devstack/node-relay.ts): its self-made serving certificate
    // names the advertise address, and the bind address besides (so 127.0.0.1 still verifies).
    `--advertise-address=${o.node?.advertiseAddress ?? '127.0.0.1'}`,
    `--secure-port=${o.port}`,
    // No --tls-cert-file: the apiserver writes a CA-signed cert for 127.0.0.1 here, which we trust.
    `--cert-dir=${certDir}`,
    `--token-auth-file=${tokenFile}`,
    // With a real node, the Node authorizer limits its kubelet to its own node's objects.
    o.node ? '--authorization-mode=Node,RBAC' : '--authorization-mode=RBAC',
    `--service-account-issuer=https://kubernetes.default.svc`,
    `--service-account-key-file=${path.join(kubeDir, 'sa.pub')}`,
    `--service-account-signing-key-file=${path.join(kubeDir, 'sa.key')}`,
    '--service-cluster-ip-range=10.96.0.0/16',
    // Without a node no token controller runs, so the ServiceAccount plugin would reject every pod. With one, the
    // controller manager makes each namespace's default account, and the plugin mounts pods' tokens, as in any cluster.
    ...(o.node ? [] : ['--disable-admission-plugins=ServiceAccount']),
    ...(o.node?.args ?? []),
    // Malicious pods are often privileged; tests must be able to create them.
    '--allow-privileged=true',
    // The default 'lease' reconciler refuses a loopback endpoint for the kubernetes service.
    '--endpoint-reconciler-type=none',
    // etcd 3.4 has no watch progress requests, so the watch cache never learns the current
    // revision and every watch fails with "Too large resource version": read etcd directly.
    '--watch-cache=false',
    '--profiling=false',
    // EKS authentication: aws-iam-authenticator tokens, checked by the AWS front. No cache, so a
    // deleted access entry stops authenticating at once (the apiserver still caches successes 10s).
    ...(o.authWebhookConfig
      ? [
          `--authentication-token-webhook-config-file=${o.authWebhookConfig}`,
          '--authentication-token-webhook-version=v1',
          '--authentication-token-webhook-cache-ttl=0s',
        ]
      : []),
  ];
  return { args, adminToken, certDir };
}
