import { Counter, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/** Prometheus metrics of one forwarder, on a registry of its own (tests run several in a process). */
export function createMetrics() {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'pod_responder_forwarder_' });
  const counter = (name: string, help: string, labelNames: string[] = ['source']) =>
    new Counter({ name: `pod_responder_forwarder_${name}`, help, labelNames, registers: [registry] });
  return {
    registry,
    received: counter('alerts_received_total', 'Alerts in authenticated, well-formed requests'),
    accepted: counter('alerts_accepted_total', 'Alerts Temporal accepted (incident started or signalled)'),
    ignored: counter('alerts_ignored_total', 'Alerts acknowledged without a response (routing, or not about a pod)'),
    deduplicated: counter('alerts_deduplicated_total', 'Alerts already accepted earlier, answered without a new signal'),
    failed: counter('alerts_failed_total', 'Alerts Temporal did not accept (answered 503)'),
    saturated: counter('alerts_saturated_total', 'Alerts answered 202 but not added to their incident: its run reached a Temporal limit (no worker ran it for long)'),
    rateLimited: counter('alerts_rate_limited_total', 'Alerts that would have started an incident over the source\'s rate (answered 429)'),
    signals: new Counter({ name: 'pod_responder_forwarder_signals_total', help: 'Signals sent to incidents (each carries a batch of alerts)', registers: [registry] }),
    signalAlerts: new Histogram({
      name: 'pod_responder_forwarder_signal_alerts',
      help: 'Alerts carried by one signal',
      buckets: [1, 2, 5, 10, 25, 50, 100, 250, 500, 1000],
      registers: [registry],
    }),
    rejected: counter('requests_rejected_total', 'Requests refused with a 4xx, by status', ['source', 'status']),
    latency: new Histogram({
      name: 'pod_responder_forwarder_request_duration_seconds',
      help: 'Time from request to answer',
      labelNames: ['source', 'status'],
      buckets: [0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers: [registry],
    }),
  };
}

export type Metrics = ReturnType<typeof createMetrics>;
