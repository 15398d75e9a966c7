/**
 * The creation and modification times of a movie (ISO/IEC 14496-12 §8.2.2, §8.3.2, §8.4.2): `mvhd`, and the
 * `tkhd` and `mdhd` of every track, in seconds since 1904-01-01T00:00:00Z (the ISO BMFF epoch). Players and
 * ffprobe show the movie's creation time (`creation_time`). keyframe's init segments leave them zero; an export
 * sets them to the recording's start. Pure: a copy of the bytes with the fields patched in place (same size).
 */
import { MediaError } from '../../errors.js';
import { _Reader } from './_bytes.js';
import { findBoxes, type BoxHeader } from './box.js';

/** Seconds from 1904-01-01 to 1970-01-01. */
const EPOCH_1904_SECONDS = 2_082_844_800;

/** Whole seconds since 1904 (floor) of a time in epoch ms. */
export function seconds1904(ms: number): number {
  return Math.floor(ms / 1000) + EPOCH_1904_SECONDS;
}

/** Epoch ms of a time in seconds since 1904. */
export function msFrom1904(seconds: number): number {
  return (seconds - EPOCH_1904_SECONDS) * 1000;
}

export interface MovieTimes {
  /** Seconds since 1904. */
  readonly creation: number;
  readonly modification: number;
}

/** Every header box that carries the two times: mvhd, then per track tkhd and mdhd. */
function timeBoxes(init: Uint8Array): BoxHeader[] {
  const mvhd = findBoxes(init, ['moov', 'mvhd']);
  if (mvhd.length !== 1) throw new MediaError(`the init segment has ${mvhd.length} mvhd boxes, not one`);
  return [...mvhd, ...findBoxes(init, ['moov', 'trak', 'tkhd']), ...findBoxes(init, ['moov', 'trak', 'mdia', 'mdhd'])];
}

/** The times of each header box, in order (mvhd first). */
export function readMovieTimes(init: Uint8Array): MovieTimes[] {
  return timeBoxes(init).map((h) => {
    const r = new _Reader(init, h.offset + h.headerSize, h.offset + h.size, `box '${h.type}'`);
    const version = r.u8('version');
    r.skip(3, 'flags');
    return version === 1 ? { creation: r.u64('creation_time'), modification: r.u64('modification_time') } : { creation: r.u32('creation_time'), modification: r.u32('modification_time') };
  });
}

/** A copy of `init` with every header box's times set (version 0 boxes hold 32 bits: until 2040-02-06). */
export function setMovieTimes(init: Uint8Array, times: MovieTimes): Uint8Array {
  const out = Uint8Array.from(init);
  const view = new DataView(out.buffer, out.byteOffset, out.byteLength);
  for (const h of timeBoxes(out)) {
    const at = h.offset + h.headerSize;
    if (h.size - h.headerSize < 4 + (out[at] === 1 ? 16 : 8)) throw new MediaError(`box '${h.type}' is too short for its times`, h.offset);
    const put = (offset: number, v: number, field: string): void => {
      if (!(Number.isSafeInteger(v) && v >= 0)) throw new MediaError(`${h.type} ${field}: ${v} is not a time in seconds since 1904`);
      if (out[at] === 1) {
        view.setUint32(at + 4 + offset * 2, Math.floor(v / 0x1_0000_0000));
        view.setUint32(at + 8 + offset * 2, v % 0x1_0000_0000);
      } else {
        if (v > 0xffff_ffff) throw new MediaError(`${h.type} ${field}: ${v} does not fit the 32 bits of a version 0 box`);
        view.setUint32(at + 4 + offset, v);
      }
    };
    put(0, times.creation, 'creation_time');
    put(4, times.modification, 'modification_time');
  }
  return out;
}

/** The track_ID of every track (tkhd), in order. */
export function readTrackIds(init: Uint8Array): number[] {
  return findBoxes(init, ['moov', 'trak', 'tkhd']).map((h) => {
    const r = new _Reader(init, h.offset + h.headerSize, h.offset + h.size, "box 'tkhd'");
    const version = r.u8('version');
    r.skip(3 + (version === 1 ? 16 : 8), 'flags and times');
    return r.u32('track_ID');
  });
}
