/**
 * CMAF fragments (ISO/IEC 23000-19 §7.3.2.4): one `moof` describing the samples and the header of the `mdat`
 * that follows it. The sample bytes are not part of the result: the caller writes `header`, then each sample's
 * (already transformed) bytes in order, so a fragment is streamed and never assembled in memory — and since a
 * fragment only refers to bytes after its own `moof`, the whole output is streamable (a pipe, a socket, a
 * growing file) with no seek back.
 *
 * Layout: `moof{ mfhd, pssh*, traf{ tfhd, tfdt v1, trun, [saiz, saio, senc], extra* } }` then the `mdat`
 * header. `tfhd` sets default-base-is-moof, so `trun`'s data offset and `saio`'s offset are relative to the
 * `moof`'s first byte; uniform durations and flags go into `tfhd` defaults (as ffmpeg does), sizes are per
 * sample. Encrypted fragments carry the per-sample IVs and subsample maps in `senc`, with `saiz`/`saio`
 * pointing at its first entry, as CMAF requires.
 */
import { MediaError } from '../../errors.js';
import { _Writer } from './_bytes.js';
import { _wholeBox } from './init.js';
import { auxInfoSize, buildSaiz, buildSaio, buildSenc } from './protection.js';
import type { SampleEncryption } from './protection.js';

export interface FragmentSample {
  size: number;
  duration: number;
  isSync: boolean;
  /** CTS − DTS; negative values make `trun` version 1. */
  compositionOffset?: number;
  encryption?: SampleEncryption;
}

export interface FragmentOptions {
  sequenceNumber: number;
  trackId: number;
  /** May exceed 2^32 (`tfdt` version 1). */
  baseMediaDecodeTime: number;
  samples: readonly FragmentSample[];
  /** IV size of every sample's `encryption.iv`; defaults to the first sample's. */
  perSampleIvSize?: 0 | 8 | 16;
  /** Whole `pssh` boxes for this fragment (key rotation), placed in `moof`. */
  pssh?: readonly Uint8Array[];
  /** Whole boxes appended at the end of `traf` (e.g. `sgpd`/`sbgp` for `seig` groups, `uuid` boxes). */
  trafExtra?: readonly Uint8Array[];
}

export interface BuiltFragment {
  /** `moof` and the 8- or 16-byte `mdat` header; the sample bytes follow it. */
  header: Uint8Array;
  /** Bytes of the whole fragment: header plus every sample. */
  totalSize: number;
}

/** sample_depends_on = 2 (an I picture). */
const SYNC_FLAGS = 0x0200_0000;
/** sample_depends_on = 1, sample_is_non_sync_sample = 1. */
const NON_SYNC_FLAGS = 0x0101_0000;

const TFHD_DEFAULT_DURATION = 0x00_0008;
const TFHD_DEFAULT_FLAGS = 0x00_0020;
const TFHD_DEFAULT_BASE_IS_MOOF = 0x02_0000;
const TRUN_DATA_OFFSET = 0x00_0001;
const TRUN_FIRST_FLAGS = 0x00_0004;
const TRUN_DURATION = 0x00_0100;
const TRUN_SIZE = 0x00_0200;
const TRUN_FLAGS = 0x00_0400;
const TRUN_CTO = 0x00_0800;

const MAX_AUX_INFO = 0xff;

interface _Encryption {
  entries: SampleEncryption[];
  auxSizes: number[];
}

/** Checks the samples' encryption information: all or none, one IV size, subsamples covering each sample. */
function _encryption(samples: readonly FragmentSample[], ivOption: 0 | 8 | 16 | undefined): _Encryption | undefined {
  const encrypted = samples.filter((s) => s.encryption !== undefined).length;
  if (encrypted === 0) return undefined;
  if (encrypted !== samples.length) throw new MediaError(`fragment: ${encrypted} of ${samples.length} samples carry encryption information; it is all or none`);
  const entries = samples.map((s) => s.encryption as SampleEncryption);
  const ivSize = ivOption ?? entries[0]?.iv.length ?? 0;
  if (ivSize !== 0 && ivSize !== 8 && ivSize !== 16) throw new MediaError(`fragment: per-sample IV size ${ivSize}, must be 0, 8 or 16`);
  const withSubsamples = entries.some((e) => e.subsamples.length > 0);
  const auxSizes = entries.map((e, i) => {
    if (e.iv.length !== ivSize) throw new MediaError(`fragment: sample ${i} has a ${e.iv.length}-byte IV, the fragment uses ${ivSize}`);
    if (e.subsamples.length > 0) {
      let total = 0;
      for (const s of e.subsamples) total += s.clear + s.protected;
      const size = samples[i]?.size ?? 0;
      if (total !== size) throw new MediaError(`fragment: sample ${i}: subsamples cover ${total} bytes, the sample has ${size}`);
    }
    const n = auxInfoSize(e, withSubsamples);
    if (n > MAX_AUX_INFO) throw new MediaError(`fragment: sample ${i}: ${e.subsamples.length} subsamples need ${n} bytes of auxiliary information, saiz allows ${MAX_AUX_INFO}`);
    return n;
  });
  return { entries, auxSizes };
}

