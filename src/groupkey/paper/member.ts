/**
 * A camera of the paper's group, IC_G1x — also the new camera NIC_G1 (join) and the old camera OIC_G1 (leave).
 * A pure state machine: step methods start a phase, `handle` takes one message and returns the messages to send.
 * It holds its identifier, its symmetric key K_IC shared with the KMS and, once it has one, the group key GSK_G1.
 *
 * What it checks is what the paper has it check, no more (Reading R22): a Scheme 2 refresh only through Hngk,
 * a new camera's key only through the MAC_IC_new inside it, and a Scheme 1 / distribution key not at all —
 * EGSK_IC = E_K_IC(GSK) carries nothing to check, so any such message, old or tampered, is installed (A4, A6).
 * This is the INSECURE baseline (docs/group-keys-paper.md).
 */
import { ErrorCodes, GroupKeyError } from '../../errors.js';
import { ackIC, gskNew, hngk, macIC, openEgskIC, openEgskNew, openEngk } from './formulas.js';
import type { PaperRequest } from './formulas.js';
import type { MemberAuth, MemberKey, NewMemberKey, Outgoing, PaperMessage, Refresh } from './messages.js';
import { CountingPrimitives, OpCounter } from './ops.js';
import { bytesEqual, idBytes, KEY_BYTES, R_BYTES } from './primitives.js';
import type { Random } from './primitives.js';

export interface PaperMemberOptions {
  readonly ID_G1: string;
  readonly ID_IC: string;
  /** K_IC: this camera's symmetric key shared with the KMS (32 bytes). */
  readonly K_IC: Uint8Array;
  /** The leader camera's identifier: where this camera sends its messages. */
  readonly leader: string;
  readonly random: Random;
}

function refuse(who: string, message: string): GroupKeyError {
  return new GroupKeyError(ErrorCodes.GROUPKEY_REFUSED, `${who}: ${message}`);
}

export class PaperMember {
  readonly ID_G1: string;
  readonly ID_IC: string;
  readonly leader: string;
  /** This camera's E, D, H and ⊕ counts. */
  readonly ops: OpCounter;
  private readonly p: CountingPrimitives;
  private readonly K_IC: Uint8Array;
  private GSK: Uint8Array | undefined;
  /** MAC_IC_new of this camera's own join request, until its key arrives (Scheme 2 checks it, Reading R15). */
  private pendingJoinMac: Uint8Array | undefined;
  private left = false;

  constructor(o: PaperMemberOptions) {
    idBytes(o.ID_G1);
    idBytes(o.ID_IC);
    idBytes(o.leader);
    if (o.K_IC.length !== KEY_BYTES) throw refuse(o.ID_IC, `K_IC of ${o.K_IC.length} bytes`);
    this.ID_G1 = o.ID_G1;
    this.ID_IC = o.ID_IC;
    this.leader = o.leader;
    this.K_IC = Uint8Array.from(o.K_IC);
    this.ops = new OpCounter();
    this.p = new CountingPrimitives(o.random, this.ops);
  }

  /** The group key this camera holds now (a copy), or undefined. A camera that left keeps its last key. */
  get groupKey(): Uint8Array | undefined {
    return this.GSK === undefined ? undefined : Uint8Array.from(this.GSK);
  }

  get hasLeft(): boolean {
    return this.left;
  }

  /** §4.1.1 step 1: M_IC = (ID_G1 ‖ ID_IC ‖ r_IC), MAC_IC = h(ID_G1 ‖ ID_IC ‖ r_IC ‖ K_IC), sent to the leader. */
  startDistribution(): Outgoing[] {
    return [this.auth(null)];
  }

  /** §4.1.2 / §4.2.2 step 1 (NIC): MAC_IC_new and M_IC_new = (ID_G1 ‖ ID_IC_new ‖ r_IC_new ‖ join_request). */
  requestJoin(): Outgoing[] {
    const out = this.auth('join_request');
    this.pendingJoinMac = (out.message as MemberAuth).MAC_IC;
    return [out];
  }

  /**
   * §4.1.3 / §4.2.3 step 1 (OIC): MAC_IC_old and M_IC_old = (… ‖ leave_request). Reading R11: the paper's "to
   * join the group" here means to leave it. From now on the camera handles nothing, but keeps its last key.
   */
  requestLeave(): Outgoing[] {
    if (this.left) throw refuse(this.ID_IC, 'has already left');
    const out = this.auth('leave_request');
    this.left = true;
    return [out];
  }

