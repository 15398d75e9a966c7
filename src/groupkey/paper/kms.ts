/**
 * The paper's key management server (KMS, "ICM" in its formulas). It shares K_IC with every camera and GK1 with
 * every group's leader, checks a group's XOR aggregate MAC_G1 (§4.1.1 step 3), makes and hands out the group key
 * — GSK = h(MAC_G1 ‖ r_G1 ‖ r_ICM) to every camera under its K_IC in a distribution and in Scheme 1, or in
 * Scheme 2 GSK_new = h(GSK ‖ r_G1 ‖ MAC_x), only to a new camera — and checks the aggregate ACK_G1.
 *
 * Reading R21: the KMS takes the new key and roster when it sends them (step 4); the ACK only confirms
 * (`ackStatus`). Reading R22: it checks what the paper says it checks (MAC_G1, ACK_G1) and nothing else — no
 * record of random values already seen, no check of a join or leave against its roster — so a replayed
 * aggregate is accepted (A4, A5). A pure state machine; this is the INSECURE baseline (docs/group-keys-paper.md).
 */
import { ErrorCodes, GroupKeyError } from '../../errors.js';
import { ackG1, ackIC, authICM, egskIC, egskNew, gskG1, gskNew, macG1, macIC, macICM, openErG1 } from './formulas.js';
import type { PaperScheme } from './leader.js';
import type { GroupAck, GroupAuth, KeyDelivery, Outgoing, PaperMessage, RefreshAuth } from './messages.js';
import { CountingPrimitives, OpCounter } from './ops.js';
import { bytesEqual, idBytes, KEY_BYTES, R_BYTES } from './primitives.js';
import type { Random } from './primitives.js';

export interface PaperKmsOptions {
  /** ID_ICM: the KMS's identifier (its address, and an input of MAC_ICM / Auth_ICM). */
  readonly ID_ICM: string;
  readonly random: Random;
}

export interface PaperGroupRegistration {
  readonly ID_G1: string;
  readonly scheme: PaperScheme;
  /** GK1, shared with the leader. */
  readonly GK1: Uint8Array;
  /** The leader camera's identifier: where the KMS answers. */
  readonly leader: string;
}

/** One group's KMS state as plain JSON data (secret: GK1 and GSK), for a service to persist. */
export interface PaperKmsGroupState {
  readonly version: 1;
  readonly ID_G1: string;
  readonly scheme: PaperScheme;
  readonly GK1: string;
  readonly leader: string;
  readonly roster: readonly string[];
  readonly GSK: string | null;
  readonly ack: { readonly r: string; readonly roster: readonly string[]; readonly GSK: string } | null;
  readonly ackStatus: AckStatus;
}

/** none: no key yet; pending: keys sent, ACK_G1 not yet checked; confirmed / failed: the last ACK_G1's verdict. */
export type AckStatus = 'none' | 'pending' | 'confirmed' | 'failed';

interface GroupRecord {
  readonly scheme: PaperScheme;
  readonly GK1: Uint8Array;
  readonly leader: string;
  roster: readonly string[];
  GSK: Uint8Array | undefined;
  /** What the next ACK_G1 must fold to: r (r_ICM or r_G1) over ACK_IC of `roster` under `GSK`. */
  ack: { readonly r: Uint8Array; readonly roster: readonly string[]; readonly GSK: Uint8Array } | undefined;
  ackStatus: AckStatus;
}

function refuse(message: string): GroupKeyError {
  return new GroupKeyError(ErrorCodes.GROUPKEY_REFUSED, `KMS: ${message}`);
}

export class PaperKms {
  readonly ID_ICM: string;
  /** The KMS's E, D, H and ⊕ counts. */
  readonly ops: OpCounter;
  private readonly p: CountingPrimitives;
  private readonly cameras = new Map<string, Uint8Array>();
  private readonly groups = new Map<string, GroupRecord>();

  constructor(o: PaperKmsOptions) {
    idBytes(o.ID_ICM);
    this.ID_ICM = o.ID_ICM;
    this.ops = new OpCounter();
    this.p = new CountingPrimitives(o.random, this.ops);
  }

  /** K_IC of a camera, shared out of band (the paper assumes it). */
  registerCamera(ID_IC: string, K_IC: Uint8Array): void {
    idBytes(ID_IC);
    if (K_IC.length !== KEY_BYTES) throw refuse(`K_IC of ${ID_IC}: ${K_IC.length} bytes`);
    this.cameras.set(ID_IC, Uint8Array.from(K_IC));
  }

  registerGroup(g: PaperGroupRegistration): void {
    idBytes(g.ID_G1);
    idBytes(g.leader);
    if (g.GK1.length !== KEY_BYTES) throw refuse(`GK1 of ${g.ID_G1}: ${g.GK1.length} bytes`);
    this.groups.set(g.ID_G1, { scheme: g.scheme, GK1: Uint8Array.from(g.GK1), leader: g.leader, roster: [], GSK: undefined, ack: undefined, ackStatus: 'none' });
  }

