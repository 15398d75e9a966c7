/**
 * The KMS service's logic, without HTTP (http.ts serves it): camera enrolment, groups in hardened mode, Scheme 1
 * or Scheme 2, membership changes batched within a window into one rekey, the periodic refresh, long polls for
 * new epochs, challenge-bound group authentication through the leader, and a relay mailbox that carries
 * camera-to-camera traffic (the paper's LAN: leader ↔ members) — a relay the hardened protocol does not trust.
 *
 * This is the one facade: it holds the groups, checks callers and group identifiers, and hands the work to the
 * modules that do it — enrolment.ts, one runtime per group mode (runtime.ts; hardened-group.ts, paper-group.ts),
 * relay.ts, key-release.ts.
 *
 * Persistence (db.ts): every change of a group is one SQLite transaction, written before anyone is told about it;
 * if writing fails, the group is reloaded from the database and the caller gets the error. Membership changes
 * wait in the `pending` table, so a restart inside a batch window loses none. Secrets are sealed (seal.ts).
 */
import { randomBytes } from 'node:crypto';
import { ErrorCodes, InputError, KeyframeError, NotFoundError, isKeyframeError } from '../errors.js';
import { DEGREES } from '../groupkey/hardened/nodes.js';
import { PaperKms } from '../groupkey/paper/kms.js';
import type { KeyStore } from '../keystore/types.js';
import { checkIdentifier } from '../util/ids.js';
import { X509Certificate as X509CertificateClass } from '../pki/x509.js';
import type { X509Certificate, X509Crl } from '../pki/x509.js';
import type { AlarmRow, GroupMode, GroupRow, KmsDb } from './db.js';
import { GROUP_MODES } from './db.js';
import { Enrolment } from './enrolment.js';
import type { EnrolResult } from './enrolment.js';
import { HardenedGroup } from './hardened-group.js';
import type { HardenedContext } from './hardened-group.js';
import { findContentKey } from './key-release.js';
import type { FoundKey } from './key-release.js';
import { kmsVerifier, paperKey } from './keys.js';
import { Mailbox } from './mailbox.js';
import type { MailItem, RelayLimits } from './mailbox.js';
import { PaperGroup } from './paper-group.js';
import type { PaperContext } from './paper-group.js';
import { Relay } from './relay.js';
import { KMS_ADDRESS, refused } from './runtime.js';
import type { AuthRecord, ChangeResult, GroupRuntime, GroupView } from './runtime.js';
import type { Sealer } from './seal.js';
import { AuditCheckpointer, CHECKPOINT_DEFAULTS, auditOrigin } from './audit-checkpoints.js';
import { publicKeyObject } from '../pki/verify.js';

export { KMS_ADDRESS } from './runtime.js';
export type { AuthRecord, ChangeResult, GroupView } from './runtime.js';
export type { EnrolResult } from './enrolment.js';

export interface KmsServiceOptions {
  readonly db: KmsDb;
  readonly store: KeyStore;
  readonly sealer: Sealer;
  /** The KMS identity: its key (P-256) signs bundles and runs the enrolment ECDH; chain leaf first. */
  readonly identityLabel: string;
  readonly identityChain: readonly X509Certificate[];
  /** For checking cameras at enrolment. */
  readonly trust: { readonly root: X509Certificate; readonly factory: X509Certificate; readonly crls?: readonly X509Crl[] };
  readonly refreshPeriodMs: number;
  readonly batchWindowMs: number;
  readonly now?: () => number;
  readonly log?: (event: string, detail: Record<string, unknown>) => void;
  /** Bounds of the camera relay (default DEFAULT_RELAY_LIMITS). */
  readonly relayLimits?: RelayLimits;
  /** When the audit log gets a signed checkpoint (default CHECKPOINT_DEFAULTS). */
  readonly auditCheckpoints?: { readonly everyEntries?: number; readonly intervalMs?: number };
}

export interface CreateGroupRequest {
  readonly id: string;
  readonly mode?: GroupMode;
  readonly degree?: number;
  readonly leader?: string;
  readonly members?: readonly string[];
  readonly refreshPeriodMs?: number;
  readonly batchWindowMs?: number;
}

