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
import { ByteReader, ByteWriter, malformed, strictUtf8, utf8 } from '../_bytes.js';

export { malformed };

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

export class Writer extends ByteWriter {
  id(s: string, what = 'identifier'): this {
    const b = idBytes(s, what);
    this.u8(b.length);
    this.chunks.push(b);
    return this;
  }
}

export class Reader extends ByteReader {
  id(what: string): string {
    const at = this.p;
    const n = this.u8(what);
    if (n === 0) throw malformed(`${what}: empty identifier`, at);
    return this.text(n, what, at);
  }

  /** Reads and checks `version ‖ type`. */
  header(type: number, what: string): void {
    const v = this.u8(`${what} version`);
    if (v !== WIRE_VERSION) throw malformed(`${what}: unknown version ${v}`, 0);
    const t = this.u8(`${what} type`);
    if (t !== type) throw malformed(`${what}: message type ${t}, expected ${type}`, 1);
  }

  end(what: string): void {
    this.expectEnd(`${what}: `);
  }
}

/** The type byte of a hardened message, by name; undefined when the bytes are not one (for logs and routing). */
export function messageType(data: Uint8Array): MessageTypeName | undefined {
  if (data.length < 2 || data[0] !== WIRE_VERSION) return undefined;
  const t = data[1];
  for (const [name, code] of Object.entries(MSG)) if (code === t) return name as MessageTypeName;
  return undefined;
}
