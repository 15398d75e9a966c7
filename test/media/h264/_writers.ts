/**
 * Serialisers for SPS, PPS and slice headers, written from the syntax tables of H.264 (7.3.2.1.1, 7.3.2.2, 7.3.3)
 * independently of the parsers: re-serialising a parsed header must reproduce the original bits, and
 * serialise → parse must give the fields back.
 */
import { _BitWriter } from '../../../src/media/h264/_bits.js';
import type { Pps, SliceHeader, Sps } from '../../../src/media/h264/index.js';

/** The RBSP (header byte included, not escaped) and the number of slice-header bits after the header byte. */
export interface Written {
  readonly rbsp: Uint8Array;
  readonly bits: number;
}

function refPicListModification(w: _BitWriter, ops: SliceHeader['refPicListModificationL0']): void {
  w.flag(ops !== undefined);
  if (ops === undefined) return;
  for (const op of ops) {
    w.ue(op.idc);
    w.ue(op.value);
  }
  w.ue(3);
}

/** slice_header() of `h` under `sps` and `pps`, after a NAL header byte made from h.nalRefIdc and h.nalType. */
export function writeSliceHeader(h: SliceHeader, sps: Sps, pps: Pps): Written {
  const w = new _BitWriter();
  w.u(1, 0).u(2, h.nalRefIdc).u(5, h.nalType);
  const idr = h.nalType === 5;
  const kind = h.sliceType % 5; // 0 P, 1 B, 2 I, 3 SP, 4 SI
  w.ue(h.firstMbInSlice).ue(h.sliceType).ue(h.ppsId);
  if (sps.separateColourPlane) w.u(2, h.colourPlaneId ?? 0);
  w.u(sps.log2MaxFrameNum, h.frameNum);
  if (!sps.frameMbsOnly) {
    w.flag(h.fieldPic);
    if (h.fieldPic) w.flag(h.bottomField);
  }
  if (idr) w.ue(h.idrPicId ?? 0);
  if (sps.picOrderCntType === 0) {
    w.u(sps.log2MaxPocLsb ?? 4, h.picOrderCntLsb ?? 0);
    if (pps.bottomFieldPicOrderInFramePresent && !h.fieldPic) w.se(h.deltaPicOrderCntBottom ?? 0);
  }
  if (sps.picOrderCntType === 1 && sps.deltaPicOrderAlwaysZero !== true) {
    w.se(h.deltaPicOrderCnt0 ?? 0);
    if (pps.bottomFieldPicOrderInFramePresent && !h.fieldPic) w.se(h.deltaPicOrderCnt1 ?? 0);
  }
  if (pps.redundantPicCntPresent) w.ue(h.redundantPicCnt ?? 0);
  if (kind === 1) w.flag(h.directSpatialMvPred ?? false);
  if (kind === 0 || kind === 3 || kind === 1) {
    w.flag(h.numRefIdxActiveOverride ?? false);
    if (h.numRefIdxActiveOverride === true) {
      w.ue(h.numRefIdxL0Active - 1);
      if (kind === 1) w.ue(h.numRefIdxL1Active - 1);
    }
  }
  if (kind !== 2 && kind !== 4) refPicListModification(w, h.refPicListModificationL0);
  if (kind === 1) refPicListModification(w, h.refPicListModificationL1);
  if ((pps.weightedPredFlag && (kind === 0 || kind === 3)) || (pps.weightedBipredIdc === 1 && kind === 1)) {
    const t = h.predWeightTable;
    if (t === undefined) throw new Error('pred_weight_table missing');
    w.ue(t.lumaLog2WeightDenom);
    if (sps.chromaArrayType !== 0) w.ue(t.chromaLog2WeightDenom ?? 0);
    const lists = kind === 1 ? [t.l0, t.l1 ?? []] : [t.l0];
    for (const list of lists) {
      for (const e of list) {
        w.flag(e.luma !== undefined);
        if (e.luma !== undefined) w.se(e.luma.weight).se(e.luma.offset);
        if (sps.chromaArrayType !== 0) {
          w.flag(e.chroma !== undefined);
          if (e.chroma !== undefined) for (const c of e.chroma) w.se(c.weight).se(c.offset);
        }
      }
    }
  }
  if (h.nalRefIdc !== 0) {
    const m = h.decRefPicMarking ?? {};
    if (idr) {
      w.flag(m.noOutputOfPriorPics ?? false).flag(m.longTermReference ?? false);
    } else {
      w.flag(m.mmco !== undefined);
      for (const op of m.mmco ?? []) {
        w.ue(op.op);
        if (op.op === 1 || op.op === 3) w.ue(op.differenceOfPicNumsMinus1 ?? 0);
        if (op.op === 2) w.ue(op.longTermPicNum ?? 0);
        if (op.op === 3 || op.op === 6) w.ue(op.longTermFrameIdx ?? 0);
        if (op.op === 4) w.ue(op.maxLongTermFrameIdxPlus1 ?? 0);
      }
      if (m.mmco !== undefined) w.ue(0);
    }
  }
  if (pps.entropyCodingModeFlag && kind !== 2 && kind !== 4) w.ue(h.cabacInitIdc ?? 0);
  w.se(h.sliceQpDelta);
  if (kind === 3 || kind === 4) {
    if (kind === 3) w.flag(h.spForSwitch ?? false);
    w.se(h.sliceQsDelta ?? 0);
  }
  if (pps.deblockingFilterControlPresent) {
    w.ue(h.disableDeblockingFilterIdc ?? 0);
    if (h.disableDeblockingFilterIdc !== 1) w.se(h.sliceAlphaC0OffsetDiv2 ?? 0).se(h.sliceBetaOffsetDiv2 ?? 0);
  }
  if (pps.numSliceGroups > 1 && pps.sliceGroupMapType !== undefined && pps.sliceGroupMapType >= 3 && pps.sliceGroupMapType <= 5) {
    const size = sps.picWidthInMbs * sps.picHeightInMapUnits;
    const bits = Math.ceil(Math.log2(size / (pps.sliceGroupChangeRate ?? 1) + 1));
    w.u(bits, h.sliceGroupChangeCycle ?? 0);
  }
  const bits = w.position - 8;
  return { rbsp: w.toBytes(), bits };
}

