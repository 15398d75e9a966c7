/**
 * Movie fragments (ISO/IEC 14496-12 §8.8): which samples a `moof` describes for one track, where their bytes
 * are and when they play. Defaults cascade trun → tfhd → trex. The base data offset follows §8.8.7.1: an
 * explicit `base_data_offset`; else, with default-base-is-moof (CMAF, ffmpeg's `default_base_moof`) or for the
 * first `traf`, the first byte of the `moof`; else (the legacy rule) the end of the data of the preceding
 * `traf`. A `trun` without a data offset continues where the previous one ended.
 *
 * Planning a `moof` reads only headers and counts; the samples are then walked one at a time from the `trun`
 * entries, so a fragment never becomes an array of per-sample objects.
 */
import { MediaError } from '../../errors.js';
import type { _Reader } from './_bytes.js';
import { _child, _children, _iterateBoxes, _openFullBox, _readBoxHeader, childrenStart } from './box.js';
import type { BoxHeader } from './box.js';
import { _isCencAux, _parseSaio, _parseSaiz } from './protection.js';
import type { SaioInfo, SaizInfo, Scheme } from './protection.js';
import { _parseSeigDescriptions, _parseSeigSampleToGroup } from './_sample-groups.js';
import type { SampleToGroup, SeigEntry } from './_sample-groups.js';
import type { _FragmentDefaults } from './_track.js';

const TFHD_BASE_DATA_OFFSET = 0x00_0001;
const TFHD_SAMPLE_DESCRIPTION = 0x00_0002;
const TFHD_DURATION = 0x00_0008;
const TFHD_SIZE = 0x00_0010;
const TFHD_FLAGS = 0x00_0020;
const TFHD_DEFAULT_BASE_IS_MOOF = 0x02_0000;
const TRUN_DATA_OFFSET = 0x00_0001;
const TRUN_FIRST_FLAGS = 0x00_0004;
const TRUN_DURATION = 0x00_0100;
const TRUN_SIZE = 0x00_0200;
const TRUN_FLAGS = 0x00_0400;
const TRUN_CTO = 0x00_0800;
const SAMPLE_IS_NON_SYNC = 0x0001_0000;

export interface _TrafPlan {
  /** Absolute offset of the `traf`, for error messages. */
  at: number;
  /** Absolute base data offset. */
  base: number;
  /** `tfdt` baseMediaDecodeTime, when present. */
  decodeTime: number | undefined;
  defaults: _FragmentDefaults;
  truns: BoxHeader[];
  sampleCount: number;
  /** `saiz`/`saio` describing CENC information, when present (both, or neither). */
  saiz?: SaizInfo;
  saio?: SaioInfo;
  senc?: BoxHeader;
  /** Fragment-local `seig` descriptions and the sample-to-group map. */
  seig: SeigEntry[];
  sampleToGroup?: SampleToGroup;
}

export interface _FragmentSample {
  /** 0-based index in the `traf`. */
  index: number;
  offset: number;
  size: number;
  duration: number;
  dts: number;
  cto: number;
  isSync: boolean;
  trun: number;
  firstInTrun: boolean;
}

interface _Trun {
  version: number;
  flags: number;
  count: number;
  dataOffset: number | undefined;
  firstFlags: number | undefined;
  /** Reader positioned at the first entry. */
  reader: _Reader;
  entrySize: number;
}

function _openTrun(buf: Uint8Array, h: BoxHeader, base: number, defaults: _FragmentDefaults, fileSize: number): _Trun {
  const { version, flags, reader: r } = _openFullBox(buf, h, base);
  const count = r.u32('sample_count');
  const dataOffset = (flags & TRUN_DATA_OFFSET) !== 0 ? r.i32('data_offset') : undefined;
  const firstFlags = (flags & TRUN_FIRST_FLAGS) !== 0 ? r.u32('first_sample_flags') : undefined;
  let entrySize = 0;
  for (const f of [TRUN_DURATION, TRUN_SIZE, TRUN_FLAGS, TRUN_CTO]) if ((flags & f) !== 0) entrySize += 4;
  if (entrySize > 0) r.needEntries(count, entrySize, 'trun sample');
  // no table bounds the count: its samples must at least fit in the file, one byte each at the very least
  else if (count * Math.max(1, defaults.size) > fileSize) throw new MediaError(`trun: ${count} samples of ${defaults.size} bytes cannot fit in a ${fileSize}-byte file`, base + h.offset);
  return { version, flags, count, dataOffset, firstFlags, reader: r, entrySize };
}

