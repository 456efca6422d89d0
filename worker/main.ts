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
    }) + '\n',
  );
  await w.run();
}
