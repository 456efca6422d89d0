/**
 * The Helm chart (deploy/helm/pod-responder), with the real helm binary (built from its Go module by
 * devstack/tools.sh) and the real kube-apiserver: lint; render with default and other values; bad values refused
 * by values.schema.json, naming the field; the rendered objects applied server-side (strict field validation);
 * its RBAC checked with SubjectAccessReview against the calls the remediation core makes (every one allowed where
 * the values say, nothing else: no secrets, no exec); then a worker started exactly as the chart's Deployment
 * starts it, with its service account's token (TokenRequest) as in-cluster configuration, handles an incident.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { Client, Connection } from '@temporalio/client';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { respondToAlert } from '../../temporal-client/incidents.js';
import { configSchema } from '../../config/config.js';
import { freePorts } from '../../devstack/probes.js';
import { ensureHelm } from '../../devstack/tools.js';
import { statusQuery } from '../../workflows/messages.js';
import { kubeRequest, type KubeTarget } from '../aws/kube-admin.js';
import { createNamespace, createWorkload, podExists, testKube, type TestKube } from '../support/cluster.js';
import { accessesOfTheCore, accessKey, CHECKPOINT_ACCESS, grantedBy, type Access } from '../support/core-access.js';
import { alertFor } from '../support/responder.js';
import { until } from '../support/until.js';
import { killProcessGroup, startWorkerProcess } from '../support/worker-process.js';

const root = path.resolve(import.meta.dirname, '../..');
const CHART = path.join(root, 'deploy/helm/pod-responder');

interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: {
    name: string;
    namespace?: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
  };
  [k: string]: unknown;
}

/** `helm test`'s objects (made when the tests run, not by install), and the release's own. */
const isTestHook = (o: K8sObject) => o.metadata.annotations?.['helm.sh/hook'] === 'test';
const releaseObjects = (objects: K8sObject[]) => objects.filter((o) => !isTestHook(o));
const names = (objects: K8sObject[]) => objects.map((o) => `${o.kind}/${o.metadata.name}`).sort();

interface PodSpec {
  securityContext: Record<string, unknown>;
  containers: {
    securityContext: Record<string, unknown>;
    resources: { limits?: Record<string, string> };
    env: { name: string; value?: string }[];
    ports?: { name: string; containerPort: number }[];
    readinessProbe?: Record<string, unknown>;
    livenessProbe?: Record<string, unknown>;
  }[];
}
const podTemplate = (o: K8sObject) =>
  (o as unknown as { spec: { template: { metadata: { labels: Record<string, string> }; spec: PodSpec } } }).spec
    .template;
const envOf = (spec: PodSpec) =>
  Object.fromEntries(spec.containers[0]!.env.filter((e) => e.value !== undefined).map((e) => [e.name, e.value!]));

let helm: string;
let kube: TestKube;
let admin: KubeTarget;

