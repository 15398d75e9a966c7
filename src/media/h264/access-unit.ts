/**
 * Access-unit assembly (7.4.1.2.3, 7.4.1.2.4): groups a NAL-unit stream in decoding order into pictures, the
 * unit of CENC samples, signatures and MP4 samples. Multi-slice pictures stay one access unit; SPS and PPS are
 * tracked on the way, because slice headers cannot be read without them.
 */
import { MediaError } from '../../errors.js';
import { isVcl, NalType, nalType } from './nal.js';
import { parsePps, type Pps } from './pps.js';
import { parseRecoveryPoint, parseSei, SeiPayloadType } from './sei.js';
import { parseSliceHeader, type SliceHeader } from './slice.js';
import { parseSps, type Sps } from './sps.js';

/** A slice of an access unit: its header and the index of its NAL unit in `nals`. */
export interface AuSlice {
  readonly nalIndex: number;
  readonly header: SliceHeader;
}

export interface AccessUnit {
  /** The NAL units in decoding order, as given to the assembler (not copied). */
  readonly nals: Uint8Array[];
  /** The primary picture is an IDR picture. */
  readonly isIdr: boolean;
  /** Decoding can start here: an IDR picture, or a recovery-point SEI with only I (or SI) slices. */
  readonly isKeyframe: boolean;
  /** Slices of the primary coded picture (redundant slices and data partitions B, C not counted). */
  readonly sliceCount: number;
  /** Header of every VCL NAL unit that has one (types 1, 2, 5), redundant slices included. */
  readonly slices: readonly AuSlice[];
}

/** Non-VCL NAL types that, after a VCL NAL unit, begin the next access unit (7.4.1.2.3): 6–9 and 14–18. */
function _beginsAccessUnit(type: number): boolean {
  return (type >= NalType.SEI && type <= NalType.AUD) || (type >= NalType.PREFIX && type <= 18);
}

/** 7.4.1.2.4: does `cur` begin a new primary coded picture, given the previous primary slice `prev`? */
function _newPicture(prev: SliceHeader, cur: SliceHeader): boolean {
  if (cur.firstMbInSlice === 0) return true;
  if (cur.frameNum !== prev.frameNum || cur.ppsId !== prev.ppsId) return true;
  if (cur.fieldPic !== prev.fieldPic || cur.bottomField !== prev.bottomField) return true;
  if (cur.nalRefIdc !== prev.nalRefIdc && (cur.nalRefIdc === 0 || prev.nalRefIdc === 0)) return true;
  if (cur.picOrderCntLsb !== prev.picOrderCntLsb || cur.deltaPicOrderCntBottom !== prev.deltaPicOrderCntBottom) return true;
  if (cur.deltaPicOrderCnt0 !== prev.deltaPicOrderCnt0 || cur.deltaPicOrderCnt1 !== prev.deltaPicOrderCnt1) return true;
  const curIdr = cur.nalType === NalType.IDR;
  if (curIdr !== (prev.nalType === NalType.IDR)) return true;
  return curIdr && cur.idrPicId !== prev.idrPicId;
}

function _isPrimary(h: SliceHeader): boolean {
  return (h.redundantPicCnt ?? 0) === 0;
}

function _hasRecoveryPoint(nals: readonly Uint8Array[]): boolean {
  for (const nal of nals) {
    if (nalType(nal) !== NalType.SEI) continue;
    try {
      for (const m of parseSei(nal)) {
        if (m.payloadType === SeiPayloadType.RECOVERY_POINT) {
          parseRecoveryPoint(m);
          return true;
        }
      }
    } catch (e) {
      // a malformed SEI does not make a keyframe, nor does it stop the stream
      if (!(e instanceof MediaError)) throw e;
    }
  }
  return false;
}

