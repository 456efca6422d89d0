/**
 * Alerts from an SQS queue: Falcosidekick's `aws.sqs` output (the webhook's JSON as the body), or an
 * EventBridge rule targeting the queue (the GuardDuty event envelope as the body). The queue is the
 * durable store: a message is deleted only once its alerts were accepted by Temporal (or answered as
 * ignored, duplicate or saturated); while Temporal does not take them it stays, hidden for
 * `retrySeconds` and then tried again. A message that is not a valid alert goes to the dead-letter
 * queue with the reason, never round and round.
 */
import {
  ChangeMessageVisibilityBatchCommand,
  DeleteMessageBatchCommand,
  ReceiveMessageCommand,
  SendMessageCommand,
  SQSClient,
  type Message,
} from '@aws-sdk/client-sqs';
import sjson from 'secure-json-parse';
import { normalizeBody } from '../domain/sources/index.js';
import { InputError } from '../domain/validation-errors.js';
import type { Config } from '../config/config.js';
import type { Metrics } from './metrics.js';
import { refusal, type Sender } from './credentials.js';
import { clip, type AlertLog, type AlertPipeline } from './pipeline.js';

export type SqsQueueConfig = Config['forwarder']['sqs'][number];

/** The longest a message may be hidden (SQS's limit): a poison message with no DLQ is tried twice a day at most. */
const MAX_VISIBILITY_SECONDS = 43_200;

type Verdict = { action: 'delete' } | { action: 'retry' } | { action: 'dead-letter'; reason: string };

export class SqsIntake {
  private running = false;
  private loop: Promise<void> | null = null;
  private readonly abort = new AbortController();
  /** The queue as a sender: its bindings, and its own rate limit (the source's figures). */
  private readonly sender: Sender;

  constructor(
    private readonly queue: SqsQueueConfig,
    private readonly client: SQSClient,
    private readonly pipeline: AlertPipeline,
    private readonly metrics: Metrics,
    private readonly log: AlertLog,
    private readonly maxBatch: number,
    limits: Pick<Sender, 'ratePerSecond' | 'burst'>,
  ) {
    this.sender = {
      source: queue.source,
      name: `sqs:${queue.url}`,
      clusters: queue.clusters,
      namespaces: queue.namespaces,
      ...limits,
      overRate: 'refuse',
    };
    pipeline.register(this.sender);
  }

  static create(
    queue: SqsQueueConfig,
    config: Config,
    pipeline: AlertPipeline,
    metrics: Metrics,
    log: AlertLog,
  ): SqsIntake {
    const region = queue.region ?? process.env.AWS_REGION ?? regionOfQueue(queue.url);
    const client = new SQSClient({
      ...(region ? { region } : {}),
      ...(config.eks.endpoint ? { endpoint: config.eks.endpoint } : {}),
    });
    const { ratePerSecond, burst } = config.forwarder.sources[queue.source];
    return new SqsIntake(queue, client, pipeline, metrics, log, config.forwarder.maxBatch, { ratePerSecond, burst });
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.loop = this.poll();
  }

  /** Ends the long poll at once; messages being handled finish (and are deleted or left) first. */
  async stop(): Promise<void> {
    this.running = false;
    this.abort.abort();
    await this.loop;
    this.client.destroy();
  }

