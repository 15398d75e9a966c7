/**
 * Big-endian byte reading and writing for ISO BMFF. The reader checks every access against the end of the
 * structure it reads, so a parser built on it can never read past a box (or past the buffer) and never sees
 * `undefined`: running out of bytes is a MediaError naming the structure and the absolute byte offset. The
 * writer grows as needed and patches box sizes on close, so nested boxes are written in one pass.
 */
import { MediaError } from '../../errors.js';

const TWO_32 = 0x1_0000_0000;

/** Four-character code from 4 bytes (latin1, so any byte value survives the round trip). */
export function _fourccAt(buf: Uint8Array, pos: number): string {
  return String.fromCharCode(buf[pos] ?? 0, buf[pos + 1] ?? 0, buf[pos + 2] ?? 0, buf[pos + 3] ?? 0);
}

/** A box type quoted for a message: control and non-ASCII bytes escaped, so garbage input cannot garble it. */
export function _show(type: string): string {
  let out = '';
  for (let i = 0; i < type.length; i++) {
    const c = type.charCodeAt(i);
    out += c >= 0x20 && c < 0x7f && c !== 0x27 && c !== 0x5c ? String.fromCharCode(c) : `\\x${c.toString(16).padStart(2, '0')}`;
  }
  return `'${out}'`;
}

/** True for a string a box type can be written from: exactly four latin1 characters. */
export function _isFourcc(type: string): boolean {
  if (type.length !== 4) return false;
  for (let i = 0; i < 4; i++) if (type.charCodeAt(i) > 0xff) return false;
  return true;
}

/**
 * A copy as a plain Uint8Array. (`slice` is not enough: on a Node Buffer it returns a view of the same memory,
 * which would keep a whole `moov` alive and let the caller's later writes show through.)
 */
export function _copy(view: Uint8Array): Uint8Array {
  return new Uint8Array(view);
}

export function _hex(bytes: Uint8Array): string {
  let s = '';
  for (const b of bytes) s += b.toString(16).padStart(2, '0');
  return s;
}

/**
 * A cursor over `buf[start, end)`. `base` is the absolute position of `buf[0]` in the input (a file offset when
 * `buf` is a box read from a file), used in error messages only.
 */
export class _Reader {
  readonly buf: Uint8Array;
  readonly end: number;
  readonly base: number;
  pos: number;
  private readonly what: string;

  constructor(buf: Uint8Array, start: number, end: number, what: string, base = 0) {
    if (!(start >= 0 && start <= end && end <= buf.length)) throw new MediaError(`${what}: range ${start}..${end} is outside the ${buf.length}-byte buffer`, base + Math.max(0, start));
    this.buf = buf;
    this.pos = start;
    this.end = end;
    this.what = what;
    this.base = base;
  }

  get remaining(): number {
    return this.end - this.pos;
  }

  /** Fails unless `n` more bytes are available. */
  need(n: number, field: string): void {
    if (!(n >= 0 && n <= this.end - this.pos)) {
      throw new MediaError(`${this.what}: truncated reading ${field} (needs ${n} bytes, ${this.end - this.pos} left)`, this.base + this.pos);
    }
  }

  /** Fails unless `count` entries of `entrySize` bytes fit in what is left: checked before any allocation. */
  needEntries(count: number, entrySize: number, field: string): void {
    if (count * entrySize > this.end - this.pos) {
      throw new MediaError(`${this.what}: ${count} ${field} entries of ${entrySize} bytes do not fit in the ${this.end - this.pos} bytes left`, this.base + this.pos);
    }
  }

  u8(field = 'u8'): number {
    this.need(1, field);
    return this.buf[this.pos++] as number;
  }

  u16(field = 'u16'): number {
    this.need(2, field);
    const b = this.buf;
    const p = this.pos;
    this.pos += 2;
    return ((b[p] as number) << 8) | (b[p + 1] as number);
  }

  u24(field = 'u24'): number {
    this.need(3, field);
    const b = this.buf;
    const p = this.pos;
    this.pos += 3;
    return ((b[p] as number) << 16) | ((b[p + 1] as number) << 8) | (b[p + 2] as number);
  }

  u32(field = 'u32'): number {
    this.need(4, field);
    const b = this.buf;
    const p = this.pos;
    this.pos += 4;
    return (b[p] as number) * 0x100_0000 + (((b[p + 1] as number) << 16) | ((b[p + 2] as number) << 8) | (b[p + 3] as number));
  }

  i32(field = 'i32'): number {
    const v = this.u32(field);
    return v >= 0x8000_0000 ? v - TWO_32 : v;
  }

  /** A 64-bit unsigned value; beyond 2^53 − 1 it cannot be a position or a time we can use. */
  u64(field = 'u64'): number {
    const at = this.pos;
    const hi = this.u32(field);
    const lo = this.u32(field);
    if (hi >= 0x20_0000) throw new MediaError(`${this.what}: ${field} does not fit in 53 bits`, this.base + at);
    return hi * TWO_32 + lo;
  }

