/**
 * The devstack as `npm start` runs it: Kubernetes and Temporal first, AWS (loading the SDK, seeding moto, the
 * slowest part) behind `awsReady`, so the worker and the demo start meanwhile. A stack of its own, on free ports.
 */
import { DescribeClusterCommand, EKSClient } from '@aws-sdk/client-eks';
import { CoreV1Api } from '@kubernetes/client-node';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { startStack } from '../../devstack/stack.js';
import { kubeConfigFromFile } from '../../remediation/kube.js';

describe('devstack with AWS in the background', () => {
  it('is usable before AWS is ready; AWS then comes seeded and wired to this kube-apiserver', async () => {
    const stateDir = mkdtempSync(path.join(tmpdir(), 'pod-responder-devstack-'));
    const stack = await startStack({ stateDir, headless: true, aws: true, awsInBackground: true, log: () => {} });
    try {
      expect(stack.aws).toBeUndefined();
      expect(stack.awsEndpoint).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
      const core = kubeConfigFromFile(stack.kubeconfigPath).makeApiClient(CoreV1Api);
      expect((await core.readNamespace({ name: 'default' })).metadata?.name).toBe('default');

      const aws = await stack.awsReady!;
      expect(aws.endpoint).toBe(stack.awsEndpoint);
      const eks = new EKSClient({ endpoint: aws.endpoint, region: aws.region, credentials: { accessKeyId: aws.accessKeyId, secretAccessKey: aws.secretAccessKey } });
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
