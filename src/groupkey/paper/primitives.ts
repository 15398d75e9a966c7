/**
 * The cryptographic primitives of the NVR group-key paper (Choi, Hwang, Lee, "Efficient Group Key Distribution
 * Scheme in NVR"), as this faithful implementation reads them (docs/group-keys-paper.md §2):
 *
 * - `h(·)` is SHA-256 over the concatenation `‖` of its arguments;
 * - `E_k(·)` / `D_k(·)` are AES-256-CTR with a random 16-byte IV prefixed to the ciphertext. The paper names no
 *   mode; CTR is the faithful unauthenticated choice (any ciphertext of the right length "decrypts", and a bit
 *   flip in the ciphertext flips the same plaintext bit), which attacks A4 and A6 exploit;
 * - `⊕` is XOR of equal-length byte strings. Every random value (r_IC, r_G1, r_ICM) is 32 bytes, the size of a
 *   SHA-256 output, so that `MAC_G1 = MAC_IC1 ⊕ … ⊕ r_G1` and `ACK_G1 = ACK_IC1 ⊕ … ⊕ r` XOR equal lengths;
 * - `‖` encodes an identifier (a string: ID_G1, ID_IC, ID_ICM, the request tags) as a u16 big-endian length and
 *   its UTF-8 bytes, and a byte value (keys, r values, MACs, hashes — all 32 bytes) as its raw bytes. Raw bytes
 *   keep `D(E(r_G1 ‖ MAC))` splittable at a fixed offset; the length prefix keeps IDs unambiguous.
 *
 * Randomness is injected as a `Random` function so that runs are deterministic in tests. No I/O, no timers.
 * This is the INSECURE baseline: see ../../../docs/group-keys-paper.md and the attack tests.
 */
import { createCipheriv, createDecipheriv, createHash } from 'node:crypto';
import { ErrorCodes, GroupKeyError, KeyframeError } from '../../errors.js';

/** Returns `n` random bytes. Roles take one at construction; tests pass a seeded one. */
export type Random = (n: number) => Uint8Array;

/** Every key (K_IC, GK1, GSK) and every random value (r_IC, r_G1, r_ICM) is 32 bytes. */
export const KEY_BYTES = 32;
export const R_BYTES = 32;
/** SHA-256 output: MAC_IC, MAC_G1, MAC_ICM, ACK_IC, ACK_G1, Auth_ICM (Scheme 2), Hngk. */
export const HASH_BYTES = 32;
/** The CTR IV prefixed to every ciphertext. */
export const IV_BYTES = 16;
/** Identifiers are 1–255 bytes of UTF-8. */
export const MAX_ID_BYTES = 255;

/** One argument of `‖`: an identifier (string) or a fixed-length byte value. */
export type Part = string | Uint8Array;

const utf8 = new TextEncoder();

/** Checks an identifier: 1–255 bytes of UTF-8. Returns its bytes. */
export function idBytes(id: string): Uint8Array {
  const b = utf8.encode(id);
  if (b.length === 0 || b.length > MAX_ID_BYTES) throw new GroupKeyError(ErrorCodes.GROUPKEY_MESSAGE, `identifier of ${b.length} bytes (must be 1–${MAX_ID_BYTES})`);
  return b;
}

/** The paper's `‖`: identifiers length-prefixed (u16 BE + UTF-8), byte values raw. */
export function concat(parts: readonly Part[]): Uint8Array {
  const chunks: Uint8Array[] = [];
  for (const p of parts) {
    if (typeof p === 'string') {
      const b = idBytes(p);
      chunks.push(Uint8Array.of(b.length >>> 8, b.length & 0xff), b);
    } else {
      chunks.push(p);
    }
  }
  return Buffer.concat(chunks);
}

/** h = SHA-256 over `‖` of the parts. */
export function sha256(parts: readonly Part[]): Uint8Array {
  return new Uint8Array(createHash('sha256').update(concat(parts)).digest());
}

function checkKey(key: Uint8Array): void {
  if (key.length !== KEY_BYTES) throw new KeyframeError(ErrorCodes.INTERNAL, `AES-256 key of ${key.length} bytes`);
}

/** E_k(p) = IV ‖ AES-256-CTR_k,IV(p), with IV = 16 random bytes. */
export function aesCtrEncrypt(key: Uint8Array, iv: Uint8Array, plaintext: Uint8Array): Uint8Array {
  checkKey(key);
  if (iv.length !== IV_BYTES) throw new KeyframeError(ErrorCodes.INTERNAL, `CTR IV of ${iv.length} bytes`);
  const c = createCipheriv('aes-256-ctr', key, iv);
  return new Uint8Array(Buffer.concat([iv, c.update(plaintext), c.final()]));
}

/**
 * D_k(c): AES-256-CTR with the IV in the first 16 bytes. Unauthenticated: any key and any ciphertext of at least
 * 16 bytes give *some* plaintext; only a ciphertext shorter than its IV is refused.
 */
export function aesCtrDecrypt(key: Uint8Array, ciphertext: Uint8Array): Uint8Array {
  checkKey(key);
  if (ciphertext.length < IV_BYTES) throw new GroupKeyError(ErrorCodes.GROUPKEY_MESSAGE, `ciphertext of ${ciphertext.length} bytes is shorter than its IV`);
  const d = createDecipheriv('aes-256-ctr', key, ciphertext.subarray(0, IV_BYTES));
  return new Uint8Array(Buffer.concat([d.update(ciphertext.subarray(IV_BYTES)), d.final()]));
}

/** a ⊕ b for equal-length byte strings. */
export function xorBytes(a: Uint8Array, b: Uint8Array): Uint8Array {
  if (a.length !== b.length) throw new KeyframeError(ErrorCodes.INTERNAL, `XOR of ${a.length} and ${b.length} bytes`);
  const out = new Uint8Array(a.length);
  for (let i = 0; i < a.length; i++) out[i] = (a[i] as number) ^ (b[i] as number);
  return out;
}

/** Constant-time-enough equality for the paper's comparisons ("verify X = 'X"). */
export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let d = 0;
  for (let i = 0; i < a.length; i++) d |= (a[i] as number) ^ (b[i] as number);
  return d === 0;
}

/**
 * A deterministic `Random` for tests and for the op-count tables: SHA-256(seed ‖ u64 counter) blocks, read as a
 * stream. Not for keys anyone relies on.
 */
export function seededRandom(seed: string): Random {
  const seedBytes = utf8.encode(seed);
  let counter = 0n;
  let pool = new Uint8Array(0);
  return (n: number): Uint8Array => {
    const out = new Uint8Array(n);
    let filled = 0;
    while (filled < n) {
      if (pool.length === 0) {
        const c = new Uint8Array(8);
        new DataView(c.buffer).setBigUint64(0, counter++, false);
        pool = new Uint8Array(createHash('sha256').update(seedBytes).update(c).digest());
      }
      const take = Math.min(pool.length, n - filled);
      out.set(pool.subarray(0, take), filled);
      pool = pool.subarray(take);
      filled += take;
    }
    return out;
  };
}
