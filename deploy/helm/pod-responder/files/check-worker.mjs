// `helm test`: the workers poll. Asks Temporal (DescribeTaskQueue, with the workers' own connection settings) which
// pollers it has seen lately on the task queue, for workflow and for activity tasks, and requires every replica of
// this release's worker Deployment among them (a worker's identity is <pid>@<pod name>). Mounted at /app/helm-tests
// in the image, so it uses the image's modules (node_modules above it) and configuration code (absolute: a ConfigMap's
// files are symlinks, which Node resolves before relative imports).
import { Connection } from '@temporalio/client';
import { loadConfig } from '/app/dist/config/config.js';
import { temporalConnectionOptions } from '/app/dist/config/temporal-connection.js';

const { WORKER_POD_PREFIX: prefix, EXPECTED_WORKERS } = process.env;
const expected = Number(EXPECTED_WORKERS ?? '1');
const deadline = Date.now() + Number(process.env.CHECK_SECONDS ?? '60') * 1000;
const TYPES = { workflow: 1, activity: 2 }; // temporal.api.enums.v1.TaskQueueType

const config = loadConfig();
const { namespace, taskQueue } = config.temporal;
const connection = await Connection.connect(temporalConnectionOptions(config.temporal));

async function pollingPods(type) {
  const { pollers } = await connection.workflowService.describeTaskQueue({
    namespace,
    taskQueue: { name: taskQueue, kind: 1 },
    taskQueueType: type,
  });
  const recent = Date.now() - 90_000;
  return new Set(
    (pollers ?? [])
      .filter((p) => Number(p.lastAccessTime?.seconds ?? 0) * 1000 >= recent)
      .map((p) => p.identity?.split('@')[1] ?? '')
      .filter((host) => host.startsWith(prefix)),
  );
}

for (;;) {
  const seen = {};
  for (const [kind, type] of Object.entries(TYPES)) seen[kind] = [...(await pollingPods(type))].sort();
  const last = `task queue ${taskQueue} in ${namespace}: workflow pollers ${JSON.stringify(seen.workflow)}, activity pollers ${JSON.stringify(seen.activity)}`;
  if (seen.workflow.length >= expected && seen.activity.length >= expected) {
    console.log(`ok: ${last}`);
    break;
  }
  if (Date.now() > deadline) {
    console.error(`FAILED: expected ${expected} worker pod(s) named ${prefix}* polling; ${last}`);
    process.exit(1);
  }
  await new Promise((r) => setTimeout(r, 2000));
}
await connection.close();
