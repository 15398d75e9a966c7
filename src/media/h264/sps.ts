/**
 * Sequence parameter set (7.3.2.1.1) with VUI timing (E.1.1): picture size after cropping, frame rate, profile and
 * level for the RFC 6381 codec string, and the field widths (log2_max_frame_num, POC type) that slice headers
 * depend on.
 */
import { MediaError } from '../../errors.js';
import type { _BitReader } from './_bits.js';
import { _rbspReader, _skipScalingList } from './_nal-reader.js';
import { NalType } from './nal.js';

/** Profiles whose SPS carries chroma_format_idc, bit depths and scaling matrices (7.3.2.1.1). */
const _HIGH_PROFILES: ReadonlySet<number> = new Set([100, 110, 122, 244, 44, 83, 86, 118, 128, 138, 139, 134, 135]);

/** Picture sizes beyond this many macroblocks per side (65 536 pixels) are refused as corrupt. */
const _MAX_MBS_PER_SIDE = 4096;

export interface HrdParameters {
  readonly cpbCnt: number;
  readonly bitRateScale: number;
  readonly cpbSizeScale: number;
  readonly initialCpbRemovalDelayLength: number;
  readonly cpbRemovalDelayLength: number;
  readonly dpbOutputDelayLength: number;
  readonly timeOffsetLength: number;
}

export interface VuiTiming {
  readonly numUnitsInTick: number;
  readonly timeScale: number;
  readonly fixedFrameRate: boolean;
}

export interface BitstreamRestriction {
  readonly motionVectorsOverPicBoundaries: boolean;
  readonly maxBytesPerPicDenom: number;
  readonly maxBitsPerMbDenom: number;
  readonly log2MaxMvLengthHorizontal: number;
  readonly log2MaxMvLengthVertical: number;
  readonly maxNumReorderFrames: number;
  readonly maxDecFrameBuffering: number;
}

/** vui_parameters() (E.1.1), as far as present. */
export interface Vui {
  readonly aspectRatioIdc?: number;
  readonly sarWidth?: number;
  readonly sarHeight?: number;
  readonly overscanAppropriate?: boolean;
  readonly videoFormat?: number;
  readonly videoFullRange?: boolean;
  readonly colourPrimaries?: number;
  readonly transferCharacteristics?: number;
  readonly matrixCoefficients?: number;
  readonly chromaSampleLocTypeTop?: number;
  readonly chromaSampleLocTypeBottom?: number;
  readonly timing?: VuiTiming;
  readonly nalHrd?: HrdParameters;
  readonly vclHrd?: HrdParameters;
  readonly lowDelayHrd?: boolean;
  readonly picStructPresent?: boolean;
  readonly bitstreamRestriction?: BitstreamRestriction;
  /** The VUI ended early somewhere after the timing information; the fields above are what could be read. */
  readonly truncated: boolean;
}

export interface Sps {
  readonly spsId: number;
  readonly profileIdc: number;
  /** The whole constraint byte: constraint_set0..5_flag and reserved_zero_2bits, MSB first. */
  readonly constraintFlags: number;
  readonly levelIdc: number;
  readonly chromaFormatIdc: number;
  readonly separateColourPlane: boolean;
  /** ChromaArrayType: 0 for monochrome or separately coded colour planes, else chroma_format_idc. */
  readonly chromaArrayType: number;
  readonly bitDepthLuma: number;
  readonly bitDepthChroma: number;
  readonly qpprimeYZeroTransformBypass: boolean;
  readonly scalingMatrixPresent: boolean;
  readonly log2MaxFrameNum: number;
  readonly picOrderCntType: number;
  readonly log2MaxPocLsb?: number;
  readonly deltaPicOrderAlwaysZero?: boolean;
  readonly offsetForNonRefPic?: number;
  readonly offsetForTopToBottomField?: number;
  readonly numRefFramesInPicOrderCntCycle?: number;
  readonly maxNumRefFrames: number;
  readonly gapsInFrameNumAllowed: boolean;
  readonly picWidthInMbs: number;
  /** PicHeightInMapUnits: macroblock rows of a frame, or of a field when frame_mbs_only_flag is 0. */
  readonly picHeightInMapUnits: number;
  readonly frameMbsOnly: boolean;
  readonly mbAdaptiveFrameField: boolean;
  readonly direct8x8Inference: boolean;
  /** Luma width in pixels after cropping. */
  readonly width: number;
  /** Luma height in pixels after cropping. */
  readonly height: number;
  /** frame_crop_*_offset in their own units (CropUnitX / CropUnitY), all 0 without cropping. */
  readonly crop: { readonly left: number; readonly right: number; readonly top: number; readonly bottom: number };
  /** time_scale / (2 · num_units_in_tick), when the VUI carries timing information. */
  readonly frameRate?: number;
  readonly vui?: Vui;
  /** RFC 6381 codec string, e.g. 'avc1.42c028': profile, constraint byte, level in hex. */
  readonly codecString: string;
}

