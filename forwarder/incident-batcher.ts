/**
 * Alerts about one pod, batched into few signals. A miner that trips a Falco rule every second, or a
 * scanner that trips it a thousand times a second, sends that many alerts; each signal costs the
 * incident a history event and a workflow task (and is a billed action on Temporal Cloud), so a signal
 * per alert would flood it. Here each incident has one lane: the first alert of a quiet incident goes
 * at once (no added latency), and while a signal is in flight, or within the lane's interval of the
 * last, alerts wait and go together. The interval starts at `intervalMs` and doubles with each signal
 * of a burst, up to `maxIntervalMs`; a quiet spell (twice the interval, and at least `maxIntervalMs`) ends it. So a burst
 * of any length costs an incident a few signals, then one per `maxIntervalMs`.
 * Every alert still resolves only once Temporal has accepted the signal that carried it.
 */
import type { PodAlert } from '../domain/alert.js';

export interface BatcherOptions {
  /** Least time between two signals to one incident. */
  intervalMs: number;
  /** The interval doubles with each signal of a burst up to this (default: intervalMs, no growth). */
  maxIntervalMs?: number;
  /** Most alerts in one signal. */
  maxAlerts: number;
  /** Most bytes of alerts (JSON) in one signal: Temporal warns above 512 KiB and refuses 2 MiB. */
  maxBytes: number;
  /** What an alert adds to a signal (default: its JSON). */
  sizeOf?: (alert: PodAlert) => number;
}

interface Waiting<T> {
  alert: PodAlert;
  bytes: number;
  resolve(value: T): void;
  reject(err: unknown): void;
}

interface Lane<T> {
  waiting: Waiting<T>[];
  bytes: number;
  sending: boolean;
  lastSentAt: number;
  /** The spacing after the last signal: grows through a burst. */
  interval: number;
  timer: NodeJS.Timeout | null;
}

export class IncidentBatcher<T> {
  private readonly lanes = new Map<string, Lane<T>>();
  private readonly prune: NodeJS.Timeout;
  /** Signals sent, and the alerts they carried (for metrics). */
  onSent: (alerts: number) => void = () => undefined;
  /** A lane's signal was answered: another sender of its alerts (the spool's deliverer) may look again. */
  onAnswered: (incidentId: string) => void = () => undefined;

  constructor(
    /** Sends one signal with these alerts (all about one incident); resolves when Temporal accepted it. */
    private readonly send: (alerts: PodAlert[]) => Promise<T>,
    private readonly opts: BatcherOptions,
    private readonly now: () => number = () => performance.now(),
  ) {
    // Idle lanes are kept one interval (to space the next signal), then dropped.
    this.prune = setInterval(() => this.dropIdle(), Math.max(1000, opts.intervalMs * 2));
    this.prune.unref();
  }

  /** Resolves once Temporal has accepted the signal that carried this alert; rejects with its error. */
  submit(incidentId: string, alert: PodAlert): Promise<T> {
    const lane = this.lane(incidentId);
    const bytes = this.opts.sizeOf ? this.opts.sizeOf(alert) : Buffer.byteLength(JSON.stringify(alert));
    const l = lane;
    return new Promise<T>((resolve, reject) => {
      l.waiting.push({ alert, bytes, resolve, reject });
      l.bytes += bytes;
      this.schedule(l, incidentId);
    });
  }

  /**
   * Milliseconds until a signal to this incident may go: 0 now (a quiet incident), Infinity while one is in
   * flight (onAnswered says when it is back), else the rest of the interval.
   */
  dueIn(incidentId: string): number {
    const lane = this.lanes.get(incidentId);
    if (!lane) return 0;
    if (lane.sending) return Infinity;
    return Math.max(0, lane.lastSentAt + lane.interval - this.now());
  }

  /** Has the incident had a signal within its burst (not quiet since)? */
  inBurst(incidentId: string): boolean {
    const lane = this.lanes.get(incidentId);
    return !!lane && (lane.sending || !this.quiet(lane, this.now()));
  }

