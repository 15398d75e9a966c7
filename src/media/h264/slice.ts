/**
 * Slice header (7.3.3) with ref_pic_list_modification (7.3.3.1), pred_weight_table (7.3.3.2) and
 * dec_ref_pic_marking (7.3.3.3). Two users: the access-unit assembler needs the fields that separate pictures
 * (7.4.1.2.4), and the CENC packager needs the exact length of the header in the stored NAL unit, because `cbcs`
 * keeps the slice header in the clear.
 */
import { MediaError } from '../../errors.js';
import { _BitReader } from './_bits.js';
import { nalRefIdc, nalType, NalType } from './nal.js';
import type { Pps } from './pps.js';
import { escapedLength, unescapeRbsp } from './rbsp.js';
import type { Sps } from './sps.js';

export type SliceKind = 'P' | 'B' | 'I' | 'SP' | 'SI';

const _KINDS: readonly SliceKind[] = ['P', 'B', 'I', 'SP', 'SI'];

/** Most slice headers fit in this many escaped bytes; parsing starts on such a prefix to avoid unescaping the slice data. */
const _PREFIX_BYTES = 128;

/** slice_type 0..9 → P, B, I, SP, SI (values 5..9 also promise that every slice of the picture has that type). */
export function sliceKindOf(sliceType: number): SliceKind {
  const k = _KINDS[sliceType % 5];
  if (k === undefined || sliceType < 0 || sliceType > 9) throw new MediaError(`slice_type ${sliceType} out of range`);
  return k;
}

/** One modification_of_pic_nums_idc operation (the terminating idc 3 is not listed). */
export interface RefPicListModificationOp {
  /** modification_of_pic_nums_idc: 0/1 subtract/add abs_diff_pic_num_minus1 + 1, 2 long-term picture. */
  readonly idc: number;
  /** abs_diff_pic_num_minus1 (idc 0, 1) or long_term_pic_num (idc 2). */
  readonly value: number;
}

export interface WeightOffset {
  readonly weight: number;
  readonly offset: number;
}

/** Explicit weights of one reference index; an absent member means the default weight for it. */
export interface PredWeightEntry {
  readonly luma?: WeightOffset;
  readonly chroma?: readonly [WeightOffset, WeightOffset];
}

export interface PredWeightTable {
  readonly lumaLog2WeightDenom: number;
  /** Absent when ChromaArrayType is 0. */
  readonly chromaLog2WeightDenom?: number;
  readonly l0: readonly PredWeightEntry[];
  /** B slices only. */
  readonly l1?: readonly PredWeightEntry[];
}

/** One memory_management_control_operation (the terminating 0 is not listed). */
export interface MmcoOp {
  readonly op: number;
  readonly differenceOfPicNumsMinus1?: number;
  readonly longTermPicNum?: number;
  readonly longTermFrameIdx?: number;
  readonly maxLongTermFrameIdxPlus1?: number;
}

/** dec_ref_pic_marking(): the IDR flags, or the adaptive operations (present iff adaptive_ref_pic_marking_mode_flag). */
export interface DecRefPicMarking {
  readonly noOutputOfPriorPics?: boolean;
  readonly longTermReference?: boolean;
  readonly mmco?: readonly MmcoOp[];
}

