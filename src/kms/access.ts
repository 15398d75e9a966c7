/**
 * Who may decrypt what (issue 13 §2–§4): accounts, logins, sessions, grants and the ClearKey licence decision, every
 * decision an entry of the audit chain written before the answer — no audit entry, no key and no session.
 *
 * - Accounts: argon2id passwords (access/password.ts), an optional TOTP second factor (sealed by the KMS; required
 *   for administrators when the KMS config says `"totp": true`), roles (access/roles.ts). Disabling an account or
 *   changing its password ends its sessions at once.
 * - Logins are throttled per account and per client address (access/rate-limit.ts); any failure is one generic
 *   refusal, the reason goes to the audit log only.
 * - Sessions: a random id (public: audit, tokens) and a random secret (the cookie holds both; the database holds
 *   SHA-256 of the secret), a CSRF token, an idle and an absolute lifetime.
 * - Licences: each KID resolves to its group, camera and epoch; access/grants.ts decides; the keys allowed are
 *   answered, all others are not, and when none is allowed the answer is a refusal.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { ErrorCodes, InputError, KeyframeError, NotFoundError } from '../errors.js';
import { LIVE_GRACE_MS, decideKey, grantApplies, grantInForce, windowAt } from '../access/grants.js';
import type { AclEntry } from '../access/acl.js';
import type { Account, Grant, GrantWindow, KeyDecision, KeyEpoch, Principal, Scope } from '../access/grants.js';
import { checkPasswordPolicy, hashPassword, verifyPassword } from '../access/password.js';
import { FailureCounter } from '../access/rate-limit.js';
import { checkUserName, parseRights, parseRole, roleAllows } from '../access/roles.js';
import type { Role } from '../access/roles.js';
import { base32Encode, generateTotpSecret, otpauthUri, verifyTotp } from '../access/totp.js';
import { DEFAULT_CLOCK_TOLERANCE_SECONDS, DEFAULT_MAX_LIFETIME_SECONDS, accessTokenLifetimeSeconds, newTokenId, signAccessToken } from '../access/token.js';
import { signRevocationList } from '../access/revocation-list.js';
import type { TokenSigner } from '../access/token.js';
import { checkIdentifier } from '../util/ids.js';
import { AuditBatcher } from './audit-batch.js';
import type { AuditContext } from './audit-store.js';
import type { SessionRow, StoredGrant, UserRow } from './access-store.js';
import type { KmsDb } from './db.js';
import type { FoundKey } from './key-release.js';
import type { Sealer } from './seal.js';

/** Any authentication failure: nothing about why. */
export class AuthenticationFailed extends KeyframeError {
  constructor(readonly reason: string) {
    super(ErrorCodes.FORBIDDEN, 'authentication failed');
    this.name = 'AuthenticationFailed';
    Object.defineProperty(this, 'reason', { enumerable: false, value: reason });
  }
}

/** A licence request none of whose keys may be released: nothing about why. */
export class LicenceDenied extends KeyframeError {
  constructor() {
    super(ErrorCodes.FORBIDDEN, 'forbidden');
    this.name = 'LicenceDenied';
  }
}

export interface AccessOptions {
  readonly db: KmsDb;
  readonly sealer: Sealer;
  /** KID → key and epoch (KmsService.findContentKey). */
  readonly findKey: (kid: Uint8Array, actor: string) => FoundKey | undefined;
  /** A group's members now (for access tokens; KmsService.show). */
  readonly membersOf?: (group: string) => readonly string[];
  /** Signs access tokens (the KMS key, ES256). */
  readonly signToken: TokenSigner;
  /** The token issuer (the KMS's name) and the audiences (NVR names) it issues tokens for. */
  readonly issuer: string;
  readonly audiences: readonly string[];
  readonly totpRequiredForAdmins: boolean;
  readonly sessionIdleMs: number;
  readonly sessionMaxMs: number;
  /** How long after a rotation a live viewer still gets the previous epoch's key (default LIVE_GRACE_MS). */
  readonly liveGraceMs?: number;
  readonly now?: () => number;
  readonly log?: (event: string, detail: Record<string, unknown>) => void;
}