/** Bytes of the samples of a `trun`: read from its entries, or count × default size. */
function _trunBytes(t: _Trun, defaults: _FragmentDefaults): number {
  if ((t.flags & TRUN_SIZE) === 0) return t.count * defaults.size;
  const { buf } = t.reader;
  let pos = t.reader.pos + ((t.flags & TRUN_DURATION) !== 0 ? 4 : 0);
  let total = 0;
  for (let i = 0; i < t.count; i++, pos += t.entrySize) total += (buf[pos] as number) * 0x100_0000 + (((buf[pos + 1] as number) << 16) | ((buf[pos + 2] as number) << 8) | (buf[pos + 3] as number));
  return total;
}

interface _Tfhd {
  trackId: number;
  flags: number;
  baseDataOffset: number | undefined;
  defaults: _FragmentDefaults;
}

function _tfhd(buf: Uint8Array, h: BoxHeader, base: number, trex: _FragmentDefaults): _Tfhd {
  const { flags, reader: r } = _openFullBox(buf, h, base);
  const trackId = r.u32('track_ID');
  const baseDataOffset = (flags & TFHD_BASE_DATA_OFFSET) !== 0 ? r.u64('base_data_offset') : undefined;
  if ((flags & TFHD_SAMPLE_DESCRIPTION) !== 0) r.skip(4, 'sample_description_index');
  const defaults: _FragmentDefaults = {
    duration: (flags & TFHD_DURATION) !== 0 ? r.u32('default_sample_duration') : trex.duration,
    size: (flags & TFHD_SIZE) !== 0 ? r.u32('default_sample_size') : trex.size,
    flags: (flags & TFHD_FLAGS) !== 0 ? r.u32('default_sample_flags') : trex.flags,
  };
  return { trackId, flags, baseDataOffset, defaults };
}

function _decodeTime(buf: Uint8Array, traf: BoxHeader, base: number): number | undefined {
  const h = _child(buf, traf, 'tfdt', base);
  if (h === undefined) return undefined;
  const { version, reader: r } = _openFullBox(buf, h, base);
  return version === 1 ? r.u64('baseMediaDecodeTime') : r.u32('baseMediaDecodeTime');
}

/** The CENC `saiz`/`saio` pair of a `traf` (ignoring pairs typed for other auxiliary information). */
function _auxPair(buf: Uint8Array, traf: BoxHeader, base: number, scheme: Scheme | undefined): { saiz?: SaizInfo; saio?: SaioInfo } {
  if (scheme === undefined) return {};
  const saiz = _children(buf, traf, 'saiz', base)
    .map((h) => _parseSaiz(buf, h, base))
    .find((s) => _isCencAux(s.auxInfoType, scheme));
  const saio = _children(buf, traf, 'saio', base)
    .map((h) => _parseSaio(buf, h, base))
    .find((s) => _isCencAux(s.auxInfoType, scheme));
  if ((saiz === undefined) !== (saio === undefined)) throw new MediaError(`traf has '${saiz === undefined ? 'saio' : 'saiz'}' without '${saiz === undefined ? 'saiz' : 'saio'}'`, base + traf.offset);
  return saiz !== undefined && saio !== undefined ? { saiz, saio } : {};
}

/**
 * Plans the `traf`s of track `trackId` in a `moof` held in `buf` (the whole box, at absolute offset `base`).
 * `scheme` is set for a protected track (its CENC boxes are then read).
 */
