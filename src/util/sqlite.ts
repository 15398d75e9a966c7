/**
 * Opening a keyframe SQLite store (better-sqlite3 12), the same way for every service (the KMS now, the NVR
 * next): the file is checked before SQLite touches it, held exclusively, checked for damage, and brought to the
 * current schema by ordered migrations.
 *
 * - A missing file is created (mode 0600) only when the caller says so; a zero-length file, a file that is not
 *   SQLite, or a store of another kind is named and refused — never silently started anew.
 * - The file, and SQLite's -wal/-shm beside it (which take the file's mode), must not be accessible by other
 *   users.
 * - `locking_mode = EXCLUSIVE` with WAL: the first write takes an exclusive lock held until the connection
 *   closes (a kernel lock: it dies with the process), so a second service on the same file is refused at once.
 * - `PRAGMA quick_check` must answer ok.
 * - Migrations run in order, each in its own transaction with the new version (meta 'schema'); a store written
 *   by a newer keyframe is refused.
 */
import { closeSync, existsSync, openSync, readSync, statSync } from 'node:fs';
import Database from 'better-sqlite3';
import type { Database as Db, Statement } from 'better-sqlite3';
import { ErrorCodes, KeyframeError, NotFoundError, errnoCode } from '../errors.js';

export interface Migration {
  /** The schema version this migration produces: 1, 2, 3 … in order. */
  readonly version: number;
  readonly description: string;
  readonly up: (db: Db) => void;
}

export interface OpenStoreOptions {
  readonly file: string;
  /** The kind of store (meta 'kind'), e.g. 'keyframe-kms'. */
  readonly kind: string;
  /** What it is, for messages ("KMS database"). */
  readonly what: string;
  /** Create the file when it does not exist (default: refuse). */
  readonly create?: boolean;
  /** Ordered migrations; the last one's version is the current schema. */
  readonly migrations: readonly Migration[];
  /** Before the first migration of an existing store without a 'kind': is it one of ours? (legacy stores) */
  readonly legacy?: (db: Db) => boolean;
  /**
   * Hold the file exclusively (`locking_mode = EXCLUSIVE`, default true). A service that lets read-only tools
   * look at its store while it runs (the NVR's `nvr status`) passes false and guards against a second writer
   * itself (a lock file).
   */
  readonly exclusive?: boolean;
}

export interface OpenedStore {
  readonly db: Db;
  readonly created: boolean;
  /** The schema version the store had (0 when new). */
  readonly migratedFrom: number;
  readonly version: number;
}

const SQLITE_HEADER = Buffer.from('SQLite format 3\0', 'latin1');

export class StoreError extends KeyframeError {
  constructor(message: string, code: typeof ErrorCodes.INPUT | typeof ErrorCodes.LOCKED = ErrorCodes.INPUT) {
    super(code, message);
    this.name = 'StoreError';
  }
}

/** A store written by a newer keyframe: its schema version is above the last migration this one knows. */
export class SchemaTooNewError extends StoreError {
  constructor(
    message: string,
    readonly found: number,
    readonly supported: number,
  ) {
    super(message);
    this.name = 'SchemaTooNewError';
  }
}

function checkFile(file: string, what: string): void {
  const st = statSync(file);
  if (!st.isFile()) throw new StoreError(`${what} ${file} is not a file`);
  if (st.size === 0) throw new StoreError(`${what} ${file} is empty (0 bytes): it is damaged or was truncated; restore it from a backup`);
  if ((st.mode & 0o077) !== 0) {
    throw new StoreError(`${what} ${file} is accessible by other users (mode ${(st.mode & 0o777).toString(8).padStart(4, '0')}): run chmod 600 ${file}`);
  }
  const head = Buffer.alloc(16);
  const fd = openSync(file, 'r');
  try {
    readSync(fd, head, 0, 16, 0);
  } finally {
    closeSync(fd);
  }
  if (!head.equals(SQLITE_HEADER)) throw new StoreError(`${what} ${file} is not an SQLite database (damaged, or another file)`);
}

function meta(db: Db, key: string): string | undefined {
  const exists = db.prepare<[], { n: number }>("SELECT count(*) AS n FROM sqlite_master WHERE type = 'table' AND name = 'meta'").get();
  if (exists?.n !== 1) return undefined;
  return db.prepare<[string], { value: string }>('SELECT value FROM meta WHERE key = ?').get(key)?.value;
}

