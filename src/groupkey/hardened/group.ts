/**
 * A whole hardened group in one process, for tests and simulations: the KMS core, the cameras (cam-0 is the
 * leader; it is also a member), and an in-memory network that carries every message as bytes and logs it — what
 * an eavesdropper on the cameras' LAN and the uplink sees. Bundles and challenges go KMS → leader → cameras
 * (the leader forwards the bytes it got), tags go cameras → leader, aggregates leader → KMS; welcomes and pulls
 * are unicast KMS → camera (mutual TLS in the service). A test can tap (alter, drop) any transmission or inject
 * bytes; refusals are recorded rather than thrown. A camera that refused or missed a bundle pulls the missing
 * ones from the KMS after each round (`settle`), as the service will. Deterministic from one seed, except that
 * AES-GCM and Ed25519 come from node:crypto.
 */
import type { KeyObject } from 'node:crypto';
import { GroupKeyError, GroupKeyRefusal } from '../../errors.js';
import { seededRandom } from '../paper/primitives.js';
import { messageType } from './codec.js';
import type { MessageTypeName } from './codec.js';
import { bytesEqual, deriveSubkeys, KEY_BYTES } from './kdf.js';
import type { Random } from './kdf.js';
import { HardenedKms, kmsMember } from './kms.js';
import type { AuthOutcome, BlameOutcome, MembershipChanges, RekeyResult } from './kms.js';
import { HardenedLeader } from './leader.js';
import { HardenedMember } from './member.js';
import type { Degree } from './nodes.js';
import { ed25519KeyPair, ed25519Signer, ed25519Verifier } from './signature.js';
import type { Verifier } from './signature.js';
import type { RefreshScope } from './tree.js';

export const KMS_ID = 'kms';

export interface HardenedGroupOptions {
  /** Cameras at genesis, cam-0 (the leader) … cam-(n−1). */
  readonly members: number;
  readonly degree?: Degree;
  readonly seed?: string;
  readonly groupId?: string;
}

export interface HardenedWireRecord {
  readonly seq: number;
  readonly from: string;
  readonly to: readonly string[];
  readonly type: MessageTypeName | 'unknown';
  readonly bytes: Uint8Array;
}

export interface HardenedRefusal {
  readonly at: string;
  readonly type: MessageTypeName | 'unknown';
  readonly error: GroupKeyError;
}

/** Sees every transmission before delivery: returns the bytes to deliver (the same, changed) or null to drop. */
export type HardenedWireTap = (record: HardenedWireRecord) => Uint8Array | null;

export interface AuthRound {
  /** The KMS's verdict on the aggregate; null when it never arrived or the KMS refused it (see `refusals`). */
  readonly outcome: AuthOutcome | null;
  /** Set when the aggregate failed and the KMS checked the per-camera tags. */
  readonly blame: BlameOutcome | null;
}

export interface GroupChanges {
  /** Identifiers of joining cameras, or how many new ones (cam-n, cam-n+1, …). */
  readonly joins?: number | readonly string[];
  readonly leaves?: readonly string[];
  readonly scope?: RefreshScope;
}

export class HardenedGroup {
  readonly groupId: string;
  readonly kms: HardenedKms;
  /** The live members (online or not), by identifier. */
  readonly cameras = new Map<string, HardenedMember>();
  /** Cameras that left, their last state kept for attack tests. */
  readonly departed = new Map<string, HardenedMember>();
  /** Live cameras cut off the network: they receive nothing until `comeOnline`. */
  readonly offline = new Set<string>();
  /** Ground truth: every camera's pairwise key K_i. */
  readonly K = new Map<string, Uint8Array>();
  readonly wire: HardenedWireRecord[] = [];
  readonly refusals: HardenedRefusal[] = [];
  /** Each rekey's result, in order. */
  readonly rekeys: RekeyResult[] = [];
  readonly verify: Verifier;
  readonly kmsPublicKey: KeyObject;
  tap: HardenedWireTap | undefined;
  leaderId: string;
  private leaderRole: HardenedLeader;
  private readonly keyRandom: Random;
  private nextCamera: number;
  private readonly clock: { t: number };

  private constructor(o: HardenedGroupOptions, kms: HardenedKms, keyRandom: Random, verify: Verifier, publicKey: KeyObject, K: Map<string, Uint8Array>, clock: { t: number }) {
    this.groupId = o.groupId ?? 'G1';
    this.kms = kms;
    this.keyRandom = keyRandom;
    this.verify = verify;
    this.kmsPublicKey = publicKey;
    this.nextCamera = o.members;
    for (const [id, k] of K) this.K.set(id, k);
    this.leaderId = 'cam-0';
    this.leaderRole = new HardenedLeader({ groupId: this.groupId });
    this.clock = clock;
  }

