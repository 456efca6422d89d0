/**
 * One incident's state and the primitives every stage uses: the timeline, stage changes, alert intake,
 * executor stretches, and continuing as new. Everything here is deterministic workflow code.
 */
import {
  allHandlersFinished,
  condition,
  makeContinueAsNewFunc,
  log,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import type { PodAlert } from '../../domain/alert.js';
import { checkAlert } from '../../domain/alert-check.js';
import { sameContainer, withRawExcerpt } from '../../domain/alert-values.js';
import { defaultPolicy } from '../../domain/policy-defaults.js';
import type { Policy } from '../../domain/policy.js';
import { SA } from '../../domain/search-attributes.js';
import { Compensations } from '../compensations.js';
import { openExecutor, type ExecutorSession, type ExecutorTarget } from '../executor.js';
import type { IncidentResult, Outcome, Stage, TimelineEntry } from '../messages.js';
import { AlertLedger, LEDGER_BYTES_PER_ID } from './alert-ledger.js';
import type { IncidentInput } from './input.js';
import { done, freshState, type IncidentState } from './state.js';
import { resultSummary } from './view.js';
import { countIncident, countingActions } from './metrics.js';

/** Timeline entries kept: the first ones (how it began) and the newest; those between are counted, not kept. */
const TIMELINE_HEAD = 30;
const TIMELINE_MAX = 200;
/** Repeat alerts noted one by one; after that they are summed up in one entry per stretch of repeats. */
const REPEATS_NOTED = 10;
/** Detection times kept for the repeat window: the threshold never needs more. */
const DETECTIONS_KEPT = 100;
const CLEANUP_KEPT = 60;
/** What the continue-as-new event carries besides the ledger: the state, its timeline and kept alerts bounded. */
const CARRIED_STATE_BYTES = 64 * 1024;

export class Incident {
  readonly input: IncidentInput;
  readonly policy: Policy;
  readonly alert: PodAlert;
  readonly state: IncidentState;
  readonly ledger: AlertLedger;
  private repeatsNoted = 0;
  /** The timeline entry that sums up the current stretch of repeats, while it is the newest entry. */
  private summing: { entry: TimelineEntry; count: number } | null = null;
  private failedStage: Stage | null = null;
  private startAlertJson: string | undefined;
  /** A hold check (and re-suspension) is running: a restore waits for it, so the two never race on the workload. */
  holdCheckRunning = false;
  /** Notifications started and not yet answered: the incident waits a bounded moment for them before it closes. */
  notificationsInFlight = 0;
  /** A restore releasing the credentials revocation (while watching) is running: a second one is refused. */
  credentialsReleasing = false;
  /** The worker runs the kill path's calls as local activities (its answer to the policy-floor check). */
  localCalls = false;
  /** The history size at the last workflow task seen, and the most one task has added (byteThreshold). */
  private lastHistorySize: number;
  private largestStep = 0;

  constructor(input: IncidentInput) {
    this.input = input;
    // An older starter may not know newer policy fields: their defaults apply.
    this.policy = { ...defaultPolicy, ...input.policy };
    this.alert = withRawExcerpt(input.alert);
    this.lastHistorySize = workflowInfo().historySize;
    if (input.carried) {
      this.state = input.carried.state;
      this.state.run += 1;
      this.ledger = AlertLedger.from(input.carried.seenAlerts);
      this.repeatsNoted = REPEATS_NOTED; // the individual notes were made in an earlier run
    } else {
      this.ledger = new AlertLedger();
      this.ledger.record(this.alert.alertId);
      this.state = freshState(workflowInfo().workflowId, this.alert);
    }
  }

  get id(): string {
    return this.state.incidentId;
  }

  get resumed(): boolean {
    return this.state.run > 1;
  }

  /** Adds a timeline entry (and a log line); returns it. */
  note(event: string, detail: string): TimelineEntry {
    const t = this.state.timeline;
    const entry = { at: new Date().toISOString(), event, detail };
    t.push(entry);
    const head = t[TIMELINE_HEAD];
    if (t.length > TIMELINE_MAX && head) {
      // Keep the head (how it began) and the newest; one marker after the head counts what is gone.
      this.state.timelineOmitted += 1;
      const detail = `${this.state.timelineOmitted} entries omitted here to keep the status small`;
      if (head.event === 'timeline-omitted') t.splice(TIMELINE_HEAD + 1, 1);
      t[TIMELINE_HEAD] = { at: head.at, event: 'timeline-omitted', detail };
    }
    log.info(event, { incidentId: this.id, detail });
    return entry;
  }

  stage(next: Stage): void {
    this.state.stage = next;
    upsertSearchAttributes([{ key: SA.stage, value: next }]);
    this.note(`stage:${next}`, '');
  }

  /** Ends the incident: sets the outcome (and search attribute) and returns the result. */
  finish(outcome: Outcome, problem?: string | null): IncidentResult {
    if (problem) this.state.problem = problem;
    this.state.phase = done(outcome, problem ?? undefined);
    upsertSearchAttributes([{ key: SA.outcome, value: outcome }]);
    this.note('outcome', `${outcome}${problem ? `: ${problem}` : ''}`);
    countIncident(outcome, this.alert.source);
    return resultSummary(this.state, outcome);
  }

  /**
   * Detections in the repeat window that count toward the threshold (docs/repeats.md): the first alert, alerts on
   * another container, and alerts on its container detected after the kill. Another rule firing on the same event,
   * or a late copy from before the kill, is not a repeat.
   */
  alertsInWindow(): number {
    const since = Date.now() - this.policy.repeatWindowSeconds * 1000;
    const killedAt = this.state.killedAt ? Date.parse(this.state.killedAt) : Infinity;
    const a = this.state.alerts;
    const first = Date.parse(a.first.detectedAt) >= since ? 1 : 0;
    const other = a.recentDetections.filter((t) => t >= since).length;
    const afterKill = a.sameContainerDetections.filter((t) => t >= since && t > killedAt).length;
    return first + other + afterKill;
  }

  /** The very alert this run started with (known without the schema: it came as the input, checked by the sender). */
  private isStartAlert(input: unknown): boolean {
    this.startAlertJson ??= JSON.stringify(this.input.alert);
    return JSON.stringify(input) === this.startAlertJson;
  }

  /** Takes one alert from a signal. Bounded work and state whatever arrives: it never throws. */
  receiveAlert(input: unknown): void {
    if (this.isStartAlert(input)) return; // signal-with-start delivers the first alert twice
    const a = this.state.alerts;
    const checked = checkAlert(input);
    if ('problem' in checked) {
      a.invalid += 1;
      if (a.invalid === 1)
        this.note('alert-invalid', `a signal carried something that is not an alert: ${checked.problem}`);
      return;
    }
    const alert = withRawExcerpt(checked.alert);
    const first = this.alert;
    if (alert.alertId === first.alertId) return; // the first alert again
    if (
      alert.cluster.name !== first.cluster.name ||
      alert.namespace !== first.namespace ||
      alert.podName !== first.podName
    ) {
      a.otherPods += 1;
      this.sumUp(
        'alerts-for-other-pods',
        'alerts about other pods ignored',
        `latest about ${alert.namespace}/${alert.podName}`,
      );
      return;
    }
    if (!this.ledger.record(alert.alertId)) {
      a.duplicates += 1;
      return;
    }
    a.count += 1;
    a.lastReceivedAt = new Date().toISOString();
    if (this.policy.keepRecentAlerts > 0) {
      a.recent.push(alert);
      if (a.recent.length > this.policy.keepRecentAlerts) a.recent.shift();
    }
    const same = sameContainer(alert, first);
    insertDetection(same ? a.sameContainerDetections : a.recentDetections, Date.parse(alert.detectedAt));
    if (this.repeatsNoted < REPEATS_NOTED) {
      this.repeatsNoted += 1;
      const counts = same
        ? 'same container as the first alert: a repeat only if detected after the kill'
        : 'another container: a repeat';
      this.note('repeat-alert', `alert ${alert.alertId} from ${alert.source} at ${alert.detectedAt} (${counts})`);
    } else {
      this.sumUp(
        'repeat-alerts',
        'repeat alerts',
        `${a.count - 1} repeats in all; latest ${alert.alertId} detected ${alert.detectedAt}`,
      );
    }
  }

  /**
   * Sums up a stretch of like events in one timeline entry, rewritten in place while it is the newest:
   * "1234 repeat alerts between T1 and T2", however many arrive.
   */
  private sumUp(event: string, what: string, latest: string): void {
    const t = this.state.timeline;
    if (this.summing && t.at(-1) === this.summing.entry && this.summing.entry.event === event) {
      this.summing.count += 1;
    } else {
      this.summing = { entry: this.note(event, ''), count: 1 };
    }
    const { entry, count } = this.summing;
    entry.detail = `${count} ${what} between ${entry.at} and ${new Date().toISOString()}; ${latest}`;
  }

  /**
   * Opens an executor for one stretch of work and removes whatever it deployed when the stretch ends,
   * however it ends: nothing an executor deploys outlives the step that needed it. An incident never
   * continues as new inside a stretch, so no undo is ever left behind in an earlier run.
   * `withinWait`: a stretch inside a wait (a hold check) that does not move the incident on: its cleanup leaves
   * the stage as it is (a restore asked meanwhile has set its own), and a failure it absorbs is no stage's failure.
   */
  async withExecutor<T>(work: (exec: ExecutorSession) => Promise<T>, opts: { withinWait?: boolean } = {}): Promise<T> {
    this.state.executorSessions += 1;
    const compensations = new Compensations();
    const target: ExecutorTarget = {
      incidentId: this.id,
      cluster: this.alert.cluster.name,
      region: this.alert.cluster.region,
      namespace: this.alert.namespace,
    };
    try {
      return await work(
        countingActions(
          await openExecutor(this.input.executor, target, compensations, this.state.executorSessions, {
            localCalls: this.localCalls,
          }),
        ),
      );
    } catch (err) {
      if (!opts.withinWait) this.failedStage ??= this.state.stage; // before cleaning up changes it
      throw err;
    } finally {
      if (compensations.size) {
        if (!opts.withinWait) this.stage('cleaning-up');
        for (const u of await compensations.runAll()) {
          this.state.cleanup.push(u);
          if (this.state.cleanup.length > CLEANUP_KEPT) this.state.cleanup.shift();
          this.note('compensation', `${u.name}: ${u.status}${u.error || u.note ? ` (${u.error ?? u.note})` : ''}`);
        }
      }
    }
  }

  /** The stage the incident was in when a stretch failed (cleanup changes the stage). */
  get stageAtFailure(): Stage {
    return this.failedStage ?? this.state.stage;
  }

  /**
   * True once this run's history is large enough that the incident should continue as new at its next wait, or
   * once a newer build of the worker is current: the incident is pinned to the build it started on and moves to
   * the new one at its next wait, by continuing as new (docs/changing-the-workflow.md).
   */
  shouldContinueAsNew(): boolean {
    const info = workflowInfo();
    return (
      info.continueAsNewSuggested ||
      info.targetWorkerDeploymentVersionChanged ||
      info.historyLength >= this.policy.historyEventsPerRun ||
      info.historySize >= this.byteThreshold(info.historySize)
    );
  }

  /**
   * The history size at which this run continues as new, so that it ends within historyBytesPerRun: that less what
   * the run still adds once it decides, namely the continue-as-new event (it carries the state and the alert ledger)
   * and whatever lands while it closes. A signal that lands then makes the server refuse the close and the worker
   * replay the run before trying again, so a flood's signals kept landing: runs reached twice historyBytesPerRun.
   * Allowed for: twice the most one workflow task has taken in (a signal, or the signals of a busy moment). Never
   * below half historyBytesPerRun, so a run too small for its margin still takes in alerts before it moves on.
   */
  private byteThreshold(size: number): number {
    if (size > this.lastHistorySize) {
      this.largestStep = Math.max(this.largestStep, size - this.lastHistorySize);
      this.lastHistorySize = size;
    }
    const closing = this.ledger.size * LEDGER_BYTES_PER_ID + CARRIED_STATE_BYTES + 2 * this.largestStep;
    const limit = this.policy.historyBytesPerRun;
    return Math.max(limit - closing, limit / 2);
  }

  /**
   * Waits until `done()` or the deadline. When the history grows too long meanwhile, waits for running
   * handlers (a restore) and continues as new with everything so far; the new run resumes this same wait.
   * Returns whether `done()` became true.
   */
  async waitUntil(done: () => boolean, until: string, summary: string): Promise<boolean> {
    for (;;) {
      const left = Date.parse(until) - Date.now();
      if (done()) return true;
      if (left <= 0) return false;
      await condition(() => done() || this.shouldContinueAsNew(), left, { summary });
      if (done()) return true;
      if (!this.shouldContinueAsNew()) continue;
      // A restore in flight finishes first: an update running when the run ends would be lost; so would a notification's report.
      await condition(() => allHandlersFinished() && this.notificationsInFlight === 0);
      if (done()) return true;
      await this.continueAsNew();
    }
  }

  private async continueAsNew(): Promise<never> {
    const why = workflowInfo().targetWorkerDeploymentVersionChanged
      ? 'to move to the current worker build'
      : `after ${workflowInfo().historyLength} history events (${Math.round(workflowInfo().historySize / 1024)} KiB)`;
    this.note(
      'continued-as-new',
      `run ${this.state.run} ended ${why}; run ${this.state.run + 1} carries the incident on`,
    );
    const next: IncidentInput = {
      alert: this.alert,
      policy: this.policy,
      executor: this.input.executor,
      carried: { state: this.state, seenAlerts: this.ledger.serialize() },
    };
    const info = workflowInfo();
    const continueAs = makeContinueAsNewFunc<(input: IncidentInput) => Promise<IncidentResult>>({
      typedSearchAttributes: info.typedSearchAttributes,
      workflowTaskTimeout: info.taskTimeoutMs,
      // The next run starts on the current build (a no-op for an unversioned worker), then is pinned to it.
      initialVersioningBehavior: 'AUTO_UPGRADE',
    });
    return continueAs(next);
  }
}

/** Keeps the newest DETECTIONS_KEPT detection times, newest first. */
function insertDetection(times: number[], t: number): void {
  if (Number.isNaN(t)) return;
  const oldest = times.at(-1);
  if (times.length >= DETECTIONS_KEPT && oldest !== undefined && t <= oldest) return;
  const i = times.findIndex((x) => x <= t);
  times.splice(i === -1 ? times.length : i, 0, t);
  if (times.length > DETECTIONS_KEPT) times.pop();
}