function _flags(s: FragmentSample): number {
  return s.isSync ? SYNC_FLAGS : NON_SYNC_FLAGS;
}

/** Builds the `moof` and `mdat` header of one fragment of one track. */
export function buildFragment(options: FragmentOptions): BuiltFragment {
  const { samples } = options;
  if (!(Number.isInteger(options.trackId) && options.trackId >= 1 && options.trackId <= 0xffff_ffff)) throw new MediaError(`fragment: track ID ${options.trackId} must be 1..2^32-1`);
  const enc = _encryption(samples, options.perSampleIvSize);

  let payload = 0;
  for (const s of samples) {
    if (!(Number.isInteger(s.size) && s.size >= 0 && s.size <= 0xffff_ffff)) throw new MediaError(`fragment: sample size ${s.size} is not a 32-bit count`);
    payload += s.size;
  }
  const first = samples[0];
  const uniformDuration = first !== undefined && samples.every((s) => s.duration === first.duration);
  const rest = samples.length > 1 ? samples.slice(1) : samples;
  const restFlags = rest[0] !== undefined ? _flags(rest[0]) : 0;
  const uniformFlags = rest.every((s) => _flags(s) === restFlags);
  const firstFlags = uniformFlags && first !== undefined && _flags(first) !== restFlags;
  const withCto = samples.some((s) => (s.compositionOffset ?? 0) !== 0);
  const negativeCto = samples.some((s) => (s.compositionOffset ?? 0) < 0);

  let tfhdFlags = TFHD_DEFAULT_BASE_IS_MOOF;
  if (uniformDuration) tfhdFlags |= TFHD_DEFAULT_DURATION;
  if (uniformFlags) tfhdFlags |= TFHD_DEFAULT_FLAGS;
  let trunFlags = TRUN_DATA_OFFSET | TRUN_SIZE;
  if (!uniformDuration) trunFlags |= TRUN_DURATION;
  if (!uniformFlags) trunFlags |= TRUN_FLAGS;
  if (firstFlags) trunFlags |= TRUN_FIRST_FLAGS;
  if (withCto) trunFlags |= TRUN_CTO;

  const w = new _Writer(256 + samples.length * 16 + (enc === undefined ? 0 : enc.auxSizes.reduce((a, b) => a + b + 1, 32)));
  w.begin('moof');
  w.beginFull('mfhd', 0, 0).u32(options.sequenceNumber, 'sequence_number').end();
  for (const p of options.pssh ?? []) w.bytes(_wholeBox(p, 'pssh'));
  w.begin('traf');
  w.beginFull('tfhd', 0, tfhdFlags).u32(options.trackId, 'track_ID');
  if (uniformDuration) w.u32(first.duration, 'default_sample_duration');
  if (uniformFlags) w.u32(restFlags);
  w.end();
  w.beginFull('tfdt', 1, 0).u64(options.baseMediaDecodeTime, 'baseMediaDecodeTime').end();

  w.beginFull('trun', negativeCto ? 1 : 0, trunFlags).u32(samples.length);
  const dataOffsetAt = w.pos;
  w.u32(0);
  if (firstFlags && first !== undefined) w.u32(_flags(first));
  for (const s of samples) {
    if (!uniformDuration) w.u32(s.duration, 'sample_duration');
    w.u32(s.size, 'sample_size');
    if (!uniformFlags) w.u32(_flags(s));
    if (withCto) {
      if (negativeCto) w.i32(s.compositionOffset ?? 0, 'sample_composition_time_offset');
      else w.u32(s.compositionOffset ?? 0, 'sample_composition_time_offset');
    }
  }
  w.end();

  if (enc !== undefined) {
    const saiz = buildSaiz(enc.auxSizes);
    const saioSize = 20; // version 0, one entry: the offset lies inside the moof
    // the moof starts at 0; senc's first entry follows its 8-byte header, version/flags and sample_count
    const firstEntry = w.pos + saiz.length + saioSize + 16;
    w.bytes(saiz).bytes(buildSaio([firstEntry])).bytes(buildSenc(enc.entries));
  }
  for (const b of options.trafExtra ?? []) w.bytes(_wholeBox(b));
  w.end(); // traf
  w.end(); // moof
  const moofSize = w.pos;

  const large = 8 + payload > 0xffff_ffff;
  const mdatHeader = large ? 16 : 8;
  w.patchU32(dataOffsetAt, moofSize + mdatHeader);
  if (large) w.u32(1).fourcc('mdat').u64(16 + payload);
  else w.u32(8 + payload).fourcc('mdat');
  const header = w.finish();
  return { header, totalSize: header.length + payload };
}
