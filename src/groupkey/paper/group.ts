/**
 * A whole paper group in one process: a KMS, a leader camera and its member cameras, wired by an in-memory
 * network that carries every message as its canonical bytes (messages.ts) and keeps a log of them — what an
 * eavesdropper on the cameras' LAN and the uplink would see. Runs distribution, joins and leaves of Scheme 1 or
 * Scheme 2 to quiescence, sets each role's counter phase, records refusals instead of stopping, and lets a test
 * tap (modify, drop) or inject bytes. Pure and deterministic: all randomness comes from one seed.
 */
import { ErrorCodes, GroupKeyError } from '../../errors.js';
import { PaperKms } from './kms.js';
import { PaperLeader } from './leader.js';
import type { PaperScheme } from './leader.js';
import { PaperMember } from './member.js';
import { decodeMessage, encodeMessage } from './messages.js';
import type { Outgoing, PaperMessage, PaperMessageType } from './messages.js';
import { bytesEqual, KEY_BYTES, seededRandom } from './primitives.js';
import type { Random } from './primitives.js';

export interface PaperGroupOptions {
  readonly scheme: PaperScheme;
  /** Cameras in the group besides the leader camera. */
  readonly members: number;
  readonly seed?: string;
  readonly ID_G1?: string;
}

/** One transmission as the sender sent it (a multicast is one record with several recipients). */
export interface WireRecord {
  readonly seq: number;
  readonly phase: string;
  readonly from: string;
  readonly to: readonly string[];
  readonly type: PaperMessageType;
  readonly bytes: Uint8Array;
  readonly message: PaperMessage;
}

/** A message a role would not take (a GroupKeyError), with where and what. */
export interface Refusal {
  readonly at: string;
  readonly type: PaperMessageType | 'undecodable';
  readonly error: GroupKeyError;
}

/** Sees every transmission before delivery: returns the bytes to deliver (the same, changed) or null to drop. */
export type WireTap = (record: WireRecord) => Uint8Array | null;

export const KMS_ID = 'kms';
export const LEADER_ID = 'cam-0';

export class PaperGroup {
  readonly ID_G1: string;
  readonly scheme: PaperScheme;
  readonly kms: PaperKms;
  readonly leader: PaperLeader;
  /** The member cameras on the network now (a joining camera from its request on), the leader excluded. */
  readonly cameras = new Map<string, PaperMember>();
  /** Cameras that left: off the network, their last state kept for attack tests. */
  readonly departed = new Map<string, PaperMember>();
  /** Ground truth for tests: every K_IC and GK1. */
  readonly K_IC = new Map<string, Uint8Array>();
  readonly GK1: Uint8Array;
  readonly wire: WireRecord[] = [];
  readonly refusals: Refusal[] = [];
  tap: WireTap | undefined;
  private readonly seed: string;
  private readonly keyRandom: Random;
  private queue: { from: string; to: readonly string[]; bytes: Uint8Array }[] = [];
  private phase = 'setup';
  private nextId: number;

  constructor(o: PaperGroupOptions) {
    this.ID_G1 = o.ID_G1 ?? 'G1';
    this.scheme = o.scheme;
    this.seed = o.seed ?? 'paper-group';
    this.keyRandom = seededRandom(`${this.seed}/keys`);
    this.GK1 = this.keyRandom(KEY_BYTES);
    this.kms = new PaperKms({ ID_ICM: KMS_ID, random: seededRandom(`${this.seed}/${KMS_ID}`) });
    this.kms.registerGroup({ ID_G1: this.ID_G1, scheme: this.scheme, GK1: this.GK1, leader: LEADER_ID });
    const K_L = this.newKey(LEADER_ID);
    this.leader = new PaperLeader({ ID_G1: this.ID_G1, ID_IC: LEADER_ID, K_IC: K_L, GK1: this.GK1, kms: KMS_ID, scheme: this.scheme, random: seededRandom(`${this.seed}/${LEADER_ID}`) });
    for (let i = 1; i <= o.members; i++) this.addCamera(`cam-${i}`);
    this.nextId = o.members + 1;
  }

  /** §4.1.1: the leader forms the group of all cameras on the network, every camera sends step 1, run to the end. */
  distribute(): void {
    this.setPhase('distribution');
    this.send(LEADER_ID, this.leader.startDistribution([...this.cameras.keys()]));
    for (const [id, cam] of this.cameras) this.send(id, cam.startDistribution());
    this.run();
  }