export const ACCESS_DEFAULTS = {
  sessionIdleMs: 30 * 60_000,
  sessionMaxMs: 12 * 3600_000,
  /** Login failures allowed per account, and per client address, within the window. */
  accountFailures: 10,
  addressFailures: 50,
  failureWindowMs: 15 * 60_000,
} as const;

export interface UserView {
  readonly name: string;
  readonly role: Role;
  readonly totp: boolean;
  readonly createdAt: string;
  readonly createdBy: string;
  readonly passwordChangedAt: string;
  readonly disabled: boolean;
  readonly disabledAt?: string;
  readonly disabledBy?: string;
  readonly sessions?: number;
}

export interface Session {
  readonly id: string;
  readonly user: string;
  readonly role: Role;
  readonly csrf: string;
  readonly expiresAt: number;
}

export interface LoginResult {
  readonly session: Session;
  /** The cookie value (id.secret): shown once, never stored. */
  readonly cookie: string;
}

export interface GrantSpec {
  readonly user?: string;
  readonly role?: string;
  /** A certificate administrator's common name. */
  readonly certificate?: string;
  readonly camera?: string;
  readonly group?: string;
  readonly rights: unknown;
  /** Fixed window (ms) … */
  readonly from?: number;
  readonly to?: number;
  /** … or the last N ms. */
  readonly lastMs?: number;
  readonly validFrom?: number;
  readonly validTo?: number;
  readonly caseId?: string;
}

export interface LicenceAnswer {
  readonly keys: { readonly kid: Buffer; readonly key: Buffer }[];
  readonly decisions: readonly KeyDecision[];
  /** What each KID (hex) resolved to. */
  readonly found: ReadonlyMap<string, FoundKey | undefined>;
  readonly audit: number;
}

const iso = (t: number): string => new Date(t).toISOString();
const sha256 = (s: string): string => createHash('sha256').update(s, 'utf8').digest('hex');

function sameText(a: string, b: string): boolean {
  const x = Buffer.from(sha256(a), 'hex');
  const y = Buffer.from(sha256(b), 'hex');
  return timingSafeEqual(x, y);
}

export function viewUser(u: UserRow, sessions?: number): UserView {
  return {
    name: u.name,
    role: u.role,
    totp: u.totp !== null,
    createdAt: iso(u.created_at),
    createdBy: u.created_by,
    passwordChangedAt: iso(u.password_at),
    disabled: u.disabled_at !== null,
    ...(u.disabled_at !== null ? { disabledAt: iso(u.disabled_at) } : {}),
    ...(u.disabled_by !== null ? { disabledBy: u.disabled_by } : {}),
    ...(sessions !== undefined ? { sessions } : {}),
  };
}

export class AccessService {
  private readonly now: () => number;
  private readonly byAccount = new FailureCounter({ limit: ACCESS_DEFAULTS.accountFailures, windowMs: ACCESS_DEFAULTS.failureWindowMs });
  private readonly byAddress = new FailureCounter({ limit: ACCESS_DEFAULTS.addressFailures, windowMs: ACCESS_DEFAULTS.failureWindowMs });

  /** Licence decisions are committed in batches (group commit); everything else is appended at once. */
  private readonly licenceAudit: AuditBatcher;

  constructor(private readonly o: AccessOptions) {
    this.now = o.now ?? Date.now;
    this.licenceAudit = new AuditBatcher(o.db.auditLog);
  }

  /** Commits licence decisions still queued (before the database closes). */
  flushAudit(): void {
    this.licenceAudit.flush();
  }

  private get store() {
    return this.o.db.access;
  }

  private audit(actor: string, action: string, detail: Record<string, unknown>, context?: AuditContext): number {
    return this.o.db.audit(actor, action, detail, this.now(), context).seq;
  }

  /** Ends sessions; the revocation list is made again on its next request. */
  private endSessionsOf(user: string, at: number): number {
    this.sessionsEnded++;
    return this.store.endSessionsOf(user, at);
  }
  private endSession(id: string, at: number): void {
    this.sessionsEnded++;
    this.store.endSession(id, at);
  }

