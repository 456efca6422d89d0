/**
 * The metrics incidents emit (workflows/incident/metrics.ts), served by the worker beside the Temporal SDK's own
 * (worker/runtime.ts). Names as created; the endpoint adds `_total` to counters.
 */
export const INCIDENT_METRICS = {
  /** Closed incidents, by outcome and alert source. */
  incidents: 'pod_responder_incidents',
  /** Cluster changes, by action and result. */
  actions: 'pod_responder_actions',
  /** Seconds from the incident's first alert's detectedAt to the kill (or suspension) confirmed done. */
  alertToAction: 'pod_responder_alert_to_action_seconds',
} as const;

/**
 * Seconds. An automatic response takes seconds after detection; one that waits for a person or for repeats,
 * minutes (approval times out after 900 s, the watch lasts 900 s by default); an alert older than an hour is
 * dismissed as stale, so later than that is rare.
 */
export const ALERT_TO_ACTION_BUCKETS = [0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300, 600, 900, 1800, 3600];

/** What an action ended as: the remediation core's status, or `failed` when the step raised (retries used up). */
export type ActionResultLabel = 'done' | 'already-done' | 'not-found' | 'unsupported' | 'conflict' | 'failed';
