/**
 * Key derivation and small primitives of the hardened mode.
 *
 *   HKDF-Expand(PRK, info, L ≤ 32) = HMAC-SHA256(PRK, info ‖ 0x01)[0, L)          (RFC 5869 §2.3, one block)
 *   K_i^wrap = HKDF-Expand(K_i, "gkd/v1 wrap", 32)   the camera's leaf key in the LKH tree (wraps to it)
 *   K_i^auth = HKDF-Expand(K_i, "gkd/v1 auth", 32)   its group-authentication tags
 *   KEK(k)   = HKDF-Expand(k, "gkd/v1 kek", 32)      what an interior node key k wraps its parent under
 *
 * K_i is the camera's 32-byte pairwise key with the KMS (from authenticated ECDH, so it is already uniform and
 * serves as the PRK). The cores take only the sub-keys: from `deriveSubkeys` when K_i is held in software, or as
 * ../enrol.ts delivers them (wrapped under a K_i that stays in a token) — the same `{ wrap, auth }` shape. Interior node keys, and the root (the epoch secret), are never
 * used directly as AES keys: wrapping goes through KEK(·), content keys through content.ts, so every use of a key
 * has its own label. Randomness and the clock are injected (`Random`, `Clock`) so that the cores are pure.
 */
import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { ErrorCodes, KeyframeError } from '../../errors.js';

/** Every key of the tree (K_i, sub-keys, node keys, the epoch secret) is 32 bytes. */
export const KEY_BYTES = 32;
export const HASH_BYTES = 32;

export const LABEL_WRAP = 'gkd/v1 wrap';
export const LABEL_AUTH = 'gkd/v1 auth';
export const LABEL_KEK = 'gkd/v1 kek';

/** Returns `n` random bytes. */
export type Random = (n: number) => Uint8Array;
/** Milliseconds since the Unix epoch. */
export type Clock = () => number;

/** node:crypto's CSPRNG. */
export const systemRandom: Random = (n) => new Uint8Array(randomBytes(n));

/** A camera's sub-keys, one per purpose. */
export interface Subkeys {
  readonly wrap: Uint8Array;
  readonly auth: Uint8Array;
}

export function checkKey(key: Uint8Array, what: string): void {
  if (key.length !== KEY_BYTES) throw new KeyframeError(ErrorCodes.INTERNAL, `${what}: ${key.length} bytes, expected ${KEY_BYTES}`);
}

/** HKDF-Expand with SHA-256, one output block (L ≤ 32). */
export function hkdfExpand(prk: Uint8Array, info: string | Uint8Array, length: number): Uint8Array {
  if (length < 1 || length > HASH_BYTES) throw new KeyframeError(ErrorCodes.INTERNAL, `HKDF-Expand length ${length}`);
  const out = createHmac('sha256', prk).update(info).update(Uint8Array.of(1)).digest();
  return Uint8Array.from(out.subarray(0, length));
}

/** K_i^wrap and K_i^auth from the pairwise key K_i. */
export function deriveSubkeys(pairwiseKey: Uint8Array): Subkeys {
  checkKey(pairwiseKey, 'pairwise key K_i');
  return { wrap: hkdfExpand(pairwiseKey, LABEL_WRAP, KEY_BYTES), auth: hkdfExpand(pairwiseKey, LABEL_AUTH, KEY_BYTES) };
}

/** The key an interior node (or the root) wraps its parent's key under. */
export function nodeKek(nodeKey: Uint8Array): Uint8Array {
  checkKey(nodeKey, 'node key');
  return hkdfExpand(nodeKey, LABEL_KEK, KEY_BYTES);
}

export function sha256(...parts: readonly (string | Uint8Array)[]): Uint8Array {
  const h = createHash('sha256');
  for (const p of parts) h.update(p);
  return new Uint8Array(h.digest());
}

export function hmacSha256(key: Uint8Array, ...parts: readonly (string | Uint8Array)[]): Uint8Array {
  const h = createHmac('sha256', key);
  for (const p of parts) h.update(p);
  return new Uint8Array(h.digest());
}

/** Equality in time independent of where the inputs differ (lengths are public). */
export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}

export function toHex(b: Uint8Array): string {
  return Buffer.from(b.buffer, b.byteOffset, b.length).toString('hex');
}

export function xorInto(acc: Uint8Array, b: Uint8Array): void {
  if (acc.length !== b.length) throw new KeyframeError(ErrorCodes.INTERNAL, `XOR of ${acc.length} and ${b.length} bytes`);
  for (let i = 0; i < acc.length; i++) acc[i] = (acc[i] as number) ^ (b[i] as number);
}
