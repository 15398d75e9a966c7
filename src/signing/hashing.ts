/**
 * Hashing per docs/signed-video.md §1: SHA-256 over each NAL unit as it is in the stream (escaped, header byte
 * first, no start code); a frame hash over the NAL hashes of an access unit; a unit hash chaining units.
 */
import { createHash, hash } from 'node:crypto';
import { MediaError } from '../errors.js';
import { NalType, nalType, unescapeRbsp } from '../media/h264/index.js';
import { isSigningSei, type ParameterSetHash } from './sei.js';
import { u64be } from './tlv.js';

export const ZERO_HASH = new Uint8Array(32);

export function sha256(data: Uint8Array): Uint8Array {
  return hash('sha256', data, 'buffer');
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
  // one-shot hashes (no Hash objects): the NAL units are hashed in place, as views, never copied. Digests come
  // back as 'binary' (latin1) strings, one byte per character: a Buffer per digest costs twice as much.
  let digests = '';
  let nalCount = 0;
  for (const nal of nals) {
    if (!isHashed(nal)) continue;
    digests += hash('sha256', nal, 'binary');
    nalCount++;
  }
  if (nalCount === 0) return undefined;
  return { hash: Buffer.from(hash('sha256', Buffer.from(digests, 'binary'), 'binary'), 'binary'), nalCount };
}

/**
 * unitHash = SHA-256(prevUnitHash ‖ sessionId ‖ counter (u64 BE) ‖ parameter-set count (u16 BE) ‖
 * (type u8 ‖ id u8 ‖ SHA-256 32 B) per parameter set in effect ‖ frameHash_1 ‖ … ‖ frameHash_n).
 */
export function unitHash(
  prev: Uint8Array,
  sessionId: Uint8Array,
  counter: bigint,
  parameterSets: readonly ParameterSetHash[],
  frameHashes: readonly Uint8Array[],
): Uint8Array {
  const h = createHash('sha256').update(prev).update(sessionId).update(u64be(counter));
  if (parameterSets.length > 0xffff) throw new MediaError('too many parameter sets');
  const ps = new Uint8Array(2 + 34 * parameterSets.length);
  ps[0] = parameterSets.length >>> 8;
  ps[1] = parameterSets.length & 0xff;
  parameterSets.forEach((e, i) => {
    if (e.sha256.length !== 32) throw new MediaError('parameter set hash must be 32 bytes');
    ps[2 + 34 * i] = e.type;
    ps[3 + 34 * i] = e.id;
    ps.set(e.sha256, 4 + 34 * i);
  });
  h.update(ps);
  for (const f of frameHashes) h.update(f);
  return h.digest();
}

/** Whether two parameter-set lists are the same (type, id and full hash, in order). */
export function sameParameterSets(a: readonly ParameterSetHash[], b: readonly ParameterSetHash[]): boolean {
  return a.length === b.length && a.every((x, i) => {
    const y = b[i];
    return y !== undefined && x.type === y.type && x.id === y.id && Buffer.from(x.sha256.buffer, x.sha256.byteOffset, x.sha256.length).equals(y.sha256);
  });
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
  list(): ParameterSetHash[] {
    return [...this.map.values()].sort((a, b) => a.type - b.type || a.id - b.id);
  }
}