  private async poll(): Promise<void> {
    let failures = 0;
    while (this.running) {
      let messages: Message[];
      try {
        const res = await this.client.send(
          new ReceiveMessageCommand({
            QueueUrl: this.queue.url,
            MaxNumberOfMessages: 10,
            WaitTimeSeconds: this.queue.waitSeconds,
            // How often each was received: a message Temporal keeps refusing is hidden longer each time,
            // so the others in the queue get their turn.
            MessageSystemAttributeNames: ['ApproximateReceiveCount'],
            AttributeNames: ['All'], // the older name of the same request, for SQS emulators that know only it
          }),
          { abortSignal: this.abort.signal },
        );
        messages = res.Messages ?? [];
        failures = 0;
      } catch (err) {
        if (!this.running) break;
        failures += 1;
        this.log.warn(
          { queue: this.queue.url, error: clip(String((err as Error).message ?? err), 300) },
          'sqs receive failed',
        );
        await new Promise((r) => setTimeout(r, Math.min(1000 * 2 ** failures, 30_000)));
        continue;
      }
      if (!messages.length) continue;
      this.metrics.sqsReceived.inc({ queue: this.queue.url }, messages.length);
      const verdicts = await Promise.all(
        messages.map((m) =>
          this.handle(m).catch((err: unknown): Verdict => {
            this.log.warn(
              {
                queue: this.queue.url,
                messageId: m.MessageId,
                error: clip(String((err as Error)?.message ?? err), 300),
              },
              'sqs message failed; will retry',
            );
            return { action: 'retry' };
          }),
        ),
      );
      // A settle that fails leaves the messages to reappear: deliveries deduplicate.
      await this.settle(messages, verdicts).catch((err: unknown) =>
        this.log.warn(
          { queue: this.queue.url, error: clip(String((err as Error)?.message ?? err), 300) },
          'sqs delete or retry failed',
        ),
      );
    }
  }

  private async handle(m: Message): Promise<Verdict> {
    const source = this.queue.source;
    let body: unknown;
    try {
      body = sjson.parse(m.Body ?? '', undefined, { protoAction: 'error', constructorAction: 'error' });
    } catch (err) {
      return { action: 'dead-letter', reason: `invalid JSON: ${(err as Error).message}` };
    }
    // An EventBridge target gets the event as it is; nothing to unwrap. Falco's cluster comes from the queue's config.
    const query =
      source === 'falco'
        ? { cluster: this.queue.cluster, ...(this.queue.region ? { region: this.queue.region } : {}) }
        : {};
    let items;
    try {
      items = normalizeBody(source, body, query, this.maxBatch);
    } catch (err) {
      if (err instanceof InputError)
        return { action: 'dead-letter', reason: `invalid ${err.what}: ${err.errors.join('; ')}` };
      throw err;
    }
    // Like a 403: the queue may not report on that cluster or namespace, and retrying will not change it.
    const forbidden = items.flatMap((item) =>
      item.kind === 'alert' ? [refusal(this.sender, item.alert)].filter((r) => r !== null) : [],
    );
    if (forbidden.length) return { action: 'dead-letter', reason: `not allowed: ${forbidden.slice(0, 5).join('; ')}` };
    this.metrics.received.inc({ source }, items.length);
    const outcomes = await Promise.all(items.map((item) => this.pipeline.deliver(this.sender, item, false)));
    // Not taken now (Temporal unavailable, a new incident over the rate): the queue keeps it for later.
    return outcomes.some((o) => o.outcome === 'failed' || o.outcome === 'rate-limited')
      ? { action: 'retry' }
      : { action: 'delete' };
  }

  private async settle(messages: Message[], verdicts: Verdict[]): Promise<void> {
    const queue = this.queue.url;
    const remove: Message[] = [];
    const hide: { m: Message; seconds: number }[] = [];
    for (const [i, v] of verdicts.entries()) {
      const m = messages[i]!;
      if (v.action === 'delete') remove.push(m);
      else if (v.action === 'retry') hide.push({ m, seconds: this.retryDelay(m) });
      else if (await this.deadLetter(m, v.reason)) remove.push(m);
      else hide.push({ m, seconds: MAX_VISIBILITY_SECONDS });
    }
    if (remove.length) {
      const deleted = await this.batch('delete', remove, (entries) =>
        this.client.send(
          new DeleteMessageBatchCommand({
            QueueUrl: queue,
            Entries: entries.map(({ id, m }) => ({ Id: id, ReceiptHandle: m.ReceiptHandle! })),
          }),
        ),
      );
      if (deleted) this.metrics.sqsDeleted.inc({ queue }, deleted);
    }
    if (hide.length) {
      const seconds = new Map(hide.map((h) => [h.m, h.seconds]));
      const hidden = await this.batch(
        'hide',
        hide.map((h) => h.m),
        (entries) =>
          this.client.send(
            new ChangeMessageVisibilityBatchCommand({
              QueueUrl: queue,
              Entries: entries.map(({ id, m }) => ({
                Id: id,
                ReceiptHandle: m.ReceiptHandle!,
                VisibilityTimeout: seconds.get(m)!,
              })),
            }),
          ),
      );
      if (hidden) this.metrics.sqsRetried.inc({ queue }, hidden);
    }
  }

