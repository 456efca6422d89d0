/**
 * Builds real objects on the local kube-apiserver, for tests and the `dev` demo. There is no controller
 * manager or kubelet, so the owner chain (Deployment -> ReplicaSet -> Pod) and container statuses are written here.
 */
import {
  AppsV1Api,
  AuthorizationV1Api,
  CoordinationV1Api,
  BatchV1Api,
  CoreV1Api,
  NetworkingV1Api,
  RbacAuthorizationV1Api,
  type V1OwnerReference,
  type V1Pod,
} from '@kubernetes/client-node';
import { randomBytes, randomUUID } from 'node:crypto';
import type { PodAlert } from '../domain/alert.js';
import { kubeConfigFromFile } from '../remediation/kube.js';

export function fixtureKube(kubeconfigPath: string) {
  const kc = kubeConfigFromFile(kubeconfigPath);
  return {
    core: kc.makeApiClient(CoreV1Api),
    apps: kc.makeApiClient(AppsV1Api),
    batch: kc.makeApiClient(BatchV1Api),
    networking: kc.makeApiClient(NetworkingV1Api),
    rbac: kc.makeApiClient(RbacAuthorizationV1Api),
    authz: kc.makeApiClient(AuthorizationV1Api),
    coordination: kc.makeApiClient(CoordinationV1Api),
  };
}
export type TestKube = ReturnType<typeof fixtureKube>;

export async function createNamespace(kube: TestKube, prefix: string): Promise<string> {
  const name = `${prefix}-${randomBytes(3).toString('hex')}`;
  await kube.core.createNamespace({ body: { metadata: { name } } });
  return name;
}

const template = (app: string) => ({
  metadata: { labels: { app } },
  spec: { containers: [{ name: 'app', image: 'registry.example/app:1' }] },
});
const selector = (app: string) => ({ matchLabels: { app } });

const controllerRef = (
  kind: string,
  apiVersion: string,
  meta: { name?: string; uid?: string } | undefined,
): V1OwnerReference => ({
  apiVersion,
  kind,
  name: meta!.name!,
  uid: meta!.uid!,
  controller: true,
  blockOwnerDeletion: true,
});

export interface Workload {
  kind: string;
  name: string;
  uid: string;
  /** The pod the alert is about. */
  pod: V1Pod & { containerId: string };
}

/** Creates a running-looking pod (container status with an ID) owned by `owner`, bound to `nodeName` if given. */
export async function createPod(
  kube: TestKube,
  namespace: string,
  name: string,
  owner?: V1OwnerReference,
  labels: Record<string, string> = {},
  nodeName?: string,
) {
  const pod = await kube.core.createNamespacedPod({
    namespace,
    body: {
      metadata: { name, labels: { app: name, ...labels }, ...(owner ? { ownerReferences: [owner] } : {}) },
      spec: { containers: [{ name: 'app', image: 'registry.example/app:1' }], ...(nodeName ? { nodeName } : {}) },
    },
  });
  return markRunning(kube, pod);
}

/** Gives a created pod the status a running container has (an ID the alert can name), as a kubelet would. */
export async function markRunning(kube: TestKube, pod: V1Pod): Promise<V1Pod & { containerId: string }> {
  const containerId = randomBytes(32).toString('hex');
  pod.status = {
    phase: 'Running',
    containerStatuses: [
      {
        name: 'app',
        image: 'registry.example/app:1',
        imageID: '',
        ready: true,
        restartCount: 0,
        containerID: `containerd://${containerId}`,
        state: { running: {} },
      },
    ],
  };
  const { namespace, name } = pod.metadata!;
  const updated = await kube.core.replaceNamespacedPodStatus({ namespace: namespace!, name: name!, body: pod });
  return Object.assign(updated, { containerId });
}

