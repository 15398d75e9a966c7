/**
 * Demuxing the first video track of an MP4 file, ordinary or fragmented, from a random-access source.
 *
 * - Ordinary files: the `moov` is read whole (its sample tables are unavoidable), then samples are read one at a
 *   time from wherever the tables put them. CENC information comes from `saiz`/`saio` in `stbl` (absolute file
 *   offsets, as ffmpeg's `cenc-aes-ctr` writer makes them) or from `senc`.
 * - Fragmented files: after `moov`, one `moof` at a time is read and its samples are read one by one, so memory
 *   is bounded by one `moof` plus one sample, never the whole file. CENC information comes from the `traf`.
 *
 * Anything malformed or unsupported is a MediaError with the byte offset where it was found; a truncated file
 * yields the samples before the damage, then fails. Edit lists are not applied: times are media times.
 */
import { MediaError } from '../../errors.js';
import { _readBoxHeader, _children, _child } from './box.js';
import type { BoxHeader } from './box.js';
import { _CencLocator } from './_cenc-info.js';
import type { _CencRun, _SampleCenc } from './_cenc-info.js';
import { _planMoof, _walkTraf } from './_fragment-reader.js';
import type { Mp4Source } from './file-source.js';
import { _isCencAux, _parseSaio, _parseSaiz, parseAuxInfo } from './protection.js';
import type { SampleEncryption, TrackProtection } from './protection.js';
import { _parseSeigSampleToGroup } from './_sample-groups.js';
import type { SampleToGroup } from './_sample-groups.js';
import { _parseSampleTables, _walkSampleTables } from './_sample-table.js';
import type { _SampleTables } from './_sample-table.js';
import { _parseMovie } from './_track.js';
import type { _MovieTrack, TrackInfo } from './_track.js';

export interface DemuxedSample {
  /** 0-based, in decode order over the whole file. */
  index: number;
  dts: number;
  cts: number;
  duration: number;
  isSync: boolean;
  /**
   * The sample as stored (length-prefixed NAL units; still encrypted for a protected track). From a
   * `bufferSource` it is a view of the caller's buffer, from a `fileSource` a fresh buffer.
   */
  data: Uint8Array;
  /** For a protected track: the IV and subsample map (absent for samples a `seig` group marks clear). */
  encryption?: SampleEncryption;
  /** 0 for the samples of an ordinary file; for a fragmented one, counts the `moof`s holding this track. */
  fragmentIndex: number;
  /** KID of a `seig` sample group (key rotation); absent: the track's default KID applies. */
  kid?: Uint8Array;
  /** Constant IV of a `seig` sample group; absent: the track's applies. */
  constantIv?: Uint8Array;
}

export interface Mp4Demuxer {
  track: TrackInfo;
  /** The samples in decode order; each call starts again from the first. A plain function: safe to destructure. */
  samples: () => AsyncGenerator<DemuxedSample>;
}

/** Caps on what is read into memory at once: far above real files, far below what a forged size could ask. */
const MAX_MOOV = 128 << 20;
const MAX_MOOF = 16 << 20;
const MAX_SAMPLE = 256 << 20;

/** A top-level box header read from the source (offset absolute), or undefined at a zero-filled tail. */
async function _topHeader(source: Mp4Source, pos: number): Promise<BoxHeader | undefined> {
  const n = Math.min(32, source.size - pos);
  const buf = await source.read(pos, n);
  if (n < 8) {
    if (buf.every((b) => b === 0)) return undefined;
    throw new MediaError(`${n} stray bytes at the end of the file`, pos);
  }
  const h = _readBoxHeader(buf, 0, n, pos, source.size - pos);
  return { ...h, offset: pos };
}

async function* _topLevel(source: Mp4Source, from: number): AsyncGenerator<BoxHeader> {
  let pos = from;
  while (pos < source.size) {
    const h = await _topHeader(source, pos);
    if (h === undefined) return;
    yield h;
    pos += h.size;
  }
}

