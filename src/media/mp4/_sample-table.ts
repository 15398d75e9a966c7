/**
 * Sample tables of an ordinary (non-fragmented) track (ISO/IEC 14496-12 §8.6–8.7): sizes (`stsz`/`stz2`), chunk
 * placement (`stsc` + `stco`/`co64`), decode times (`stts`), composition offsets (`ctts`) and sync samples
 * (`stss`). The tables are copied into typed arrays — each no larger than the box that holds it, checked before
 * allocation — and walked sample by sample, so no per-sample object array is ever built: memory is the tables
 * plus one sample.
 */
import { MediaError } from '../../errors.js';
import { _child, _openFullBox } from './box.js';
import type { BoxHeader } from './box.js';

export interface _SampleTables {
  count: number;
  /** Size of every sample when the table gives one size (`stsz` sample_size ≠ 0). */
  constantSize: number;
  sizes: Uint32Array | undefined;
  chunkOffsets: Float64Array;
  stscFirst: Uint32Array;
  stscSamples: Uint32Array;
  sttsCount: Uint32Array;
  sttsDelta: Uint32Array;
  cttsCount: Uint32Array | undefined;
  cttsOffset: Int32Array | undefined;
  /** Sync sample numbers (1-based); undefined: every sample is a sync sample. */
  stss: Uint32Array | undefined;
  /** Absolute offset of `stbl`, for error messages. */
  at: number;
}

export interface _TableSample {
  index: number;
  offset: number;
  size: number;
  dts: number;
  cto: number;
  duration: number;
  isSync: boolean;
  /** 0-based chunk number and whether the sample opens its chunk (for per-chunk `saio` offsets). */
  chunk: number;
  firstInChunk: boolean;
}

function _sizes(buf: Uint8Array, stbl: BoxHeader, base: number, fileSize: number): { count: number; constantSize: number; sizes: Uint32Array | undefined } {
  const stsz = _child(buf, stbl, 'stsz', base);
  if (stsz !== undefined) {
    const r = _openFullBox(buf, stsz, base).reader;
    const constantSize = r.u32('sample_size');
    const count = r.u32('sample_count');
    if (constantSize !== 0) {
      // no table bounds the count: the samples must at least fit in the file
      if (count * constantSize > fileSize) throw new MediaError(`stsz: ${count} samples of ${constantSize} bytes cannot fit in a ${fileSize}-byte file`, base + stsz.offset);
      return { count, constantSize, sizes: undefined };
    }
    r.needEntries(count, 4, 'entry_size');
    const sizes = new Uint32Array(count);
    for (let i = 0; i < count; i++) sizes[i] = r.u32('entry_size');
    return { count, constantSize: 0, sizes };
  }
  const stz2 = _child(buf, stbl, 'stz2', base);
  if (stz2 === undefined) throw new MediaError("stbl has neither 'stsz' nor 'stz2'", base + stbl.offset);
  const r = _openFullBox(buf, stz2, base).reader;
  r.skip(3);
  const fieldSize = r.u8('field_size');
  if (fieldSize !== 4 && fieldSize !== 8 && fieldSize !== 16) throw new MediaError(`stz2: field_size ${fieldSize}, must be 4, 8 or 16`, base + stz2.offset);
  const count = r.u32('sample_count');
  r.needEntries(Math.ceil((count * fieldSize) / 8), 1, 'entry_size byte');
  const sizes = new Uint32Array(count);
  let pair = 0;
  for (let i = 0; i < count; i++) {
    if (fieldSize === 16) sizes[i] = r.u16('entry_size');
    else if (fieldSize === 8) sizes[i] = r.u8('entry_size');
    else if (i % 2 === 0) {
      pair = r.u8('entry_size');
      sizes[i] = pair >> 4;
    } else sizes[i] = pair & 15;
  }
  return { count, constantSize: 0, sizes };
}

function _chunkOffsets(buf: Uint8Array, stbl: BoxHeader, base: number): Float64Array {
  const stco = _child(buf, stbl, 'stco', base);
  const co64 = stco === undefined ? _child(buf, stbl, 'co64', base) : undefined;
  const h = stco ?? co64;
  if (h === undefined) return new Float64Array(0);
  const r = _openFullBox(buf, h, base).reader;
  const count = r.u32('entry_count');
  const wide = h.type === 'co64';
  r.needEntries(count, wide ? 8 : 4, 'chunk_offset');
  const out = new Float64Array(count);
  for (let i = 0; i < count; i++) out[i] = wide ? r.u64('chunk_offset') : r.u32('chunk_offset');
  return out;
}

function _pairs(buf: Uint8Array, h: BoxHeader | undefined, base: number, what: string): { a: Uint32Array; b: Uint32Array } | undefined {
  if (h === undefined) return undefined;
  const r = _openFullBox(buf, h, base).reader;
  const count = r.u32('entry_count');
  r.needEntries(count, 8, what);
  const a = new Uint32Array(count);
  const b = new Uint32Array(count);
  for (let i = 0; i < count; i++) {
    a[i] = r.u32(what);
    b[i] = r.u32(what);
  }
  return { a, b };
}