  private mustUser(name: string): UserRow {
    const u = this.store.user(checkUserName(name));
    if (u === undefined) throw new NotFoundError(`no user ${name}`);
    return u;
  }

  // ── accounts ─────────────────────────────────────────────────────────────────────────────────────────────

  async addUser(r: { readonly name: unknown; readonly role: unknown; readonly password: unknown }, actor: string, context?: AuditContext): Promise<UserView> {
    const name = checkUserName(r.name);
    const role = parseRole(r.role);
    if (typeof r.password !== 'string') throw new InputError('password is required');
    checkPasswordPolicy(r.password);
    if (this.store.user(name) !== undefined) throw new KeyframeError(ErrorCodes.EXISTS, `user ${name} exists`);
    const phc = await hashPassword(r.password);
    const at = this.now();
    this.store.tx(() => {
      if (this.store.user(name) !== undefined) throw new KeyframeError(ErrorCodes.EXISTS, `user ${name} exists`);
      this.store.insertUser({ name, role, password: phc, totp: null, totp_step: null, created_at: at, created_by: actor, password_at: at, disabled_at: null, disabled_by: null });
      this.audit(actor, 'user-add', { user: name, role }, context);
    });
    return viewUser(this.mustUser(name), 0);
  }

  async setPassword(name: string, password: unknown, actor: string, context?: AuditContext): Promise<UserView> {
    this.mustUser(name);
    if (typeof password !== 'string') throw new InputError('password is required');
    checkPasswordPolicy(password);
    const phc = await hashPassword(password);
    const at = this.now();
    this.store.tx(() => {
      this.store.setPassword(name, phc, at);
      const n = this.endSessionsOf(name, at);
      this.audit(actor, 'user-passwd', { user: name, sessionsEnded: n }, context);
    });
    return viewUser(this.mustUser(name), 0);
  }

  setRole(name: string, role: unknown, actor: string, context?: AuditContext): UserView {
    const u = this.mustUser(name);
    const next = parseRole(role);
    const at = this.now();
    this.store.tx(() => {
      this.store.setRole(name, next);
      const n = this.endSessionsOf(name, at);
      this.audit(actor, 'user-role', { user: name, from: u.role, to: next, sessionsEnded: n }, context);
    });
    return viewUser(this.mustUser(name), 0);
  }

  /** Disables (or enables) an account; disabling ends every session of it at once. */
  setDisabled(name: string, disabled: boolean, actor: string, context?: AuditContext): UserView {
    this.mustUser(name);
    const at = this.now();
    this.store.tx(() => {
      this.store.setDisabled(name, disabled ? at : null, disabled ? actor : null);
      const n = disabled ? this.endSessionsOf(name, at) : 0;
      this.audit(actor, disabled ? 'user-disable' : 'user-enable', { user: name, ...(disabled ? { sessionsEnded: n } : {}) }, context);
    });
    return viewUser(this.mustUser(name), disabled ? 0 : this.store.openSessions(name, at).length);
  }

  /** A new TOTP secret for an account (replacing any); the URI is shown once, for an authenticator app. */
  async enrolTotp(name: string, actor: string, context?: AuditContext): Promise<{ secret: string; uri: string }> {
    this.mustUser(name);
    const secret = generateTotpSecret();
    const sealed = await this.o.sealer.seal('totp', name, secret);
    this.store.tx(() => {
      this.store.setTotp(name, sealed);
      this.audit(actor, 'user-totp', { user: name, enrolled: true }, context);
    });
    return { secret: base32Encode(secret), uri: otpauthUri('keyframe', name, secret) };
  }

  clearTotp(name: string, actor: string, context?: AuditContext): UserView {
    this.mustUser(name);
    this.store.tx(() => {
      this.store.setTotp(name, null);
      this.audit(actor, 'user-totp', { user: name, enrolled: false }, context);
    });
    return viewUser(this.mustUser(name));
  }

  listUsers(): UserView[] {
    const now = this.now();
    return this.store.users().map((u) => viewUser(u, this.store.openSessions(u.name, now).length));
  }

