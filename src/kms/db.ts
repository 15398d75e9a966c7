/**
 * The KMS's SQLite database (better-sqlite3, WAL, synchronous=FULL): what survives a restart. Secrets (sub-keys,
 * the group cores with their tree keys, epoch secrets) are stored sealed by the caller (seal.ts); bundles are
 * public and stored as they are. Every state change of a group is one transaction.
 *
 *   cameras   serial, certificate (DER), fingerprint, generation, sealed sub-keys, enrolled_at
 *   groups    id, mode (hardened | scheme1 | scheme2), degree, leader, refresh/batch settings, epoch, sealed core
 *   bundles   (group, epoch) → signed bundle bytes
 *   secrets   (group, epoch) → sealed epoch secret
 *   pending   (group, serial) → join | leave, waiting for the batch window
 *   paper     (group, serial) → what the operator asked a paper-scheme camera to do (join | leave)
 *   audit     who did what, when (never keys), hash-chained (audit-store.ts)
 *   audit_checkpoints  signed checkpoints over the chain
 *   alarms    a group stopped until an operator acts (its state is behind what its cameras hold)
 *   meta      kind, schema version, the sealing key's check value
 */
import type { Database as Db } from 'better-sqlite3';
import { openStore } from '../util/sqlite.js';
import type { Migration } from '../util/sqlite.js';
import { KmsAudit, migrateAuditChain } from './audit-store.js';
import { ACCESS_SCHEMA, AccessStore } from './access-store.js';
import type { AuditContext, AuditRow } from './audit-store.js';

export type GroupMode = 'hardened' | 'scheme1' | 'scheme2';
export const GROUP_MODES: readonly GroupMode[] = ['hardened', 'scheme1', 'scheme2'];

export interface CameraRow {
  readonly serial: string;
  readonly cert: Buffer;
  readonly fingerprint: string;
  readonly generation: number;
  readonly subkeys: Buffer;
  readonly enrolled_at: number;
}

export interface GroupRow {
  readonly id: string;
  readonly mode: GroupMode;
  readonly degree: number;
  readonly leader: string | null;
  readonly refresh_ms: number;
  readonly batch_ms: number;
  readonly created_at: number;
  readonly epoch: number;
  readonly core: Buffer | null;
}

export interface PendingRow {
  readonly group_id: string;
  readonly serial: string;
  readonly op: 'join' | 'leave';
  readonly requested_at: number;
}

/** Schema 1: the first release's tables. */
const SCHEMA_1 = `
CREATE TABLE IF NOT EXISTS cameras (
  serial TEXT PRIMARY KEY, cert BLOB NOT NULL, fingerprint TEXT NOT NULL, generation INTEGER NOT NULL,
  subkeys BLOB NOT NULL, enrolled_at INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS groups (
  id TEXT PRIMARY KEY, mode TEXT NOT NULL CHECK (mode IN ('hardened','scheme1','scheme2')), degree INTEGER NOT NULL,
  leader TEXT, refresh_ms INTEGER NOT NULL, batch_ms INTEGER NOT NULL, created_at INTEGER NOT NULL,
  epoch INTEGER NOT NULL DEFAULT 0, core BLOB);
CREATE TABLE IF NOT EXISTS bundles (group_id TEXT NOT NULL, epoch INTEGER NOT NULL, bytes BLOB NOT NULL, PRIMARY KEY (group_id, epoch));
CREATE TABLE IF NOT EXISTS secrets (group_id TEXT NOT NULL, epoch INTEGER NOT NULL, sealed BLOB NOT NULL, PRIMARY KEY (group_id, epoch));
CREATE TABLE IF NOT EXISTS pending (group_id TEXT NOT NULL, serial TEXT NOT NULL, op TEXT NOT NULL CHECK (op IN ('join','leave')),
  requested_at INTEGER NOT NULL, PRIMARY KEY (group_id, serial));
CREATE TABLE IF NOT EXISTS paper (group_id TEXT NOT NULL, serial TEXT NOT NULL, op TEXT NOT NULL CHECK (op IN ('join','leave')),
  PRIMARY KEY (group_id, serial));
CREATE TABLE IF NOT EXISTS audit (seq INTEGER PRIMARY KEY AUTOINCREMENT, at INTEGER NOT NULL, actor TEXT NOT NULL, action TEXT NOT NULL, detail TEXT NOT NULL);
`;