export interface SliceHeader {
  readonly nalType: number;
  readonly nalRefIdc: number;
  readonly firstMbInSlice: number;
  /** Raw slice_type, 0..9. */
  readonly sliceType: number;
  readonly sliceKind: SliceKind;
  readonly ppsId: number;
  /** The SPS of the PPS, for convenience. */
  readonly spsId: number;
  readonly colourPlaneId?: number;
  readonly frameNum: number;
  readonly fieldPic: boolean;
  readonly bottomField: boolean;
  readonly idrPicId?: number;
  readonly picOrderCntLsb?: number;
  readonly deltaPicOrderCntBottom?: number;
  readonly deltaPicOrderCnt0?: number;
  readonly deltaPicOrderCnt1?: number;
  readonly redundantPicCnt?: number;
  readonly directSpatialMvPred?: boolean;
  /** num_ref_idx_active_override_flag, for P, SP and B slices. */
  readonly numRefIdxActiveOverride?: boolean;
  /** Active references in list 0 (0 for I and SI slices). */
  readonly numRefIdxL0Active: number;
  /** Active references in list 1 (0 unless B). */
  readonly numRefIdxL1Active: number;
  /** Present iff ref_pic_list_modification_flag_l0 is 1. */
  readonly refPicListModificationL0?: readonly RefPicListModificationOp[];
  /** Present iff ref_pic_list_modification_flag_l1 is 1. */
  readonly refPicListModificationL1?: readonly RefPicListModificationOp[];
  readonly predWeightTable?: PredWeightTable;
  /** Present iff nal_ref_idc ≠ 0. */
  readonly decRefPicMarking?: DecRefPicMarking;
  readonly cabacInitIdc?: number;
  readonly sliceQpDelta: number;
  readonly spForSwitch?: boolean;
  readonly sliceQsDelta?: number;
  readonly disableDeblockingFilterIdc?: number;
  readonly sliceAlphaC0OffsetDiv2?: number;
  readonly sliceBetaOffsetDiv2?: number;
  readonly sliceGroupChangeCycle?: number;
  /** Bits of slice_header() in the RBSP, counted after the 1-byte NAL header. */
  readonly headerBits: number;
  /**
   * Bytes of the escaped NAL unit, counting the 1-byte NAL header, that contain all of slice_header(): the RBSP
   * length ceil(headerBits / 8) + 1 mapped through the emulation-prevention bytes before it.
   */
  readonly headerBytes: number;
}

/** Bits of slice_group_change_cycle: Ceil(Log2(PicSizeInMapUnits ÷ SliceGroupChangeRate + 1)), in integers. */
function _changeCycleBits(picSizeInMapUnits: number, rate: number): number {
  let bits = 0;
  while (2 ** bits * rate < picSizeInMapUnits + rate) bits++;
  return bits;
}

function _modifications(r: _BitReader, maxOps: number, list: string): RefPicListModificationOp[] {
  const ops: RefPicListModificationOp[] = [];
  for (;;) {
    const idc = r.ueIn('modification_of_pic_nums_idc', 0, 3);
    if (idc === 3) return ops;
    if (ops.length >= maxOps) throw new MediaError(`slice header: more ref_pic_list_modification operations in ${list} than active references`);
    ops.push({ idc, value: r.ue() });
  }
}

function _weights(r: _BitReader, count: number, chroma: boolean): PredWeightEntry[] {
  const entries: PredWeightEntry[] = [];
  for (let i = 0; i < count; i++) {
    const entry: { luma?: WeightOffset; chroma?: [WeightOffset, WeightOffset] } = {};
    if (r.flag()) entry.luma = { weight: r.seIn('luma_weight', -128, 127), offset: r.seIn('luma_offset', -128, 127) };
    if (chroma && r.flag()) {
      const cb = { weight: r.seIn('chroma_weight', -128, 127), offset: r.seIn('chroma_offset', -128, 127) };
      const cr = { weight: r.seIn('chroma_weight', -128, 127), offset: r.seIn('chroma_offset', -128, 127) };
      entry.chroma = [cb, cr];
    }
    entries.push(entry);
  }
  return entries;
}

function _predWeightTable(r: _BitReader, sps: Sps, l0: number, l1: number, isB: boolean): PredWeightTable {
  const chroma = sps.chromaArrayType !== 0;
  const lumaLog2WeightDenom = r.ueIn('luma_log2_weight_denom', 0, 7);
  const chromaDenom = chroma ? { chromaLog2WeightDenom: r.ueIn('chroma_log2_weight_denom', 0, 7) } : {};
  const w0 = _weights(r, l0, chroma);
  return { lumaLog2WeightDenom, ...chromaDenom, l0: w0, ...(isB ? { l1: _weights(r, l1, chroma) } : {}) };
}