  /** §4.1.2 / §4.2.2: a new camera (registered with the KMS, then on the network) asks to join. */
  join(ID_IC = `cam-${this.nextId++}`): PaperMember {
    this.setPhase('join');
    const cam = this.addCamera(ID_IC);
    cam.ops.phase = this.phase;
    this.send(ID_IC, cam.requestJoin());
    this.run();
    return cam;
  }

  /** §4.1.3 / §4.2.3: a camera asks to leave, and is off the network from then on. */
  leave(ID_IC: string): PaperMember {
    const cam = this.cameras.get(ID_IC);
    if (cam === undefined) throw new GroupKeyError(ErrorCodes.GROUPKEY_REFUSED, `no camera ${ID_IC} on the network`);
    this.setPhase('leave');
    this.send(ID_IC, cam.requestLeave());
    this.cameras.delete(ID_IC);
    this.departed.set(ID_IC, cam);
    this.run();
    return cam;
  }

  /** Every role's counter counts under `phase` from now on. */
  setPhase(phase: string): void {
    this.phase = phase;
    this.kms.ops.phase = phase;
    this.leader.ops.phase = phase;
    for (const c of this.cameras.values()) c.ops.phase = phase;
  }

  /** An attacker (or a test) puts raw bytes on the network, then the network runs to quiescence. */
  inject(from: string, to: readonly string[], bytes: Uint8Array): void {
    this.queue.push({ from, to, bytes });
    this.run();
  }

  /** True when the leader and every camera on the network hold the KMS's key and the rosters agree. */
  consistent(): boolean {
    const k = this.kms.groupKey(this.ID_G1);
    if (k === undefined) return false;
    const holders = [this.leader.groupKey, ...[...this.cameras.values()].map((c) => c.groupKey)];
    const roster = [...this.kms.roster(this.ID_G1)].sort();
    const expected = [LEADER_ID, ...this.cameras.keys()].sort();
    const sameLeaderRoster = [...this.leader.roster].sort().join() === expected.join();
    return holders.every((h) => h !== undefined && bytesEqual(h, k)) && roster.join() === expected.join() && sameLeaderRoster;
  }

  /** Wire records of one message type, oldest first. */
  sent<T extends PaperMessageType>(type: T): (WireRecord & { readonly message: Extract<PaperMessage, { type: T }> })[] {
    return this.wire.filter((r): r is WireRecord & { readonly message: Extract<PaperMessage, { type: T }> } => r.type === type);
  }

  private newKey(ID_IC: string): Uint8Array {
    const K = this.keyRandom(KEY_BYTES);
    this.K_IC.set(ID_IC, K);
    this.kms.registerCamera(ID_IC, K);
    return K;
  }

  private addCamera(ID_IC: string): PaperMember {
    const cam = new PaperMember({ ID_G1: this.ID_G1, ID_IC, K_IC: this.newKey(ID_IC), leader: LEADER_ID, random: seededRandom(`${this.seed}/${ID_IC}`) });
    this.cameras.set(ID_IC, cam);
    return cam;
  }

  private send(from: string, out: readonly Outgoing[]): void {
    for (const o of out) {
      const bytes = encodeMessage(o.message);
      const record: WireRecord = { seq: this.wire.length, phase: this.phase, from, to: o.to, type: o.message.type, bytes, message: o.message };
      this.wire.push(record);
      const deliver = this.tap === undefined ? bytes : this.tap(record);
      if (deliver !== null) this.queue.push({ from, to: o.to, bytes: deliver });
    }
  }

  private role(id: string): { handle(m: PaperMessage): Outgoing[] } | undefined {
    if (id === KMS_ID) return this.kms;
    if (id === LEADER_ID) return this.leader;
    return this.cameras.get(id);
  }

  private run(): void {
    for (let item = this.queue.shift(); item !== undefined; item = this.queue.shift()) {
      for (const to of item.to) {
        const role = this.role(to);
        if (role === undefined) continue; // not on the network (departed, or never was)
        let m: PaperMessage;
        try {
          m = decodeMessage(item.bytes);
        } catch (e) {
          if (!(e instanceof GroupKeyError)) throw e;
          this.refusals.push({ at: to, type: 'undecodable', error: e });
          continue;
        }
        try {
          this.send(to, role.handle(m));
        } catch (e) {
          if (!(e instanceof GroupKeyError)) throw e;
          this.refusals.push({ at: to, type: m.type, error: e });
        }
      }
    }
  }
}
