/**
 * Accounts, login sessions and grants in the KMS database (schema 4; issue 13 §2).
 *
 *   users     name, role, password (argon2id PHC string), totp (the TOTP secret sealed by the KMS), totp_step (the
 *             last step accepted: a code is never taken twice), created_at/by, password_at, disabled_at/by
 *   sessions  id (public; names the session in audit and tokens), secret (SHA-256 of the cookie's secret part: a
 *             stolen database opens no session), user, csrf, created_at, seen_at, expires_at, address, user agent,
 *             ended_at (logout, disabling, password change)
 *   grants    who (a user, a role, or a certificate administrator), scope (a camera or a group), rights, window (fixed from/to, or last_ms),
 *             valid_from/valid_to, case, created_at/by, revoked_at/by
 */
import type { Database as Db } from 'better-sqlite3';
import type { Grant, GrantWindow, Principal, Scope } from '../access/grants.js';
import type { Right, Role } from '../access/roles.js';

export const ACCESS_SCHEMA = `
CREATE TABLE users (
  name TEXT PRIMARY KEY, role TEXT NOT NULL CHECK (role IN ('admin','operator','investigator','viewer','auditor')),
  password TEXT NOT NULL, totp BLOB, totp_step INTEGER, created_at INTEGER NOT NULL, created_by TEXT NOT NULL,
  password_at INTEGER NOT NULL, disabled_at INTEGER, disabled_by TEXT);
CREATE TABLE sessions (
  id TEXT PRIMARY KEY, secret TEXT NOT NULL, user TEXT NOT NULL REFERENCES users (name), csrf TEXT NOT NULL,
  created_at INTEGER NOT NULL, seen_at INTEGER NOT NULL, expires_at INTEGER NOT NULL, address TEXT, ua TEXT, ended_at INTEGER);
CREATE INDEX sessions_by_user ON sessions (user);
CREATE TABLE grants (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  principal_kind TEXT NOT NULL CHECK (principal_kind IN ('user','role','certificate')), principal TEXT NOT NULL,
  scope_kind TEXT NOT NULL CHECK (scope_kind IN ('camera','group')), scope TEXT NOT NULL,
  rights TEXT NOT NULL, window_from INTEGER, window_to INTEGER, window_last_ms INTEGER,
  valid_from INTEGER NOT NULL, valid_to INTEGER, case_id TEXT,
  created_at INTEGER NOT NULL, created_by TEXT NOT NULL, revoked_at INTEGER, revoked_by TEXT,
  CHECK ((window_last_ms IS NULL) = (window_from IS NOT NULL AND window_to IS NOT NULL)));
`;

export interface UserRow {
  readonly name: string;
  readonly role: Role;
  readonly password: string;
  readonly totp: Buffer | null;
  readonly totp_step: number | null;
  readonly created_at: number;
  readonly created_by: string;
  readonly password_at: number;
  readonly disabled_at: number | null;
  readonly disabled_by: string | null;
}

export interface SessionRow {
  readonly id: string;
  readonly secret: string;
  readonly user: string;
  readonly csrf: string;
  readonly created_at: number;
  readonly seen_at: number;
  readonly expires_at: number;
  readonly address: string | null;
  readonly ua: string | null;
  readonly ended_at: number | null;
}

interface GrantRow {
  readonly id: number;
  readonly principal_kind: 'user' | 'role' | 'certificate';
  readonly principal: string;
  readonly scope_kind: 'camera' | 'group';
  readonly scope: string;
  readonly rights: string;
  readonly window_from: number | null;
  readonly window_to: number | null;
  readonly window_last_ms: number | null;
  readonly valid_from: number;
  readonly valid_to: number | null;
  readonly case_id: string | null;
  readonly created_at: number;
  readonly created_by: string;
  readonly revoked_at: number | null;
  readonly revoked_by: string | null;
}

/** A grant as stored, with its bookkeeping. */
export interface StoredGrant extends Grant {
  readonly createdAt: number;
  readonly createdBy: string;
  readonly revokedAt?: number;
  readonly revokedBy?: string;
}

function toGrant(r: GrantRow): StoredGrant {
  const principal: Principal = r.principal_kind === 'role' ? { kind: 'role', role: r.principal as Role } : { kind: r.principal_kind, name: r.principal };
  const scope: Scope = r.scope_kind === 'camera' ? { kind: 'camera', serial: r.scope } : { kind: 'group', group: r.scope };
  const window: GrantWindow = r.window_last_ms !== null ? { kind: 'last', ms: r.window_last_ms } : { kind: 'fixed', from: r.window_from as number, to: r.window_to as number };
  return {
    id: r.id,
    principal,
    scope,
    rights: r.rights.split(',') as Right[],
    window,
    validFrom: r.valid_from,
    ...(r.valid_to !== null ? { validTo: r.valid_to } : {}),
    ...(r.case_id !== null ? { caseId: r.case_id } : {}),
    createdAt: r.created_at,
    createdBy: r.created_by,
    ...(r.revoked_at !== null ? { revokedAt: r.revoked_at } : {}),
    ...(r.revoked_by !== null ? { revokedBy: r.revoked_by } : {}),
  };
}

export class AccessStore {
  constructor(private readonly db: Db) {}

  tx<T>(fn: () => T): T {
    return this.db.transaction(fn)();
  }

