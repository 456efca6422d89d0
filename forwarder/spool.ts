/**
 * The forwarder's durable spool: alerts Temporal did not take in time, kept on local disk until the
 * deliverer has them accepted. Falcosidekick never resends, so an alert refused with 503 is an alert
 * lost; an alert written here (and synced) before its 202 is not, through a forwarder SIGKILL or a
 * Temporal outage of hours.
 *
 * SQLite through better-sqlite3 (12.x: the line that builds on Node 20 and 22), in WAL mode with
 * synchronous=FULL, so a commit is on disk when it returns. Writes share transactions (one fsync for
 * many alerts), which is what lets the spool take a flood: see COMMIT_SPACING.
 */
import Database from 'better-sqlite3';
import { existsSync, mkdirSync, renameSync } from 'node:fs';
import * as path from 'node:path';
import type { PodAlert } from '../domain/alert.js';
import type { PolicyMode } from '../domain/routing.js';

export interface SpoolItem {
  incident: string;
  alertId: string;
  source: string;
  /** The credential (or queue) that delivered it, whose rate limit it waits on; null in spools written before senders. */
  sender?: string | null;
  /** The routing rule's policy mode (null: the policy's own). */
  mode?: PolicyMode | null;
  alert: PodAlert;
}

export interface SpoolEntry extends SpoolItem {
  seq: number;
  receivedAt: number;
  attempts: number;
  bytes: number;
}

/** queued: written and synced; already-queued: the same alert waits already; full: the spool is at its bound. */
export type SpoolResult = 'queued' | 'already-queued' | 'full';

export interface SpoolOptions {
  maxEntries: number;
  /** Bytes of alerts held (their JSON); the file stays within about twice this (SQLite pages, index, WAL). */
  maxBytes?: number;
  now?: () => number;
}

/** A spool file that could not be opened as one, renamed so the forwarder starts with an empty spool. */
export interface SetAside {
  movedTo: string;
  error: string;
}

/** The last write that failed (disk full, I/O error), until a write succeeds again. */
export interface SpoolFailure {
  error: string;
  since: number;
}

/**
 * A commit's fsync blocks the event loop (better-sqlite3 is synchronous): about 2 ms here, so one commit per turn of
 * the loop, a few alerts each, spent most of a storm's loop in fsync (1,000 alerts/s at 6 a commit: 90%). So after a
 * commit the next waits this many times as long as the last took, capped at MAX_COMMIT_WAIT_MS: commits then block
 * at most about a fifth of the loop, a slow disk gathers more alerts per commit, a fast one adds no wait, and an
 * alert waits at most one spacing plus one commit for its 202.
 */
const COMMIT_SPACING = 4;
const MAX_COMMIT_WAIT_MS = 20;

/** SQLite's answers that mean the file is not a database we can use (as opposed to a disk that is full or gone). */
const CORRUPT = new Set(['SQLITE_CORRUPT', 'SQLITE_NOTADB']);

interface Pending {
  item: SpoolItem;
  resolve(r: SpoolResult): void;
  reject(err: unknown): void;
}

export class Spool {
  /** Entries waiting, per incident: what `has`, `depth` and the deliverer's choice read without a query. */
  private readonly byIncident = new Map<string, number>();
  private count = 0;
  private pending: Pending[] = [];
  private flushing = false;
  /** When the last commit ended, and how long it took (performance.now() ms): spaces the next (COMMIT_SPACING). */
  private lastCommitEnd = -Infinity;
  private lastCommitMs = 0;
  private commitCount = 0;
  private readonly insert: Database.Statement;
  private readonly deleteOne: Database.Statement;
  private readonly takeSome: Database.Statement;

  private bytesHeld = 0;
  /** An alert was refused for want of bytes since the last removal: full, though under maxBytes. */
  private outOfBytes = false;
  /** When the oldest entry was received (kept in memory: readiness and metrics never query the file). */
  private oldestAt: number | null = null;
  private failure: SpoolFailure | null = null;