  showUser(name: string): UserView & { grants: StoredGrant[] } {
    const u = this.mustUser(name);
    const grants = this.store.activeGrants().filter((g) => (g.principal.kind === 'user' ? g.principal.name === name : g.principal.kind === 'role' && g.principal.role === u.role));
    return { ...viewUser(u, this.store.openSessions(name, this.now()).length), grants };
  }

  // ── logins and sessions ───────────────────────────────────────────────────────────────────────────────────

  /**
   * Checks a password (and a TOTP code where one is required) and opens a session. Throttled per account and
   * address; every outcome is audited; any failure is AuthenticationFailed (LIMIT when throttled).
   */
  async login(r: { readonly user: unknown; readonly password: unknown; readonly totp?: unknown }, context: AuditContext = {}): Promise<LoginResult> {
    const name = typeof r.user === 'string' ? r.user.slice(0, 64) : '';
    const address = context.address ?? 'unknown';
    const now = this.now();
    const accountKey = `user:${name}`;
    const addressKey = `addr:${address}`;
    if (this.byAccount.blocked(accountKey, now) || this.byAddress.blocked(addressKey, now)) {
      this.audit(`user:${name}`, 'login-throttled', { user: name }, context);
      throw new KeyframeError(ErrorCodes.LIMIT, 'too many failed logins: try again later');
    }
    const fail = (reason: string): never => {
      this.byAccount.fail(accountKey, now);
      this.byAddress.fail(addressKey, now);
      this.audit(`user:${name}`, 'login-failure', { user: name, reason }, context);
      throw new AuthenticationFailed(reason);
    };
    const u = /^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$/.test(name) ? this.store.user(name) : undefined;
    const password = typeof r.password === 'string' && r.password.length <= 1024 ? r.password : '';
    const checked = await verifyPassword(u?.password, password);
    if (u === undefined) return fail('unknown user');
    if (!checked.ok) return fail('wrong password');
    if (u.disabled_at !== null) return fail('account disabled');
    if (u.totp === null && u.role === 'admin' && this.o.totpRequiredForAdmins) return fail('an administrator without a TOTP second factor (required by the KMS config)');
    if (u.totp !== null) {
      const secret = await this.o.sealer.open('totp', u.name, u.totp);
      const step = typeof r.totp === 'string' ? verifyTotp(secret, r.totp, now, { ...(u.totp_step !== null ? { lastStep: u.totp_step } : {}) }) : undefined;
      if (step === undefined) return fail(typeof r.totp === 'string' ? 'wrong or reused TOTP code' : 'TOTP code missing');
      if (!this.store.takeTotpStep(u.name, step)) return fail('reused TOTP code');
    }
    if (checked.rehash) this.store.setPassword(u.name, await hashPassword(password), undefined);
    const id = randomBytes(16).toString('base64url');
    const secret = randomBytes(32).toString('base64url');
    const csrf = randomBytes(32).toString('base64url');
    const expiresAt = now + this.o.sessionMaxMs;
    this.store.tx(() => {
      this.store.insertSession({ id, secret: sha256(secret), user: u.name, csrf, created_at: now, seen_at: now, expires_at: expiresAt, address: context.address ?? null, ua: context.userAgent?.slice(0, 256) ?? null, ended_at: null });
      this.audit(`user:${u.name}`, 'login', { user: u.name, role: u.role, session: id, totp: u.totp !== null }, context);
    });
    this.byAccount.clear(accountKey);
    // ended and expired sessions are kept a day (their audit entries stay for good)
    this.store.pruneSessions(now - 86_400_000);
    return { session: { id, user: u.name, role: u.role, csrf, expiresAt }, cookie: `${id}.${secret}` };
  }

