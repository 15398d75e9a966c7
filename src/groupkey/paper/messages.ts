/**
 * The messages of the paper's §4 (group key distribution §4.1.1, Scheme 1 join/leave §4.1.2–4.1.3, Scheme 2
 * join/leave §4.2.2–4.2.3) as typed values with the paper's field names, and their canonical binary encoding.
 *
 *   message  = version u8 (1) ‖ type u8 ‖ body
 *   id       = u16 BE length (1–255) ‖ UTF-8, well-formed
 *   b32      = 32 bytes (r values, MACs, hashes)
 *   ct32     = 48 bytes: E of a 32-byte value (IV 16 ‖ 32)
 *   ct64     = 80 bytes: E of a 64-byte value (IV 16 ‖ 64)
 *   M_IC     = ID_G1 id ‖ ID_IC id ‖ r_IC b32 ‖ request u8 (0 none, 1 join_request, 2 leave_request)
 *
 *   1 MemberAuth   = M_IC ‖ MAC_IC b32
 *   2 GroupAuth    = ID_G1 id ‖ u16 count ≥ 1 ‖ M_IC × count ‖ MAC_G1 b32 ‖ Er_G1 ct32
 *   3 KeyDelivery  = ID_G1 id ‖ r_ICM b32 ‖ MAC_ICM b32 ‖ u16 count ‖ (ID_IC id ‖ EGSK_IC ct32) × count
 *   4 MemberKey    = ID_G1 id ‖ ID_IC id ‖ EGSK_IC ct32
 *   5 MemberAck    = ID_G1 id ‖ ID_IC id ‖ ACK_IC b32
 *   6 GroupAck     = ID_G1 id ‖ ACK_G1 b32
 *   7 RefreshAuth  = ID_G1 id ‖ Auth_ICM b32 ‖ u8 0 | (u8 1 ‖ ID_IC id ‖ EGSK_IC ct64)
 *   8 NewMemberKey = ID_G1 id ‖ ID_IC id ‖ EGSK_IC ct64
 *   9 Refresh      = ID_G1 id ‖ Engk_GSK ct64 ‖ Hngk_GSK b32
 *
 * Decoding is strict: anything truncated, trailing, of an unknown version, type or request code, with a bad
 * identifier, or whose re-encoding would differ is a GroupKeyError (KF_ERR_GROUPKEY_MESSAGE).
 */
import { ByteReader, ByteWriter, malformed, utf8 } from '../_bytes.js';
import type { PaperRequest } from './formulas.js';
import { HASH_BYTES, IV_BYTES, MAX_ID_BYTES, R_BYTES } from './primitives.js';

export const MESSAGE_VERSION = 1;
export const CT32_BYTES = IV_BYTES + 32;
export const CT64_BYTES = IV_BYTES + 64;

/** M_IC = (ID_G1 ‖ ID_IC ‖ r_IC) — §4.1.1 step 1 — plus `join_request` / `leave_request` for §4.1.2/§4.1.3 step 1. */
export interface MIC {
  readonly ID_G1: string;
  readonly ID_IC: string;
  readonly r_IC: Uint8Array;
  readonly request: PaperRequest | null;
}

/** Camera → leader, (M_IC, MAC_IC): §4.1.1 step 1, §4.1.2/§4.2.2 step 1 (NIC, join_request), §4.1.3/§4.2.3 step 1 (OIC, leave_request). */
export interface MemberAuth {
  readonly type: 'MemberAuth';
  readonly M_IC: MIC;
  readonly MAC_IC: Uint8Array;
}

/** AuthM_G1 = (M_IC1 ‖ … ‖ M_ICx ‖ MAC_G1). */
export interface AuthM {
  readonly M: readonly MIC[];
  readonly MAC_G1: Uint8Array;
}

/** Leader → KMS, (AuthM_G1, Er_G1): step 2 of §4.1.1, §4.1.2, §4.1.3, §4.2.2, §4.2.3. */
export interface GroupAuth {
  readonly type: 'GroupAuth';
  readonly ID_G1: string;
  readonly AuthM_G1: AuthM;
  readonly Er_G1: Uint8Array;
}