export class KmsService {
  private readonly o: KmsServiceOptions;
  private readonly now: () => number;
  private readonly groups = new Map<string, GroupRuntime>();
  private readonly paper: PaperKms;
  readonly mailbox: Mailbox;
  private readonly relay: Relay;
  private readonly enrolment: Enrolment;
  /** What the group runtimes need from the service. */
  private readonly ctx: HardenedContext & PaperContext;
  private refreshTimer: NodeJS.Timeout | undefined;
  /** Signs checkpoints over the audit chain (audit-checkpoints.ts). */
  readonly checkpoints: AuditCheckpointer;
  /** Groups whose stored state failed its check at start: id → what is wrong. Not served. */
  private readonly damaged = new Map<string, string>();
  /** Cameras whose sealed sub-keys do not open: serial → what is wrong (they must enrol again). */
  private readonly damagedCameras = new Map<string, string>();
  private closed = false;
  readonly startedAt: number;

  private constructor(o: KmsServiceOptions) {
    this.o = o;
    this.now = o.now ?? Date.now;
    this.startedAt = this.now();
    this.mailbox = new Mailbox(o.relayLimits);
    this.paper = new PaperKms({ ID_ICM: KMS_ADDRESS, random: (n) => new Uint8Array(randomBytes(n)) });
    const log = (event: string, detail: Record<string, unknown>): void => this.log(event, detail);
    this.enrolment = new Enrolment({ ...o, now: this.now, log, paper: this.paper, groupsWith: (serial) => [...this.groups.values()].filter((g) => g.isParticipant(serial)).map((g) => g.row.id) });
    this.relay = new Relay(this.mailbox, (id) => this.groups.get(id));
    const identity = o.identityChain[0] as X509Certificate;
    this.checkpoints = new AuditCheckpointer({
      audit: o.db.auditLog,
      sign: (data) => o.store.sign(o.identityLabel, data),
      origin: auditOrigin(identity),
      everyEntries: o.auditCheckpoints?.everyEntries ?? CHECKPOINT_DEFAULTS.everyEntries,
      intervalMs: o.auditCheckpoints?.intervalMs ?? CHECKPOINT_DEFAULTS.intervalMs,
      log,
    });
    this.ctx = {
      db: o.db,
      sealer: o.sealer,
      now: this.now,
      log,
      subkeysOf: (serial) => this.enrolment.subkeysOf(serial),
      sign: (message) => o.store.sign(o.identityLabel, message, { dsaEncoding: 'ieee-p1363' }),
      verifyOwn: kmsVerifier(o.identityChain[0] as X509Certificate),
      group: (id) => this.groups.get(id),
      closed: () => this.closed,
      paper: this.paper,
      mailbox: this.mailbox,
      reload: async (id) => {
        await this.load(o.db.group(id) as GroupRow);
      },
    };
  }

  /**
   * Loads every group from the database, checking each as it goes (its sealed state and epoch secrets open, its
   * bundle chain is whole and signed by this KMS), and resumes pending batches. A group that fails its check is
   * not served (named in status and in every answer about it); the others run.
   */
  static async start(o: KmsServiceOptions): Promise<KmsService> {
    const s = new KmsService(o);
    // a log the KMS cannot vouch for (cut below, or edited after, its last signed checkpoint) stops the start
    s.checkpoints.checkTail(publicKeyObject(o.identityChain[0] as X509Certificate));
    o.db.auditLog.onAppend = () => s.checkpoints.noteAppend();
    s.checkpoints.start();
    for (const c of o.db.cameras()) {
      try {
        s.paper.registerCamera(c.serial, paperKey(await s.enrolment.subkeysOf(c.serial)));
      } catch (e) {
        s.damagedCameras.set(c.serial, (e as Error).message);
        s.log('camera-damaged', { serial: c.serial, error: (e as Error).message });
      }
    }
    for (const row of o.db.groups()) {
      try {
        await s.load(row);
      } catch (e) {
        if (!isKeyframeError(e)) throw e;
        s.damaged.set(row.id, e.message);
        s.log('group-damaged', { group: row.id, error: e.message });
      }
    }
    // changes stored before a stop are applied now; nobody waits for their answer any more
    for (const [id, g] of s.groups) if (g instanceof HardenedGroup && o.db.pending(id).length > 0) g.schedule().catch((e: unknown) => s.log('rekey-failed', { group: id, error: (e as Error).message }));
    return s;
  }

