/**
 * H.264 bitstream layer (ITU-T H.264 / ISO/IEC 14496-10): NAL units in Annex-B and length-prefixed form,
 * emulation prevention, parameter sets, slice headers, SEI, access units and GOPs. Pure functions on bytes, no
 * I/O; malformed input is always a MediaError. Used by the CENC packager and the video signer.
 */
export { NalType, nalType, nalRefIdc, isVcl } from './nal.js';
export { splitAnnexB, AnnexBSplitter, writeAnnexB, DEFAULT_MAX_NAL_BYTES } from './annexb.js';
export type { AnnexBSplitterOptions } from './annexb.js';
export { splitLengthPrefixed, writeLengthPrefixed } from './length-prefixed.js';
export type { NalLengthSize } from './length-prefixed.js';
export { unescapeRbsp, escapeRbsp, escapedLength } from './rbsp.js';
export type { Unescaped } from './rbsp.js';
export { parseSps } from './sps.js';
export type { Sps, Vui, VuiTiming, HrdParameters, BitstreamRestriction } from './sps.js';
export { parsePps } from './pps.js';
export type { Pps } from './pps.js';
export { parseSliceHeader, sliceKindOf } from './slice.js';
export type { SliceHeader, SliceKind, RefPicListModificationOp, PredWeightTable, PredWeightEntry, WeightOffset, DecRefPicMarking, MmcoOp } from './slice.js';
export { parseSei, buildSeiNal, userDataUnregistered, parseUserDataUnregistered, parseRecoveryPoint, uuidBytes, SeiPayloadType } from './sei.js';
export type { SeiMessage, RecoveryPoint } from './sei.js';
export { AccessUnitAssembler } from './access-unit.js';
export type { AccessUnit, AuSlice } from './access-unit.js';
export { GopAssembler } from './gop.js';
export { checkPicture } from './completeness.js';
export type { PictureCheck } from './completeness.js';
export type { Gop } from './gop.js';
