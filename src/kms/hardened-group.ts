/**
 * A group in the hardened mode at the KMS: its HardenedKms (loaded from the sealed state and checked against its
 * bundle chain, or created), membership changes batched within the window into one rekey, refreshes, the rebase
 * after an alarm, the long poll for a new epoch, and what its cameras ask of it: missed bundles, evidence that the
 * KMS fell behind, and challenge-bound group authentication through the leader. Every rekey is stored in one
 * transaction before anyone sees it (commit). The service checks the caller and the group's state first.
 */
import { ErrorCodes, InputError, KeyframeError } from '../errors.js';
import { HardenedKms } from '../groupkey/hardened/kms.js';
import type { KmsMember, KmsState, RekeyOptions, RekeyResult } from '../groupkey/hardened/kms.js';
import type { Degree } from '../groupkey/hardened/nodes.js';
import { bundleSignatureValid, chainProblem, decodeBundle } from '../groupkey/hardened/bundle.js';
import { sha256 } from '../groupkey/hardened/kdf.js';
import type { Verifier } from '../groupkey/hardened/signature.js';
import type { GroupKeyRefusal } from '../errors.js';
import type { AlarmRow, GroupRow } from './db.js';
import { GroupRuntime, damaged, refused, unseal } from './runtime.js';
import type { AuthRecord, ChangeResult, ContentKeyLookup, EpochSpan, GroupContext, ModeView } from './runtime.js';

export interface HardenedContext extends GroupContext {
  /** Signs with the KMS identity (its bundles). */
  readonly sign: (message: Uint8Array) => Promise<Uint8Array>;
  /** Checks this KMS's own signatures (its bundles). */
  readonly verifyOwn: Verifier;
  /** The group's runtime now (a reload replaces it). */
  group(id: string): GroupRuntime | undefined;
  /** True once the service is closing: long polls end at once. */
  closed(): boolean;
}

function hardenedOptions(ctx: HardenedContext, row: GroupRow): { groupId: string; sign: (m: Uint8Array) => Promise<Uint8Array>; degree: Degree; refreshPeriodMs: number; now: () => number } {
  return { groupId: row.id, sign: ctx.sign, degree: row.degree as Degree, refreshPeriodMs: row.refresh_ms, now: ctx.now };
}

export class HardenedGroup extends GroupRuntime {
  batch: { timer: NodeJS.Timeout; readonly waiters: { resolve: (epoch: number) => void; reject: (e: unknown) => void }[] } | undefined = undefined;

  private constructor(
    private readonly ctx: HardenedContext,
    row: GroupRow,
    readonly kms: HardenedKms,
    lastAuth: AuthRecord | undefined,
  ) {
    super(row, lastAuth);
  }

  /** A stored group, checked: its sealed state and epoch secrets open, its bundle chain is whole and signed by this KMS. */
  static async load(ctx: HardenedContext, row: GroupRow, lastAuth: AuthRecord | undefined): Promise<HardenedGroup> {
    if (row.core === null) throw damaged(row, 'the sealed group state is missing');
    const core = await unseal(row, 'the sealed group state', () => ctx.sealer.openJson<KmsState>('group-core', row.id, row.core as Buffer));
    const rows = ctx.db.bundles(row.id);
    const problem = chainProblem(row.id, rows, ctx.verifyOwn);
    if (problem !== undefined) throw damaged(row, problem);
    if (rows.at(-1)?.epoch !== row.epoch) throw damaged(row, `the group is at epoch ${row.epoch} but its last bundle is of epoch ${rows.at(-1)?.epoch ?? 'none'}`);
    const bundles = rows.map((b) => [b.epoch, b.bytes.toString('base64')] as const);
    const secrets: (readonly [number, string])[] = [];
    for (const s of ctx.db.secrets(row.id)) secrets.push([s.epoch, (await unseal(row, `the epoch secret of epoch ${s.epoch}`, () => ctx.sealer.open('epoch-secret', `${row.id}/${s.epoch}`, s.sealed))).toString('hex')]);
    let kms: HardenedKms;
    try {
      kms = HardenedKms.importState({ ...core, bundles, secrets }, hardenedOptions(ctx, row));
    } catch (e) {
      throw damaged(row, `the sealed group state does not agree with its bundles (${(e as GroupKeyRefusal).auditReason ?? (e as Error).message})`);
    }
    return new HardenedGroup(ctx, row, kms, lastAuth);
  }

