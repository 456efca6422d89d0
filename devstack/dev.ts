/**
 * `npm start`: the local stack, a worker on it, and a demo miner pod to respond to.
 * Uses TEMPORAL_ADDRESS / KUBECONFIG / POD_RESPONDER_CONFIG when given, the local stack otherwise.
 */
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { createForwarder } from '../client/forwarder/server.js';
import { Spool } from '../client/forwarder/spool.js';
import { TemporalGateway } from '../client/forwarder/temporal-gateway.js';
import { CRYPTO_MINING } from '../domain/routing.js';
import { loadConfig } from '../worker/config.js';
import { installLogging } from '../worker/logging.js';
import { createWorker } from '../worker/worker.js';
import { alertFor, createNamespace, createWorkload, fixtureKube } from './fixtures.js';
import type { Stack } from './stack.js';

export async function startDev(stack: Stack, stateDir: string): Promise<void> {
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
    // Next to the stack's state: alerts queued while its Temporal was down are delivered on the next start.
    POD_RESPONDER_SPOOL_PATH: process.env.POD_RESPONDER_SPOOL_PATH || path.join(stateDir, 'forwarder-spool.db'),
  };
  const config = loadConfig(env);
  installLogging(config.logLevel);
  const worker = await createWorker(config);
  void worker.run();
  const spool = Spool.open(config.forwarder.spool.path, { maxEntries: config.forwarder.spool.maxEntries });
  const forwarder = createForwarder({ config, sink: TemporalGateway.create(config), spool });
  const forwarderUrl = await forwarder.listen();

  const demo = [];
  if (config.direct.kubeconfig === stack.kubeconfigPath) {
    // A Deployment whose pod "runs a miner", and an alert about it, so the first try needs nothing else.
    const kube = fixtureKube(stack.kubeconfigPath);
    const ns = await createNamespace(kube, 'demo');
    const w = await createWorkload(kube, ns, 'Deployment');
    const file = path.join(stateDir, 'demo-alert.json');
    writeFileSync(file, JSON.stringify(alertFor(ns, w, { alertId: 'demo-1', category: CRYPTO_MINING }), null, 2));
    // The same detection as Falcosidekick would post it, for the forwarder.
    const falcoFile = path.join(stateDir, 'demo-falco.json');
    const pod = w.pod.metadata!;
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
          output_fields: { 'k8s.ns.name': ns, 'k8s.pod.name': pod.name, 'k8s.pod.uid': pod.uid, 'container.id': w.pod.containerId.slice(0, 12), 'proc.name': 'xmrig' },
        },
        null,
        2,
      ),
    );
    demo.push(
      `  demo: Deployment ${ns}/${w.name} with pod ${w.pod.metadata!.name}; an alert about it is in ${file}`,
      `  try:  curl -s '${forwarderUrl}/v1/alerts/falco?cluster=local' -H 'authorization: Bearer ${env.POD_RESPONDER_FALCO_TOKEN}' -H 'content-type: application/json' --data-binary @${falcoFile}`,
      `   or: export TEMPORAL_ADDRESS=${env.TEMPORAL_ADDRESS}`,
      `        npx tsx client/cli.ts respond ${file}`,
      `        npx tsx client/cli.ts status pod-incident:local:${ns}:${w.pod.metadata!.name}`,
      `        npx tsx client/cli.ts escalate pod-incident:local:${ns}:${w.pod.metadata!.name} --by you --reason "confirmed"`,
    );
  }
  console.log(
    [
      `worker polling task queue ${config.temporal.taskQueue} on ${config.temporal.address} (executor: ${config.executor}, kubeconfig: ${config.direct.kubeconfig})`,
      `forwarder on ${forwarderUrl} (falco token: ${env.POD_RESPONDER_FALCO_TOKEN}; metrics: ${forwarderUrl}/metrics)`,
      ...demo,
      '',
    ].join('\n'),
  );
}
