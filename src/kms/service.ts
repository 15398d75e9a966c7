/**
 * The KMS service's logic, without HTTP (http.ts serves it): camera enrolment, groups in hardened mode, Scheme 1
 * or Scheme 2, membership changes batched within a window into one rekey, the periodic refresh, long polls for
 * new epochs, challenge-bound group authentication through the leader, and a relay mailbox that carries
 * camera-to-camera traffic (the paper's LAN: leader ↔ members) — a relay the hardened protocol does not trust.
 *
 * Persistence (db.ts): every change of a group is one SQLite transaction, written before anyone is told about it;
 * if writing fails, the group is reloaded from the database and the caller gets the error. Membership changes
 * wait in the `pending` table, so a restart inside a batch window loses none. Secrets are sealed (seal.ts).
 */
import { createHash, randomBytes } from 'node:crypto';
import { ErrorCodes, GroupKeyError, GroupKeyRefusal, InputError, KeyframeError, NotFoundError, isKeyframeError } from '../errors.js';
import { derivePairwiseKey, issueSubkeys, subkeyConfirmation } from '../groupkey/enrol.js';
import type { PairIdentity } from '../groupkey/enrol.js';
import { HardenedKms } from '../groupkey/hardened/kms.js';
import type { KmsMember, KmsState, RekeyOptions, RekeyResult } from '../groupkey/hardened/kms.js';
import { DEGREES } from '../groupkey/hardened/nodes.js';
import type { Degree } from '../groupkey/hardened/nodes.js';
import type { Subkeys } from '../groupkey/hardened/kdf.js';
import { PaperKms } from '../groupkey/paper/kms.js';
import type { PaperKmsGroupState } from '../groupkey/paper/kms.js';
import { decodeMessage, encodeMessage } from '../groupkey/paper/messages.js';
import type { KeyStore } from '../keystore/types.js';
import { certsToPem } from '../pki/pem.js';
import { checkIdentifier } from '../util/ids.js';
import { X509Certificate as X509CertificateClass } from '../pki/x509.js';
import type { X509Certificate, X509Crl } from '../pki/x509.js';
import type { AlarmRow, GroupMode, GroupRow, KmsDb } from './db.js';
import { GROUP_MODES } from './db.js';
import { kmsVerifier, paperKey } from './keys.js';
import { bundleSignatureValid, chainProblem, decodeBundle } from '../groupkey/hardened/bundle.js';
import { sha256 } from '../groupkey/hardened/kdf.js';
import type { Verifier } from '../groupkey/hardened/signature.js';
import { Mailbox } from './mailbox.js';
import type { MailItem, RelayLimits } from './mailbox.js';
import type { Sealer } from './seal.js';

export const KMS_ADDRESS = 'kms';

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

export interface EnrolResult {
  readonly generation: number;
  readonly blob: Buffer;
  readonly confirmation: Buffer;
  readonly kmsChainPem: string;
}

export interface GroupView {
  readonly id: string;
  readonly mode: GroupMode;
  readonly degree: number;
  readonly leader: string | null;
  readonly epoch: number;
  readonly members: readonly string[];
  readonly pending: readonly { readonly serial: string; readonly op: 'join' | 'leave' }[];
  readonly lastRekeyAt: string | null;
  readonly refreshPeriodMs: number;
  readonly batchWindowMs: number;
  readonly treeHeight?: number;
  readonly ackStatus?: string;
  readonly lastAuth?: AuthRecord;
  /** Set when the group is stopped (its state is behind its cameras): what happened and what to do. */
  readonly alarm?: { readonly kind: string; readonly raisedAt: string; readonly message: string };
}

export interface AuthRecord {
  readonly at: string;
  readonly epoch: number;
  readonly verified: boolean;
  readonly present: readonly string[];
  readonly missing: readonly string[];
  readonly bad: readonly string[];
}

export interface ChangeResult {
  readonly group: string;
  readonly serial: string;
  readonly op: 'join' | 'leave';
  /** hardened: the epoch the change took effect in; paper schemes: null (the camera runs the protocol). */
  readonly epoch: number | null;
  readonly status: 'applied' | 'requested';
}

interface Runtime {
  row: GroupRow;
  kms: HardenedKms | undefined;
  /** Wakes long polls when the epoch moves. */
  readonly waiters: Set<() => void>;
  /** Serialises rekeys and state writes. */
  chain: Promise<unknown>;
  batch: { timer: NodeJS.Timeout; readonly waiters: { resolve: (epoch: number) => void; reject: (e: unknown) => void }[] } | undefined;
  lastAuth: AuthRecord | undefined;
}

const refused = (reason: string): GroupKeyRefusal => new GroupKeyRefusal(reason);

function asBuffer(b: Uint8Array): Buffer {
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength);
}

export class KmsService {
  private readonly o: KmsServiceOptions;
  private readonly now: () => number;
  private readonly groups = new Map<string, Runtime>();
  private readonly paper: PaperKms;
  readonly mailbox: Mailbox;
  private refreshTimer: NodeJS.Timeout | undefined;
  private readonly enrolling = new Map<string, Promise<void>>();
  /** Groups whose stored state failed its check at start: id → what is wrong. Not served. */
  private readonly damaged = new Map<string, string>();
  /** Cameras whose sealed sub-keys do not open: serial → what is wrong (they must enrol again). */
  private readonly damagedCameras = new Map<string, string>();
  /** Checks this KMS's own signatures (its bundles). */
  private readonly verifyOwn: Verifier;
  /** The CRLs in force (reloaded: setCrls). */
  private trustCrls: readonly X509Crl[] | undefined;
  private closed = false;
  readonly startedAt: number;