/** The KMS's migrations, in order (src/util/sqlite.ts runs them). */
export const KMS_MIGRATIONS: readonly Migration[] = [
  { version: 1, description: 'cameras, groups, bundles, secrets, pending, paper, audit', up: (db) => db.exec(SCHEMA_1) },
  {
    version: 2,
    description: 'alarms: conditions that stop a group until an operator acts (state behind its cameras)',
    up: (db) =>
      db.exec(`CREATE TABLE alarms (group_id TEXT PRIMARY KEY, kind TEXT NOT NULL, detail TEXT NOT NULL, raised_at INTEGER NOT NULL);`),
  },
  { version: 3, description: 'the audit log as a hash chain with signed checkpoints (existing entries are chained as they are)', up: migrateAuditChain },
  { version: 4, description: 'accounts, login sessions and grants', up: (db) => db.exec(ACCESS_SCHEMA) },
];

export interface AlarmRow {
  readonly group_id: string;
  readonly kind: string;
  readonly detail: string;
  readonly raised_at: number;
}

export class KmsDb {
  private readonly db: Db;
  /** The audit log (hash chain and checkpoints). */
  readonly auditLog: KmsAudit;
  /** Accounts, sessions and grants. */
  readonly access: AccessStore;
  /** Whether this open created the file (a new KMS). */
  readonly created: boolean;
  readonly migratedFrom: number;

  private constructor(db: Db, created: boolean, migratedFrom: number) {
    this.db = db;
    this.auditLog = new KmsAudit(db);
    this.access = new AccessStore(db);
    this.created = created;
    this.migratedFrom = migratedFrom;
  }

  /**
   * Opens the KMS database (see src/util/sqlite.ts for every check); creates it only with `create`. A database of
   * the first release (schema 1) is upgraded in place.
   */
  static open(file: string, options: { readonly create?: boolean } = {}): KmsDb {
    const o = openStore({
      file,
      kind: 'keyframe-kms',
      what: 'KMS database',
      migrations: KMS_MIGRATIONS,
      ...(options.create === true ? { create: true } : {}),
      legacy: (db) => db.prepare<[], { n: number }>("SELECT count(*) AS n FROM sqlite_master WHERE type = 'table' AND name IN ('cameras', 'groups', 'bundles')").get()?.n === 3,
    });
    return new KmsDb(o.db, o.created, o.migratedFrom);
  }

  meta(key: string): string | undefined {
    return this.db.prepare<[string], { value: string }>('SELECT value FROM meta WHERE key = ?').get(key)?.value;
  }
  setMeta(key: string, value: string): void {
    this.db.prepare('INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value').run(key, value);
  }

  /** True when the database holds any group or camera (sealed secrets a key store must open). */
  get holdsState(): boolean {
    const c = this.counts();
    return c.cameras > 0 || c.groups > 0;
  }

  // alarms
  alarms(): AlarmRow[] {
    return this.db.prepare<[], AlarmRow>('SELECT * FROM alarms ORDER BY group_id').all();
  }
  alarm(groupId: string): AlarmRow | undefined {
    return this.db.prepare<[string], AlarmRow>('SELECT * FROM alarms WHERE group_id = ?').get(groupId);
  }
  raiseAlarm(a: AlarmRow): void {
    this.db.prepare('INSERT INTO alarms (group_id, kind, detail, raised_at) VALUES (@group_id, @kind, @detail, @raised_at) ON CONFLICT(group_id) DO NOTHING').run(a);
  }
  clearAlarm(groupId: string): void {
    this.db.prepare('DELETE FROM alarms WHERE group_id = ?').run(groupId);
  }

  get journalMode(): string {
    return String(this.db.pragma('journal_mode', { simple: true }));
  }

  /** Runs `fn` in one transaction (all or nothing). */
  tx<T>(fn: () => T): T {
    return this.db.transaction(fn)();
  }

  close(): void {
    this.db.close();
  }

  // cameras
  camera(serial: string): CameraRow | undefined {
    return this.db.prepare<[string], CameraRow>('SELECT * FROM cameras WHERE serial = ?').get(serial);
  }
  cameras(): CameraRow[] {
    return this.db.prepare<[], CameraRow>('SELECT * FROM cameras ORDER BY serial').all();
  }
  putCamera(c: CameraRow): void {
    this.db
      .prepare('INSERT INTO cameras (serial, cert, fingerprint, generation, subkeys, enrolled_at) VALUES (@serial, @cert, @fingerprint, @generation, @subkeys, @enrolled_at) ON CONFLICT(serial) DO UPDATE SET cert = excluded.cert, fingerprint = excluded.fingerprint, generation = excluded.generation, subkeys = excluded.subkeys, enrolled_at = excluded.enrolled_at')
      .run(c);
  }

