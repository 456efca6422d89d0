/**
 * Incidents this forwarder delivered an alert to lately. Their repeats are cheap (a batched signal to a
 * running incident), so they skip the rate limit, which is there for what is costly: starting incidents.
 * A flood about one pod then never delays alerts about other pods.
 */
export class RecentIncidents {
  private readonly seen = new Map<string, number>();

  constructor(
    private readonly capacity: number,
    private readonly ttlMs: number,
    private readonly now: () => number = () => performance.now(),
  ) {}

  has(incidentId: string): boolean {
    const at = this.seen.get(incidentId);
    if (at === undefined) return false;
    if (this.now() - at > this.ttlMs) {
      this.seen.delete(incidentId);
      return false;
    }
    return true;
  }

  touch(incidentId: string): void {
    this.seen.delete(incidentId);
    this.seen.set(incidentId, this.now());
    // Map iterates in insertion order: the first key is the least recently touched.
    if (this.seen.size > this.capacity) this.seen.delete(this.seen.keys().next().value!);
  }
}
