/**
 * CENC sample groups (ISO/IEC 23001-7 §6, ISO/IEC 14496-12 §8.9): a `seig` sample group description (`sgpd`)
 * and its sample-to-group map (`sbgp`) override the track's default KID, IV size and constant IV for some
 * samples. This is the standard form of key rotation inside one file: a fragment that starts a new key carries
 * its own `seig` entry. Only `seig` is read; other grouping types are ignored.
 */
import { MediaError } from '../../errors.js';
import { _Reader, _copy } from './_bytes.js';
import { _openFullBox } from './box.js';
import type { BoxHeader } from './box.js';

export interface SeigEntry {
  isProtected: boolean;
  cryptByteBlock: number;
  skipByteBlock: number;
  perSampleIvSize: 0 | 8 | 16;
  kid: Uint8Array;
  constantIv?: Uint8Array;
}

export interface SampleToGroup {
  /** Runs of (sample_count, group_description_index). */
  counts: Uint32Array;
  indices: Uint32Array;
}

/** Fragment-local group description indices start here (§8.9.4). */
export const _LOCAL_GROUP_BASE = 0x1_0000;

function _parseSeigEntry(r: _Reader): SeigEntry {
  r.skip(1);
  const pattern = r.u8('pattern');
  const isProtected = r.u8('isProtected');
  const ivSize = r.u8('Per_Sample_IV_Size');
  if (ivSize !== 0 && ivSize !== 8 && ivSize !== 16) throw new MediaError(`seig: per-sample IV size ${ivSize}, must be 0, 8 or 16`, r.at - 1);
  const kid = _copy(r.bytes(16, 'KID'));
  const e: SeigEntry = { isProtected: isProtected === 1, cryptByteBlock: pattern >> 4, skipByteBlock: pattern & 15, perSampleIvSize: ivSize, kid };
  if (isProtected === 1 && ivSize === 0) {
    const n = r.u8('constant_IV_size');
    if (n !== 8 && n !== 16) throw new MediaError(`seig: constant IV size ${n}, must be 8 or 16`, r.at - 1);
    e.constantIv = _copy(r.bytes(n, 'constant_IV'));
  }
  return e;
}

/** The `seig` entries of an `sgpd` box, or undefined for another grouping type. */
export function _parseSeigDescriptions(buf: Uint8Array, h: BoxHeader, base: number): SeigEntry[] | undefined {
  const { version, reader: r } = _openFullBox(buf, h, base);
  if (r.fourcc('grouping_type') !== 'seig') return undefined;
  const defaultLength = version === 1 ? r.u32('default_length') : 0;
  if (version >= 2) r.skip(4, 'default_sample_description_index');
  const count = r.u32('entry_count');
  r.needEntries(count, 20, 'seig');
  const out: SeigEntry[] = [];
  for (let i = 0; i < count; i++) {
    if (version === 1) {
      const len = defaultLength !== 0 ? defaultLength : r.u32('description_length');
      r.need(len, 'seig entry');
      const sub = new _Reader(r.buf, r.pos, r.pos + len, 'seig entry', r.base);
      out.push(_parseSeigEntry(sub));
      r.pos += len;
    } else {
      out.push(_parseSeigEntry(r));
    }
  }
  return out;
}

/** The runs of an `sbgp` box of grouping type `seig`, or undefined for another grouping type. */
export function _parseSeigSampleToGroup(buf: Uint8Array, h: BoxHeader, base: number): SampleToGroup | undefined {
  const { version, reader: r } = _openFullBox(buf, h, base);
  if (r.fourcc('grouping_type') !== 'seig') return undefined;
  if (version === 1) r.skip(4, 'grouping_type_parameter');
  const count = r.u32('entry_count');
  r.needEntries(count, 8, 'sample-to-group');
  const counts = new Uint32Array(count);
  const indices = new Uint32Array(count);
  for (let i = 0; i < count; i++) {
    counts[i] = r.u32('sample_count');
    indices[i] = r.u32('group_description_index');
  }
  return { counts, indices };
}

/** Walks an `sbgp` run table sample by sample: the group description index of each sample (0: none). */
export class _GroupCursor {
  private run = 0;
  private left: number;

  constructor(private readonly map: SampleToGroup | undefined) {
    this.left = map?.counts[0] ?? 0;
  }

  next(): number {
    const m = this.map;
    if (m === undefined) return 0;
    while (this.left === 0) {
      this.run++;
      if (this.run >= m.counts.length) return 0;
      this.left = m.counts[this.run] ?? 0;
    }
    this.left--;
    return m.indices[this.run] ?? 0;
  }
}

/**
 * The `seig` entry for a group description index: 0 is none; inside a fragment, indices above 0x10000 name the
 * fragment's own `sgpd`, lower ones the track's (§8.9.4).
 */
export function _resolveSeig(index: number, global: readonly SeigEntry[], local: readonly SeigEntry[], inFragment: boolean, at: number): SeigEntry | undefined {
  if (index === 0) return undefined;
  const [table, i] = inFragment && index > _LOCAL_GROUP_BASE ? [local, index - _LOCAL_GROUP_BASE - 1] : [global, index - 1];
  const e = table[i];
  if (e === undefined) throw new MediaError(`sample-to-group index ${index} names no seig entry`, at);
  return e;
}
