/**
 * Incidents whose last run closed with their pod gone, and which alerts are about that gone pod. Late
 * alerts about a killed pod (a relay's backlog, a queue delivering late, another rule on the same event)
 * used to start a run each, dismissed at once as `pod-gone`: Temporal actions that change nothing. The
 * forwarder learns of the close from Temporal itself (a signal-with-start that may not reuse a closed
 * run's ID is refused; then the run's close event says how it ended) and answers such alerts `closed`.
 *
 * An alert is about the gone pod only when that is certain (docs/repeats.md): the same pod UID, or one of
 * its container IDs, or, naming neither, detected before the pod was gone. A new pod with the same name
 * (a StatefulSet's replacement, a miner back after a restore) has another UID and other containers, and
 * starts an incident as before.
 */
import { bareContainerId } from '../domain/alert-values.js';
import type { PodAlert } from '../domain/alert.js';
import type { IncidentResult, Outcome } from '../workflows/messages.js';

/** The last run of an incident, closed. */
export interface ClosedRun {
  workflowId: string;
  /** Close time, ms since the epoch (Temporal's close event). */
  closedAt: number;
  /** null: it did not complete (failed, terminated, cancelled, timed out). */
  outcome: Outcome | null;
  /** Set when the run ended with its pod gone: what identified that pod, and from when it was gone. */
  gonePod: GonePod | null;
}

export interface GonePod {
  /** null: the run found no pod by that name (`pod-gone`), so knows no identity. */
  uid: string | null;
  /** Bare container IDs (current and restarted) of the pod as the run first read it. */
  containerIds: string[];
  /** ms since the epoch: the kill took effect (`killedAt`), or the run found the pod gone. */
  goneAt: number;
  /** In words, for the answer: `pod-terminated at <time>`. */
  why: string;
}

/** Outcomes after which the pod the run acted on no longer exists: it killed it (and maybe suspended its workload). */
const KILLED: readonly Outcome[] = ['pod-terminated', 'workload-suspended', 'workload-restored'];

/** What a closed run's result says about its pod; `closedAt` dates a `pod-gone` dismissal (the run ended on it). */
export function gonePodOf(result: IncidentResult | null, closedAt: number): GonePod | null {
  if (!result?.outcome) return null;
  if (KILLED.includes(result.outcome) && result.pod && result.killedAt) {
    return {
      uid: result.pod.uid,
      containerIds: result.pod.containerIds.map(bareContainerId),
      goneAt: Date.parse(result.killedAt),
      why: `${result.outcome}, the pod killed at ${result.killedAt}`,
    };
  }
  if (result.outcome === 'dismissed' && result.dismissal === 'pod-gone') {
    return {
      uid: null,
      containerIds: [],
      goneAt: closedAt,
      why: `dismissed: no pod by that name at ${new Date(closedAt).toISOString()}`,
    };
  }
  return null;
}

/**
 * Is the alert certainly about the pod the run found gone? Its UID, then its container ID, decide when the
 * run knew them; else only a detection from before the pod was gone is (a later one may be a new pod's).
 */
export function aboutGonePod(alert: PodAlert, pod: GonePod): boolean {
  if (pod.uid !== null) {
    if (alert.podUid) return alert.podUid === pod.uid;
    const id = alert.container?.id ? bareContainerId(alert.container.id) : '';
    if (id && pod.containerIds.length) return pod.containerIds.some((c) => c.startsWith(id) || id.startsWith(c));
  }
  const detected = Date.parse(alert.detectedAt);
  return Number.isFinite(detected) && detected <= pod.goneAt;
}

/**
 * The closed runs the forwarder learned of lately, by workflow ID, each kept `windowMs` from when it was
 * learned (bounded by `capacity`, least recently learned first out). An entry means "the incident's latest run is
 * closed": alerts not about its gone pod may start a new run at once, without asking Temporal again.
 */
export class ClosedIncidents {
  private readonly runs = new Map<string, { run: ClosedRun; until: number }>();

  constructor(
    private readonly capacity: number,
    /** How long after its close a run's gone pod answers alerts about it (0: never). */
    readonly windowMs: number,
    private readonly now: () => number = () => Date.now(),
  ) {}

  get(workflowId: string): ClosedRun | undefined {
    const e = this.runs.get(workflowId);
    if (!e) return undefined;
    if (this.now() > e.until) {
      this.runs.delete(workflowId);
      return undefined;
    }
    return e.run;
  }

  /** The closed run whose gone pod this alert is about, while within the window of its close. */
  goneFor(alert: PodAlert, workflowId: string): ClosedRun | undefined {
    const run = this.get(workflowId);
    return run && this.covers(run, alert) ? run : undefined;
  }

  /** Is the alert about the run's gone pod, within the window of its close? */
  covers(run: ClosedRun, alert: PodAlert): boolean {
    return !!run.gonePod && this.now() <= run.closedAt + this.windowMs && aboutGonePod(alert, run.gonePod);
  }

  remember(run: ClosedRun): void {
    if (this.capacity === 0 || this.windowMs === 0) return;
    this.runs.delete(run.workflowId);
    this.runs.set(run.workflowId, { run, until: this.now() + this.windowMs });
    if (this.runs.size > this.capacity) this.runs.delete(this.runs.keys().next().value!);
  }

  /** A new run is current (it started, or another forwarder started it). */
  forget(workflowId: string): void {
    this.runs.delete(workflowId);
  }
}