async function _readBox(source: Mp4Source, h: BoxHeader, max: number): Promise<Uint8Array> {
  if (h.size > max) throw new MediaError(`'${h.type}' of ${h.size} bytes exceeds the ${max}-byte limit`, h.offset);
  return source.read(h.offset, h.size);
}

async function _readRange(source: Mp4Source, offset: number, length: number, what: string): Promise<Uint8Array> {
  if (!(offset >= 0 && offset + length <= source.size)) throw new MediaError(`${what}: ${length} bytes at ${offset} lie outside the ${source.size}-byte file`, offset >= 0 ? offset : undefined);
  if (length > MAX_SAMPLE) throw new MediaError(`${what}: ${length} bytes exceed the ${MAX_SAMPLE}-byte limit`, offset);
  return source.read(offset, length);
}

/** A buffer read from the source at an absolute offset: auxiliary information inside it needs no new read. */
interface _Held {
  buf: Uint8Array;
  at: number;
}

async function _auxBytes(source: Mp4Source, held: _Held, offset: number, size: number): Promise<Uint8Array> {
  if (offset >= held.at && offset + size <= held.at + held.buf.length) return held.buf.subarray(offset - held.at, offset - held.at + size);
  return _readRange(source, offset, size, 'sample auxiliary information');
}

/** Resolves one sample's CENC information and checks it against the sample. */
async function _encryption(source: Mp4Source, held: _Held, c: _SampleCenc, index: number, data: Uint8Array): Promise<Pick<DemuxedSample, 'encryption' | 'kid' | 'constantIv'>> {
  if (c.kind === 'clear') return {};
  const entry = c.kind === 'entry' ? c.entry : parseAuxInfo(await _auxBytes(source, held, c.offset, c.size), c.ivSize, c.offset);
  if (entry.subsamples.length > 0) {
    let total = 0;
    for (const s of entry.subsamples) total += s.clear + s.protected;
    if (total !== data.length) throw new MediaError(`sample ${index}: subsamples cover ${total} bytes, the sample has ${data.length}`);
  }
  const out: Pick<DemuxedSample, 'encryption' | 'kid' | 'constantIv'> = { encryption: entry };
  if (c.seig !== undefined) {
    out.kid = c.seig.kid;
    if (c.seig.constantIv !== undefined) out.constantIv = c.seig.constantIv;
  }
  return out;
}

/** The CENC boxes of `stbl`, when the track is protected. */
function _tableCenc(moov: Uint8Array, base: number, movie: _MovieTrack, tables: _SampleTables, protection: TrackProtection): _CencRun {
  const { stbl } = movie;
  const saiz = _children(moov, stbl, 'saiz', base)
    .map((h) => _parseSaiz(moov, h, base))
    .find((s) => _isCencAux(s.auxInfoType, protection.scheme));
  const saio = _children(moov, stbl, 'saio', base)
    .map((h) => _parseSaio(moov, h, base))
    .find((s) => _isCencAux(s.auxInfoType, protection.scheme));
  if ((saiz === undefined) !== (saio === undefined)) throw new MediaError(`stbl has '${saiz === undefined ? 'saio' : 'saiz'}' without '${saiz === undefined ? 'saiz' : 'saio'}'`, base + stbl.offset);
  let sampleToGroup: SampleToGroup | undefined;
  for (const g of _children(moov, stbl, 'sbgp', base)) sampleToGroup = _parseSeigSampleToGroup(moov, g, base) ?? sampleToGroup;
  const senc = _child(moov, stbl, 'senc', base);
  const run: _CencRun = {
    protection,
    sampleCount: tables.count,
    groupCount: tables.chunkOffsets.length,
    auxBase: 0,
    globalSeig: movie.seig,
    localSeig: [],
    inFragment: false,
    at: base + stbl.offset,
  };
  if (saiz !== undefined && saio !== undefined) Object.assign(run, { saiz, saio });
  if (senc !== undefined) run.senc = { buf: moov, box: senc, base };
  if (sampleToGroup !== undefined) run.sampleToGroup = sampleToGroup;
  return run;
}

