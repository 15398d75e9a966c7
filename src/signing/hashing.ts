/**
 * Hashing (docs/signed-video.md §1). Every NAL unit is hashed once, SHA-256 over its bytes as they are in the stream
 * (escaped, header byte first, no start code, trailing zero bytes not included); the two layers use that digest:
 *
 * - ONVIF Media Signing: the I and P slices (NAL types 5 and 1) and the unsigned ONVIF SEIs are hashed, in decoding
 *   order. The primary slice of an IDR picture is the anchor: its hash stands as it is, every other slice is hashed
 *   again together with the anchor, H(anchor ‖ H(slice)) (the anchor is all zeros before the first IDR picture); an
 *   ONVIF SEI stands alone. The GOP hash is SHA-256 over those hashes in order.
 * - keyframe: a frame hash per access unit, SHA-256 over the NAL hashes of every NAL unit of it but access unit
 *   delimiters, filler, SPS and PPS (bound in full by the parameter-set digest) and the signing SEIs: slices, data
 *   partitions, every other SEI after the stream's first SPS and, failing closed, every type the format does not
 *   name. (An SEI before the first SPS cannot be parsed yet, and GStreamer's h264parse drops it.)
 */
import { createHash, hash } from 'node:crypto';
import { MediaError } from '../errors.js';
import { NalType, nalType, unescapeRbsp } from '../media/h264/index.js';

export const ZERO_HASH = new Uint8Array(32);

export function sha256(data: Uint8Array): Uint8Array {
  return hash('sha256', data, 'buffer');
}

/** The NAL unit without trailing zero bytes (Annex-B padding: a NAL unit never ends in 0x00). */
export function trimmed(nal: Uint8Array): Uint8Array {
  let end = nal.length;
  while (end > 1 && nal[end - 1] === 0) end--;
  return end === nal.length ? nal : nal.subarray(0, end);
}

/** SHA-256 of a NAL unit as a 32-character 'binary' (latin1) string: one byte per character, no Buffer per digest. */
export function nalDigest(nal: Uint8Array): string {
  return hash('sha256', trimmed(nal), 'binary');
}

/** How ONVIF Media Signing hashes a NAL unit: undefined when it does not. `signingSei` classifies SEIs. */
export type OnvifItemKind = 'anchor' | 'slice' | 'sei';

/** The ONVIF item kind of a non-SEI NAL unit (SEIs are classified by their parser). */
export function onvifSliceKind(nal: Uint8Array): OnvifItemKind | undefined {
  const t = (nal[0] ?? 0) & 0x1f;
  if (t === NalType.IDR) return ((nal[1] ?? 0) & 0x80) !== 0 ? 'anchor' : 'slice';
  if (t === NalType.SLICE) return 'slice';
  return undefined;
}

/** Whether the first slice of a picture (first_mb_in_slice 0): its first payload bit is 1. */
export function isPrimarySlice(nal: Uint8Array): boolean {
  const t = (nal[0] ?? 0) & 0x1f;
  return (t === NalType.IDR || t === NalType.SLICE) && ((nal[1] ?? 0) & 0x80) !== 0;
}

/**
 * The ONVIF linking of NAL hashes: an anchor (the latest IDR primary slice) and the items hashed with it. Items are
 * 'binary' strings of 32 characters.
 */
export class OnvifLinker {
  private anchor = String.fromCharCode(...ZERO_HASH);

  /** The item hash of a NAL unit whose digest is `digest`. */
  item(kind: OnvifItemKind, digest: string): string {
    if (kind === 'anchor') {
      this.anchor = digest;
      return digest;
    }
    if (kind === 'sei') return digest;
    return hash('sha256', Buffer.from(this.anchor + digest, 'binary'), 'binary');
  }
}

/** SHA-256 over item hashes in order ('binary' strings). */
export function gopHash(items: readonly string[]): Uint8Array {
  return hash('sha256', Buffer.from(items.join(''), 'binary'), 'buffer');
}

/** The digest an unsigned ONVIF SEI is hashed by: escaped when reserved bit 6 says so, else without emulation prevention. */
export function onvifSeiDigest(nal: Uint8Array, epbBeforeHashing: boolean): string {
  const n = trimmed(nal);
  return epbBeforeHashing ? hash('sha256', n, 'binary') : hash('sha256', unescapeRbsp(n).rbsp, 'binary');
}

/** Whether keyframe's frame hash covers a NAL unit of this type (SEIs: unless they are signing SEIs). */
export function keyframeHashedType(t: number): boolean {
  return t !== NalType.AUD && t !== NalType.FILLER && t !== NalType.SPS && t !== NalType.PPS;
}

