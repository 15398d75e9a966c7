/**
 * The NVR's index (SQLite through src/util/sqlite.ts: WAL, ordered migrations, a newer schema refused). A 2xx means
 * "durable": opened by a command, the index commits with synchronous=FULL (a row is on disk when its commit returns);
 * opened by the serving NVR with `groupCommit`, commits only write the WAL (synchronous=NORMAL, which a process crash
 * does not undo) and `durable()` fdatasyncs the WAL file off the main thread before an answer goes out — one sync
 * covering every commit made before it started, however many cameras' objects those were (group commit). WAL
 * recovery checks each frame's checksum, so synced frames are kept after a power loss. The segment files
 * themselves are in the store directory (store.ts); records live here only, as the canonical JSON lines the camera
 * signed.
 *
 *   cameras     serial, first and last seen
 *   sessions    (serial, session): chain and init objects, the session record's start, scheme, KID, the chain's
 *               fingerprint, whether the session record verified, whether the end record is held, receipt skew
 *   segments    (serial, session, seq): size, SHA-256, state (pending-record | verified | quarantined), media and
 *               wall times (wall = session start + media time), KID, receipt time and skew
 *   records     (serial, session, idx): kind, canonical JSON, hash, signature verified, chained to idx − 1
 *               (null while unknown), state (ok | quarantined)
 *   lost        ranges a camera's lost records declare overwritten before upload
 *   quarantine  every object kept aside, where, and why
 *   alarms      conflicts (different bytes under a used name) and other conditions an operator must see
 *   tokens      RFC 3161 tokens the NVR's TSA issued over record-chain heads (stamping.ts)
 *   stamping    per session: the last record stamped, failures and the last error (stamping.ts)
 */
import { closeSync, constants, existsSync, fdatasync, openSync, statSync } from 'node:fs';
import Database from 'better-sqlite3';
import type { Database as Db, Statement } from 'better-sqlite3';
import { NotFoundError, ioError } from '../errors.js';
import { SchemaTooNewError, StoreError, openStore } from '../util/sqlite.js';
import type { Migration } from '../util/sqlite.js';
import { NVR_OPS_MIGRATION } from './ops-schema.js';

export const NVR_STORE_KIND = 'keyframe-nvr';

/** The hours of segment_hours (schema 5): a segment counts in the hour its wall-clock start falls in. */
export const HOUR_MS = 3_600_000;

/** A trigger statement counting a change of the segment `row` (NEW or OLD) in its camera's hour. */
function bumpHour(row: 'NEW' | 'OLD', when?: string): string {
  return `INSERT INTO segment_hours (serial, hour, version) SELECT ${row}.serial, ${row}.wall_start / ${HOUR_MS}, 1${when !== undefined ? ` WHERE ${when}` : ' WHERE 1'}
  ON CONFLICT(serial, hour) DO UPDATE SET version = version + 1;`;
}

