/**
 * fast-check generators of valid SPS, PPS and slice-header contents, covering the syntax that x264 never writes
 * (field pictures, POC type 1, SP/SI slices, redundant pictures, slice groups, separate colour planes).
 */
import fc from 'fast-check';
import type { MmcoOp, Pps, PredWeightEntry, RefPicListModificationOp, SliceHeader, Sps } from '../../../src/media/h264/index.js';
import { HIGH_PROFILES, type HrdSpec, type PpsSpec, type SpsSpec, type VuiSpec } from './_writers.js';

type G = fc.GeneratorValue;

const int = (g: G, min: number, max: number): number => g(fc.integer, { min, max });
const bool = (g: G): boolean => g(fc.boolean);
const maybe = <T>(g: G, make: () => T): T | undefined => (bool(g) ? make() : undefined);
const se32 = (g: G): number => g(() => fc.oneof(fc.integer({ min: -40, max: 40 }), fc.integer({ min: -(2 ** 31 - 1), max: 2 ** 31 - 1 })));

function scalingLists(g: G, count: number): (number[] | undefined)[] {
  return Array.from({ length: count }, (_, i) => maybe(g, () => g(() => fc.array(fc.oneof(fc.integer({ min: -128, max: 127 }), fc.constant(-8), fc.constant(0)), { minLength: i < 6 ? 16 : 64, maxLength: i < 6 ? 16 : 64 }))));
}

function hrd(g: G): HrdSpec {
  return {
    cpb: Array.from({ length: int(g, 1, 3) }, () => ({ bitRate: int(g, 0, 2 ** 32 - 2), cpbSize: int(g, 0, 100000), cbr: bool(g) })),
    bitRateScale: int(g, 0, 15),
    cpbSizeScale: int(g, 0, 15),
    lengths: [int(g, 1, 32), int(g, 1, 32), int(g, 1, 32), int(g, 0, 31)],
  };
}

function vui(g: G): VuiSpec {
  const aspectRatioIdc = maybe(g, () => g(() => fc.constantFrom(1, 2, 17, 255)));
  const signal = maybe(g, () => ({ format: int(g, 0, 7), fullRange: bool(g), ...(bool(g) ? { colour: [int(g, 0, 255), int(g, 0, 255), int(g, 0, 255)] as const } : {}) }));
  const timing = maybe(g, () => ({ numUnitsInTick: int(g, 1, 2 ** 32 - 1), timeScale: int(g, 1, 2 ** 32 - 1), fixed: bool(g) }));
  const truncate = timing !== undefined && int(g, 0, 4) === 0;
  const nalHrd = maybe(g, () => hrd(g));
  const vclHrd = maybe(g, () => hrd(g));
  return {
    ...(aspectRatioIdc !== undefined ? { aspectRatioIdc, sar: [int(g, 0, 65535), int(g, 0, 65535)] as const } : {}),
    ...(bool(g) ? { overscan: bool(g) } : {}),
    ...(signal !== undefined ? { signal } : {}),
    ...(bool(g) ? { chromaLoc: [int(g, 0, 5), int(g, 0, 5)] as const } : {}),
    ...(timing !== undefined ? { timing } : {}),
    ...(truncate ? { truncateAfterTiming: true } : {}),
    ...(nalHrd !== undefined ? { nalHrd } : {}),
    ...(vclHrd !== undefined ? { vclHrd } : {}),
    lowDelay: bool(g),
    picStruct: bool(g),
    ...(bool(g) ? { restriction: [bool(g), int(g, 0, 16), int(g, 0, 16), int(g, 0, 16), int(g, 0, 16), int(g, 0, 16), int(g, 0, 16)] as const } : {}),
  };
}

/** A valid SPS; `small` keeps the picture small enough for slice-group maps. */
export function genSps(g: G, small = false): SpsSpec {
  const high = bool(g);
  const profileIdc = high ? g(() => fc.constantFrom(...HIGH_PROFILES)) : g(() => fc.constantFrom(66, 77, 88));
  const chromaFormatIdc = high ? int(g, 0, 3) : 1;
  const frameMbsOnly = bool(g);
  const pocType = int(g, 0, 2);
  const v = maybe(g, () => vui(g));
  const crop = maybe(g, () => [int(g, 0, 7), int(g, 0, 7), int(g, 0, 7), int(g, 0, 7)] as const);
  return {
    profileIdc,
    constraintFlags: int(g, 0, 255),
    levelIdc: int(g, 0, 255),
    spsId: int(g, 0, 31),
    chromaFormatIdc,
    separateColourPlane: chromaFormatIdc === 3 && bool(g),
    bitDepthLuma: high ? int(g, 8, 14) : 8,
    bitDepthChroma: high ? int(g, 8, 14) : 8,
    qpprimeBypass: high && bool(g),
    ...(high && bool(g) ? { scalingLists: scalingLists(g, chromaFormatIdc !== 3 ? 8 : 12) } : {}),
    log2MaxFrameNum: int(g, 4, 16),
    pocType,
    log2MaxPocLsb: int(g, 4, 16),
    deltaPicOrderAlwaysZero: bool(g),
    offsetForNonRefPic: se32(g),
    offsetForTopToBottomField: se32(g),
    offsetsForRefFrame: pocType === 1 ? g(() => fc.array(fc.integer({ min: -1000, max: 1000 }), { maxLength: 20 })) : [],
    maxNumRefFrames: int(g, 0, 16),
    gaps: bool(g),
    widthMbs: small ? int(g, 2, 12) : int(g, 2, 300),
    heightMapUnits: small ? int(g, 4, 9) : int(g, 4, 200),
    frameMbsOnly,
    mbaff: !frameMbsOnly && bool(g),
    direct8x8: frameMbsOnly ? bool(g) : true,
    ...(crop !== undefined ? { crop } : {}),
    ...(v !== undefined ? { vui: v } : {}),
  };
}

