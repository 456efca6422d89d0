/**
 * pod-responder against a secured Temporal, through a TLS endpoint in front of the shared dev server
 * (test/support/temporal-tls-proxy.ts) with a PKI made at start: a self-hosted cluster with mTLS (client
 * certificates required), and Temporal Cloud's way (TLS with an API key, checked on every call). The worker,
 * the CLI (its connection and the real process) and the forwarder each connect through it; a wrong CA, a
 * missing client certificate and a wrong API key fail with errors that name the setting to fix.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inject } from 'vitest';
import { signBody } from '../../forwarder/auth.js';
import { TemporalGateway } from '../../forwarder/temporal-gateway.js';
import { connectClient, respondToAlert } from '../../temporal-client/incidents.js';
import { loadConfig, type Config } from '../../config/config.js';
import { installLogging } from '../../worker/logging.js';
import { createWorker, type StartedWorker } from '../../worker/worker.js';
import { freshFixture } from '../support/alert-fixtures.js';
import { createNamespace, createWorkload, podExists, testKube, type TestKube } from '../support/cluster.js';
import { HMAC_SECRET, startForwarder, type TestForwarder } from '../support/forwarder.js';
import { alertFor } from '../support/responder.js';
import { startTemporalTlsProxy, type TemporalTlsProxy } from '../support/temporal-tls-proxy.js';
import { makeTestPki } from '../support/test-pki.js';
import { until } from '../support/until.js';

const root = path.resolve(import.meta.dirname, '../..');
const pki = makeTestPki();
const API_KEY = `test-key-${randomBytes(12).toString('hex')}`;
// As a Kubernetes Secret mounts it: with a trailing newline that is not part of the key.
const apiKeyFile = path.join(pki.dir, 'api-key');
writeFileSync(apiKeyFile, `${API_KEY}\n`);
const taskQueue = `tls-${randomBytes(4).toString('hex')}`;

let mtls: TemporalTlsProxy;
let cloud: TemporalTlsProxy;
let worker: StartedWorker;
let kube: TestKube;

/** The environment a deployment sets: the same variables for the worker, the CLI and the forwarder. */
const base = (): NodeJS.ProcessEnv => ({
  POD_RESPONDER_TASK_QUEUE: taskQueue,
  KUBECONFIG: inject('kubeconfigPath'),
  POD_RESPONDER_CLUSTER: 'local',
  POD_RESPONDER_POLICY: '{"watchSeconds":0}',
});
const mtlsEnv = (over: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv => ({
  ...base(),
  TEMPORAL_ADDRESS: mtls.address,
  POD_RESPONDER_TEMPORAL_TLS_CA: pki.caFile,
  POD_RESPONDER_TEMPORAL_TLS_CERT: pki.clientCertFile,
  POD_RESPONDER_TEMPORAL_TLS_KEY: pki.clientKeyFile,
  ...over,
});
/** Temporal Cloud's way: an API key (which turns TLS on), the server's CA, and a name its certificate holds. */
const cloudEnv = (over: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv => ({
  ...base(),
  TEMPORAL_ADDRESS: cloud.address,
  POD_RESPONDER_TEMPORAL_TLS_CA: pki.caFile,
  POD_RESPONDER_TEMPORAL_TLS_SERVER_NAME: pki.serverAltName,
  POD_RESPONDER_TEMPORAL_API_KEY_FILE: apiKeyFile,
  ...over,
});
const without = (env: NodeJS.ProcessEnv, ...names: string[]) =>
  Object.fromEntries(Object.entries(env).filter(([k]) => !names.includes(k)));

function cli(args: string[], env: NodeJS.ProcessEnv): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      path.join(root, 'node_modules/.bin/tsx'),
      [path.join(root, 'client/cli.ts'), ...args],
      { env: { PATH: process.env.PATH, HOME: process.env.HOME, ...env }, cwd: root },
      (err, stdout, stderr) => resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}

async function connectError(config: Config): Promise<string> {
  const client = await connectClient(config).catch((err: Error) => err);
  if (!(client instanceof Error)) {
    await client.connection.close();
    throw new Error('connected, expected a refusal');
  }
  return client.message;
}

beforeAll(async () => {
  kube = testKube();
  mtls = await startTemporalTlsProxy({ backend: inject('temporalAddress'), pki, requireClientCert: true });
  cloud = await startTemporalTlsProxy({
    backend: inject('temporalAddress'),
    pki,
    requireClientCert: false,
    apiKey: API_KEY,
  });
  installLogging('ERROR');
  worker = await createWorker(loadConfig(mtlsEnv()));
  void worker.run();
});

afterAll(async () => {
  await worker?.shutdown();
  await mtls?.close();
  await cloud?.close();
});

describe('self-hosted Temporal with mTLS', () => {
  it('the worker handles an incident the CLI starts, both over mTLS, every call with the client certificate', async () => {
    const config = loadConfig(mtlsEnv());
    const ns = await createNamespace(kube, 'tls');
    const w = await createWorkload(kube, ns, 'Pod');
    const client = await connectClient(config);
    try {
      const started = await respondToAlert(client, config, alertFor(ns, w));
      expect(await client.workflow.getHandle(started.workflowId).result()).toMatchObject({ outcome: 'pod-terminated' });
    } finally {
      await client.connection.close();
    }
    expect(await podExists(kube, ns, w.name)).toBe(false);
    const paths = new Set(mtls.calls.map((c) => c.path.split('/').at(-1)));
    // The worker's polls (its NativeConnection), its activities' client, and the CLI's start all went through here.
    expect([...paths]).toEqual(
      expect.arrayContaining([
        'PollWorkflowTaskQueue',
        'PollActivityTaskQueue',
        'RespondWorkflowTaskCompleted',
        'SignalWithStartWorkflowExecution',
      ]),
    );
    expect(mtls.calls.every((c) => c.clientCn === 'pod-responder-client')).toBe(true);
  });

  it('a client without a certificate is refused in the handshake, and told to set one', async () => {
    const refusedBefore = mtls.refusals.length;
    const config = loadConfig(without(mtlsEnv(), 'POD_RESPONDER_TEMPORAL_TLS_CERT', 'POD_RESPONDER_TEMPORAL_TLS_KEY'));
    const [client, workerError] = await Promise.all([
      connectError(config),
      createWorker(config).then(
        () => 'started',
        (err: Error) => err.message,
      ),
    ]);
    const expected = `cannot connect to Temporal at ${mtls.address} (tls, ca ${pki.caFile}): the server asks for a client certificate (mTLS): set temporal.tls.certFile and keyFile`;
    expect(client).toBe(expected);
    expect(workerError).toBe(expected);
    expect(mtls.refusals.slice(refusedBefore).some((r) => r.includes('peer did not return a certificate'))).toBe(true);
  });

  it('a wrong CA fails the worker, the CLI and the forwarder with the CA file named', async () => {
    const config = loadConfig(mtlsEnv({ POD_RESPONDER_TEMPORAL_TLS_CA: pki.otherCaFile }));
    const expected = `cannot connect to Temporal at ${mtls.address} (tls, ca ${pki.otherCaFile}, clientCert ${pki.clientCertFile}): the server's certificate is not signed by the CA in temporal.tls.caFile (${pki.otherCaFile})`;
    const gateway = TemporalGateway.create(config);
    try {
      const [client, workerError, ready] = await Promise.all([
        connectError(config),
        createWorker(config).then(
          () => 'started',
          (err: Error) => err.message,
        ),
        gateway.ready(),
      ]);
      expect(client).toBe(expected);
      expect(workerError).toBe(expected);
      expect(ready).toBe(false);
      expect(await gateway.whyUnreachable()).toBe(expected);
    } finally {
      await gateway.close();
    }
  });

  it('the CLI process reads the TLS settings from the environment, and a file it cannot read stops it at start', async () => {
    const missing = path.join(pki.dir, 'no-such-ca.pem');
    const bad = await cli(['status', 'pod-incident:local:x:y'], mtlsEnv({ POD_RESPONDER_TEMPORAL_TLS_CA: missing }));
    expect(bad.code).toBe(2);
    expect(bad.stderr).toBe(
      `error: invalid configuration (environment):\n  - temporal.tls.caFile: cannot read ${missing} (ENOENT)\n`,
    );
    const noCert = await cli(
      ['status', 'pod-incident:local:x:y'],
      without(mtlsEnv(), 'POD_RESPONDER_TEMPORAL_TLS_CERT', 'POD_RESPONDER_TEMPORAL_TLS_KEY'),
    );
    expect(noCert.code).toBe(1);
    expect(noCert.stderr).toContain(
      'the server asks for a client certificate (mTLS): set temporal.tls.certFile and keyFile',
    );
  });
});

describe('Temporal Cloud: TLS with an API key', () => {
  it('the forwarder starts an incident through the API-key endpoint, the mTLS worker handles it, the CLI process reads its status', async () => {
    const ns = await createNamespace(kube, 'tlsfwd');
    const w = await createWorkload(kube, ns, 'Pod');
    const c = loadConfig(cloudEnv());
    const fwd: TestForwarder = await startForwarder({
      temporalAddress: c.temporal.address,
      taskQueue,
      temporal: { tls: c.temporal.tls, apiKeyFile: c.temporal.apiKeyFile },
      config: { policy: { watchSeconds: 0 } },
    });
    try {
      const raw = JSON.stringify(
        freshFixture('normalized', {
          cluster: 'local',
          namespace: ns,
          pod: w.name,
          id: `tls-${randomBytes(4).toString('hex')}`,
          uid: w.uid,
          containerId: w.pod.containerId,
          containerName: 'app',
        }),
      );
      const res = await fwd.post('/v1/alerts', raw, signBody(HMAC_SECRET, raw));
      expect(res.status, JSON.stringify(res.json)).toBe(202);
      expect(res.json.results[0]).toMatchObject({
        outcome: 'accepted',
        workflowId: `pod-incident:local:${ns}:${w.name}`,
      });
    } finally {
      await fwd.close();
    }
    const workflowId = `pod-incident:local:${ns}:${w.name}`;
    expect(cloud.calls.some((call) => call.path.endsWith('/SignalWithStartWorkflowExecution'))).toBe(true);

    // The CLI as a user runs it, with the key in a file (a mounted Secret) and the server name override.
    let status: { stage: string; outcome: string } | undefined;
    for (let i = 0; i < 60 && status?.stage !== 'closed'; i++) {
      const r = await cli(['status', workflowId], cloudEnv());
      expect(r.stderr).toBe('');
      status = JSON.parse(r.stdout) as { stage: string; outcome: string };
      if (status.stage !== 'closed') await new Promise((res) => setTimeout(res, 500));
    }
    expect(status).toMatchObject({ stage: 'closed', outcome: 'pod-terminated' });
    expect(await podExists(kube, ns, w.name)).toBe(false);
    expect(cloud.calls.some((call) => call.path.endsWith('/QueryWorkflow'))).toBe(true);
  });

  it('the worker connects with the API key too (its NativeConnection and its client)', async () => {
    const before = cloud.calls.length;
    const w = await createWorker(loadConfig(cloudEnv({ POD_RESPONDER_TASK_QUEUE: `${taskQueue}-cloud` })));
    const running = w.run();
    const calls = () => cloud.calls.slice(before).map((c) => c.path.split('/').at(-1));
    await until(
      'the worker polling through the API-key endpoint',
      async () => calls().includes('PollWorkflowTaskQueue'),
      30_000,
    );
    await w.shutdown();
    await running;
    expect(calls()).toEqual(expect.arrayContaining(['GetSystemInfo', 'ListSearchAttributes', 'PollWorkflowTaskQueue']));
  });

  it('a wrong or missing API key is refused by the server, and said so', async () => {
    const wrongKey = path.join(pki.dir, 'wrong-key');
    writeFileSync(wrongKey, 'not-the-key\n');
    const refusedBefore = cloud.unauthenticated;
    const wrong = loadConfig(cloudEnv({ POD_RESPONDER_TEMPORAL_API_KEY_FILE: wrongKey }));
    const none = loadConfig(without(cloudEnv(), 'POD_RESPONDER_TEMPORAL_API_KEY_FILE'));
    const [client, workerError, noKey] = await Promise.all([
      connectError(wrong),
      createWorker(wrong).then(
        () => 'started',
        (err: Error) => err.message,
      ),
      connectError(none),
    ]);
    const where = `cannot connect to Temporal at ${cloud.address} (tls, ca ${pki.caFile}, serverName ${pki.serverAltName}`;
    expect(client).toBe(`${where}, apiKey ${wrongKey}): the server refused the API key (temporal.apiKey / apiKeyFile)`);
    expect(workerError).toBe(client);
    expect(noKey).toBe(
      `${where}): the server wants credentials: an API key (temporal.apiKeyFile) or a client certificate`,
    );
    expect(cloud.unauthenticated).toBeGreaterThanOrEqual(refusedBefore + 3);
  });

  it('an API key without TLS (TLS turned off) is told the server speaks TLS', async () => {
    const config = loadConfig(
      cloudEnv({
        POD_RESPONDER_TEMPORAL_TLS: 'false',
        POD_RESPONDER_TEMPORAL_TLS_CA: '',
        POD_RESPONDER_TEMPORAL_TLS_SERVER_NAME: '',
      }),
    );
    expect(await connectError(config)).toBe(
      `cannot connect to Temporal at ${cloud.address} (no tls, apiKey ${apiKeyFile}): the server speaks TLS and this connection does not: remove temporal.tls.enabled: false`,
    );
  });
});