export interface HrdSpec {
  readonly cpb: readonly { bitRate: number; cpbSize: number; cbr: boolean }[];
  readonly bitRateScale: number;
  readonly cpbSizeScale: number;
  readonly lengths: readonly [number, number, number, number];
}

export interface VuiSpec {
  readonly aspectRatioIdc?: number;
  readonly sar?: readonly [number, number];
  readonly overscan?: boolean;
  readonly signal?: { readonly format: number; readonly fullRange: boolean; readonly colour?: readonly [number, number, number] };
  readonly chromaLoc?: readonly [number, number];
  readonly timing?: { readonly numUnitsInTick: number; readonly timeScale: number; readonly fixed: boolean };
  /** Stop right after the timing information (an encoder that truncates its VUI). */
  readonly truncateAfterTiming?: boolean;
  readonly nalHrd?: HrdSpec;
  readonly vclHrd?: HrdSpec;
  readonly lowDelay?: boolean;
  readonly picStruct?: boolean;
  readonly restriction?: readonly [boolean, number, number, number, number, number, number];
}

export interface SpsSpec {
  readonly profileIdc: number;
  readonly constraintFlags: number;
  readonly levelIdc: number;
  readonly spsId: number;
  readonly chromaFormatIdc: number;
  readonly separateColourPlane: boolean;
  readonly bitDepthLuma: number;
  readonly bitDepthChroma: number;
  readonly qpprimeBypass: boolean;
  /** delta_scale values per list (8 or 12 lists); undefined = list not present; a list ends early where nextScale becomes 0. */
  readonly scalingLists?: readonly (readonly number[] | undefined)[];
  readonly log2MaxFrameNum: number;
  readonly pocType: number;
  readonly log2MaxPocLsb: number;
  readonly deltaPicOrderAlwaysZero: boolean;
  readonly offsetForNonRefPic: number;
  readonly offsetForTopToBottomField: number;
  readonly offsetsForRefFrame: readonly number[];
  readonly maxNumRefFrames: number;
  readonly gaps: boolean;
  readonly widthMbs: number;
  readonly heightMapUnits: number;
  readonly frameMbsOnly: boolean;
  readonly mbaff: boolean;
  readonly direct8x8: boolean;
  readonly crop?: readonly [number, number, number, number];
  readonly vui?: VuiSpec;
}