function _accessUnit(nals: Uint8Array[], slices: AuSlice[]): AccessUnit {
  const primary = slices.filter((s) => _isPrimary(s.header));
  const isIdr = primary.length > 0 && primary.every((s) => s.header.nalType === NalType.IDR);
  const intraOnly = primary.length > 0 && primary.every((s) => s.header.sliceKind === 'I' || s.header.sliceKind === 'SI');
  const isKeyframe = isIdr || (intraOnly && _hasRecoveryPoint(nals));
  return { nals, isIdr, isKeyframe, sliceCount: primary.length, slices };
}

/**
 * Push NAL units in decoding order (from splitAnnexB, AnnexBSplitter or splitLengthPrefixed); get access units
 * back once the first NAL unit of the next one shows that they are complete; `flush` at end of stream returns
 * the last. A trailing run of non-VCL NAL units with no picture after it comes back as an access unit with
 * sliceCount 0, so that no NAL unit is dropped. A NAL unit that cannot be parsed throws a MediaError and leaves
 * the assembler as it was, so the caller may skip it and go on.
 */
export class AccessUnitAssembler {
  private readonly spsMap = new Map<number, Sps>();
  private readonly ppsMap = new Map<number, Pps>();
  private nals: Uint8Array[] = [];
  private slices: AuSlice[] = [];
  private hasVcl = false;
  /** An end-of-sequence or end-of-stream NAL unit closed the current access unit. */
  private ended = false;
  /** The latest primary slice of the current access unit. */
  private prev: SliceHeader | undefined;

  /** SPSs seen so far, by id. */
  get sps(): ReadonlyMap<number, Sps> {
    return this.spsMap;
  }

  /** PPSs seen so far, by id. */
  get pps(): ReadonlyMap<number, Pps> {
    return this.ppsMap;
  }

  /**
   * Learns an SPS or PPS that is not part of the stream (an MP4's avcC): slices that refer to it can be parsed.
   * A malformed one is a MediaError; other NAL types are ignored.
   */
  learn(nal: Uint8Array): void {
    const type = nalType(nal);
    if (type === NalType.SPS) {
      const sps = parseSps(nal);
      this.spsMap.set(sps.spsId, sps);
    } else if (type === NalType.PPS) {
      const pps = parsePps(nal, this.spsMap);
      this.ppsMap.set(pps.ppsId, pps);
    }
  }

  push(nal: Uint8Array): AccessUnit[] {
    const type = nalType(nal);
    const out: AccessUnit[] = [];
    if (type === NalType.DPB || type === NalType.DPC) {
      if (this.ended) this.emit(out);
      this.nals.push(nal);
      this.hasVcl = true;
      return out;
    }
    if (isVcl(type)) {
      const header = parseSliceHeader(nal, this.spsMap, this.ppsMap);
      const primary = _isPrimary(header);
      if (this.ended || (this.hasVcl && primary && (this.prev === undefined || _newPicture(this.prev, header)))) this.emit(out);
      this.slices.push({ nalIndex: this.nals.length, header });
      this.nals.push(nal);
      this.hasVcl = true;
      if (primary) this.prev = header;
      return out;
    }
    const sps = type === NalType.SPS ? parseSps(nal) : undefined;
    const pps = type === NalType.PPS ? parsePps(nal, this.spsMap) : undefined;
    if (this.ended || (this.hasVcl && _beginsAccessUnit(type))) this.emit(out);
    if (sps !== undefined) this.spsMap.set(sps.spsId, sps);
    if (pps !== undefined) this.ppsMap.set(pps.ppsId, pps);
    this.nals.push(nal);
    if (type === NalType.END_SEQ || type === NalType.END_STREAM) this.ended = true;
    return out;
  }

  flush(): AccessUnit[] {
    const out: AccessUnit[] = [];
    this.emit(out);
    return out;
  }

  private emit(out: AccessUnit[]): void {
    if (this.nals.length > 0) out.push(_accessUnit(this.nals, this.slices));
    this.nals = [];
    this.slices = [];
    this.hasVcl = false;
    this.ended = false;
    this.prev = undefined;
  }
}