  /** Whether a group is registered. */
  hasGroup(ID_G1: string): boolean {
    return this.groups.has(ID_G1);
  }

  /** Whether a camera's K_IC is registered. */
  hasCamera(ID_IC: string): boolean {
    return this.cameras.has(ID_IC);
  }

  /** A group's state, to persist (not part of the paper: the paper says nothing about restarts). */
  exportGroup(ID_G1: string): PaperKmsGroupState {
    const g = this.group(ID_G1);
    const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
    return {
      version: 1,
      ID_G1,
      scheme: g.scheme,
      GK1: hex(g.GK1),
      leader: g.leader,
      roster: [...g.roster],
      GSK: g.GSK === undefined ? null : hex(g.GSK),
      ack: g.ack === undefined ? null : { r: hex(g.ack.r), roster: [...g.ack.roster], GSK: hex(g.ack.GSK) },
      ackStatus: g.ackStatus,
    };
  }

  /** Restores a group exported by `exportGroup` (its cameras' K_IC are registered separately). */
  importGroup(s: PaperKmsGroupState): void {
    if (s.version !== 1) throw refuse(`group state version ${String(s.version)}`);
    const bytes = (h: string, what: string): Uint8Array => {
      const b = Uint8Array.from(Buffer.from(h, 'hex'));
      if (b.length !== KEY_BYTES && what !== 'r') throw refuse(`group state: ${what} of ${b.length} bytes`);
      return b;
    };
    this.registerGroup({ ID_G1: s.ID_G1, scheme: s.scheme, GK1: bytes(s.GK1, 'GK1'), leader: s.leader });
    const g = this.group(s.ID_G1);
    g.roster = [...s.roster];
    g.GSK = s.GSK === null ? undefined : bytes(s.GSK, 'GSK');
    g.ack = s.ack === null ? undefined : { r: bytes(s.ack.r, 'r'), roster: [...s.ack.roster], GSK: bytes(s.ack.GSK, 'GSK') };
    g.ackStatus = s.ackStatus;
  }

  /** The KMS's current group key (a copy), or undefined before the first distribution. */
  groupKey(ID_G1: string): Uint8Array | undefined {
    const k = this.group(ID_G1).GSK;
    return k === undefined ? undefined : Uint8Array.from(k);
  }

  roster(ID_G1: string): readonly string[] {
    return [...this.group(ID_G1).roster];
  }

  ackStatus(ID_G1: string): AckStatus {
    return this.group(ID_G1).ackStatus;
  }

  handle(m: PaperMessage): Outgoing[] {
    switch (m.type) {
      case 'GroupAuth':
        return this.onGroupAuth(m);
      case 'GroupAck':
        this.onGroupAck(m);
        return [];
      default:
        throw refuse(`the KMS does not handle ${m.type}`);
    }
  }

  private group(ID_G1: string): GroupRecord {
    const g = this.groups.get(ID_G1);
    if (g === undefined) throw refuse(`unknown group ${ID_G1}`);
    return g;
  }

  private key(ID_IC: string): Uint8Array {
    const k = this.cameras.get(ID_IC);
    if (k === undefined) throw refuse(`unknown camera ${ID_IC}`);
    return k;
  }

  /**
   * §4.1.1 step 3 (also §4.1.2/§4.1.3 "the same at step 3", §4.2.2/§4.2.3 step 3): r_G1 = D_GK1(Er_G1); recompute
   * every MAC_IC = h(ID_G1 ‖ ID_IC ‖ r_IC ‖ K_IC) from the M_IC received and compare
   * MAC_IC1 ⊕ … ⊕ r_G1 with MAC_G1. Then step 4 of the distribution / Scheme 1, or of Scheme 2.
   */
  private onGroupAuth(m: GroupAuth): Outgoing[] {
    const g = this.group(m.ID_G1);
    const M = m.AuthM_G1.M;
    if (M.some((mic) => mic.ID_G1 !== m.ID_G1)) throw refuse('an M_IC names another group');
    const ids = M.map((mic) => mic.ID_IC);
    if (new Set(ids).size !== ids.length) throw refuse('AuthM_G1 names a camera twice');
    const keys = M.map((mic) => this.key(mic.ID_IC));
    const requests = M.map((mic) => mic.request);
    const op = requests.every((r) => r === null) ? 'distribution' : M.length === 1 ? (requests[0] === 'join_request' ? 'join' : 'leave') : undefined;
    if (op === undefined) throw refuse('AuthM_G1 mixes a join or leave request with other cameras');
    if (g.scheme === 2 && op !== 'distribution' && g.GSK === undefined) throw refuse(`a Scheme 2 ${op} before any distribution`);

    const r_G1 = openErG1(this.p, g.GK1, m.Er_G1);
    const macs = M.map((mic, i) => macIC(this.p, mic.ID_G1, mic.ID_IC, mic.r_IC, keys[i] as Uint8Array));
    if (!bytesEqual(macG1(this.p, macs, r_G1), m.AuthM_G1.MAC_G1)) throw refuse('MAC_G1 does not verify (§4.1.1 step 3)');

    const subject = ids[0] as string;
    const roster = op === 'distribution' ? ids : op === 'join' ? (g.roster.includes(subject) ? g.roster : [...g.roster, subject]) : g.roster.filter((id) => id !== subject);
    if (g.scheme === 1 || op === 'distribution') return this.distributeKey(m.ID_G1, g, m.AuthM_G1.MAC_G1, r_G1, roster);
    return this.refreshKey(m.ID_G1, g, r_G1, macs[0] as Uint8Array, op === 'join' ? subject : null, roster);
  }

