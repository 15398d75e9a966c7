/**
 * Evidence locks (issue 12 §2): a case locks a camera's wall-clock range; locked segments are never deleted by
 * anything — retention by age or bytes, the disk watermark, `nvr check --repair` (retention-service.ts checks the
 * locks inside the same write transaction that deletes, so a lock committed first always wins).
 *
 * Every lock and unlock is appended to the NVR's audit table, hash-chained: the entry is canonical JSON, its leaf
 * hash RFC 6962's SHA-256(0x00 ‖ entry), and h_i = SHA-256(h_{i-1} ‖ leaf_i) with h_0 = 32 zero bytes — the chain
 * issue 13's audit log (with signed checkpoints) continues, so the rows can move there as they are. A lock and its
 * audit entry commit in one transaction: no audit entry, no lock.
 */
import { userInfo } from 'node:os';
import { nextRow, verifyChain } from '../audit/chain.js';
import type { ChainCheck } from '../audit/chain.js';
import { InputError, NotFoundError } from '../errors.js';
import type { NvrIndex } from './db.js';

export { GENESIS, chainHash, leafHash } from '../audit/chain.js';

export interface LockRow {
  readonly id: number;
  readonly case_id: string;
  readonly serial: string;
  readonly start_ms: number;
  readonly end_ms: number;
  readonly reason: string;
  readonly created_at: number;
  readonly created_by: string;
  readonly released_at: number | null;
  readonly released_by: string | null;
  readonly release_reason: string | null;
}

export interface AuditRow {
  readonly seq: number;
  readonly at: number;
  readonly actor: string;
  readonly action: string;
  readonly entry: string;
  readonly leaf: string;
  readonly prev: string;
  readonly hash: string;
}

const CASE = /^[A-Za-z0-9][A-Za-z0-9._:/-]{0,127}$/;
const SERIAL = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

/** The OS user running a command (the actor of a CLI lock). */
export function osActor(): string {
  try {
    return `os:${userInfo().username}`;
  } catch {
    return `os:uid ${process.getuid?.() ?? '?'}`;
  }
}

/** Parses an ISO 8601 time with a zone (Z or ±hh:mm); ms since the epoch. */
export function parseIsoTime(value: string, what: string): number {
  if (!/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:\d{2})$/.test(value)) throw new InputError(`${what} must be an ISO 8601 time with its zone (e.g. 2026-12-07T03:00:00Z), not ${JSON.stringify(value)}`);
  const t = Date.parse(value);
  if (!Number.isFinite(t)) throw new InputError(`${what} ${JSON.stringify(value)} is not a valid time`);
  return t;
}

export interface LockRequest {
  readonly serial: string;
  readonly from: number;
  readonly to: number;
  readonly caseId: string;
  readonly reason: string;
  readonly actor: string;
}

export interface UnlockRequest {
  readonly caseId: string;
  readonly serial?: string;
  readonly reason: string;
  readonly actor: string;
}

function checkText(v: string, what: string): string {
  if (v.trim() === '' || v.length > 1000 || [...v].some((c) => c.charCodeAt(0) < 0x20 || c.charCodeAt(0) === 0x7f)) throw new InputError(`${what} must be 1–1000 printable characters`);
  return v;
}

export class LockStore {
  constructor(
    private readonly index: NvrIndex,
    private readonly now: () => number = Date.now,
  ) {}

  private get db() {
    return this.index.sqlite;
  }

  /** Appends one audit entry (inside the caller's transaction). */
  private audit(action: string, actor: string, fields: Record<string, unknown>): AuditRow {
    const last = this.db.prepare<[], { seq: number; hash: string }>('SELECT seq, hash FROM nvr_audit ORDER BY seq DESC LIMIT 1').get();
    const at = this.now();
    const row: AuditRow = { ...nextRow(last, { v: 1, at: new Date(at).toISOString(), actor, action, ...fields }), at, actor, action };
    this.db.prepare('INSERT INTO nvr_audit (seq, at, actor, action, entry, leaf, prev, hash) VALUES (@seq, @at, @actor, @action, @entry, @leaf, @prev, @hash)').run(row);
    return row;
  }

  /** An export made (or failed) through the viewers' listener (exports.ts): one audit entry; returns its seq. */
  recordExport(actor: string, fields: Record<string, unknown>): number {
    return this.db.transaction(() => this.audit('export', actor, fields))().seq;
  }

