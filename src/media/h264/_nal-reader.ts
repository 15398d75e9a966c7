/** Shared prelude of the NAL-unit parsers: check the header type, remove emulation prevention, read after the header. */
import { MediaError } from '../../errors.js';
import { _BitReader } from './_bits.js';
import { nalType } from './nal.js';
import { unescapeRbsp } from './rbsp.js';

/** A bit reader positioned after the 1-byte NAL header of `nal`, which must be of type `type`. */
export function _rbspReader(nal: Uint8Array, type: number, what: string): _BitReader {
  const t = nalType(nal);
  if (t !== type) throw new MediaError(`${what}: NAL unit type ${t}, expected ${type}`);
  return new _BitReader(unescapeRbsp(nal).rbsp, 1, what);
}

/** Skips a scaling_list() (7.3.2.1.1.1) of `size` coefficients: only the bit count matters to us. */
export function _skipScalingList(r: _BitReader, size: number): void {
  let last = 8;
  let next = 8;
  for (let j = 0; j < size; j++) {
    if (next !== 0) {
      const delta = r.seIn('delta_scale', -128, 127);
      next = (last + delta + 256) % 256;
    }
    last = next === 0 ? last : next;
  }
}
