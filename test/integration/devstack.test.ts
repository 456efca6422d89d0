/**
 * The devstack as `npm start` runs it: Kubernetes serving and Temporal first; kube-apiserver's bootstrap (default
 * roles, aggregated) behind `kubeReady` and AWS (loading the SDK, seeding moto, the slowest part) behind `awsReady`,
 * so the worker and the demo start meanwhile. A stack of its own, on free ports.
 */
import { DescribeClusterCommand, EKSClient } from '@aws-sdk/client-eks';
import { CoreV1Api, RbacAuthorizationV1Api } from '@kubernetes/client-node';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { startStack } from '../../devstack/stack.js';
import { kubeConfigFromFile } from '../../remediation/kube.js';

describe('devstack with its bootstrap and AWS in the background', () => {
  it('is usable before kube-apiserver has bootstrapped and AWS is ready; both then come, AWS seeded and wired to this kube-apiserver', async () => {
    const stateDir = mkdtempSync(path.join(tmpdir(), 'pod-responder-devstack-'));
    const stack = await startStack({
      stateDir,
      headless: true,
      aws: true,
      awsInBackground: true,
      kubeBootstrapInBackground: true,
      log: () => {},
    });
    try {
      expect(stack.aws).toBeUndefined();
      expect(stack.awsEndpoint).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
      const kc = kubeConfigFromFile(stack.kubeconfigPath);
      const core = kc.makeApiClient(CoreV1Api);
      expect((await core.readNamespace({ name: 'default' })).metadata?.name).toBe('default');
      // The admin creates what the demo needs without the bootstrap roles.
      const ns = `early-${Date.now()}`;
      await core.createNamespace({ body: { metadata: { name: ns } } });

      await stack.kubeReady;
      // The default roles exist and are aggregated, as the tests' stack has them before it returns.
      const edit = await kc.makeApiClient(RbacAuthorizationV1Api).readClusterRole({ name: 'edit' });
      expect(edit.rules?.some((r) => r.resources?.includes('deployments') && r.verbs.includes('patch'))).toBe(true);

      const aws = await stack.awsReady!;
      expect(aws.endpoint).toBe(stack.awsEndpoint);
      const eks = new EKSClient({
        endpoint: aws.endpoint,
        region: aws.region,
        credentials: { accessKeyId: aws.accessKeyId, secretAccessKey: aws.secretAccessKey },
      });
      try {
        // The front learnt this kube-apiserver's coordinates once both were up.
        const { cluster } = await eks.send(new DescribeClusterCommand({ name: aws.clusters.local }));
        expect(cluster?.endpoint).toBe(stack.kubeApiUrl);
      } finally {
        eks.destroy();
      }
    } finally {
      await stack.stop();
      rmSync(stateDir, { recursive: true, force: true });
    }
  }, 180_000);
});
