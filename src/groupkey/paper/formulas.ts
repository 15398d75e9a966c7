/**
 * Every formula of the paper's §4, one function each, in the paper's notation, computed through a role's
 * counting primitives. The roles (kms.ts, leader.ts, member.ts) call only these, so the formulas live in one
 * place and the op counts follow them. Readings of garbled or ambiguous formulas are marked "Reading Rn" and
 * listed in docs/group-keys-paper.md §3.
 */
import { ErrorCodes, KeyframeError } from '../../errors.js';
import type { CountingPrimitives } from './ops.js';
import { HASH_BYTES, R_BYTES } from './primitives.js';

/** The request tag a camera appends to M_IC for a join or a leave (§4.1.2, §4.1.3 step 1). */
export type PaperRequest = 'join_request' | 'leave_request';

/**
 * MAC_IC = h(ID_G1 ‖ ID_IC ‖ r_IC ‖ K_IC) — §4.1.1 step 1; the same for MAC_IC_new (§4.1.2 step 1) and
 * MAC_IC_old (§4.1.3 step 1), computed by the camera and recomputed by the KMS (§4.1.1 step 3).
 * Reading R4: §4.2.2/§4.2.3 step 3 write `MAC_IC = h(M_IC ‖ K)`, and M_IC_new also carries `join_request`; we
 * follow the explicit formula everywhere, so the request tag is NOT covered by the MAC.
 */
export function macIC(p: CountingPrimitives, ID_G1: string, ID_IC: string, r_IC: Uint8Array, K_IC: Uint8Array): Uint8Array {
  return p.h('MAC_IC', ID_G1, ID_IC, r_IC, K_IC);
}

/** MAC_G1 = MAC_IC1 ⊕ MAC_IC2 ⊕ … ⊕ MAC_ICx ⊕ r_G1 — §4.1.1 step 2 (one MAC for a join or leave, §4.1.2 step 2). */
export function macG1(p: CountingPrimitives, macs: readonly Uint8Array[], r_G1: Uint8Array): Uint8Array {
  return p.xorAll('MAC_G1', macs, r_G1);
}

/** Er_G1 = E_GK1(r_G1) — §4.1.1 step 2. Reading R12: Scheme 2's `E_k_G1` is the same key GK1. */
export function erG1(p: CountingPrimitives, GK1: Uint8Array, r_G1: Uint8Array): Uint8Array {
  return p.E('Er_G1', GK1, r_G1);
}

/** r_G1 = D_GK1(Er_G1) — §4.1.1 step 3 (and, unwritten but needed, §4.2.2/§4.2.3 step 3: Reading R13). */
export function openErG1(p: CountingPrimitives, GK1: Uint8Array, Er_G1: Uint8Array): Uint8Array {
  return fixed(p.D('Er_G1', GK1, Er_G1), R_BYTES, 'r_G1');
}

/**
 * GSK_G1 = h(MAC_G1 ‖ r_G1 ‖ r_ICM) — §4.1.1 step 4. Reading R6: the prose ("hashing the random value r_G1 of the
 * MAC_ICM and the random value r_G1 of the server") is garbled; the formula is followed.
 */
export function gskG1(p: CountingPrimitives, MAC_G1: Uint8Array, r_G1: Uint8Array, r_ICM: Uint8Array): Uint8Array {
  return p.h('GSK_G1', MAC_G1, r_G1, r_ICM);
}

/** EGSK_IC = E_K_IC(GSK_G1) — §4.1.1 step 4 (the prose says GSK "encrypts each IPCCTV symmetric key"; R6). */
export function egskIC(p: CountingPrimitives, K_IC: Uint8Array, GSK: Uint8Array): Uint8Array {
  return p.E('EGSK_IC', K_IC, GSK);
}

/** GSK_G1 = D_K_IC(EGSK_IC) — §4.1.1 step 5, by each camera. */
export function openEgskIC(p: CountingPrimitives, K_IC: Uint8Array, EGSK_IC: Uint8Array): Uint8Array {
  return fixed(p.D('EGSK_IC', K_IC, EGSK_IC), HASH_BYTES, 'GSK_G1');
}

/** MAC_ICM = h(ID_ICM ‖ r_ICM ‖ r_G1) — §4.1.1 step 4 (KMS) and step 5 (leader). ID_ICM is the KMS's identifier. */
export function macICM(p: CountingPrimitives, ID_ICM: string, r_ICM: Uint8Array, r_G1: Uint8Array): Uint8Array {
  return p.h('MAC_ICM', ID_ICM, r_ICM, r_G1);
}

/**
 * ACK_IC = h(ID_G1 ‖ ID_IC ‖ GSK) — §4.1.1 steps 6–8, §4.2.2 step 9, §4.2.3 step 8.
 * Reading R18: in Scheme 2 the formula names GSK_G1, the old key in that section; we hash the NEW key (the ACK
 * confirms the new key, and the new camera, which must ACK, never holds the old one).
 */
