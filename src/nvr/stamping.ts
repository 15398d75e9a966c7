/**
 * The NVR as the time-stamping authority of its cameras (issue 12 §2 "Trusted time"; docs/signed-video.md §4b).
 *
 * Every `intervalMs` (default 5 s) the service looks for sessions with records it has not stamped yet, and for
 * each one time-stamps its chain head: the newest record of the contiguous prefix 0…k of records that are held,
 * verified and chained (a token over record k proves records 0…k — and through their hashes the init segment and
 * every fragment they sign — existed at genTime). A session's end record is stamped as soon as it is held and
 * verified, even when records before it are still missing (it is the head of what the camera says it recorded).
 *
 * Tokens are made by the NVR's own TSA (tsa.ts: an operator-CA identity with the timeStamping EKU, its key in its
 * key store) through localStamper, which verifies every token before it is returned; they go to the `tokens`
 * table as DER, with the record index and hash, as timestamps.jsonl entries carry them. A failure is logged,
 * counted per session (`stamping.failures`, `last_error`) and in `stats`, and retried at the next tick.
 */
import type { Database as Db } from 'better-sqlite3';
import type { Logger } from '../server/log.js';
import type { Stamper } from '../tsp/stamper.js';
import type { NvrIndex } from './db.js';

export const DEFAULT_STAMP_INTERVAL_MS = 5_000;

export interface TokenRow {
  readonly id: number;
  readonly serial: string;
  readonly session: string;
  readonly record_idx: number;
  readonly sha256: string;
  readonly token: Buffer;
  readonly gen_time: number;
  readonly at: number;
}

export interface StampingRow {
  readonly serial: string;
  readonly session: string;
  readonly stamped_idx: number;
  readonly failures: number;
  readonly last_error: string | null;
  readonly last_error_at: number | null;
}

interface HeadRecord {
  readonly idx: number;
  readonly kind: string;
  readonly hash: string;
  readonly verified: number;
  readonly chain_linked: number | null;
  readonly state: string;
}

/**
 * The record to stamp next in a session, if any: the contiguous verified prefix's head, or a newer end record.
 * `knownPrefix`: a record index known to end such a prefix (records never lose their verification), so that only
 * the records after it are read — a long session is not re-read every tick. Returns the prefix found too.
 */
export function chainHead(db: Db, serial: string, session: string, stampedIdx: number, knownPrefix = -1): { idx: number; hash: string; kind: string; prefix: number } | undefined {
  const rows = db
    .prepare<[string, string, number], HeadRecord>('SELECT idx, kind, hash, verified, chain_linked, state FROM records WHERE serial = ? AND session = ? AND idx >= ? ORDER BY idx')
    .all(serial, session, Math.max(0, knownPrefix));
  let head: HeadRecord | undefined;
  let expect = Math.max(0, knownPrefix);
  for (const r of rows) {
    // records 0…i must all be held (idx = position), verified, kept, and (after 0) linked to the one before
    if (r.idx !== expect || r.verified !== 1 || r.state !== 'ok' || (r.idx > 0 && r.chain_linked !== 1)) break;
    head = r;
    expect++;
  }
  const prefix = head?.idx ?? knownPrefix;
  const end = rows.find((r) => r.kind === 'end' && r.verified === 1 && r.state === 'ok');
  if (end !== undefined && end.idx > (head?.idx ?? -1)) head = end;
  if (head === undefined || head.idx <= stampedIdx) return undefined;
  return { idx: head.idx, hash: head.hash, kind: head.kind, prefix };
}

/** The tokens of a session, in the order obtained. */
export function sessionTokens(index: NvrIndex, serial: string, session: string): TokenRow[] {
  return index.sql.prepare<[string, string], TokenRow>('SELECT * FROM tokens WHERE serial = ? AND session = ? ORDER BY id').all(serial, session);
}

function hasTable(db: Db, name: string): boolean {
  return db.prepare<[string], { n: number }>("SELECT count(*) AS n FROM sqlite_master WHERE type = 'table' AND name = ?").get(name)?.n === 1;
}

export interface StampingSummary {
  readonly tokens: number;
  /** Sessions whose latest attempt failed (retried at the next tick). */
  readonly failing: number;
  /** Failed attempts in all. */
  readonly failures: number;
  readonly lastError?: { readonly serial: string; readonly session: string; readonly error: string; readonly at: number };
  /** Per camera: tokens, the newest genTime, sessions whose end record is stamped. */
  readonly cameras: readonly { readonly serial: string; readonly tokens: number; readonly lastGenTime: number | null }[];
}