/** EGSK_IC for one camera. */
export interface EgskEntry {
  readonly ID_IC: string;
  readonly EGSK_IC: Uint8Array;
}

/** KMS → leader, (Auth_ICM = (r_ICM ‖ MAC_ICM), EGSK_IC …): §4.1.1 step 4, and Scheme 1 join/leave via "same as step 3". */
export interface KeyDelivery {
  readonly type: 'KeyDelivery';
  readonly ID_G1: string;
  readonly Auth_ICM: { readonly r_ICM: Uint8Array; readonly MAC_ICM: Uint8Array };
  readonly EGSK: readonly EgskEntry[];
}

/** Leader → camera, EGSK_IC: §4.1.1 step 5. */
export interface MemberKey {
  readonly type: 'MemberKey';
  readonly ID_G1: string;
  readonly ID_IC: string;
  readonly EGSK_IC: Uint8Array;
}

/** Camera → leader, ACK_IC: §4.1.1 step 6, §4.2.2 step 9, §4.2.3 step 8. */
export interface MemberAck {
  readonly type: 'MemberAck';
  readonly ID_G1: string;
  readonly ID_IC: string;
  readonly ACK_IC: Uint8Array;
}

/** Leader → KMS, ACK_G1: §4.1.1 step 7, §4.2.2 step 10, §4.2.3 step 9. */
export interface GroupAck {
  readonly type: 'GroupAck';
  readonly ID_G1: string;
  readonly ACK_G1: Uint8Array;
}

/** KMS → leader, (Auth_ICM, EGSK_IC_new): Scheme 2, §4.2.2 step 4 (join) and §4.2.3 step 4 (leave: no EGSK, Reading R20). */
export interface RefreshAuth {
  readonly type: 'RefreshAuth';
  readonly ID_G1: string;
  readonly Auth_ICM: Uint8Array;
  readonly EGSK_new: EgskEntry | null;
}

/** Leader → new camera, EGSK_IC_new: Scheme 2, §4.2.2 steps 5–6 (the forwarding is unwritten, Reading R15). */
export interface NewMemberKey {
  readonly type: 'NewMemberKey';
  readonly ID_G1: string;
  readonly ID_IC: string;
  readonly EGSK_IC: Uint8Array;
}

/** Leader → existing members, (Engk_GSK, Hngk_GSK): Scheme 2, §4.2.2 step 7, §4.2.3 step 6. */
export interface Refresh {
  readonly type: 'Refresh';
  readonly ID_G1: string;
  readonly Engk_GSK: Uint8Array;
  readonly Hngk_GSK: Uint8Array;
}

export type PaperMessage = MemberAuth | GroupAuth | KeyDelivery | MemberKey | MemberAck | GroupAck | RefreshAuth | NewMemberKey | Refresh;
export type PaperMessageType = PaperMessage['type'];

export const MESSAGE_TYPES: readonly PaperMessageType[] = ['MemberAuth', 'GroupAuth', 'KeyDelivery', 'MemberKey', 'MemberAck', 'GroupAck', 'RefreshAuth', 'NewMemberKey', 'Refresh'];

const TYPE_CODE: Readonly<Record<PaperMessageType, number>> = {
  MemberAuth: 1,
  GroupAuth: 2,
  KeyDelivery: 3,
  MemberKey: 4,
  MemberAck: 5,
  GroupAck: 6,
  RefreshAuth: 7,
  NewMemberKey: 8,
  Refresh: 9,
};

const REQUEST_CODE: readonly (PaperRequest | null)[] = [null, 'join_request', 'leave_request'];

const bad = malformed;

class Writer extends ByteWriter {
  override u16(v: number): this {
    if (v > 0xffff) throw bad(`count ${v} exceeds 65535`);
    return super.u16(v);
  }

  id(s: string): void {
    const b = utf8.encode(s);
    if (b.length === 0 || b.length > MAX_ID_BYTES) throw bad(`identifier of ${b.length} bytes (must be 1–${MAX_ID_BYTES})`);
    this.u16(b.length);
    this.chunks.push(b);
  }

  mic(m: MIC): void {
    this.id(m.ID_G1);
    this.id(m.ID_IC);
    this.fixed(m.r_IC, R_BYTES, 'r_IC');
    this.u8(REQUEST_CODE.indexOf(m.request));
  }
}

