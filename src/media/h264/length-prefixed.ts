/**
 * Length-prefixed NAL units (ISO/IEC 14496-15): the form of MP4 samples and RFC 6184-style framing, where each
 * NAL unit is preceded by its big-endian length in `lengthSize` bytes (avcC lengthSizeMinusOne + 1). Unlike
 * Annex-B this survives arbitrary payload bytes, which is why encrypted samples live in this form.
 */
import { MediaError } from '../../errors.js';

export type NalLengthSize = 1 | 2 | 4;

function _checkLengthSize(lengthSize: number): void {
  if (lengthSize !== 1 && lengthSize !== 2 && lengthSize !== 4) throw new MediaError(`NAL length size must be 1, 2 or 4, not ${lengthSize}`);
}

/**
 * Splits one sample into NAL units (views into `sample`, no copies). A length field that runs past the end, a
 * length that overruns the sample, or a zero length is a MediaError: a silently skipped byte would shift the
 * subsample map of a CENC sample.
 */
export function splitLengthPrefixed(sample: Uint8Array, lengthSize: NalLengthSize = 4): Uint8Array[] {
  _checkLengthSize(lengthSize);
  const nals: Uint8Array[] = [];
  let pos = 0;
  while (pos < sample.length) {
    if (pos + lengthSize > sample.length) throw new MediaError('NAL length field truncated', pos);
    let len = 0;
    for (let k = 0; k < lengthSize; k++) len = len * 256 + (sample[pos + k] ?? 0);
    pos += lengthSize;
    if (len === 0) throw new MediaError('zero-length NAL unit', pos - lengthSize);
    if (len > sample.length - pos) throw new MediaError(`NAL length ${len} overruns the sample (${sample.length - pos} bytes left)`, pos - lengthSize);
    nals.push(sample.subarray(pos, pos + len));
    pos += len;
  }
  return nals;
}

/** Writes NAL units with `lengthSize`-byte big-endian length prefixes (default 4), in one allocation. */
export function writeLengthPrefixed(nals: readonly Uint8Array[], lengthSize: NalLengthSize = 4): Uint8Array {
  _checkLengthSize(lengthSize);
  const max = 2 ** (8 * lengthSize) - 1;
  let total = 0;
  for (const nal of nals) {
    if (nal.length === 0) throw new MediaError('cannot write an empty NAL unit');
    if (nal.length > max) throw new MediaError(`NAL unit of ${nal.length} bytes does not fit a ${lengthSize}-byte length`);
    total += lengthSize + nal.length;
  }
  const out = new Uint8Array(total);
  let pos = 0;
  for (const nal of nals) {
    let len = nal.length;
    for (let k = lengthSize - 1; k >= 0; k--) {
      out[pos + k] = len & 0xff;
      len = Math.floor(len / 256);
    }
    out.set(nal, pos + lengthSize);
    pos += lengthSize + nal.length;
  }
  return out;
}