/** A valid PPS for `sps`. */
export function genPps(g: G, sps: Sps): PpsSpec {
  const picSize = sps.picWidthInMbs * sps.picHeightInMapUnits;
  const count = bool(g) ? 1 : int(g, 1, 8);
  const mapType = int(g, 0, 6);
  const transform8x8 = bool(g);
  const qpBdOffset = 6 * (sps.bitDepthLuma - 8);
  return {
    ppsId: int(g, 0, 255),
    spsId: sps.spsId,
    cabac: bool(g),
    bottomFieldPicOrder: bool(g),
    ...(count > 1
      ? {
          sliceGroups: {
            count,
            mapType,
            runLengths: Array.from({ length: count }, () => int(g, 1, picSize)),
            rects: Array.from({ length: count - 1 }, () => [int(g, 0, picSize - 1), int(g, 0, picSize - 1)] as const),
            changeDirection: bool(g),
            changeRate: int(g, 1, picSize),
            ids: Array.from({ length: picSize }, () => int(g, 0, count - 1)),
          },
        }
      : {}),
    numRefIdxL0: int(g, 1, 32),
    numRefIdxL1: int(g, 1, 32),
    weightedPred: bool(g),
    weightedBipredIdc: int(g, 0, 2),
    picInitQp: int(g, -qpBdOffset, 51),
    picInitQs: int(g, 0, 51),
    chromaQpIndexOffset: int(g, -12, 12),
    deblockingControl: bool(g),
    constrainedIntra: bool(g),
    redundantPicCnt: bool(g),
    ...(bool(g)
      ? {
          ext: {
            transform8x8,
            ...(bool(g) ? { scalingLists: scalingLists(g, 6 + (transform8x8 ? (sps.chromaFormatIdc !== 3 ? 2 : 6) : 0)) } : {}),
            secondChromaQpIndexOffset: int(g, -12, 12),
          },
        }
      : {}),
  };
}

function modifications(g: G, max: number): RefPicListModificationOp[] {
  return Array.from({ length: int(g, 0, max) }, () => ({ idc: int(g, 0, 2), value: g(() => fc.oneof(fc.nat(40), fc.nat(100000))) }));
}

function weights(g: G, count: number, chroma: boolean): PredWeightEntry[] {
  const wo = (): { weight: number; offset: number } => ({ weight: int(g, -128, 127), offset: int(g, -128, 127) });
  return Array.from({ length: count }, () => ({ ...(bool(g) ? { luma: wo() } : {}), ...(chroma && bool(g) ? { chroma: [wo(), wo()] as const } : {}) }));
}

function mmco(g: G): MmcoOp {
  const op = int(g, 1, 6);
  return {
    op,
    ...(op === 1 || op === 3 ? { differenceOfPicNumsMinus1: int(g, 0, 1000) } : {}),
    ...(op === 2 ? { longTermPicNum: int(g, 0, 100) } : {}),
    ...(op === 3 || op === 6 ? { longTermFrameIdx: int(g, 0, 15) } : {}),
    ...(op === 4 ? { maxLongTermFrameIdxPlus1: int(g, 0, 16) } : {}),
  };
}

