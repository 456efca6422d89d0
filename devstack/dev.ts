/**
 * `npm start`: the local stack, a worker on it, and a demo miner pod to respond to.
 * Uses TEMPORAL_ADDRESS / KUBECONFIG / POD_RESPONDER_CONFIG when given, the local stack otherwise.
 */
import { writeFileSync } from 'node:fs';
import * as path from 'node:path';
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
    ...(stack.temporalUiUrl ? { TEMPORAL_UI_URL: process.env.TEMPORAL_UI_URL || stack.temporalUiUrl } : {}),
  };
  const config = loadConfig(env);
  installLogging(config.logLevel);
  const worker = await createWorker(config);
  void worker.run();

  const demo = [];
  if (config.direct.kubeconfig === stack.kubeconfigPath) {
    // A Deployment whose pod "runs a miner", and an alert about it, so the first try needs nothing else.
    const kube = fixtureKube(stack.kubeconfigPath);
    const ns = await createNamespace(kube, 'demo');
    const w = await createWorkload(kube, ns, 'Deployment');
    const file = path.join(stateDir, 'demo-alert.json');
    writeFileSync(file, JSON.stringify(alertFor(ns, w, { alertId: 'demo-1' }), null, 2));
    demo.push(
      `  demo: Deployment ${ns}/${w.name} with pod ${w.pod.metadata!.name}; an alert about it is in ${file}`,
      `  try:  export TEMPORAL_ADDRESS=${env.TEMPORAL_ADDRESS}`,
      `        npx tsx client/cli.ts respond ${file}`,
      `        npx tsx client/cli.ts status pod-incident:local:${ns}:${w.pod.metadata!.name}`,
      `        npx tsx client/cli.ts escalate pod-incident:local:${ns}:${w.pod.metadata!.name} --by you --reason "confirmed"`,
    );
  }
  console.log(
    [
      `worker polling task queue ${config.temporal.taskQueue} on ${config.temporal.address} (executor: ${config.executor}, kubeconfig: ${config.direct.kubeconfig})`,
      ...demo,
      '',
    ].join('\n'),
  );
}
