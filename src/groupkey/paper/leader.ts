/**
 * The paper's group leader camera GLIC_G1: it forms the group, authenticates it to the KMS with the XOR
 * aggregate AuthM_G1 and Er_G1 = E_GK1(r_G1), checks the KMS's answer (MAC_ICM in Scheme 1, Auth_ICM in
 * Scheme 2), hands out the keys, and folds the cameras' ACKs into ACK_G1. In Scheme 2 it also derives the next
 * group key itself, GSK_new = h(GSK ‖ r_G1 ‖ MAC_x), and multicasts Engk/Hngk under the old key.
 *
 * Reading R8: the leader is itself a camera of the group with its own ID_IC and K_IC — it puts its own M_IC into
 * AuthM_G1, opens its own EGSK_IC and adds its own ACK_IC (step 7: "The GLIC generates an ACK_IC …"); those
 * operations are counted as the leader's. Reading R23: one operation at a time, and a join of a current member,
 * a leave of a non-member and a leave of the leader itself (undefined in the paper) are refused.
 * A pure state machine; this is the INSECURE baseline (docs/group-keys-paper.md).
 */
import { ErrorCodes, GroupKeyError } from '../../errors.js';
import { ackG1, ackIC, authICM, engk, erG1, gskNew, hngk, macG1, macIC, macICM, openEgskIC } from './formulas.js';
import type { GroupAuth, KeyDelivery, MemberAck, MemberAuth, Outgoing, PaperMessage, Refresh, RefreshAuth } from './messages.js';
import { CountingPrimitives, OpCounter } from './ops.js';
import { bytesEqual, idBytes, KEY_BYTES, R_BYTES } from './primitives.js';
import type { Random } from './primitives.js';

/** Scheme 1: the KMS makes every new key. Scheme 2: the leader refreshes by hashing (§4.2). */
export type PaperScheme = 1 | 2;

export interface PaperLeaderOptions {
  readonly ID_G1: string;
  /** The leader camera's own identifier. */
  readonly ID_IC: string;
  /** The leader camera's own K_IC shared with the KMS. */
  readonly K_IC: Uint8Array;
  /** GK1: the key shared by the leader and the KMS. */
  readonly GK1: Uint8Array;
  /** The KMS's identifier ID_ICM (its address, and an input of MAC_ICM / Auth_ICM). */
  readonly kms: string;
  readonly scheme: PaperScheme;
  readonly random: Random;
}

type LeaderState =
  | { readonly kind: 'idle' }
  | { readonly kind: 'collecting'; readonly expected: readonly string[]; readonly got: Map<string, MemberAuth>; readonly own: MemberAuth }
  | { readonly kind: 'awaitingKeys'; readonly r_G1: Uint8Array }
  | { readonly kind: 'awaitingRefreshAuth'; readonly r_G1: Uint8Array; readonly GSK_new: Uint8Array; readonly MAC_x: Uint8Array; readonly op: 'join' | 'leave'; readonly subject: string }
  | { readonly kind: 'collectingAcks'; readonly r: Uint8Array; readonly expected: readonly string[]; readonly got: Map<string, Uint8Array> };

export type LeaderStateKind = LeaderState['kind'];

export class PaperLeader {
  readonly ID_G1: string;
  readonly ID_IC: string;
  readonly kms: string;
  readonly scheme: PaperScheme;
  /** The leader camera's E, D, H and ⊕ counts (its own camera duties included, R8). */
  readonly ops: OpCounter;
  private readonly p: CountingPrimitives;
  private readonly K_IC: Uint8Array;
  private readonly GK1: Uint8Array;
  private GSK: Uint8Array | undefined;
  private members: string[] = [];
  private state: LeaderState = { kind: 'idle' };