  private constructor(
    readonly file: string,
    private readonly db: Database.Database,
    private readonly limits: { maxEntries: number; maxBytes: number },
    private readonly now: () => number,
    /** Set when the file found at start was corrupt and was moved aside. */
    readonly setAside: SetAside | null,
  ) {
    for (const row of this.db
      .prepare(
        'SELECT incident, COUNT(*) AS n, SUM(length(CAST(alert AS BLOB))) AS b FROM spool GROUP BY incident ORDER BY MIN(seq)',
      )
      .all() as { incident: string; n: number; b: number }[]) {
      this.byIncident.set(row.incident, row.n);
      this.count += row.n;
      this.bytesHeld += row.b;
    }
    this.oldestAt = this.readOldest();
    this.insert = this.db.prepare(
      'INSERT OR IGNORE INTO spool (incident, alert_id, source, sender, mode, alert, received_at) VALUES (?, ?, ?, ?, ?, ?, ?)',
    );
    this.deleteOne = this.db.prepare('DELETE FROM spool WHERE seq = ?');
    this.takeSome = this.db.prepare(
      'SELECT seq, incident, alert_id, source, sender, mode, alert, received_at, attempts FROM spool WHERE incident = ? ORDER BY seq LIMIT ?',
    );
  }

  /**
   * Opens (or creates) the spool file; entries a killed forwarder left are there to deliver. A file that is
   * not a usable SQLite database (a torn disk, a wrong file) is renamed `<file>.corrupt-<time>` and an empty
   * spool starts in its place: a forwarder that crash-loops on its spool takes no alerts at all.
   */
  static open(file: string, opts: SpoolOptions): Spool {
    const resolved = path.resolve(file);
    const now = opts.now ?? (() => Date.now());
    const limits = { maxEntries: opts.maxEntries, maxBytes: opts.maxBytes ?? Number.MAX_SAFE_INTEGER };
    mkdirSync(path.dirname(resolved), { recursive: true });
    const create = (setAside: SetAside | null) => {
      const db = openDatabase(resolved, limits.maxBytes);
      try {
        return new Spool(resolved, db, limits, now, setAside);
      } catch (err) {
        db.close();
        throw err;
      }
    };
    try {
      return create(null);
    } catch (err) {
      if (!CORRUPT.has((err as { code?: string }).code ?? '')) throw err;
      const movedTo = `${resolved}.corrupt-${new Date(now()).toISOString().replace(/[:.]/g, '-')}`;
      for (const suffix of ['', '-wal', '-shm'])
        if (existsSync(resolved + suffix)) renameSync(resolved + suffix, movedTo + suffix);
      return create({ movedTo, error: (err as Error).message });
    }
  }

  get depth(): number {
    return this.count;
  }

  /** Bytes of alerts waiting (what `maxBytes` bounds). */
  get bytes(): number {
    return this.bytesHeld;
  }

  /** Full by count or by bytes: new alerts are refused (503). */
  get full(): boolean {
    return this.count >= this.limits.maxEntries || this.bytesHeld >= this.limits.maxBytes || this.outOfBytes;
  }

  /** The write that failed last (disk full, I/O error), or null once a write succeeded again. */
  get failed(): SpoolFailure | null {
    return this.failure;
  }

  /**
   * A write of its own, to learn whether a failed spool takes writes again (space freed, disk back)
   * without waiting for an alert: readiness reads the answer.
   */
  probe(): void {
    try {
      this.db.prepare('INSERT OR REPLACE INTO probe (id, at) VALUES (1, ?)').run(this.now());
      this.failure = null;
    } catch (err) {
      this.fail(err);
    }
  }

  /** Does this incident have alerts waiting? Then later ones wait behind them, to keep its order. */
  has(incident: string): boolean {
    return this.byIncident.has(incident);
  }

  oldestAgeSeconds(): number | null {
    return this.oldestAt === null ? null : (this.now() - this.oldestAt) / 1000;
  }

  private readOldest(): number | null {
    const row = this.db.prepare('SELECT received_at AS t FROM spool ORDER BY seq LIMIT 1').get() as
      { t: number } | undefined;
    return row ? row.t : null;
  }

  /** Transactions that wrote alerts (each one fsync): how well writes are grouped. */
  get commits(): number {
    return this.commitCount;
  }

