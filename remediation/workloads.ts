import type { V1ObjectMeta } from '@kubernetes/client-node';
import type { WorkloadRef } from '../domain/workload.js';
import { kubeCall, mergePatch, readOrNull, type KubeClients } from './kube.js';
import { describeWorkload } from './protocol.js';

/** The parts of any suspendable workload the core reads. */
export interface WorkloadObject {
  metadata?: V1ObjectMeta;
  spec?: {
    replicas?: number;
    suspend?: boolean;
    template?: { spec?: { nodeSelector?: Record<string, string> } };
  };
}

type Ref = Pick<WorkloadRef, 'kind' | 'namespace' | 'name'>;

/** Reads a workload of a supported kind; null when it is gone. */
export function readWorkload(kube: KubeClients, w: Ref): Promise<WorkloadObject | null> {
  const p = { namespace: w.namespace, name: w.name };
  const op = `read ${describeWorkload(w)}`;
  switch (w.kind) {
    case 'Deployment':
      return readOrNull(op, () => kube.apps.readNamespacedDeployment(p));
    case 'ReplicaSet':
      return readOrNull(op, () => kube.apps.readNamespacedReplicaSet(p));
    case 'StatefulSet':
      return readOrNull(op, () => kube.apps.readNamespacedStatefulSet(p));
    case 'DaemonSet':
      return readOrNull(op, () => kube.apps.readNamespacedDaemonSet(p));
    case 'Job':
      return readOrNull(op, () => kube.batch.readNamespacedJob(p));
    case 'CronJob':
      return readOrNull(op, () => kube.batch.readNamespacedCronJob(p));
    default:
      throw new Error(`unsupported workload kind ${w.kind}`);
  }
}

/** JSON merge patch of the workload object itself (annotations, suspend flag, node selector). */
export async function patchWorkload(kube: KubeClients, w: Ref, body: object): Promise<void> {
  const p = { namespace: w.namespace, name: w.name, body };
  const op = `patch ${describeWorkload(w)}`;
  switch (w.kind) {
    case 'Deployment':
      await kubeCall(op, () => kube.apps.patchNamespacedDeployment(p, mergePatch));
      return;
    case 'ReplicaSet':
      await kubeCall(op, () => kube.apps.patchNamespacedReplicaSet(p, mergePatch));
      return;
    case 'StatefulSet':
      await kubeCall(op, () => kube.apps.patchNamespacedStatefulSet(p, mergePatch));
      return;
    case 'DaemonSet':
      await kubeCall(op, () => kube.apps.patchNamespacedDaemonSet(p, mergePatch));
      return;
    case 'Job':
      await kubeCall(op, () => kube.batch.patchNamespacedJob(p, mergePatch));
      return;
    case 'CronJob':
      await kubeCall(op, () => kube.batch.patchNamespacedCronJob(p, mergePatch));
      return;
    default:
      throw new Error(`unsupported workload kind ${w.kind}`);
  }
}

/** Sets replicas through the scale subresource, as `kubectl scale` does. */
export async function scaleWorkload(kube: KubeClients, w: Ref, replicas: number): Promise<void> {
  const p = { namespace: w.namespace, name: w.name, body: { spec: { replicas } } };
  const op = `scale ${describeWorkload(w)} to ${replicas}`;
  switch (w.kind) {
    case 'Deployment':
      await kubeCall(op, () => kube.apps.patchNamespacedDeploymentScale(p, mergePatch));
      return;
    case 'ReplicaSet':
      await kubeCall(op, () => kube.apps.patchNamespacedReplicaSetScale(p, mergePatch));
      return;
    case 'StatefulSet':
      await kubeCall(op, () => kube.apps.patchNamespacedStatefulSetScale(p, mergePatch));
      return;
    default:
      throw new Error(`${w.kind} has no scale subresource`);
  }
}

/** Jobs a CronJob started that have not finished: suspending the CronJob alone leaves them running. */
export async function activeJobsOf(kube: KubeClients, cronJob: WorkloadRef): Promise<WorkloadRef[]> {
  const jobs = await kubeCall(`list jobs in ${cronJob.namespace}`, () =>
    kube.batch.listNamespacedJob({ namespace: cronJob.namespace }),
  );
  return jobs.items
    .filter((j) => j.metadata?.ownerReferences?.some((o) => o.controller && o.uid === cronJob.uid))
    .filter((j) => !j.status?.completionTime && !j.status?.conditions?.some((c) => c.type === 'Failed' && c.status === 'True'))
    .map((j) => ({
      apiVersion: 'batch/v1',
      kind: 'Job',
      namespace: cronJob.namespace,
      name: j.metadata?.name ?? '',
      uid: j.metadata?.uid ?? '',
    }));
}