  /** Loads (or reloads) a group from its row; long polls waiting on the group it replaces carry over. */
  private async load(row: GroupRow): Promise<GroupRuntime> {
    const lastAuth = this.groups.get(row.id)?.lastAuth ?? this.o.db.lastAuth<AuthRecord>(row.id);
    const rt = row.mode === 'hardened' ? await HardenedGroup.load(this.ctx, row, lastAuth) : await PaperGroup.load(this.ctx, row, lastAuth);
    const old = this.groups.get(row.id);
    if (old !== undefined) for (const w of old.waiters) rt.waiters.add(w);
    this.groups.set(row.id, rt);
    return rt;
  }

  private log(event: string, detail: Record<string, unknown>): void {
    this.o.log?.(event, detail);
  }

  // ── enrolment (enrolment.ts) ──────────────────────────────────────────────────────────────────────────────

  /**
   * A camera (authenticated by its device certificate on this connection) enrols: K_i by authenticated ECDH in
   * the KMS's key store, fresh sub-keys sealed in the database and sent to the camera under K_i. Refused while
   * the camera is in a group (its leaf holds the old sub-key: remove it first).
   */
  enrol(serial: string, cert: X509Certificate): Promise<EnrolResult> {
    return this.enrolment.enrol(serial, cert);
  }

  // ── groups (administration) ───────────────────────────────────────────────────────────────────────────────

  private runtime(id: string): GroupRuntime {
    const g = this.groups.get(checkIdentifier(id, 'group id'));
    if (g === undefined) {
      this.unservable(id);
      throw new NotFoundError(`no group ${id}`);
    }
    return g;
  }

  /** Throws KF_ERR_UNAVAILABLE when a group exists but cannot be served (damaged at start). */
  private unservable(id: string): void {
    const damage = this.damaged.get(id);
    if (damage !== undefined) throw new KeyframeError(ErrorCodes.UNAVAILABLE, `${damage}; the group is not served: restore the KMS database from a backup`);
  }

  async createGroup(r: CreateGroupRequest, actor: string): Promise<GroupView> {
    checkIdentifier(r.id, 'group id');
    for (const m of r.members ?? []) checkIdentifier(m, 'camera serial');
    if (r.leader !== undefined) checkIdentifier(r.leader, 'leader');
    if (this.groups.has(r.id)) throw new KeyframeError(ErrorCodes.EXISTS, `group ${r.id} exists`);
    const mode = r.mode ?? 'hardened';
    if (!GROUP_MODES.includes(mode)) throw new InputError(`mode must be one of ${GROUP_MODES.join(', ')}`);
    const degree = r.degree ?? 4;
    if (!(DEGREES as readonly number[]).includes(degree)) throw new InputError(`degree must be one of ${DEGREES.join(', ')}`);
    const members = [...new Set(r.members ?? [])];
    if (members.length !== (r.members ?? []).length) throw new InputError('a camera is named twice in the member list');
    for (const m of members) if (this.o.db.camera(m) === undefined) throw new NotFoundError(`camera ${m} is not enrolled (it enrols itself with the KMS first)`);
    const leader = r.leader ?? null;
    if (leader !== null && !members.includes(leader)) throw new InputError(`the leader ${leader} must be one of the members`);
    if (mode !== 'hardened' && leader === null) throw new InputError(`a ${mode} group needs a leader (the paper's leader camera holds GK1)`);
    const refresh = r.refreshPeriodMs ?? this.o.refreshPeriodMs;
    const batch = r.batchWindowMs ?? this.o.batchWindowMs;
    if (!Number.isSafeInteger(refresh) || refresh < 1000) throw new InputError('refresh period must be at least 1 s');
    if (!Number.isSafeInteger(batch) || batch < 0) throw new InputError('batch window must be ≥ 0');
    const row: GroupRow = { id: r.id, mode, degree, leader, refresh_ms: refresh, batch_ms: batch, created_at: this.now(), epoch: 0, core: null };
    const g = mode === 'hardened' ? await HardenedGroup.create(this.ctx, row, members, actor) : await PaperGroup.create(this.ctx, row, members, actor);
    this.groups.set(r.id, g);
    this.log('group-create', { group: r.id, mode, members: members.length });
    return this.show(r.id);
  }

