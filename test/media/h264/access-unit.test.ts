/** Access-unit boundaries (7.4.1.2.3, 7.4.1.2.4) and GOPs on hand-made NAL sequences: one rule per test. */
import { describe, expect, it } from 'vitest';
import { MediaError } from '../../../src/errors.js';
import { _BitWriter } from '../../../src/media/h264/_bits.js';
import { AccessUnitAssembler, buildSeiNal, escapeRbsp, GopAssembler, parsePps, parseSps, userDataUnregistered, type AccessUnit, type Pps, type SliceHeader, type Sps } from '../../../src/media/h264/index.js';
import { writePps, writeSliceHeader, writeSps, type PpsSpec, type SpsSpec } from './_writers.js';

const SPS_SPEC: SpsSpec = {
  profileIdc: 66, constraintFlags: 0xc0, levelIdc: 30, spsId: 0, chromaFormatIdc: 1, separateColourPlane: false, bitDepthLuma: 8, bitDepthChroma: 8, qpprimeBypass: false,
  log2MaxFrameNum: 4, pocType: 0, log2MaxPocLsb: 8, deltaPicOrderAlwaysZero: false, offsetForNonRefPic: 0, offsetForTopToBottomField: 0, offsetsForRefFrame: [],
  maxNumRefFrames: 1, gaps: false, widthMbs: 4, heightMapUnits: 4, frameMbsOnly: true, mbaff: false, direct8x8: true,
};
const PPS_SPEC: PpsSpec = {
  ppsId: 0, spsId: 0, cabac: false, bottomFieldPicOrder: false, numRefIdxL0: 1, numRefIdxL1: 1, weightedPred: false, weightedBipredIdc: 0,
  picInitQp: 26, picInitQs: 26, chromaQpIndexOffset: 0, deblockingControl: false, constrainedIntra: false, redundantPicCnt: true,
};

const SPS_NAL = escapeRbsp(writeSps(SPS_SPEC));
const PPS_NAL = escapeRbsp(writePps(PPS_SPEC, 1));
const PPS1_NAL = escapeRbsp(writePps({ ...PPS_SPEC, ppsId: 1 }, 1));
const sps: Sps = parseSps(SPS_NAL);
const pps: Pps = parsePps(PPS_NAL, new Map([[0, sps]]));
const AUD = Uint8Array.from([0x09, 0xf0]);
const END_SEQ = Uint8Array.from([0x0a]);
const SEI = buildSeiNal([userDataUnregistered(new Uint8Array(16), Uint8Array.from([1, 2, 3]))]);
const RECOVERY = buildSeiNal([{ payloadType: 6, payload: Uint8Array.from([0b11000100]) }]);

interface S {
  idr?: boolean;
  ref?: number;
  mb?: number;
  frame?: number;
  poc?: number;
  idrId?: number;
  kind?: 'I' | 'P';
  ppsId?: number;
  redundant?: number;
  type?: number;
}

/** A slice NAL unit with the given header fields and a little slice data. */
function slice(s: S): Uint8Array {
  const idr = s.idr ?? false;
  const type = s.type ?? (idr ? 5 : 1);
  const kind = s.kind ?? (idr ? 'I' : 'P');
  const h: SliceHeader = {
    nalType: type,
    nalRefIdc: s.ref ?? (idr ? 3 : 2),
    firstMbInSlice: s.mb ?? 0,
    sliceType: kind === 'I' ? 7 : 5,
    sliceKind: kind,
    ppsId: s.ppsId ?? 0,
    spsId: 0,
    frameNum: s.frame ?? 0,
    fieldPic: false,
    bottomField: false,
    ...(idr ? { idrPicId: s.idrId ?? 0 } : {}),
    picOrderCntLsb: s.poc ?? 0,
    redundantPicCnt: s.redundant ?? 0,
    ...(kind === 'P' ? { numRefIdxActiveOverride: false } : {}),
    numRefIdxL0Active: kind === 'P' ? 1 : 0,
    numRefIdxL1Active: 0,
    ...((s.ref ?? (idr ? 3 : 2)) !== 0 ? { decRefPicMarking: idr ? { noOutputOfPriorPics: false, longTermReference: false } : {} } : {}),
    sliceQpDelta: 0,
    headerBits: 0,
    headerBytes: 0,
  };
  const { rbsp, bits } = writeSliceHeader(h, sps, pps);
  const w = new _BitWriter();
  for (let i = 0; i < 8 + bits; i++) w.bit(((rbsp[i >>> 3] ?? 0) >>> (7 - (i & 7))) & 1);
  w.u(16, 0xabcd);
  return escapeRbsp(w.trailingBits().toBytes());
}