  /** Resolves once the alert is on disk (or was already), or `full`. */
  add(item: SpoolItem): Promise<SpoolResult> {
    return new Promise((resolve, reject) => {
      this.pending.push({ item, resolve, reject });
      if (!this.flushing) {
        this.flushing = true;
        const wait = Math.min(
          this.lastCommitEnd + COMMIT_SPACING * this.lastCommitMs - performance.now(),
          MAX_COMMIT_WAIT_MS,
        );
        if (wait > 0) setTimeout(() => this.flush(), wait);
        else setImmediate(() => this.flush());
      }
    });
  }

  /** Incidents with alerts waiting, roughly the longest-waiting first (from memory: no query). */
  incidents(): IterableIterator<string> {
    return this.byIncident.keys();
  }

  /** The oldest alerts of one incident, in order, within the limits (at least one); `sizeOf` counts toward maxBytes. */
  take(incident: string, maxAlerts: number, maxBytes: number, sizeOf?: (alert: PodAlert) => number): SpoolEntry[] {
    const rows = this.takeSome.all(incident, maxAlerts) as {
      seq: number;
      incident: string;
      alert_id: string;
      source: string;
      sender: string | null;
      mode: PolicyMode | null;
      alert: string;
      received_at: number;
      attempts: number;
    }[];
    const out: SpoolEntry[] = [];
    let bytes = 0;
    for (const r of rows) {
      const size = Buffer.byteLength(r.alert);
      const alert = JSON.parse(r.alert) as PodAlert;
      const counted = sizeOf ? sizeOf(alert) : size;
      if (out.length && bytes + counted > maxBytes) break;
      bytes += counted;
      out.push({
        seq: r.seq,
        incident: r.incident,
        alertId: r.alert_id,
        source: r.source,
        sender: r.sender,
        mode: r.mode,
        alert,
        receivedAt: r.received_at,
        attempts: r.attempts,
        bytes: size,
      });
    }
    return out;
  }

  /**
   * Removes entries once Temporal took them (or they can never be delivered). A removal the disk refuses
   * leaves them to be delivered again (the incident counts an alert ID once) and marks the spool failed.
   * A removal is not synced on its own (synchronous=NORMAL for its commit): the next write's sync covers
   * it, and one lost to a power cut only delivers its alerts again, which the incident counts once. That
   * halves the syncs that block the event loop while the spool carries a burst.
   */
  remove(entries: SpoolEntry[]): void {
    const gone: SpoolEntry[] = [];
    try {
      this.db.pragma('synchronous = NORMAL');
      try {
        this.db.transaction(() => {
          for (const e of entries) if (this.deleteOne.run(e.seq).changes) gone.push(e);
        })();
      } finally {
        this.db.pragma('synchronous = FULL');
      }
    } catch (err) {
      this.fail(err);
      return;
    }
    for (const e of gone) this.forget(e.incident, e.bytes);
    if (gone.length) this.outOfBytes = false;
    try {
      this.oldestAt = this.readOldest();
    } catch (err) {
      this.fail(err);
    }
  }

  noteFailure(entries: SpoolEntry[], error: string): void {
    try {
      const stmt = this.db.prepare('UPDATE spool SET attempts = attempts + 1, last_error = ? WHERE seq = ?');
      this.db.transaction(() => {
        for (const e of entries) stmt.run(error.slice(0, 500), e.seq);
      })();
    } catch (err) {
      this.fail(err); // only the attempt count is lost
    }
  }

  close(): void {
    this.flush();
    this.db.close();
  }