  /** Asks for a camera to join or leave. Hardened: batched; resolves once the rekey that applies it is stored. */
  async requestChange(groupId: string, serial: string, op: 'join' | 'leave', actor: string): Promise<ChangeResult> {
    checkIdentifier(serial, 'camera serial');
    const g = this.runtime(groupId);
    this.halt(groupId);
    if (op === 'join' && this.o.db.camera(serial) === undefined) throw new NotFoundError(`camera ${serial} is not enrolled`);
    return g.requestChange(serial, op, actor);
  }

  /** A refresh now (operator, or the periodic timer): a fresh root ('root') or every interior key ('tree'). */
  async refresh(groupId: string, scope: 'root' | 'tree', actor: string): Promise<number> {
    const g = this.runtime(groupId);
    this.halt(groupId);
    if (!(g instanceof HardenedGroup)) throw new InputError(`${groupId} runs ${g.row.mode}: the paper's keys change only on a join or leave`);
    return g.refresh(scope, actor);
  }

  async setLeader(groupId: string, serial: string, actor: string): Promise<GroupView> {
    checkIdentifier(serial, 'camera serial');
    await this.runtime(groupId).setLeader(serial, actor);
    return this.show(groupId);
  }

  /** A group's members now (none when the group does not exist or is not served). */
  membersOf(groupId: string): readonly string[] {
    const g = this.groups.get(groupId);
    return g === undefined ? [] : g.view().members;
  }

  show(groupId: string): GroupView {
    const g = this.runtime(groupId);
    const alarm = this.o.db.alarm(g.row.id);
    const base = {
      id: g.row.id,
      mode: g.row.mode,
      degree: g.row.degree,
      leader: g.row.leader,
      refreshPeriodMs: g.row.refresh_ms,
      batchWindowMs: g.row.batch_ms,
      ...(g.lastAuth !== undefined ? { lastAuth: g.lastAuth } : {}),
      ...(alarm !== undefined ? { alarm: { kind: alarm.kind, raisedAt: new Date(alarm.raised_at).toISOString(), message: (JSON.parse(alarm.detail) as { message?: string }).message ?? alarm.kind } } : {}),
    };
    return { ...base, ...g.view() };
  }

  groupIds(): string[] {
    return [...this.groups.keys()].sort();
  }

  status(): Record<string, unknown> {
    const counts = this.o.db.counts();
    return {
      service: 'keyframe-kms',
      startedAt: new Date(this.startedAt).toISOString(),
      uptimeSeconds: Math.round((this.now() - this.startedAt) / 1000),
      database: { journalMode: this.o.db.journalMode, ...counts },
      refreshPeriodMs: this.o.refreshPeriodMs,
      batchWindowMs: this.o.batchWindowMs,
      damaged: { groups: Object.fromEntries(this.damaged), cameras: Object.fromEntries(this.damagedCameras) },
      groups: this.groupIds().map((id) => {
        const v = this.show(id);
        return { id, mode: v.mode, epoch: v.epoch, members: v.members.length, pending: v.pending.length, leader: v.leader };
      }),
    };
  }

  cameras(): { serial: string; generation: number; enrolledAt: string; groups: string[] }[] {
    return this.o.db.cameras().map((c) => ({ serial: c.serial, generation: c.generation, enrolledAt: new Date(c.enrolled_at).toISOString(), groups: [...this.groups.values()].filter((g) => this.isParticipant(g, c.serial)).map((g) => g.row.id) }));
  }

  // ── periodic refresh ──────────────────────────────────────────────────────────────────────────────────────

  /** Checks every `tickMs` for groups whose epoch secret is due a refresh. */
  startRefreshTimer(tickMs: number): void {
    this.refreshTimer = setInterval(() => {
      for (const g of this.groups.values()) {
        if (!(g instanceof HardenedGroup) || !g.refreshDue() || this.o.db.alarm(g.row.id) !== undefined) continue;
        this.refresh(g.row.id, 'root', 'timer').catch((e: unknown) => this.log('refresh-failed', { group: g.row.id, error: (e as Error).message }));
      }
    }, tickMs);
    this.refreshTimer.unref();
  }

