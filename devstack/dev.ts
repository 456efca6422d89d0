/**
 * `npm start`: the local stack, a worker on it, and a demo miner pod to respond to.
 * Uses TEMPORAL_ADDRESS / KUBECONFIG / POD_RESPONDER_CONFIG when given, the local stack otherwise.
 */
import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';
import { CoreV1Api } from '@kubernetes/client-node';
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { CRYPTO_MINING } from '../domain/routing.js';
import { loadConfig } from '../config/config.js';
import { installLogging } from '../worker/logging.js';
import { createWorker } from '../worker/worker.js';
import { startAllInOne } from '../client/all-in-one.js';
import { kubeConfigFromFile } from '../remediation/kube.js';
import { alertFor, createNamespace, createWorkload, fixtureKube, type TestKube, type Workload } from './fixtures.js';
import { IMAGES } from './node-images.js';
import type { RealNode } from './real-node.js';
import { startKubeletStandIn } from './kubelet-stand-in.js';
import type { Stack } from './stack.js';
import { AWS_DEFAULTS } from './aws.js';

/** The demo's evidence bucket, in the stack's moto S3. */
const EVIDENCE_BUCKET = 'pod-responder-evidence';

/**
 * The worker, the forwarder and the demo start as soon as Kubernetes serves and Temporal is ready; AWS (moto, for
 * the demo's evidence bundles) may still be seeding: its bucket is made, and its lines printed, when it is.
 */
