import { Client, Connection, WorkflowExecutionAlreadyStartedError } from '@temporalio/client';
import type { NativeConnection } from '@temporalio/worker';
import { defaultPayloadConverter } from '@temporalio/common';
import { tsToMs } from '@temporalio/common/lib/time.js';
import type { PodAlert } from '../domain/alert.js';
import type { PolicyMode } from '../domain/routing.js';
import type { Config } from '../config/config.js';
import { temporalConnectError, temporalConnectionOptions } from '../config/temporal-connection.js';
import type { IncidentResult } from '../workflows/messages.js';
import { respondToAlerts, startIncidentEagerly, type StartedIncident } from '../temporal-client/incidents.js';
import { incidentWorkflowId } from '../workflows/ids.js';
import { gonePodOf, type ClosedRun } from './closed-incidents.js';
import { RecentIncidents } from './recent-incidents.js';

/**
 * The forwarder's one connection to Temporal. It connects lazily and grpc reconnects on its own,
 * so the forwarder starts (and answers 503) while Temporal is down and recovers when it is back.
 */
const UNREACHABLE = 'Temporal is unreachable'; // gRPC UNAVAILABLE
/** Temporal's refusals of one run that has reached a per-run limit (InvalidArgument). */
const SATURATED = /exceeded workflow execution limit for signal events|history (size|count) exceeds limit/i;

/**
 * The incident's current run takes no more signals: it has reached a server limit per run, which it
 * only does when it cannot continue as new (no worker has run it for a long while). The incident is
 * there and responding; this alert cannot be added to its count.
 */
export class IncidentSaturated extends Error {
  override readonly name = 'IncidentSaturated';
}

/**
 * The incident's last run is closed, and the submission was not to start another (`reuseClosed` false): the
 * forwarder looks at how it ended (lastRun) before it starts one.
 */
export class IncidentClosed extends Error {
  override readonly name = 'IncidentClosed';
}

/** GetWorkflowExecutionHistory's filter for the close event only (HISTORY_EVENT_FILTER_TYPE_CLOSE_EVENT). */
const CLOSE_EVENT = 2;

/**
 * What an eager start attempt came to: `eager`, the first workflow task came back in the start's answer; `matched`,
 * started, but its first task goes through matching (no free workflow slot, or the server has eager start off);
 * `existing`, the incident was running or had closed, so the alerts went the usual way (signal-with-start).
 */
export type EagerStart = 'eager' | 'matched' | 'existing';

/** Incidents this gateway delivered to lately: their alerts are signals, not worth an eager start attempt first. */
const RECENT_INCIDENTS = 50_000;
const RECENT_SECONDS = 600;

export class TemporalGateway {
  /** Set when a submission found Temporal unreachable; cleared by the next successful probe. */
  private unreachable = false;
  private probe: Promise<boolean> | null = null;
  private lastProbeError: unknown;

  /** Set only when the connection is a worker's (shared): new incidents are started eagerly. */
  private readonly recent: RecentIncidents | null;
  /** Told of each eager start attempt (the forwarder counts them). */
  onEagerStart?: (result: EagerStart) => void;

  private constructor(
    private readonly config: Config,
    readonly connection: Connection | NativeConnection,
    private readonly client: Client,
    private readonly shared: boolean,
  ) {
    this.recent = shared ? new RecentIncidents(RECENT_INCIDENTS, RECENT_SECONDS * 1000) : null;
  }

  static create(config: Config): TemporalGateway {
    const connection = Connection.lazy(temporalConnectionOptions(config.temporal));
    return new TemporalGateway(
      config,
      connection,
      new Client({ connection, namespace: config.temporal.namespace }),
      false,
    );
  }

  /**
   * On the connection of a worker in this process (all-in-one): a new incident's first workflow task comes back in
   * the start call's answer and runs here, with no matching. The worker owns the connection: close() leaves it open.
   */
  static shared(config: Config, connection: NativeConnection): TemporalGateway {
    return new TemporalGateway(
      config,
      connection,
      new Client({ connection, namespace: config.temporal.namespace }),
      true,
    );
  }

