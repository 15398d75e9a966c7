/**
 * The CMAF header (ISO/IEC 23000-19 §7.3.2, "init segment") for one AVC video track: `ftyp` and a `moov` whose
 * sample tables are empty and whose `mvex` announces that the samples come in movie fragments. With a
 * protection scheme the sample entry becomes `encv` holding the clear `avcC` and a `sinf`; `pssh` boxes go at
 * the end of `moov`. Times and durations are zero: a live recording does not know its length, and players take
 * timing from the fragments.
 */
import { MediaError } from '../../errors.js';
import { _Writer, _show } from './_bytes.js';
import { buildAvcC } from './avcc.js';
import { readBoxHeader } from './box.js';
import type { AvcConfig } from './avcc.js';
import { buildSinf } from './protection.js';
import type { TrackProtection } from './protection.js';

export interface VideoTrack {
  trackId: number;
  timescale: number;
  width: number;
  height: number;
  avcC: AvcConfig;
}

export interface InitOptions {
  protection?: TrackProtection;
  /** Whole `pssh` boxes (see `buildPssh`), placed in `moov`. */
  pssh?: readonly Uint8Array[];
}

const MAJOR_BRAND = 'iso6';
const COMPATIBLE_BRANDS = ['iso6', 'cmfc', 'dash', 'avc1', 'mp41'];
/** ISO 639-2/T 'und' packed as three 5-bit letters. */
const LANGUAGE_UND = 0x55c4;
const UNITY_MATRIX = [0x0001_0000, 0, 0, 0, 0x0001_0000, 0, 0, 0, 0x4000_0000];

function _matrix(w: _Writer): void {
  for (const v of UNITY_MATRIX) w.u32(v);
}

function _sampleEntry(w: _Writer, track: VideoTrack, protection: TrackProtection | undefined): void {
  w.begin(protection !== undefined ? 'encv' : 'avc1');
  w.zeros(6).u16(1); // reserved, data_reference_index
  w.zeros(16); // pre_defined, reserved, pre_defined[3]
  w.u16(track.width, 'width').u16(track.height, 'height');
  w.u32(0x0048_0000).u32(0x0048_0000); // 72 dpi
  w.u32(0).u16(1); // reserved, frame_count
  w.zeros(32); // compressorname
  w.u16(0x0018).u16(0xffff); // depth, pre_defined = -1
  w.bytes(buildAvcC(track.avcC));
  if (protection !== undefined) w.bytes(buildSinf(protection));
  w.end();
}

function _trak(w: _Writer, track: VideoTrack, protection: TrackProtection | undefined): void {
  w.begin('trak');
  w.beginFull('tkhd', 0, 3); // enabled, in movie
  w.u32(0).u32(0).u32(track.trackId, 'track_ID').u32(0).u32(0); // times, track_ID, reserved, duration
  w.zeros(8).u16(0).u16(0).u16(0).u16(0); // reserved, layer, alternate_group, volume, reserved
  _matrix(w);
  w.u32(track.width * 0x1_0000, 'tkhd width').u32(track.height * 0x1_0000, 'tkhd height');
  w.end();
  w.begin('mdia');
  w.beginFull('mdhd', 0, 0).u32(0).u32(0).u32(track.timescale, 'timescale').u32(0).u16(LANGUAGE_UND).u16(0).end();
  w.beginFull('hdlr', 0, 0).u32(0).fourcc('vide').zeros(12).bytes(new TextEncoder().encode('VideoHandler\0')).end();
  w.begin('minf');
  w.beginFull('vmhd', 0, 1).zeros(8).end();
  w.begin('dinf').beginFull('dref', 0, 0).u32(1).beginFull('url ', 0, 1);
  w.end(); // url
  w.end(); // dref
  w.end(); // dinf
  w.begin('stbl');
  w.beginFull('stsd', 0, 0).u32(1);
  _sampleEntry(w, track, protection);
  w.end();
  w.beginFull('stts', 0, 0).u32(0).end();
  w.beginFull('stsc', 0, 0).u32(0).end();
  w.beginFull('stsz', 0, 0).u32(0).u32(0).end();
  w.beginFull('stco', 0, 0).u32(0).end();
  w.end(); // stbl
  w.end(); // minf
  w.end(); // mdia
  w.end(); // trak
}

/** Boxes passed in to be embedded must be exactly one whole box (of `type`, if given), or the parent would be corrupt. */
export function _wholeBox(p: Uint8Array, type?: string): Uint8Array {
  const h = readBoxHeader(p, 0, p.length);
  if ((type !== undefined && h.type !== type) || h.size !== p.length) throw new MediaError(`expected one whole ${type !== undefined ? `'${type}' ` : ''}box, got ${_show(h.type)} of ${h.size} in ${p.length} bytes`);
  return p;
}

/** `ftyp` + `moov` for one video track, ready to be followed by fragments from `buildFragment`. */
export function buildInitSegment(track: VideoTrack, options: InitOptions = {}): Uint8Array {
  if (!(Number.isInteger(track.trackId) && track.trackId >= 1 && track.trackId < 0xffff_ffff)) throw new MediaError(`track ID ${track.trackId}: must be 1..2^32-2`);
  if (!(Number.isInteger(track.timescale) && track.timescale >= 1)) throw new MediaError(`timescale ${track.timescale}: must be a positive integer`);
  const w = new _Writer(1024);
  w.begin('ftyp').fourcc(MAJOR_BRAND).u32(0);
  for (const b of COMPATIBLE_BRANDS) w.fourcc(b);
  w.end();
  w.begin('moov');
  w.beginFull('mvhd', 0, 0).u32(0).u32(0).u32(track.timescale, 'timescale').u32(0);
  w.u32(0x0001_0000).u16(0x0100).zeros(10); // rate 1.0, volume 1.0, reserved
  _matrix(w);
  w.zeros(24).u32(track.trackId + 1); // pre_defined, next_track_ID
  w.end();
  _trak(w, track, options.protection);
  w.begin('mvex');
  w.beginFull('trex', 0, 0).u32(track.trackId).u32(1).u32(0).u32(0).u32(0).end();
  w.end();
  for (const p of options.pssh ?? []) w.bytes(_wholeBox(p, 'pssh'));
  w.end();
  return w.finish();
}