export function _planMoof(buf: Uint8Array, base: number, trackId: number, trex: _FragmentDefaults, fileSize: number, scheme: Scheme | undefined): _TrafPlan[] {
  const moof = _readBoxHeader(buf, 0, buf.length, base);
  const plans: _TrafPlan[] = [];
  let previousEnd: number | undefined;
  for (const traf of _iterateBoxes(buf, childrenStart(moof), moof.offset + moof.size, base)) {
    if (traf.type !== 'traf') continue;
    const tfhdBox = _child(buf, traf, 'tfhd', base);
    if (tfhdBox === undefined) throw new MediaError("traf has no 'tfhd'", base + traf.offset);
    const tfhd = _tfhd(buf, tfhdBox, base, trex);
    const dataBase =
      tfhd.baseDataOffset ?? ((tfhd.flags & TFHD_DEFAULT_BASE_IS_MOOF) !== 0 || previousEnd === undefined ? base : previousEnd);
    const truns = _children(buf, traf, 'trun', base);
    let pos = dataBase;
    let sampleCount = 0;
    for (const h of truns) {
      const t = _openTrun(buf, h, base, tfhd.defaults, fileSize);
      pos = (t.dataOffset !== undefined ? dataBase + t.dataOffset : pos) + _trunBytes(t, tfhd.defaults);
      sampleCount += t.count;
    }
    previousEnd = pos;
    if (tfhd.trackId !== trackId) continue;
    const plan: _TrafPlan = { at: base + traf.offset, base: dataBase, decodeTime: _decodeTime(buf, traf, base), defaults: tfhd.defaults, truns, sampleCount, seig: [] };
    if (scheme !== undefined) {
      Object.assign(plan, _auxPair(buf, traf, base, scheme));
      const senc = _child(buf, traf, 'senc', base);
      if (senc !== undefined) plan.senc = senc;
      for (const g of _children(buf, traf, 'sgpd', base)) for (const e of _parseSeigDescriptions(buf, g, base) ?? []) plan.seig.push(e);
      for (const g of _children(buf, traf, 'sbgp', base)) {
        const map = _parseSeigSampleToGroup(buf, g, base);
        if (map !== undefined) plan.sampleToGroup = map;
      }
    }
    plans.push(plan);
  }
  return plans;
}

/** The samples of a planned `traf`, in order, starting at decode time `startDts`. */
export function* _walkTraf(buf: Uint8Array, base: number, plan: _TrafPlan, startDts: number, fileSize: number): Generator<_FragmentSample> {
  let pos = plan.base;
  let dts = startDts;
  let index = 0;
  for (let n = 0; n < plan.truns.length; n++) {
    const t = _openTrun(buf, plan.truns[n] as BoxHeader, base, plan.defaults, fileSize);
    if (t.dataOffset !== undefined) pos = plan.base + t.dataOffset;
    const r = t.reader;
    for (let i = 0; i < t.count; i++, index++) {
      const duration = (t.flags & TRUN_DURATION) !== 0 ? r.u32('sample_duration') : plan.defaults.duration;
      const size = (t.flags & TRUN_SIZE) !== 0 ? r.u32('sample_size') : plan.defaults.size;
      let flags = i === 0 && t.firstFlags !== undefined ? t.firstFlags : plan.defaults.flags;
      if ((t.flags & TRUN_FLAGS) !== 0) flags = r.u32('sample_flags');
      const cto = (t.flags & TRUN_CTO) === 0 ? 0 : t.version === 0 ? r.u32('sample_composition_time_offset') : r.i32('sample_composition_time_offset');
      yield { index, offset: pos, size, duration, dts, cto, isSync: (flags & SAMPLE_IS_NON_SYNC) === 0, trun: n, firstInTrun: i === 0 };
      pos += size;
      dts += duration;
      if (dts > Number.MAX_SAFE_INTEGER) throw new MediaError('decode time exceeds 2^53', plan.at);
    }
  }
}