  /** A group with `members` cameras, its genesis bundle distributed. */
  static async create(o: HardenedGroupOptions): Promise<HardenedGroup> {
    const seed = o.seed ?? 'hardened-group';
    const keyRandom = seededRandom(`${seed}/K`);
    const { privateKey, publicKey } = ed25519KeyPair(seededRandom(`${seed}/kms-signing-key`)(32));
    const K = new Map<string, Uint8Array>();
    for (let i = 0; i < o.members; i++) K.set(`cam-${i}`, keyRandom(KEY_BYTES));
    const clock = { t: Date.UTC(2026, 0, 1) };
    const { kms, genesis } = await HardenedKms.create({
      groupId: o.groupId ?? 'G1',
      degree: o.degree ?? 4,
      sign: ed25519Signer(privateKey),
      random: seededRandom(`${seed}/kms`),
      now: () => clock.t,
      members: [...K].map(([id, k]) => kmsMember(id, k)),
    });
    const g = new HardenedGroup(o, kms, keyRandom, ed25519Verifier(publicKey), publicKey, K, clock);
    await g.distribute(genesis);
    return g;
  }

  /** Moves the KMS clock (challenge expiry, refresh period). */
  advance(ms: number): void {
    this.clock.t += ms;
  }

  /** One rekey for a batch of changes, distributed; offline cameras stay behind. */
  async rekey(changes: GroupChanges = {}): Promise<RekeyResult> {
    const joinIds = typeof changes.joins === 'number' ? Array.from({ length: changes.joins }, () => `cam-${this.nextCamera++}`) : [...(changes.joins ?? [])];
    const joins = joinIds.map((id) => {
      let k = this.K.get(id);
      if (k === undefined) {
        k = this.keyRandom(KEY_BYTES);
        this.K.set(id, k);
      }
      return kmsMember(id, k);
    });
    const c: MembershipChanges = { joins, leaves: changes.leaves ?? [], ...(changes.scope !== undefined ? { scope: changes.scope } : {}) };
    const result = await this.kms.rekey(c);
    for (const id of changes.leaves ?? []) {
      const m = this.cameras.get(id);
      if (m !== undefined) this.departed.set(id, m);
      this.cameras.delete(id);
      this.offline.delete(id);
    }
    if (!this.cameras.has(this.leaderId)) {
      this.leaderId = [...this.cameras.keys()][0] ?? joinIds[0] ?? this.leaderId;
      this.leaderRole = new HardenedLeader({ groupId: this.groupId });
    }
    await this.distribute(result);
    return result;
  }

  join(id?: string): Promise<RekeyResult> {
    return this.rekey({ joins: id === undefined ? 1 : [id] });
  }

  leave(id: string): Promise<RekeyResult> {
    return this.rekey({ leaves: [id] });
  }

  refresh(scope: RefreshScope = 'root'): Promise<RekeyResult> {
    return this.rekey({ scope });
  }

  /** Cuts a live camera off the network. */
  goOffline(id: string): void {
    this.offline.add(id);
  }

  /** Brings it back: it pulls what it missed. */
  async comeOnline(id: string): Promise<void> {
    this.offline.delete(id);
    await this.settle();
  }

  /** Rebuilds a camera from its exported state (a restart: persisted JSON in, same sub-keys from its key store). */
  restart(id: string): HardenedMember {
    const m = this.cameras.get(id) ?? this.departed.get(id);
    if (m === undefined) throw new Error(`no camera ${id}`);
    const state = JSON.parse(JSON.stringify(m.exportState())) as ReturnType<HardenedMember['exportState']>;
    const again = HardenedMember.importState(state, this.memberOptions(id));
    if (this.cameras.has(id)) this.cameras.set(id, again);
    else this.departed.set(id, again);
    return again;
  }

  /** Every online live camera holds the KMS's current epoch and epoch secret. */
  consistent(): boolean {
    const secret = this.kms.epochSecret();
    if (secret === undefined) return false;
    for (const [id, m] of this.cameras) {
      if (this.offline.has(id)) continue;
      if (m.epoch !== this.kms.epoch || !bytesEqual(m.epochSecret(), secret)) return false;
    }
    return true;
  }

  /** Every rekey bundle that went over the wire (as sent, including pulls). */
  bundlesOnWire(): Uint8Array[] {
    return this.wire.filter((r) => r.type === 'bundle').map((r) => r.bytes);
  }

