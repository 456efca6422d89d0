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
type Params = { namespace: string; name: string };
type WithBody = Params & { body: object; fieldManager?: string };

/** Our name in the objects' managed fields: a hold check tells our writes from whoever undid them. */
export const FIELD_MANAGER = 'pod-responder';

/** The typed client calls for each kind the core suspends: read, merge-patch, and scale where it has one. */
interface KindApi {
  read: (kube: KubeClients, p: Params) => Promise<WorkloadObject>;
  patch: (kube: KubeClients, p: WithBody) => Promise<unknown>;
  scale?: (kube: KubeClients, p: WithBody) => Promise<unknown>;
}

const KINDS: Record<string, KindApi> = {
  Deployment: {
    read: (k, p) => k.apps.readNamespacedDeployment(p),
    patch: (k, p) => k.apps.patchNamespacedDeployment(p, mergePatch),
    scale: (k, p) => k.apps.patchNamespacedDeploymentScale(p, mergePatch),
  },
  ReplicaSet: {
    read: (k, p) => k.apps.readNamespacedReplicaSet(p),
    patch: (k, p) => k.apps.patchNamespacedReplicaSet(p, mergePatch),
    scale: (k, p) => k.apps.patchNamespacedReplicaSetScale(p, mergePatch),
  },
  StatefulSet: {
    read: (k, p) => k.apps.readNamespacedStatefulSet(p),
    patch: (k, p) => k.apps.patchNamespacedStatefulSet(p, mergePatch),
    scale: (k, p) => k.apps.patchNamespacedStatefulSetScale(p, mergePatch),
  },
  DaemonSet: {
    read: (k, p) => k.apps.readNamespacedDaemonSet(p),
    patch: (k, p) => k.apps.patchNamespacedDaemonSet(p, mergePatch),
  },
  Job: {
    read: (k, p) => k.batch.readNamespacedJob(p),
    patch: (k, p) => k.batch.patchNamespacedJob(p, mergePatch),
  },
  CronJob: {
    read: (k, p) => k.batch.readNamespacedCronJob(p),
    patch: (k, p) => k.batch.patchNamespacedCronJob(p, mergePatch),
  },
};

function apiFor(kind: string): KindApi {
  const api = KINDS[kind];
  if (!api) throw new Error(`unsupported workload kind ${kind}`);
  return api;
}

/** Reads a workload of a supported kind; null when it is gone. */
export function readWorkload(kube: KubeClients, w: Ref): Promise<WorkloadObject | null> {
  const api = apiFor(w.kind);
  return readOrNull(`read ${describeWorkload(w)}`, () => api.read(kube, { namespace: w.namespace, name: w.name }));
}

/** JSON merge patch of the workload object itself (annotations, suspend flag, node selector). */
export async function patchWorkload(kube: KubeClients, w: Ref, body: object): Promise<void> {
  const api = apiFor(w.kind);
  await kubeCall(`patch ${describeWorkload(w)}`, () =>
    api.patch(kube, { namespace: w.namespace, name: w.name, body, fieldManager: FIELD_MANAGER }),
  );
}

/** Sets replicas through the scale subresource, as `kubectl scale` does. */
export async function scaleWorkload(kube: KubeClients, w: Ref, replicas: number): Promise<void> {
  const scale = apiFor(w.kind).scale;
  if (!scale) throw new Error(`${w.kind} has no scale subresource`);
  await kubeCall(`scale ${describeWorkload(w)} to ${replicas}`, () =>
    scale(kube, { namespace: w.namespace, name: w.name, body: { spec: { replicas } }, fieldManager: FIELD_MANAGER }),
  );
}

/** Jobs a CronJob started that have not finished: suspending the CronJob alone leaves them running. */
export async function activeJobsOf(kube: KubeClients, cronJob: WorkloadRef): Promise<WorkloadRef[]> {
  const jobs = await kubeCall(`list jobs in ${cronJob.namespace}`, () =>
    kube.batch.listNamespacedJob({ namespace: cronJob.namespace }),
  );
  return jobs.items
    .filter((j) => j.metadata?.ownerReferences?.some((o) => o.controller && o.uid === cronJob.uid))
    .filter(
      (j) =>
        !j.status?.completionTime && !j.status?.conditions?.some((c) => c.type === 'Failed' && c.status === 'True'),
    )
    .map((j) => ({
      apiVersion: 'batch/v1',
      kind: 'Job',
      namespace: cronJob.namespace,
      name: j.metadata?.name ?? '',
      uid: j.metadata?.uid ?? '',
    }));
}