  /**
   * One signal on the incident's lane, now, with alerts held elsewhere (the spool): the lane's pacing counts it.
   * The caller asks dueIn first; alerts waiting in the lane go in their own signal after it.
   */
  sendNow(incidentId: string, alerts: PodAlert[]): Promise<T> {
    const lane = this.lane(incidentId);
    if (lane.timer) clearTimeout(lane.timer);
    lane.timer = null;
    return this.transmit(lane, incidentId, alerts);
  }

  /** Alerts waiting for their signal, across incidents. */
  get waiting(): number {
    let n = 0;
    for (const lane of this.lanes.values()) n += lane.waiting.length;
    return n;
  }

  close(): void {
    clearInterval(this.prune);
  }

  private get maxInterval(): number {
    return Math.max(this.opts.maxIntervalMs ?? 0, this.opts.intervalMs);
  }

  /** No signal for twice the lane's interval, and at least maxIntervalMs: the burst is over. */
  private quiet(lane: Lane<T>, t: number): boolean {
    return t - lane.lastSentAt > Math.max(lane.interval * 2, this.maxInterval);
  }

  private lane(incidentId: string): Lane<T> {
    let lane = this.lanes.get(incidentId);
    if (!lane) {
      lane = {
        waiting: [],
        bytes: 0,
        sending: false,
        lastSentAt: -Infinity,
        interval: this.opts.intervalMs,
        timer: null,
      };
      this.lanes.set(incidentId, lane);
    }
    return lane;
  }

  private schedule(lane: Lane<T>, incidentId: string): void {
    if (lane.sending || !lane.waiting.length) return;
    const full = lane.waiting.length >= this.opts.maxAlerts || lane.bytes >= this.opts.maxBytes;
    const wait = full ? 0 : lane.lastSentAt + lane.interval - this.now();
    if (wait <= 0) {
      if (lane.timer) clearTimeout(lane.timer);
      lane.timer = null;
      this.flush(lane, incidentId);
    } else {
      lane.timer ??= setTimeout(() => {
        lane.timer = null;
        this.flush(lane, incidentId);
      }, wait);
    }
  }

  private flush(lane: Lane<T>, incidentId: string): void {
    const batch: Waiting<T>[] = [];
    let bytes = 0;
    // At least one alert, then as many as fit.
    while (
      lane.waiting.length &&
      batch.length < this.opts.maxAlerts &&
      (batch.length === 0 || bytes + lane.waiting[0]!.bytes <= this.opts.maxBytes)
    ) {
      const w = lane.waiting.shift()!;
      bytes += w.bytes;
      batch.push(w);
    }
    if (!batch.length) return;
    lane.bytes -= bytes;
    this.transmit(
      lane,
      incidentId,
      batch.map((w) => w.alert),
    ).then(
      (value) => {
        for (const w of batch) w.resolve(value);
      },
      (err: unknown) => {
        for (const w of batch) w.reject(err);
      },
    );
  }

  /** Sends one signal on the lane: nothing else goes until it is answered, then the next waits the (grown) interval. */
  private transmit(lane: Lane<T>, incidentId: string, alerts: PodAlert[]): Promise<T> {
    const t = this.now();
    // Within a burst each signal doubles the spacing; a quiet spell ends the burst.
    lane.interval = this.quiet(lane, t) ? this.opts.intervalMs : Math.min(lane.interval * 2, this.maxInterval);
    lane.sending = true;
    lane.lastSentAt = t;
    this.onSent(alerts.length);
    return this.send(alerts).finally(() => {
      lane.sending = false;
      this.schedule(lane, incidentId);
      this.onAnswered(incidentId);
    });
  }

  private dropIdle(): void {
    const t = this.now();
    for (const [id, lane] of this.lanes) {
      if (!lane.sending && !lane.waiting.length && !lane.timer && this.quiet(lane, t)) this.lanes.delete(id);
    }
  }
}