  /**
   * One batch call, whose entries can fail one by one while the call succeeds: those SQS calls its own
   * fault (throttling, an internal error) are tried again once; what still fails is logged with its code
   * and counted, never counted as done. A message not deleted is received again once its visibility
   * timeout ends, and its alerts are then answered as duplicates. Returns how many entries succeeded.
   */
  private async batch(
    action: 'delete' | 'hide',
    messages: Message[],
    send: (
      entries: { id: string; m: Message }[],
    ) => Promise<{ Failed?: { Id?: string; SenderFault?: boolean; Code?: string; Message?: string }[] | undefined }>,
  ): Promise<number> {
    const queue = this.queue.url;
    let pending = messages.map((m, i) => ({ id: String(i), m }));
    let failed: { id: string; m: Message; code: string; message: string }[] = [];
    for (let attempt = 0; attempt < 2 && pending.length; attempt++) {
      if (attempt) await new Promise((r) => setTimeout(r, 200));
      const res = await send(pending);
      const byId = new Map(pending.map((e) => [e.id, e]));
      const now = (res.Failed ?? []).map((f) => ({
        ...byId.get(f.Id ?? '')!,
        code: f.Code ?? 'Unknown',
        message: f.Message ?? '',
        retry: f.SenderFault === false,
      }));
      failed = [...failed, ...now.filter((f) => !f.retry || attempt === 1)];
      pending = now.filter((f) => f.retry && attempt === 0).map(({ id, m }) => ({ id, m }));
    }
    for (const f of failed) {
      this.metrics.sqsSettleFailed.inc({ queue, action, code: f.code });
      this.log.warn(
        { queue, messageId: f.m.MessageId, action, code: f.code, error: clip(f.message, 300) },
        action === 'delete'
          ? 'sqs message not deleted: it is received again when its visibility timeout ends (its alerts are answered as duplicates)'
          : 'sqs message not hidden for its retry delay: it is received again sooner',
      );
    }
    return messages.length - failed.length;
  }

  /** retrySeconds, doubling with each receive, up to 15 minutes. */
  private retryDelay(m: Message): number {
    const received = Number(m.Attributes?.ApproximateReceiveCount ?? 1);
    return Math.min(
      this.queue.retrySeconds * 2 ** Math.min(Math.max(received - 1, 0), 20),
      Math.max(this.queue.retrySeconds, 900),
    );
  }

  /** True once the message is in the dead-letter queue (then it is deleted here). */
  private async deadLetter(m: Message, reason: string): Promise<boolean> {
    const why = clip(reason, 1000);
    this.metrics.sqsDeadLettered.inc({ queue: this.queue.url });
    this.log.warn({ queue: this.queue.url, messageId: m.MessageId, reason: why }, 'sqs message is not an alert');
    if (!this.queue.deadLetterUrl) return false; // the queue's own redrive policy moves it after its maxReceiveCount
    await this.client.send(
      new SendMessageCommand({
        QueueUrl: this.queue.deadLetterUrl,
        MessageBody: m.Body ?? '',
        MessageAttributes: {
          'pod-responder-reason': { DataType: 'String', StringValue: why },
          'pod-responder-source-queue': { DataType: 'String', StringValue: this.queue.url },
        },
      }),
    );
    return true;
  }
}

/** `https://sqs.<region>.amazonaws.com/<account>/<name>`: the region, when the URL is AWS's. */
function regionOfQueue(url: string): string | undefined {
  return /^https:\/\/sqs\.([a-z0-9-]+)\.amazonaws\.com\//.exec(url)?.[1];
}