export async function startDev(stack: Stack, stateDir: string, opts: { freePorts?: boolean } = {}): Promise<void> {
  const aws = stack.awsEndpoint ? { endpoint: stack.awsEndpoint, region: AWS_DEFAULTS.region } : undefined;
  if (aws) {
    // The worker's AWS SDK reads these; the bundle goes to moto's S3 through the stack's AWS endpoint.
    Object.assign(process.env, {
      AWS_ACCESS_KEY_ID: AWS_DEFAULTS.accessKeyId,
      AWS_SECRET_ACCESS_KEY: AWS_DEFAULTS.secretAccessKey,
      AWS_REGION: aws.region,
    });
  }
  const env = {
    ...process.env,
    TEMPORAL_ADDRESS: process.env.TEMPORAL_ADDRESS || stack.temporalAddress,
    KUBECONFIG: process.env.KUBECONFIG || stack.kubeconfigPath,
    // The demo alerts name the stack's cluster "local"; with your own KUBECONFIG, name yours.
    POD_RESPONDER_CLUSTER: process.env.POD_RESPONDER_CLUSTER || (process.env.KUBECONFIG ? '' : 'local'),
    ...(stack.temporalUiUrl ? { TEMPORAL_UI_URL: process.env.TEMPORAL_UI_URL || stack.temporalUiUrl } : {}),
    // The forwarder needs a credential per source; a fresh dev token unless one is given.
    POD_RESPONDER_FALCO_TOKEN: process.env.POD_RESPONDER_FALCO_TOKEN || `dev-${randomBytes(12).toString('hex')}`,
    POD_RESPONDER_FORWARDER_HOST: process.env.POD_RESPONDER_FORWARDER_HOST || '127.0.0.1',
    // --free-ports: any free port for the forwarder, and no metrics port (both unless given).
    ...(opts.freePorts
      ? {
          POD_RESPONDER_FORWARDER_PORT: process.env.POD_RESPONDER_FORWARDER_PORT || '0',
          POD_RESPONDER_METRICS_PORT: process.env.POD_RESPONDER_METRICS_PORT || '0',
        }
      : {}),
    // Next to the stack's state: alerts queued while its Temporal was down are delivered on the next start.
    POD_RESPONDER_SPOOL_PATH: process.env.POD_RESPONDER_SPOOL_PATH || path.join(stateDir, 'forwarder-spool.db'),
    ...(aws && !process.env.POD_RESPONDER_EVIDENCE_BUCKET
      ? { POD_RESPONDER_EVIDENCE_BUCKET: EVIDENCE_BUCKET, POD_RESPONDER_EVIDENCE_ENDPOINT: aws.endpoint }
      : {}),
  };
  const config = loadConfig(env);
  installLogging(config.logLevel);
  // The worker (loading its bundle, connecting) and the demo's objects at the same time.
  const demoLines =
    config.direct.kubeconfig === stack.kubeconfigPath
      ? createDemo(stack, stateDir, env.POD_RESPONDER_FALCO_TOKEN)
      : Promise.resolve(undefined);
  demoLines.catch(() => undefined); // awaited below
  // As `pod-responder all-in-one`: the forwarder on the worker's connection, so new incidents start eagerly.
  const { url: forwarderUrl } = await startAllInOne(config, createWorker);
  console.log(
    [
      `worker polling task queue ${config.temporal.taskQueue} on ${config.temporal.address} (executor: ${config.executor}, kubeconfig: ${config.direct.kubeconfig}), ${process.uptime().toFixed(1)}s after the start`,
      `forwarder on ${forwarderUrl} (falco token: ${env.POD_RESPONDER_FALCO_TOKEN}; metrics: ${forwarderUrl}/metrics; on the worker's connection: new incidents start eagerly)`,
    ].join('\n'),
  );
  // The demo's miner runs once the real node is Ready, which the worker does not wait for.
  const demo = (await demoLines)?.(forwarderUrl, env.TEMPORAL_ADDRESS);
  if (demo) console.log([`demo ready, ${process.uptime().toFixed(1)}s after the start`, ...demo].join('\n'));
  if (aws) console.log("  evidence: bundles go to moto's S3 once AWS is ready (a line below says so)\n");
  if (aws && stack.awsReady) {
    await stack.awsReady;
    const s3 = new S3Client({ region: aws.region, endpoint: aws.endpoint, forcePathStyle: true });
    await s3.send(new CreateBucketCommand({ Bucket: EVIDENCE_BUCKET })).catch(() => undefined); // kept from an earlier start
    s3.destroy();
    console.log(
      [
        `evidence bucket ${EVIDENCE_BUCKET} ready in moto's S3, ${process.uptime().toFixed(1)}s after the start`,
        `  status shows .isolation (the deny-all NetworkPolicy, released once the pod is gone) and .evidence.location;`,
        `  the bundle is in moto's S3: curl -s '${aws.endpoint}/${EVIDENCE_BUCKET}?list-type=2' | grep -o '<Key>[^<]*</Key>'`,
        '',
      ].join('\n'),
    );
  }
}