/** What `nvr status` shows about trusted time (an index of an older schema: nothing). */
export function stampingSummary(index: NvrIndex): StampingSummary | undefined {
  const db = index.sql;
  if (!hasTable(db, 'tokens')) return undefined;
  const n = (sql: string): number => db.prepare<[], { n: number }>(sql).get()?.n ?? 0;
  const last = db.prepare<[], StampingRow>('SELECT * FROM stamping WHERE last_error IS NOT NULL ORDER BY last_error_at DESC LIMIT 1').get();
  return {
    tokens: n('SELECT count(*) AS n FROM tokens'),
    failing: n("SELECT count(*) AS n FROM stamping WHERE last_error IS NOT NULL"),
    failures: n('SELECT coalesce(sum(failures), 0) AS n FROM stamping'),
    ...(last?.last_error !== null && last?.last_error !== undefined ? { lastError: { serial: last.serial, session: last.session, error: last.last_error, at: last.last_error_at ?? 0 } } : {}),
    cameras: db.prepare<[], { serial: string; tokens: number; lastGenTime: number | null }>('SELECT serial, count(*) AS tokens, max(gen_time) AS lastGenTime FROM tokens GROUP BY serial ORDER BY serial').all(),
  };
}

export interface StampingOptions {
  readonly index: NvrIndex;
  readonly stamper: Stamper;
  readonly log: Logger;
  readonly intervalMs?: number;
  readonly now?: () => number;
}

export interface StampingStats {
  stamped: number;
  failed: number;
  lastError?: string;
  lastTick?: number;
}

export class StampingService {
  readonly stats: StampingStats = { stamped: 0, failed: 0 };
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<unknown> | undefined;
  private stopped = false;
  private readonly now: () => number;
  /** Per session, the end of its contiguous verified prefix found so far. */
  private readonly prefixes = new Map<string, number>();

  constructor(private readonly o: StampingOptions) {
    this.now = o.now ?? Date.now;
  }

  get stamper(): Stamper {
    return this.o.stamper;
  }

  /** Starts ticking every intervalMs (the first tick at once). */
  start(): void {
    const every = this.o.intervalMs ?? DEFAULT_STAMP_INTERVAL_MS;
    const loop = (): void => {
      if (this.stopped) return;
      this.running = this.tick()
        .catch((e: unknown) => this.o.log.error({ event: 'stamping-error', err: String(e) }, `stamping: ${String(e)}`))
        .finally(() => {
          if (!this.stopped) this.timer = setTimeout(loop, every);
        });
    };
    loop();
  }

  /** Stops the timer and waits for a tick in progress. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer !== undefined) clearTimeout(this.timer);
    await this.running;
  }

  /** One pass: stamps the chain head of every session with records not stamped yet. */
  async tick(): Promise<{ stamped: number; failed: number }> {
    const db = this.o.index.sql;
    const due = db
      .prepare<[], { serial: string; session: string; stamped_idx: number }>(
        `SELECT s.serial, s.session, coalesce(t.stamped_idx, -1) AS stamped_idx
           FROM sessions s LEFT JOIN stamping t ON t.serial = s.serial AND t.session = s.session
          WHERE s.verified = 1
            AND EXISTS (SELECT 1 FROM records r WHERE r.serial = s.serial AND r.session = s.session AND r.idx > coalesce(t.stamped_idx, -1) AND r.verified = 1 AND r.state = 'ok')`,
      )
      .all();
    let stamped = 0;
    let failed = 0;
    for (const d of due) {
      if (this.stopped) break;
      const key = `${d.serial}/${d.session}`;
      const head = chainHead(db, d.serial, d.session, d.stamped_idx, this.prefixes.get(key));
      if (head === undefined) continue;
      this.prefixes.set(key, head.prefix);
      try {
        const { token, info } = await this.o.stamper.stamp(Buffer.from(head.hash, 'hex'));
        const at = this.now();
        this.o.index.tx(() => {
          db.prepare('INSERT INTO tokens (serial, session, record_idx, sha256, token, gen_time, at) VALUES (?, ?, ?, ?, ?, ?, ?)').run(d.serial, d.session, head.idx, head.hash, token, Date.parse(info.genTime), at);
          db.prepare(
            `INSERT INTO stamping (serial, session, stamped_idx) VALUES (?, ?, ?)
             ON CONFLICT(serial, session) DO UPDATE SET stamped_idx = excluded.stamped_idx, last_error = NULL, last_error_at = NULL`,
          ).run(d.serial, d.session, head.idx);
        });
        stamped++;
        this.stats.stamped++;
        this.o.log.debug({ event: 'stamped', serial: d.serial, session: d.session, record: head.idx, kind: head.kind, genTime: info.genTime }, `stamped ${d.serial}/${d.session} record ${head.idx}`);
      } catch (e) {
        const msg = e instanceof Error ? e.message : String(e);
        failed++;
        this.stats.failed++;
        this.stats.lastError = `${d.serial}/${d.session}: ${msg}`;
        db.prepare(
          `INSERT INTO stamping (serial, session, stamped_idx, failures, last_error, last_error_at) VALUES (?, ?, -1, 1, ?, ?)
           ON CONFLICT(serial, session) DO UPDATE SET failures = failures + 1, last_error = excluded.last_error, last_error_at = excluded.last_error_at`,
        ).run(d.serial, d.session, msg, this.now());
        this.o.log.warn({ event: 'stamp-failed', serial: d.serial, session: d.session, record: head.idx, err: msg }, `time-stamping ${d.serial}/${d.session} record ${head.idx} failed (retried): ${msg}`);
      }
    }
    this.stats.lastTick = this.now();
    return { stamped, failed };
  }
}