/** Statements kept per connection (bounded: SQL text built at run time must not grow it without end). */
const STATEMENT_CACHE = 256;

const uncached = new WeakMap<Db, Db['prepare']>();

/**
 * Makes `db.prepare` answer the same compiled statement for the same SQL text: stores prepare their statements where
 * they use them, and compiling one costs more than running a small query (a licence's look-ups). Safe because no
 * store iterates a statement while running it again, SQLite recompiles a statement itself after a schema change,
 * and a statement whose mode is changed (raw, pluck, expand, safeIntegers) is made with `prepareOwn` instead.
 */
function cacheStatements(db: Db): void {
  const prepare = db.prepare.bind(db);
  uncached.set(db, prepare);
  const cache = new Map<string, ReturnType<Db['prepare']>>();
  const cached = (sql: string): ReturnType<Db['prepare']> => {
    let st = cache.get(sql);
    if (st === undefined) {
      st = prepare(sql);
      if (cache.size >= STATEMENT_CACHE) cache.delete(cache.keys().next().value as string);
      cache.set(sql, st);
    }
    return st;
  };
  db.prepare = cached as Db['prepare'];
}

/** A statement of the caller's own, outside the connection's cache: one whose mode it changes (`.raw(true)`). */
export function prepareOwn<P extends unknown[], R>(db: Db, sql: string): Statement<P, R> {
  return (uncached.get(db) ?? db.prepare.bind(db))<P, R>(sql);
}

export function openStore(o: OpenStoreOptions): OpenedStore {
  let created = false;
  if (!existsSync(o.file)) {
    if (o.create !== true) throw new NotFoundError(`${o.what} not found: ${o.file}`);
    try {
      closeSync(openSync(o.file, 'wx', 0o600));
    } catch (e) {
      if (errnoCode(e) === 'ENOENT') throw new NotFoundError(`directory not found for the ${o.what}: ${o.file}`);
      throw e;
    }
    created = true;
  } else {
    checkFile(o.file, o.what);
  }
  let db: Db;
  try {
    db = new Database(o.file, { timeout: 200 });
  } catch (e) {
    throw new StoreError(`${o.what} ${o.file}: ${(e as Error).message}`);
  }
  try {
    try {
      if (o.exclusive !== false) db.pragma('locking_mode = EXCLUSIVE');
      db.pragma('journal_mode = WAL');
      db.pragma('synchronous = FULL');
      db.pragma('foreign_keys = ON');
      db.exec('BEGIN IMMEDIATE; COMMIT;'); // takes the exclusive lock now, and keeps it
    } catch (e) {
      if ((e as { code?: string }).code === 'SQLITE_BUSY') throw new StoreError(`${o.what} ${o.file} is in use by another process (is another service running on it?)`, ErrorCodes.LOCKED);
      throw e;
    }
    if (!created) {
      const check = db.pragma('quick_check', { simple: true });
      if (check !== 'ok') throw new StoreError(`${o.what} ${o.file} is damaged: ${String(check)}`);
    }
    db.pragma('busy_timeout = 5000');
    db.exec('CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)');
    const kind = meta(db, 'kind');
    const from = Number(meta(db, 'schema') ?? 0);
    if (kind !== undefined && kind !== o.kind) throw new StoreError(`${o.file} is a ${kind} store, not a ${o.kind} one`);
    if (kind === undefined && !created && from === 0 && db.prepare<[], { n: number }>("SELECT count(*) AS n FROM sqlite_master WHERE type = 'table' AND name <> 'meta'").get()?.n !== 0) {
      if (o.legacy?.(db) !== true) throw new StoreError(`${o.file} is not a ${o.what}`);
    }
    const latest = o.migrations.at(-1)?.version ?? 0;
    if (from > latest) throw new SchemaTooNewError(`${o.what} ${o.file} has schema version ${from}, written by a newer keyframe (this one reads up to ${latest})`, from, latest);
    for (const m of o.migrations) {
      if (m.version <= from) continue;
      db.transaction(() => {
        m.up(db);
        db.prepare("INSERT INTO meta (key, value) VALUES ('schema', ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value").run(String(m.version));
      })();
    }
    db.prepare("INSERT INTO meta (key, value) VALUES ('kind', ?) ON CONFLICT(key) DO NOTHING").run(o.kind);
    cacheStatements(db);
    return { db, created, migratedFrom: from, version: latest };
  } catch (e) {
    db.close();
    throw e;
  }
}