  handle(m: PaperMessage): Outgoing[] {
    if (this.left) throw refuse(this.ID_IC, `has left the group and handles no ${m.type}`);
    switch (m.type) {
      case 'MemberKey':
        return this.onMemberKey(m);
      case 'NewMemberKey':
        return this.onNewMemberKey(m);
      case 'Refresh':
        return this.onRefresh(m);
      default:
        throw refuse(this.ID_IC, `a camera does not handle ${m.type}`);
    }
  }

  private auth(request: PaperRequest | null): Outgoing {
    const r_IC = this.p.random(R_BYTES);
    const MAC_IC = macIC(this.p, this.ID_G1, this.ID_IC, r_IC, this.K_IC);
    const message: MemberAuth = { type: 'MemberAuth', M_IC: { ID_G1: this.ID_G1, ID_IC: this.ID_IC, r_IC, request }, MAC_IC };
    return { to: [this.leader], message };
  }

  private checkAddress(m: { readonly ID_G1: string; readonly ID_IC?: string }): void {
    if (m.ID_G1 !== this.ID_G1) throw refuse(this.ID_IC, `message for group ${m.ID_G1}`);
    if (m.ID_IC !== undefined && m.ID_IC !== this.ID_IC) throw refuse(this.ID_IC, `message for camera ${m.ID_IC}`);
  }

  /** §4.1.1 step 5: GSK_G1 = D_K_IC(EGSK_IC) — nothing to verify; then step 6. */
  private onMemberKey(m: MemberKey): Outgoing[] {
    this.checkAddress(m);
    this.GSK = openEgskIC(this.p, this.K_IC, m.EGSK_IC);
    this.pendingJoinMac = undefined;
    return [this.ack()];
  }

  /** §4.2.2 step 6: (GSK_new ‖ MAC_IC_new) = D_K_IC_new(EGSK_IC_new); the MAC must be this camera's own (R15). */
  private onNewMemberKey(m: NewMemberKey): Outgoing[] {
    this.checkAddress(m);
    const mine = this.pendingJoinMac;
    if (mine === undefined) throw refuse(this.ID_IC, 'a new-member key, but no join of ours is pending');
    const { GSK_new, MAC_new } = openEgskNew(this.p, this.K_IC, m.EGSK_IC);
    if (!bytesEqual(MAC_new, mine)) throw refuse(this.ID_IC, 'EGSK_IC_new does not carry our MAC_IC_new (§4.2.2 step 6)');
    this.GSK = GSK_new;
    this.pendingJoinMac = undefined;
    return [this.ack()];
  }

  /**
   * §4.2.2 step 8 / §4.2.3 step 7: (r_G1 ‖ MAC_x) = D_GSK(Engk), GSK_new = h(GSK ‖ r_G1 ‖ MAC_x), verify
   * Hngk = h(GSK_new ‖ GSK ‖ ID_G1); refused, with the key unchanged, when it differs (Reading R17). Then the ACK.
   */
  private onRefresh(m: Refresh): Outgoing[] {
    this.checkAddress(m);
    const GSK = this.GSK;
    if (GSK === undefined) throw refuse(this.ID_IC, 'a refresh, but no group key to open it with');
    const { r_G1, MAC_x } = openEngk(this.p, GSK, m.Engk_GSK);
    const GSK_new = gskNew(this.p, GSK, r_G1, MAC_x);
    if (!bytesEqual(hngk(this.p, GSK_new, GSK, this.ID_G1), m.Hngk_GSK)) throw refuse(this.ID_IC, 'Hngk does not verify (§4.2.2 step 8)');
    this.GSK = GSK_new;
    return [this.ack()];
  }

  /** §4.1.1 step 6 (and §4.2.2 step 9, §4.2.3 step 8 with the new key, R18): ACK_IC = h(ID_G1 ‖ ID_IC ‖ GSK). */
  private ack(): Outgoing {
    const GSK = this.GSK as Uint8Array;
    return { to: [this.leader], message: { type: 'MemberAck', ID_G1: this.ID_G1, ID_IC: this.ID_IC, ACK_IC: ackIC(this.p, this.ID_G1, this.ID_IC, GSK) } };
  }
}