  /** A group-authentication round: challenge, tags, aggregate, and blame if the aggregate fails. */
  async authenticate(): Promise<AuthRound> {
    const challenge = this.send(KMS_ID, [this.leaderId], await this.kms.issueChallenge());
    if (challenge === null) return { outcome: null, blame: null };
    this.leaderRole.start(challenge);
    const others = this.online().filter((id) => id !== this.leaderId);
    const relayed = this.send(this.leaderId, others, challenge);
    for (const id of this.online()) {
      const got = id === this.leaderId ? challenge : relayed;
      if (got === null) continue;
      let tag: Uint8Array;
      try {
        tag = (this.cameras.get(id) as HardenedMember).respond(got);
      } catch (e) {
        this.refuse(id, got, e);
        continue;
      }
      const sent = id === this.leaderId ? tag : this.send(id, [this.leaderId], tag);
      if (sent === null) continue;
      try {
        this.leaderRole.collect(sent);
      } catch (e) {
        this.refuse(this.leaderId, sent, e);
      }
    }
    const aggregate = this.send(this.leaderId, [KMS_ID], this.leaderRole.aggregate());
    if (aggregate === null) return { outcome: null, blame: null };
    let outcome: AuthOutcome;
    try {
      outcome = this.kms.verifyAggregate(aggregate);
    } catch (e) {
      this.refuse(KMS_ID, aggregate, e);
      return { outcome: null, blame: null };
    }
    if (outcome.kind === 'verified') return { outcome, blame: null };
    const list = this.send(this.leaderId, [KMS_ID], this.leaderRole.tagList());
    if (list === null) return { outcome, blame: null };
    try {
      return { outcome, blame: this.kms.blame(list) };
    } catch (e) {
      this.refuse(KMS_ID, list, e);
      return { outcome, blame: null };
    }
  }

  /** Puts bytes on the wire from `from` to `to` (cameras, or KMS_ID for the KMS) and delivers them. */
  async inject(from: string, to: readonly string[], bytes: Uint8Array): Promise<void> {
    const got = this.send(from, to, bytes);
    if (got === null) return;
    for (const id of to) {
      if (id === KMS_ID) {
        try {
          const t = messageType(got);
          if (t === 'aggregate') this.kms.verifyAggregate(got);
          else if (t === 'tagList') this.kms.blame(got);
          else throw new GroupKeyRefusal('kms: unexpected message');
        } catch (e) {
          this.refuse(KMS_ID, got, e);
        }
      } else {
        const m = this.cameras.get(id) ?? this.departed.get(id);
        if (m !== undefined) this.deliverBundle(id, m, got);
      }
    }
    await this.settle();
  }

  /** Every online live camera behind the KMS pulls what it missed (and a joiner without state its welcome). */
  async settle(): Promise<void> {
    for (const id of this.kms.roster()) {
      if (this.offline.has(id)) continue;
      let m = this.cameras.get(id);
      if (m === undefined) {
        m = this.welcome(id, await this.kms.welcomeFor(id));
        if (m === undefined) continue;
      }
      if (m.epoch >= this.kms.epoch) continue;
      const pulled = this.kms.bundlesSince(m.epoch, id).map((b) => this.send(KMS_ID, [id], b));
      if (pulled.some((b) => b === null)) continue;
      try {
        m.catchUp(pulled as Uint8Array[]);
      } catch (e) {
        this.refuse(id, pulled[0] as Uint8Array, e);
      }
    }
  }

  private online(): string[] {
    return [...this.cameras.keys()].filter((id) => !this.offline.has(id));
  }

  private memberOptions(id: string): { groupId: string; memberId: string; keys: ReturnType<typeof deriveSubkeys>; verify: Verifier } {
    return { groupId: this.groupId, memberId: id, keys: deriveSubkeys(this.K.get(id) as Uint8Array), verify: this.verify };
  }

  private welcome(id: string, bytes: Uint8Array): HardenedMember | undefined {
    const got = this.send(KMS_ID, [id], bytes);
    if (got === null) return undefined;
    try {
      const m = HardenedMember.fromWelcome(got, this.memberOptions(id));
      this.cameras.set(id, m);
      return m;
    } catch (e) {
      this.refuse(id, got, e);
      return undefined;
    }
  }

  private async distribute(r: RekeyResult): Promise<void> {
    this.rekeys.push(r);
    for (const id of r.joined.keys()) if (!this.offline.has(id)) this.welcome(id, await this.kms.welcomeFor(id));
    const toLeader = this.send(KMS_ID, [this.leaderId], r.bundle);
    if (toLeader !== null && !this.offline.has(this.leaderId)) {
      const leader = this.cameras.get(this.leaderId);
      if (leader !== undefined) this.deliverBundle(this.leaderId, leader, toLeader);
      const others = this.online().filter((id) => id !== this.leaderId);
      const relayed = this.send(this.leaderId, others, toLeader);
      if (relayed !== null) for (const id of others) this.deliverBundle(id, this.cameras.get(id) as HardenedMember, relayed);
    }
    await this.settle();
  }

  private deliverBundle(id: string, m: HardenedMember, bytes: Uint8Array): void {
    try {
      m.receive(bytes);
    } catch (e) {
      this.refuse(id, bytes, e);
    }
  }

  private refuse(at: string, bytes: Uint8Array, e: unknown): void {
    if (!(e instanceof GroupKeyError)) throw e;
    this.refusals.push({ at, type: messageType(bytes) ?? 'unknown', error: e });
  }

  /** Logs a transmission, runs the tap, returns what arrives (null: dropped). */
  private send(from: string, to: readonly string[], bytes: Uint8Array): Uint8Array | null {
    const record: HardenedWireRecord = { seq: this.wire.length, from, to, type: messageType(bytes) ?? 'unknown', bytes };
    this.wire.push(record);
    return this.tap === undefined ? bytes : this.tap(record);
  }
}