  // ── cameras: hardened protocol (hardened-group.ts) ────────────────────────────────────────────────────────

  private hardened(groupId: string, serial: string): HardenedGroup {
    if (this.damaged.has(groupId)) throw new KeyframeError(ErrorCodes.UNAVAILABLE, `group ${groupId} cannot be served now`);
    if (this.o.db.alarm(groupId) !== undefined) throw new KeyframeError(ErrorCodes.UNAVAILABLE, `group ${groupId} is stopped by an alarm at the KMS`);
    const g = this.groups.get(groupId);
    if (g === undefined || !(g instanceof HardenedGroup) || !g.kms.isMember(serial)) throw refused('not a member');
    return g;
  }

  isParticipant(g: GroupRuntime, serial: string): boolean {
    return g.isParticipant(serial);
  }

  /** New CRLs for the checks the service makes itself (enrolment). */
  setCrls(crls: readonly X509Crl[]): void {
    this.enrolment.setCrls(crls);
  }

  /**
   * Removes every revoked camera from the groups it is in (a forward-secure rekey, batched as any leave; a leader
   * is replaced by another member first), audited and logged. Paper-scheme groups cannot be forced: the paper
   * needs the camera's own leave request, so a revoked camera there is logged for the operator (a leader change
   * leaves it out). Returns the serials found revoked.
   */
  async evictRevoked(isRevoked: (cert: X509Certificate) => boolean, actor: string): Promise<string[]> {
    const revoked: string[] = [];
    for (const c of this.o.db.cameras()) {
      let cert: X509Certificate;
      try {
        cert = new X509CertificateClass(c.cert);
      } catch {
        continue;
      }
      if (!isRevoked(cert)) continue;
      revoked.push(c.serial);
      for (const g of [...this.groups.values()]) {
        if (!this.isParticipant(g, c.serial)) continue;
        if (!(await g.evictRevoked(c.serial, actor))) continue;
        this.requestChange(g.row.id, c.serial, 'leave', actor).catch((e: unknown) => {
          if (!(e instanceof InputError)) this.log('revocation-leave-failed', { serial: c.serial, group: g.row.id, error: (e as Error).message });
        });
      }
    }
    return revoked;
  }

  /** What a camera needs to know about its groups: id, mode, leader, epoch (or its paper request). */
  groupsOf(serial: string): { id: string; mode: GroupMode; leader: string | null; epoch: number; member: boolean; request: 'join' | 'leave' | null }[] {
    const out = [];
    for (const g of this.groups.values()) {
      if (!this.isParticipant(g, serial)) continue;
      const { member, request } = g.membership(serial);
      out.push({ id: g.row.id, mode: g.row.mode, leader: g.row.leader, epoch: g.epoch, member, request });
    }
    return out.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  }

  welcome(groupId: string, serial: string): Promise<Uint8Array> {
    return this.hardened(groupId, serial).kms.welcomeFor(serial);
  }

  /** The bundles a member missed since `after`; waits up to `waitMs` for a new epoch when there are none. */
  async bundlesSince(groupId: string, serial: string, after: number, waitMs: number, signal?: AbortSignal, lastHash?: string): Promise<Uint8Array[]> {
    let g = this.hardened(groupId, serial);
    g.checkCameraEpoch(after, lastHash);
    if (g.kms.epoch <= after && waitMs > 0) {
      await g.waitForEpoch(after, waitMs, signal);
      g = this.hardened(groupId, serial);
    }
    return g.kms.bundlesSince(after, serial);
  }

  /**
   * A camera's evidence that this KMS is behind it: its last accepted bundle, signed by this KMS, of an epoch the
   * KMS does not hold or holds otherwise. Verified, then the group is stopped with an alarm (persisted) until an
   * operator restores the newest backup or rebases the group. Evidence that shows nothing is refused.
   */
  reportDivergence(groupId: string, serial: string, bundle: Uint8Array): AlarmRow {
    const g = this.groups.get(groupId);
    if (g === undefined || !(g instanceof HardenedGroup) || !g.kms.isMember(serial)) throw refused('evidence: not a member');
    return g.reportDivergence(serial, bundle);
  }