  /**
   * Resolves only once Temporal has durably accepted the alerts (one signal, all about one pod); rejects within the configured deadline
   * with an error whose message says why, in words an operator can act on.
   * While Temporal is known to be down, requests share one short health probe instead of each
   * waiting out the full deadline, so senders get their 503 quickly.
   */
  async submit(alerts: PodAlert[], mode?: PolicyMode, reuseClosed = true): Promise<StartedIncident> {
    if (this.unreachable) {
      this.probe ??= this.ready(1000).finally(() => (this.probe = null));
      if (!(await this.probe)) throw new Error(UNREACHABLE);
      this.unreachable = false;
    }
    const reuse = reuseClosed ? 'ALLOW_DUPLICATE' : 'REJECT_DUPLICATE';
    const workflowId = incidentWorkflowId(alerts[0]!);
    try {
      const started = await this.connection.withDeadline(
        Date.now() + this.config.forwarder.temporalTimeoutMs,
        async () =>
          (this.recent && !this.recent.has(workflowId) ? await this.startEagerly(alerts, mode, reuse) : null) ??
          respondToAlerts(this.client, this.config, alerts, undefined, mode, reuse),
      );
      this.recent?.touch(workflowId);
      return started;
    } catch (err) {
      if (err instanceof WorkflowExecutionAlreadyStartedError)
        throw new IncidentClosed(`the last run of ${err.workflowId} is closed`, { cause: err });
      const e = err as Error & { cause?: { code?: number; details?: string } };
      const code = e.cause?.code; // gRPC status
      const timedOut = code === 4 || /deadline/i.test(e.message);
      if (code === 14 || timedOut) this.unreachable = true;
      const reason =
        code === 14 ? UNREACHABLE : timedOut ? 'Temporal did not answer in time' : (e.cause?.details ?? e.message);
      if (code === 3 && SATURATED.test(reason)) throw new IncidentSaturated(reason, { cause: err });
      throw new Error(reason, { cause: err });
    }
  }

  /** A new incident, started eagerly; null when it exists (running, or closed and not to be started again). */
  private async startEagerly(
    alerts: PodAlert[],
    mode: PolicyMode | undefined,
    reuse: 'ALLOW_DUPLICATE' | 'REJECT_DUPLICATE',
  ): Promise<StartedIncident | null> {
    try {
      const { eagerlyStarted, ...started } = await startIncidentEagerly(
        this.client,
        this.config,
        alerts,
        undefined,
        mode,
        reuse,
      );
      this.onEagerStart?.(eagerlyStarted ? 'eager' : 'matched');
      return started;
    } catch (err) {
      if (!(err instanceof WorkflowExecutionAlreadyStartedError)) throw err;
      this.onEagerStart?.('existing');
      return null;
    }
  }

  /**
   * How the incident's latest run closed (its close event: one call, never the whole history); null while it is
   * running, or when it never existed.
   */
  async lastRun(workflowId: string): Promise<ClosedRun | null> {
    const { namespace } = this.config.temporal;
    const res = await this.connection.withDeadline(Date.now() + this.config.forwarder.temporalTimeoutMs, () =>
      this.client.workflowService.getWorkflowExecutionHistory({
        namespace,
        execution: { workflowId },
        historyEventFilterType: CLOSE_EVENT,
        waitNewEvent: false,
      }),
    );
    const close = res.history?.events?.[0];
    if (!close) return null;
    const closedAt = tsToMs(close.eventTime);
    const completed = close.workflowExecutionCompletedEventAttributes;
    const payload = completed?.result?.payloads?.[0];
    const result = payload ? defaultPayloadConverter.fromPayload<IncidentResult>(payload) : null;
    return {
      workflowId,
      closedAt,
      outcome: result?.outcome ?? null,
      gonePod: gonePodOf(result, closedAt),
    };
  }

  /** Known unreachable since a submission failed, until a probe succeeds. */
  down(): boolean {
    return this.unreachable;
  }

  async ready(timeoutMs = 2000): Promise<boolean> {
    try {
      const res = await this.connection.withDeadline(Date.now() + timeoutMs, () =>
        this.connection.healthService.check({}),
      );
      // eslint-disable-next-line @typescript-eslint/no-unsafe-enum-comparison -- the enum is in @temporalio/proto, not a dependency of ours
      const serving = res.status === 1; // grpc.health.v1 SERVING
      if (serving) this.unreachable = false;
      else this.lastProbeError = new Error(`health check: status ${res.status}`);
      return serving;
    } catch (err) {
      this.lastProbeError = err;
      return false;
    }
  }

  /** Why the last probe failed, naming the setting to fix when it is TLS or the API key (grpc says only UNAVAILABLE). */
  async whyUnreachable(): Promise<string> {
    return (await temporalConnectError(this.config.temporal, this.lastProbeError ?? new Error(UNREACHABLE))).message;
  }

  /** A shared connection is the worker's: it closes it when it stops. */
  async close(): Promise<void> {
    if (!this.shared) await this.connection.close();
  }
}