/** A valid slice header for `sps`/`pps`, as parseSliceHeader should return it (headerBits/headerBytes 0, to be filled in). */
export function genSlice(g: G, sps: Sps, pps: Pps): SliceHeader {
  const nalType = g(() => fc.constantFrom(1, 2, 5));
  const idr = nalType === 5;
  const nalRefIdc = idr ? int(g, 1, 3) : int(g, 0, 3);
  const sliceType = idr ? g(() => fc.constantFrom(2, 4, 7, 9)) : int(g, 0, 9);
  const kind = sliceType % 5;
  const isB = kind === 1;
  const isP = kind === 0 || kind === 3;
  const fieldPic = !sps.frameMbsOnly && bool(g);
  const bottomField = fieldPic && bool(g);
  const bottomDelta = pps.bottomFieldPicOrderInFramePresent && !fieldPic;
  const override = (isP || isB) && bool(g);
  const maxRef = fieldPic ? 32 : 16;
  const l0 = isP || isB ? (override ? int(g, 1, maxRef) : pps.numRefIdxL0DefaultActive) : 0;
  const l1 = isB ? (override ? int(g, 1, maxRef) : pps.numRefIdxL1DefaultActive) : 0;
  const chroma = sps.chromaArrayType !== 0;
  const weighted = (pps.weightedPredFlag && isP) || (pps.weightedBipredIdc === 1 && isB);
  const qpBdOffset = 6 * (sps.bitDepthLuma - 8);
  const picSize = sps.picWidthInMbs * sps.picHeightInMapUnits;
  const deblock = int(g, 0, 2);
  const changeCycle = pps.numSliceGroups > 1 && pps.sliceGroupMapType !== undefined && pps.sliceGroupMapType >= 3 && pps.sliceGroupMapType <= 5;
  let cycleBits = 0;
  while (2 ** cycleBits * (pps.sliceGroupChangeRate ?? 1) < picSize + (pps.sliceGroupChangeRate ?? 1)) cycleBits++;
  return {
    nalType,
    nalRefIdc,
    firstMbInSlice: int(g, 0, picSize * (sps.frameMbsOnly ? 1 : 2) - 1),
    sliceType,
    sliceKind: (['P', 'B', 'I', 'SP', 'SI'] as const)[kind] ?? 'P',
    ppsId: pps.ppsId,
    spsId: sps.spsId,
    ...(sps.separateColourPlane ? { colourPlaneId: int(g, 0, 2) } : {}),
    frameNum: int(g, 0, 2 ** sps.log2MaxFrameNum - 1),
    fieldPic,
    bottomField,
    ...(idr ? { idrPicId: int(g, 0, 65535) } : {}),
    ...(sps.picOrderCntType === 0 ? { picOrderCntLsb: int(g, 0, 2 ** (sps.log2MaxPocLsb ?? 4) - 1), ...(bottomDelta ? { deltaPicOrderCntBottom: se32(g) } : {}) } : {}),
    ...(sps.picOrderCntType === 1 && sps.deltaPicOrderAlwaysZero !== true ? { deltaPicOrderCnt0: se32(g), ...(bottomDelta ? { deltaPicOrderCnt1: se32(g) } : {}) } : {}),
    ...(pps.redundantPicCntPresent ? { redundantPicCnt: int(g, 0, 127) } : {}),
    ...(isB ? { directSpatialMvPred: bool(g) } : {}),
    ...(isP || isB ? { numRefIdxActiveOverride: override } : {}),
    numRefIdxL0Active: l0,
    numRefIdxL1Active: l1,
    ...((isP || isB) && bool(g) ? { refPicListModificationL0: modifications(g, l0) } : {}),
    ...(isB && bool(g) ? { refPicListModificationL1: modifications(g, l1) } : {}),
    ...(weighted
      ? {
          predWeightTable: {
            lumaLog2WeightDenom: int(g, 0, 7),
            ...(chroma ? { chromaLog2WeightDenom: int(g, 0, 7) } : {}),
            l0: weights(g, l0, chroma),
            ...(isB ? { l1: weights(g, l1, chroma) } : {}),
          },
        }
      : {}),
    ...(nalRefIdc !== 0
      ? { decRefPicMarking: idr ? { noOutputOfPriorPics: bool(g), longTermReference: bool(g) } : bool(g) ? { mmco: Array.from({ length: int(g, 0, 6) }, () => mmco(g)) } : {} }
      : {}),
    ...(pps.entropyCodingModeFlag && kind !== 2 && kind !== 4 ? { cabacInitIdc: int(g, 0, 2) } : {}),
    sliceQpDelta: int(g, -qpBdOffset - pps.picInitQp, 51 - pps.picInitQp),
    ...(kind === 3 ? { spForSwitch: bool(g) } : {}),
    ...(kind === 3 || kind === 4 ? { sliceQsDelta: int(g, -pps.picInitQs, 51 - pps.picInitQs) } : {}),
    ...(pps.deblockingFilterControlPresent ? { disableDeblockingFilterIdc: deblock, ...(deblock !== 1 ? { sliceAlphaC0OffsetDiv2: int(g, -6, 6), sliceBetaOffsetDiv2: int(g, -6, 6) } : {}) } : {}),
    ...(changeCycle ? { sliceGroupChangeCycle: int(g, 0, 2 ** cycleBits - 1) } : {}),
    headerBits: 0,
    headerBytes: 0,
  };
}
