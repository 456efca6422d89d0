/** What the remediation core can see of a pod and its controllers; plain JSON so it crosses Lambda and history. */

export const SUSPENDABLE_KINDS = ['Deployment', 'ReplicaSet', 'StatefulSet', 'DaemonSet', 'Job', 'CronJob'] as const;
export type SuspendableKind = (typeof SUSPENDABLE_KINDS)[number];

export interface OwnerRef {
  apiVersion: string;
  kind: string;
  name: string;
  uid: string;
  /** False when the chain stops here because we do not know how to follow or suspend this kind (a CRD). */
  supported: boolean;
}

export interface ContainerFacts {
  name: string;
  image: string;
  /** Current and previous (restarted) container IDs, with runtime scheme. */
  containerIds: string[];
}

export interface PodFacts {
  namespace: string;
  name: string;
  uid: string;
  labels: Record<string, string>;
  /** The node the pod was scheduled to: its kubelet is what stops the containers. */
  nodeName?: string;
  containers: ContainerFacts[];
  /** Controller chain from the pod upwards: ReplicaSet then Deployment, Job then CronJob, ... */
  owners: OwnerRef[];
  /** The pod's ServiceAccount and the IAM role its IRSA annotation names (absent in facts read before it was). */
  serviceAccount?: ServiceAccountFacts;
}

export interface ServiceAccountFacts {
  name: string;
  /** `eks.amazonaws.com/role-arn` on the ServiceAccount (IRSA). */
  roleArn?: string;
  /** Why the ServiceAccount could not be read (forbidden, ...): its IRSA role is then unknown. Absent: read, or absent. */
  unreadable?: string;
}

export interface WorkloadRef {
  apiVersion: string;
  kind: string;
  namespace: string;
  name: string;
  uid: string;
}

export function isSuspendable(kind: string): kind is SuspendableKind {
  return (SUSPENDABLE_KINDS as readonly string[]).includes(kind);
}

/** The workload to suspend is the top of the chain: a Deployment, not its ReplicaSet; a CronJob, not its Job. */
export function topWorkload(facts: Pick<PodFacts, 'namespace' | 'owners'>): WorkloadRef | null {
  const top = facts.owners[facts.owners.length - 1];
  if (!top) return null;
  return { apiVersion: top.apiVersion, kind: top.kind, namespace: facts.namespace, name: top.name, uid: top.uid };
}