export const NVR_MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    description: 'cameras, sessions, segments, records',
    up: (db) =>
      db.exec(`
CREATE TABLE cameras (serial TEXT PRIMARY KEY, first_seen INTEGER NOT NULL, last_seen INTEGER NOT NULL);
CREATE TABLE sessions (
  serial TEXT NOT NULL, session TEXT NOT NULL, received INTEGER NOT NULL,
  chain_sha256 TEXT, chain_fingerprint TEXT, init_sha256 TEXT, init_size INTEGER,
  start TEXT, start_ms INTEGER, scheme TEXT, kid TEXT,
  verified INTEGER NOT NULL DEFAULT 0, ended INTEGER NOT NULL DEFAULT 0,
  PRIMARY KEY (serial, session));
CREATE TABLE segments (
  serial TEXT NOT NULL, session TEXT NOT NULL, seq INTEGER NOT NULL, size INTEGER NOT NULL, sha256 TEXT NOT NULL,
  state TEXT NOT NULL CHECK (state IN ('pending-record', 'verified', 'quarantined')),
  media_start REAL, media_end REAL, wall_start INTEGER, wall_end INTEGER, kid TEXT, received INTEGER NOT NULL,
  PRIMARY KEY (serial, session, seq));
CREATE TABLE records (
  serial TEXT NOT NULL, session TEXT NOT NULL, idx INTEGER NOT NULL, kind TEXT NOT NULL, json TEXT NOT NULL,
  hash TEXT NOT NULL, verified INTEGER NOT NULL, chain_linked INTEGER, received INTEGER NOT NULL,
  PRIMARY KEY (serial, session, idx));
`),
  },
  {
    version: 2,
    description: 'lost ranges, quarantine, alarms, receipt skew, record state',
    up: (db) =>
      db.exec(`
ALTER TABLE sessions ADD COLUMN skew_ms INTEGER;
ALTER TABLE segments ADD COLUMN skew_ms INTEGER;
ALTER TABLE records ADD COLUMN state TEXT NOT NULL DEFAULT 'ok' CHECK (state IN ('ok', 'quarantined'));
CREATE TABLE lost (
  serial TEXT NOT NULL, session TEXT NOT NULL, record_idx INTEGER NOT NULL, of_session TEXT NOT NULL,
  from_seq INTEGER NOT NULL, to_seq INTEGER NOT NULL, media_start REAL NOT NULL, media_end REAL NOT NULL,
  PRIMARY KEY (serial, session, record_idx));
CREATE TABLE quarantine (
  id INTEGER PRIMARY KEY AUTOINCREMENT, serial TEXT NOT NULL, session TEXT NOT NULL, kind TEXT NOT NULL, idx INTEGER,
  sha256 TEXT NOT NULL, size INTEGER NOT NULL, path TEXT NOT NULL, reason TEXT NOT NULL, received INTEGER NOT NULL);
CREATE TABLE alarms (
  id INTEGER PRIMARY KEY AUTOINCREMENT, at INTEGER NOT NULL, serial TEXT NOT NULL, session TEXT, kind TEXT NOT NULL,
  detail TEXT NOT NULL);
`),
  },
  {
    version: 3,
    description: 'RFC 3161 tokens over record-chain heads (the NVR as TSA), stamping state per session',
    up: (db) =>
      db.exec(`
CREATE TABLE tokens (
  id INTEGER PRIMARY KEY AUTOINCREMENT, serial TEXT NOT NULL, session TEXT NOT NULL, record_idx INTEGER NOT NULL,
  sha256 TEXT NOT NULL, token BLOB NOT NULL, gen_time INTEGER NOT NULL, at INTEGER NOT NULL);
CREATE INDEX tokens_session ON tokens (serial, session, record_idx);
CREATE TABLE stamping (
  serial TEXT NOT NULL, session TEXT NOT NULL, stamped_idx INTEGER NOT NULL DEFAULT -1,
  failures INTEGER NOT NULL DEFAULT 0, last_error TEXT, last_error_at INTEGER,
  PRIMARY KEY (serial, session));
`),
  },
  // 4: retention, evidence lock, admin timeline (src/nvr/ops-schema.ts)
  NVR_OPS_MIGRATION,
  {
    version: 5,
    description: "manifests: a covering index of a camera's segments by time with every column an MPD needs, and a change counter per camera and hour (mpd-rows.ts caches an hour's segments until its counter moves)",
    up: (db) =>
      db.exec(`CREATE INDEX segments_for_mpd ON segments (serial, wall_start, seq, state, session, media_start, media_end, wall_end, kid, size);
CREATE TABLE segment_hours (serial TEXT NOT NULL, hour INTEGER NOT NULL, version INTEGER NOT NULL, PRIMARY KEY (serial, hour)) WITHOUT ROWID;
INSERT INTO segment_hours (serial, hour, version) SELECT DISTINCT serial, wall_start / ${HOUR_MS}, 1 FROM segments WHERE wall_start IS NOT NULL;
CREATE TRIGGER segments_hour_insert AFTER INSERT ON segments WHEN NEW.wall_start IS NOT NULL
BEGIN ${bumpHour('NEW')}
END;
CREATE TRIGGER segments_hour_update AFTER UPDATE ON segments
BEGIN ${bumpHour('OLD', 'OLD.wall_start IS NOT NULL')} ${bumpHour('NEW', 'NEW.wall_start IS NOT NULL')}
END;
CREATE TRIGGER segments_hour_delete AFTER DELETE ON segments WHEN OLD.wall_start IS NOT NULL
BEGIN ${bumpHour('OLD')}
END;`),
  },
];

