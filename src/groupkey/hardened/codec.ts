/**
 * The byte-level codec shared by every hardened-mode message: a strict big-endian writer and reader.
 *
 *   u8, u16, u32           unsigned big-endian
 *   u64                    unsigned big-endian, limited to Number.MAX_SAFE_INTEGER (epochs, milliseconds)
 *   id                     u8 length (1–255) ‖ well-formed UTF-8 (group and camera identifiers)
 *   fixed(n)               n raw bytes
 *
 * Every message starts with `version u8 (1) ‖ type u8` (MSG below). Decoding is strict: truncation, trailing
 * bytes, an out-of-range length or number, or malformed UTF-8 is a GroupKeyError (KF_ERR_GROUPKEY_MESSAGE) with
 * the offset where the reader stopped. Only structure is checked here; each message module adds its own rules.
 */
import { ErrorCodes, GroupKeyError } from '../../errors.js';

/** The hardened wire format's version byte. */
export const WIRE_VERSION = 1;

/** Message type bytes (the second byte of every message, and `msgType` in a wrap's AAD). */
export const MSG = {
  bundle: 1,
  welcome: 2,
  challenge: 3,
  cameraTag: 4,
  aggregate: 5,
  tagList: 6,
} as const;

export type MessageTypeName = keyof typeof MSG;

/** Identifiers are 1–255 bytes of UTF-8. */
export const MAX_ID_BYTES = 255;

const utf8 = new TextEncoder();
const strictUtf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

export function malformed(message: string, offset?: number): GroupKeyError {
  return new GroupKeyError(ErrorCodes.GROUPKEY_MESSAGE, message, offset);
}

/** The UTF-8 bytes of an identifier, checked for length. */
export function idBytes(id: string, what = 'identifier'): Uint8Array {
  const b = utf8.encode(id);
  if (b.length === 0 || b.length > MAX_ID_BYTES) throw malformed(`${what}: ${b.length} bytes (must be 1–${MAX_ID_BYTES})`);
  if (strictUtf8.decode(b) !== id) throw malformed(`${what}: not well-formed Unicode`);
  return b;
}

/** Orders identifiers by their UTF-8 bytes: the canonical order of every identifier list on the wire. */
export function compareIds(a: string, b: string): number {
  return Buffer.compare(utf8.encode(a), utf8.encode(b));
}

export class Writer {
  private readonly chunks: Uint8Array[] = [];

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

  id(s: string, what = 'identifier'): this {
    const b = idBytes(s, what);
    this.u8(b.length);
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

export class Reader {
  p = 0;
  constructor(private readonly data: Uint8Array) {}

  get remaining(): number {
    return this.data.length - this.p;
  }

  private need(n: number, what: string): void {
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

  u64(what: string): number {
    this.need(8, what);
    const at = this.p;
    const v = new DataView(this.data.buffer, this.data.byteOffset + this.p, 8).getBigUint64(0, false);
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw malformed(`${what}: ${v} exceeds 2^53 − 1`, at);
    this.p += 8;
    return Number(v);
  }

  id(what: string): string {
    const at = this.p;
    const n = this.u8(what);
    if (n === 0) throw malformed(`${what}: empty identifier`, at);
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

  fixed(n: number, what: string): Uint8Array {
    this.need(n, what);
    const b = Uint8Array.from(this.data.subarray(this.p, this.p + n));
    this.p += n;
    return b;
  }

  /** Reads and checks `version ‖ type`. */
  header(type: number, what: string): void {
    const v = this.u8(`${what} version`);
    if (v !== WIRE_VERSION) throw malformed(`${what}: unknown version ${v}`, 0);
    const t = this.u8(`${what} type`);
    if (t !== type) throw malformed(`${what}: message type ${t}, expected ${type}`, 1);
  }

  end(what: string): void {
    if (this.p !== this.data.length) throw malformed(`${what}: ${this.data.length - this.p} trailing bytes`, this.p);
  }
}

/** The type byte of a hardened message, by name; undefined when the bytes are not one (for logs and routing). */
export function messageType(data: Uint8Array): MessageTypeName | undefined {
  if (data.length < 2 || data[0] !== WIRE_VERSION) return undefined;
  const t = data[1];
  for (const [name, code] of Object.entries(MSG)) if (code === t) return name as MessageTypeName;
  return undefined;
}