  private constructor(o: KmsServiceOptions) {
    this.o = o;
    this.now = o.now ?? Date.now;
    this.startedAt = this.now();
    this.mailbox = new Mailbox(o.relayLimits);
    this.verifyOwn = kmsVerifier(o.identityChain[0] as X509Certificate);
    this.trustCrls = o.trust.crls;
    this.paper = new PaperKms({ ID_ICM: KMS_ADDRESS, random: (n) => new Uint8Array(randomBytes(n)) });
  }

  /**
   * Loads every group from the database, checking each as it goes (its sealed state and epoch secrets open, its
   * bundle chain is whole and signed by this KMS), and resumes pending batches. A group that fails its check is
   * not served (named in status and in every answer about it); the others run.
   */
  static async start(o: KmsServiceOptions): Promise<KmsService> {
    const s = new KmsService(o);
    for (const c of o.db.cameras()) {
      try {
        s.paper.registerCamera(c.serial, paperKey(await s.subkeysOf(c.serial)));
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
    for (const id of s.groups.keys()) if (o.db.pending(id).length > 0) s.schedule(id).catch((e: unknown) => s.log('rekey-failed', { group: id, error: (e as Error).message }));
    return s;
  }

  private signer = (message: Uint8Array): Promise<Uint8Array> => this.o.store.sign(this.o.identityLabel, message, { dsaEncoding: 'ieee-p1363' });

  private async load(row: GroupRow): Promise<Runtime> {
    const rt: Runtime = { row, kms: undefined, waiters: new Set(), chain: Promise.resolve(), batch: undefined, lastAuth: this.groups.get(row.id)?.lastAuth ?? this.o.db.lastAuth(row.id) };
    const damaged = (what: string): KeyframeError => new KeyframeError(ErrorCodes.INPUT, `group ${row.id}: ${what}`);
    const unseal = async <T>(what: string, open: () => Promise<T>): Promise<T> => {
      try {
        return await open();
      } catch {
        throw damaged(`${what} does not open with this KMS's sealing key (altered, or from another KMS)`);
      }
    };
    if (row.core !== null) {
      if (row.mode === 'hardened') {
        const core = await unseal('the sealed group state', () => this.o.sealer.openJson<KmsState>('group-core', row.id, row.core as Buffer));
        const rows = this.o.db.bundles(row.id);
        const problem = chainProblem(row.id, rows, this.verifyOwn);
        if (problem !== undefined) throw damaged(problem);
        if (rows.at(-1)?.epoch !== row.epoch) throw damaged(`the group is at epoch ${row.epoch} but its last bundle is of epoch ${rows.at(-1)?.epoch ?? 'none'}`);
        const bundles = rows.map((b) => [b.epoch, b.bytes.toString('base64')] as const);
        const secrets: (readonly [number, string])[] = [];
        for (const s of this.o.db.secrets(row.id)) secrets.push([s.epoch, (await unseal(`the epoch secret of epoch ${s.epoch}`, () => this.o.sealer.open('epoch-secret', `${row.id}/${s.epoch}`, s.sealed))).toString('hex')]);
        try {
          rt.kms = HardenedKms.importState({ ...core, bundles, secrets }, this.hardenedOptions(row));
        } catch (e) {
          throw damaged(`the sealed group state does not agree with its bundles (${(e as GroupKeyRefusal).auditReason ?? (e as Error).message})`);
        }
      } else {
        this.paper.importGroup(await unseal('the sealed group state', () => this.o.sealer.openJson<PaperKmsGroupState>('paper-core', row.id, row.core as Buffer)));
      }
    }
    const old = this.groups.get(row.id);
    if (old !== undefined) for (const w of old.waiters) rt.waiters.add(w);
    this.groups.set(row.id, rt);
    return rt;
  }

  private hardenedOptions(row: GroupRow): { groupId: string; sign: (m: Uint8Array) => Promise<Uint8Array>; degree: Degree; refreshPeriodMs: number; now: () => number } {
    return { groupId: row.id, sign: this.signer, degree: row.degree as Degree, refreshPeriodMs: row.refresh_ms, now: this.now };
  }

  private log(event: string, detail: Record<string, unknown>): void {
    this.o.log?.(event, detail);
  }

  // ── enrolment ─────────────────────────────────────────────────────────────────────────────────────────────

  /**
   * A camera (authenticated by its device certificate on this connection) enrols: K_i by authenticated ECDH in
   * the KMS's key store, fresh sub-keys sealed in the database and sent to the camera under K_i. Refused while
   * the camera is in a group (its leaf holds the old sub-key: remove it first).
   */
  enrol(serial: string, cert: X509Certificate): Promise<EnrolResult> {
    // one enrolment of a camera at a time: parallel ones would race on its K_i label in the key store
    const previous = this.enrolling.get(serial) ?? Promise.resolve();
    const run = previous.then(
      () => this.enrolNow(serial, cert),
      () => this.enrolNow(serial, cert),
    );
    const settled = run.then(
      () => undefined,
      () => undefined,
    );
    this.enrolling.set(serial, settled);
    void settled.then(() => {
      if (this.enrolling.get(serial) === settled) this.enrolling.delete(serial);
    });
    return run;
  }

  private async enrolNow(serial: string, cert: X509Certificate): Promise<EnrolResult> {
    const kmsCert = this.o.identityChain[0] as X509Certificate;
    const pair: PairIdentity = { kms: kmsCert, camera: cert };
    const inGroups = [...this.groups.values()].filter((g) => this.isParticipant(g, serial)).map((g) => g.row.id);
    if (inGroups.length > 0) throw new GroupKeyError(ErrorCodes.GROUPKEY_REFUSED, `camera ${serial} is in group(s) ${inGroups.join(', ')}: remove it before it enrols again`);
    const label = await derivePairwiseKey(this.o.store, this.o.identityLabel, pair, 'kms', { roots: [this.o.trust.root], intermediates: [this.o.trust.factory], ...(this.trustCrls !== undefined ? { crls: this.trustCrls } : {}) }, { replace: true });
    const generation = (this.o.db.camera(serial)?.generation ?? 0) + 1;
    const { subkeys, blob } = await issueSubkeys(this.o.store, label, pair, generation);
    const sealed = await this.o.sealer.sealJson('subkeys', serial, { wrap: Buffer.from(subkeys.wrap).toString('hex'), auth: Buffer.from(subkeys.auth).toString('hex') });
    this.o.db.tx(() => {
      this.o.db.putCamera({ serial, cert: Buffer.from(cert.rawData), fingerprint: createHash('sha256').update(new Uint8Array(cert.rawData)).digest('hex'), generation, subkeys: sealed, enrolled_at: this.now() });
      this.o.db.audit(serial, 'enrol', { generation });
    });
    this.paper.registerCamera(serial, paperKey(subkeys));
    this.log('enrol', { serial, generation });
    return { generation, blob, confirmation: subkeyConfirmation(subkeys, pair), kmsChainPem: certsToPem(this.o.identityChain) };
  }

  private async subkeysOf(serial: string): Promise<Subkeys> {
    const row = this.o.db.camera(serial);
    if (row === undefined) throw new NotFoundError(`camera ${serial} is not enrolled`);
    const s = await this.o.sealer.openJson<{ wrap: string; auth: string }>('subkeys', serial, row.subkeys);
    return { wrap: Uint8Array.from(Buffer.from(s.wrap, 'hex')), auth: Uint8Array.from(Buffer.from(s.auth, 'hex')) };
  }

  // ── groups (administration) ───────────────────────────────────────────────────────────────────────────────

  private runtime(id: string): Runtime {
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
    if (mode === 'hardened') {
      const kmsMembers: KmsMember[] = [];
      for (const m of members) kmsMembers.push({ memberId: m, keys: await this.subkeysOf(m) });
      const { kms, genesis } = await HardenedKms.create({ ...this.hardenedOptions(row), members: kmsMembers });
      const core = await this.sealCore(row.id, kms);
      const secret = await this.sealSecret(row.id, genesis.epoch, kms);
      this.o.db.tx(() => {
        this.o.db.insertGroup({ ...row, epoch: genesis.epoch, core });
        this.o.db.putBundle(row.id, genesis.epoch, genesis.bundle, secret);
        this.o.db.audit(actor, 'group-create', { group: r.id, mode, degree, members: members.length, epoch: genesis.epoch });
      });
      this.groups.set(r.id, { row: { ...row, epoch: genesis.epoch, core }, kms, waiters: new Set(), chain: Promise.resolve(), batch: undefined, lastAuth: undefined });
    } else {
      const scheme = mode === 'scheme1' ? 1 : 2;
      this.paper.registerGroup({ ID_G1: r.id, scheme, GK1: new Uint8Array(randomBytes(32)), leader: leader as string });
      const core = await this.o.sealer.sealJson('paper-core', r.id, this.paper.exportGroup(r.id));
      this.o.db.tx(() => {
        this.o.db.insertGroup({ ...row, core });
        for (const m of members) if (m !== leader) this.o.db.putPaperRequest(r.id, m, 'join');
        this.o.db.audit(actor, 'group-create', { group: r.id, mode, members: members.length, leader });
      });
      this.groups.set(r.id, { row: { ...row, core }, kms: undefined, waiters: new Set(), chain: Promise.resolve(), batch: undefined, lastAuth: undefined });
    }
    this.log('group-create', { group: r.id, mode, members: members.length });
    return this.show(r.id);
  }

  private async sealCore(id: string, kms: HardenedKms): Promise<Buffer> {
    return this.o.sealer.sealJson('group-core', id, kms.exportState({ sinceEpoch: kms.epoch }));
  }

  private async sealSecret(id: string, epoch: number, kms: HardenedKms): Promise<Buffer> {
    return this.o.sealer.seal('epoch-secret', `${id}/${epoch}`, kms.epochSecret(epoch) as Uint8Array);
  }

  /** Asks for a camera to join or leave. Hardened: batched; resolves once the rekey that applies it is stored. */
  async requestChange(groupId: string, serial: string, op: 'join' | 'leave', actor: string): Promise<ChangeResult> {
    checkIdentifier(serial, 'camera serial');
    const g = this.runtime(groupId);
    this.halt(groupId);
    if (op === 'join' && this.o.db.camera(serial) === undefined) throw new NotFoundError(`camera ${serial} is not enrolled`);
    if (g.row.mode !== 'hardened') {
      const roster = this.paper.roster(groupId);
      const queued = this.o.db.paperRequests(groupId).find((p) => p.serial === serial);
      // the opposite request waiting, and the roster already as asked: cancel it (a leave of a camera whose join is
      // still waiting, a join of a member whose leave is still waiting) instead of storing a request nobody can run
      const cancel = queued !== undefined && queued.op !== op && roster.includes(serial) === (op === 'join');
      if (op === 'join' && !cancel && (roster.includes(serial) || serial === g.row.leader)) throw new InputError(`camera ${serial} is already in ${groupId}`);
      if (op === 'leave' && serial === g.row.leader) throw new InputError(`${serial} leads ${groupId}: name another leader first`);
      if (op === 'leave' && !roster.includes(serial) && queued === undefined) throw new InputError(`camera ${serial} is not in ${groupId}`);
      this.o.db.tx(() => {
        if (cancel) this.o.db.deletePaperRequest(groupId, serial);
        else this.o.db.putPaperRequest(groupId, serial, op);
        this.o.db.audit(actor, `group-${op}`, { group: groupId, serial, cancelled: cancel });
      });
      this.wake(g);
      return { group: groupId, serial, op, epoch: null, status: cancel ? 'applied' : 'requested' };
    }
    const kms = g.kms as HardenedKms;
    const queued = this.o.db.pending(groupId).find((p) => p.serial === serial);
    if (queued?.op === op) throw new InputError(`camera ${serial}: a ${op} is already waiting for the batch`);
    const member = kms.isMember(serial);
    if (queued === undefined && op === 'join' && member) throw new InputError(`camera ${serial} is already in ${groupId}`);
    if (queued === undefined && op === 'leave' && !member) throw new InputError(`camera ${serial} is not in ${groupId}`);
    if (op === 'leave' && serial === g.row.leader) throw new InputError(`${serial} leads ${groupId}: name another leader first`);
    this.o.db.tx(() => {
      // a leave of a camera whose join is still waiting cancels the join (and vice versa)
      if (queued !== undefined) this.o.db.deletePending(groupId, serial);
      else this.o.db.putPending({ group_id: groupId, serial, op, requested_at: this.now() });
      this.o.db.audit(actor, `group-${op}`, { group: groupId, serial, cancelled: queued !== undefined });
    });
    if (queued !== undefined) return { group: groupId, serial, op, epoch: kms.epoch, status: 'applied' };
    const epoch = await this.schedule(groupId);
    return { group: groupId, serial, op, epoch, status: 'applied' };
  }

  /** Starts (or joins) the batch window of a group; resolves with the epoch of the rekey that closes it. */
  private schedule(groupId: string): Promise<number> {
    const g = this.runtime(groupId);
    return new Promise<number>((resolve, reject) => {
      if (g.batch === undefined) {
        const timer = setTimeout(() => {
          const waiters = g.batch?.waiters ?? [];
          g.batch = undefined;
          this.serial(g, () => this.flush(g)).then(
            (epoch) => waiters.forEach((w) => w.resolve(epoch)),
            (e: unknown) => waiters.forEach((w) => w.reject(e)),
          );
        }, g.row.batch_ms);
        g.batch = { timer, waiters: [] };
      }
      g.batch.waiters.push({ resolve, reject });
    });
  }

  private serial<T>(g: Runtime, fn: () => Promise<T>): Promise<T> {
    const next = g.chain.then(fn, fn);
    g.chain = next.catch(() => undefined);
    return next;
  }

  /** One rekey for everything pending; stored in one transaction before anyone sees it. */
  private async flush(g: Runtime): Promise<number> {
    const kms = g.kms as HardenedKms;
    const pending = this.o.db.pending(g.row.id);
    if (pending.length === 0) return kms.epoch;
    const joins: KmsMember[] = [];
    const leaves: string[] = [];
    for (const p of pending) {
      if (p.op === 'join' && !kms.isMember(p.serial)) joins.push({ memberId: p.serial, keys: await this.subkeysOf(p.serial) });
      if (p.op === 'leave' && kms.isMember(p.serial)) leaves.push(p.serial);
    }
    return this.commit(g, (o) => kms.rekey({ joins, leaves }, o), pending.map((p) => p.serial), { joins: joins.map((j) => j.memberId), leaves });
  }

  /**
   * Runs one rekey and stores it in one transaction before it becomes visible: until the database holds the new
   * epoch, cameras, administrators and long polls see the previous one (HardenedKms stages it), so a KMS that
   * dies mid-way has told nobody of an epoch it did not keep.
   */
  private async commit(g: Runtime, rekey: (o: RekeyOptions) => Promise<RekeyResult>, clear: readonly string[], detail: Record<string, unknown>, also?: () => void): Promise<number> {
    const t0 = performance.now();
    let t1 = t0;
    const r = await rekey({
      persist: async (staged) => {
        t1 = performance.now();
        const { epoch } = staged.result;
        const core = await this.o.sealer.sealJson('group-core', g.row.id, staged.state({ sinceEpoch: epoch }));
        const secret = await this.o.sealer.seal('epoch-secret', `${g.row.id}/${epoch}`, staged.secret);
        this.o.db.tx(() => {
          this.o.db.putBundle(g.row.id, epoch, staged.result.bundle, secret);
          this.o.db.setGroupCore(g.row.id, epoch, core);
          this.o.db.clearPending(g.row.id, clear);
          this.o.db.audit('kms', 'rekey', { group: g.row.id, epoch, wraps: staged.result.wraps, bytes: staged.result.bundle.length, ...detail });
          also?.();
        });
        g.row = { ...g.row, epoch, core };
      },
    });
    const t2 = performance.now();
    this.log('rekey', { group: g.row.id, epoch: r.epoch, wraps: r.wraps, bytes: r.bundle.length, rekeyMs: (t1 - t0).toFixed(2), storeMs: (t2 - t1).toFixed(2), at: Date.now(), ...detail });
    this.wake(g);
    return r.epoch;
  }

  /** A refresh now (operator, or the periodic timer): a fresh root ('root') or every interior key ('tree'). */
  async refresh(groupId: string, scope: 'root' | 'tree', actor: string): Promise<number> {
    const g = this.runtime(groupId);
    this.halt(groupId);
    if (g.row.mode !== 'hardened') throw new InputError(`${groupId} runs ${g.row.mode}: the paper's keys change only on a join or leave`);
    return this.serial(g, () => this.commit(g, (o) => (g.kms as HardenedKms).rekey({ scope }, o), [], { refresh: scope, actor }));
  }

  async setLeader(groupId: string, serial: string, actor: string): Promise<GroupView> {
    checkIdentifier(serial, 'camera serial');
    const g = this.runtime(groupId);
    if (g.row.mode === 'hardened') {
      if (!(g.kms as HardenedKms).isMember(serial)) throw new InputError(`camera ${serial} is not in ${groupId}`);
    } else {
      const requests = this.o.db.paperRequests(groupId);
      const op = (m: string): 'join' | 'leave' | undefined => requests.find((p) => p.serial === m)?.op;
      if (!this.paper.roster(groupId).includes(serial) && op(serial) !== 'join') throw new InputError(`camera ${serial} is not in ${groupId}`);
      if (op(serial) === 'leave') throw new InputError(`camera ${serial} is asked to leave ${groupId}`);
      // the paper's GK1 is shared by the KMS and the leader: a new leader gets a new GK1 and runs a new distribution
      // over the group as it stands (the old leader included); a camera asked to leave is not in it any more
      const scheme = g.row.mode === 'scheme1' ? 1 : 2;
      const group = new Set([...this.paper.roster(groupId), ...requests.map((p) => p.serial), ...(g.row.leader !== null ? [g.row.leader] : [])]);
      const roster = [...group].filter((m) => m !== serial && op(m) !== 'leave');
      this.paper.registerGroup({ ID_G1: groupId, scheme, GK1: new Uint8Array(randomBytes(32)), leader: serial });
      try {
        const core = await this.o.sealer.sealJson('paper-core', groupId, this.paper.exportGroup(groupId));
        this.o.db.tx(() => {
          this.o.db.setGroupCore(groupId, 0, core);
          for (const p of requests) this.o.db.deletePaperRequest(groupId, p.serial);
          for (const m of roster) this.o.db.putPaperRequest(groupId, m, 'join');
          this.o.db.setLeader(groupId, serial);
          this.o.db.audit(actor, 'group-leader', { group: groupId, leader: serial, left: requests.filter((p) => p.op === 'leave').map((p) => p.serial) });
        });
        g.row = { ...g.row, core, leader: serial };
      } catch (e) {
        await this.load(this.o.db.group(groupId) as GroupRow); // the database did not take it: back to what it holds
        throw e;
      }
      this.wake(g);
      return this.show(groupId);
    }
    this.o.db.tx(() => {
      this.o.db.setLeader(groupId, serial);
      this.o.db.audit(actor, 'group-leader', { group: groupId, leader: serial });
    });
    g.row = { ...g.row, leader: serial };
    this.wake(g);
    return this.show(groupId);
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
    if (g.row.mode === 'hardened') {
      const kms = g.kms as HardenedKms;
      return {
        ...base,
        epoch: kms.epoch,
        members: kms.roster(),
        pending: this.o.db.pending(groupId).map((p) => ({ serial: p.serial, op: p.op })),
        lastRekeyAt: new Date(kms.lastRekey).toISOString(),
        treeHeight: kms.height,
      };
    }
    const roster = this.paper.roster(groupId);
    return {
      ...base,
      epoch: 0,
      members: roster,
      pending: this.o.db.paperRequests(groupId),
      lastRekeyAt: null,
      ackStatus: this.paper.ackStatus(groupId),
    };
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
        if (g.row.mode !== 'hardened' || g.batch !== undefined || !(g.kms as HardenedKms).refreshDue() || this.o.db.alarm(g.row.id) !== undefined) continue;
        this.refresh(g.row.id, 'root', 'timer').catch((e: unknown) => this.log('refresh-failed', { group: g.row.id, error: (e as Error).message }));
      }
    }, tickMs);
    this.refreshTimer.unref();
  }

  // ── cameras: hardened protocol ────────────────────────────────────────────────────────────────────────────

  private hardened(groupId: string, serial: string): { g: Runtime; kms: HardenedKms } {
    if (this.damaged.has(groupId)) throw new KeyframeError(ErrorCodes.UNAVAILABLE, `group ${groupId} cannot be served now`);
    if (this.o.db.alarm(groupId) !== undefined) throw new KeyframeError(ErrorCodes.UNAVAILABLE, `group ${groupId} is stopped by an alarm at the KMS`);
    const g = this.groups.get(groupId);
    if (g === undefined || g.kms === undefined || !g.kms.isMember(serial)) throw refused('not a member');
    return { g, kms: g.kms };
  }

  isParticipant(g: Runtime, serial: string): boolean {
    if (g.row.mode === 'hardened') return (g.kms as HardenedKms).isMember(serial) || this.o.db.pending(g.row.id).some((p) => p.serial === serial);
    return g.row.leader === serial || this.paper.roster(g.row.id).includes(serial) || this.o.db.paperRequests(g.row.id).some((p) => p.serial === serial);
  }

  /** New CRLs for the checks the service makes itself (enrolment). */
  setCrls(crls: readonly X509Crl[]): void {
    this.trustCrls = crls;
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
        if (g.row.mode !== 'hardened') {
          this.log('revoked-in-paper-group', { serial: c.serial, group: g.row.id, action: 'name another leader to leave it out (the paper cannot force a camera out)' });
          continue;
        }
        const kms = g.kms as HardenedKms;
        if (!kms.isMember(c.serial)) continue; // a join still waiting: the leave below cancels it
        if (g.row.leader === c.serial) {
          const next = kms.roster().find((m) => m !== c.serial);
          if (next !== undefined) await this.setLeader(g.row.id, next, actor);
          else {
            this.o.db.setLeader(g.row.id, null);
            g.row = { ...g.row, leader: null };
          }
        }
        this.log('camera-revoked', { serial: c.serial, group: g.row.id, action: 'removed (forward-secure rekey)' });
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
      const member = g.row.mode === 'hardened' ? (g.kms as HardenedKms).isMember(serial) : g.row.leader === serial || this.paper.roster(g.row.id).includes(serial);
      const request = g.row.mode === 'hardened' ? null : (this.o.db.paperRequests(g.row.id).find((p) => p.serial === serial)?.op ?? null);
      out.push({ id: g.row.id, mode: g.row.mode, leader: g.row.leader, epoch: g.row.mode === 'hardened' ? (g.kms as HardenedKms).epoch : 0, member, request });
    }
    return out.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  }

  welcome(groupId: string, serial: string): Promise<Uint8Array> {
    return this.hardened(groupId, serial).kms.welcomeFor(serial);
  }

  /** The bundles a member missed since `after`; waits up to `waitMs` for a new epoch when there are none. */
  async bundlesSince(groupId: string, serial: string, after: number, waitMs: number, signal?: AbortSignal, lastHash?: string): Promise<Uint8Array[]> {
    let { kms } = this.hardened(groupId, serial);
    // the camera is on an epoch this KMS never made (or made otherwise): its state was rolled back or forked. The
    // camera is asked for its last bundle as evidence (reportDivergence) before anything is stopped.
    // (an epoch before the last rebase is an old history: the camera joins this one by a welcome)
    const own = after >= kms.historyStart ? kms.bundle(after) : undefined;
    if (after > kms.epoch || (own !== undefined && lastHash !== undefined && Buffer.from(sha256(own)).toString('hex') !== lastHash.toLowerCase())) {
      throw new KeyframeError(ErrorCodes.DIVERGED, `the KMS does not hold the epoch ${after} this camera is on: send its last bundle as evidence`);
    }
    if (kms.epoch <= after && waitMs > 0) {
      await this.waitForEpoch(groupId, after, waitMs, signal);
      kms = this.hardened(groupId, serial).kms;
    }
    return kms.bundlesSince(after, serial);
  }

  /**
   * A camera's evidence that this KMS is behind it: its last accepted bundle, signed by this KMS, of an epoch the
   * KMS does not hold or holds otherwise. Verified, then the group is stopped with an alarm (persisted) until an
   * operator restores the newest backup or rebases the group. Evidence that shows nothing is refused.
   */
  reportDivergence(groupId: string, serial: string, bundle: Uint8Array): AlarmRow {
    const g = this.groups.get(groupId);
    if (g === undefined || g.row.mode !== 'hardened' || g.kms === undefined || !g.kms.isMember(serial)) throw refused('evidence: not a member');
    const kms = g.kms;
    let d;
    try {
      d = decodeBundle(bundle);
    } catch {
      throw refused('evidence: not a bundle');
    }
    if (d.bundle.groupId !== groupId || !bundleSignatureValid(d, this.verifyOwn)) throw refused('evidence: not signed by this KMS for this group');
    const known = this.o.db.alarm(groupId);
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
      raised_at: this.now(),
    };
    this.o.db.tx(() => {
      this.o.db.raiseAlarm(alarm);
      this.o.db.audit(serial, 'alarm', { group: groupId, kind: alarm.kind, epoch: d.bundle.epoch, kmsEpoch: kms.epoch });
    });
    this.log('alarm', { group: groupId, kind: alarm.kind, serial, cameraEpoch: d.bundle.epoch, kmsEpoch: kms.epoch });
    this.wake(g);
    return alarm;
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
    if (g.row.mode !== 'hardened') throw new InputError(`${groupId} runs ${g.row.mode}`);
    const kms = g.kms as HardenedKms;
    const reported = (JSON.parse(a.detail) as { epoch?: number }).epoch ?? kms.epoch;
    const toEpoch = Math.max(reported, kms.epoch) + 1;
    const members: KmsMember[] = [];
    for (const id of kms.roster()) members.push({ memberId: id, keys: await this.subkeysOf(id) });
    await this.serial(g, () =>
      this.commit(g, (o) => kms.rebase(members, toEpoch, o), [], { rebase: toEpoch, actor }, () => {
        this.o.db.clearAlarm(groupId);
        this.o.db.audit(actor, 'group-rebase', { group: groupId, epoch: toEpoch, after: reported });
      }),
    );
    return this.show(groupId);
  }

  private waitForEpoch(groupId: string, after: number, waitMs: number, signal?: AbortSignal): Promise<void> {
    const g = this.runtime(groupId);
    return new Promise<void>((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        g.waiters.delete(check);
        signal?.removeEventListener('abort', done);
        resolve();
      };
      const check = (): void => {
        const rt = this.groups.get(groupId);
        if (rt === undefined || rt.row.mode !== 'hardened' || (rt.kms as HardenedKms).epoch > after) done();
      };
      const timer = setTimeout(done, waitMs);
      g.waiters.add(check);
      signal?.addEventListener('abort', done);
      if (this.closed) done();
    });
  }

  private wake(g: Runtime): void {
    for (const w of [...g.waiters]) w();
  }

  /** Leader only: a fresh signed challenge for the group. */
  async challenge(groupId: string, serial: string): Promise<Uint8Array> {
    const { g, kms } = this.hardened(groupId, serial);
    if (g.row.leader !== serial) throw refused('not the leader');
    return kms.issueChallenge();
  }

  /** Leader only: the aggregate of the cameras' tags. */
  aggregate(groupId: string, serial: string, aggregate: Uint8Array): AuthRecord & { readonly outcome: 'verified' | 'failed' } {
    const { g, kms } = this.hardened(groupId, serial);
    if (g.row.leader !== serial) throw refused('not the leader');
    const r = kms.verifyAggregate(aggregate);
    const rec: AuthRecord = r.kind === 'verified' ? { at: new Date(this.now()).toISOString(), epoch: r.epoch, verified: true, present: r.present, missing: r.missing, bad: [] } : { at: new Date(this.now()).toISOString(), epoch: r.epoch, verified: false, present: [], missing: [], bad: [] };
    g.lastAuth = rec;
    this.o.db.audit(serial, 'group-auth', { group: groupId, epoch: r.epoch, outcome: r.kind, present: rec.present.length, missing: rec.missing, record: rec });
    return { ...rec, outcome: r.kind };
  }

  /** Leader only, after a failed aggregate: the per-camera tags, verified one by one. */
  blame(groupId: string, serial: string, tagList: Uint8Array): AuthRecord {
    const { g, kms } = this.hardened(groupId, serial);
    if (g.row.leader !== serial) throw refused('not the leader');
    const b = kms.blame(tagList);
    const rec: AuthRecord = { at: new Date(this.now()).toISOString(), epoch: b.epoch, verified: false, present: b.good, missing: b.missing, bad: b.bad };
    g.lastAuth = rec;
    this.o.db.audit(serial, 'group-blame', { group: groupId, epoch: b.epoch, bad: b.bad, missing: b.missing, record: rec });
    return rec;
  }

  // ── the relay (LAN) and the paper KMS ─────────────────────────────────────────────────────────────────────

  /** Before a body is read: would a message of `size` bytes from `from` be taken? (Members only; relay quotas.) */
  admitPost(groupId: string, from: string, to: readonly string[], size: number): void {
    const g = this.groups.get(groupId);
    if (g === undefined || !this.isParticipant(g, from)) throw refused('not a member');
    this.mailbox.admit(groupId, from, to.filter((t) => t !== KMS_ADDRESS), size);
  }

  /** Sends `body` from an authenticated camera to cameras of its group, or (paper schemes) to the KMS. */
  async post(groupId: string, from: string, to: readonly string[], body: Uint8Array): Promise<void> {
    const g = this.groups.get(groupId);
    if (g === undefined || !this.isParticipant(g, from)) throw refused('not a member');
    if (to.length === 0 || to.length > 100_000) throw new InputError('a message names 1–100000 recipients');
    if (to.includes(from)) throw new InputError('a camera may not post a message to itself');
    const cameras = to.filter((t) => t !== KMS_ADDRESS);
    for (const t of cameras) if (!this.isParticipant(g, t)) throw refused('recipient not in the group');
    if (cameras.length > 0) this.mailbox.post(groupId, from, cameras, body);
    if (to.includes(KMS_ADDRESS)) {
      if (g.row.mode === 'hardened') throw refused('the hardened KMS takes no relayed messages');
      await this.serial(g, () => this.paperHandle(g, from, body));
    }
  }

  private async paperHandle(g: Runtime, from: string, body: Uint8Array): Promise<void> {
    let out;
    try {
      const m = decodeMessage(body);
      // the PaperKms serves every paper group: a message names its group, and it must be the one it was posted to
      if ((m.type === 'MemberAuth' ? m.M_IC.ID_G1 : m.ID_G1) !== g.row.id) throw new GroupKeyError(ErrorCodes.GROUPKEY_REFUSED, `KMS: a message for another group, posted to ${g.row.id}`);
      out = this.paper.handle(m);
    } catch (e) {
      this.o.db.audit(from, 'paper-refused', { group: g.row.id, error: (e as Error).message });
      if (!(e instanceof GroupKeyError)) throw e;
      // a refused ACK_G1 still changes the group's ackStatus to 'failed': keep that too
      if (this.paper.ackStatus(g.row.id) === 'failed') await this.paperStore(g);
      throw refused('paper message');
    }
    await this.paperStore(g);
    for (const o of out) {
      try {
        this.mailbox.post(g.row.id, KMS_ADDRESS, o.to, encodeMessage(o.message));
      } catch (e) {
        // a recipient's queue is full: lost as on a LAN; the camera asks again (paper-camera.ts retries)
        this.log('relay-full', { group: g.row.id, to: o.to.length === 1 ? o.to[0] : `${o.to.length} cameras`, type: o.message.type, error: (e as Error).message });
      }
    }
    this.wake(g);
  }

  /** Writes a paper group's state, and clears the requests its roster now reflects; reloads if the write fails. */
  private async paperStore(g: Runtime): Promise<void> {
    const roster = this.paper.roster(g.row.id);
    try {
      const core = await this.o.sealer.sealJson('paper-core', g.row.id, this.paper.exportGroup(g.row.id));
      this.o.db.tx(() => {
        this.o.db.setGroupCore(g.row.id, 0, core);
        for (const r of this.o.db.paperRequests(g.row.id)) {
          if ((r.op === 'join' && roster.includes(r.serial)) || (r.op === 'leave' && !roster.includes(r.serial))) this.o.db.deletePaperRequest(g.row.id, r.serial);
        }
      });
      g.row = { ...g.row, core };
    } catch (e) {
      await this.load(this.o.db.group(g.row.id) as GroupRow);
      throw e;
    }
  }

  /** A camera's relayed messages after `after`; waits up to `waitMs` when there are none. */
  async inbox(groupId: string, serial: string, after: number, waitMs: number, signal?: AbortSignal): Promise<{ items: MailItem[]; more: boolean }> {
    const g = this.groups.get(groupId);
    if (g === undefined || !this.isParticipant(g, serial)) throw refused('not a member');
    return this.mailbox.read(groupId, serial, after, waitMs, signal);
  }

  /** A paper group's GK1 for its leader (over the mutually authenticated channel). */
  paperSetup(groupId: string, serial: string): { scheme: 1 | 2; leader: string; GK1: Buffer | null; roster: string[]; requests: { serial: string; op: 'join' | 'leave' }[] } {
    const g = this.groups.get(groupId);
    if (g === undefined || g.row.mode === 'hardened' || !this.isParticipant(g, serial)) throw refused('not a member');
    const state = this.paper.exportGroup(groupId);
    return { scheme: state.scheme, leader: state.leader, GK1: serial === state.leader ? Buffer.from(state.GK1, 'hex') : null, roster: [...state.roster], requests: this.o.db.paperRequests(groupId) };
  }

  /** A paper group's current group key GSK at the KMS (a copy; undefined before the first distribution). Read-only, for tests and tooling. */
  paperGroupKey(groupId: string): Uint8Array | undefined {
    if (this.runtime(groupId).row.mode === 'hardened') throw new InputError(`${groupId} runs the hardened mode`);
    return this.paper.groupKey(groupId);
  }

  // ── content keys (for the licence server and tests) ───────────────────────────────────────────────────────

  /**
   * Releases the content key of `kid` to `actor`. The release (or the refusal) is audited first: if the audit row
   * cannot be written, no key leaves the KMS.
   */
  releaseContentKey(kid: Uint8Array, actor: string): { groupId: string; cameraId: string; epoch: number; key: Buffer } | undefined {
    let found: { groupId: string; cameraId: string; epoch: number; key: Buffer } | undefined;
    const kidHex = Buffer.from(kid).toString('hex');
    for (const g of this.groups.values()) {
      const k = g.kms?.contentKeyFor(kid);
      if (k === undefined) continue;
      if ('mismatch' in k) {
        // the KID was made with another secret than this KMS holds for that epoch: never hand out a wrong key
        this.o.db.audit(actor, 'content-key-mismatch', { kid: kidHex, group: g.row.id, camera: k.cameraId, epoch: k.epoch });
        this.log('alarm', { group: g.row.id, kind: 'kid-mismatch', kid: kidHex, epoch: k.epoch });
        throw new KeyframeError(ErrorCodes.DIVERGED, `KID ${kidHex} of ${k.cameraId}, epoch ${k.epoch}, was made with another key than this KMS holds for that epoch: the KMS's state was rolled back or forked; no key is released`);
      }
      found = { groupId: g.row.id, cameraId: k.cameraId, epoch: k.epoch, key: asBuffer(k.key) };
      break;
    }
    this.o.db.audit(actor, found !== undefined ? 'content-key-release' : 'content-key-unknown', found !== undefined ? { kid: kidHex, group: found.groupId, camera: found.cameraId, epoch: found.epoch } : { kid: kidHex });
    return found;
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.refreshTimer !== undefined) clearInterval(this.refreshTimer);
    for (const g of this.groups.values()) {
      if (g.batch !== undefined) {
        clearTimeout(g.batch.timer);
        const stopped = new KeyframeError(ErrorCodes.INTERNAL, 'the KMS stopped inside the batch window: the change is stored and applied when it starts again');
        for (const w of g.batch.waiters) w.reject(stopped);
        g.batch = undefined;
      }
      this.wake(g);
      await g.chain;
    }
    this.mailbox.close();
  }
}

