/**
 * The TLV layer of the Media Signing SEI (docs/signed-video.md §1): tag u8, length u16 big-endian, value.
 * Pure functions; anything malformed is a MediaError.
 */
import { MediaError } from '../errors.js';

export interface Tlv {
  readonly tag: number;
  readonly value: Uint8Array;
  /** Offset of the tag byte in the buffer it was parsed from (0 for built TLVs). */
  readonly offset: number;
}

export const MAX_TLV_VALUE = 0xffff;

/** Encodes TLVs in order. A tag outside 0–255 or a value over 65,535 bytes is a MediaError. */
export function encodeTlvs(items: readonly { readonly tag: number; readonly value: Uint8Array }[]): Uint8Array {
  let size = 0;
  for (const t of items) {
    if (!Number.isInteger(t.tag) || t.tag < 0 || t.tag > 0xff) throw new MediaError(`TLV tag ${t.tag} out of range`);
    if (t.value.length > MAX_TLV_VALUE) throw new MediaError(`TLV ${t.tag}: value of ${t.value.length} bytes exceeds ${MAX_TLV_VALUE}`);
    size += 3 + t.value.length;
  }
  const out = new Uint8Array(size);
  let p = 0;
  for (const t of items) {
    out[p] = t.tag;
    out[p + 1] = t.value.length >>> 8;
    out[p + 2] = t.value.length & 0xff;
    out.set(t.value, p + 3);
    p += 3 + t.value.length;
  }
  return out;
}

/** Decodes a run of TLVs that fills `data` exactly. Values are views into `data`; offsets are relative to it. */
export function decodeTlvs(data: Uint8Array): Tlv[] {
  const out: Tlv[] = [];
  let p = 0;
  while (p < data.length) {
    if (data.length - p < 3) throw new MediaError('TLV header truncated', p);
    const tag = data[p] as number;
    const len = ((data[p + 1] as number) << 8) | (data[p + 2] as number);
    if (len > data.length - p - 3) throw new MediaError(`TLV ${tag}: value of ${len} bytes overruns the data (${data.length - p - 3} left)`, p);
    out.push({ tag, value: data.subarray(p + 3, p + 3 + len), offset: p });
    p += 3 + len;
  }
  return out;
}