  constructor(o: PaperLeaderOptions) {
    idBytes(o.ID_G1);
    idBytes(o.ID_IC);
    idBytes(o.kms);
    this.ID_G1 = o.ID_G1;
    this.ID_IC = o.ID_IC;
    this.kms = o.kms;
    if (o.K_IC.length !== KEY_BYTES || o.GK1.length !== KEY_BYTES) throw this.refuse('K_IC and GK1 must be 32 bytes');
    this.scheme = o.scheme;
    this.K_IC = Uint8Array.from(o.K_IC);
    this.GK1 = Uint8Array.from(o.GK1);
    this.ops = new OpCounter();
    this.p = new CountingPrimitives(o.random, this.ops);
  }

  get groupKey(): Uint8Array | undefined {
    return this.GSK === undefined ? undefined : Uint8Array.from(this.GSK);
  }

  /** The cameras the leader counts as the group, itself first. */
  get roster(): readonly string[] {
    return [...this.members];
  }

  get stateKind(): LeaderStateKind {
    return this.state.kind;
  }

  /**
   * §4.1.1: the leader forms a group of `memberIds` (Reading R27) and starts collecting their step-1 messages;
   * its own M_IC and MAC_IC are made now. With no other member it goes straight to step 2.
   */
  startDistribution(memberIds: readonly string[]): Outgoing[] {
    if (this.state.kind !== 'idle') throw this.refuse(`busy (${this.state.kind})`);
    for (const id of memberIds) idBytes(id);
    if (new Set([this.ID_IC, ...memberIds]).size !== memberIds.length + 1) throw this.refuse('member list repeats a camera or names the leader');
    const r_IC = this.p.random(R_BYTES);
    const own: MemberAuth = { type: 'MemberAuth', M_IC: { ID_G1: this.ID_G1, ID_IC: this.ID_IC, r_IC, request: null }, MAC_IC: macIC(this.p, this.ID_G1, this.ID_IC, r_IC, this.K_IC) };
    this.state = { kind: 'collecting', expected: [...memberIds], got: new Map(), own };
    return memberIds.length === 0 ? this.distributionStep2() : [];
  }

  handle(m: PaperMessage): Outgoing[] {
    switch (m.type) {
      case 'MemberAuth':
        return this.onMemberAuth(m);
      case 'KeyDelivery':
        return this.onKeyDelivery(m);
      case 'RefreshAuth':
        return this.onRefreshAuth(m);
      case 'MemberAck':
        return this.onMemberAck(m);
      default:
        throw this.refuse(`the leader does not handle ${m.type}`);
    }
  }

  private refuse(message: string): GroupKeyError {
    return new GroupKeyError(ErrorCodes.GROUPKEY_REFUSED, `leader ${this.ID_IC}: ${message}`);
  }

  private checkGroup(ID_G1: string): void {
    if (ID_G1 !== this.ID_G1) throw this.refuse(`message for group ${ID_G1}`);
  }

  private onMemberAuth(m: MemberAuth): Outgoing[] {
    const id = m.M_IC.ID_IC;
    this.checkGroup(m.M_IC.ID_G1);
    if (m.M_IC.request === null) {
      const s = this.state;
      if (s.kind !== 'collecting') throw this.refuse(`step-1 message from ${id} while ${s.kind}`);
      if (!s.expected.includes(id)) throw this.refuse(`${id} is not in the group being formed`);
      if (s.got.has(id)) throw this.refuse(`second step-1 message from ${id}`);
      s.got.set(id, m);
      return s.got.size === s.expected.length ? this.distributionStep2() : [];
    }
    if (this.state.kind !== 'idle') throw this.refuse(`${m.M_IC.request} from ${id} while ${this.state.kind}`);
    if (this.GSK === undefined) throw this.refuse(`${m.M_IC.request} before the group has a key`);
    if (m.M_IC.request === 'join_request' && this.members.includes(id)) throw this.refuse(`${id} is already a member`);
    if (m.M_IC.request === 'leave_request' && (!this.members.includes(id) || id === this.ID_IC)) throw this.refuse(`${id} cannot leave: not a member, or the leader`);
    return this.changeStep2(m);
  }