  /** One transaction for everything that arrived since the last: one fsync for many alerts. */
  private flush(): void {
    const batch = this.pending;
    this.pending = [];
    this.flushing = false;
    if (!batch.length) return;
    const results: SpoolResult[] = [];
    const sizes: number[] = [];
    const started = performance.now();
    try {
      this.db.transaction(() => {
        const at = this.now();
        for (const { item } of batch) {
          const json = JSON.stringify(item.alert);
          const size = Buffer.byteLength(json);
          sizes.push(size);
          if (this.count >= this.limits.maxEntries || this.bytesHeld + size > this.limits.maxBytes) {
            if (this.bytesHeld + size > this.limits.maxBytes) this.outOfBytes = true;
            results.push('full');
            continue;
          }
          const changed = this.insert.run(
            item.incident,
            item.alertId,
            item.source,
            item.sender ?? null,
            item.mode ?? null,
            json,
            at,
          ).changes;
          if (changed) {
            this.count += 1;
            this.bytesHeld += size;
            this.byIncident.set(item.incident, (this.byIncident.get(item.incident) ?? 0) + 1);
          }
          results.push(changed ? 'queued' : 'already-queued');
        }
      })();
    } catch (err) {
      this.timeCommit(started);
      // Nothing was written (the transaction rolled back): undo the counts it made and fail every write.
      for (let i = 0; i < results.length; i++)
        if (results[i] === 'queued') this.forget(batch[i]!.item.incident, sizes[i]!);
      this.fail(err);
      for (const p of batch) p.reject(new SpoolWriteError(this.failure!.error, { cause: err }));
      return;
    }
    this.timeCommit(started);
    this.failure = null;
    if (this.oldestAt === null && this.count > 0) this.oldestAt = this.now();
    batch.forEach((p, i) => p.resolve(results[i]!));
  }

  private timeCommit(started: number): void {
    this.commitCount++;
    this.lastCommitEnd = performance.now();
    this.lastCommitMs = this.lastCommitEnd - started;
  }

  private fail(err: unknown): void {
    const e = err as Error & { code?: string };
    this.failure = { error: `${e.code ? `${e.code}: ` : ''}${e.message}`, since: this.failure?.since ?? this.now() };
  }

  private forget(incident: string, bytes: number): void {
    this.count -= 1;
    this.bytesHeld -= bytes;
    const n = (this.byIncident.get(incident) ?? 1) - 1;
    if (n > 0) this.byIncident.set(incident, n);
    else this.byIncident.delete(incident);
  }
}

/** The spool could not write (disk full, I/O error): the alert is neither accepted nor queued. */
export class SpoolWriteError extends Error {
  override readonly name = 'SpoolWriteError';
}

/**
 * The database, its schema, and a quick integrity check: a corrupt file fails here (SQLITE_CORRUPT or
 * SQLITE_NOTADB) rather than on the first alert. `max_page_count` is the hard bound behind `maxBytes`:
 * whatever the accounting, the file does not outgrow about twice the alerts it may hold.
 */
function openDatabase(file: string, maxBytes: number): Database.Database {
  const db = new Database(file);
  try {
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = FULL');
    db.pragma('journal_size_limit = 16777216'); // the WAL shrinks back to 16 MiB after a checkpoint
    const check = db.pragma('quick_check', { simple: true });
    if (check !== 'ok') throw Object.assign(new Error(`integrity check: ${String(check)}`), { code: 'SQLITE_CORRUPT' });
    db.exec(`CREATE TABLE IF NOT EXISTS spool (
      seq INTEGER PRIMARY KEY AUTOINCREMENT,
      incident TEXT NOT NULL,
      alert_id TEXT NOT NULL,
      source TEXT NOT NULL,
      alert TEXT NOT NULL,
      received_at INTEGER NOT NULL,
      attempts INTEGER NOT NULL DEFAULT 0,
      last_error TEXT,
      UNIQUE (incident, alert_id)
    );
    CREATE INDEX IF NOT EXISTS spool_by_incident ON spool (incident, seq);
    CREATE TABLE IF NOT EXISTS probe (id INTEGER PRIMARY KEY, at INTEGER NOT NULL);`);
    // Spools written before senders were recorded: their entries wait on the source's default limit.
    const columns = db.prepare('PRAGMA table_info(spool)').all() as { name: string }[];
    if (!columns.some((c) => c.name === 'sender')) db.exec('ALTER TABLE spool ADD COLUMN sender TEXT');
    if (!columns.some((c) => c.name === 'mode')) db.exec('ALTER TABLE spool ADD COLUMN mode TEXT');
    if (maxBytes < Number.MAX_SAFE_INTEGER) {
      const pageSize = db.pragma('page_size', { simple: true }) as number;
      db.pragma(`max_page_count = ${Math.ceil((2 * maxBytes + 4 * 1024 * 1024) / pageSize)}`);
    }
    return db;
  } catch (err) {
    db.close();
    throw err;
  }
}
