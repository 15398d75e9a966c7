/**
 * NAL unit header (7.3.1): one byte, forbidden_zero_bit | nal_ref_idc (2) | nal_unit_type (5). Everything above
 * this layer dispatches on the type, so a set forbidden bit is refused here, once.
 */
import { MediaError } from '../../errors.js';

/** nal_unit_type values (Table 7-1) that keyframe handles or must recognise. */
export const NalType = {
  /** Coded slice of a non-IDR picture. */
  SLICE: 1,
  /** Coded slice data partition A (slice header + partition A data). */
  DPA: 2,
  /** Coded slice data partition B. */
  DPB: 3,
  /** Coded slice data partition C. */
  DPC: 4,
  /** Coded slice of an IDR picture. */
  IDR: 5,
  /** Supplemental enhancement information. */
  SEI: 6,
  /** Sequence parameter set. */
  SPS: 7,
  /** Picture parameter set. */
  PPS: 8,
  /** Access unit delimiter. */
  AUD: 9,
  END_SEQ: 10,
  END_STREAM: 11,
  FILLER: 12,
  SPS_EXT: 13,
  /** Prefix NAL unit (SVC/MVC). */
  PREFIX: 14,
  SUBSET_SPS: 15,
} as const;

function _header(nal: Uint8Array): number {
  const b = nal[0];
  if (b === undefined) throw new MediaError('empty NAL unit');
  if ((b & 0x80) !== 0) throw new MediaError('NAL unit has forbidden_zero_bit set', 0);
  return b;
}

/** nal_unit_type: the low 5 bits of the header byte. */
export function nalType(nal: Uint8Array): number {
  return _header(nal) & 0x1f;
}

/** nal_ref_idc: 0 for NAL units that no reference picture depends on. */
export function nalRefIdc(nal: Uint8Array): number {
  return (_header(nal) >>> 5) & 0x03;
}

/** VCL NAL units (types 1..5) carry coded picture data; everything else is parameter sets and side data. */
export function isVcl(type: number): boolean {
  return type >= 1 && type <= 5;
}