  /** §4.1.1 step 2: MAC_G1 = MAC_IC1 ⊕ … ⊕ r_G1, AuthM_G1 = (M_IC1 ‖ … ‖ MAC_G1), Er_G1 = E_GK1(r_G1). */
  private distributionStep2(): Outgoing[] {
    const s = this.state;
    if (s.kind !== 'collecting') throw this.refuse('no group being formed');
    const auths = [s.own, ...s.expected.map((id) => s.got.get(id) as MemberAuth)];
    const r_G1 = this.p.random(R_BYTES);
    const MAC_G1 = macG1(this.p, auths.map((a) => a.MAC_IC), r_G1);
    const Er_G1 = erG1(this.p, this.GK1, r_G1);
    this.state = { kind: 'awaitingKeys', r_G1 };
    const message: GroupAuth = { type: 'GroupAuth', ID_G1: this.ID_G1, AuthM_G1: { M: auths.map((a) => a.M_IC), MAC_G1 }, Er_G1 };
    return [{ to: [this.kms], message }];
  }

  /**
   * Step 2 of a join or leave. Scheme 1 (§4.1.2, §4.1.3): MAC_G1 = MAC_x ⊕ r_G1, AuthM_G1 = (M_x ‖ MAC_G1),
   * Er_G1 = E_GK1(r_G1). Scheme 2 (§4.2.2, §4.2.3) first derives GSK_new = h(GSK ‖ r_G1 ‖ MAC_x).
   */
  private changeStep2(m: MemberAuth): Outgoing[] {
    const GSK = this.GSK as Uint8Array;
    const r_G1 = this.p.random(R_BYTES);
    if (this.scheme === 2) {
      const GSK_new = gskNew(this.p, GSK, r_G1, m.MAC_IC);
      this.state = { kind: 'awaitingRefreshAuth', r_G1, GSK_new, MAC_x: m.MAC_IC, op: m.M_IC.request === 'join_request' ? 'join' : 'leave', subject: m.M_IC.ID_IC };
    } else {
      this.state = { kind: 'awaitingKeys', r_G1 };
    }
    const MAC_G1 = macG1(this.p, [m.MAC_IC], r_G1);
    const Er_G1 = erG1(this.p, this.GK1, r_G1);
    const message: GroupAuth = { type: 'GroupAuth', ID_G1: this.ID_G1, AuthM_G1: { M: [m.M_IC], MAC_G1 }, Er_G1 };
    return [{ to: [this.kms], message }];
  }

  /**
   * §4.1.1 step 5 (every distribution, and Scheme 1 joins and leaves, Reading R10): verify
   * MAC_ICM = h(ID_ICM ‖ r_ICM ‖ r_G1), then deliver each EGSK_IC; the leader opens its own and ACKs it.
   */
  private onKeyDelivery(m: KeyDelivery): Outgoing[] {
    const s = this.state;
    this.checkGroup(m.ID_G1);
    if (s.kind !== 'awaitingKeys') throw this.refuse(`KeyDelivery while ${s.kind}`);
    if (!bytesEqual(macICM(this.p, this.kms, m.Auth_ICM.r_ICM, s.r_G1), m.Auth_ICM.MAC_ICM)) throw this.refuse('MAC_ICM does not verify (§4.1.1 step 5)');
    const ids = m.EGSK.map((e) => e.ID_IC);
    if (!ids.includes(this.ID_IC) || new Set(ids).size !== ids.length) throw this.refuse('the EGSK list must name the leader, and every camera once');
    const out: Outgoing[] = [];
    let ownAck: Uint8Array | undefined;
    for (const e of m.EGSK) {
      if (e.ID_IC === this.ID_IC) {
        this.GSK = openEgskIC(this.p, this.K_IC, e.EGSK_IC);
        ownAck = ackIC(this.p, this.ID_G1, this.ID_IC, this.GSK);
      } else {
        out.push({ to: [e.ID_IC], message: { type: 'MemberKey', ID_G1: this.ID_G1, ID_IC: e.ID_IC, EGSK_IC: e.EGSK_IC } });
      }
    }
    this.members = [this.ID_IC, ...ids.filter((id) => id !== this.ID_IC)];
    this.state = { kind: 'collectingAcks', r: m.Auth_ICM.r_ICM, expected: this.members, got: new Map([[this.ID_IC, ownAck as Uint8Array]]) };
    return [...out, ...this.maybeGroupAck()];
  }