  /** Locks [from, to) of a camera for a case; the lock and its audit entry commit together. */
  lock(r: LockRequest): { lock: LockRow; audit: AuditRow; alreadyExpired: number } {
    if (!SERIAL.test(r.serial)) throw new InputError(`camera serial ${JSON.stringify(r.serial)} is not valid`);
    if (!CASE.test(r.caseId)) throw new InputError(`case id ${JSON.stringify(r.caseId)} must be 1–128 letters, digits or ._:/- (starting with a letter or digit)`);
    if (!(Number.isSafeInteger(r.from) && Number.isSafeInteger(r.to) && r.to > r.from)) throw new InputError('the lock range must end after it starts');
    checkText(r.reason, 'the reason');
    checkText(r.actor, 'the actor');
    return this.db
      .transaction(() => {
        const at = this.now();
        const id = Number(
          this.db
            .prepare('INSERT INTO locks (case_id, serial, start_ms, end_ms, reason, created_at, created_by) VALUES (?, ?, ?, ?, ?, ?, ?)')
            .run(r.caseId, r.serial, r.from, r.to, r.reason, at, r.actor).lastInsertRowid,
        );
        const audit = this.audit('lock', r.actor, { lock: id, case: r.caseId, camera: r.serial, from: new Date(r.from).toISOString(), to: new Date(r.to).toISOString(), reason: r.reason });
        const alreadyExpired = (this.db.prepare<[string, number, number], { n: number }>('SELECT count(*) AS n FROM expired WHERE serial = ? AND start_ms < ? AND end_ms > ?').get(r.serial, r.to, r.from) as { n: number }).n;
        return { lock: this.db.prepare<[number], LockRow>('SELECT * FROM locks WHERE id = ?').get(id) as LockRow, audit, alreadyExpired };
      })
      .immediate();
  }

  /** Releases the active locks of a case (of one camera, or all its cameras); NotFoundError when there is none. */
  unlock(r: UnlockRequest): { released: LockRow[]; audit: AuditRow } {
    if (!CASE.test(r.caseId)) throw new InputError(`case id ${JSON.stringify(r.caseId)} is not valid`);
    if (r.serial !== undefined && !SERIAL.test(r.serial)) throw new InputError(`camera serial ${JSON.stringify(r.serial)} is not valid`);
    checkText(r.reason, 'the reason');
    checkText(r.actor, 'the actor');
    return this.db
      .transaction(() => {
        const rows =
          r.serial === undefined
            ? this.db.prepare<[string], LockRow>('SELECT * FROM locks WHERE case_id = ? AND released_at IS NULL ORDER BY id').all(r.caseId)
            : this.db.prepare<[string, string], LockRow>('SELECT * FROM locks WHERE case_id = ? AND serial = ? AND released_at IS NULL ORDER BY id').all(r.caseId, r.serial);
        if (rows.length === 0) throw new NotFoundError(`no active lock of case ${r.caseId}${r.serial !== undefined ? ` on camera ${r.serial}` : ''}`);
        const at = this.now();
        const upd = this.db.prepare('UPDATE locks SET released_at = ?, released_by = ?, release_reason = ? WHERE id = ?');
        for (const l of rows) upd.run(at, r.actor, r.reason, l.id);
        const audit = this.audit('unlock', r.actor, { locks: rows.map((l) => l.id), case: r.caseId, ...(r.serial !== undefined ? { camera: r.serial } : {}), reason: r.reason });
        return { released: rows.map((l) => this.db.prepare<[number], LockRow>('SELECT * FROM locks WHERE id = ?').get(l.id) as LockRow), audit };
      })
      .immediate();
  }

  /** Active locks (of one camera), optionally only those overlapping [from, to). */
  active(serial?: string, from?: number, to?: number): LockRow[] {
    const lo = from ?? Number.MIN_SAFE_INTEGER;
    const hi = to ?? Number.MAX_SAFE_INTEGER;
    if (serial === undefined) return this.db.prepare<[number, number], LockRow>('SELECT * FROM locks WHERE released_at IS NULL AND start_ms < ? AND end_ms > ? ORDER BY serial, start_ms').all(hi, lo);
    return this.db.prepare<[string, number, number], LockRow>('SELECT * FROM locks WHERE serial = ? AND released_at IS NULL AND start_ms < ? AND end_ms > ? ORDER BY start_ms').all(serial, hi, lo);
  }

  /** Every lock ever made, released ones included. */
  all(): LockRow[] {
    return this.db.prepare<[], LockRow>('SELECT * FROM locks ORDER BY id').all();
  }

  auditLog(): AuditRow[] {
    return this.db.prepare<[], AuditRow>('SELECT * FROM nvr_audit ORDER BY seq').all();
  }
}

/** Checks the audit chain: every leaf, link and sequence number (audit/chain.ts). */
export function verifyAuditChain(rows: readonly AuditRow[]): ChainCheck {
  return verifyChain(rows);
}