  // users
  user(name: string): UserRow | undefined {
    return this.db.prepare<[string], UserRow>('SELECT * FROM users WHERE name = ?').get(name);
  }
  users(): UserRow[] {
    return this.db.prepare<[], UserRow>('SELECT * FROM users ORDER BY name').all();
  }
  insertUser(u: UserRow): void {
    this.db
      .prepare('INSERT INTO users (name, role, password, totp, totp_step, created_at, created_by, password_at, disabled_at, disabled_by) VALUES (@name, @role, @password, @totp, @totp_step, @created_at, @created_by, @password_at, @disabled_at, @disabled_by)')
      .run(u);
  }
  setPassword(name: string, phc: string, at: number | undefined): void {
    if (at === undefined) this.db.prepare('UPDATE users SET password = ? WHERE name = ?').run(phc, name);
    else this.db.prepare('UPDATE users SET password = ?, password_at = ? WHERE name = ?').run(phc, at, name);
  }
  setRole(name: string, role: Role): void {
    this.db.prepare('UPDATE users SET role = ? WHERE name = ?').run(role, name);
  }
  setDisabled(name: string, at: number | null, by: string | null): void {
    this.db.prepare('UPDATE users SET disabled_at = ?, disabled_by = ? WHERE name = ?').run(at, by, name);
  }
  setTotp(name: string, sealed: Buffer | null): void {
    this.db.prepare('UPDATE users SET totp = ?, totp_step = NULL WHERE name = ?').run(sealed, name);
  }
  /** Records the TOTP step just accepted; false when a step at or after it was taken already (a replay). */
  takeTotpStep(name: string, step: number): boolean {
    return this.db.prepare('UPDATE users SET totp_step = ? WHERE name = ? AND (totp_step IS NULL OR totp_step < ?)').run(step, name, step).changes === 1;
  }

  // sessions
  session(id: string): SessionRow | undefined {
    return this.db.prepare<[string], SessionRow>('SELECT * FROM sessions WHERE id = ?').get(id);
  }
  insertSession(s: SessionRow): void {
    this.db.prepare('INSERT INTO sessions (id, secret, user, csrf, created_at, seen_at, expires_at, address, ua, ended_at) VALUES (@id, @secret, @user, @csrf, @created_at, @seen_at, @expires_at, @address, @ua, @ended_at)').run(s);
  }
  touchSession(id: string, at: number): void {
    this.db.prepare('UPDATE sessions SET seen_at = ? WHERE id = ?').run(at, id);
  }
  endSession(id: string, at: number): void {
    this.db.prepare('UPDATE sessions SET ended_at = ? WHERE id = ? AND ended_at IS NULL').run(at, id);
  }
  /** Ends every open session of a user; returns how many. */
  endSessionsOf(user: string, at: number): number {
    return this.db.prepare('UPDATE sessions SET ended_at = ? WHERE user = ? AND ended_at IS NULL').run(at, user).changes;
  }
  /** The identifiers of sessions ended after `since` (for the revocation list). */
  sessionsEndedSince(since: number): string[] {
    return this.db.prepare<[number], { id: string }>('SELECT id FROM sessions WHERE ended_at IS NOT NULL AND ended_at >= ? ORDER BY ended_at').all(since).map((r) => r.id);
  }
  openSessions(user: string, now: number): SessionRow[] {
    return this.db.prepare<[string, number], SessionRow>('SELECT * FROM sessions WHERE user = ? AND ended_at IS NULL AND expires_at > ? ORDER BY created_at').all(user, now);
  }
  /** Deletes sessions that ended or expired before `before` (their audit entries stay). */
  pruneSessions(before: number): number {
    return this.db.prepare('DELETE FROM sessions WHERE (ended_at IS NOT NULL AND ended_at < ?) OR expires_at < ?').run(before, before).changes;
  }

  // grants
  grant(id: number): StoredGrant | undefined {
    const r = this.db.prepare<[number], GrantRow>('SELECT * FROM grants WHERE id = ?').get(id);
    return r === undefined ? undefined : toGrant(r);
  }
  /**
   * Grants not revoked (in force or not yet / no longer: the caller checks validity at its time). Kept in memory
   * between changes (every licence reads them; only insertGrant and revokeGrant change them, and this process
   * holds the database's exclusive lock).
   */
  activeGrants(): readonly StoredGrant[] {
    this.active ??= Object.freeze(this.db.prepare<[], GrantRow>('SELECT * FROM grants WHERE revoked_at IS NULL ORDER BY id').all().map(toGrant));
    return this.active;
  }
  private active: readonly StoredGrant[] | undefined;
  allGrants(): StoredGrant[] {
    return this.db.prepare<[], GrantRow>('SELECT * FROM grants ORDER BY id').all().map(toGrant);
  }
  insertGrant(g: Omit<Grant, 'id'>, at: number, by: string): number {
    this.active = undefined; // also when the caller's transaction rolls back: read again
    const w = g.window;
    return Number(
      this.db
        .prepare(
          'INSERT INTO grants (principal_kind, principal, scope_kind, scope, rights, window_from, window_to, window_last_ms, valid_from, valid_to, case_id, created_at, created_by) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)',
        )
        .run(
          g.principal.kind,
          g.principal.kind === 'role' ? g.principal.role : g.principal.name,
          g.scope.kind,
          g.scope.kind === 'camera' ? g.scope.serial : g.scope.group,
          g.rights.join(','),
          w.kind === 'fixed' ? w.from : null,
          w.kind === 'fixed' ? w.to : null,
          w.kind === 'last' ? w.ms : null,
          g.validFrom,
          g.validTo ?? null,
          g.caseId ?? null,
          at,
          by,
        ).lastInsertRowid,
    );
  }
  revokeGrant(id: number, at: number, by: string): boolean {
    this.active = undefined;
    return this.db.prepare('UPDATE grants SET revoked_at = ?, revoked_by = ? WHERE id = ? AND revoked_at IS NULL').run(at, by, id).changes === 1;
  }
}
