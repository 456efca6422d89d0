/**
 * Alerts about one pod, batched into few signals. A miner that trips a Falco rule every second, or a
 * scanner that trips it a thousand times a second, sends that many alerts; each signal costs the
 * incident a history event and a workflow task, so a signal per alert would flood it. Here each
 * incident has one lane: the first alert of a quiet incident goes at once (no added latency), and
 * while a signal is in flight, or within `intervalMs` of the last, alerts wait and go together.
 * Every alert still resolves only once Temporal has accepted the signal that carried it.
 */
import type { PodAlert } from '../domain/alert.js';

export interface BatcherOptions {
  /** Least time between two signals to one incident. */
  intervalMs: number;
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
  timer: NodeJS.Timeout | null;
}

export class IncidentBatcher<T> {
  private readonly lanes = new Map<string, Lane<T>>();
  private readonly prune: NodeJS.Timeout;
  /** Signals sent, and the alerts they carried (for metrics). */
  onSent: (alerts: number) => void = () => undefined;

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
    let lane = this.lanes.get(incidentId);
    if (!lane) {
      lane = { waiting: [], bytes: 0, sending: false, lastSentAt: -Infinity, timer: null };
      this.lanes.set(incidentId, lane);
    }
    const bytes = this.opts.sizeOf ? this.opts.sizeOf(alert) : Buffer.byteLength(JSON.stringify(alert));
    const l = lane;
    return new Promise<T>((resolve, reject) => {
      l.waiting.push({ alert, bytes, resolve, reject });
      l.bytes += bytes;
      this.schedule(l);
    });
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

  private schedule(lane: Lane<T>): void {
    if (lane.sending || !lane.waiting.length) return;
    const full = lane.waiting.length >= this.opts.maxAlerts || lane.bytes >= this.opts.maxBytes;
    const wait = full ? 0 : lane.lastSentAt + this.opts.intervalMs - this.now();
    if (wait <= 0) {
      if (lane.timer) clearTimeout(lane.timer);
      lane.timer = null;
      this.flush(lane);
    } else {
      lane.timer ??= setTimeout(() => {
        lane.timer = null;
        this.flush(lane);
      }, wait);
    }
  }

  private flush(lane: Lane<T>): void {
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
    lane.sending = true;
    lane.lastSentAt = this.now();
    this.onSent(batch.length);
    this.send(batch.map((w) => w.alert))
      .then(
        (value) => {
          for (const w of batch) w.resolve(value);
        },
        (err: unknown) => {
          for (const w of batch) w.reject(err);
        },
      )
      .finally(() => {
        lane.sending = false;
        this.schedule(lane);
      });
  }

  private dropIdle(): void {
    const t = this.now();
    for (const [id, lane] of this.lanes) {
      if (!lane.sending && !lane.waiting.length && !lane.timer && t - lane.lastSentAt >= this.opts.intervalMs)
        this.lanes.delete(id);
    }
  }
}