function _decRefPicMarking(r: _BitReader, idr: boolean): DecRefPicMarking {
  if (idr) return { noOutputOfPriorPics: r.flag(), longTermReference: r.flag() };
  if (!r.flag()) return {};
  const mmco: MmcoOp[] = [];
  for (;;) {
    const op = r.ueIn('memory_management_control_operation', 0, 6);
    if (op === 0) return { mmco };
    const m: { -readonly [K in keyof MmcoOp]: MmcoOp[K] } = { op };
    if (op === 1 || op === 3) m.differenceOfPicNumsMinus1 = r.ue();
    if (op === 2) m.longTermPicNum = r.ue();
    if (op === 3 || op === 6) m.longTermFrameIdx = r.ue();
    if (op === 4) m.maxLongTermFrameIdxPlus1 = r.ue();
    mmco.push(m);
  }
}

function _parse(rbsp: Uint8Array, epb: readonly number[], type: number, refIdc: number, spsById: ReadonlyMap<number, Sps>, ppsById: ReadonlyMap<number, Pps>): SliceHeader {
  const r = new _BitReader(rbsp, 1, 'slice header');
  const idr = type === NalType.IDR;
  const firstMbInSlice = r.ue();
  const sliceType = r.ueIn('slice_type', 0, 9);
  const sliceKind = sliceKindOf(sliceType);
  if (idr && sliceKind !== 'I' && sliceKind !== 'SI') throw new MediaError(`slice header: IDR slice of type ${sliceKind}`);
  const ppsId = r.ueIn('pic_parameter_set_id', 0, 255);
  const pps = ppsById.get(ppsId);
  if (pps === undefined) throw new MediaError(`slice header: unknown PPS ${ppsId}`);
  const sps = spsById.get(pps.spsId);
  if (sps === undefined) throw new MediaError(`slice header: PPS ${ppsId} refers to unknown SPS ${pps.spsId}`);
  const picSizeInMbs = sps.picWidthInMbs * sps.picHeightInMapUnits * (sps.frameMbsOnly ? 1 : 2);
  if (firstMbInSlice >= picSizeInMbs) throw new MediaError(`slice header: first_mb_in_slice ${firstMbInSlice} beyond the picture (${picSizeInMbs} macroblocks)`);
  const h: { -readonly [K in keyof SliceHeader]: SliceHeader[K] } = {
    nalType: type,
    nalRefIdc: refIdc,
    firstMbInSlice,
    sliceType,
    sliceKind,
    ppsId,
    spsId: pps.spsId,
    frameNum: 0,
    fieldPic: false,
    bottomField: false,
    numRefIdxL0Active: 0,
    numRefIdxL1Active: 0,
    sliceQpDelta: 0,
    headerBits: 0,
    headerBytes: 0,
  };
  if (sps.separateColourPlane) h.colourPlaneId = _colourPlane(r);
  h.frameNum = r.u(sps.log2MaxFrameNum);
  if (!sps.frameMbsOnly) {
    h.fieldPic = r.flag();
    if (h.fieldPic) h.bottomField = r.flag();
  }
  if (idr) h.idrPicId = r.ueIn('idr_pic_id', 0, 65535);
  const bottomDelta = pps.bottomFieldPicOrderInFramePresent && !h.fieldPic;
  if (sps.picOrderCntType === 0) {
    h.picOrderCntLsb = r.u(sps.log2MaxPocLsb ?? 4);
    if (bottomDelta) h.deltaPicOrderCntBottom = r.se();
  }
  if (sps.picOrderCntType === 1 && sps.deltaPicOrderAlwaysZero !== true) {
    h.deltaPicOrderCnt0 = r.se();
    if (bottomDelta) h.deltaPicOrderCnt1 = r.se();
  }
  if (pps.redundantPicCntPresent) h.redundantPicCnt = r.ueIn('redundant_pic_cnt', 0, 127);
  const isB = sliceKind === 'B';
  const isP = sliceKind === 'P' || sliceKind === 'SP';
  if (isB) h.directSpatialMvPred = r.flag();
  if (isP || isB) {
    h.numRefIdxL0Active = pps.numRefIdxL0DefaultActive;
    if (isB) h.numRefIdxL1Active = pps.numRefIdxL1DefaultActive;
    h.numRefIdxActiveOverride = r.flag();
    if (h.numRefIdxActiveOverride) {
      const max = h.fieldPic ? 31 : 15;
      h.numRefIdxL0Active = r.ueIn('num_ref_idx_l0_active_minus1', 0, max) + 1;
      if (isB) h.numRefIdxL1Active = r.ueIn('num_ref_idx_l1_active_minus1', 0, max) + 1;
    }
  }
  if (isP || isB) {
    if (r.flag()) h.refPicListModificationL0 = _modifications(r, h.numRefIdxL0Active, 'list 0');
    if (isB && r.flag()) h.refPicListModificationL1 = _modifications(r, h.numRefIdxL1Active, 'list 1');
  }
  if ((pps.weightedPredFlag && isP) || (pps.weightedBipredIdc === 1 && isB)) h.predWeightTable = _predWeightTable(r, sps, h.numRefIdxL0Active, h.numRefIdxL1Active, isB);
  if (refIdc !== 0) h.decRefPicMarking = _decRefPicMarking(r, idr);
  if (pps.entropyCodingModeFlag && sliceKind !== 'I' && sliceKind !== 'SI') h.cabacInitIdc = r.ueIn('cabac_init_idc', 0, 2);
  const qpBdOffset = 6 * (sps.bitDepthLuma - 8);
  h.sliceQpDelta = r.seIn('slice_qp_delta', -qpBdOffset - pps.picInitQp, 51 - pps.picInitQp);
  if (sliceKind === 'SP' || sliceKind === 'SI') {
    if (sliceKind === 'SP') h.spForSwitch = r.flag();
    h.sliceQsDelta = r.seIn('slice_qs_delta', -pps.picInitQs, 51 - pps.picInitQs);
  }
  if (pps.deblockingFilterControlPresent) {
    h.disableDeblockingFilterIdc = r.ueIn('disable_deblocking_filter_idc', 0, 2);
    if (h.disableDeblockingFilterIdc !== 1) {
      h.sliceAlphaC0OffsetDiv2 = r.seIn('slice_alpha_c0_offset_div2', -6, 6);
      h.sliceBetaOffsetDiv2 = r.seIn('slice_beta_offset_div2', -6, 6);
    }
  }
  if (pps.numSliceGroups > 1 && pps.sliceGroupMapType !== undefined && pps.sliceGroupMapType >= 3 && pps.sliceGroupMapType <= 5) {
    const size = sps.picWidthInMbs * sps.picHeightInMapUnits;
    h.sliceGroupChangeCycle = r.u(_changeCycleBits(size, pps.sliceGroupChangeRate ?? 1));
  }
  h.headerBits = r.position - 8;
  h.headerBytes = escapedLength(1 + Math.ceil(h.headerBits / 8), epb);
  return h;
}