export type SegmentState = 'pending-record' | 'verified' | 'quarantined';

export interface SessionRow {
  readonly serial: string;
  readonly session: string;
  readonly received: number;
  readonly chain_sha256: string | null;
  readonly chain_fingerprint: string | null;
  readonly init_sha256: string | null;
  readonly init_size: number | null;
  readonly start: string | null;
  readonly start_ms: number | null;
  readonly scheme: string | null;
  readonly kid: string | null;
  readonly verified: number;
  readonly ended: number;
  readonly skew_ms: number | null;
}

export interface SegmentRow {
  readonly serial: string;
  readonly session: string;
  readonly seq: number;
  readonly size: number;
  readonly sha256: string;
  readonly state: SegmentState;
  readonly media_start: number | null;
  readonly media_end: number | null;
  readonly wall_start: number | null;
  readonly wall_end: number | null;
  readonly kid: string | null;
  readonly received: number;
  readonly skew_ms: number | null;
}

export interface RecordRow {
  readonly serial: string;
  readonly session: string;
  readonly idx: number;
  readonly kind: string;
  readonly json: string;
  readonly hash: string;
  readonly verified: number;
  readonly chain_linked: number | null;
  readonly received: number;
  readonly state: 'ok' | 'quarantined';
}

export interface QuarantineRow {
  readonly id: number;
  readonly serial: string;
  readonly session: string;
  readonly kind: string;
  readonly idx: number | null;
  readonly sha256: string;
  readonly size: number;
  readonly path: string;
  readonly reason: string;
  readonly received: number;
}

export interface AlarmRow {
  readonly id: number;
  readonly at: number;
  readonly serial: string;
  readonly session: string | null;
  readonly kind: string;
  readonly detail: string;
}

export interface LostRow {
  readonly serial: string;
  readonly session: string;
  readonly record_idx: number;
  readonly of_session: string;
  readonly from_seq: number;
  readonly to_seq: number;
  readonly media_start: number;
  readonly media_end: number;
}

export class NvrIndex {
  private constructor(
    private readonly db: Db,
    readonly created: boolean,
    readonly migratedFrom: number,
    readonly version: number,
  ) {}

  /**
   * Opens the index. `create`: make it when missing (nvr init, or serve on a new store). The file is not held
   * exclusively, so that `nvr status` can read it while the NVR runs; `nvr serve` and `nvr check --repair` take
   * the store's lock file instead.
   */
  static open(file: string, options: { readonly create?: boolean; readonly migrations?: readonly Migration[]; readonly groupCommit?: boolean } = {}): NvrIndex {
    const o = openStore({ file, kind: NVR_STORE_KIND, what: 'NVR index', migrations: options.migrations ?? NVR_MIGRATIONS, exclusive: false, ...(options.create === true ? { create: true } : {}) });
    const index = new NvrIndex(o.db, o.created, o.migratedFrom, o.version);
    if (options.groupCommit === true) {
      try {
        // the WAL exists once the store is open in WAL mode; held open until close (it is never unlinked meanwhile)
        index.wal = openSync(`${file}-wal`, constants.O_RDONLY);
        index.walPath = `${file}-wal`;
        o.db.pragma('synchronous = NORMAL');
      } catch (e) {
        o.db.close();
        throw new StoreError(`NVR index ${file}: cannot open its write-ahead log ${file}-wal: ${(e as Error).message}`);
      }
    }
    return index;
  }