  /** The session a cookie value opens, or undefined (unknown, wrong secret, ended, expired, idle, account disabled). */
  session(cookie: string | undefined): Session | undefined {
    if (cookie === undefined) return undefined;
    const m = /^([A-Za-z0-9_-]{22})\.([A-Za-z0-9_-]{43})$/.exec(cookie);
    if (m === null) return undefined;
    const s = this.store.session(m[1] as string);
    if (s === undefined || !sameText(sha256(m[2] as string), s.secret)) return undefined;
    const now = this.now();
    if (!this.live(s, now)) return undefined;
    const u = this.store.user(s.user);
    if (u === undefined || u.disabled_at !== null) return undefined;
    if (now - s.seen_at > 30_000) this.store.touchSession(s.id, now);
    return { id: s.id, user: u.name, role: u.role, csrf: s.csrf, expiresAt: Math.min(s.expires_at, now + this.o.sessionIdleMs) };
  }

  private live(s: SessionRow, now: number): boolean {
    return s.ended_at === null && now < s.expires_at && now - s.seen_at < this.o.sessionIdleMs;
  }

  /** Whether a session id is still open (the NVR's revocation check, and tokens). */
  sessionOpen(id: string): boolean {
    const s = this.store.session(id);
    if (s === undefined || !this.live(s, this.now())) return false;
    const u = this.store.user(s.user);
    return u !== undefined && u.disabled_at === null;
  }

  /** The CSRF token of a state-changing request matches its session's (constant time). */
  csrfValid(session: Session, token: string | undefined): boolean {
    return token !== undefined && sameText(token, session.csrf);
  }

  logout(session: Session, context?: AuditContext): void {
    this.store.tx(() => {
      this.endSession(session.id, this.now());
      this.audit(`user:${session.user}`, 'logout', { user: session.user, session: session.id }, context);
    });
  }

  /** A short-lived access token for an NVR (`audience`), bound to the session. */
  async accessToken(session: Session, audience: string, context?: AuditContext): Promise<{ token: string; expiresAt: number }> {
    if (!this.o.audiences.includes(audience)) throw new InputError(`no NVR named ${JSON.stringify(audience)} takes tokens from this KMS`);
    const now = this.now();
    const iat = Math.floor(now / 1000);
    const exp = iat + accessTokenLifetimeSeconds;
    const jti = newTokenId();
    // grants in force now (not at iat, which is rounded down to the second: a grant made this second counts)
    const acl = this.aclOf({ name: session.user, role: session.role }, now);
    this.audit(`user:${session.user}`, 'token', { user: session.user, session: session.id, audience, jti, exp: iso(exp * 1000), acl }, context);
    const token = await signAccessToken({ iss: this.o.issuer, sub: session.user, aud: audience, sid: session.id, role: session.role, iat, exp, jti, acl }, this.o.signToken);
    return { token, expiresAt: exp * 1000 };
  }

  /**
   * The signed list of sessions ended within the longest lifetime an NVR accepts for a token (plus its clock
   * tolerance), for NVRs to stop honouring their tokens at once (access/revocation-list.ts). Made again at most
   * once a second, and at once after a session ends.
   */
  async revocationList(): Promise<string> {
    const now = this.now();
    const cached = this.revoked;
    if (cached !== undefined && cached.version === this.sessionsEnded && now - cached.at < 1000) return cached.jwt;
    const version = this.sessionsEnded;
    const win = DEFAULT_MAX_LIFETIME_SECONDS + DEFAULT_CLOCK_TOLERANCE_SECONDS;
    const sids = this.store.sessionsEndedSince(now - win * 1000);
    const jwt = await signRevocationList({ iss: this.o.issuer, iat: Math.floor(now / 1000), win, sids }, this.o.signToken);
    this.revoked = { jwt, at: now, version };
    return jwt;
  }
  private revoked: { readonly jwt: string; readonly at: number; readonly version: number } | undefined;
  /** Counts session ends in this process (a cached list made before one is stale). */
  private sessionsEnded = 0;

  /** The account's grants in force at `now`, resolved for an NVR (access/acl.ts). */
  aclOf(who: Account, now: number): AclEntry[] {
    const out: AclEntry[] = [];
    for (const g of this.store.activeGrants()) {
      if (!grantApplies(g, who) || !grantInForce(g, now)) continue;
      const rights = g.rights.filter((r) => roleAllows(who.role, r));
      const cams = g.scope.kind === 'camera' ? [g.scope.serial] : (this.o.membersOf?.(g.scope.group) ?? []);
      if (rights.length === 0 || cams.length === 0) continue;
      const w = windowAt(g.window, now);
      out.push({ cams, rights, from: w.from, to: w.to });
    }
    return out;
  }