function _colourPlane(r: _BitReader): number {
  const id = r.u(2);
  if (id > 2) throw new MediaError('slice header: colour_plane_id 3 is reserved');
  return id;
}

/**
 * Parses the slice header of a VCL NAL unit of type 1 (non-IDR), 2 (partition A) or 5 (IDR), header byte included
 * and escaped. The PPS it names and that PPS's SPS must be known. Partitions B and C carry no slice header and are
 * refused, as are unknown types. Malformed input is a MediaError.
 */
export function parseSliceHeader(nal: Uint8Array, spsById: ReadonlyMap<number, Sps>, ppsById: ReadonlyMap<number, Pps>): SliceHeader {
  const type = nalType(nal);
  if (type !== NalType.SLICE && type !== NalType.DPA && type !== NalType.IDR) throw new MediaError(`NAL unit type ${type} has no slice header`);
  const refIdc = nalRefIdc(nal);
  if (type === NalType.IDR && refIdc === 0) throw new MediaError('IDR slice with nal_ref_idc 0');
  if (nal.length > _PREFIX_BYTES) {
    const head = unescapeRbsp(nal.subarray(0, _PREFIX_BYTES));
    try {
      return _parse(head.rbsp, head.epb, type, refIdc, spsById, ppsById);
    } catch (e) {
      if (!(e instanceof MediaError)) throw e;
      // a long header, or a real error: the whole NAL unit decides
    }
  }
  const { rbsp, epb } = unescapeRbsp(nal);
  return _parse(rbsp, epb, type, refIdc, spsById, ppsById);
}