  /** The WAL's descriptor when commits are grouped (see the header); undefined: every commit is synced itself. */
  private wal: number | undefined;
  private walPath = '';
  /** total_changes() covered by the last completed WAL sync, and the sync under way. */
  private synced = 0;
  private syncing: Promise<void> | undefined;
  /** WAL syncs done (group commit: fewer than the commits they cover). */
  walSyncs = 0;

  /**
   * Resolves when every commit made so far is on disk: at once with synchronous=FULL or when nothing changed since
   * the last sync; else after an fdatasync of the WAL (joined by whoever asks meanwhile, and followed by one more
   * when commits came after it started).
   */
  async durable(): Promise<void> {
    if (this.wal === undefined) return;
    const fd = this.wal;
    const want = this.totalChanges();
    while (this.synced < want) {
      if (this.syncing !== undefined) {
        await this.syncing;
        continue;
      }
      const covers = this.totalChanges();
      this.syncing = new Promise<void>((resolve, reject) =>
        fdatasync(fd, (e) => {
          this.syncing = undefined;
          if (e !== null) return reject(ioError(e, this.walPath, 'write') ?? e);
          this.synced = Math.max(this.synced, covers);
          this.walSyncs++;
          resolve();
        }),
      );
      await this.syncing;
    }
  }

  private totalChanges(): number {
    return (this.q.prepare<[], { n: number }>('SELECT total_changes() AS n').get() as { n: number }).n;
  }

  /** The database, for modules that own tables of their own (stamping.ts: tokens, stamping). */
  get sql(): Db {
    return this.db;
  }

  /** Opens the index read-only (`nvr status`, while the NVR may be running): nothing is written, no migration runs. */
  static openReadOnly(file: string): NvrIndex {
    if (!existsSync(file)) throw new NotFoundError(`NVR index not found: ${file}`);
    if (!statSync(file).isFile()) throw new StoreError(`NVR index ${file} is not a file`);
    let db: Db;
    try {
      db = new Database(file, { readonly: true, fileMustExist: true, timeout: 5000 });
    } catch (e) {
      throw new StoreError(`NVR index ${file}: ${(e as Error).message}`);
    }
    try {
      const meta = (key: string): string | undefined => db.prepare<[string], { value: string }>('SELECT value FROM meta WHERE key = ?').get(key)?.value;
      let kind: string | undefined;
      try {
        kind = meta('kind');
      } catch {
        kind = undefined;
      }
      if (kind !== NVR_STORE_KIND) throw new StoreError(`${file} is not an NVR index`);
      const version = Number(meta('schema') ?? 0);
      const latest = NVR_MIGRATIONS.at(-1)?.version ?? 0;
      if (version > latest) throw new SchemaTooNewError(`NVR index ${file} has schema version ${version}, written by a newer keyframe (this one reads up to ${latest})`, version, latest);
      if (version < latest) throw new StoreError(`NVR index ${file} has schema version ${version}: start the NVR once (nvr serve) to upgrade it to ${latest}`);
      return new NvrIndex(db, false, version, version);
    } catch (e) {
      db.close();
      throw e;
    }
  }

  close(): void {
    this.flushSeen();
    this.db.close();
    if (this.wal !== undefined) closeSync(this.wal);
    this.wal = undefined;
  }

  /** Prepared statements, kept: preparing one costs more than running it (the ingest path runs a few per object). */
  private readonly statements = new Map<string, Statement>();
  private readonly q = {
    prepare: <P extends unknown[] | object = unknown[], R = unknown>(sql: string): Statement<P, R> => {
      let st = this.statements.get(sql);
      if (st === undefined) {
        st = this.db.prepare(sql);
        this.statements.set(sql, st);
      }
      return st as unknown as Statement<P, R>;
    },
  };
  /** Last sightings not yet written (a camera's row is written at most once a second: not one WAL commit per object). */
  private readonly seenPending = new Map<string, number>();
  private readonly seenWritten = new Map<string, number>();

