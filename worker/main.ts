import { mappedClusters } from '../activities/direct-executor.js';
import { loadConfig } from './config.js';
import { installLogging } from './logging.js';
import { createWorker } from './worker.js';

/** `pod-responder worker`: validates config, then polls until SIGINT/SIGTERM (the SDK drains on those). */
export async function runWorkerFromEnv(): Promise<void> {
  const config = loadConfig();
  installLogging(config.logLevel);
  const w = await createWorker(config);
  process.stderr.write(
    JSON.stringify({
      level: 'INFO',
      msg: 'worker started',
      temporal: config.temporal.address,
      namespace: config.temporal.namespace,
      taskQueue: config.temporal.taskQueue,
      executor: config.executor,
      ...(config.executor === 'direct' ? { clusters: mappedClusters(config.direct) } : {}),
    }) + '\n',
  );
  if (config.executor === 'direct' && mappedClusters(config.direct).length === 0) {
    process.stderr.write(
      JSON.stringify({
        level: 'WARN',
        msg: 'no cluster is mapped: every alert will end as needs-manual-action; set POD_RESPONDER_CLUSTER (direct.cluster) or direct.contexts',
      }) + '\n',
    );
  }
  await w.run();
}
