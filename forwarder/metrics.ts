import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { Spool } from './spool.js';

const PREFIX = 'pod_responder_forwarder_';

/** Prometheus metrics of one forwarder, on a registry of its own (tests run several in a process). */
export function createMetrics(spool: Spool | null = null) {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: PREFIX });
  const counter = (name: string, help: string, labelNames: string[] = ['source']) =>
    new Counter({ name: `${PREFIX}${name}`, help, labelNames, registers: [registry] });
  if (spool) {
    new Gauge({
      name: `${PREFIX}spool_depth`,
      help: 'Alerts waiting in the spool',
      registers: [registry],
      collect() {
        this.set(spool.depth);
      },
    });
    new Gauge({
      name: `${PREFIX}spool_bytes`,
      help: 'Bytes of alerts waiting in the spool (bounded by forwarder.spool.maxBytes)',
      registers: [registry],
      collect() {
        this.set(spool.bytes);
      },
    });
    new Gauge({
      name: `${PREFIX}spool_write_failing`,
      help: '1 while the spool cannot write (disk full, I/O error): alerts Temporal does not take get 503, and /readyz is 503',
      registers: [registry],
      collect() {
        this.set(spool.failed ? 1 : 0);
      },
    });
    new Gauge({
      name: `${PREFIX}spool_found_at_start`,
      help: 'Alerts found in the spool when this forwarder started (left by an earlier run)',
      registers: [registry],
    }).set(spool.depth);
    new Gauge({
      name: `${PREFIX}spool_oldest_seconds`,
      help: 'Age of the oldest alert in the spool (0 when empty)',
      registers: [registry],
      collect() {
        this.set(spool.oldestAgeSeconds() ?? 0);
      },
    });
  }
  return {
    registry,
    received: counter('alerts_received_total', 'Alerts in authenticated, well-formed requests and queue messages'),
    accepted: counter('alerts_accepted_total', 'Alerts Temporal accepted (incident started or signalled)'),
    queued: counter(
      'alerts_queued_total',
      'Alerts written to the spool (answered 202 queued), to be delivered when Temporal takes them',
    ),
    batched: counter(
      'alerts_batched_total',
      "Of the alerts queued, those spooled as repeats in a burst, to go with their incident's next signal (batchMaxIntervalMs)",
    ),
    ignored: counter('alerts_ignored_total', 'Alerts acknowledged without a response (routing, or not about a pod)'),
    deduplicated: counter(
      'alerts_deduplicated_total',
      'Alerts already accepted or spooled earlier, answered without a new signal',
    ),
    closed: counter(
      'alerts_closed_total',
      'Alerts about a pod its incident removed, answered `closed` within closedIncidentSeconds of the close: no run started, no signal',
    ),
    saturated: counter(
      'alerts_saturated_total',
      'Alerts answered 202 but not added to their incident: its run reached a Temporal limit (no worker ran it for long)',
    ),
    failed: counter(
      'alerts_failed_total',
      'Alerts neither accepted nor spooled (answered 503; an SQS message stays in its queue)',
    ),
    rateLimited: counter(
      'alerts_rate_limited_total',
      "Alerts that would have started an incident over the source's rate (answered 429)",
    ),
    rejected: counter(
      'requests_rejected_total',
      'Requests refused, by status and reason (invalid, unauthenticated, too-large, not-json, source-disabled, rate-limited, spool-full, spool-write-failed, temporal-unavailable)',
      ['source', 'status', 'reason'],
    ),
    spoolSetAside: new Counter({
      name: `${PREFIX}spool_set_aside_total`,
      help: 'Spool files found corrupt at start and moved aside (their alerts were not delivered)',
      registers: [registry],
    }),
    spoolDelivered: new Counter({
      name: `${PREFIX}spool_delivered_total`,
      help: 'Spooled alerts Temporal accepted',
      registers: [registry],
    }),
    spoolDropped: new Counter({
      name: `${PREFIX}spool_dropped_total`,
      help: 'Spooled alerts removed without delivery, by reason',
      labelNames: ['reason'],
      registers: [registry],
    }),
    sqsReceived: counter('sqs_messages_received_total', 'SQS messages received', ['queue']),
    sqsDeleted: counter(
      'sqs_messages_deleted_total',
      'SQS messages deleted once their alerts were taken (or ignored)',
      ['queue'],
    ),
    sqsRetried: counter(
      'sqs_messages_retried_total',
      'SQS messages left in their queue for later (Temporal unavailable, or over the rate)',
      ['queue'],
    ),
    sqsSettleFailed: counter(
      'sqs_messages_settle_failed_total',
      "SQS batch entries that failed (action delete or hide, with SQS's code): a message not deleted is received again",
      ['queue', 'action', 'code'],
    ),
    sqsDeadLettered: counter(
      'sqs_messages_dead_lettered_total',
      'SQS messages that are not valid alerts, moved to the dead-letter queue',
      ['queue'],
    ),
    eagerStarts: counter(
      'eager_starts_total',
      "New incidents started with eager start (all-in-one only), by result: eager (the first workflow task came back in the start's answer), matched (started, but the task went through matching: no free workflow slot, or the server's system.enableEagerWorkflowStart is off), existing (the incident was running or had closed: signal-with-start as before)",
      ['result'],
    ),
    signals: new Counter({
      name: `${PREFIX}signals_total`,
      help: 'Signals sent to incidents (each carries a batch of alerts)',
      registers: [registry],
    }),
    signalAlerts: new Histogram({
      name: `${PREFIX}signal_alerts`,
      help: 'Alerts carried by one signal',
      buckets: [1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000],
      registers: [registry],
    }),
    latency: new Histogram({
      name: `${PREFIX}request_duration_seconds`,
      help: 'Time from request to answer',
      labelNames: ['source', 'status'],
      buckets: [0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers: [registry],
    }),
  };
}

export type Metrics = ReturnType<typeof createMetrics>;