  /** The connection, for the NVR's other tables (locks, retention, spans), whose SQL lives in their own modules. */
  get sqlite(): Db {
    return this.db;
  }

  tx<T>(fn: () => T): T {
    return this.db.transaction(fn)();
  }

  // cameras
  /** A camera was seen at `at`: written now when its last write is a second old (or it is new), else kept until then. */
  seen(serial: string, at: number): void {
    const written = this.seenWritten.get(serial);
    if (written !== undefined && at - written < 1_000) {
      this.seenPending.set(serial, Math.max(at, this.seenPending.get(serial) ?? 0));
      return;
    }
    this.seenPending.delete(serial);
    this.writeSeen(serial, at);
  }
  /** Writes the sightings kept back (before reading cameras, and at close). */
  flushSeen(): void {
    if (this.seenPending.size === 0) return;
    const pending = [...this.seenPending];
    this.seenPending.clear();
    this.tx(() => {
      for (const [serial, at] of pending) this.writeSeen(serial, at);
    });
  }
  private writeSeen(serial: string, at: number): void {
    this.q.prepare('INSERT INTO cameras (serial, first_seen, last_seen) VALUES (?, ?, ?) ON CONFLICT(serial) DO UPDATE SET last_seen = max(last_seen, excluded.last_seen)').run(serial, at, at);
    this.seenWritten.set(serial, at);
  }
  cameras(): { serial: string; first_seen: number; last_seen: number }[] {
    this.flushSeen();
    return this.q.prepare<[], { serial: string; first_seen: number; last_seen: number }>('SELECT * FROM cameras ORDER BY serial').all();
  }

  // sessions
  session(serial: string, session: string): SessionRow | undefined {
    return this.q.prepare<[string, string], SessionRow>('SELECT * FROM sessions WHERE serial = ? AND session = ?').get(serial, session);
  }
  ensureSession(serial: string, session: string, at: number): void {
    this.q.prepare('INSERT INTO sessions (serial, session, received) VALUES (?, ?, ?) ON CONFLICT(serial, session) DO NOTHING').run(serial, session, at);
  }
  setChain(serial: string, session: string, sha256: string, fingerprint: string): void {
    this.q.prepare('UPDATE sessions SET chain_sha256 = ?, chain_fingerprint = ? WHERE serial = ? AND session = ?').run(sha256, fingerprint, serial, session);
  }
  setInit(serial: string, session: string, sha256: string | null, size: number | null): void {
    this.q.prepare('UPDATE sessions SET init_sha256 = ?, init_size = ? WHERE serial = ? AND session = ?').run(sha256, size, serial, session);
  }
  setSessionRecord(serial: string, session: string, s: { start: string; startMs: number; scheme: string; kid: string; skewMs: number }): void {
    this.q.prepare('UPDATE sessions SET start = ?, start_ms = ?, scheme = ?, kid = ?, skew_ms = ?, verified = 1 WHERE serial = ? AND session = ?').run(s.start, s.startMs, s.scheme, s.kid, s.skewMs, serial, session);
  }
  setEnded(serial: string, session: string): void {
    this.q.prepare('UPDATE sessions SET ended = 1 WHERE serial = ? AND session = ?').run(serial, session);
  }
  /** Verified sessions of a camera, newest first; `before`: only sessions that started before this ISO time. */
  sessions(serial: string, before: string | undefined, limit: number): SessionRow[] {
    if (before === undefined) return this.q.prepare<[string, number], SessionRow>('SELECT * FROM sessions WHERE serial = ? AND verified = 1 ORDER BY start_ms DESC, session DESC LIMIT ?').all(serial, limit);
    return this.q.prepare<[string, number, number], SessionRow>('SELECT * FROM sessions WHERE serial = ? AND verified = 1 AND start_ms < ? ORDER BY start_ms DESC, session DESC LIMIT ?').all(serial, Date.parse(before), limit);
  }
  allSessions(): SessionRow[] {
    return this.q.prepare<[], SessionRow>('SELECT * FROM sessions ORDER BY serial, received').all();
  }