  /** A new group over enrolled cameras: its genesis epoch is stored (and audited) before it is served. */
  static async create(ctx: HardenedContext, row: GroupRow, members: readonly string[], actor: string): Promise<HardenedGroup> {
    const kmsMembers: KmsMember[] = [];
    for (const m of members) kmsMembers.push({ memberId: m, keys: await ctx.subkeysOf(m) });
    const { kms, genesis } = await HardenedKms.create({ ...hardenedOptions(ctx, row), members: kmsMembers });
    const core = await ctx.sealer.sealJson('group-core', row.id, kms.exportState({ sinceEpoch: kms.epoch }));
    const secret = await ctx.sealer.seal('epoch-secret', `${row.id}/${genesis.epoch}`, kms.epochSecret(genesis.epoch) as Uint8Array);
    ctx.db.tx(() => {
      ctx.db.insertGroup({ ...row, epoch: genesis.epoch, core });
      ctx.db.putBundle(row.id, genesis.epoch, genesis.bundle, secret);
      ctx.db.audit(actor, 'group-create', { group: row.id, mode: row.mode, degree: row.degree, members: members.length, epoch: genesis.epoch });
    });
    return new HardenedGroup(ctx, { ...row, epoch: genesis.epoch, core }, kms, undefined);
  }

  get epoch(): number {
    return this.kms.epoch;
  }

  view(): ModeView {
    return {
      epoch: this.kms.epoch,
      members: this.kms.roster(),
      pending: this.ctx.db.pending(this.row.id).map((p) => ({ serial: p.serial, op: p.op })),
      lastRekeyAt: new Date(this.kms.lastRekey).toISOString(),
      treeHeight: this.kms.height,
    };
  }

  isParticipant(serial: string): boolean {
    return this.kms.isMember(serial) || this.ctx.db.pending(this.row.id).some((p) => p.serial === serial);
  }

  membership(serial: string): { member: boolean; request: 'join' | 'leave' | null } {
    return { member: this.kms.isMember(serial), request: null };
  }

  contentKeyFor(kid: Uint8Array): ContentKeyLookup {
    return this.kms.contentKeyFor(kid);
  }

  /** From the signed bundles' issuedAt (decoded once per epoch). */
  epochSpan(epoch: number): EpochSpan {
    const start = this.issuedAt(epoch);
    const end = epoch < this.kms.epoch ? this.issuedAt(epoch + 1) : undefined;
    return { ...(start !== undefined ? { start } : {}), ...(end !== undefined ? { end } : {}), current: epoch === this.kms.epoch };
  }

  private readonly issued = new Map<number, number>();
  private issuedAt(epoch: number): number | undefined {
    let t = this.issued.get(epoch);
    if (t === undefined) {
      const b = this.kms.bundle(epoch);
      if (b === undefined) return undefined;
      t = decodeBundle(b).bundle.issuedAt;
      this.issued.set(epoch, t);
    }
    return t;
  }

  /** Batched: resolves once the rekey that applies the change is stored. */
  async requestChange(serial: string, op: 'join' | 'leave', actor: string): Promise<ChangeResult> {
    const groupId = this.row.id;
    const queued = this.ctx.db.pending(groupId).find((p) => p.serial === serial);
    if (queued?.op === op) throw new InputError(`camera ${serial}: a ${op} is already waiting for the batch`);
    const member = this.kms.isMember(serial);
    if (queued === undefined && op === 'join' && member) throw new InputError(`camera ${serial} is already in ${groupId}`);
    if (queued === undefined && op === 'leave' && !member) throw new InputError(`camera ${serial} is not in ${groupId}`);
    if (op === 'leave' && serial === this.row.leader) throw new InputError(`${serial} leads ${groupId}: name another leader first`);
    this.ctx.db.tx(() => {
      // a leave of a camera whose join is still waiting cancels the join (and vice versa)
      if (queued !== undefined) this.ctx.db.deletePending(groupId, serial);
      else this.ctx.db.putPending({ group_id: groupId, serial, op, requested_at: this.ctx.now() });
      this.ctx.db.audit(actor, `group-${op}`, { group: groupId, serial, cancelled: queued !== undefined });
    });
    if (queued !== undefined) return { group: groupId, serial, op, epoch: this.kms.epoch, status: 'applied' };
    const epoch = await this.schedule();
    return { group: groupId, serial, op, epoch, status: 'applied' };
  }