function _hex2(v: number): string {
  return v.toString(16).padStart(2, '0');
}

function _hrd(r: _BitReader): HrdParameters {
  const cpbCnt = r.ueIn('cpb_cnt_minus1', 0, 31) + 1;
  const bitRateScale = r.u(4);
  const cpbSizeScale = r.u(4);
  for (let i = 0; i < cpbCnt; i++) {
    r.ue(); // bit_rate_value_minus1
    r.ue(); // cpb_size_value_minus1
    r.bit(); // cbr_flag
  }
  return {
    cpbCnt,
    bitRateScale,
    cpbSizeScale,
    initialCpbRemovalDelayLength: r.u(5) + 1,
    cpbRemovalDelayLength: r.u(5) + 1,
    dpbOutputDelayLength: r.u(5) + 1,
    timeOffsetLength: r.u(5),
  };
}

/** vui_parameters(): anything up to and including the timing information must be present; after it, not. */
function _vui(r: _BitReader): Vui {
  const v: { -readonly [K in keyof Vui]: Vui[K] } = { truncated: false };
  if (r.flag()) {
    v.aspectRatioIdc = r.u(8);
    if (v.aspectRatioIdc === 255) {
      v.sarWidth = r.u(16);
      v.sarHeight = r.u(16);
    }
  }
  if (r.flag()) v.overscanAppropriate = r.flag();
  if (r.flag()) {
    v.videoFormat = r.u(3);
    v.videoFullRange = r.flag();
    if (r.flag()) {
      v.colourPrimaries = r.u(8);
      v.transferCharacteristics = r.u(8);
      v.matrixCoefficients = r.u(8);
    }
  }
  if (r.flag()) {
    v.chromaSampleLocTypeTop = r.ueIn('chroma_sample_loc_type_top_field', 0, 5);
    v.chromaSampleLocTypeBottom = r.ueIn('chroma_sample_loc_type_bottom_field', 0, 5);
  }
  if (r.flag()) v.timing = { numUnitsInTick: r.u(32), timeScale: r.u(32), fixedFrameRate: r.flag() };
  try {
    const nalHrd = r.flag();
    if (nalHrd) v.nalHrd = _hrd(r);
    const vclHrd = r.flag();
    if (vclHrd) v.vclHrd = _hrd(r);
    if (nalHrd || vclHrd) v.lowDelayHrd = r.flag();
    v.picStructPresent = r.flag();
    if (r.flag()) {
      v.bitstreamRestriction = {
        motionVectorsOverPicBoundaries: r.flag(),
        maxBytesPerPicDenom: r.ue(),
        maxBitsPerMbDenom: r.ue(),
        log2MaxMvLengthHorizontal: r.ue(),
        log2MaxMvLengthVertical: r.ue(),
        maxNumReorderFrames: r.ue(),
        maxDecFrameBuffering: r.ue(),
      };
    }
  } catch (e) {
    if (!(e instanceof MediaError)) throw e;
    v.truncated = true;
  }
  return v;
}

/**
 * Parses an SPS NAL unit (header included, escaped). High-profile fields and scaling matrices are parsed (the
 * matrices skipped, only their length matters); the VUI is parsed as far as timing information and tolerated if it
 * ends early after that, as some encoders truncate it. Malformed input is a MediaError.
 */
