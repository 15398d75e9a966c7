/**
 * Initialisation vectors. `cenc` needs a distinct counter block for every sample under a key: an 8-byte IV per
 * sample, taken from a 64-bit counter with a random start (the low 8 bytes of the counter block count blocks
 * inside the sample, so samples never share key stream). `cbcs` uses one random constant IV per key, carried in
 * `tenc` (or `seig`), as Apple and the CMAF profiles do.
 */
import { randomBytes } from 'node:crypto';

export class IvSequence {
  #next: bigint;

  constructor(start: Uint8Array = randomBytes(8)) {
    this.#next = Buffer.from(start).readBigUInt64BE(0);
  }

  /** The next 8-byte IV. Wraps modulo 2^64 (2^64 samples under one key will not happen: keys rotate). */
  next(): Uint8Array {
    const iv = Buffer.allocUnsafe(8);
    iv.writeBigUInt64BE(this.#next);
    this.#next = (this.#next + 1n) & 0xffff_ffff_ffff_ffffn;
    return iv;
  }
}

export function constantIv(): Uint8Array {
  return randomBytes(16);
}