function run(cmd: string, args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(cmd, args, { maxBuffer: 16 << 20 }, (err, stdout, stderr) =>
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}

const setFlags = (values: Record<string, string>) => Object.entries(values).flatMap(([k, v]) => ['--set', `${k}=${v}`]);

async function render(
  release: string,
  namespace: string,
  values: Record<string, string>,
  extra: string[] = [],
): Promise<K8sObject[]> {
  const out = await run(helm, ['template', release, CHART, '--namespace', namespace, ...setFlags(values), ...extra]);
  expect(out.stderr, out.stderr).toBe('');
  expect(out.code).toBe(0);
  return parseAllDocuments(out.stdout)
    .map((d) => d.toJSON() as K8sObject | null)
    .filter((o): o is K8sObject => o !== null);
}

const PLURAL: Record<string, string> = {
  ServiceAccount: '/api/v1/namespaces/{ns}/serviceaccounts',
  ConfigMap: '/api/v1/namespaces/{ns}/configmaps',
  Service: '/api/v1/namespaces/{ns}/services',
  ClusterRole: '/apis/rbac.authorization.k8s.io/v1/clusterroles',
  ClusterRoleBinding: '/apis/rbac.authorization.k8s.io/v1/clusterrolebindings',
  Role: '/apis/rbac.authorization.k8s.io/v1/namespaces/{ns}/roles',
  RoleBinding: '/apis/rbac.authorization.k8s.io/v1/namespaces/{ns}/rolebindings',
  Deployment: '/apis/apps/v1/namespaces/{ns}/deployments',
  StatefulSet: '/apis/apps/v1/namespaces/{ns}/statefulsets',
  PodDisruptionBudget: '/apis/policy/v1/namespaces/{ns}/poddisruptionbudgets',
};

/** Server-side apply, as `kubectl apply --server-side` does, refusing unknown fields. */
async function apply(objects: K8sObject[]): Promise<void> {
  for (const o of objects) {
    const base = PLURAL[o.kind];
    expect(base, `no path known for ${o.kind}`).toBeDefined();
    const url = `${base!.replace('{ns}', o.metadata.namespace ?? '')}/${o.metadata.name}?fieldManager=helm-test&force=true&fieldValidation=Strict`;
    const res = await kubeRequest(admin, 'PATCH', url, o, 'application/apply-patch+yaml');
    expect(res.status, `${o.kind} ${o.metadata.name}: ${JSON.stringify(res.body)}`).toBeLessThan(300);
  }
}

async function can(user: string, namespace: string | undefined, a: Omit<Access, 'namespaced'>): Promise<boolean> {
  const review = await kube.authz.createSubjectAccessReview({
    body: {
      apiVersion: 'authorization.k8s.io/v1',
      kind: 'SubjectAccessReview',
      spec: {
        user,
        groups: ['system:serviceaccounts', 'system:authenticated'],
        resourceAttributes: { ...(namespace ? { namespace } : {}), ...a },
      },
    },
  });
  return review.status?.allowed === true;
}

const DENIED: Omit<Access, 'namespaced'>[] = [
  { verb: 'get', group: '', resource: 'secrets' },
  { verb: 'list', group: '', resource: 'secrets' },
  { verb: 'create', group: '', resource: 'pods', subresource: 'exec' },
  { verb: 'create', group: '', resource: 'pods' },
  { verb: 'delete', group: 'apps', resource: 'deployments' },
  { verb: 'create', group: 'rbac.authorization.k8s.io', resource: 'rolebindings' },
  { verb: 'create', group: '', resource: 'serviceaccounts', subresource: 'token' },
  { verb: 'create', group: '', resource: 'nodes', subresource: 'proxy' },
];

beforeAll(async () => {
  helm = await ensureHelm(); // built from its Go module on first use (a few minutes), cached after
  kube = testKube();
  const kubeconfig = parseAllDocuments(readFileSync(inject('kubeconfigPath'), 'utf8'))[0]!.toJSON() as {
    clusters: { cluster: { 'certificate-authority-data'?: string; 'certificate-authority'?: string } }[];
  };
  const c = kubeconfig.clusters[0]!.cluster;
  const caPem = c['certificate-authority-data']
    ? Buffer.from(c['certificate-authority-data'], 'base64').toString('utf8')
    : readFileSync(c['certificate-authority']!, 'utf8');
  admin = { url: inject('kubeApiUrl'), caPem, adminToken: inject('adminToken') };
}, 20 * 60_000);

describe('the Helm chart', () => {
  it('lints, and renders hardened workloads from the default values (clusterName is the one value required)', async () => {
    const lint = await run(helm, ['lint', CHART, '--strict', '--set', 'clusterName=local']);
    expect(lint.code, lint.stdout + lint.stderr).toBe(0);
    const all = await render('pr', 'pod-responder', { clusterName: 'local' });
    const objects = releaseObjects(all);
    // One resource per template file: each object's source is a file of its own (test hooks under templates/tests/).
    const sources = (await run(helm, ['template', 'pr', CHART, '--set', 'clusterName=local'])).stdout
      .split('\n')
      .filter((l) => l.startsWith('# Source: '));
    expect(new Set(sources).size).toBe(sources.length);
    expect(names(objects)).toEqual(
      [
        'ClusterRole/pr-pod-responder-node-reader',
        'ClusterRole/pr-pod-responder-remediator',
        'ClusterRoleBinding/pr-pod-responder-node-reader',
        'ClusterRoleBinding/pr-pod-responder-remediator',
        'ConfigMap/pr-pod-responder',
        'Deployment/pr-pod-responder-worker',
        'PodDisruptionBudget/pr-pod-responder-forwarder',
        'PodDisruptionBudget/pr-pod-responder-worker',
        'Service/pr-pod-responder-forwarder',
        'Service/pr-pod-responder-forwarder-headless',
        'Service/pr-pod-responder-worker-metrics',
        'ServiceAccount/pr-pod-responder',
        'StatefulSet/pr-pod-responder-forwarder',
        // For helm test: the pods' scripts, and the forwarder check's identity, which may only list EndpointSlices here.
        'ConfigMap/pr-pod-responder-tests',
        'Role/pr-pod-responder-test-forwarder',
        'RoleBinding/pr-pod-responder-test-forwarder',
        'ServiceAccount/pr-pod-responder-test-forwarder',
      ].sort(),
    );
    // helm test's hooks: a pod for each program, nothing else (`helm test --logs` reads every test hook as a pod).
    expect(names(all.filter(isTestHook))).toEqual([
      'Pod/pr-pod-responder-test-forwarder',
      'Pod/pr-pod-responder-test-worker',
    ]);
    expect(
      names(releaseObjects(await render('pr', 'ns', { clusterName: 'local', 'tests.enabled': 'false' }))),
    ).not.toContain('ConfigMap/pr-pod-responder-tests');
    const testRole = all.find((o) => o.kind === 'Role') as unknown as { rules: unknown[] };
    expect(testRole.rules).toEqual([
      { apiGroups: ['discovery.k8s.io'], resources: ['endpointslices'], verbs: ['list'] },
    ]);
    // The recommended labels on every object and every pod, each naming its component.
    const recommended = (component: string) => ({
      'app.kubernetes.io/name': 'pod-responder',
      'app.kubernetes.io/instance': 'pr',
      'app.kubernetes.io/version': '0.1.0',
      'app.kubernetes.io/component': component,
      'app.kubernetes.io/part-of': 'pod-responder',
      'app.kubernetes.io/managed-by': 'Helm',
      'helm.sh/chart': 'pod-responder-0.1.0',
    });
    const componentOf = (o: K8sObject) =>
      isTestHook(o) || o.metadata.name.endsWith('-tests') || o.metadata.name.includes('-test-')
        ? 'test'
        : o.kind.includes('Role')
          ? 'rbac'
          : o.kind === 'ConfigMap'
            ? 'config'
            : o.metadata.name.includes('forwarder')
              ? 'forwarder'
              : 'worker';
    for (const o of all) expect(o.metadata.labels, `${o.kind}/${o.metadata.name}`).toEqual(recommended(componentOf(o)));
    for (const [kind, component] of [
      ['Deployment', 'worker'],
      ['StatefulSet', 'forwarder'],
    ] as const)
      expect(podTemplate(objects.find((o) => o.kind === kind)!).metadata.labels).toEqual(recommended(component));
    for (const w of objects.filter((o) => o.kind === 'Deployment' || o.kind === 'StatefulSet')) {
      const spec = podTemplate(w).spec;
      expect(spec.securityContext, w.kind).toMatchObject({ runAsNonRoot: true });
      const c = spec.containers[0]!;
      expect(c.securityContext).toEqual({
        allowPrivilegeEscalation: false,
        readOnlyRootFilesystem: true,
        capabilities: { drop: ['ALL'] },
      });
      expect(c.resources.limits?.['memory'], w.kind).toBeDefined();
      // No credential is ever a plain env value: secrets come from Secret references and mounted files.
      for (const e of c.env) expect(e.name, `${w.kind} ${e.name}`).not.toMatch(/TOKEN|SECRET|API_KEY$/);
    }
    const forwarder = objects.find((o) => o.kind === 'StatefulSet') as unknown as {
      spec: {
        volumeClaimTemplates: { metadata: { name: string }; spec: { resources: { requests: { storage: string } } } }[];
        template: {
          spec: {
            containers: {
              env: { name: string; value?: string }[];
              readinessProbe: Record<string, unknown>;
              livenessProbe: Record<string, unknown>;
            }[];
          };
        };
      };
    };
    expect(forwarder.spec.volumeClaimTemplates.map((v) => v.metadata.name)).toEqual(['spool']);
    // The spool's volume holds its default limit with room for SQLite's pages and WAL (the file stays within 2 x maxBytes).
    const fc = forwarder.spec.template.spec.containers[0]!;
    const maxBytes = Number(fc.env.find((e) => e.name === 'POD_RESPONDER_SPOOL_MAX_BYTES')?.value);
    expect(maxBytes).toBe(configSchema.parse({}).forwarder.spool.maxBytes);
    const storage = forwarder.spec.volumeClaimTemplates[0]!.spec.resources.requests.storage;
    const units: Record<string, number> = { Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30, Ti: 2 ** 40 };
    const [, n, unit] = /^(\d+)(Ki|Mi|Gi|Ti)$/.exec(storage)!;
    expect(Number(n) * units[unit!]!).toBeGreaterThanOrEqual(2 * maxBytes);
    // /readyz answers from memory: a deliberate timeout, longer than Kubernetes' 1 s default, and three misses to act.
    expect(fc.readinessProbe).toMatchObject({
      httpGet: { path: '/readyz', port: 'http' },
      timeoutSeconds: 2,
      failureThreshold: 3,
    });
    expect(fc.livenessProbe).toMatchObject({
      httpGet: { path: '/healthz', port: 'http' },
      timeoutSeconds: 2,
      failureThreshold: 3,
    });
  });

  it("the worker's liveness and readiness probes use its own health port, with metrics on or off", async () => {
    for (const metrics of [true, false]) {
      const deployment = (await render('pr', 'ns', { clusterName: 'local', 'metrics.enabled': String(metrics) })).find(
        (o) => o.kind === 'Deployment',
      )!;
      const spec = podTemplate(deployment).spec;
      const c = spec.containers[0]!;
      expect(c.livenessProbe).toEqual({
        httpGet: { path: '/healthz', port: 'health' },
        periodSeconds: 10,
        timeoutSeconds: 2,
        failureThreshold: 3,
      });
      expect(c.readinessProbe).toEqual({
        httpGet: { path: '/readyz', port: 'health' },
        periodSeconds: 5,
        timeoutSeconds: 2,
        failureThreshold: 3,
      });
      expect(c.ports).toEqual([
        { name: 'health', containerPort: 8081 },
        ...(metrics ? [{ name: 'metrics', containerPort: 9464 }] : []),
      ]);
      // Metrics off is off: the worker's own default (9464) would otherwise serve them anyway.
      expect(envOf(spec)).toMatchObject({
        POD_RESPONDER_HEALTH_HOST: '0.0.0.0',
        POD_RESPONDER_HEALTH_PORT: '8081',
        POD_RESPONDER_METRICS_PORT: metrics ? '9464' : '0',
      });
    }
  });

  it('nameOverride and fullnameOverride name every object; apiServer points the worker at the API where ClusterIPs do not route', async () => {
    const named = await render('pr', 'ns', { clusterName: 'local', nameOverride: 'responder' });
    expect(names(releaseObjects(named))).toContain('Deployment/pr-responder-worker');
    expect(names(named.filter(isTestHook))).toContain('Pod/pr-responder-test-worker');
    for (const o of named) expect(o.metadata.labels?.['app.kubernetes.io/name'], o.kind).toBe('responder');
    expect(
      (named.find((o) => o.kind === 'Deployment') as unknown as { spec: { selector: unknown } }).spec.selector,
    ).toEqual({
      matchLabels: {
        'app.kubernetes.io/name': 'responder',
        'app.kubernetes.io/instance': 'pr',
        'app.kubernetes.io/component': 'worker',
      },
    });
    const full = await render('pr', 'ns', { clusterName: 'local', fullnameOverride: 'pod-resp' });
    expect(names(releaseObjects(full))).toEqual(
      expect.arrayContaining([
        'ClusterRole/pod-resp-remediator',
        'Deployment/pod-resp-worker',
        'StatefulSet/pod-resp-forwarder',
        'Service/pod-resp-forwarder-headless',
        'ServiceAccount/pod-resp',
      ]),
    );
    // The longest name (a Service, so a DNS label) stays within 63 characters however long the release name.
    const long = await render('a'.repeat(53), 'ns', { clusterName: 'local' });
    for (const o of long) expect(o.metadata.name.length, o.metadata.name).toBeLessThanOrEqual(63);

    const deployment = (
      await render('pr', 'ns', { clusterName: 'local', 'apiServer.host': '10.0.0.1', 'apiServer.port': '6443' })
    ).find((o) => o.kind === 'Deployment')!;
    expect(envOf(podTemplate(deployment).spec)).toMatchObject({
      KUBERNETES_SERVICE_HOST: '10.0.0.1',
      KUBERNETES_SERVICE_PORT: '6443',
    });
    const byDefault = (await render('pr', 'ns', { clusterName: 'local' })).find((o) => o.kind === 'Deployment')!;
    expect(envOf(podTemplate(byDefault).spec)).not.toHaveProperty('KUBERNETES_SERVICE_HOST');
  });

  it('refuses bad values at install, naming the field', async () => {
    const refused = async (values: Record<string, string>) => {
      const out = await run(helm, ['template', 'pr', CHART, ...setFlags(values)]);
      expect(out.code).not.toBe(0);
      return out.stderr;
    };
    expect(await refused({})).toMatch(/clusterName/);
    expect(await refused({ clusterName: 'x', 'rbac.scope': 'everything' })).toMatch(
      /\/rbac\/scope.*value must be one of 'cluster', 'namespaces'/,
    );
    expect(await refused({ clusterName: 'x', 'worker.replicas': '-1' })).toMatch(/\/worker\/replicas/);
    expect(await refused({ clusterName: 'x', 'workr.replicas': '2' })).toMatch(
      /additional properties 'workr' not allowed/,
    );
    expect(await refused({ clusterName: 'x', 'temporal.address': 'no-port' })).toMatch(/\/temporal\/address/);
    expect(await refused({ clusterName: 'x', 'rbac.scope': 'namespaces' })).toMatch(/\/rbac\/namespaces/);
    expect(await refused({ clusterName: 'x', fullnameOverride: 'Not_A_Name' })).toMatch(/\/fullnameOverride/);
    expect(await refused({ clusterName: 'x', 'worker.healthPort': '0' })).toMatch(/\/worker\/healthPort/);
  });

  it("grants exactly the remediation core's calls: nothing more, no checkpoint access", async () => {
    const objects = await render('pr', 'pod-responder', { clusterName: 'local' });
    const core = accessesOfTheCore().filter((a) => accessKey(a) !== CHECKPOINT_ACCESS);
    expect([...grantedBy(objects as never)].sort()).toEqual(core.map(accessKey).sort());
  });

  it('other values: TLS and API key from Secrets (mounted, never in values), per-namespace RBAC, a ServiceMonitor', async () => {
    const objects = releaseObjects(
      await render('pr', 'pr-ns', {
        clusterName: 'prod-eu',
        'rbac.scope': 'namespaces',
        'rbac.namespaces': '{shop,web}',
        'temporal.tls.existingSecret': 'temporal-mtls',
        'temporal.apiKey.existingSecret': 'temporal-cloud',
        'forwarder.sourcesSecret': 'alert-sources',
        'metrics.serviceMonitor.enabled': 'true',
        'forwarder.spool.persistence': 'false',
      }),
    );
    const bindings = objects
      .filter((o) => o.kind === 'RoleBinding' || o.kind === 'ClusterRoleBinding')
      .map((o) => `${o.kind}/${o.metadata.namespace ?? ''}/${o.metadata.name}`);
    expect(bindings.sort()).toEqual([
      'ClusterRoleBinding//pr-pod-responder-node-reader',
      'RoleBinding/pr-ns/pr-pod-responder-test-forwarder',
      'RoleBinding/shop/pr-pod-responder-remediator',
      'RoleBinding/web/pr-pod-responder-remediator',
    ]);
    expect(objects.some((o) => o.kind === 'ServiceMonitor')).toBe(true);
    const worker = objects.find((o) => o.kind === 'Deployment') as unknown as {
      spec: {
        template: {
          spec: {
            containers: {
              env: { name: string; value?: string }[];
              volumeMounts: { name: string; mountPath: string }[];
            }[];
            volumes: { name: string; secret?: { secretName: string } }[];
          };
        };
      };
    };
    const pod = worker.spec.template.spec;
    const env = Object.fromEntries(pod.containers[0]!.env.map((e) => [e.name, e.value]));
    expect(env).toMatchObject({
      POD_RESPONDER_TEMPORAL_TLS: 'true',
      POD_RESPONDER_TEMPORAL_TLS_CA: '/etc/pod-responder/temporal-tls/ca.crt',
      POD_RESPONDER_TEMPORAL_API_KEY_FILE: '/etc/pod-responder/temporal-api-key/api-key',
      POD_RESPONDER_CLUSTER: 'prod-eu',
      POD_RESPONDER_IN_CLUSTER: 'true',
    });
    expect(
      pod.volumes
        .filter((v) => v.secret)
        .map((v) => v.secret!.secretName)
        .sort(),
    ).toEqual(['temporal-cloud', 'temporal-mtls']);
    const forwarder = objects.find((o) => o.kind === 'StatefulSet') as unknown as {
      spec: {
        volumeClaimTemplates?: unknown;
        template: {
          spec: {
            containers: {
              env: { name: string; valueFrom?: { secretKeyRef: { name: string; key: string; optional: boolean } } }[];
            }[];
          };
        };
      };
    };
    expect(forwarder.spec.volumeClaimTemplates).toBeUndefined();
    const falco = forwarder.spec.template.spec.containers[0]!.env.find((e) => e.name === 'POD_RESPONDER_FALCO_TOKEN');
    expect(falco?.valueFrom?.secretKeyRef).toEqual({ name: 'alert-sources', key: 'falco-token', optional: true });
  });
});

describe('installed in the cluster (server-side apply), per-namespace RBAC', () => {
  const release = `pr${randomBytes(3).toString('hex')}`;
  let home: string;
  let allowed: string;
  let elsewhere: string;
  let objects: K8sObject[];
  let user: string;
  let worker: ChildProcess | undefined;

  beforeAll(async () => {
    home = await createNamespace(kube, 'helm-home');
    allowed = await createNamespace(kube, 'helm-shop');
    elsewhere = await createNamespace(kube, 'helm-other');
    objects = releaseObjects(
      await render(release, home, {
        clusterName: 'local',
        'rbac.scope': 'namespaces',
        'rbac.namespaces': `{${allowed}}`,
      }),
    );
    await apply(objects);
    user = `system:serviceaccount:${home}:${release}-pod-responder`;
  });
  afterAll(async () => {
    if (worker && worker.exitCode === null && worker.signalCode === null) await killProcessGroup(worker);
  });

  it("the worker's service account may make every call of the core in its namespaces, and none elsewhere", async () => {
    const core = accessesOfTheCore().filter((a) => accessKey(a) !== CHECKPOINT_ACCESS);
    for (const { namespaced, ...a } of core) {
      expect(await can(user, namespaced ? allowed : undefined, a), `${accessKey(a)} in ${allowed}`).toBe(true);
      if (namespaced) expect(await can(user, elsewhere, a), `${accessKey(a)} in ${elsewhere}`).toBe(false);
    }
    for (const a of DENIED) {
      expect(await can(user, a.resource === 'nodes' ? undefined : allowed, a), `${accessKey(a)}`).toBe(false);
    }
  });

  it("a worker started as the chart starts it, on its service account's token, acts in its namespace and is refused elsewhere", async () => {
    // In-cluster configuration as the kubelet would mount it: a bound token from TokenRequest and the API server's CA.
    const { status } = await kube.core.createNamespacedServiceAccountToken({
      namespace: home,
      name: `${release}-pod-responder`,
      body: { spec: { audiences: [], expirationSeconds: 3600 } },
    });
    const mount = mkdtempSync(path.join(tmpdir(), 'sa-'));
    const dir = path.join(mount, 'var/run/secrets/kubernetes.io/serviceaccount');
    mkdirSync(dir, { recursive: true });
    writeFileSync(path.join(dir, 'token'), status!.token);
    writeFileSync(path.join(dir, 'ca.crt'), admin.caPem);
    writeFileSync(path.join(dir, 'namespace'), home);
    // The chart's own environment for the worker container, and its config file.
    const deployment = objects.find((o) => o.kind === 'Deployment') as unknown as {
      spec: { template: { spec: { containers: { env: { name: string; value?: string }[] }[] } } };
    };
    const chartEnv = Object.fromEntries(
      deployment.spec.template.spec.containers[0]!.env.filter((e) => e.value !== undefined).map((e) => [
        e.name,
        e.value!,
      ]),
    );
    const configMap = objects.find((o) => o.kind === 'ConfigMap') as unknown as { data: { 'config.json': string } };
    const config = { ...JSON.parse(configMap.data['config.json']), direct: { inClusterPathPrefix: mount } };
    const configFile = path.join(mount, 'config.json');
    writeFileSync(configFile, JSON.stringify(config));
    const taskQueue = `helm-${randomBytes(4).toString('hex')}`;
    const [healthPort] = await freePorts(1);
    const api = new URL(inject('kubeApiUrl'));
    worker = await startWorkerProcess({
      ...chartEnv,
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      // Where the test stack is, instead of the cluster's addresses; everything else as the chart sets it.
      TEMPORAL_ADDRESS: inject('temporalAddress'),
      POD_RESPONDER_TASK_QUEUE: taskQueue,
      POD_RESPONDER_CONFIG: configFile,
      // Metrics off: the probes' endpoint does not need them.
      POD_RESPONDER_METRICS_PORT: '0',
      POD_RESPONDER_HEALTH_HOST: '127.0.0.1',
      POD_RESPONDER_HEALTH_PORT: String(healthPort),
      KUBERNETES_SERVICE_HOST: api.hostname,
      KUBERNETES_SERVICE_PORT: api.port,
    });
    // What the kubelet's probes would see: live, and ready once both pollers poll.
    const probe = async (path: string) => {
      const res = await fetch(`http://127.0.0.1:${healthPort}${path}`);
      return { status: res.status, body: await res.json() };
    };
    expect((await probe('/healthz')).status).toBe(200);
    await until('the worker ready', async () => (await probe('/readyz')).status === 200);
    expect(await probe('/readyz')).toEqual({ status: 200, body: { status: 'ok', runState: 'RUNNING' } });
    const client = new Client({ connection: await Connection.connect({ address: inject('temporalAddress') }) });
    try {
      const starter = configSchema.parse({ temporal: { address: inject('temporalAddress'), taskQueue } });
      const respond = async (ns: string) => {
        const w = await createWorkload(kube, ns, 'Pod');
        const started = await respondToAlert(client, starter, alertFor(ns, w));
        const handle = client.workflow.getHandle(started.workflowId);
        const failure = await handle.result().then(
          () => null,
          (e: unknown) => e,
        );
        return { w, failure, status: await handle.query(statusQuery) };
      };
      const inside = await respond(allowed);
      expect(inside.failure).toBeNull();
      expect(inside.status.outcome).toBe('pod-terminated');
      expect(inside.status.isolation).toMatchObject({ state: 'released' });
      expect(await podExists(kube, allowed, inside.w.name)).toBe(false);

      // A namespace the values did not grant: RBAC refuses the first read, nothing is touched, and the incident says so.
      const outside = await respond(elsewhere);
      expect(outside.status.outcome).toBe('failed');
      expect(outside.status.problem).toMatch(
        /HTTP 403 Forbidden: pods ".+" is forbidden: User "system:serviceaccount:.+" cannot get resource "pods".*nothing was changed in the cluster/,
      );
      expect(await podExists(kube, elsewhere, outside.w.name)).toBe(true);
    } finally {
      await client.connection.close();
    }
  }, 120_000);
});