  /**
   * Scheme 2, §4.2.2 steps 5–7 / §4.2.3 steps 5–6: verify Auth_ICM = h(ID_ICM ‖ GSK_new ‖ r_G1); on a join forward
   * EGSK_IC_new to the new camera (R15); multicast Engk = E_GSK(r_G1 ‖ MAC_x) under the OLD key (R16) and
   * Hngk = h(GSK_new ‖ GSK ‖ ID_G1) to the existing members; take the new key and ACK it (R18).
   */
  private onRefreshAuth(m: RefreshAuth): Outgoing[] {
    const s = this.state;
    this.checkGroup(m.ID_G1);
    if (s.kind !== 'awaitingRefreshAuth') throw this.refuse(`RefreshAuth while ${s.kind}`);
    if (!bytesEqual(authICM(this.p, this.kms, s.GSK_new, s.r_G1), m.Auth_ICM)) throw this.refuse('Auth_ICM does not verify (§4.2.2 step 5)');
    if (s.op === 'join' ? m.EGSK_new?.ID_IC !== s.subject : m.EGSK_new !== null) throw this.refuse(`RefreshAuth: EGSK_IC_new does not fit the ${s.op} of ${s.subject}`);
    const GSK = this.GSK as Uint8Array;
    const out: Outgoing[] = [];
    if (s.op === 'join' && m.EGSK_new !== null) out.push({ to: [s.subject], message: { type: 'NewMemberKey', ID_G1: this.ID_G1, ID_IC: s.subject, EGSK_IC: m.EGSK_new.EGSK_IC } });
    const refresh: Refresh = { type: 'Refresh', ID_G1: this.ID_G1, Engk_GSK: engk(this.p, GSK, s.r_G1, s.MAC_x), Hngk_GSK: hngk(this.p, s.GSK_new, GSK, this.ID_G1) };
    const recipients = this.members.filter((id) => id !== this.ID_IC && id !== s.subject);
    if (recipients.length > 0) out.push({ to: recipients, message: refresh });
    this.GSK = s.GSK_new;
    this.members = s.op === 'join' ? [...this.members, s.subject] : this.members.filter((id) => id !== s.subject);
    const ownAck = ackIC(this.p, this.ID_G1, this.ID_IC, this.GSK);
    this.state = { kind: 'collectingAcks', r: s.r_G1, expected: this.members, got: new Map([[this.ID_IC, ownAck]]) };
    return [...out, ...this.maybeGroupAck()];
  }

  /** §4.1.1 step 7, §4.2.2 step 10, §4.2.3 step 9: collect every ACK_IC, then ACK_G1 = ACK_IC1 ⊕ … ⊕ r to the KMS. */
  private onMemberAck(m: MemberAck): Outgoing[] {
    const s = this.state;
    this.checkGroup(m.ID_G1);
    if (s.kind !== 'collectingAcks') throw this.refuse(`ACK from ${m.ID_IC} while ${s.kind}`);
    if (!s.expected.includes(m.ID_IC) || s.got.has(m.ID_IC)) throw this.refuse(`unexpected or repeated ACK from ${m.ID_IC}`);
    s.got.set(m.ID_IC, m.ACK_IC);
    return this.maybeGroupAck();
  }

  private maybeGroupAck(): Outgoing[] {
    const s = this.state;
    if (s.kind !== 'collectingAcks' || s.got.size !== s.expected.length) return [];
    const ACK_G1 = ackG1(this.p, s.expected.map((id) => s.got.get(id) as Uint8Array), s.r);
    this.state = { kind: 'idle' };
    return [{ to: [this.kms], message: { type: 'GroupAck', ID_G1: this.ID_G1, ACK_G1 } }];
  }
}
