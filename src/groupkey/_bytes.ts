/**
 * The strict big-endian byte writer and reader under both group-key wire formats (the paper's messages and the
 * hardened mode's): fixed-width unsigned integers, raw fields of a known length, and well-formed UTF-8. Every
 * failure is a GroupKeyError (KF_ERR_GROUPKEY_MESSAGE) with the offset where the reader stopped. Each format adds
 * its own identifiers and framing on top.
 */
import { ErrorCodes, GroupKeyError } from '../errors.js';

export const utf8 = new TextEncoder();
/** Fatal on malformed input; a BOM is kept as U+FEFF, so well-formed UTF-8 encodes back to the same bytes. */
export const strictUtf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

export function malformed(message: string, offset?: number): GroupKeyError {
  return new GroupKeyError(ErrorCodes.GROUPKEY_MESSAGE, message, offset);
}

export class ByteWriter {
  protected readonly chunks: Uint8Array[] = [];

  u8(v: number): this {
    if (!Number.isInteger(v) || v < 0 || v > 0xff) throw malformed(`u8 out of range: ${v}`);
    this.chunks.push(Uint8Array.of(v));
    return this;
  }

  u16(v: number): this {
    if (!Number.isInteger(v) || v < 0 || v > 0xffff) throw malformed(`u16 out of range: ${v}`);
    this.chunks.push(Uint8Array.of(v >>> 8, v & 0xff));
    return this;
  }

  u32(v: number): this {
    if (!Number.isInteger(v) || v < 0 || v > 0xffffffff) throw malformed(`u32 out of range: ${v}`);
    const b = new Uint8Array(4);
    new DataView(b.buffer).setUint32(0, v, false);
    this.chunks.push(b);
    return this;
  }

  u64(v: number): this {
    if (!Number.isSafeInteger(v) || v < 0) throw malformed(`u64 out of range: ${v}`);
    const b = new Uint8Array(8);
    new DataView(b.buffer).setBigUint64(0, BigInt(v), false);
    this.chunks.push(b);
    return this;
  }

  fixed(b: Uint8Array, n: number, what: string): this {
    if (b.length !== n) throw malformed(`${what}: ${b.length} bytes, expected ${n}`);
    this.chunks.push(b);
    return this;
  }

  bytes(): Uint8Array {
    const b = Buffer.concat(this.chunks);
    return new Uint8Array(b.buffer, b.byteOffset, b.length);
  }
}

export class ByteReader {
  p = 0;
  constructor(protected readonly data: Uint8Array) {}

  get remaining(): number {
    return this.data.length - this.p;
  }

  protected need(n: number, what: string): void {
    if (this.data.length - this.p < n) throw malformed(`${what} truncated`, this.p);
  }

  u8(what: string): number {
    this.need(1, what);
    return this.data[this.p++] as number;
  }

  u16(what: string): number {
    this.need(2, what);
    const v = ((this.data[this.p] as number) << 8) | (this.data[this.p + 1] as number);
    this.p += 2;
    return v;
  }

  u32(what: string): number {
    this.need(4, what);
    const v = new DataView(this.data.buffer, this.data.byteOffset + this.p, 4).getUint32(0, false);
    this.p += 4;
    return v;
  }

  /** Limited to Number.MAX_SAFE_INTEGER (epochs, milliseconds). */
  u64(what: string): number {
    this.need(8, what);
    const at = this.p;
    const v = new DataView(this.data.buffer, this.data.byteOffset + this.p, 8).getBigUint64(0, false);
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw malformed(`${what}: ${v} exceeds 2^53 − 1`, at);
    this.p += 8;
    return Number(v);
  }

  /** `n` raw bytes, copied. */
  fixed(n: number, what: string): Uint8Array {
    this.need(n, what);
    const b = Uint8Array.from(this.data.subarray(this.p, this.p + n));
    this.p += n;
    return b;
  }

  /** `n` bytes of well-formed UTF-8; `at` is the offset reported on failure (the length field's). */
  protected text(n: number, what: string, at: number): string {
    this.need(n, what);
    let s: string;
    try {
      s = strictUtf8.decode(this.data.subarray(this.p, this.p + n));
    } catch {
      throw malformed(`${what}: not well-formed UTF-8`, at);
    }
    this.p += n;
    return s;
  }

  protected expectEnd(prefix: string): void {
    if (this.p !== this.data.length) throw malformed(`${prefix}${this.data.length - this.p} trailing bytes`, this.p);
  }
}