  // segments
  segment(serial: string, session: string, seq: number): SegmentRow | undefined {
    return this.q.prepare<[string, string, number], SegmentRow>('SELECT * FROM segments WHERE serial = ? AND session = ? AND seq = ?').get(serial, session, seq);
  }
  segments(serial: string, session: string): SegmentRow[] {
    return this.q.prepare<[string, string], SegmentRow>('SELECT * FROM segments WHERE serial = ? AND session = ? ORDER BY seq').all(serial, session);
  }
  allSegments(): SegmentRow[] {
    return this.q.prepare<[], SegmentRow>('SELECT * FROM segments ORDER BY serial, session, seq').all();
  }
  putSegment(r: SegmentRow): void {
    this.q
      .prepare(
        `INSERT INTO segments (serial, session, seq, size, sha256, state, media_start, media_end, wall_start, wall_end, kid, received, skew_ms)
         VALUES (@serial, @session, @seq, @size, @sha256, @state, @media_start, @media_end, @wall_start, @wall_end, @kid, @received, @skew_ms)
         ON CONFLICT(serial, session, seq) DO UPDATE SET size = excluded.size, sha256 = excluded.sha256, state = excluded.state,
           media_start = excluded.media_start, media_end = excluded.media_end, wall_start = excluded.wall_start, wall_end = excluded.wall_end,
           kid = excluded.kid, received = excluded.received, skew_ms = excluded.skew_ms`,
      )
      .run(r);
  }
  setSegmentState(serial: string, session: string, seq: number, state: SegmentState, times?: { media_start: number; media_end: number; wall_start: number; wall_end: number; kid: string | null; skew_ms: number }): void {
    if (times === undefined) this.q.prepare('UPDATE segments SET state = ? WHERE serial = ? AND session = ? AND seq = ?').run(state, serial, session, seq);
    else
      this.db
        .prepare('UPDATE segments SET state = ?, media_start = ?, media_end = ?, wall_start = ?, wall_end = ?, kid = ?, skew_ms = ? WHERE serial = ? AND session = ? AND seq = ?')
        .run(state, times.media_start, times.media_end, times.wall_start, times.wall_end, times.kid, times.skew_ms, serial, session, seq);
  }

  // records
  record(serial: string, session: string, idx: number): RecordRow | undefined {
    return this.q.prepare<[string, string, number], RecordRow>('SELECT * FROM records WHERE serial = ? AND session = ? AND idx = ?').get(serial, session, idx);
  }
  records(serial: string, session: string): RecordRow[] {
    return this.q.prepare<[string, string], RecordRow>('SELECT * FROM records WHERE serial = ? AND session = ? ORDER BY idx').all(serial, session);
  }
  putRecord(r: Omit<RecordRow, 'state'> & { state?: RecordRow['state'] }): void {
    this.q
      .prepare('INSERT INTO records (serial, session, idx, kind, json, hash, verified, chain_linked, received, state) VALUES (@serial, @session, @idx, @kind, @json, @hash, @verified, @chain_linked, @received, @state)')
      .run({ ...r, state: r.state ?? 'ok' });
  }
  setRecordLink(serial: string, session: string, idx: number, linked: boolean | undefined): void {
    this.q.prepare('UPDATE records SET chain_linked = ? WHERE serial = ? AND session = ? AND idx = ?').run(linked === undefined ? null : linked ? 1 : 0, serial, session, idx);
  }