class Reader extends ByteReader {
  id(what: string): string {
    const at = this.p;
    const n = this.u16(what);
    if (n === 0 || n > MAX_ID_BYTES) throw bad(`${what}: identifier of ${n} bytes (must be 1–${MAX_ID_BYTES})`, at);
    return this.text(n, what, at);
  }

  mic(): MIC {
    const ID_G1 = this.id('M_IC.ID_G1');
    const ID_IC = this.id('M_IC.ID_IC');
    const r_IC = this.fixed(R_BYTES, 'M_IC.r_IC');
    const at = this.p;
    const code = this.u8('M_IC.request');
    const request = REQUEST_CODE[code];
    if (request === undefined) throw bad(`M_IC.request: unknown code ${code}`, at);
    return { ID_G1, ID_IC, r_IC, request };
  }

  end(): void {
    this.expectEnd('');
  }
}

/** Canonical bytes of a message. A field of the wrong size or an identifier out of range is a GroupKeyError. */
export function encodeMessage(m: PaperMessage): Uint8Array {
  const w = new Writer();
  w.u8(MESSAGE_VERSION);
  w.u8(TYPE_CODE[m.type]);
  switch (m.type) {
    case 'MemberAuth':
      w.mic(m.M_IC);
      w.fixed(m.MAC_IC, HASH_BYTES, 'MAC_IC');
      break;
    case 'GroupAuth':
      w.id(m.ID_G1);
      if (m.AuthM_G1.M.length === 0) throw bad('AuthM_G1 holds no M_IC');
      w.u16(m.AuthM_G1.M.length);
      for (const mic of m.AuthM_G1.M) w.mic(mic);
      w.fixed(m.AuthM_G1.MAC_G1, HASH_BYTES, 'MAC_G1');
      w.fixed(m.Er_G1, CT32_BYTES, 'Er_G1');
      break;
    case 'KeyDelivery':
      w.id(m.ID_G1);
      w.fixed(m.Auth_ICM.r_ICM, R_BYTES, 'r_ICM');
      w.fixed(m.Auth_ICM.MAC_ICM, HASH_BYTES, 'MAC_ICM');
      w.u16(m.EGSK.length);
      for (const e of m.EGSK) {
        w.id(e.ID_IC);
        w.fixed(e.EGSK_IC, CT32_BYTES, 'EGSK_IC');
      }
      break;
    case 'MemberKey':
      w.id(m.ID_G1);
      w.id(m.ID_IC);
      w.fixed(m.EGSK_IC, CT32_BYTES, 'EGSK_IC');
      break;
    case 'MemberAck':
      w.id(m.ID_G1);
      w.id(m.ID_IC);
      w.fixed(m.ACK_IC, HASH_BYTES, 'ACK_IC');
      break;
    case 'GroupAck':
      w.id(m.ID_G1);
      w.fixed(m.ACK_G1, HASH_BYTES, 'ACK_G1');
      break;
    case 'RefreshAuth':
      w.id(m.ID_G1);
      w.fixed(m.Auth_ICM, HASH_BYTES, 'Auth_ICM');
      if (m.EGSK_new === null) {
        w.u8(0);
      } else {
        w.u8(1);
        w.id(m.EGSK_new.ID_IC);
        w.fixed(m.EGSK_new.EGSK_IC, CT64_BYTES, 'EGSK_IC_new');
      }
      break;
    case 'NewMemberKey':
      w.id(m.ID_G1);
      w.id(m.ID_IC);
      w.fixed(m.EGSK_IC, CT64_BYTES, 'EGSK_IC_new');
      break;
    case 'Refresh':
      w.id(m.ID_G1);
      w.fixed(m.Engk_GSK, CT64_BYTES, 'Engk_GSK');
      w.fixed(m.Hngk_GSK, HASH_BYTES, 'Hngk_GSK');
      break;
  }
  return w.bytes();
}

