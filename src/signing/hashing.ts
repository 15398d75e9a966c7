/**
 * Hashing per docs/signed-video.md §1: SHA-256 over each NAL unit as it is in the stream (escaped, header byte
 * first, no start code); a frame hash over the NAL hashes of an access unit; a unit hash chaining units.
 */
import { createHash } from 'node:crypto';
import { MediaError } from '../errors.js';
import { NalType, nalType, unescapeRbsp } from '../media/h264/index.js';
import { isSigningSei } from './sei.js';
import { u64be } from './tlv.js';

export const ZERO_HASH = new Uint8Array(32);

export function sha256(data: Uint8Array): Uint8Array {
  return createHash('sha256').update(data).digest();
}

/**
 * Whether a NAL unit is hashed: everything except AUD, filler data and the Media Signing SEIs (VCL, SPS, PPS,
 * other SEIs, and — fail-closed — every type the format does not name).
 */
export function isHashed(nal: Uint8Array): boolean {
  const t = nalType(nal);
  if (t === NalType.AUD || t === NalType.FILLER) return false;
  if (t === NalType.SEI) return !isSigningSei(nal);
  return true;
}

/** frameHash: SHA-256 over the concatenated NAL hashes of the hashed NAL units of an access unit; undefined if none. */
export function frameHash(nals: readonly Uint8Array[]): { hash: Uint8Array; nalCount: number } | undefined {
  const h = createHash('sha256');
  let n = 0;
  for (const nal of nals) {
    if (!isHashed(nal)) continue;
    h.update(sha256(nal));
    n++;
  }
  return n === 0 ? undefined : { hash: h.digest(), nalCount: n };
}

/** unitHash = SHA-256(prevUnitHash ‖ sessionId ‖ counter (u64 BE) ‖ frameHash_1 ‖ … ‖ frameHash_n). */
export function unitHash(prev: Uint8Array, sessionId: Uint8Array, counter: bigint, frameHashes: readonly Uint8Array[]): Uint8Array {
  const h = createHash('sha256').update(prev).update(sessionId).update(u64be(counter));
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
  private readonly map = new Map<string, { type: number; id: number; sha256: Uint8Array }>();

  push(nal: Uint8Array): void {
    const t = nalType(nal);
    if (t !== NalType.SPS && t !== NalType.PPS) return;
    let id: number;
    try {
      id = parameterSetId(nal);
    } catch (e) {
      if (!(e instanceof MediaError)) throw e;
      id = 255;
    }
    this.map.set(`${t}:${id}`, { type: t, id: Math.min(id, 255), sha256: sha256(nal) });
  }

  /** Every parameter set in effect, SPSs first, by id. */
  list(): { type: number; id: number; sha256: Uint8Array }[] {
    return [...this.map.values()].sort((a, b) => a.type - b.type || a.id - b.id);
  }
}
