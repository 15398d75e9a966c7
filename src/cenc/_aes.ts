/**
 * The two Common Encryption ciphers over a sample, in place in an output buffer, with one cipher call per
 * sample (`cenc`) or per protected run (`cbcs`) — never one per 16-byte block.
 *
 * cenc (§10.1): AES-128-CTR, one continuous key stream over all protected bytes of the sample; the 8-byte IV
 *   is the high half of the counter block (low half 0), a 16-byte IV is the whole counter block.
 * cbcs (§10.4): AES-128-CBC with a 1:9 pattern (crypt_byte_block 1, skip_byte_block 9) and a constant IV; in each
 *   subsample the chain restarts from the IV, the blocks at 0, 10, 20, … are encrypted, the CBC chain runs
 *   from one encrypted block to the next (skipped blocks stay out of it), and a trailing partial block stays
 *   clear. The encrypted blocks of a run are gathered into one buffer, ciphered in one call, scattered back.
 */
import { createCipheriv, createDecipheriv } from 'node:crypto';
import type { Subsample } from './subsamples.js';

export interface Pattern {
  readonly crypt: number;
  readonly skip: number;
}

export const CBCS_PATTERN: Pattern = { crypt: 1, skip: 9 };

function counterBlock(iv: Uint8Array): Buffer {
  if (iv.length === 16) return Buffer.from(iv);
  const block = Buffer.alloc(16);
  block.set(iv, 0);
  return block;
}

/** AES-128-CTR over the protected bytes of `out` (a copy of the sample), in place. Encrypts and decrypts. */
export function cencTransform(key: Uint8Array, iv: Uint8Array, out: Uint8Array, subsamples: readonly Subsample[]): void {
  const cipher = createCipheriv('aes-128-ctr', key, counterBlock(iv));
  let pos = 0;
  let protectedTotal = 0;
  for (const s of subsamples) protectedTotal += s.protected;
  if (protectedTotal === 0) return;
  // one call per sample: gather the protected bytes when there are several runs, else cipher the run directly
  const runs = subsamples.filter((s) => s.protected > 0).length;
  if (runs === 1) {
    for (const s of subsamples) {
      pos += s.clear;
      if (s.protected > 0) {
        out.set(cipher.update(out.subarray(pos, pos + s.protected)), pos);
        break;
      }
    }
    cipher.final();
    return;
  }
  const gathered = Buffer.allocUnsafe(protectedTotal);
  let g = 0;
  for (const s of subsamples) {
    pos += s.clear;
    gathered.set(out.subarray(pos, pos + s.protected), g);
    g += s.protected;
    pos += s.protected;
  }
  const ks = cipher.update(gathered);
  cipher.final();
  pos = 0;
  g = 0;
  for (const s of subsamples) {
    pos += s.clear;
    out.set(ks.subarray(g, g + s.protected), pos);
    g += s.protected;
    pos += s.protected;
  }
}

/**
 * AES-128-CTR over a sample without copying it: the result is a list of parts — views of the clear runs of the
 * input and the cipher's output for each protected run — whose concatenation is the transformed sample. One
 * cipher call per protected run; the key stream continues across runs (OpenSSL keeps the block offset).
 */
export function cencParts(key: Uint8Array, iv: Uint8Array, sample: Uint8Array, subsamples: readonly Subsample[]): Uint8Array[] {
  const cipher = createCipheriv('aes-128-ctr', key, counterBlock(iv));
  const parts: Uint8Array[] = [];
  let pos = 0;
  for (const s of subsamples) {
    if (s.clear > 0) parts.push(sample.subarray(pos, pos + s.clear));
    pos += s.clear;
    if (s.protected > 0) parts.push(cipher.update(sample.subarray(pos, pos + s.protected)));
    pos += s.protected;
  }
  cipher.final();
  return parts;
}

/** AES-128-CBC with a crypt:skip pattern over each protected run of `out`, in place. */
export function cbcsTransform(key: Uint8Array, iv: Uint8Array, out: Uint8Array, subsamples: readonly Subsample[], encrypt: boolean, pattern: Pattern = CBCS_PATTERN): void {
  let pos = 0;
  const stride = (pattern.crypt + pattern.skip) * 16;
  const cryptBytes = pattern.crypt * 16;
  for (const s of subsamples) {
    pos += s.clear;
    const end = pos + s.protected;
    const fullBlocks = Math.floor(s.protected / 16);
    if (fullBlocks > 0) {
      // offsets of encrypted bytes: at each stride start, `crypt` blocks (fewer at the end if the run is short)
      let total = 0;
      for (let off = pos; off + 16 <= end; off += stride) total += Math.min(cryptBytes, Math.floor((end - off) / 16) * 16);
      const gathered = Buffer.allocUnsafe(total);
      let g = 0;
      for (let off = pos; off + 16 <= end; off += stride) {
        const n = Math.min(cryptBytes, Math.floor((end - off) / 16) * 16);
        gathered.set(out.subarray(off, off + n), g);
        g += n;
      }
      const c = encrypt ? createCipheriv('aes-128-cbc', key, iv) : createDecipheriv('aes-128-cbc', key, iv);
      c.setAutoPadding(false);
      const res = c.update(gathered);
      c.final();
      g = 0;
      for (let off = pos; off + 16 <= end; off += stride) {
        const n = Math.min(cryptBytes, Math.floor((end - off) / 16) * 16);
        out.set(res.subarray(g, g + n), off);
        g += n;
      }
    }
    pos = end;
  }
}