  // ── grants ───────────────────────────────────────────────────────────────────────────────────────────────

  addGrant(spec: GrantSpec, actor: string, context?: AuditContext): StoredGrant {
    if ([spec.user, spec.role, spec.certificate].filter((x) => x !== undefined).length !== 1) throw new InputError('a grant names a user, a role or a certificate administrator (one of them)');
    const principal: Principal =
      spec.user !== undefined
        ? { kind: 'user', name: this.mustUser(spec.user).name }
        : spec.certificate !== undefined
          ? { kind: 'certificate', name: checkIdentifier(spec.certificate, 'certificate administrator name') }
          : { kind: 'role', role: parseRole(spec.role) };
    if ((spec.camera === undefined) === (spec.group === undefined)) throw new InputError('a grant covers a camera or a group (one of them)');
    const scope: Scope = spec.camera !== undefined ? { kind: 'camera', serial: checkIdentifier(spec.camera, 'camera serial') } : { kind: 'group', group: checkIdentifier(spec.group, 'group id') };
    const rights = parseRights(spec.rights);
    let window: GrantWindow;
    if (spec.lastMs !== undefined) {
      if (spec.from !== undefined || spec.to !== undefined) throw new InputError('a grant window is either from/to or "last", not both');
      if (!Number.isSafeInteger(spec.lastMs) || spec.lastMs <= 0) throw new InputError('"last" must be a positive duration');
      window = { kind: 'last', ms: spec.lastMs };
    } else {
      if (spec.from === undefined || spec.to === undefined) throw new InputError('a grant window needs from and to, or "last"');
      if (!Number.isSafeInteger(spec.from) || !Number.isSafeInteger(spec.to) || spec.to <= spec.from) throw new InputError('a grant window must end after it starts');
      window = { kind: 'fixed', from: spec.from, to: spec.to };
    }
    const now = this.now();
    const validFrom = spec.validFrom ?? now;
    if (spec.validTo !== undefined && spec.validTo <= validFrom) throw new InputError('a grant must be valid until after it becomes valid');
    if (spec.caseId !== undefined && !/^[A-Za-z0-9][A-Za-z0-9._:/-]{0,127}$/.test(spec.caseId)) throw new InputError('a case id is 1–128 letters, digits or ._:/-');
    const g: Omit<Grant, 'id'> = { principal, scope, rights, window, validFrom, ...(spec.validTo !== undefined ? { validTo: spec.validTo } : {}), ...(spec.caseId !== undefined ? { caseId: spec.caseId } : {}) };
    const id = this.store.tx(() => {
      const n = this.store.insertGrant(g, now, actor);
      this.audit(actor, 'grant-add', { grant: n, ...grantDetail(g) }, context);
      return n;
    });
    return this.store.grant(id) as StoredGrant;
  }

  revokeGrant(id: number, actor: string, context?: AuditContext): StoredGrant {
    const g = this.store.grant(id);
    if (g === undefined) throw new NotFoundError(`no grant ${id}`);
    this.store.tx(() => {
      if (!this.store.revokeGrant(id, this.now(), actor)) throw new InputError(`grant ${id} is revoked already`);
      this.audit(actor, 'grant-revoke', { grant: id, ...grantDetail(g) }, context);
    });
    return this.store.grant(id) as StoredGrant;
  }

  grants(all = false): readonly StoredGrant[] {
    return all ? this.store.allGrants() : this.store.activeGrants();
  }

  // ── licences ─────────────────────────────────────────────────────────────────────────────────────────────

  /**
   * The keys `session`'s account may have of `kids`: decided per KID, the whole decision audited before anything is
   * answered (if the audit write fails, no key). None allowed: LicenceDenied.
   */
  async licence(session: Session, kids: readonly Buffer[], context?: AuditContext): Promise<LicenceAnswer> {
    const u = this.store.user(session.user);
    if (u === undefined || u.disabled_at !== null || !this.sessionOpen(session.id)) throw new AuthenticationFailed('session no longer valid');
    return this.decide({ name: u.name, role: u.role }, `user:${u.name}`, { user: u.name, role: u.role, session: session.id }, kids, context);
  }