export const HIGH_PROFILES = [100, 110, 122, 244, 44, 83, 86, 118, 128, 138, 139, 134, 135];

function scalingList(w: _BitWriter, deltas: readonly number[], size: number): void {
  let last = 8;
  let next = 8;
  for (let j = 0; j < size; j++) {
    if (next !== 0) {
      const d = deltas[j] ?? 0;
      w.se(d);
      next = (last + d + 256) % 256;
    }
    last = next === 0 ? last : next;
  }
}

function hrd(w: _BitWriter, h: HrdSpec): void {
  w.ue(h.cpb.length - 1).u(4, h.bitRateScale).u(4, h.cpbSizeScale);
  for (const c of h.cpb) w.ue(c.bitRate).ue(c.cpbSize).flag(c.cbr);
  for (const [i, len] of h.lengths.entries()) w.u(5, i < 3 ? len - 1 : len);
}

/** An SPS NAL unit (RBSP with trailing bits, header 0x67) from `s`. */
export function writeSps(s: SpsSpec): Uint8Array {
  const w = new _BitWriter();
  w.u(8, 0x67).u(8, s.profileIdc).u(8, s.constraintFlags).u(8, s.levelIdc).ue(s.spsId);
  if (HIGH_PROFILES.includes(s.profileIdc)) {
    w.ue(s.chromaFormatIdc);
    if (s.chromaFormatIdc === 3) w.flag(s.separateColourPlane);
    w.ue(s.bitDepthLuma - 8).ue(s.bitDepthChroma - 8).flag(s.qpprimeBypass);
    w.flag(s.scalingLists !== undefined);
    if (s.scalingLists !== undefined) {
      const n = s.chromaFormatIdc !== 3 ? 8 : 12;
      for (let i = 0; i < n; i++) {
        const l = s.scalingLists[i];
        w.flag(l !== undefined);
        if (l !== undefined) scalingList(w, l, i < 6 ? 16 : 64);
      }
    }
  }
  w.ue(s.log2MaxFrameNum - 4).ue(s.pocType);
  if (s.pocType === 0) w.ue(s.log2MaxPocLsb - 4);
  if (s.pocType === 1) {
    w.flag(s.deltaPicOrderAlwaysZero).se(s.offsetForNonRefPic).se(s.offsetForTopToBottomField).ue(s.offsetsForRefFrame.length);
    for (const o of s.offsetsForRefFrame) w.se(o);
  }
  w.ue(s.maxNumRefFrames).flag(s.gaps).ue(s.widthMbs - 1).ue(s.heightMapUnits - 1).flag(s.frameMbsOnly);
  if (!s.frameMbsOnly) w.flag(s.mbaff);
  w.flag(s.direct8x8).flag(s.crop !== undefined);
  if (s.crop !== undefined) for (const c of s.crop) w.ue(c);
  w.flag(s.vui !== undefined);
  const v = s.vui;
  if (v !== undefined) {
    w.flag(v.aspectRatioIdc !== undefined);
    if (v.aspectRatioIdc !== undefined) {
      w.u(8, v.aspectRatioIdc);
      if (v.aspectRatioIdc === 255) w.u(16, v.sar?.[0] ?? 1).u(16, v.sar?.[1] ?? 1);
    }
    w.flag(v.overscan !== undefined);
    if (v.overscan !== undefined) w.flag(v.overscan);
    w.flag(v.signal !== undefined);
    if (v.signal !== undefined) {
      w.u(3, v.signal.format).flag(v.signal.fullRange).flag(v.signal.colour !== undefined);
      if (v.signal.colour !== undefined) for (const c of v.signal.colour) w.u(8, c);
    }
    w.flag(v.chromaLoc !== undefined);
    if (v.chromaLoc !== undefined) w.ue(v.chromaLoc[0]).ue(v.chromaLoc[1]);
    w.flag(v.timing !== undefined);
    if (v.timing !== undefined) w.u(32, v.timing.numUnitsInTick).u(32, v.timing.timeScale).flag(v.timing.fixed);
    if (v.truncateAfterTiming === true) return w.toBytes();
    w.flag(v.nalHrd !== undefined);
    if (v.nalHrd !== undefined) hrd(w, v.nalHrd);
    w.flag(v.vclHrd !== undefined);
    if (v.vclHrd !== undefined) hrd(w, v.vclHrd);
    if (v.nalHrd !== undefined || v.vclHrd !== undefined) w.flag(v.lowDelay ?? false);
    w.flag(v.picStruct ?? false);
    w.flag(v.restriction !== undefined);
    if (v.restriction !== undefined) {
      const [mv, ...rest] = v.restriction;
      w.flag(mv);
      for (const x of rest) w.ue(x);
    }
  }
  return w.trailingBits().toBytes();
}

