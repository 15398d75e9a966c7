/**
 * AVCDecoderConfigurationRecord (ISO/IEC 14496-15 §5.3.3.1), the `avcC` box of an AVC sample entry: profile,
 * level, NAL length size and the parameter sets. The high-profile trailer (chroma format, bit depths, SPS
 * extensions) is kept when present so that a record parses and rebuilds byte for byte; writers that omit it
 * (older x264/ffmpeg) are accepted too, as decoders do.
 */
import { MediaError } from '../../errors.js';
import { _Reader, _Writer, _copy } from './_bytes.js';

export interface AvcConfig {
  profile: number;
  compatibility: number;
  level: number;
  /** Bytes of each NAL length prefix in the samples. */
  lengthSize: 1 | 2 | 4;
  sps: Uint8Array[];
  pps: Uint8Array[];
  /** SPS extension NAL units of the high-profile trailer; its presence means the trailer is written. */
  spsExt?: Uint8Array[];
  /** High-profile trailer fields (written when `spsExt` is present; defaults 4:2:0, 8 bits). */
  chromaFormat?: number;
  bitDepthLumaMinus8?: number;
  bitDepthChromaMinus8?: number;
}

/** Profiles whose records may carry the trailer (§5.3.3.1.2). */
const _HIGH_PROFILES: ReadonlySet<number> = new Set([100, 110, 122, 144]);

function _nalList(r: _Reader, count: number, what: string): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (let i = 0; i < count; i++) {
    const len = r.u16(`${what} length`);
    out.push(_copy(r.bytes(len, what)));
  }
  return out;
}

/**
 * Parses the payload of an `avcC` box (the record, without the box header). NAL units are copies. `base` is
 * the payload's position in the input, for error messages.
 */
export function parseAvcC(payload: Uint8Array, base = 0): AvcConfig {
  const r = new _Reader(payload, 0, payload.length, 'avcC', base);
  const version = r.u8('configurationVersion');
  if (version !== 1) throw new MediaError(`avcC: configurationVersion ${version}, expected 1`, base);
  const profile = r.u8('AVCProfileIndication');
  const compatibility = r.u8('profile_compatibility');
  const level = r.u8('AVCLevelIndication');
  const lengthSize = (r.u8('lengthSizeMinusOne') & 3) + 1;
  if (lengthSize === 3) throw new MediaError('avcC: NAL length size 3 is not allowed (1, 2 or 4)', base + 4);
  const spsCount = r.u8('numOfSequenceParameterSets') & 0x1f;
  const sps = _nalList(r, spsCount, 'SPS');
  const ppsCount = r.u8('numOfPictureParameterSets');
  const pps = _nalList(r, ppsCount, 'PPS');
  const cfg: AvcConfig = { profile, compatibility, level, lengthSize: lengthSize as 1 | 2 | 4, sps, pps };
  if (_HIGH_PROFILES.has(profile) && r.remaining >= 4) {
    cfg.chromaFormat = r.u8('chroma_format') & 3;
    cfg.bitDepthLumaMinus8 = r.u8('bit_depth_luma_minus8') & 7;
    cfg.bitDepthChromaMinus8 = r.u8('bit_depth_chroma_minus8') & 7;
    cfg.spsExt = _nalList(r, r.u8('numOfSequenceParameterSetExt'), 'SPS extension');
  }
  return cfg;
}

/** Builds the `avcC` box. Reserved bits are written as ones, as the standard says. */
export function buildAvcC(cfg: AvcConfig): Uint8Array {
  if (cfg.sps.length > 31) throw new MediaError(`avcC: ${cfg.sps.length} SPS, at most 31 fit`);
  if (cfg.pps.length > 255) throw new MediaError(`avcC: ${cfg.pps.length} PPS, at most 255 fit`);
  if (cfg.lengthSize !== 1 && cfg.lengthSize !== 2 && cfg.lengthSize !== 4) throw new MediaError(`avcC: NAL length size ${String(cfg.lengthSize)} is not 1, 2 or 4`);
  const w = new _Writer(64);
  w.begin('avcC');
  w.u8(1).u8(cfg.profile, 'AVCProfileIndication').u8(cfg.compatibility, 'profile_compatibility').u8(cfg.level, 'AVCLevelIndication');
  w.u8(0xfc | (cfg.lengthSize - 1));
  w.u8(0xe0 | cfg.sps.length);
  for (const n of cfg.sps) w.u16(n.length, 'SPS length').bytes(n);
  w.u8(cfg.pps.length);
  for (const n of cfg.pps) w.u16(n.length, 'PPS length').bytes(n);
  if (cfg.spsExt !== undefined) {
    if (!_HIGH_PROFILES.has(cfg.profile)) throw new MediaError(`avcC: profile ${cfg.profile} records carry no SPS extensions (high profiles 100, 110, 122, 144 only)`);
    if (cfg.spsExt.length > 255) throw new MediaError(`avcC: ${cfg.spsExt.length} SPS extensions, at most 255 fit`);
    w.u8(0xfc | ((cfg.chromaFormat ?? 1) & 3));
    w.u8(0xf8 | ((cfg.bitDepthLumaMinus8 ?? 0) & 7));
    w.u8(0xf8 | ((cfg.bitDepthChromaMinus8 ?? 0) & 7));
    w.u8(cfg.spsExt.length);
    for (const n of cfg.spsExt) w.u16(n.length, 'SPS extension length').bytes(n);
  }
  w.end();
  return w.finish();
}