  // lost ranges, quarantine, alarms
  putLost(r: LostRow): void {
    this.q.prepare('INSERT OR REPLACE INTO lost (serial, session, record_idx, of_session, from_seq, to_seq, media_start, media_end) VALUES (@serial, @session, @record_idx, @of_session, @from_seq, @to_seq, @media_start, @media_end)').run(r);
  }
  lost(serial?: string): LostRow[] {
    return serial === undefined ? this.q.prepare<[], LostRow>('SELECT * FROM lost ORDER BY serial, session, record_idx').all() : this.q.prepare<[string], LostRow>('SELECT * FROM lost WHERE serial = ? ORDER BY session, record_idx').all(serial);
  }
  putQuarantine(r: Omit<QuarantineRow, 'id'>): void {
    this.q.prepare('INSERT INTO quarantine (serial, session, kind, idx, sha256, size, path, reason, received) VALUES (@serial, @session, @kind, @idx, @sha256, @size, @path, @reason, @received)').run(r);
  }
  quarantined(): QuarantineRow[] {
    return this.q.prepare<[], QuarantineRow>('SELECT * FROM quarantine ORDER BY id').all();
  }
  alarm(a: Omit<AlarmRow, 'id'>): void {
    this.q.prepare('INSERT INTO alarms (at, serial, session, kind, detail) VALUES (@at, @serial, @session, @kind, @detail)').run(a);
  }
  alarms(): AlarmRow[] {
    return this.q.prepare<[], AlarmRow>('SELECT * FROM alarms ORDER BY id').all();
  }

  /** What `nvr status` shows. */
  counts(): { cameras: number; sessions: number; segments: number; verified: number; pending: number; quarantined: number; records: number; conflicts: number; alarms: number; lostRanges: number } {
    const one = (sql: string): number => (this.q.prepare<[], { n: number }>(sql).get() as { n: number }).n;
    return {
      cameras: one('SELECT count(*) AS n FROM cameras'),
      sessions: one('SELECT count(*) AS n FROM sessions WHERE verified = 1'),
      segments: one('SELECT count(*) AS n FROM segments'),
      verified: one("SELECT count(*) AS n FROM segments WHERE state = 'verified'"),
      pending: one("SELECT count(*) AS n FROM segments WHERE state = 'pending-record'"),
      quarantined: one('SELECT count(*) AS n FROM quarantine'),
      records: one('SELECT count(*) AS n FROM records'),
      conflicts: one("SELECT count(*) AS n FROM alarms WHERE kind = 'conflict'"),
      alarms: one('SELECT count(*) AS n FROM alarms'),
      lostRanges: one('SELECT count(*) AS n FROM lost'),
    };
  }

  /** Per camera: sessions, segments, bytes, quarantined, last seen, the largest receipt skew of its last session. */
  cameraSummaries(): { serial: string; last_seen: number; sessions: number; segments: number; bytes: number; quarantined: number; skew_ms: number | null }[] {
    this.flushSeen();
    return this.q
      .prepare<[], { serial: string; last_seen: number; sessions: number; segments: number; bytes: number; quarantined: number; skew_ms: number | null }>(
        `SELECT c.serial, c.last_seen,
           (SELECT count(*) FROM sessions s WHERE s.serial = c.serial AND s.verified = 1) AS sessions,
           (SELECT count(*) FROM segments g WHERE g.serial = c.serial) AS segments,
           (SELECT coalesce(sum(size), 0) FROM segments g WHERE g.serial = c.serial) AS bytes,
           (SELECT count(*) FROM quarantine q WHERE q.serial = c.serial) AS quarantined,
           (SELECT s.skew_ms FROM sessions s WHERE s.serial = c.serial AND s.verified = 1 ORDER BY s.start_ms DESC LIMIT 1) AS skew_ms
         FROM cameras c ORDER BY c.serial`,
      )
      .all();
  }
}