  // groups
  group(id: string): GroupRow | undefined {
    return this.db.prepare<[string], GroupRow>('SELECT * FROM groups WHERE id = ?').get(id);
  }
  groups(): GroupRow[] {
    return this.db.prepare<[], GroupRow>('SELECT * FROM groups ORDER BY id').all();
  }
  insertGroup(g: GroupRow): void {
    this.db.prepare('INSERT INTO groups (id, mode, degree, leader, refresh_ms, batch_ms, created_at, epoch, core) VALUES (@id, @mode, @degree, @leader, @refresh_ms, @batch_ms, @created_at, @epoch, @core)').run(g);
  }
  setGroupCore(id: string, epoch: number, core: Buffer): void {
    this.db.prepare('UPDATE groups SET epoch = ?, core = ? WHERE id = ?').run(epoch, core, id);
  }
  setLeader(id: string, leader: string | null): void {
    this.db.prepare('UPDATE groups SET leader = ? WHERE id = ?').run(leader, id);
  }

  // history
  putBundle(groupId: string, epoch: number, bytes: Uint8Array, sealedSecret: Buffer): void {
    this.db.prepare('INSERT INTO bundles (group_id, epoch, bytes) VALUES (?, ?, ?)').run(groupId, epoch, Buffer.from(bytes));
    this.db.prepare('INSERT INTO secrets (group_id, epoch, sealed) VALUES (?, ?, ?)').run(groupId, epoch, sealedSecret);
  }
  bundles(groupId: string): { epoch: number; bytes: Buffer }[] {
    return this.db.prepare<[string], { epoch: number; bytes: Buffer }>('SELECT epoch, bytes FROM bundles WHERE group_id = ? ORDER BY epoch').all(groupId);
  }
  secrets(groupId: string): { epoch: number; sealed: Buffer }[] {
    return this.db.prepare<[string], { epoch: number; sealed: Buffer }>('SELECT epoch, sealed FROM secrets WHERE group_id = ? ORDER BY epoch').all(groupId);
  }

  // pending membership changes (hardened batching)
  pending(groupId: string): PendingRow[] {
    return this.db.prepare<[string], PendingRow>('SELECT * FROM pending WHERE group_id = ? ORDER BY requested_at, serial').all(groupId);
  }
  putPending(p: PendingRow): void {
    this.db.prepare('INSERT INTO pending (group_id, serial, op, requested_at) VALUES (@group_id, @serial, @op, @requested_at) ON CONFLICT(group_id, serial) DO UPDATE SET op = excluded.op, requested_at = excluded.requested_at').run(p);
  }
  deletePending(groupId: string, serial: string): void {
    this.db.prepare('DELETE FROM pending WHERE group_id = ? AND serial = ?').run(groupId, serial);
  }
  clearPending(groupId: string, serials: readonly string[]): void {
    const del = this.db.prepare('DELETE FROM pending WHERE group_id = ? AND serial = ?');
    for (const s of serials) del.run(groupId, s);
  }

  // paper-scheme requests
  paperRequests(groupId: string): { serial: string; op: 'join' | 'leave' }[] {
    return this.db.prepare<[string], { serial: string; op: 'join' | 'leave' }>('SELECT serial, op FROM paper WHERE group_id = ? ORDER BY serial').all(groupId);
  }
  putPaperRequest(groupId: string, serial: string, op: 'join' | 'leave'): void {
    this.db.prepare('INSERT INTO paper (group_id, serial, op) VALUES (?, ?, ?) ON CONFLICT(group_id, serial) DO UPDATE SET op = excluded.op').run(groupId, serial, op);
  }
  deletePaperRequest(groupId: string, serial: string): void {
    this.db.prepare('DELETE FROM paper WHERE group_id = ? AND serial = ?').run(groupId, serial);
  }

  /** Appends an audit entry (inside the caller's transaction, if any): audit-store.ts. */
  audit(actor: string, action: string, detail: Record<string, unknown>, at = Date.now(), context?: AuditContext): AuditRow {
    return this.auditLog.append(actor, action, detail, at, context);
  }
  /** The last authentication round of a group, as audited (group-auth or group-blame), if any. */
  lastAuth<T>(groupId: string): T | undefined {
    const row = this.db
      .prepare<[string], { entry: string }>("SELECT entry FROM audit WHERE action IN ('group-auth', 'group-blame') AND json_extract(entry, '$.detail.group') = ? ORDER BY seq DESC LIMIT 1")
      .get(groupId);
    if (row === undefined) return undefined;
    return (JSON.parse(row.entry) as { detail?: { record?: T } }).detail?.record;
  }
  auditTail(limit: number): AuditRow[] {
    return this.auditLog.tail(limit);
  }
  counts(): { cameras: number; groups: number; bundles: number } {
    const one = (sql: string): number => (this.db.prepare<[], { n: number }>(sql).get() as { n: number }).n;
    return { cameras: one('SELECT count(*) AS n FROM cameras'), groups: one('SELECT count(*) AS n FROM groups'), bundles: one('SELECT count(*) AS n FROM bundles') };
  }
}