export function ackIC(p: CountingPrimitives, ID_G1: string, ID_IC: string, GSK: Uint8Array): Uint8Array {
  return p.h('ACK_IC', ID_G1, ID_IC, GSK);
}

/**
 * ACK_G1 = ACK_IC1 ⊕ … ⊕ ACK_ICx ⊕ r — §4.1.1 step 7 with r = r_ICM (Scheme 1 and every distribution), §4.2.2
 * step 10 and §4.2.3 step 9 with r = r_G1 (Scheme 2). Reading R19: each scheme's own r, as written; the KMS XORs
 * its own ACK_IC values back out and compares what remains with the r it knows (§4.1.1 step 8).
 */
export function ackG1(p: CountingPrimitives, acks: readonly Uint8Array[], r: Uint8Array): Uint8Array {
  return p.xorAll('ACK_G1', acks, r);
}

/** GSK_G1^new = h(GSK_G1 ‖ r_G1 ‖ MAC_x) — Scheme 2, §4.2.2 steps 2, 4, 8 and §4.2.3 steps 2, 4, 7 (x: new or old camera). */
export function gskNew(p: CountingPrimitives, GSK: Uint8Array, r_G1: Uint8Array, MAC_x: Uint8Array): Uint8Array {
  return p.h('GSK_new', GSK, r_G1, MAC_x);
}

/** EGSK_IC_new = E_K_IC_new(GSK_G1^new ‖ MAC_IC_new) — §4.2.2 step 4. */
export function egskNew(p: CountingPrimitives, K_new: Uint8Array, GSK_new: Uint8Array, MAC_new: Uint8Array): Uint8Array {
  return p.E('EGSK_new', K_new, Buffer.concat([GSK_new, MAC_new]));
}

/** (GSK_G1^new ‖ MAC_IC_new) = D_K_IC_new(EGSK_IC_new) — §4.2.2 step 6. */
export function openEgskNew(p: CountingPrimitives, K_new: Uint8Array, EGSK_new: Uint8Array): { readonly GSK_new: Uint8Array; readonly MAC_new: Uint8Array } {
  const pt = fixed(p.D('EGSK_new', K_new, EGSK_new), 2 * HASH_BYTES, 'GSK_new ‖ MAC_IC_new');
  return { GSK_new: pt.slice(0, HASH_BYTES), MAC_new: pt.slice(HASH_BYTES) };
}

/** Auth_ICM = h(ID_ICM ‖ GSK_G1^new ‖ r_G1) — Scheme 2, §4.2.2 steps 4–5, §4.2.3 steps 4–5 (a hash, unlike Scheme 1's pair). */
export function authICM(p: CountingPrimitives, ID_ICM: string, GSK_new: Uint8Array, r_G1: Uint8Array): Uint8Array {
  return p.h('Auth_ICM', ID_ICM, GSK_new, r_G1);
}

/**
 * Engk_GSK = E_k_GSK(r_G1 ‖ MAC_x) — §4.2.2 step 7, §4.2.3 step 6. Reading R16: k_GSK is the OLD group key GSK_G1,
 * held by the leader and the existing members (step 8 decrypts with it and hashes GSK_G1 with the result).
 */
export function engk(p: CountingPrimitives, GSK: Uint8Array, r_G1: Uint8Array, MAC_x: Uint8Array): Uint8Array {
  return p.E('Engk_GSK', GSK, Buffer.concat([r_G1, MAC_x]));
}

/** (r_G1 ‖ MAC_x) = D_k_GSK(Engk_GSK) — §4.2.2 step 8, §4.2.3 step 7. */
export function openEngk(p: CountingPrimitives, GSK: Uint8Array, Engk: Uint8Array): { readonly r_G1: Uint8Array; readonly MAC_x: Uint8Array } {
  const pt = fixed(p.D('Engk_GSK', GSK, Engk), R_BYTES + HASH_BYTES, 'r_G1 ‖ MAC_x');
  return { r_G1: pt.slice(0, R_BYTES), MAC_x: pt.slice(R_BYTES) };
}

/** Hngk_GSK = h(GSK_G1^new ‖ GSK_G1 ‖ ID_G1) — §4.2.2 steps 7–8, §4.2.3 steps 6–7. */
export function hngk(p: CountingPrimitives, GSK_new: Uint8Array, GSK: Uint8Array, ID_G1: string): Uint8Array {
  return p.h('Hngk_GSK', GSK_new, GSK, ID_G1);
}

function fixed(b: Uint8Array, n: number, what: string): Uint8Array {
  // the codec admits only ciphertexts of the right size, so this is an invariant, not an input check
  if (b.length !== n) throw new KeyframeError(ErrorCodes.INTERNAL, `${what}: ${b.length} bytes, expected ${n}`);
  return b;
}
