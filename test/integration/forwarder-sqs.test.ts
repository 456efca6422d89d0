/**
 * The SQS intake through moto's SQS (in the stack's moto server) with the real message shapes: Falcosidekick's
 * `aws.sqs` output (its webhook JSON as the body) and an EventBridge rule's target (the GuardDuty event envelope).
 * Temporal down, then back; a poison message; a duplicate delivery.
 */
import {
  CreateQueueCommand,
  GetQueueAttributesCommand,
  PurgeQueueCommand,
  ReceiveMessageCommand,
  SendMessageCommand,
  SQSClient,
} from '@aws-sdk/client-sqs';
import { Client, Connection } from '@temporalio/client';
import { randomBytes } from 'node:crypto';
import { describe, expect, inject, it } from 'vitest';
import { SqsIntake } from '../../forwarder/sqs-intake.js';
import { configSchema } from '../../config/config.js';
import { installLogging } from '../../worker/logging.js';
import { createWorker } from '../../worker/worker.js';
import { statusQuery } from '../../workflows/messages.js';
import { freshFixture } from '../support/alert-fixtures.js';
import { awsStack } from '../support/aws.js';
import { createNamespace, createPod, testKube } from '../support/cluster.js';
import { startForwarder } from '../support/forwarder.js';
import { ownTemporal } from '../../devstack/temporal-server.js';
import { directClusters } from '../support/responder.js';
import { until } from '../support/until.js';

const uid = () => randomBytes(4).toString('hex');