export interface PpsSpec {
  readonly ppsId: number;
  readonly spsId: number;
  readonly cabac: boolean;
  readonly bottomFieldPicOrder: boolean;
  readonly sliceGroups?: {
    readonly count: number;
    readonly mapType: number;
    readonly runLengths?: readonly number[];
    readonly rects?: readonly (readonly [number, number])[];
    readonly changeDirection?: boolean;
    readonly changeRate?: number;
    readonly ids?: readonly number[];
  };
  readonly numRefIdxL0: number;
  readonly numRefIdxL1: number;
  readonly weightedPred: boolean;
  readonly weightedBipredIdc: number;
  readonly picInitQp: number;
  readonly picInitQs: number;
  readonly chromaQpIndexOffset: number;
  readonly deblockingControl: boolean;
  readonly constrainedIntra: boolean;
  readonly redundantPicCnt: boolean;
  readonly ext?: { readonly transform8x8: boolean; readonly scalingLists?: readonly (readonly number[] | undefined)[]; readonly secondChromaQpIndexOffset: number };
}

/** A PPS NAL unit (RBSP with trailing bits, header 0x68) from `p`; `chromaFormatIdc` of its SPS sizes the scaling lists. */
export function writePps(p: PpsSpec, chromaFormatIdc: number): Uint8Array {
  const w = new _BitWriter();
  w.u(8, 0x68).ue(p.ppsId).ue(p.spsId).flag(p.cabac).flag(p.bottomFieldPicOrder);
  const g = p.sliceGroups;
  w.ue((g?.count ?? 1) - 1);
  if (g !== undefined && g.count > 1) {
    w.ue(g.mapType);
    if (g.mapType === 0) for (const r of g.runLengths ?? []) w.ue(r - 1);
    if (g.mapType === 2) for (const [tl, br] of g.rects ?? []) w.ue(tl).ue(br);
    if (g.mapType >= 3 && g.mapType <= 5) w.flag(g.changeDirection ?? false).ue((g.changeRate ?? 1) - 1);
    if (g.mapType === 6) {
      const ids = g.ids ?? [];
      w.ue(ids.length - 1);
      const bits = Math.ceil(Math.log2(g.count));
      for (const id of ids) w.u(bits, id);
    }
  }
  w.ue(p.numRefIdxL0 - 1).ue(p.numRefIdxL1 - 1).flag(p.weightedPred).u(2, p.weightedBipredIdc);
  w.se(p.picInitQp - 26).se(p.picInitQs - 26).se(p.chromaQpIndexOffset);
  w.flag(p.deblockingControl).flag(p.constrainedIntra).flag(p.redundantPicCnt);
  if (p.ext !== undefined) {
    w.flag(p.ext.transform8x8).flag(p.ext.scalingLists !== undefined);
    if (p.ext.scalingLists !== undefined) {
      const n = 6 + (p.ext.transform8x8 ? (chromaFormatIdc !== 3 ? 2 : 6) : 0);
      for (let i = 0; i < n; i++) {
        const l = p.ext.scalingLists[i];
        w.flag(l !== undefined);
        if (l !== undefined) scalingList(w, l, i < 6 ? 16 : 64);
      }
    }
    w.se(p.ext.secondChromaQpIndexOffset);
  }
  return w.trailingBits().toBytes();
}
