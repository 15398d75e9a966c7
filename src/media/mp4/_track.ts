/**
 * The movie header (`moov`) as the demuxer needs it: the first video track's identity, timing, AVC
 * configuration and protection scheme, where its sample tables are, its fragment defaults (`trex`), the
 * track-level `seig` sample groups, and the `pssh` boxes. Only AVC (`avc1`, `avc3`, or `encv` over either) is
 * supported; anything else is a MediaError saying so.
 */
import { MediaError } from '../../errors.js';
import { _copy, _show } from './_bytes.js';
import { parseAvcC } from './avcc.js';
import type { AvcConfig } from './avcc.js';
import { _child, _children, _iterateBoxes, _openBox, _openFullBox, _readBoxHeader, boxPayload, childrenStart } from './box.js';
import type { BoxHeader } from './box.js';
import { _parseSinf } from './protection.js';
import type { TrackProtection } from './protection.js';
import { _parseSeigDescriptions } from './_sample-groups.js';
import type { SeigEntry } from './_sample-groups.js';

export interface TrackInfo {
  trackId: number;
  timescale: number;
  /** From the sample entry (the coded picture size). */
  width: number;
  height: number;
  /** `avc1`, `avc3` or `encv`. */
  sampleEntryType: string;
  avcC: AvcConfig;
  protection?: TrackProtection;
  /** Whole `pssh` boxes found in `moov` (copies). */
  pssh: Uint8Array[];
  /** True when `moov` has `mvex`: samples (also) come in movie fragments. */
  fragmented: boolean;
}

export interface _FragmentDefaults {
  duration: number;
  size: number;
  flags: number;
}

export interface _MovieTrack {
  info: TrackInfo;
  stbl: BoxHeader;
  trex: _FragmentDefaults;
  seig: SeigEntry[];
}

const _AVC_ENTRIES: ReadonlySet<string> = new Set(['avc1', 'avc3']);

function _need(h: BoxHeader | undefined, what: string, parent: BoxHeader, base: number): BoxHeader {
  if (h === undefined) throw new MediaError(`${_show(parent.type)} has no '${what}' box`, base + parent.offset);
  return h;
}

function _handlerType(buf: Uint8Array, mdia: BoxHeader, base: number): string | undefined {
  const hdlr = _child(buf, mdia, 'hdlr', base);
  if (hdlr === undefined) return undefined;
  const r = _openFullBox(buf, hdlr, base).reader;
  r.skip(4, 'pre_defined');
  return r.fourcc('handler_type');
}

function _trackId(buf: Uint8Array, tkhd: BoxHeader, base: number): number {
  const { version, reader: r } = _openFullBox(buf, tkhd, base);
  r.skip(version === 1 ? 16 : 8, 'creation/modification time');
  const id = r.u32('track_ID');
  if (id === 0) throw new MediaError('tkhd: track_ID 0 is reserved', base + tkhd.offset);
  return id;
}

function _timescale(buf: Uint8Array, mdhd: BoxHeader, base: number): number {
  const { version, reader: r } = _openFullBox(buf, mdhd, base);
  r.skip(version === 1 ? 16 : 8, 'creation/modification time');
  const ts = r.u32('timescale');
  if (ts === 0) throw new MediaError('mdhd: timescale 0', base + mdhd.offset);
  return ts;
}

interface _SampleEntry {
  type: string;
  width: number;
  height: number;
  avcC: AvcConfig;
  protection?: TrackProtection;
}