/** keyframe's frame hash: SHA-256 over the NAL digests ('binary' strings) of an access unit's hashed NAL units. */
export function frameHashOf(digests: string): Uint8Array {
  return hash('sha256', Buffer.from(digests, 'binary'), 'buffer');
}

export interface ParameterSetHash {
  /** NAL unit type: 7 (SPS) or 8 (PPS). */
  readonly type: number;
  readonly id: number;
  readonly sha256: Uint8Array;
}

/** Bytes of the parameter-set digest keyframe's unit SEI carries (the full 32 go into the unit digest). */
export const PS_DIGEST_BYTES = 8;

/**
 * The parameter-set digest: SHA-256("keyframe parameter sets" ‖ count u16 BE ‖ (type u8 ‖ id u8 ‖ SHA-256 32 B) per
 * parameter set in effect, SPSs first, by id). The unit SEI carries its first 8 bytes.
 */
export function parameterSetDigest(list: readonly ParameterSetHash[]): Uint8Array {
  if (list.length > 0xffff) throw new MediaError('too many parameter sets');
  const h = createHash('sha256').update('keyframe parameter sets');
  const ps = new Uint8Array(2 + 34 * list.length);
  ps[0] = list.length >>> 8;
  ps[1] = list.length & 0xff;
  list.forEach((e, i) => {
    if (e.sha256.length !== 32) throw new MediaError('parameter set hash must be 32 bytes');
    ps[2 + 34 * i] = e.type;
    ps[3 + 34 * i] = e.id;
    ps.set(e.sha256, 4 + 34 * i);
  });
  return h.update(ps).digest();
}

/**
 * The unit digest: SHA-256("keyframe unit" ‖ parameter-set digest (32 B) ‖ full frame hashes in order). The unit SEI
 * carries it in full, so that the truncated per-frame hashes only localise and never decide alone.
 */
export function unitDigest(psDigest: Uint8Array, frameHashes: readonly Uint8Array[]): Uint8Array {
  const h = createHash('sha256').update('keyframe unit').update(psDigest);
  for (const f of frameHashes) h.update(f);
  return h.digest();
}

function ue(bits: { data: Uint8Array; pos: number }): number {
  let zeros = 0;
  const bit = (): number => {
    const byte = bits.data[bits.pos >>> 3];
    if (byte === undefined) throw new MediaError('parameter set truncated');
    const b = (byte >>> (7 - (bits.pos & 7))) & 1;
    bits.pos++;
    return b;
  };
  while (bit() === 0) if (++zeros > 31) throw new MediaError('bad Exp-Golomb code in a parameter set');
  let v = 0;
  for (let i = 0; i < zeros; i++) v = v * 2 + bit();
  return 2 ** zeros - 1 + v;
}

/** seq_parameter_set_id of an SPS or pic_parameter_set_id of a PPS. */
export function parameterSetId(nal: Uint8Array): number {
  const { rbsp } = unescapeRbsp(nal);
  const t = nalType(nal);
  const bits = { data: rbsp, pos: t === NalType.SPS ? 32 : 8 };
  return ue(bits);
}

/** Tracks the latest content (SHA-256) of every SPS and PPS, by id, in stream order. */
export class ParameterSetTracker {
  private readonly map = new Map<string, ParameterSetHash>();
  private cached: Uint8Array | undefined;

  push(nal: Uint8Array): void {
    const t = (nal[0] ?? 0) & 0x1f;
    if (t !== NalType.SPS && t !== NalType.PPS) return;
    let id: number;
    try {
      id = parameterSetId(nal);
    } catch (e) {
      if (!(e instanceof MediaError)) throw e;
      id = 255;
    }
    const key = `${t}:${id}`;
    const sha = sha256(trimmed(nal));
    const old = this.map.get(key);
    if (old !== undefined && Buffer.from(old.sha256).equals(sha)) return;
    this.map.set(key, { type: t, id: Math.min(id, 255), sha256: sha });
    this.cached = undefined;
  }

  /** Every parameter set in effect, SPSs first, by id. */
  list(): ParameterSetHash[] {
    return [...this.map.values()].sort((a, b) => a.type - b.type || a.id - b.id);
  }

  /** parameterSetDigest (32 bytes) of the parameter sets in effect (kept until one changes). */
  digest(): Uint8Array {
    this.cached ??= parameterSetDigest(this.list());
    return this.cached;
  }
}