function _stsc(buf: Uint8Array, stbl: BoxHeader, base: number): { first: Uint32Array; samples: Uint32Array } {
  const h = _child(buf, stbl, 'stsc', base);
  if (h === undefined) return { first: new Uint32Array(0), samples: new Uint32Array(0) };
  const r = _openFullBox(buf, h, base).reader;
  const count = r.u32('entry_count');
  r.needEntries(count, 12, 'sample-to-chunk');
  const first = new Uint32Array(count);
  const samples = new Uint32Array(count);
  for (let i = 0; i < count; i++) {
    first[i] = r.u32('first_chunk');
    samples[i] = r.u32('samples_per_chunk');
    r.skip(4, 'sample_description_index');
    const prev = i === 0 ? 0 : (first[i - 1] ?? 0);
    if ((first[i] ?? 0) <= prev || (i === 0 && first[0] !== 1)) throw new MediaError(`stsc: entry ${i} has first_chunk ${first[i]}; they must start at 1 and increase`, base + h.offset);
  }
  return { first, samples };
}

function _stss(buf: Uint8Array, stbl: BoxHeader, base: number): Uint32Array | undefined {
  const h = _child(buf, stbl, 'stss', base);
  if (h === undefined) return undefined;
  const r = _openFullBox(buf, h, base).reader;
  const count = r.u32('entry_count');
  r.needEntries(count, 4, 'sample_number');
  const out = new Uint32Array(count);
  for (let i = 0; i < count; i++) out[i] = r.u32('sample_number');
  return out;
}

/** Reads the sample tables of `stbl` (in `buf`, absolute offset `base`); `fileSize` bounds table-less counts. */
export function _parseSampleTables(buf: Uint8Array, stbl: BoxHeader, base: number, fileSize: number): _SampleTables {
  const { count, constantSize, sizes } = _sizes(buf, stbl, base, fileSize);
  const stts = _pairs(buf, _child(buf, stbl, 'stts', base), base, 'time-to-sample');
  const ctts = _pairs(buf, _child(buf, stbl, 'ctts', base), base, 'composition offset');
  const stsc = _stsc(buf, stbl, base);
  return {
    count,
    constantSize,
    sizes,
    chunkOffsets: _chunkOffsets(buf, stbl, base),
    stscFirst: stsc.first,
    stscSamples: stsc.samples,
    sttsCount: stts?.a ?? new Uint32Array(0),
    sttsDelta: stts?.b ?? new Uint32Array(0),
    cttsCount: ctts?.a,
    // composition offsets are read as signed, whatever the version, as decoders do
    cttsOffset: ctts === undefined ? undefined : new Int32Array(ctts.b.buffer),
    stss: _stss(buf, stbl, base),
    at: base + stbl.offset,
  };
}

/** A run-length table (`stts`, `ctts`) walked one sample at a time. */
class _Runs {
  private run = 0;
  private left: number;

  constructor(
    private readonly counts: Uint32Array,
    private readonly what: string,
    private readonly at: number,
  ) {
    this.left = counts[0] ?? 0;
  }

  /** Index of the run the next sample falls in. */
  next(sample: number): number {
    while (this.left === 0) {
      this.run++;
      if (this.run >= this.counts.length) throw new MediaError(`${this.what} covers only ${sample} samples`, this.at);
      this.left = this.counts[this.run] ?? 0;
    }
    this.left--;
    return this.run;
  }
}

/** The samples of the tables in decode order. MediaError where the tables disagree with each other. */
export function* _walkSampleTables(t: _SampleTables): Generator<_TableSample> {
  if (t.count === 0) return;
  const stts = new _Runs(t.sttsCount, 'stts', t.at);
  const ctts = t.cttsCount !== undefined ? new _Runs(t.cttsCount, 'ctts', t.at) : undefined;
  let stssAt = 0;
  let stscAt = 0;
  let dts = 0;
  let i = 0;
  for (let c = 0; c < t.chunkOffsets.length && i < t.count; c++) {
    while (stscAt + 1 < t.stscFirst.length && (t.stscFirst[stscAt + 1] ?? 0) <= c + 1) stscAt++;
    const perChunk = t.stscSamples[stscAt] ?? 0;
    let offset = t.chunkOffsets[c] ?? 0;
    for (let k = 0; k < perChunk && i < t.count; k++, i++) {
      const size = t.sizes !== undefined ? (t.sizes[i] ?? 0) : t.constantSize;
      const run = stts.next(i);
      const duration = t.sttsDelta[run] ?? 0;
      const cto = ctts !== undefined ? (t.cttsOffset?.[ctts.next(i)] ?? 0) : 0;
      let isSync = true;
      if (t.stss !== undefined) {
        while (stssAt < t.stss.length && (t.stss[stssAt] ?? 0) < i + 1) stssAt++;
        isSync = t.stss[stssAt] === i + 1;
      }
      yield { index: i, offset, size, dts, cto, duration, isSync, chunk: c, firstInChunk: k === 0 };
      offset += size;
      dts += duration;
      if (dts > Number.MAX_SAFE_INTEGER) throw new MediaError(`decode time of sample ${i + 1} exceeds 2^53`, t.at);
    }
  }
  if (i < t.count) throw new MediaError(`stsc/stco place only ${i} of ${t.count} samples`, t.at);
}