export async function createWorkload(kube: TestKube, namespace: string, kind: string): Promise<Workload> {
  const app = kind.toLowerCase();
  // 4 random bytes: with 2, a test creating 100 pods in one namespace collided one run in 13 (409 AlreadyExists).
  const podName = `${app}-pod-${randomBytes(4).toString('hex')}`;
  switch (kind) {
    case 'Pod': {
      const pod = await createPod(kube, namespace, podName);
      return { kind, name: podName, uid: pod.metadata!.uid!, pod };
    }
    case 'Deployment': {
      const d = await kube.apps.createNamespacedDeployment({
        namespace,
        body: { metadata: { name: app }, spec: { replicas: 3, selector: selector(app), template: template(app) } },
      });
      const rs = await kube.apps.createNamespacedReplicaSet({
        namespace,
        body: {
          metadata: { name: `${app}-5d8f`, ownerReferences: [controllerRef('Deployment', 'apps/v1', d.metadata)] },
          spec: { replicas: 3, selector: selector(app), template: template(app) },
        },
      });
      const pod = await createPod(kube, namespace, podName, controllerRef('ReplicaSet', 'apps/v1', rs.metadata));
      return { kind, name: app, uid: d.metadata!.uid!, pod };
    }
    case 'ReplicaSet': {
      const rs = await kube.apps.createNamespacedReplicaSet({
        namespace,
        body: { metadata: { name: app }, spec: { replicas: 2, selector: selector(app), template: template(app) } },
      });
      const pod = await createPod(kube, namespace, podName, controllerRef('ReplicaSet', 'apps/v1', rs.metadata));
      return { kind, name: app, uid: rs.metadata!.uid!, pod };
    }
    case 'StatefulSet': {
      const s = await kube.apps.createNamespacedStatefulSet({
        namespace,
        body: {
          metadata: { name: app },
          spec: { replicas: 2, serviceName: app, selector: selector(app), template: template(app) },
        },
      });
      const pod = await createPod(kube, namespace, `${app}-0`, controllerRef('StatefulSet', 'apps/v1', s.metadata));
      return { kind, name: app, uid: s.metadata!.uid!, pod };
    }
    case 'DaemonSet': {
      const tpl = template(app);
      const ds = await kube.apps.createNamespacedDaemonSet({
        namespace,
        body: {
          metadata: { name: app },
          spec: {
            selector: selector(app),
            template: { ...tpl, spec: { ...tpl.spec, nodeSelector: { 'kubernetes.io/os': 'linux' } } },
          },
        },
      });
      const pod = await createPod(kube, namespace, podName, controllerRef('DaemonSet', 'apps/v1', ds.metadata));
      return { kind, name: app, uid: ds.metadata!.uid!, pod };
    }
    case 'Job': {
      const job = await kube.batch.createNamespacedJob({ namespace, body: jobBody(app) });
      const pod = await createPod(kube, namespace, podName, controllerRef('Job', 'batch/v1', job.metadata));
      return { kind, name: app, uid: job.metadata!.uid!, pod };
    }
    case 'CronJob': {
      const cj = await kube.batch.createNamespacedCronJob({
        namespace,
        body: { metadata: { name: app }, spec: { schedule: '*/5 * * * *', jobTemplate: { spec: jobBody(app).spec } } },
      });
      const job = await kube.batch.createNamespacedJob({
        namespace,
        body: {
          ...jobBody(`${app}-29001`),
          metadata: { name: `${app}-29001`, ownerReferences: [controllerRef('CronJob', 'batch/v1', cj.metadata)] },
        },
      });
      const pod = await createPod(kube, namespace, podName, controllerRef('Job', 'batch/v1', job.metadata));
      return { kind, name: app, uid: cj.metadata!.uid!, pod };
    }
    case 'Rollout': {
      // A CRD-managed ReplicaSet: its controller is a kind we cannot suspend.
      const rolloutUid = randomUUID();
      const rs = await kube.apps.createNamespacedReplicaSet({
        namespace,
        body: {
          metadata: {
            name: `${app}-7c9`,
            ownerReferences: [
              { apiVersion: 'argoproj.io/v1alpha1', kind: 'Rollout', name: app, uid: rolloutUid, controller: true },
            ],
          },
          spec: { replicas: 2, selector: selector(app), template: template(app) },
        },
      });
      const pod = await createPod(kube, namespace, podName, controllerRef('ReplicaSet', 'apps/v1', rs.metadata));
      return { kind, name: app, uid: rolloutUid, pod };
    }
    default:
      throw new Error(`no fixture for ${kind}`);
  }
}

function jobBody(name: string) {
  const tpl = template(name);
  return {
    metadata: { name },
    spec: { parallelism: 1, template: { ...tpl, spec: { ...tpl.spec, restartPolicy: 'Never' } } },
  };
}

export async function podExists(kube: TestKube, namespace: string, name: string, uid?: string): Promise<boolean> {
  try {
    const p = await kube.core.readNamespacedPod({ namespace, name });
    return uid ? p.metadata?.uid === uid : true;
  } catch (err) {
    if ((err as { code?: number }).code === 404) return false;
    throw err;
  }
}

let seq = 0;
/** A fresh, valid alert for the workload's pod; `over` changes single fields. */
export function alertFor(namespace: string, w: Workload, over: Partial<PodAlert> = {}): PodAlert {
  seq += 1;
  return {
    source: 'falco',
    alertId: `test-${Date.now()}-${seq}`,
    category: 'crypto-mining',
    severity: 'high',
    detectedAt: new Date().toISOString(),
    cluster: { name: 'local' },
    namespace,
    podName: w.pod.metadata!.name!,
    podUid: w.pod.metadata!.uid!,
    container: { id: w.pod.containerId.slice(0, 12), name: 'app' },
    process: { name: 'xmrig', commandLine: 'xmrig -o stratum+tcp://pool.example:3333' },
    ...over,
  };
}
