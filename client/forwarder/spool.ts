/**
 * The forwarder's durable spool: alerts Temporal did not take in time, kept on local disk until the
 * deliverer has them accepted. Falcosidekick never resends, so an alert refused with 503 is an alert
 * lost; an alert written here (and synced) before its 202 is not, through a forwarder SIGKILL or a
 * Temporal outage of hours.
 *
 * SQLite through better-sqlite3 (12.x: the line that builds on Node 20 and 22), in WAL mode with
 * synchronous=FULL, so a commit is on disk when it returns. Writes that arrive in the same turn of
 * the event loop share one transaction (one fsync), which is what lets the spool take a flood.
 */
import Database from 'better-sqlite3';
import { mkdirSync } from 'node:fs';
import * as path from 'node:path';
import type { PodAlert } from '../../domain/alert.js';
import type { PolicyMode } from '../../domain/routing.js';

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

interface Pending {
  item: SpoolItem;
  resolve(r: SpoolResult): void;
  reject(err: unknown): void;
}

export class Spool {
  private readonly db: Database.Database;
  /** Entries waiting, per incident: what `has`, `depth` and the deliverer's choice read without a query. */
  private readonly byIncident = new Map<string, number>();
  private count = 0;
  private pending: Pending[] = [];
  private flushing = false;
  private readonly insert: Database.Statement;
  private readonly deleteOne: Database.Statement;

  private constructor(
    readonly file: string,
    private readonly maxEntries: number,
    private readonly now: () => number,
  ) {
    mkdirSync(path.dirname(file), { recursive: true });
    this.db = new Database(file);
    this.db.pragma('journal_mode = WAL');
    this.db.pragma('synchronous = FULL');
    this.db.exec(`CREATE TABLE IF NOT EXISTS spool (
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
    CREATE INDEX IF NOT EXISTS spool_by_incident ON spool (incident, seq);`);
    // Spools written before senders were recorded: their entries wait on the source's default limit.
    const columns = this.db.prepare('PRAGMA table_info(spool)').all() as { name: string }[];
    if (!columns.some((c) => c.name === 'sender')) this.db.exec('ALTER TABLE spool ADD COLUMN sender TEXT');
    if (!columns.some((c) => c.name === 'mode')) this.db.exec('ALTER TABLE spool ADD COLUMN mode TEXT');
    for (const row of this.db.prepare('SELECT incident, COUNT(*) AS n FROM spool GROUP BY incident ORDER BY MIN(seq)').all() as { incident: string; n: number }[]) {
      this.byIncident.set(row.incident, row.n);
      this.count += row.n;
    }
    this.insert = this.db.prepare('INSERT OR IGNORE INTO spool (incident, alert_id, source, sender, mode, alert, received_at) VALUES (?, ?, ?, ?, ?, ?, ?)');
    this.deleteOne = this.db.prepare('DELETE FROM spool WHERE seq = ?');
  }

  /** Opens (or creates) the spool file; entries a killed forwarder left are there to deliver. */
  static open(file: string, opts: { maxEntries: number; now?: () => number }): Spool {
    return new Spool(path.resolve(file), opts.maxEntries, opts.now ?? (() => Date.now()));
  }

  get depth(): number {
    return this.count;
  }

  /** Does this incident have alerts waiting? Then later ones wait behind them, to keep its order. */
  has(incident: string): boolean {
    return this.byIncident.has(incident);
  }

  oldestAgeSeconds(): number | null {
    const row = this.db.prepare('SELECT MIN(received_at) AS t FROM spool').get() as { t: number | null };
    return row.t === null ? null : (this.now() - row.t) / 1000;
  }

  /** Resolves once the alert is on disk (or was already), or `full`. */
  add(item: SpoolItem): Promise<SpoolResult> {
    return new Promise((resolve, reject) => {
      this.pending.push({ item, resolve, reject });
      if (!this.flushing) {
        this.flushing = true;
        setImmediate(() => this.flush());
      }
    });
  }

  /** Incidents with alerts waiting, roughly the longest-waiting first (from memory: no query). */
  incidents(): IterableIterator<string> {
    return this.byIncident.keys();
  }

  /** The oldest alerts of one incident, in order, within the limits (at least one). */
  take(incident: string, maxAlerts: number, maxBytes: number): SpoolEntry[] {
    const rows = this.db
      .prepare('SELECT seq, incident, alert_id, source, sender, mode, alert, received_at, attempts FROM spool WHERE incident = ? ORDER BY seq LIMIT ?')
      .all(incident, maxAlerts) as { seq: number; incident: string; alert_id: string; source: string; sender: string | null; mode: PolicyMode | null; alert: string; received_at: number; attempts: number }[];
    const out: SpoolEntry[] = [];
    let bytes = 0;
    for (const r of rows) {
      if (out.length && bytes + r.alert.length > maxBytes) break;
      bytes += r.alert.length;
      out.push({ seq: r.seq, incident: r.incident, alertId: r.alert_id, source: r.source, sender: r.sender, mode: r.mode, alert: JSON.parse(r.alert) as PodAlert, receivedAt: r.received_at, attempts: r.attempts, bytes: r.alert.length });
    }
    return out;
  }

  /** Removes entries once Temporal took them (or they can never be delivered). */
  remove(entries: SpoolEntry[]): void {
    this.db.transaction(() => {
      for (const e of entries) {
        if (this.deleteOne.run(e.seq).changes) this.forget(e.incident);
      }
    })();
  }

  noteFailure(entries: SpoolEntry[], error: string): void {
    const stmt = this.db.prepare('UPDATE spool SET attempts = attempts + 1, last_error = ? WHERE seq = ?');
    this.db.transaction(() => {
      for (const e of entries) stmt.run(error.slice(0, 500), e.seq);
    })();
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
    try {
      this.db.transaction(() => {
        const at = this.now();
        for (const { item } of batch) {
          if (this.count >= this.maxEntries) {
            results.push('full');
            continue;
          }
          const changed = this.insert.run(item.incident, item.alertId, item.source, item.sender ?? null, item.mode ?? null, JSON.stringify(item.alert), at).changes;
          if (changed) {
            this.count += 1;
            this.byIncident.set(item.incident, (this.byIncident.get(item.incident) ?? 0) + 1);
          }
          results.push(changed ? 'queued' : 'already-queued');
        }
      })();
    } catch (err) {
      // Nothing was written (the transaction rolled back): undo the counts it made and fail every write.
      for (let i = 0; i < results.length; i++) if (results[i] === 'queued') this.forget(batch[i]!.item.incident);
      for (const p of batch) p.reject(err);
      return;
    }
    batch.forEach((p, i) => p.resolve(results[i]!));
  }

  private forget(incident: string): void {
    this.count -= 1;
    const n = (this.byIncident.get(incident) ?? 1) - 1;
    if (n > 0) this.byIncident.set(incident, n);
    else this.byIncident.delete(incident);
  }
}
