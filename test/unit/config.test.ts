import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { inputErrorsOf } from '../support/input-errors.js';
import { checkWorkerConfig, loadConfig } from '../../config/config.js';

const dir = mkdtempSync(path.join(tmpdir(), 'pod-responder-config-'));
const file = (name: string, text: string) => {
  const p = path.join(dir, name);
  writeFileSync(p, text);
  return p;
};

describe('loadConfig', () => {
  it('gives a complete configuration from nothing', () => {
    const c = loadConfig({});
    expect(c.temporal).toEqual({
      address: 'localhost:7233',
      namespace: 'default',
      taskQueue: 'pod-responder',
      uiUrl: 'http://localhost:8233',
      clusterTaskQueues: {},
    });
    expect(c.executor).toBe('direct');
    expect(c.policy.protectedNamespaces).toEqual(['kube-system', 'kube-public', 'kube-node-lease']);
  });

  it('checks a hold on EKS every 15 minutes by default, never more often than every 5 (0: not at all)', () => {
    expect(loadConfig({}).policy).toMatchObject({ holdCheckSeconds: 30, eksHoldCheckSeconds: 900 });
    expect(loadConfig({ POD_RESPONDER_POLICY: '{"eksHoldCheckSeconds":300}' }).policy.eksHoldCheckSeconds).toBe(300);
    expect(loadConfig({ POD_RESPONDER_POLICY: '{"eksHoldCheckSeconds":0}' }).policy.eksHoldCheckSeconds).toBe(0);
  });

  it('runs a versioned worker (Worker Deployment Versioning) only when given a build ID', () => {
    expect(loadConfig({ POD_RESPONDER_BUILD_ID: '1.2.0' }).temporal.deployment).toEqual({
      name: 'pod-responder',
      buildId: '1.2.0',
    });
    expect(loadConfig({}).temporal.deployment).toBeUndefined();
  });

  it('layers environment over the file, and policy JSON over the file policy', () => {
    const f = file(
      'c.json',
      JSON.stringify({
        temporal: { address: 'file:7233', namespace: 'sec' },
        policy: { repeatThreshold: 5, watchSeconds: 10 },
      }),
    );
    const c = loadConfig(
      { TEMPORAL_ADDRESS: 'env:7233', KUBECONFIG: '/a:/b', POD_RESPONDER_POLICY: '{"watchSeconds":0}' },
      f,
    );
    expect(c.temporal.address).toBe('env:7233');
    expect(c.temporal.namespace).toBe('sec');
    expect(c.direct.kubeconfig).toBe('/a');
    expect(c.policy).toMatchObject({ repeatThreshold: 5, watchSeconds: 0 });
  });

  it('reads forwarder credentials, port and routes from the environment, keeping other sources disabled', () => {
    const c = loadConfig({
      POD_RESPONDER_FORWARDER_PORT: '9090',
      POD_RESPONDER_GUARDDUTY_HMAC_SECRET: 's'.repeat(16),
      POD_RESPONDER_ROUTES: '[{"name":"all","action":"respond"}]',
    });
    expect(c.forwarder.port).toBe(9090);
    expect(c.forwarder.sources.guardduty).toEqual({
      hmacSecret: 's'.repeat(16),
      ratePerSecond: 200,
      burst: 1000,
      overRate: 'spool',
      credentials: [],
    });
    expect(c.forwarder.sources.falco).toEqual({ ratePerSecond: 200, burst: 1000, overRate: 'spool', credentials: [] });
    expect(c.forwarder.routes).toEqual([{ name: 'all', action: 'respond' }]);
    expect(loadConfig({}).forwarder.routes).toEqual([
      { name: 'crypto-mining', action: 'respond', category: ['crypto-mining'] },
    ]);
  });

  it('reads the spool path and SQS queues from the environment; a Falco queue needs its cluster', () => {
    const queue = { url: 'https://sqs.eu-west-1.amazonaws.com/123456789012/falco', source: 'falco', cluster: 'prod' };
    const c = loadConfig({
      POD_RESPONDER_SPOOL_PATH: '/var/lib/pod-responder/spool/forwarder.db',
      POD_RESPONDER_SQS: JSON.stringify([queue]),
    });
    expect(c.forwarder.spool).toEqual({
      enabled: true,
      path: '/var/lib/pod-responder/spool/forwarder.db',
      maxEntries: 100_000,
      maxBytes: 256 * 1024 * 1024,
    });
    expect(c.forwarder.sqs).toEqual([{ ...queue, waitSeconds: 20, retrySeconds: 30 }]);
    expect(
      inputErrorsOf(() => loadConfig({ POD_RESPONDER_SQS: JSON.stringify([{ ...queue, cluster: undefined }]) })),
    ).toEqual(['forwarder.sqs[0].cluster: a falco queue needs "cluster": Falco events do not name their cluster']);
  });

  it('bounds the worker for a 512 MiB container by default, and reads its limits from the environment', () => {
    expect(loadConfig({}).worker).toEqual({
      maxCachedIncidents: 100,
      maxConcurrentActivities: 100,
      maxConcurrentWorkflowTasks: 40,
      shutdownGraceSeconds: 30,
    });
    const c = loadConfig({
      POD_RESPONDER_MAX_CACHED_INCIDENTS: '1000',
      POD_RESPONDER_SHUTDOWN_GRACE_SECONDS: '90',
      POD_RESPONDER_IN_CLUSTER: 'true',
      POD_RESPONDER_CLUSTER: 'prod',
    });
    expect(c.worker).toMatchObject({ maxCachedIncidents: 1000, shutdownGraceSeconds: 90 });
    expect(c.direct).toMatchObject({ inCluster: true, cluster: 'prod' });
    expect(() => loadConfig({ POD_RESPONDER_MAX_CONCURRENT_WORKFLOW_TASKS: '1' })).toThrow(
      /worker\.maxConcurrentWorkflowTasks/,
    );
    expect(() => loadConfig({ POD_RESPONDER_IN_CLUSTER: 'true' })).toThrow(
      /inCluster acts on the cluster it runs in: set cluster/,
    );
    expect(() => loadConfig({ POD_RESPONDER_MAX_CACHED_INCIDENTS: '1' })).toThrow(
      /worker\.maxCachedIncidents: must be 0 \(no cache\) or at least 2/,
    );
  });

  it('reads the cluster mapping, installation and boundary from the environment', () => {
    const c = loadConfig({
      POD_RESPONDER_CLUSTER: 'prod-eu',
      POD_RESPONDER_INSTALLATION_ID: 'prod',
      POD_RESPONDER_PERMISSIONS_BOUNDARY_ARN: 'arn:aws:iam::123456789012:policy/pod-responder-function-boundary',
    });
    expect(c.direct.cluster).toBe('prod-eu');
    expect(c.eks).toMatchObject({
      installationId: 'prod',
      permissionsBoundaryArn: 'arn:aws:iam::123456789012:policy/pod-responder-function-boundary',
    });
  });

  it('refuses a worker with the EKS executor and no permissions boundary, naming the field; the forwarder needs none', () => {
    const eks = loadConfig({ POD_RESPONDER_EXECUTOR: 'eks-lambda' });
    expect(inputErrorsOf(() => checkWorkerConfig(eks))).toEqual([
      'eks.permissionsBoundaryArn (POD_RESPONDER_PERMISSIONS_BOUNDARY_ARN): required with executor eks-lambda: every function role is created ' +
        "with it as its permissions boundary, and the worker's IAM policy allows role writes only on roles that carry it; create it from " +
        'deploy/aws/function-boundary-policy.json (docs/permissions.md)',
    ]);
    expect(() =>
      checkWorkerConfig(
        loadConfig({
          POD_RESPONDER_EXECUTOR: 'eks-lambda',
          POD_RESPONDER_PERMISSIONS_BOUNDARY_ARN: 'arn:aws:iam::123456789012:policy/pod-responder-function-boundary',
        }),
      ),
    ).not.toThrow();
    expect(() => checkWorkerConfig(loadConfig({}))).not.toThrow();
  });

  it('reads task queues per cluster, and credentials bound to clusters and namespaces', () => {
    const credentials = [
      { name: 'prod-eu', token: 't'.repeat(16), clusters: ['prod-eu'], namespaces: ['shop'], ratePerSecond: 5 },
    ];
    const f = file(
      'creds.json',
      JSON.stringify({ forwarder: { sources: { falco: { token: 'f'.repeat(16), clusters: ['dev'], credentials } } } }),
    );
    const c = loadConfig({ POD_RESPONDER_CLUSTER_TASK_QUEUES: '{"prod-eu":"pod-responder-prod-eu"}' }, f);
    expect(c.temporal.clusterTaskQueues).toEqual({ 'prod-eu': 'pod-responder-prod-eu' });
    expect(c.forwarder.sources.falco).toMatchObject({ token: 'f'.repeat(16), clusters: ['dev'], credentials });
  });

  it.each<[string, () => unknown, string]>([
    [
      'task queues env not JSON',
      () => loadConfig({ POD_RESPONDER_CLUSTER_TASK_QUEUES: '{' }),
      'POD_RESPONDER_CLUSTER_TASK_QUEUES: not JSON',
    ],
    [
      'task queue for a bad cluster name',
      () => loadConfig({ POD_RESPONDER_CLUSTER_TASK_QUEUES: '{"a b":"q"}' }),
      'temporal.clusterTaskQueues["a b"]: must be a cluster name',
    ],
    [
      'credential without a secret',
      () => loadConfig({}, file('c1.json', '{"forwarder":{"sources":{"xdr":{"credentials":[{"name":"eu"}]}}}}')),
      'forwarder.sources.xdr.credentials[0]: a credential needs "token" or "hmacSecret"',
    ],
    [
      'credential named default',
      () =>
        loadConfig(
          {},
          file(
            'c2.json',
            `{"forwarder":{"sources":{"xdr":{"credentials":[{"name":"default","token":"${'t'.repeat(16)}"}]}}}}`,
          ),
        ),
      'forwarder.sources.xdr.credentials: credential names must be unique, and "default" is the source\'s own token/hmacSecret',
    ],
    [
      'empty cluster binding',
      () =>
        loadConfig(
          {},
          file('c3.json', `{"forwarder":{"sources":{"xdr":{"token":"${'t'.repeat(16)}","clusters":[]}}}}`),
        ),
      'forwarder.sources.xdr.clusters: list at least one cluster, or leave it out for any',
    ],
    [
      'namespace binding not a DNS label',
      () =>
        loadConfig(
          {},
          file('c4.json', `{"forwarder":{"sources":{"xdr":{"token":"${'t'.repeat(16)}","namespaces":["Shop"]}}}}`),
        ),
      'forwarder.sources.xdr.namespaces[0]: must be a DNS-1123 label',
    ],
    [
      'unknown key in file',
      () => loadConfig({}, file('u.json', '{"temporl":{}}')),
      '(root): Unrecognized key: "temporl"',
    ],
    ['file is not JSON', () => loadConfig({}, file('n.json', '{')), `${path.join(dir, 'n.json')}: not a JSON object`],
    [
      'file missing',
      () => loadConfig({}, path.join(dir, 'none.json')),
      `${path.join(dir, 'none.json')}: cannot read (ENOENT)`,
    ],
    [
      'bad executor',
      () => loadConfig({ POD_RESPONDER_EXECUTOR: 'ssh' }),
      'executor: Invalid option: expected one of "direct"|"eks-lambda"',
    ],
    ['policy env not JSON', () => loadConfig({ POD_RESPONDER_POLICY: 'x' }), 'POD_RESPONDER_POLICY: not JSON'],
    [
      'bad label selector',
      () => loadConfig({ POD_RESPONDER_POLICY: '{"protectedLabels":["a b"]}' }),
      'policy.protectedLabels[0]: must be "key" or "key=value"',
    ],
    [
      'EKS hold checks below the floor',
      () => loadConfig({ POD_RESPONDER_POLICY: '{"eksHoldCheckSeconds":60}' }),
      'policy.eksHoldCheckSeconds: must be 0 (no checks) or at least 300: each check deploys the EKS function stack',
    ],
    [
      'short token',
      () => loadConfig({ POD_RESPONDER_FALCO_TOKEN: 'short' }),
      'forwarder.sources.falco.token: must be at least 16 characters',
    ],
    [
      'port not a number',
      () => loadConfig({ POD_RESPONDER_FORWARDER_PORT: 'http' }),
      'forwarder.port: Invalid input: expected number, received NaN',
    ],
    ['routes env not JSON', () => loadConfig({ POD_RESPONDER_ROUTES: '[' }), 'POD_RESPONDER_ROUTES: not JSON'],
    [
      'installation with a space',
      () => loadConfig({ POD_RESPONDER_INSTALLATION_ID: 'prod eu' }),
      'eks.installationId: must be 1 to 128 letters, digits or _.:/=+@- (it is an AWS tag value)',
    ],
    [
      'boundary not a policy ARN',
      () => loadConfig({ POD_RESPONDER_PERMISSIONS_BOUNDARY_ARN: 'arn:aws:iam::123456789012:role/x' }),
      'eks.permissionsBoundaryArn: must be an IAM policy ARN',
    ],
    [
      'cluster name with a space',
      () => loadConfig({ POD_RESPONDER_CLUSTER: 'Prod EU' }),
      'direct.cluster: must be a cluster name (letters, digits, "-" and "_")',
    ],
    [
      'spool byte limit too small',
      () => loadConfig({ POD_RESPONDER_SPOOL_MAX_BYTES: '1000' }),
      'forwarder.spool.maxBytes: must be at least 65536 (64 KiB)',
    ],
    [
      'route with an unknown action',
      () => loadConfig({ POD_RESPONDER_ROUTES: '[{"name":"x","action":"page"}]' }),
      'forwarder.routes[0].action: Invalid option: expected one of "respond"|"ignore"',
    ],
  ])('%s -> exact error', (_n, load, message) => {
    expect(inputErrorsOf(load).some((e) => e.startsWith(message))).toBe(true);
  });
});
