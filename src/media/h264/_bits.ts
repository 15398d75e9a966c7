/**
 * Bit-level reader and writer for RBSP syntax (7.2): fixed-width u(n), Exp-Golomb ue(v)/se(v) (9.1) and
 * more_rbsp_data(). The reader works on RBSP bytes, i.e. after emulation prevention has been removed; reading past
 * the end is a MediaError, never a RangeError or an `undefined` read, so every parser built on it terminates on any
 * input.
 */
import { MediaError } from '../../errors.js';

/** ue(v) codes longer than this many leading zeros cannot be valid (values are limited to 2^32 − 2). */
const _MAX_LEADING_ZEROS = 31;

export class _BitReader {
  private readonly data: Uint8Array;
  private readonly endBit: number;
  private bitPos: number;
  private lastOneBit: number | undefined;

  /** Reads `data` from byte `byteOffset`; `what` names the structure in error messages. */
  constructor(data: Uint8Array, byteOffset = 0, private readonly what = 'RBSP') {
    this.data = data;
    this.endBit = data.length * 8;
    this.bitPos = Math.min(byteOffset, data.length) * 8;
  }

  /** Current position in bits from the start of `data`. */
  get position(): number {
    return this.bitPos;
  }

  get bitsLeft(): number {
    return this.endBit - this.bitPos;
  }

  get byteAligned(): boolean {
    return (this.bitPos & 7) === 0;
  }

  private truncated(): MediaError {
    return new MediaError(`${this.what} truncated`, this.bitPos >>> 3);
  }

  /** One bit. */
  bit(): number {
    if (this.bitPos >= this.endBit) throw this.truncated();
    const byte = this.data[this.bitPos >>> 3] ?? 0;
    const b = (byte >>> (7 - (this.bitPos & 7))) & 1;
    this.bitPos++;
    return b;
  }

  flag(): boolean {
    return this.bit() === 1;
  }

  /** u(n) for 0 ≤ n ≤ 32, as a non-negative number. */
  u(n: number): number {
    if (n < 0 || n > 32) throw new MediaError(`${this.what}: invalid field width ${n}`);
    if (this.bitPos + n > this.endBit) throw this.truncated();
    let v = 0;
    for (let i = 0; i < n; i++) {
      const byte = this.data[this.bitPos >>> 3] ?? 0;
      v = v * 2 + ((byte >>> (7 - (this.bitPos & 7))) & 1);
      this.bitPos++;
    }
    return v;
  }

  /** ue(v): unsigned Exp-Golomb. */
  ue(): number {
    let zeros = 0;
    while (this.bit() === 0) {
      zeros++;
      if (zeros > _MAX_LEADING_ZEROS) throw new MediaError(`${this.what}: Exp-Golomb code too long`, this.bitPos >>> 3);
    }
    return 2 ** zeros - 1 + this.u(zeros);
  }

  /** se(v): signed Exp-Golomb (9.1.1): 1, −1, 2, −2, … */
  se(): number {
    const k = this.ue();
    if (k === 0) return 0;
    return k % 2 === 1 ? (k + 1) / 2 : -(k / 2);
  }

  /** ue(v) that must lie in [min, max]; `name` is the syntax element, for the error. */
  ueIn(name: string, min: number, max: number): number {
    const v = this.ue();
    if (v < min || v > max) throw new MediaError(`${this.what}: ${name} = ${v} out of range ${min}..${max}`, this.bitPos >>> 3);
    return v;
  }

  /** se(v) that must lie in [min, max]. */
  seIn(name: string, min: number, max: number): number {
    const v = this.se();
    if (v < min || v > max) throw new MediaError(`${this.what}: ${name} = ${v} out of range ${min}..${max}`, this.bitPos >>> 3);
    return v;
  }

  skip(n: number): void {
    if (n < 0 || this.bitPos + n > this.endBit) throw this.truncated();
    this.bitPos += n;
  }

  /**
   * more_rbsp_data() (7.2): true while a 1 bit other than the rbsp_stop_one_bit follows. Trailing zero bytes
   * (cabac_zero_words, padding) are ignored when looking for the stop bit.
   */
  moreRbspData(): boolean {
    if (this.lastOneBit === undefined) {
      let i = this.data.length - 1;
      while (i >= 0 && this.data[i] === 0) i--;
      if (i < 0) {
        this.lastOneBit = -1;
      } else {
        const byte = this.data[i] ?? 1;
        let bit = 7;
        while (((byte >>> (7 - bit)) & 1) === 0) bit--;
        this.lastOneBit = i * 8 + bit;
      }
    }
    return this.bitPos < this.lastOneBit;
  }
}

/** Bit writer, the inverse of _BitReader: builds RBSP bytes (not escaped). */
export class _BitWriter {
  private bytes: Uint8Array = new Uint8Array(64);
  private bitPos = 0;

  get position(): number {
    return this.bitPos;
  }

  private ensure(bits: number): void {
    const need = (this.bitPos + bits + 7) >>> 3;
    if (need <= this.bytes.length) return;
    const next = new Uint8Array(Math.max(need, this.bytes.length * 2));
    next.set(this.bytes);
    this.bytes = next;
  }

  bit(b: number | boolean): this {
    this.ensure(1);
    if (b === true || b === 1) {
      const i = this.bitPos >>> 3;
      this.bytes[i] = (this.bytes[i] ?? 0) | (0x80 >>> (this.bitPos & 7));
    }
    this.bitPos++;
    return this;
  }

  flag(b: boolean): this {
    return this.bit(b);
  }

  /** u(n), 0 ≤ n ≤ 32. */
  u(n: number, value: number): this {
    if (n < 0 || n > 32 || value < 0 || value >= 2 ** n || !Number.isInteger(value)) throw new RangeError(`u(${n}) cannot hold ${value}`);
    for (let i = n - 1; i >= 0; i--) this.bit(Math.floor(value / 2 ** i) % 2);
    return this;
  }

  ue(value: number): this {
    if (value < 0 || value > 2 ** 32 - 2 || !Number.isInteger(value)) throw new RangeError(`ue(v) cannot hold ${value}`);
    const v = value + 1;
    const len = Math.floor(Math.log2(v));
    // Math.log2 may round up just below a power of two
    const bits = 2 ** len > v ? len - 1 : 2 ** (len + 1) <= v ? len + 1 : len;
    for (let i = 0; i < bits; i++) this.bit(0);
    return this.u(bits + 1, v);
  }

  se(value: number): this {
    return this.ue(value > 0 ? 2 * value - 1 : -2 * value);
  }

  /** rbsp_trailing_bits(): a 1 bit, then zero bits to the byte boundary. */
  trailingBits(): this {
    this.bit(1);
    while ((this.bitPos & 7) !== 0) this.bit(0);
    return this;
  }

  /** The bytes written so far; a partial last byte is zero-padded. */
  toBytes(): Uint8Array {
    return this.bytes.slice(0, (this.bitPos + 7) >>> 3);
  }
}
