/**
 * Subsample maps (ISO/IEC 23001-7 §9.5, §10.2 for NAL-structured video): which bytes of a length-prefixed AVC
 * sample stay clear and which are protected. Rules:
 *
 * - every NAL keeps its length prefix and NAL header clear;
 * - non-VCL NAL units (SPS, PPS, SEI, AUD, …) are entirely clear;
 * - for `cbcs`, the slice header of a VCL NAL stays clear as well, so that a demuxer or decoder reads slice
 *   type, frame number and POC without the key (what Apple, Shaka and OvenMediaEngine do); for `cenc` the
 *   protected range starts right after the NAL header (what ffmpeg's writer does);
 * - clear bytes accumulate into the next subsample; BytesOfClearData is 16 bits, so a clear run over 65,535
 *   bytes is split into several (65,535, 0) subsamples (the overflow OvenMediaEngine PR #2264 found);
 * - a trailing clear run becomes a final (clear, 0) subsample.
 *
 * The map is pure: the caller supplies, per VCL NAL, how many of its bytes (header included) must stay clear.
 */
import { MediaError } from '../errors.js';

export interface Subsample {
  readonly clear: number;
  readonly protected: number;
}

export const MAX_CLEAR = 0xffff;

/** A NAL unit inside a sample: where it starts (after its length prefix) and how long it is. */
export interface NalSpan {
  readonly offset: number;
  readonly length: number;
}

/**
 * Splits a length-prefixed sample into NAL spans without copying. Lengths running past the sample are a
 * MediaError: an encryptor must never guess where a NAL ends.
 */
export function nalSpans(sample: Uint8Array, lengthSize: 1 | 2 | 4): NalSpan[] {
  const spans: NalSpan[] = [];
  let pos = 0;
  while (pos < sample.length) {
    if (pos + lengthSize > sample.length) throw new MediaError('sample ends inside a NAL length prefix', pos);
    let len = 0;
    for (let i = 0; i < lengthSize; i++) len = len * 256 + (sample[pos + i] ?? 0);
    pos += lengthSize;
    if (len === 0 || pos + len > sample.length) throw new MediaError(`NAL length ${len} does not fit the sample`, pos - lengthSize);
    spans.push({ offset: pos, length: len });
    pos += len;
  }
  return spans;
}

/**
 * Builds the subsample map of a sample. `clearBytes(span, nalType)` returns, for a VCL NAL, how many of its bytes
 * (counting the NAL header) stay clear; non-VCL NAL units are always clear.
 */
export function subsampleMap(
  sample: Uint8Array,
  lengthSize: 1 | 2 | 4,
  clearBytes: (span: NalSpan, nalType: number) => number,
): Subsample[] {
  const out: Subsample[] = [];
  let clear = 0;
  const pushClear = (n: number): void => {
    clear += n;
  };
  const emit = (prot: number): void => {
    while (clear > MAX_CLEAR) {
      out.push({ clear: MAX_CLEAR, protected: 0 });
      clear -= MAX_CLEAR;
    }
    out.push({ clear, protected: prot });
    clear = 0;
  };
  for (const span of nalSpans(sample, lengthSize)) {
    const type = (sample[span.offset] ?? 0) & 0x1f;
    pushClear(lengthSize);
    if (type >= 1 && type <= 5) {
      const keep = Math.min(span.length, Math.max(1, clearBytes(span, type)));
      pushClear(keep);
      const prot = span.length - keep;
      if (prot > 0) emit(prot);
    } else {
      pushClear(span.length);
    }
  }
  if (clear > 0 || out.length === 0) emit(0);
  return out;
}

/** Checks that a map covers exactly `size` bytes with 16-bit clear counts; MediaError otherwise. */
export function assertCovers(subsamples: readonly Subsample[], size: number): void {
  let total = 0;
  for (const s of subsamples) {
    if (!Number.isInteger(s.clear) || !Number.isInteger(s.protected) || s.clear < 0 || s.protected < 0 || s.clear > MAX_CLEAR) {
      throw new MediaError(`bad subsample (${s.clear}, ${s.protected})`);
    }
    total += s.clear + s.protected;
  }
  if (total !== size) throw new MediaError(`subsamples cover ${total} bytes, the sample has ${size}`);
}