/** A Deployment whose pod "runs a miner", and an alert about it, so the first try needs nothing else; returns how to try it. */
async function createDemo(
  stack: Stack,
  stateDir: string,
  falcoToken: string,
): Promise<(forwarderUrl: string, temporalAddress: string) => string[]> {
  const kube = fixtureKube(stack.kubeconfigPath);
  const ns = await createNamespace(kube, 'demo');
  let w: Workload;
  let containerName = 'app';
  // The node may still be getting Ready (the worker does not wait for it; the miner does).
  const node = stack.node ?? (await stack.nodeReady);
  if (node) {
    // A real miner: a process on this machine, connected to the node's pool.
    w = await realMinerDeployment(kube, ns, node);
    containerName = 'miner';
  } else {
    w = await createWorkload(kube, ns, 'Deployment');
    // Its pod "runs" on a node whose kubelet is a stand-in serving the miner's logs, so the bundle has them.
    const core = kubeConfigFromFile(stack.kubeconfigPath).makeApiClient(CoreV1Api);
    const kubelet = await startKubeletStandIn(core);
    const p = w.pod.metadata!;
    await core.createNamespacedPodBinding({
      namespace: ns,
      name: p.name!,
      body: { metadata: { name: p.name! }, target: { apiVersion: 'v1', kind: 'Node', name: kubelet.node } },
    });
    kubelet.logs.set(
      `${ns}/${p.name}/app`,
      '[2026-11-28 12:00:01] xmrig 6.21 started\n[2026-11-28 12:00:03] use pool stratum+tcp://pool.example:3333\n[2026-11-28 12:00:09] accepted (1/0) diff 120001\n',
    );
  }
  const pod = w.pod.metadata!;
  const file = path.join(stateDir, 'demo-alert.json');
  writeFileSync(
    file,
    JSON.stringify(
      alertFor(ns, w, {
        alertId: 'demo-1',
        category: CRYPTO_MINING,
        container: { id: w.pod.containerId.slice(0, 12), name: containerName },
      }),
      null,
      2,
    ),
  );
  // The same detection as Falcosidekick would post it, for the forwarder.
  const falcoFile = path.join(stateDir, 'demo-falco.json');
  writeFileSync(
    falcoFile,
    JSON.stringify(
      {
        uuid: 'demo-falco-1',
        rule: 'Detect crypto miners using the Stratum protocol',
        priority: 'Critical',
        time: new Date().toISOString(),
        tags: ['T1496'],
        output: 'Possible miner running (demo)',
        output_fields: {
          'k8s.ns.name': ns,
          'k8s.pod.name': pod.name,
          'k8s.pod.uid': pod.uid,
          'container.id': w.pod.containerId.slice(0, 12),
          'proc.name': 'xmrig',
        },
      },
      null,
      2,
    ),
  );
  const incident = `pod-incident:local:${ns}:${pod.name}`;
  return (forwarderUrl, temporalAddress) => [
    `  demo: Deployment ${ns}/${w.name} with pod ${pod.name}; an alert about it is in ${file}`,
    ...(node ? [`  its miner runs on the real node: the pool's report is at ${node.pool.reportUrl}`] : []),
    `  try:  curl -s '${forwarderUrl}/v1/alerts/falco?cluster=local' -H 'authorization: Bearer ${falcoToken}' -H 'content-type: application/json' --data-binary @${falcoFile}`,
    `   or: export TEMPORAL_ADDRESS=${temporalAddress}`,
    `        npx pod-responder respond ${file}`,
    `        npx pod-responder status ${incident}`,
    `        npx pod-responder escalate ${incident} --by you --reason "confirmed"`,
  ];
}

/** The demo Deployment on the real node: one miner pod, running, as the Workload the demo's alert names. */
async function realMinerDeployment(kube: TestKube, namespace: string, node: RealNode): Promise<Workload> {
  const labels = { app: 'miner' };
  const d = await kube.apps.createNamespacedDeployment({
    namespace,
    body: {
      metadata: { name: 'miner' },
      spec: {
        replicas: 1,
        selector: { matchLabels: labels },
        template: {
          metadata: { labels },
          spec: {
            containers: [
              {
                name: 'miner',
                image: IMAGES.miner,
                imagePullPolicy: 'Never',
                env: [{ name: 'POOL', value: node.pool.address }],
              },
            ],
          },
        },
      },
    },
  });
  const deadline = Date.now() + 60_000;
  for (;;) {
    const pods = await kube.core.listNamespacedPod({ namespace, labelSelector: 'app=miner' });
    const pod = pods.items.find((p) => p.status?.containerStatuses?.[0]?.state?.running);
    const id = pod?.status?.containerStatuses?.[0]?.containerID?.replace(/^containerd:\/\//, '');
    if (pod && id)
      return { kind: 'Deployment', name: 'miner', uid: d.metadata!.uid!, pod: Object.assign(pod, { containerId: id }) };
    if (Date.now() > deadline) throw new Error(`devstack: the demo miner in ${namespace} is not running after 60 s`);
    await new Promise((r) => setTimeout(r, 250));
  }
}
