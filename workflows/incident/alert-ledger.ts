/**
 * Which alert IDs an incident has already counted, in bounded memory that continue-as-new can carry.
 *
 * A flood sends hundreds of thousands of distinct alerts for one pod, so keeping every ID is not an option.
 * The ledger keeps a 62-bit hash of the newest `capacity` IDs: a resend (a sender retrying, a relay, SQS
 * redelivering) is recognised as long as fewer than `capacity` other alerts for the same pod arrived in
 * between. Two distinct IDs sharing a hash is about 1 in 10^10 at 50,000 IDs.
 */
export const ALERT_LEDGER_CAPACITY = 50_000;

/** Fixed width of one encoded hash: 62 bits in 11 base-64 digits. */
const WIDTH = 11;
/** What one ID adds to the ledger as continue-as-new carries it. */
export const LEDGER_BYTES_PER_ID = WIDTH;
const DIGITS = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';

export class AlertLedger {
  private readonly seen = new Set<string>();
  /** Insertion order, oldest first, for eviction; `head` skips evicted entries without shifting the array. */
  private order: string[] = [];
  private head = 0;

  constructor(private readonly capacity = ALERT_LEDGER_CAPACITY) {}

  /** Restores a ledger written by `serialize`. */
  static from(serialized: string | undefined, capacity = ALERT_LEDGER_CAPACITY): AlertLedger {
    const ledger = new AlertLedger(capacity);
    for (let i = 0; serialized && i + WIDTH <= serialized.length; i += WIDTH)
      ledger.add(serialized.slice(i, i + WIDTH));
    return ledger;
  }

  get size(): number {
    return this.seen.size;
  }

  /** Records the ID; false when it was already counted. */
  record(alertId: string): boolean {
    const key = hash64(alertId);
    if (this.seen.has(key)) return false;
    this.add(key);
    return true;
  }

  has(alertId: string): boolean {
    return this.seen.has(hash64(alertId));
  }

  /** The hashes, oldest first, as one string: about 11 bytes per ID. */
  serialize(): string {
    return this.order.slice(this.head).join('');
  }

  private add(key: string): void {
    this.seen.add(key);
    this.order.push(key);
    const oldest = this.seen.size > this.capacity ? this.order[this.head++] : undefined;
    if (oldest !== undefined) this.seen.delete(oldest);
    // Compact now and then so the array does not grow with everything ever evicted.
    if (this.head > 4096 && this.head * 2 > this.order.length) {
      this.order = this.order.slice(this.head);
      this.head = 0;
    }
  }
}

/** Two independent 32-bit multiply-xorshift streams over the UTF-16 code units: fast, stable, no Node API. */
export function hash64(text: string): string {
  let h1 = 0xdeadbeef ^ text.length;
  let h2 = 0x41c6ce57 ^ text.length;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    h1 = Math.imul(h1 ^ c, 2654435761);
    h2 = Math.imul(h2 ^ c, 1597334677);
  }
  h1 = Math.imul(h1 ^ (h1 >>> 16), 2246822507) ^ Math.imul(h2 ^ (h2 >>> 13), 3266489909);
  h2 = Math.imul(h2 ^ (h2 >>> 16), 2246822507) ^ Math.imul(h1 ^ (h1 >>> 13), 3266489909);
  // 11 digits of 6 bits: 30 bits of h1 and all 32 of h2.
  let out = '';
  let a = h1 >>> 0;
  let b = h2 >>> 0;
  for (let i = 0; i < 5; i++) {
    out += DIGITS[a & 63];
    a >>>= 6;
  }
  for (let i = 0; i < 6; i++) {
    out += DIGITS[b & 63];
    b >>>= 6;
  }
  return out;
}
