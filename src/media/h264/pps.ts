/**
 * Picture parameter set (7.3.2.2): the flags that decide which fields a slice header has (entropy coder,
 * weighted prediction, deblocking control, redundant_pic_cnt, slice groups). Slice groups (FMO, Baseline only) are
 * parsed, so that slice_group_change_cycle can be read from slice headers.
 */
import { MediaError } from '../../errors.js';
import { _rbspReader, _skipScalingList } from './_nal-reader.js';
import { NalType } from './nal.js';
import type { Sps } from './sps.js';

export interface Pps {
  readonly ppsId: number;
  readonly spsId: number;
  /** true: CABAC; false: CAVLC. */
  readonly entropyCodingModeFlag: boolean;
  readonly bottomFieldPicOrderInFramePresent: boolean;
  readonly numSliceGroups: number;
  readonly sliceGroupMapType?: number;
  /** SliceGroupChangeRate (slice_group_change_rate_minus1 + 1), for map types 3..5. */
  readonly sliceGroupChangeRate?: number;
  readonly numRefIdxL0DefaultActive: number;
  readonly numRefIdxL1DefaultActive: number;
  readonly weightedPredFlag: boolean;
  readonly weightedBipredIdc: number;
  /** 26 + pic_init_qp_minus26. */
  readonly picInitQp: number;
  readonly picInitQs: number;
  readonly chromaQpIndexOffset: number;
  readonly deblockingFilterControlPresent: boolean;
  readonly constrainedIntraPred: boolean;
  readonly redundantPicCntPresent: boolean;
  /** Present only when the PPS has the High-profile extension. */
  readonly transform8x8Mode?: boolean;
  readonly picScalingMatrixPresent?: boolean;
  readonly secondChromaQpIndexOffset?: number;
}

/**
 * Parses a PPS NAL unit (header included, escaped). The SPS it names must be in `spsById`: its chroma format
 * and bit depth decide the number of scaling lists and the valid QP range. Malformed input is a MediaError.
 */
export function parsePps(nal: Uint8Array, spsById: ReadonlyMap<number, Sps>): Pps {
  const r = _rbspReader(nal, NalType.PPS, 'PPS');
  const ppsId = r.ueIn('pic_parameter_set_id', 0, 255);
  const spsId = r.ueIn('seq_parameter_set_id', 0, 31);
  const sps = spsById.get(spsId);
  if (sps === undefined) throw new MediaError(`PPS ${ppsId} refers to unknown SPS ${spsId}`);
  const entropyCodingModeFlag = r.flag();
  const bottomFieldPicOrderInFramePresent = r.flag();
  const numSliceGroups = r.ueIn('num_slice_groups_minus1', 0, 7) + 1;
  const groups: { sliceGroupMapType?: number; sliceGroupChangeRate?: number } = {};
  if (numSliceGroups > 1) {
    const type = r.ueIn('slice_group_map_type', 0, 6);
    groups.sliceGroupMapType = type;
    const picSizeInMapUnits = sps.picWidthInMbs * sps.picHeightInMapUnits;
    if (type === 0) {
      for (let g = 0; g < numSliceGroups; g++) r.ueIn('run_length_minus1', 0, picSizeInMapUnits - 1);
    } else if (type === 2) {
      for (let g = 0; g < numSliceGroups - 1; g++) {
        r.ue(); // top_left
        r.ue(); // bottom_right
      }
    } else if (type >= 3 && type <= 5) {
      r.bit(); // slice_group_change_direction_flag
      groups.sliceGroupChangeRate = r.ueIn('slice_group_change_rate_minus1', 0, picSizeInMapUnits - 1) + 1;
    } else if (type === 6) {
      const units = r.ue() + 1;
      if (units !== picSizeInMapUnits) throw new MediaError(`PPS: pic_size_in_map_units ${units} does not match the SPS (${picSizeInMapUnits})`);
      const bits = Math.ceil(Math.log2(numSliceGroups));
      r.skip(units * bits); // slice_group_id[], checked against the remaining input by skip()
    }
  }
  const numRefIdxL0DefaultActive = r.ueIn('num_ref_idx_l0_default_active_minus1', 0, 31) + 1;
  const numRefIdxL1DefaultActive = r.ueIn('num_ref_idx_l1_default_active_minus1', 0, 31) + 1;
  const weightedPredFlag = r.flag();
  const weightedBipredIdc = r.u(2);
  if (weightedBipredIdc === 3) throw new MediaError('PPS: weighted_bipred_idc = 3 is reserved');
  const qpBdOffset = 6 * (sps.bitDepthLuma - 8);
  const picInitQp = 26 + r.seIn('pic_init_qp_minus26', -(26 + qpBdOffset), 25);
  const picInitQs = 26 + r.seIn('pic_init_qs_minus26', -26, 25);
  const chromaQpIndexOffset = r.seIn('chroma_qp_index_offset', -12, 12);
  const deblockingFilterControlPresent = r.flag();
  const constrainedIntraPred = r.flag();
  const redundantPicCntPresent = r.flag();
  const ext: { transform8x8Mode?: boolean; picScalingMatrixPresent?: boolean; secondChromaQpIndexOffset?: number } = {};
  if (r.moreRbspData()) {
    ext.transform8x8Mode = r.flag();
    ext.picScalingMatrixPresent = r.flag();
    if (ext.picScalingMatrixPresent) {
      const lists = 6 + (ext.transform8x8Mode ? (sps.chromaFormatIdc !== 3 ? 2 : 6) : 0);
      for (let i = 0; i < lists; i++) if (r.flag()) _skipScalingList(r, i < 6 ? 16 : 64);
    }
    ext.secondChromaQpIndexOffset = r.seIn('second_chroma_qp_index_offset', -12, 12);
  }
  return {
    ppsId,
    spsId,
    entropyCodingModeFlag,
    bottomFieldPicOrderInFramePresent,
    numSliceGroups,
    ...groups,
    numRefIdxL0DefaultActive,
    numRefIdxL1DefaultActive,
    weightedPredFlag,
    weightedBipredIdc,
    picInitQp,
    picInitQs,
    chromaQpIndexOffset,
    deblockingFilterControlPresent,
    constrainedIntraPred,
    redundantPicCntPresent,
    ...ext,
  };
}