  /** Starts (or joins) the batch window of the group; resolves with the epoch of the rekey that closes it. */
  schedule(): Promise<number> {
    return new Promise<number>((resolve, reject) => {
      if (this.batch === undefined) {
        const timer = setTimeout(() => {
          const waiters = this.batch?.waiters ?? [];
          this.batch = undefined;
          this.serial(() => this.flush()).then(
            (epoch) => waiters.forEach((w) => w.resolve(epoch)),
            (e: unknown) => waiters.forEach((w) => w.reject(e)),
          );
        }, this.row.batch_ms);
        this.batch = { timer, waiters: [] };
      }
      this.batch.waiters.push({ resolve, reject });
    });
  }

  /** One rekey for everything pending; stored in one transaction before anyone sees it. */
  private async flush(): Promise<number> {
    const kms = this.kms;
    const pending = this.ctx.db.pending(this.row.id);
    if (pending.length === 0) return kms.epoch;
    const joins: KmsMember[] = [];
    const leaves: string[] = [];
    for (const p of pending) {
      if (p.op === 'join' && !kms.isMember(p.serial)) joins.push({ memberId: p.serial, keys: await this.ctx.subkeysOf(p.serial) });
      if (p.op === 'leave' && kms.isMember(p.serial)) leaves.push(p.serial);
    }
    return this.commit((o) => kms.rekey({ joins, leaves }, o), pending.map((p) => p.serial), { joins: joins.map((j) => j.memberId), leaves });
  }

  /**
   * Runs one rekey and stores it in one transaction before it becomes visible: until the database holds the new
   * epoch, cameras, administrators and long polls see the previous one (HardenedKms stages it), so a KMS that
   * dies mid-way has told nobody of an epoch it did not keep.
   */
  private async commit(rekey: (o: RekeyOptions) => Promise<RekeyResult>, clear: readonly string[], detail: Record<string, unknown>, also?: () => void): Promise<number> {
    const { db, sealer } = this.ctx;
    const id = this.row.id;
    const t0 = performance.now();
    let t1 = t0;
    const r = await rekey({
      persist: async (staged) => {
        t1 = performance.now();
        const { epoch } = staged.result;
        const core = await sealer.sealJson('group-core', id, staged.state({ sinceEpoch: epoch }));
        const secret = await sealer.seal('epoch-secret', `${id}/${epoch}`, staged.secret);
        db.tx(() => {
          db.putBundle(id, epoch, staged.result.bundle, secret);
          db.setGroupCore(id, epoch, core);
          db.clearPending(id, clear);
          db.audit('kms', 'rekey', { group: id, epoch, wraps: staged.result.wraps, bytes: staged.result.bundle.length, ...detail });
          also?.();
        });
        this.row = { ...this.row, epoch, core };
      },
    });
    const t2 = performance.now();
    this.ctx.log('rekey', { group: id, epoch: r.epoch, wraps: r.wraps, bytes: r.bundle.length, rekeyMs: (t1 - t0).toFixed(2), storeMs: (t2 - t1).toFixed(2), at: Date.now(), ...detail });
    this.wake();
    return r.epoch;
  }

  /** A refresh now: a fresh root ('root') or every interior key ('tree'). */
  refresh(scope: 'root' | 'tree', actor: string): Promise<number> {
    return this.serial(() => this.commit((o) => this.kms.rekey({ scope }, o), [], { refresh: scope, actor }));
  }

  /** For the periodic timer: the epoch secret is due a refresh and no batch is open. */
  refreshDue(): boolean {
    return this.batch === undefined && this.kms.refreshDue();
  }