  /**
   * The same decision for a certificate administrator (`/v1/admin/content-key`): only keys a grant to that
   * certificate (`"certificate": CN`) covers, audited the same way.
   */
  async adminLicence(commonName: string, kids: readonly Buffer[], context?: AuditContext): Promise<LicenceAnswer> {
    return this.decide({ name: commonName, role: 'admin', certificate: true }, `admin:${commonName}`, { certificate: commonName }, kids, context);
  }

  /**
   * Decides per KID, then appends the decision to the audit log with the other licences of this turn of the event
   * loop (audit-batch.ts: one commit for all) and answers only once it is committed.
   */
  private async decide(who: Account, actor: string, about: Record<string, unknown>, kids: readonly Buffer[], context?: AuditContext): Promise<LicenceAnswer> {
    if (kids.length === 0 || kids.length > 64) throw new InputError('a licence request names 1–64 KIDs');
    const now = this.now();
    const grants = this.store.activeGrants();
    const found = new Map<string, FoundKey | undefined>();
    const decisions: KeyDecision[] = [];
    for (const kid of kids) {
      const hex = kid.toString('hex');
      if (found.has(hex)) continue;
      const f = this.o.findKey(kid, actor);
      found.set(hex, f);
      const epoch: KeyEpoch | undefined = f === undefined ? undefined : { kid: hex, group: f.groupId, camera: f.cameraId, epoch: f.epoch, current: f.span.current, ...(f.span.start !== undefined ? { start: f.span.start } : {}), ...(f.span.end !== undefined ? { end: f.span.end } : {}) };
      decisions.push(decideKey(hex, epoch, who, grants, now, this.o.liveGraceMs ?? LIVE_GRACE_MS));
    }
    const allowed = decisions.filter((d) => d.allowed);
    const { seq } = await this.licenceAudit.append({
      actor,
      action: allowed.length > 0 ? 'licence' : 'licence-denied',
      detail: {
        ...about,
        keys: decisions.map((d) => {
          const f = found.get(d.kid);
          return {
            kid: d.kid,
            decision: d.allowed ? 'released' : 'denied',
            ...(f !== undefined ? { group: f.groupId, camera: f.cameraId, epoch: f.epoch, ...(f.span.start !== undefined ? { from: iso(f.span.start) } : {}), ...(f.span.end !== undefined ? { to: iso(f.span.end) } : {}) } : {}),
            ...(d.grant !== undefined ? { grant: d.grant, right: d.right } : {}),
            ...(d.reason !== undefined ? { reason: d.reason } : {}),
          };
        }),
      },
      at: now,
      ...(context !== undefined ? { context } : {}),
    });
    this.o.log?.('licence', { actor, released: allowed.length, denied: decisions.length - allowed.length, audit: seq });
    if (allowed.length === 0) throw new LicenceDenied();
    return { keys: allowed.map((d) => ({ kid: Buffer.from(d.kid, 'hex'), key: (found.get(d.kid) as FoundKey).key })), decisions, found, audit: seq };
  }
}

function grantDetail(g: Omit<Grant, 'id'>): Record<string, unknown> {
  const p = g.principal;
  return {
    ...(p.kind === 'user' ? { user: p.name } : p.kind === 'certificate' ? { certificate: p.name } : { role: p.role }),
    ...(g.scope.kind === 'camera' ? { camera: g.scope.serial } : { group: g.scope.group }),
    rights: g.rights,
    window: g.window.kind === 'fixed' ? { from: iso(g.window.from), to: iso(g.window.to) } : { lastMs: g.window.ms },
    validFrom: iso(g.validFrom),
    ...(g.validTo !== undefined ? { validTo: iso(g.validTo) } : {}),
    ...(g.caseId !== undefined ? { case: g.caseId } : {}),
  };
}