function _sampleEntry(buf: Uint8Array, stsd: BoxHeader, base: number): _SampleEntry {
  const r = _openFullBox(buf, stsd, base).reader;
  const count = r.u32('entry_count');
  if (count === 0) throw new MediaError('stsd: no sample entry', base + stsd.offset);
  const entry = _readBoxHeader(buf, r.pos, stsd.offset + stsd.size, base);
  const type = entry.type;
  if (!_AVC_ENTRIES.has(type) && type !== 'encv') throw new MediaError(`sample entry ${_show(type)} is not AVC (avc1, avc3, encv): not supported`, base + entry.offset);
  if (childrenStart(entry) > entry.offset + entry.size) throw new MediaError(`sample entry ${_show(type)}: ${entry.size} bytes are too few for a visual sample entry`, base + entry.offset);
  const f = _openBox(buf, entry, base);
  f.skip(24, 'sample entry fields');
  const width = f.u16('width');
  const height = f.u16('height');
  const avcCBox = _child(buf, entry, 'avcC', base);
  if (avcCBox === undefined) throw new MediaError(`sample entry ${_show(type)} has no avcC`, base + entry.offset);
  const avcC = parseAvcC(boxPayload(buf, avcCBox), base + avcCBox.offset + avcCBox.headerSize);
  const se: _SampleEntry = { type, width, height, avcC };
  if (type === 'encv') {
    const sinf = _need(_child(buf, entry, 'sinf', base), 'sinf', entry, base);
    se.protection = _parseSinf(buf, sinf, base);
    if (!_AVC_ENTRIES.has(se.protection.originalFormat)) throw new MediaError(`encv over ${_show(se.protection.originalFormat)} is not supported (avc1, avc3)`, base + sinf.offset);
  }
  return se;
}

function _trex(buf: Uint8Array, moov: BoxHeader, trackId: number, base: number): { fragmented: boolean; trex: _FragmentDefaults } {
  const mvex = _child(buf, moov, 'mvex', base);
  const trex: _FragmentDefaults = { duration: 0, size: 0, flags: 0 };
  if (mvex === undefined) return { fragmented: false, trex };
  for (const h of _children(buf, mvex, 'trex', base)) {
    const r = _openFullBox(buf, h, base).reader;
    if (r.u32('track_ID') !== trackId) continue;
    r.skip(4, 'default_sample_description_index');
    trex.duration = r.u32('default_sample_duration');
    trex.size = r.u32('default_sample_size');
    trex.flags = r.u32('default_sample_flags');
    break;
  }
  return { fragmented: true, trex };
}

/**
 * Reads `moov` (the whole box in `buf`, at absolute offset `base`) and describes its first video track.
 * MediaError when there is none.
 */
export function _parseMovie(buf: Uint8Array, base: number): _MovieTrack {
  const moov = _readBoxHeader(buf, 0, buf.length, base);
  if (moov.type !== 'moov') throw new MediaError(`expected 'moov', found ${_show(moov.type)}`, base);
  const pssh: Uint8Array[] = [];
  let found: { trak: BoxHeader; mdia: BoxHeader } | undefined;
  for (const h of _iterateBoxes(buf, childrenStart(moov), moov.offset + moov.size, base)) {
    if (h.type === 'pssh') pssh.push(_copy(buf.subarray(h.offset, h.offset + h.size)));
    if (h.type !== 'trak' || found !== undefined) continue;
    const mdia = _child(buf, h, 'mdia', base);
    if (mdia !== undefined && _handlerType(buf, mdia, base) === 'vide') found = { trak: h, mdia };
  }
  if (found === undefined) throw new MediaError('no video track in moov', base);
  const { trak, mdia } = found;
  const trackId = _trackId(buf, _need(_child(buf, trak, 'tkhd', base), 'tkhd', trak, base), base);
  const timescale = _timescale(buf, _need(_child(buf, mdia, 'mdhd', base), 'mdhd', mdia, base), base);
  const minf = _need(_child(buf, mdia, 'minf', base), 'minf', mdia, base);
  const stbl = _need(_child(buf, minf, 'stbl', base), 'stbl', minf, base);
  const entry = _sampleEntry(buf, _need(_child(buf, stbl, 'stsd', base), 'stsd', stbl, base), base);
  const seig: SeigEntry[] = [];
  for (const g of _children(buf, stbl, 'sgpd', base)) for (const e of _parseSeigDescriptions(buf, g, base) ?? []) seig.push(e);
  const { fragmented, trex } = _trex(buf, moov, trackId, base);
  const info: TrackInfo = { trackId, timescale, width: entry.width, height: entry.height, sampleEntryType: entry.type, avcC: entry.avcC, pssh, fragmented };
  if (entry.protection !== undefined) info.protection = entry.protection;
  return { info, stbl, trex, seig };
}
