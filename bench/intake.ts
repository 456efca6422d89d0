/**
 * `npm run bench:intake`: alerts that must not be lost when Temporal is away.
 *  - Spool: BENCH_SPOOL_ALERTS Falcosidekick alerts (default 20000) over 200 pods, 64 senders, posted to a
 *    forwarder (its own process) while Temporal is down: accepted/s (each 202 `queued` once on disk).
 *    Then Temporal starts: how fast the spool drains into it, and whether every queued alert is in a history.
 *  - SQS: BENCH_SQS_ALERTS Falcosidekick messages (default 1000: moto's SQS slows with queue length) over 50 pods in moto's SQS, consumed by the
 *    forwarder into Temporal: alerts/s end to end, beside a bare consumer (receive 10, delete 10, nothing else)
 *    on the same moto in the same run, which is the floor moto allows.
 */
import {
  CreateQueueCommand,
  DeleteMessageBatchCommand,
  GetQueueAttributesCommand,
  ReceiveMessageCommand,
  SendMessageBatchCommand,
  SQSClient,
} from '@aws-sdk/client-sqs';
import { Client, Connection } from '@temporalio/client';
import { defaultPayloadConverter, type Payload } from '@temporalio/common';
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import { startStack, type StackAws } from '../devstack/stack.js';
import { ownTemporal } from '../devstack/temporal-server.js';
import type { PodAlert } from '../domain/alert.js';
import { normalizeBody } from '../domain/sources/index.js';
import { eachLimited, envNumber, runAlone, sleep, spawnTs, startForwarderProcess } from './processes.js';
import type { StormClientOptions, StormClientReport } from './storm-client.js';

export interface IntakeResult {
  spool: {
    alerts: number;
    accepted: number;
    acceptPerSecond: number;
    p99Ms: number;
    drainSeconds: number;
    drainPerSecond: number;
    inHistories: number;
    lost: number;
    answers503: number;
  };
  sqs: {
    alerts: number;
    seconds: number;
    perSecond: number;
    floorPerSecond: number;
    inHistories: number;
    lost: number;
  };
}

const sqsMetric = (text: string, name: string) =>
  Number(new RegExp(`^pod_responder_forwarder_${name} (\\S+)`, 'm').exec(text)?.[1] ?? NaN);

/** Every alert ID that reached a history on this task queue, through `alerts` signals. */
async function alertIdsIn(client: Client, taskQueue: string): Promise<Set<string>> {
  const runs: { workflowId: string; runId: string }[] = [];
  for await (const wf of client.workflow.list({ query: `TaskQueue = "${taskQueue}"` }))
    runs.push({ workflowId: wf.workflowId, runId: wf.runId });
  const ids = new Set<string>();
  await eachLimited(runs, 16, async ({ workflowId, runId }) => {
    for (const e of (await client.workflow.getHandle(workflowId, runId).fetchHistory()).events ?? []) {
      const s = e.workflowExecutionSignaledEventAttributes;
      if (s?.signalName === 'alerts')
        for (const a of defaultPayloadConverter.fromPayload<PodAlert[]>(s.input!.payloads![0] as Payload))
          ids.add(a.alertId);
    }
  });
  return ids;
}

