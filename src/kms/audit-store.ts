/**
 * The KMS's audit log in its database: every security decision is one row of a hash chain (audit/chain.ts), and
 * signed checkpoints over the chain head are kept beside it.
 *
 *   audit              seq, at, actor, action, detail (JSON, for queries), entry (the canonical JSON that is
 *                      hashed: v, seq, at, actor, action, detail, and the client's address and user agent when
 *                      known), leaf, prev, hash
 *   audit_checkpoints  size, head, at, body, signature
 *
 * An append runs inside the caller's transaction when there is one, so a decision and its audit entry commit
 * together; a failed append throws, and callers that release keys release nothing then.
 */
import type { Database as Db } from 'better-sqlite3';
import { GENESIS, nextRow } from '../audit/chain.js';
import type { ChainRow, Checkpoint } from '../audit/chain.js';

/** Who was on the other end of a decision (browser logins, licences). */
export interface AuditContext {
  readonly address?: string;
  readonly userAgent?: string;
}

/** One entry to append. */
export interface AuditInput {
  readonly actor: string;
  readonly action: string;
  readonly detail: Readonly<Record<string, unknown>>;
  readonly at: number;
  readonly context?: AuditContext;
}

export interface AuditRow extends ChainRow {
  readonly at: number;
  readonly actor: string;
  readonly action: string;
}

/** The entry's fields (before its sequence number is added). */
function entryFields(at: number, actor: string, action: string, detail: Readonly<Record<string, unknown>>, context?: AuditContext): Record<string, unknown> {
  const from = context === undefined ? undefined : { ...(context.address !== undefined ? { address: context.address } : {}), ...(context.userAgent !== undefined ? { ua: context.userAgent.slice(0, 256) } : {}) };
  return { v: 1, at: new Date(at).toISOString(), actor, action, detail, ...(from !== undefined && Object.keys(from).length > 0 ? { from } : {}) };
}

/**
 * Schema 3: the audit table gains the chain's columns and existing entries are chained as they are, in order (the
 * chain then vouches for them from the upgrade on); signed checkpoints get their table.
 */
export function migrateAuditChain(db: Db): void {
  db.exec(`ALTER TABLE audit ADD COLUMN entry TEXT;
ALTER TABLE audit ADD COLUMN leaf TEXT;
ALTER TABLE audit ADD COLUMN prev TEXT;
ALTER TABLE audit ADD COLUMN hash TEXT;
CREATE TABLE audit_checkpoints (size INTEGER PRIMARY KEY, head TEXT NOT NULL, at INTEGER NOT NULL, body TEXT NOT NULL, signature TEXT NOT NULL);
CREATE INDEX audit_by_action ON audit (action);`);
  const rows = db.prepare<[], { seq: number; at: number; actor: string; action: string; detail: string }>('SELECT seq, at, actor, action, detail FROM audit ORDER BY seq').all();
  const update = db.prepare('UPDATE audit SET seq = ?, entry = ?, leaf = ?, prev = ?, hash = ? WHERE seq = ?');
  let last: ChainRow | undefined;
  for (const r of rows) {
    let detail: Record<string, unknown>;
    try {
      const parsed: unknown = JSON.parse(r.detail);
      detail = typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed) ? (parsed as Record<string, unknown>) : { value: parsed };
    } catch {
      detail = { text: r.detail };
    }
    // sequence numbers become 1, 2, 3 … (a gap would read as a deleted entry); ascending, so the new one is free
    const row = nextRow(last, entryFields(r.at, r.actor, r.action, detail));
    update.run(row.seq, row.entry, row.leaf, row.prev, row.hash, r.seq);
    last = row;
  }
}

export class KmsAudit {
  /** Called after each append (the checkpointer counts entries). */
  onAppend: (() => void) | undefined;

  constructor(private readonly db: Db) {}

  private last(): { seq: number; hash: string } | undefined {
    return this.db.prepare<[], { seq: number; hash: string }>('SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1').get();
  }

  /** Appends one entry; inside the caller's transaction when there is one. */
  append(actor: string, action: string, detail: Readonly<Record<string, unknown>>, at = Date.now(), context?: AuditContext): AuditRow {
    return this.appendMany([{ actor, action, detail, at, ...(context !== undefined ? { context } : {}) }])[0] as AuditRow;
  }

  /** Appends entries in order, all in one transaction (the caller's when there is one): all or none. */
  appendMany(entries: readonly AuditInput[]): AuditRow[] {
    const appended = this.db.transaction(() => {
      let last: { seq: number; hash: string } | undefined = this.last();
      const insert = this.db.prepare('INSERT INTO audit (seq, at, actor, action, detail, entry, leaf, prev, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)');
      return entries.map((e) => {
        const row = nextRow(last, entryFields(e.at, e.actor, e.action, e.detail, e.context));
        insert.run(row.seq, e.at, e.actor, e.action, JSON.stringify(e.detail), row.entry, row.leaf, row.prev, row.hash);
        last = row;
        return { ...row, at: e.at, actor: e.actor, action: e.action };
      });
    })();
    if (appended.length > 0) this.onAppend?.();
    return appended;
  }

  /** The number of entries and the chain head. */
  head(): { size: number; head: string } {
    const l = this.last();
    return { size: l?.seq ?? 0, head: l?.hash ?? GENESIS };
  }

  /** Entries seq ≥ from, in order, at most `limit`. */
  rows(from = 1, limit = 10_000): AuditRow[] {
    return this.db.prepare<[number, number], AuditRow>('SELECT seq, at, actor, action, entry, leaf, prev, hash FROM audit WHERE seq >= ? ORDER BY seq LIMIT ?').all(from, limit);
  }

  /** The last `limit` entries, newest first. */
  tail(limit: number): AuditRow[] {
    return this.db.prepare<[number], AuditRow>('SELECT seq, at, actor, action, entry, leaf, prev, hash FROM audit ORDER BY seq DESC LIMIT ?').all(limit);
  }

  row(seq: number): AuditRow | undefined {
    return this.db.prepare<[number], AuditRow>('SELECT seq, at, actor, action, entry, leaf, prev, hash FROM audit WHERE seq = ?').get(seq);
  }

  checkpoints(): Checkpoint[] {
    return this.db.prepare<[], Checkpoint>('SELECT size, head, at, body, signature FROM audit_checkpoints ORDER BY size').all();
  }

  lastCheckpoint(): Checkpoint | undefined {
    return this.db.prepare<[], Checkpoint>('SELECT size, head, at, body, signature FROM audit_checkpoints ORDER BY size DESC LIMIT 1').get();
  }

  addCheckpoint(c: Checkpoint): void {
    this.db.prepare('INSERT INTO audit_checkpoints (size, head, at, body, signature) VALUES (@size, @head, @at, @body, @signature) ON CONFLICT(size) DO NOTHING').run(c);
  }
}
