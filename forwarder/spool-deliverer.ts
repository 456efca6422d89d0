/**
 * Drains the spool into Temporal: per incident, the oldest alerts first, one signal in flight at a time;
 * an entry is removed only after Temporal accepted the signal that carried it. While Temporal is down it
 * waits, backing off to `maxBackoffMs`; a failure for one incident backs off that incident only.
 */
import type { PodAlert } from '../domain/alert.js';
import type { PolicyMode } from '../domain/routing.js';
import type { Spool, SpoolEntry } from './spool.js';
import { IncidentSaturated } from './temporal-gateway.js';

export interface DelivererOptions {
  /** Incidents delivered at once. */
  concurrency: number;
  maxAlerts: number;
  maxBytes: number;
  /** An alert's bytes toward maxBytes (default: its JSON as spooled). */
  sizeOf?: (alert: PodAlert) => number;
  minBackoffMs: number;
  maxBackoffMs: number;
}

export interface DelivererHooks {
  /** Sends one signal with these alerts of one incident; resolves once Temporal accepted it. */
  /** `mode`: the routing rule's, recorded with the oldest alert (it may start the incident). */
  send(alerts: PodAlert[], mode?: PolicyMode): Promise<unknown>;
  /** May this incident's alerts go now? False (a new incident over its sender's rate) tries again later. */
  mayStart(incident: string, first: SpoolEntry): boolean;
  /** Milliseconds until this incident may have its next signal (its batching lane): 0 now, Infinity while one is in flight (kick() follows its answer). */
  dueIn?(incident: string): number;
  /** Is Temporal reachable? Asked before a new round while deliveries fail. */
  ready(): Promise<boolean>;
  delivered(entries: SpoolEntry[], value: unknown): void;
  /** Entries removed without delivery, and why (an incident whose run takes no more signals). */
  dropped(entries: SpoolEntry[], reason: string): void;
  failed(entries: SpoolEntry[], error: string): void;
}

export class SpoolDeliverer {
  private running = false;
  private loop: Promise<void> | null = null;
  private wake: (() => void) | null = null;
  private readonly inFlight = new Set<string>();
  private readonly notBefore = new Map<string, { at: number; backoff: number }>();
  private globalBackoff = 0;

  constructor(
    private readonly spool: Spool,
    private readonly hooks: DelivererHooks,
    private readonly opts: DelivererOptions,
    private readonly now: () => number = () => Date.now(),
  ) {}

  start(): void {
    if (this.running) return;
    this.running = true;
    this.loop = this.run();
  }

  /** New entries: look now rather than at the next timer. */
  kick(): void {
    this.wake?.();
  }

  /** Resolves once the spool is empty, at `deadline` (epoch ms), or once Temporal is not `reachable`, delivering as usual meanwhile. */
  async drain(deadline: number, reachable: () => boolean): Promise<void> {
    this.kick();
    while (this.running && this.spool.depth > 0 && this.now() < deadline && reachable()) {
      await new Promise((r) => setTimeout(r, Math.min(100, Math.max(deadline - this.now(), 1))));
    }
  }

  /** Stops taking new work and waits for the signals in flight. */
  async stop(): Promise<void> {
    this.running = false;
    this.kick();
    await this.loop;
  }

  private async run(): Promise<void> {
    const active = new Set<Promise<void>>();
    while (this.running) {
      if (this.globalBackoff && !(await this.hooks.ready())) {
        await this.sleep(this.globalBackoff);
        this.globalBackoff = Math.min(this.globalBackoff * 2, this.opts.maxBackoffMs);
        continue;
      }
      this.globalBackoff = 0;
      const t = this.now();
      let nextDue = Infinity;
      for (const incident of [...this.spool.incidents()]) {
        if (active.size >= this.opts.concurrency) break;
        if (this.inFlight.has(incident)) continue;
        const wait = this.notBefore.get(incident);
        if (wait && wait.at > t) {
          nextDue = Math.min(nextDue, wait.at);
          continue;
        }
        const paced = this.hooks.dueIn?.(incident) ?? 0;
        if (paced > 0) {
          nextDue = Math.min(nextDue, t + paced);
          continue;
        }
        const p = this.deliver(incident).finally(() => {
          active.delete(p);
          this.kick();
        });
        active.add(p);
      }
      // Sleep until an entry arrives, a delivery or a lane's signal ends, or the next incident is due.
      await this.sleep(Number.isFinite(nextDue) ? Math.max(10, nextDue - this.now()) : 1000);
    }
    await Promise.all(active);
  }

  private async deliver(incident: string): Promise<void> {
    const entries = this.spool.take(incident, this.opts.maxAlerts, this.opts.maxBytes, this.opts.sizeOf);
    if (!entries.length) return;
    if (!this.hooks.mayStart(incident, entries[0]!)) {
      this.backOff(incident);
      return;
    }
    this.inFlight.add(incident);
    try {
      const value = await this.hooks.send(
        entries.map((e) => e.alert),
        entries[0]!.mode ?? undefined,
      );
      this.spool.remove(entries);
      this.notBefore.delete(incident);
      this.hooks.delivered(entries, value);
    } catch (err) {
      if (err instanceof IncidentSaturated) {
        this.spool.remove(entries);
        this.hooks.dropped(entries, err.message);
        return;
      }
      const error = err instanceof Error ? err.message : String(err);
      this.spool.noteFailure(entries, error);
      this.hooks.failed(entries, error);
      this.backOff(incident);
      this.globalBackoff ||= this.opts.minBackoffMs; // check Temporal before the next round
    } finally {
      this.inFlight.delete(incident);
    }
  }

  private backOff(incident: string): void {
    const prev = this.notBefore.get(incident)?.backoff ?? 0;
    const backoff = Math.min(Math.max(prev * 2, this.opts.minBackoffMs), this.opts.maxBackoffMs);
    this.notBefore.set(incident, { at: this.now() + backoff, backoff });
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      function done() {
        clearTimeout(timer);
        resolve();
      }
      this.wake = () => {
        this.wake = null;
        done();
      };
    });
  }
}