/** Reads `moov` and prepares the samples of its first video track. */
export async function openMp4(source: Mp4Source): Promise<Mp4Demuxer> {
  let moovHeader: BoxHeader | undefined;
  for await (const h of _topLevel(source, 0)) {
    if (h.type === 'moov') {
      moovHeader = h;
      break;
    }
  }
  if (moovHeader === undefined) throw new MediaError('no moov box: not an MP4 file, or an incomplete one');
  const moovAt = moovHeader.offset;
  const moovEnd = moovHeader.offset + moovHeader.size;
  const moov = await _readBox(source, moovHeader, MAX_MOOV);
  const movie = _parseMovie(moov, moovAt);
  const tables = _parseSampleTables(moov, movie.stbl, moovAt, source.size);
  const { info: track } = movie;
  const protection = track.protection;
  const tableCenc = protection !== undefined && tables.count > 0 ? _tableCenc(moov, moovAt, movie, tables, protection) : undefined;

  async function* samples(): AsyncGenerator<DemuxedSample> {
    let index = 0;
    let nextDts = 0;
    const held: _Held = { buf: moov, at: moovAt };
    const tableLocator = tableCenc !== undefined ? new _CencLocator(tableCenc) : undefined;
    for (const s of _walkSampleTables(tables)) {
      const data = await _readRange(source, s.offset, s.size, `sample ${s.index}`);
      const cenc = tableLocator !== undefined ? await _encryption(source, held, tableLocator.next(s.chunk, s.firstInChunk), index, data) : {};
      yield { index: index++, dts: s.dts, cts: s.dts + s.cto, duration: s.duration, isSync: s.isSync, data, fragmentIndex: 0, ...cenc };
      nextDts = s.dts + s.duration;
    }
    if (!track.fragmented) return;
    let fragmentIndex = tables.count > 0 ? 1 : 0;
    for await (const h of _topLevel(source, moovEnd)) {
      if (h.type !== 'moof') continue;
      const moof = await _readBox(source, h, MAX_MOOF);
      const plans = _planMoof(moof, h.offset, track.trackId, movie.trex, source.size, protection?.scheme);
      if (plans.length === 0) continue;
      const moofHeld: _Held = { buf: moof, at: h.offset };
      for (const plan of plans) {
        const locator =
          protection !== undefined && plan.sampleCount > 0
            ? new _CencLocator({
                protection,
                sampleCount: plan.sampleCount,
                groupCount: plan.truns.length,
                ...(plan.saiz !== undefined && plan.saio !== undefined ? { saiz: plan.saiz, saio: plan.saio } : {}),
                auxBase: plan.base,
                ...(plan.senc !== undefined ? { senc: { buf: moof, box: plan.senc, base: h.offset } } : {}),
                globalSeig: movie.seig,
                localSeig: plan.seig,
                ...(plan.sampleToGroup !== undefined ? { sampleToGroup: plan.sampleToGroup } : {}),
                inFragment: true,
                at: plan.at,
              })
            : undefined;
        for (const s of _walkTraf(moof, h.offset, plan, plan.decodeTime ?? nextDts, source.size)) {
          const data = await _readRange(source, s.offset, s.size, `sample ${index}`);
          const cenc = locator !== undefined ? await _encryption(source, moofHeld, locator.next(s.trun, s.firstInTrun), index, data) : {};
          yield { index: index++, dts: s.dts, cts: s.dts + s.cto, duration: s.duration, isSync: s.isSync, data, fragmentIndex, ...cenc };
          nextDts = s.dts + s.duration;
        }
      }
      fragmentIndex++;
    }
  }

  return { track, samples };
}
