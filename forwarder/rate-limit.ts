/** A token bucket: `burst` alerts at once, refilled at `perSecond`. */
export class TokenBucket {
  private tokens: number;
  private last: number;

  constructor(
    private readonly perSecond: number,
    private readonly burst: number,
    private readonly now: () => number = () => performance.now(),
  ) {
    this.tokens = burst;
    this.last = now();
  }

  /** Takes `n` tokens, or none: returns 0 on success, else the seconds until `n` would be available. */
  take(n: number): number {
    const t = this.now();
    this.tokens = Math.min(this.burst, this.tokens + ((t - this.last) / 1000) * this.perSecond);
    this.last = t;
    if (n <= this.tokens) {
      this.tokens -= n;
      return 0;
    }
    // A request larger than the bucket can never pass; say how long a full bucket takes.
    return Math.max(1, Math.ceil((Math.min(n, this.burst) - this.tokens) / this.perSecond));
  }
}
