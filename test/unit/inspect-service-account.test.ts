/** The pod's ServiceAccount in its inspection: the IRSA role when annotated, and never a broken inspection. */
import type { V1Pod, V1ServiceAccount } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { inspectPod } from '../../remediation/inspect.js';
import type { KubeClients } from '../../remediation/kube.js';

const pod = (serviceAccountName?: string): V1Pod => ({
  metadata: { name: 'miner', namespace: 'shop', uid: 'u1' },
  spec: { ...(serviceAccountName ? { serviceAccountName } : {}), containers: [{ name: 'app', image: 'x' }] },
  status: { phase: 'Running' },
});

/** A cluster holding the pod, and answering the ServiceAccount read as `sa` says. */
function kubeWith(p: V1Pod, sa: () => Promise<V1ServiceAccount>): { kube: KubeClients; asked: string[] } {
  const asked: string[] = [];
  const core = {
    readNamespacedPod: async () => p,
    readNamespacedServiceAccount: async ({ namespace, name }: { namespace: string; name: string }) => {
      asked.push(`${namespace}/${name}`);
      return sa();
    },
  };
  return { kube: { core } as unknown as KubeClients, asked };
}
const failing = (code: number, reason: string, message: string) => () =>
  Promise.reject(Object.assign(new Error(message), { code, body: JSON.stringify({ reason, message }) }));

describe("inspection of the pod's ServiceAccount", () => {
  it('reports the IRSA role of the ServiceAccount the pod names', async () => {
    const { kube, asked } = kubeWith(pod('miner-sa'), async () => ({
      metadata: {
        name: 'miner-sa',
        annotations: { 'eks.amazonaws.com/role-arn': 'arn:aws:iam::123456789012:role/app' },
      },
    }));
    expect((await inspectPod(kube, 'shop', 'miner'))!.serviceAccount).toEqual({
      name: 'miner-sa',
      roleArn: 'arn:aws:iam::123456789012:role/app',
    });
    expect(asked).toEqual(['shop/miner-sa']);
  });

  it('a pod naming none uses `default`; a ServiceAccount without the annotation has no role', async () => {
    const { kube, asked } = kubeWith(pod(), async () => ({ metadata: { name: 'default' } }));
    expect((await inspectPod(kube, 'shop', 'miner'))!.serviceAccount).toEqual({ name: 'default' });
    expect(asked).toEqual(['shop/default']);
  });

  it('a ServiceAccount that is gone is no role, and the inspection goes on', async () => {
    const { kube } = kubeWith(pod('gone'), failing(404, 'NotFound', 'serviceaccounts "gone" not found'));
    const facts = await inspectPod(kube, 'shop', 'miner');
    expect(facts).toMatchObject({ name: 'miner', uid: 'u1', serviceAccount: { name: 'gone' } });
    expect(facts!.serviceAccount!.unreadable).toBeUndefined();
  });

  it('a forbidden read (no RBAC get on serviceaccounts) is reported, not raised', async () => {
    const { kube } = kubeWith(pod('miner-sa'), failing(403, 'Forbidden', 'serviceaccounts "miner-sa" is forbidden'));
    const facts = await inspectPod(kube, 'shop', 'miner');
    expect(facts).toMatchObject({ name: 'miner', uid: 'u1', containers: [{ name: 'app' }] });
    expect(facts!.serviceAccount).toEqual({
      name: 'miner-sa',
      unreadable: 'read serviceaccount shop/miner-sa: HTTP 403 Forbidden: serviceaccounts "miner-sa" is forbidden',
    });
  });
});