async function benchSpool(alerts: number, log: (l: string) => void): Promise<IntakeResult['spool']> {
  const dir = mkdtempSync(path.join(tmpdir(), 'pod-responder-intake-'));
  const temporal = await ownTemporal(); // down while the alerts arrive
  const taskQueue = `intake-${randomBytes(4).toString('hex')}`;
  const token = randomBytes(16).toString('hex');
  const configFile = path.join(dir, 'forwarder.json');
  writeFileSync(configFile, JSON.stringify({ forwarder: { spool: { path: path.join(dir, 'spool.db') } } }));
  const fwd = await startForwarderProcess({ temporalAddress: temporal.address, taskQueue, token, configFile });
  let connection: Connection | undefined;
  try {
    log(`spool: ${alerts} alerts over 200 pods while Temporal is down`);
    const clientOpts: StormClientOptions = {
      url: `${fwd.base}/v1/alerts/falco?cluster=intake`,
      token,
      alerts,
      pods: 200,
      concurrency: 64,
      resendRatio: 0,
    };
    const gen = spawnTs('bench/storm-client.ts', [JSON.stringify(clientOpts)], process.env);
    if ((await gen.exited) !== 0) throw new Error(`load generator failed:\n${gen.err()}`);
    const report = JSON.parse(gen.out()) as StormClientReport;
    log(`spool: ${report.accepted} queued in ${report.wallSeconds.toFixed(1)} s; starting Temporal`);
    const t0 = performance.now();
    temporal.start();
    for (const deadline = Date.now() + 600_000; Date.now() < deadline; await sleep(250)) {
      const text = await (await fetch(`${fwd.base}/metrics`)).text();
      if (sqsMetric(text, 'spool_depth') === 0) break;
    }
    const drainSeconds = (performance.now() - t0) / 1000;
    connection = await Connection.connect({ address: temporal.address });
    const seen = await alertIdsIn(new Client({ connection }), taskQueue);
    return {
      alerts,
      accepted: report.accepted,
      acceptPerSecond: report.accepted / report.wallSeconds,
      p99Ms: report.latencyMs.p99,
      drainSeconds,
      drainPerSecond: report.accepted / drainSeconds,
      inHistories: seen.size,
      lost: report.acceptedIds.filter((id) => !seen.has(id)).length,
      answers503: report.retries,
    };
  } finally {
    await fwd.stop();
    await connection?.close();
    await temporal.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Falcosidekick's aws.sqs output: the webhook's JSON as the body, one event per message. */
function falcoMessage(i: number, pods: number): string {
  return JSON.stringify({
    hostname: 'ip-10-0-1-17',
    output: `Outbound connection to a Stratum pool (connection ${i})`,
    output_fields: {
      'container.id': 'abcdef012345',
      'k8s.ns.name': 'intake',
      'k8s.pod.name': `miner-${i % pods}`,
      'proc.name': 'xmrig',
    },
    priority: 'Critical',
    rule: 'Detect crypto miners using the Stratum protocol',
    source: 'syscall',
    tags: ['T1496'],
    time: new Date().toISOString().replace('Z', `${String(i % 1e6).padStart(6, '0')}Z`),
    uuid: randomUUID(),
  });
}

async function benchSqs(
  alerts: number,
  aws: StackAws,
  temporalAddress: string,
  log: (l: string) => void,
): Promise<IntakeResult['sqs']> {
  const sqs = new SQSClient({
    region: aws.region,
    endpoint: aws.endpoint,
    credentials: { accessKeyId: aws.accessKeyId, secretAccessKey: aws.secretAccessKey },
  });
  const fill = async (name: string) => {
    const url = (await sqs.send(new CreateQueueCommand({ QueueName: `${name}-${randomBytes(4).toString('hex')}` })))
      .QueueUrl!;
    const bodies = Array.from({ length: alerts }, (_, i) => falcoMessage(i, 50));
    const batches = Array.from({ length: Math.ceil(alerts / 10) }, (_, b) => bodies.slice(b * 10, b * 10 + 10));
    await eachLimited(batches, 8, async (batch) => {
      await sqs.send(
        new SendMessageBatchCommand({
          QueueUrl: url,
          Entries: batch.map((MessageBody, i) => ({ Id: String(i), MessageBody })),
        }),
      );
    });
    return { url, bodies };
  };
  const depth = async (url: string) => {
    const a = (
      await sqs.send(
        new GetQueueAttributesCommand({
          QueueUrl: url,
          AttributeNames: ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible'],
        }),
      )
    ).Attributes!;
    return Number(a.ApproximateNumberOfMessages) + Number(a.ApproximateNumberOfMessagesNotVisible);
  };

  log(`sqs: filling two queues with ${alerts} Falcosidekick messages each`);
  const floorQueue = await fill('floor');
  const { url, bodies } = await fill('falco');
  // The floor: one consumer that only receives and deletes, as fast as moto answers.
  const tFloor = performance.now();
  for (let done = 0; done < alerts;) {
    const msgs =
      (
        await sqs.send(
          new ReceiveMessageCommand({ QueueUrl: floorQueue.url, MaxNumberOfMessages: 10, WaitTimeSeconds: 1 }),
        )
      ).Messages ?? [];
    if (!msgs.length) break;
    await sqs.send(
      new DeleteMessageBatchCommand({
        QueueUrl: floorQueue.url,
        Entries: msgs.map((m, i) => ({ Id: String(i), ReceiptHandle: m.ReceiptHandle! })),
      }),
    );
    done += msgs.length;
  }
  const floorSeconds = (performance.now() - tFloor) / 1000;

  const dir = mkdtempSync(path.join(tmpdir(), 'pod-responder-intake-'));
  const taskQueue = `intake-sqs-${randomBytes(4).toString('hex')}`;
  const configFile = path.join(dir, 'forwarder.json');
  writeFileSync(
    configFile,
    JSON.stringify({
      forwarder: { spool: { enabled: false }, sqs: [{ url, source: 'falco', cluster: 'intake', waitSeconds: 1 }] },
    }),
  );
  const env = {
    POD_RESPONDER_AWS_ENDPOINT: aws.endpoint,
    AWS_ACCESS_KEY_ID: aws.accessKeyId,
    AWS_SECRET_ACCESS_KEY: aws.secretAccessKey,
    AWS_REGION: aws.region,
  };
  const t0 = performance.now();
  const fwd = await startForwarderProcess({
    temporalAddress,
    taskQueue,
    token: randomBytes(16).toString('hex'),
    configFile,
    env,
  });
  const connection = await Connection.connect({ address: temporalAddress });
  try {
    while ((await depth(url)) > 0) await sleep(200);
    const seconds = (performance.now() - t0) / 1000;
    const expected = bodies.map((b) => {
      const [n] = normalizeBody('falco', JSON.parse(b), { cluster: 'intake' }, 1);
      return n!.kind === 'alert' ? n!.alert.alertId : '';
    });
    const seen = await alertIdsIn(new Client({ connection }), taskQueue);
    return {
      alerts,
      seconds,
      perSecond: alerts / seconds,
      floorPerSecond: alerts / floorSeconds,
      inHistories: seen.size,
      lost: expected.filter((id) => !seen.has(id)).length,
    };
  } finally {
    await fwd.stop();
    await connection.close();
    sqs.destroy();
    rmSync(dir, { recursive: true, force: true });
  }
}

export async function benchIntake(opts: { log?: (l: string) => void } = {}): Promise<IntakeResult> {
  const log = opts.log ?? (() => {});
  const spool = await benchSpool(envNumber('BENCH_SPOOL_ALERTS', 20_000), log);
  const stateDir = mkdtempSync(path.join(tmpdir(), 'pod-responder-intake-stack-'));
  const stack = await startStack({ stateDir, headless: true, aws: true, log: () => {} });
  try {
    const sqs = await benchSqs(envNumber('BENCH_SQS_ALERTS', 1000), stack.aws!, stack.temporalAddress, log);
    return { spool, sqs };
  } finally {
    await stack.stop();
    rmSync(stateDir, { recursive: true, force: true });
  }
}

export function intakeFailures(r: IntakeResult): string[] {
  return [
    ...(r.spool.accepted !== r.spool.alerts ? [`spool: ${r.spool.accepted} of ${r.spool.alerts} queued`] : []),
    ...(r.spool.answers503 ? [`spool: ${r.spool.answers503} answers were 503`] : []),
    ...(r.spool.lost ? [`spool: ${r.spool.lost} queued alerts in no history`] : []),
    ...(r.sqs.lost ? [`sqs: ${r.sqs.lost} alerts in no history`] : []),
  ];
}

export function formatIntake(r: IntakeResult): string {
  return `
## intake while Temporal is away: the spool, and SQS

| | |
| --- | --- |
| spool: alerts answered 202 \`queued\` while Temporal was down (64 senders, 200 pods) | ${r.spool.accepted} of ${r.spool.alerts}: ${r.spool.acceptPerSecond.toFixed(0)}/s, p99 ${r.spool.p99Ms.toFixed(1)} ms |
| spool: drained into Temporal once it started | ${r.spool.drainSeconds.toFixed(1)} s: ${r.spool.drainPerSecond.toFixed(0)} alerts/s |
| spool: queued alerts found in histories / lost | ${r.spool.inHistories} / ${r.spool.lost} |
| SQS: ${r.sqs.alerts} Falcosidekick messages consumed into Temporal (moto) | ${r.sqs.seconds.toFixed(1)} s: ${r.sqs.perSecond.toFixed(0)} alerts/s |
| SQS: floor, a bare consumer (receive 10, delete 10) on the same moto | ${r.sqs.floorPerSecond.toFixed(0)} messages/s |
| SQS: alerts found in histories / lost | ${r.sqs.inHistories} / ${r.sqs.lost} |
`;
}

if (process.argv[1] && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) {
  runAlone(
    'intake',
    () => benchIntake({ log: (line) => process.stderr.write(`[bench] ${line}\n`) }),
    formatIntake,
    intakeFailures,
  );
}