export function parseSps(nal: Uint8Array): Sps {
  const r = _rbspReader(nal, NalType.SPS, 'SPS');
  const profileIdc = r.u(8);
  const constraintFlags = r.u(8);
  const levelIdc = r.u(8);
  const spsId = r.ueIn('seq_parameter_set_id', 0, 31);
  let chromaFormatIdc = 1;
  let separateColourPlane = false;
  let bitDepthLuma = 8;
  let bitDepthChroma = 8;
  let qpprimeYZeroTransformBypass = false;
  let scalingMatrixPresent = false;
  if (_HIGH_PROFILES.has(profileIdc)) {
    chromaFormatIdc = r.ueIn('chroma_format_idc', 0, 3);
    if (chromaFormatIdc === 3) separateColourPlane = r.flag();
    bitDepthLuma = 8 + r.ueIn('bit_depth_luma_minus8', 0, 6);
    bitDepthChroma = 8 + r.ueIn('bit_depth_chroma_minus8', 0, 6);
    qpprimeYZeroTransformBypass = r.flag();
    scalingMatrixPresent = r.flag();
    if (scalingMatrixPresent) {
      const lists = chromaFormatIdc !== 3 ? 8 : 12;
      for (let i = 0; i < lists; i++) if (r.flag()) _skipScalingList(r, i < 6 ? 16 : 64);
    }
  }
  const log2MaxFrameNum = r.ueIn('log2_max_frame_num_minus4', 0, 12) + 4;
  const picOrderCntType = r.ueIn('pic_order_cnt_type', 0, 2);
  const poc: { log2MaxPocLsb?: number; deltaPicOrderAlwaysZero?: boolean; offsetForNonRefPic?: number; offsetForTopToBottomField?: number; numRefFramesInPicOrderCntCycle?: number } = {};
  if (picOrderCntType === 0) {
    poc.log2MaxPocLsb = r.ueIn('log2_max_pic_order_cnt_lsb_minus4', 0, 12) + 4;
  } else if (picOrderCntType === 1) {
    poc.deltaPicOrderAlwaysZero = r.flag();
    poc.offsetForNonRefPic = r.se();
    poc.offsetForTopToBottomField = r.se();
    poc.numRefFramesInPicOrderCntCycle = r.ueIn('num_ref_frames_in_pic_order_cnt_cycle', 0, 255);
    for (let i = 0; i < poc.numRefFramesInPicOrderCntCycle; i++) r.se();
  }
  const maxNumRefFrames = r.ueIn('max_num_ref_frames', 0, 16);
  const gapsInFrameNumAllowed = r.flag();
  const picWidthInMbs = r.ueIn('pic_width_in_mbs_minus1', 0, _MAX_MBS_PER_SIDE - 1) + 1;
  const picHeightInMapUnits = r.ueIn('pic_height_in_map_units_minus1', 0, _MAX_MBS_PER_SIDE - 1) + 1;
  const frameMbsOnly = r.flag();
  const mbAdaptiveFrameField = frameMbsOnly ? false : r.flag();
  const direct8x8Inference = r.flag();
  const crop = { left: 0, right: 0, top: 0, bottom: 0 };
  if (r.flag()) {
    crop.left = r.ue();
    crop.right = r.ue();
    crop.top = r.ue();
    crop.bottom = r.ue();
  }
  const vui = r.flag() ? _vui(r) : undefined;

  const chromaArrayType = separateColourPlane ? 0 : chromaFormatIdc;
  const subWidthC = chromaFormatIdc === 3 ? 1 : 2;
  const subHeightC = chromaFormatIdc === 1 ? 2 : 1;
  const cropUnitX = chromaArrayType === 0 ? 1 : subWidthC;
  const cropUnitY = (chromaArrayType === 0 ? 1 : subHeightC) * (frameMbsOnly ? 1 : 2);
  const codedWidth = picWidthInMbs * 16;
  const codedHeight = (frameMbsOnly ? 1 : 2) * picHeightInMapUnits * 16;
  const width = codedWidth - cropUnitX * (crop.left + crop.right);
  const height = codedHeight - cropUnitY * (crop.top + crop.bottom);
  if (width <= 0 || height <= 0) throw new MediaError(`SPS: cropping leaves no picture (${codedWidth}x${codedHeight} coded)`);

  const timing = vui?.timing;
  const frameRate = timing !== undefined && timing.numUnitsInTick > 0 && timing.timeScale > 0 ? timing.timeScale / (2 * timing.numUnitsInTick) : undefined;
  return {
    spsId,
    profileIdc,
    constraintFlags,
    levelIdc,
    chromaFormatIdc,
    separateColourPlane,
    chromaArrayType,
    bitDepthLuma,
    bitDepthChroma,
    qpprimeYZeroTransformBypass,
    scalingMatrixPresent,
    log2MaxFrameNum,
    picOrderCntType,
    ...poc,
    maxNumRefFrames,
    gapsInFrameNumAllowed,
    picWidthInMbs,
    picHeightInMapUnits,
    frameMbsOnly,
    mbAdaptiveFrameField,
    direct8x8Inference,
    width,
    height,
    crop,
    ...(frameRate !== undefined ? { frameRate } : {}),
    ...(vui !== undefined ? { vui } : {}),
    codecString: `avc1.${_hex2(profileIdc)}${_hex2(constraintFlags)}${_hex2(levelIdc)}`,
  };
}
