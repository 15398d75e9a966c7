/**
 * Writing boxes from ready payloads. Each call makes exactly one allocation (header and payload pieces copied
 * once into it), so builders can nest calls without quadratic copying of large payloads. A box whose size does
 * not fit 32 bits gets a 64-bit largesize header automatically; `largeBox` forces one (for tests and for
 * writers that patch sizes later).
 */
import { MediaError } from '../../errors.js';
import { _isFourcc } from './_bytes.js';

const MAX_U32 = 0xffff_ffff;

function _assemble(type: string, forceLarge: boolean, prefix: readonly number[], payload: readonly Uint8Array[]): Uint8Array {
  if (!_isFourcc(type)) throw new MediaError(`cannot write box type ${JSON.stringify(type)}: not four latin1 characters`);
  let bodySize = prefix.length;
  for (const p of payload) bodySize += p.length;
  const large = forceLarge || 8 + bodySize > MAX_U32;
  const headerSize = large ? 16 : 8;
  const size = headerSize + bodySize;
  const out = new Uint8Array(size);
  const view = new DataView(out.buffer, out.byteOffset, out.byteLength);
  if (large) {
    view.setUint32(0, 1);
    view.setUint32(8, Math.floor(size / 0x1_0000_0000));
    view.setUint32(12, size % 0x1_0000_0000);
  } else {
    view.setUint32(0, size);
  }
  for (let i = 0; i < 4; i++) out[4 + i] = type.charCodeAt(i);
  let pos = headerSize;
  for (const b of prefix) out[pos++] = b;
  for (const p of payload) {
    out.set(p, pos);
    pos += p.length;
  }
  return out;
}

function _versionFlags(type: string, version: number, flags: number): number[] {
  if (!Number.isInteger(version) || version < 0 || version > 0xff) throw new MediaError(`box '${type}': version ${version} is not a byte`);
  if (!Number.isInteger(flags) || flags < 0 || flags > 0xff_ffff) throw new MediaError(`box '${type}': flags ${flags} do not fit 24 bits`);
  return [version, flags >>> 16, (flags >>> 8) & 0xff, flags & 0xff];
}

/** A box of `type` holding the concatenation of `payload` (for `uuid`, pass the 16-byte extended type first). */
export function box(type: string, ...payload: Uint8Array[]): Uint8Array {
  return _assemble(type, false, [], payload);
}

/** A full box (§4.2.2): version (8 bits) and flags (24 bits) before the payload. */
export function fullBox(type: string, version: number, flags: number, ...payload: Uint8Array[]): Uint8Array {
  return _assemble(type, false, _versionFlags(type, version, flags), payload);
}

/** Like `box`, always with the 16-byte largesize header. */
export function largeBox(type: string, ...payload: Uint8Array[]): Uint8Array {
  return _assemble(type, true, [], payload);
}