  async setLeader(serial: string, actor: string): Promise<void> {
    if (!this.kms.isMember(serial)) throw new InputError(`camera ${serial} is not in ${this.row.id}`);
    this.ctx.db.tx(() => {
      this.ctx.db.setLeader(this.row.id, serial);
      this.ctx.db.audit(actor, 'group-leader', { group: this.row.id, leader: serial });
    });
    this.row = { ...this.row, leader: serial };
    this.wake();
  }

  /** A revoked member leaves by a forward-secure rekey, batched as any leave; a leader is replaced by another member first. */
  async evictRevoked(serial: string, actor: string): Promise<boolean> {
    if (!this.kms.isMember(serial)) return false; // a join still waiting: the leave the service asks for cancels it
    if (this.row.leader === serial) {
      const next = this.kms.roster().find((m) => m !== serial);
      if (next !== undefined) await this.setLeader(next, actor);
      else {
        this.ctx.db.setLeader(this.row.id, null);
        this.row = { ...this.row, leader: null };
      }
    }
    this.ctx.log('camera-revoked', { serial, group: this.row.id, action: 'removed (forward-secure rekey)' });
    return true;
  }

  override stop(): void {
    if (this.batch !== undefined) {
      clearTimeout(this.batch.timer);
      const stopped = new KeyframeError(ErrorCodes.INTERNAL, 'the KMS stopped inside the batch window: the change is stored and applied when it starts again');
      for (const w of this.batch.waiters) w.reject(stopped);
      this.batch = undefined;
    }
    super.stop();
  }

  /**
   * Throws KF_ERR_DIVERGED when a camera is on an epoch this KMS never made (or made otherwise): its state was
   * rolled back or forked, and the camera is asked for its last bundle as evidence (reportDivergence) before
   * anything is stopped. (An epoch before the last rebase is an old history: the camera joins this one by a welcome.)
   */
  checkCameraEpoch(after: number, lastHash: string | undefined): void {
    const own = after >= this.kms.historyStart ? this.kms.bundle(after) : undefined;
    if (after > this.kms.epoch || (own !== undefined && lastHash !== undefined && Buffer.from(sha256(own)).toString('hex') !== lastHash.toLowerCase())) {
      throw new KeyframeError(ErrorCodes.DIVERGED, `the KMS does not hold the epoch ${after} this camera is on: send its last bundle as evidence`);
    }
  }

