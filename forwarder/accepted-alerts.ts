/**
 * Alerts Temporal has already accepted, and those being submitted right now, keyed by incident
 * and alert ID. A resend is answered from here without a Temporal round trip; concurrent copies
 * of one alert share a single submission. Only accepted alerts are remembered, so a resend after
 * a failure is always tried again. The workflow deduplicates alert IDs too: this is a fast path,
 * not the guarantee.
 */
export class AcceptedAlerts<T> {
  private readonly done = new Map<string, T>();
  private readonly pending = new Map<string, Promise<T>>();

  constructor(private readonly capacity: number) {}

  get(key: string): T | undefined {
    return this.done.get(key);
  }

  /** Is this key being submitted right now? */
  inFlight(key: string): boolean {
    return this.pending.has(key);
  }

  /** Runs `submit` unless the same key is already in flight; `shared` tells the caller it joined. */
  async once(key: string, submit: () => Promise<T>): Promise<{ value: T; shared: boolean }> {
    const inFlight = this.pending.get(key);
    if (inFlight) return { value: await inFlight, shared: true };
    const p = submit();
    this.pending.set(key, p);
    try {
      const value = await p;
      this.remember(key, value);
      return { value, shared: false };
    } finally {
      this.pending.delete(key);
    }
  }

  /** Records an alert Temporal accepted by another way (the spool's deliverer). */
  remember(key: string, value: T): void {
    if (this.capacity === 0) return;
    this.done.delete(key);
    this.done.set(key, value);
    // Map iterates in insertion order: the first key is the oldest.
    if (this.done.size > this.capacity) this.done.delete(this.done.keys().next().value!);
  }
}