/** Decodes exactly one message filling `data`; GroupKeyError (KF_ERR_GROUPKEY_MESSAGE) for anything else. */
export function decodeMessage(data: Uint8Array): PaperMessage {
  const r = new Reader(data);
  const version = r.u8('version');
  if (version !== MESSAGE_VERSION) throw bad(`unknown message version ${version}`, 0);
  const code = r.u8('type');
  const type = MESSAGE_TYPES[code - 1];
  if (type === undefined) throw bad(`unknown message type ${code}`, 1);
  let m: PaperMessage;
  switch (type) {
    case 'MemberAuth': {
      const M_IC = r.mic();
      m = { type, M_IC, MAC_IC: r.fixed(HASH_BYTES, 'MAC_IC') };
      break;
    }
    case 'GroupAuth': {
      const ID_G1 = r.id('ID_G1');
      const at = r.p;
      const n = r.u16('AuthM_G1 count');
      if (n === 0) throw bad('AuthM_G1 holds no M_IC', at);
      const M: MIC[] = [];
      for (let i = 0; i < n; i++) M.push(r.mic());
      const MAC_G1 = r.fixed(HASH_BYTES, 'MAC_G1');
      m = { type, ID_G1, AuthM_G1: { M, MAC_G1 }, Er_G1: r.fixed(CT32_BYTES, 'Er_G1') };
      break;
    }
    case 'KeyDelivery': {
      const ID_G1 = r.id('ID_G1');
      const r_ICM = r.fixed(R_BYTES, 'r_ICM');
      const MAC_ICM = r.fixed(HASH_BYTES, 'MAC_ICM');
      const n = r.u16('EGSK count');
      const EGSK: EgskEntry[] = [];
      for (let i = 0; i < n; i++) {
        const ID_IC = r.id('EGSK.ID_IC');
        EGSK.push({ ID_IC, EGSK_IC: r.fixed(CT32_BYTES, 'EGSK_IC') });
      }
      m = { type, ID_G1, Auth_ICM: { r_ICM, MAC_ICM }, EGSK };
      break;
    }
    case 'MemberKey': {
      const ID_G1 = r.id('ID_G1');
      const ID_IC = r.id('ID_IC');
      m = { type, ID_G1, ID_IC, EGSK_IC: r.fixed(CT32_BYTES, 'EGSK_IC') };
      break;
    }
    case 'MemberAck': {
      const ID_G1 = r.id('ID_G1');
      const ID_IC = r.id('ID_IC');
      m = { type, ID_G1, ID_IC, ACK_IC: r.fixed(HASH_BYTES, 'ACK_IC') };
      break;
    }
    case 'GroupAck': {
      const ID_G1 = r.id('ID_G1');
      m = { type, ID_G1, ACK_G1: r.fixed(HASH_BYTES, 'ACK_G1') };
      break;
    }
    case 'RefreshAuth': {
      const ID_G1 = r.id('ID_G1');
      const Auth_ICM = r.fixed(HASH_BYTES, 'Auth_ICM');
      const at = r.p;
      const flag = r.u8('EGSK_new flag');
      let EGSK_new: EgskEntry | null = null;
      if (flag === 1) {
        const ID_IC = r.id('EGSK_new.ID_IC');
        EGSK_new = { ID_IC, EGSK_IC: r.fixed(CT64_BYTES, 'EGSK_IC_new') };
      } else if (flag !== 0) {
        throw bad(`EGSK_new flag ${flag} (must be 0 or 1)`, at);
      }
      m = { type, ID_G1, Auth_ICM, EGSK_new };
      break;
    }
    case 'NewMemberKey': {
      const ID_G1 = r.id('ID_G1');
      const ID_IC = r.id('ID_IC');
      m = { type, ID_G1, ID_IC, EGSK_IC: r.fixed(CT64_BYTES, 'EGSK_IC_new') };
      break;
    }
    case 'Refresh': {
      const ID_G1 = r.id('ID_G1');
      const Engk_GSK = r.fixed(CT64_BYTES, 'Engk_GSK');
      m = { type, ID_G1, Engk_GSK, Hngk_GSK: r.fixed(HASH_BYTES, 'Hngk_GSK') };
      break;
    }
  }
  r.end();
  return m;
}

/** Where a role sends a message: one or more recipients by identifier (several = the leader's multicast). */
export interface Outgoing {
  readonly to: readonly string[];
  readonly message: PaperMessage;
}