function run(nals: readonly Uint8Array[]): AccessUnit[] {
  const asm = new AccessUnitAssembler();
  const out = nals.flatMap((n) => asm.push(n));
  return [...out, ...asm.flush()];
}

/** Access units as lists of indexes into `nals`. */
function shape(nals: readonly Uint8Array[], aus: readonly AccessUnit[]): number[][] {
  return aus.map((au) => au.nals.map((n) => nals.indexOf(n)));
}

const idr0 = slice({ idr: true });
const idr1 = slice({ idr: true, mb: 8 });

describe('AccessUnitAssembler', () => {
  it('multi-slice pictures are one access unit; a slice with first_mb_in_slice 0 starts the next', () => {
    const p0 = slice({ frame: 1, poc: 2 });
    const p1 = slice({ frame: 1, poc: 2, mb: 8 });
    const nals = [SPS_NAL, PPS_NAL, idr0, idr1, p0, p1];
    const aus = run(nals);
    expect(shape(nals, aus)).toEqual([[0, 1, 2, 3], [4, 5]]);
    expect(aus.map((a) => [a.sliceCount, a.isIdr, a.isKeyframe])).toEqual([[2, true, true], [2, false, false]]);
    expect(aus[1]?.slices.map((s) => s.nalIndex)).toEqual([0, 1]);
  });

  it.each<[string, S, boolean]>([
    ['frame_num differs', { frame: 2 }, true],
    ['pic_parameter_set_id differs', { ppsId: 1 }, true],
    ['nal_ref_idc differs with one of them 0', { ref: 0 }, true],
    ['nal_ref_idc differs, neither 0', { ref: 3 }, false],
    ['pic_order_cnt_lsb differs', { poc: 4 }, true],
    ['same picture', {}, false],
  ])('second slice (first_mb_in_slice 8) after a P slice: %s', (_name, second, starts) => {
    const first = slice({ frame: 1, poc: 2 });
    const next = slice({ frame: 1, poc: 2, mb: 8, ...second });
    const nals = [SPS_NAL, PPS_NAL, PPS1_NAL, idr0, first, next];
    expect(run(nals).length).toBe(starts ? 3 : 2);
  });

  it('IdrPicFlag and idr_pic_id differences start a new picture', () => {
    expect(run([SPS_NAL, PPS_NAL, idr0, slice({ idr: true, mb: 8, idrId: 1 })]).length).toBe(2);
    expect(run([SPS_NAL, PPS_NAL, idr0, slice({ mb: 8, kind: 'I', frame: 0 })]).length).toBe(2);
  });

  it('AUD, SEI, SPS, PPS after a VCL NAL unit begin the next access unit; before the first slice they belong to it', () => {
    const p = slice({ frame: 1, poc: 2 });
    // copies, so that every NAL unit is a distinct object
    const nals = [AUD, SPS_NAL, PPS_NAL, SEI, idr0, AUD, SEI, p, SPS_NAL, PPS_NAL, idr0].map((n) => n.slice());
    expect(shape(nals, run(nals))).toEqual([[0, 1, 2, 3, 4], [5, 6, 7], [8, 9, 10]]);
  });

  it('end of sequence closes the access unit; the next NAL unit starts a new one even if it continues the picture', () => {
    const nals = [SPS_NAL, PPS_NAL, idr0, END_SEQ, idr1];
    expect(shape(nals, run(nals))).toEqual([[0, 1, 2, 3], [4]]);
  });

  it('redundant slices and data partitions B/C stay in the access unit and are not counted', () => {
    const red = slice({ idr: true, redundant: 1 });
    const dpa = slice({ type: 2, frame: 1, poc: 2 });
    const dpb = Uint8Array.from([0x43, 0x80]);
    const dpc = Uint8Array.from([0x44, 0x80]);
    const nals = [SPS_NAL, PPS_NAL, idr0, red, dpa, dpb, dpc];
    const aus = run(nals);
    expect(shape(nals, aus)).toEqual([[0, 1, 2, 3], [4, 5, 6]]);
    expect(aus.map((a) => [a.sliceCount, a.slices.length])).toEqual([[1, 2], [1, 1]]);
  });

  it('trailing non-VCL NAL units come back as an access unit with sliceCount 0', () => {
    const nals = [SPS_NAL, PPS_NAL, idr0, SEI, END_SEQ];
    const aus = run(nals);
    expect(shape(nals, aus)).toEqual([[0, 1, 2], [3, 4]]);
    expect(aus[1]).toMatchObject({ sliceCount: 0, isIdr: false, isKeyframe: false });
    expect(run([])).toEqual([]);
  });

  it('a recovery-point SEI makes an I picture a keyframe, not a P picture; a malformed SEI is ignored', () => {
    const i = slice({ kind: 'I', frame: 1, poc: 2 });
    const p = slice({ frame: 2, poc: 4 });
    const bad = Uint8Array.from([0x06, 0x06, 0x09, 0x00]);
    const aus = run([SPS_NAL, PPS_NAL, idr0, RECOVERY, i, RECOVERY, p, bad, slice({ kind: 'I', frame: 3, poc: 6 })]);
    expect(aus.map((a) => [a.isIdr, a.isKeyframe])).toEqual([[true, true], [false, true], [false, false], [false, false]]);
  });

  it('a NAL unit that fails to parse throws MediaError and leaves the assembler as it was', () => {
    const p0 = slice({ frame: 1, poc: 2 });
    const p1 = slice({ frame: 1, poc: 2, mb: 8 });
    const orphan = slice({ frame: 1, poc: 2, mb: 4, ppsId: 1 }); // PPS 1 never sent
    const asm = new AccessUnitAssembler();
    const got: AccessUnit[] = [];
    for (const n of [SPS_NAL, PPS_NAL, idr0, p0, orphan, Uint8Array.from([0xe5]), Uint8Array.from([0x68, 0xff]), p1]) {
      try {
        got.push(...asm.push(n));
      } catch (e) {
        expect(e).toBeInstanceOf(MediaError);
      }
    }
    got.push(...asm.flush());
    expect(got.map((a) => a.nals.length)).toEqual([3, 2]);
    expect(asm.sps.size).toBe(1);
    expect(asm.pps.size).toBe(1);
  });

  it('exposes the parameter sets seen so far', () => {
    const asm = new AccessUnitAssembler();
    asm.push(SPS_NAL);
    asm.push(PPS_NAL);
    expect(asm.sps.get(0)?.width).toBe(64);
    expect(asm.pps.get(0)?.redundantPicCntPresent).toBe(true);
  });
});

describe('GopAssembler', () => {
  it('GOPs start at IDR access units; pictures before the first IDR form an open GOP', () => {
    const p = (frame: number): Uint8Array => slice({ frame, poc: 2 * frame });
    const nals = [SPS_NAL, PPS_NAL, p(1), p(2), idr0, p(1), p(2), slice({ idr: true, idrId: 1 }), p(1)].map((n) => n.slice());
    const g = new GopAssembler();
    const gops = run(nals).flatMap((au) => g.push(au));
    gops.push(...g.flush());
    expect(gops.map((x) => [x.open, x.accessUnits.length])).toEqual([[true, 2], [false, 3], [false, 2]]);
    expect(g.flush()).toEqual([]);
  });
});