  /**
   * §4.1.1 step 4 (and Scheme 1 join/leave, Reading R10): GSK_G1 = h(MAC_G1 ‖ r_G1 ‖ r_ICM) (R6), EGSK_IC =
   * E_K_IC(GSK_G1) for every camera of the new roster, MAC_ICM = h(ID_ICM ‖ r_ICM ‖ r_G1), Auth_ICM = (r_ICM ‖ MAC_ICM).
   */
  private distributeKey(ID_G1: string, g: GroupRecord, MAC_G1: Uint8Array, r_G1: Uint8Array, roster: readonly string[]): Outgoing[] {
    const r_ICM = this.p.random(R_BYTES);
    const GSK = gskG1(this.p, MAC_G1, r_G1, r_ICM);
    const EGSK = roster.map((ID_IC) => ({ ID_IC, EGSK_IC: egskIC(this.p, this.key(ID_IC), GSK) }));
    const MAC_ICM = macICM(this.p, this.ID_ICM, r_ICM, r_G1);
    this.commit(g, GSK, roster, r_ICM);
    const message: KeyDelivery = { type: 'KeyDelivery', ID_G1, Auth_ICM: { r_ICM, MAC_ICM }, EGSK };
    return [{ to: [g.leader], message }];
  }

  /**
   * Scheme 2, §4.2.2 step 4 / §4.2.3 step 4: GSK_new = h(GSK ‖ r_G1 ‖ MAC_x) from the KMS's current key (R14);
   * on a join EGSK_IC_new = E_K_IC_new(GSK_new ‖ MAC_IC_new); Auth_ICM = h(ID_ICM ‖ GSK_new ‖ r_G1). A leave sends
   * no EGSK (R20).
   */
  private refreshKey(ID_G1: string, g: GroupRecord, r_G1: Uint8Array, MAC_x: Uint8Array, newCamera: string | null, roster: readonly string[]): Outgoing[] {
    const GSK_new = gskNew(this.p, g.GSK as Uint8Array, r_G1, MAC_x);
    const EGSK_new = newCamera === null ? null : { ID_IC: newCamera, EGSK_IC: egskNew(this.p, this.key(newCamera), GSK_new, MAC_x) };
    const Auth_ICM = authICM(this.p, this.ID_ICM, GSK_new, r_G1);
    this.commit(g, GSK_new, roster, r_G1);
    const message: RefreshAuth = { type: 'RefreshAuth', ID_G1, Auth_ICM, EGSK_new };
    return [{ to: [g.leader], message }];
  }

  private commit(g: GroupRecord, GSK: Uint8Array, roster: readonly string[], r: Uint8Array): void {
    g.GSK = GSK;
    g.roster = [...roster];
    g.ack = { r, roster: [...roster], GSK };
    g.ackStatus = 'pending';
  }

  /**
   * §4.1.1 step 8 (§4.2.2 step 10, §4.2.3 step 9): recompute every ACK_IC = h(ID_G1 ‖ ID_IC ‖ GSK) of the roster,
   * XOR them out of ACK_G1 and compare what is left with the r the KMS expects (r_ICM, or r_G1 in Scheme 2; R9, R19).
   */
  private onGroupAck(m: GroupAck): void {
    const g = this.group(m.ID_G1);
    const a = g.ack;
    if (a === undefined) throw refuse(`ACK_G1 for ${m.ID_G1}, but no key is waiting for one`);
    const acks = a.roster.map((id) => ackIC(this.p, m.ID_G1, id, a.GSK));
    const r = ackG1(this.p, acks, m.ACK_G1);
    if (!bytesEqual(r, a.r)) {
      g.ackStatus = 'failed';
      throw refuse('ACK_G1 does not verify: some camera does not hold the key (§4.1.1 step 8)');
    }
    g.ack = undefined;
    g.ackStatus = 'confirmed';
  }
}