  /** Resolves when the group's epoch passes `after`, after `waitMs`, on `signal`, or when the service closes. */
  waitForEpoch(after: number, waitMs: number, signal?: AbortSignal): Promise<void> {
    const groupId = this.row.id;
    return new Promise<void>((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        this.waiters.delete(check);
        signal?.removeEventListener('abort', done);
        resolve();
      };
      const check = (): void => {
        const rt = this.ctx.group(groupId);
        if (rt === undefined || !(rt instanceof HardenedGroup) || rt.kms.epoch > after) done();
      };
      const timer = setTimeout(done, waitMs);
      this.waiters.add(check);
      signal?.addEventListener('abort', done);
      if (this.ctx.closed()) done();
    });
  }

  /**
   * A member's evidence that this KMS is behind it: its last accepted bundle, signed by this KMS, of an epoch the
   * KMS does not hold or holds otherwise. Verified, then the group is stopped with an alarm (persisted).
   */
  reportDivergence(serial: string, bundle: Uint8Array): AlarmRow {
    const groupId = this.row.id;
    const kms = this.kms;
    let d;
    try {
      d = decodeBundle(bundle);
    } catch {
      throw refused('evidence: not a bundle');
    }
    if (d.bundle.groupId !== groupId || !bundleSignatureValid(d, this.ctx.verifyOwn)) throw refused('evidence: not signed by this KMS for this group');
    const known = this.ctx.db.alarm(groupId);
    if (known !== undefined) return known;
    const own = d.bundle.epoch >= kms.historyStart ? kms.bundle(d.bundle.epoch) : undefined;
    const ahead = d.bundle.epoch > kms.epoch;
    if (!ahead && (own === undefined || Buffer.from(sha256(own)).equals(Buffer.from(d.hash)))) throw refused('evidence: nothing diverges (or an epoch of an old history)');
    const alarm: AlarmRow = {
      group_id: groupId,
      kind: 'state-behind',
      detail: JSON.stringify({
        serial,
        epoch: d.bundle.epoch,
        kmsEpoch: kms.epoch,
        message: `camera ${serial} holds epoch ${d.bundle.epoch} of group ${groupId}, signed by this KMS, which ${ahead ? `is at epoch ${kms.epoch}` : `holds another bundle for that epoch`}: the KMS's state was rolled back (restored from an old backup?) or forked. The group is stopped; restore the newest backup of the KMS database, or start a new history above the cameras': keyframe kms group rebase ${groupId}`,
      }),
      raised_at: this.ctx.now(),
    };
    this.ctx.db.tx(() => {
      this.ctx.db.raiseAlarm(alarm);
      this.ctx.db.audit(serial, 'alarm', { group: groupId, kind: alarm.kind, epoch: d.bundle.epoch, kmsEpoch: kms.epoch });
    });
    this.ctx.log('alarm', { group: groupId, kind: alarm.kind, serial, cameraEpoch: d.bundle.epoch, kmsEpoch: kms.epoch });
    this.wake();
    return alarm;
  }

  /**
   * After `alarm`: a new history for the group above every epoch its cameras reported (HardenedKms.rebase), over
   * its current members, each of which joins it by a new welcome. Clears the alarm.
   */
  async rebase(alarm: AlarmRow, actor: string): Promise<void> {
    const groupId = this.row.id;
    const kms = this.kms;
    const reported = (JSON.parse(alarm.detail) as { epoch?: number }).epoch ?? kms.epoch;
    const toEpoch = Math.max(reported, kms.epoch) + 1;
    const members: KmsMember[] = [];
    for (const id of kms.roster()) members.push({ memberId: id, keys: await this.ctx.subkeysOf(id) });
    await this.serial(() =>
      this.commit((o) => kms.rebase(members, toEpoch, o), [], { rebase: toEpoch, actor }, () => {
        this.ctx.db.clearAlarm(groupId);
        this.ctx.db.audit(actor, 'group-rebase', { group: groupId, epoch: toEpoch, after: reported });
      }),
    );
  }

  /** Leader only: a fresh signed challenge for the group. */
  async challenge(serial: string): Promise<Uint8Array> {
    if (this.row.leader !== serial) throw refused('not the leader');
    return this.kms.issueChallenge();
  }

  /** Leader only: the aggregate of the cameras' tags. */
  aggregate(serial: string, aggregate: Uint8Array): AuthRecord & { readonly outcome: 'verified' | 'failed' } {
    if (this.row.leader !== serial) throw refused('not the leader');
    const r = this.kms.verifyAggregate(aggregate);
    const at = new Date(this.ctx.now()).toISOString();
    const rec: AuthRecord = r.kind === 'verified' ? { at, epoch: r.epoch, verified: true, present: r.present, missing: r.missing, bad: [] } : { at, epoch: r.epoch, verified: false, present: [], missing: [], bad: [] };
    this.lastAuth = rec;
    this.ctx.db.audit(serial, 'group-auth', { group: this.row.id, epoch: r.epoch, outcome: r.kind, present: rec.present.length, missing: rec.missing, record: rec });
    return { ...rec, outcome: r.kind };
  }

  /** Leader only, after a failed aggregate: the per-camera tags, verified one by one. */
  blame(serial: string, tagList: Uint8Array): AuthRecord {
    if (this.row.leader !== serial) throw refused('not the leader');
    const b = this.kms.blame(tagList);
    const rec: AuthRecord = { at: new Date(this.ctx.now()).toISOString(), epoch: b.epoch, verified: false, present: b.good, missing: b.missing, bad: b.bad };
    this.lastAuth = rec;
    this.ctx.db.audit(serial, 'group-blame', { group: this.row.id, epoch: b.epoch, bad: b.bad, missing: b.missing, record: rec });
    return rec;
  }
}