describe('SQS intake', () => {
  it(
    'keeps messages while Temporal is down, dead-letters a poison message with its reason, delivers all once it is back, a redelivery counted once',
    { timeout: 180_000 },
    async () => {
      installLogging('ERROR');
      const aws = awsStack();
      const sqs = new SQSClient({ region: aws.region, endpoint: aws.endpoint });
      const queue = async (name: string) =>
        (await sqs.send(new CreateQueueCommand({ QueueName: `${name}-${uid()}` }))).QueueUrl!;
      const [falcoQueue, guarddutyQueue, dlq] = await Promise.all([queue('falco'), queue('guardduty'), queue('dlq')]);
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

      const kube = testKube();
      const ns = await createNamespace(kube, 'sqs');
      const pods = await Promise.all(Array.from({ length: 4 }, (_, i) => createPod(kube, ns, `miner-${i}`)));
      // Falcosidekick's aws.sqs output: the same JSON its webhook posts, one event per message.
      const events = Array.from({ length: 20 }, (_, n) => {
        const p = pods[n % 4]!;
        return freshFixture('falco-stratum', {
          cluster: 'sqs',
          namespace: ns,
          pod: p.metadata!.name!,
          id: `e${n}-${uid()}`,
          containerId: p.containerId,
          containerName: 'app',
          uid: p.metadata!.uid,
        });
      });
      for (const e of events)
        await sqs.send(new SendMessageCommand({ QueueUrl: falcoQueue, MessageBody: JSON.stringify(e) }));
      await sqs.send(
        new SendMessageCommand({
          QueueUrl: falcoQueue,
          MessageBody: JSON.stringify({ ...events[0], uuid: crypto.randomUUID() }),
        }),
      ); // at least once
      await sqs.send(
        new SendMessageCommand({ QueueUrl: falcoQueue, MessageBody: JSON.stringify({ rule: 'x', priority: 'Loud' }) }),
      );
      const gd = freshFixture('guardduty-miner-executed', {
        cluster: 'sqs',
        namespace: ns,
        pod: pods[0]!.metadata!.name!,
        id: `gd-${uid()}`,
        containerId: pods[0]!.containerId,
        containerName: 'app',
      });
      await sqs.send(new SendMessageCommand({ QueueUrl: guarddutyQueue, MessageBody: JSON.stringify(gd) })); // an EventBridge target gets the whole event

      const temporal = await ownTemporal(); // down
      const fwd = await startForwarder({
        temporalAddress: temporal.address,
        forwarder: { temporalTimeoutMs: 500 },
        config: {
          eks: { endpoint: aws.endpoint },
          policy: { requireApprovalFor: ['terminate-pod'], suspendOnSeverity: [] },
        },
      });
      const queues = [
        {
          url: falcoQueue,
          source: 'falco' as const,
          cluster: 'sqs',
          deadLetterUrl: dlq,
          waitSeconds: 1,
          retrySeconds: 1,
        },
        { url: guarddutyQueue, source: 'guardduty' as const, waitSeconds: 1, retrySeconds: 1 },
      ].map((q) => SqsIntake.create(q, fwd.config, fwd.pipeline, fwd.metrics, fwd.app.log));
      for (const q of queues) q.start();
      const metrics = async () => (await fetch(`${fwd.url}/metrics`)).text();
      try {
        // The poison message is moved at once, with why.
        const dead = await until(
          'poison dead-lettered',
          async () =>
            (
              await sqs.send(
                new ReceiveMessageCommand({ QueueUrl: dlq, MessageAttributeNames: ['All'], WaitTimeSeconds: 1 }),
              )
            ).Messages?.[0],
        );
        expect(dead.MessageAttributes?.['pod-responder-reason']?.StringValue).toMatch(
          /^invalid alert: .*priority: must be a Falco priority \(Emergency, Alert, Critical, Error, Warning, Notice, Informational, Debug\)/,
        );
        expect(dead.MessageAttributes?.['pod-responder-source-queue']?.StringValue).toBe(falcoQueue);
        // Temporal down: each message is received, not taken, and left; none is deleted.
        await until('retried while Temporal is down', async () =>
          /sqs_messages_retried_total\{queue="[^"]+falco[^"]*"\} (2[1-9]|[3-9]\d|\d{3,})/.test(await metrics()),
        );
        // moto counts a message whose hiding just ended both visible and in flight until the next receive: settle.
        await until('21 Falco messages kept', async () => (await depth(falcoQueue)) === 21, 15_000);
        await until('the GuardDuty message kept', async () => (await depth(guarddutyQueue)) === 1, 15_000);
        // The only message deleted is the poison one, once it was in the dead-letter queue.
        expect(await metrics()).toMatch(/sqs_messages_deleted_total\{queue="[^"]+falco[^"]*"\} 1\n/);
        expect(await metrics()).not.toMatch(/sqs_messages_deleted_total\{queue="[^"]+guardduty[^"]*"\}/);

        temporal.start();
        const connection = await until('Temporal up', () => Connection.connect({ address: temporal.address }));
        const worker = await until('worker up', () =>
          createWorker(
            configSchema.parse({
              temporal: { address: temporal.address, taskQueue: fwd.config.temporal.taskQueue },
              direct: { kubeconfig: inject('kubeconfigPath'), ...directClusters(['sqs']) },
            }),
          ),
        );
        void worker.run();
        try {
          await until(
            'queues emptied',
            async () => (await depth(falcoQueue)) === 0 && (await depth(guarddutyQueue)) === 0,
            90_000,
          );
          const client = new Client({ connection });
          for (const [i, p] of pods.entries()) {
            const id = `pod-incident:sqs:${ns}:${p.metadata!.name}`;
            const expected = i === 0 ? 6 : 5; // pod 0 also has the GuardDuty finding
            const s = await until(`${id} counted`, async () => {
              const st = await client.workflow.getHandle(id).query(statusQuery);
              return st.alerts.count >= expected && st;
            });
            expect(s.alerts.count).toBe(expected); // the redelivered event is counted once
          }
        } finally {
          await worker.shutdown();
          await connection.close();
        }
        const m = await metrics();
        expect(m).toMatch(/sqs_messages_dead_lettered_total\{queue="[^"]+"\} 1/);
      } finally {
        for (const q of queues) await q.stop();
        await fwd.close();
        await temporal.stop();
        sqs.destroy();
      }
    },
  );

  it(
    'an entry SQS refuses to delete (the batch call succeeds) is logged with its code and counted, never counted as deleted',
    { timeout: 60_000 },
    async () => {
      const aws = awsStack();
      const sqs = new SQSClient({ region: aws.region, endpoint: aws.endpoint });
      const url = (await sqs.send(new CreateQueueCommand({ QueueName: `settle-${uid()}` }))).QueueUrl!;
      // Temporal stands aside: this sink takes the alert only when the test says, so the queue can change meanwhile.
      let arrived!: () => void;
      const submitted = new Promise<void>((r) => (arrived = r));
      let release!: () => void;
      const held = new Promise<void>((r) => (release = r));
      const fwd = await startForwarder({
        config: { eks: { endpoint: aws.endpoint } },
        sink: () => ({
          submit: async () => {
            arrived();
            await held;
            return { workflowId: 'w', runId: 'r', uiUrl: '' };
          },
          ready: async () => true,
          close: async () => {},
        }),
      });
      const intake = SqsIntake.create(
        { url, source: 'falco', cluster: 'settle', waitSeconds: 1, retrySeconds: 1 },
        fwd.config,
        fwd.pipeline,
        fwd.metrics,
        fwd.app.log,
      );
      const metrics = async () => (await fetch(`${fwd.url}/metrics`)).text();
      try {
        const sent = await sqs.send(
          new SendMessageCommand({
            QueueUrl: url,
            MessageBody: JSON.stringify(
              freshFixture('falco-stratum', {
                cluster: 'settle',
                namespace: 'shop',
                pod: `miner-${uid()}`,
                id: `s-${uid()}`,
              }),
            ),
          }),
        );
        intake.start();
        await submitted;
        // The message goes before the intake deletes it: SQS answers the batch with that entry in Failed.
        await sqs.send(new PurgeQueueCommand({ QueueUrl: url }));
        release();
        const q = url.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
        await until(
          'the failed entry counted',
          async () =>
            new RegExp(
              `sqs_messages_settle_failed_total\\{queue="${q}",action="delete",code="ReceiptHandleIsInvalid"\\} 1`,
            ).test(await metrics()),
          15_000,
        );
        expect(await metrics()).not.toMatch(new RegExp(`sqs_messages_deleted_total\\{queue="${q}"\\}`));
        const line = fwd.logs.map((l) => JSON.parse(l) as Record<string, unknown>).find((l) => l.action === 'delete');
        expect(line).toMatchObject({
          level: 'WARN',
          queue: url,
          messageId: sent.MessageId,
          code: 'ReceiptHandleIsInvalid',
          msg: 'sqs message not deleted: it is received again when its visibility timeout ends (its alerts are answered as duplicates)',
        });
      } finally {
        release();
        await intake.stop();
        await fwd.close();
        sqs.destroy();
      }
    },
  );
});