  /** Throws when a group is stopped by an alarm: nothing may change it, no camera is served. */
  private halt(groupId: string): void {
    const a = this.o.db.alarm(groupId);
    if (a === undefined) return;
    const detail = (JSON.parse(a.detail) as { message?: string }).message ?? a.kind;
    throw new KeyframeError(ErrorCodes.UNAVAILABLE, `group ${groupId} is stopped: ${detail}`);
  }

  /**
   * After an alarm: a new history for the group above every epoch its cameras reported (HardenedKms.rebase), over
   * its current members, each of which joins it by a new welcome. Clears the alarm.
   */
  async rebase(groupId: string, actor: string): Promise<GroupView> {
    const g = this.runtime(groupId);
    const a = this.o.db.alarm(groupId);
    if (a === undefined) throw new InputError(`group ${groupId} has no alarm: a rebase is only for a group whose KMS state fell behind its cameras`);
    if (!(g instanceof HardenedGroup)) throw new InputError(`${groupId} runs ${g.row.mode}`);
    await g.rebase(a, actor);
    return this.show(groupId);
  }

  /** Leader only: a fresh signed challenge for the group. */
  async challenge(groupId: string, serial: string): Promise<Uint8Array> {
    return this.hardened(groupId, serial).challenge(serial);
  }

  /** Leader only: the aggregate of the cameras' tags. */
  aggregate(groupId: string, serial: string, aggregate: Uint8Array): AuthRecord & { readonly outcome: 'verified' | 'failed' } {
    return this.hardened(groupId, serial).aggregate(serial, aggregate);
  }

  /** Leader only, after a failed aggregate: the per-camera tags, verified one by one. */
  blame(groupId: string, serial: string, tagList: Uint8Array): AuthRecord {
    return this.hardened(groupId, serial).blame(serial, tagList);
  }

  // ── the relay (LAN: relay.ts) and the paper KMS (paper-group.ts) ──────────────────────────────────────────

  /** Before a body is read: would a message of `size` bytes from `from` be taken? (Members only; relay quotas.) */
  admitPost(groupId: string, from: string, to: readonly string[], size: number): void {
    this.relay.admitPost(groupId, from, to, size);
  }

  /** Sends `body` from an authenticated camera to cameras of its group, or (paper schemes) to the KMS. */
  async post(groupId: string, from: string, to: readonly string[], body: Uint8Array): Promise<void> {
    return this.relay.post(groupId, from, to, body);
  }

  /** A camera's relayed messages after `after`; waits up to `waitMs` when there are none. */
  async inbox(groupId: string, serial: string, after: number, waitMs: number, signal?: AbortSignal): Promise<{ items: MailItem[]; more: boolean }> {
    return this.relay.inbox(groupId, serial, after, waitMs, signal);
  }

  /** A paper group's GK1 for its leader (over the mutually authenticated channel). */
  paperSetup(groupId: string, serial: string): { scheme: 1 | 2; leader: string; GK1: Buffer | null; roster: string[]; requests: { serial: string; op: 'join' | 'leave' }[] } {
    const g = this.groups.get(groupId);
    if (g === undefined || !(g instanceof PaperGroup) || !g.isParticipant(serial)) throw refused('not a member');
    return g.setup(serial);
  }

  /** A paper group's current group key GSK at the KMS (a copy; undefined before the first distribution). Read-only, for tests and tooling. */
  paperGroupKey(groupId: string): Uint8Array | undefined {
    const g = this.runtime(groupId);
    if (!(g instanceof PaperGroup)) throw new InputError(`${groupId} runs the hardened mode`);
    return g.groupKey();
  }

  // ── content keys (key-release.ts; the licence decision is access.ts's) ───────────────────────────────────────

  /** A KID's key, group, camera and epoch span, unaudited: the licence server audits its whole decision. */
  findContentKey(kid: Uint8Array, actor: string): FoundKey | undefined {
    return findContentKey(this.groups.values(), this.o.db, (event, detail) => this.log(event, detail), kid, actor);
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.refreshTimer !== undefined) clearInterval(this.refreshTimer);
    for (const g of this.groups.values()) {
      g.stop();
      await g.chain;
    }
    this.mailbox.close();
    this.o.db.auditLog.onAppend = undefined;
    await this.checkpoints.close();
  }
}