  fourcc(field = 'type'): string {
    this.need(4, field);
    const s = _fourccAt(this.buf, this.pos);
    this.pos += 4;
    return s;
  }

  /** A view (no copy) of the next `n` bytes. */
  bytes(n: number, field = 'bytes'): Uint8Array {
    this.need(n, field);
    const v = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return v;
  }

  skip(n: number, field = 'reserved'): void {
    this.need(n, field);
    this.pos += n;
  }

  /** Absolute position of the cursor, for error messages. */
  get at(): number {
    return this.base + this.pos;
  }
}

/**
 * A growable big-endian writer. `begin`/`end` write a box in place: the size is patched when the box closes,
 * so builders need not compute sizes ahead. Values outside a field's range are a MediaError rather than being
 * silently truncated into a corrupt file.
 */
export class _Writer {
  private buf: Uint8Array;
  private readonly open: number[] = [];
  pos = 0;

  constructor(capacity = 256) {
    this.buf = new Uint8Array(Math.max(16, capacity));
  }

  private ensure(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    let cap = this.buf.length * 2;
    while (cap < this.pos + n) cap *= 2;
    const next = new Uint8Array(cap);
    next.set(this.buf.subarray(0, this.pos));
    this.buf = next;
  }

  private check(v: number, max: number, field: string): void {
    if (!Number.isInteger(v) || v < 0 || v > max) throw new MediaError(`cannot write ${field} = ${v}: not an integer in 0..${max}`);
  }

  u8(v: number, field = 'u8'): this {
    this.check(v, 0xff, field);
    this.ensure(1);
    this.buf[this.pos++] = v;
    return this;
  }

  u16(v: number, field = 'u16'): this {
    this.check(v, 0xffff, field);
    this.ensure(2);
    this.buf[this.pos++] = v >>> 8;
    this.buf[this.pos++] = v & 0xff;
    return this;
  }

  u24(v: number, field = 'u24'): this {
    this.check(v, 0xff_ffff, field);
    this.ensure(3);
    this.buf[this.pos++] = v >>> 16;
    this.buf[this.pos++] = (v >>> 8) & 0xff;
    this.buf[this.pos++] = v & 0xff;
    return this;
  }

  u32(v: number, field = 'u32'): this {
    this.check(v, 0xffff_ffff, field);
    this.ensure(4);
    this._put32(this.pos, v);
    this.pos += 4;
    return this;
  }

  i32(v: number, field = 'i32'): this {
    if (!Number.isInteger(v) || v < -0x8000_0000 || v > 0x7fff_ffff) throw new MediaError(`cannot write ${field} = ${v}: not a 32-bit signed integer`);
    return this.u32(v < 0 ? v + TWO_32 : v, field);
  }

  u64(v: number, field = 'u64'): this {
    this.check(v, Number.MAX_SAFE_INTEGER, field);
    this.u32(Math.floor(v / TWO_32), field);
    return this.u32(v % TWO_32, field);
  }

  fourcc(type: string): this {
    if (!_isFourcc(type)) throw new MediaError(`cannot write box type ${JSON.stringify(type)}: not four latin1 characters`);
    this.ensure(4);
    for (let i = 0; i < 4; i++) this.buf[this.pos++] = type.charCodeAt(i);
    return this;
  }

  bytes(b: Uint8Array): this {
    this.ensure(b.length);
    this.buf.set(b, this.pos);
    this.pos += b.length;
    return this;
  }

  zeros(n: number): this {
    this.ensure(n);
    this.buf.fill(0, this.pos, this.pos + n);
    this.pos += n;
    return this;
  }

  /** Opens a box: its size is patched by the matching `end()`. */
  begin(type: string): this {
    this.open.push(this.pos);
    this.ensure(8);
    this.pos += 4;
    return this.fourcc(type);
  }

  beginFull(type: string, version: number, flags: number): this {
    return this.begin(type).u8(version, `${type} version`).u24(flags, `${type} flags`);
  }

  /** Closes the innermost open box; returns its start. */
  end(): number {
    const start = this.open.pop();
    if (start === undefined) throw new MediaError('box writer: end() without begin()');
    this.patchU32(start, this.pos - start);
    return start;
  }

  patchU32(at: number, v: number): void {
    this.check(v, 0xffff_ffff, 'patched u32');
    this._put32(at, v);
  }

  private _put32(at: number, v: number): void {
    this.buf[at] = v >>> 24;
    this.buf[at + 1] = (v >>> 16) & 0xff;
    this.buf[at + 2] = (v >>> 8) & 0xff;
    this.buf[at + 3] = v & 0xff;
  }

  /** The bytes written, trimmed to their length (one copy, so the result holds no spare capacity). */
  finish(): Uint8Array {
    if (this.open.length > 0) throw new MediaError('box writer: a box was left open');
    return this.buf.slice(0, this.pos);
  }
}
