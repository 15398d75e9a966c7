/** SPS and PPS: serialise → parse properties over the whole syntax, known vectors from x264, truncated VUIs. */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { MediaError } from '../../../src/errors.js';
import { _BitWriter } from '../../../src/media/h264/_bits.js';
import { escapeRbsp, parsePps, parseSps, type Sps } from '../../../src/media/h264/index.js';
import { genPps, genSps } from './_gen.js';
import { HIGH_PROFILES, writePps, writeSps, type SpsSpec } from './_writers.js';

const bytes = (h: string): Uint8Array => Uint8Array.from(Buffer.from(h.replace(/\s/g, ''), 'hex'));

/** Picture size after cropping from the spec's equations (7-13..7-22, Table 6-1), written out again here. */
function expectedSize(s: SpsSpec): { width: number; height: number } {
  const chroma = HIGH_PROFILES.includes(s.profileIdc) ? s.chromaFormatIdc : 1;
  const arrayType = s.separateColourPlane ? 0 : chroma;
  const [subW, subH] = chroma === 1 ? [2, 2] : chroma === 2 ? [2, 1] : [1, 1];
  const unitX = arrayType === 0 ? 1 : subW;
  const unitY = arrayType === 0 ? 2 - (s.frameMbsOnly ? 1 : 0) : subH * (2 - (s.frameMbsOnly ? 1 : 0));
  const [l, r, t, b] = s.crop ?? [0, 0, 0, 0];
  return { width: s.widthMbs * 16 - unitX * (l + r), height: (2 - (s.frameMbsOnly ? 1 : 0)) * s.heightMapUnits * 16 - unitY * (t + b) };
}

describe('parseSps', () => {
  it('parses what writeSps wrote: all profiles, scaling lists, POC types, cropping, VUI with HRD (property)', () => {
    fc.assert(
      fc.property(fc.gen(), (g) => {
        const spec = genSps(g);
        const sps = parseSps(escapeRbsp(writeSps(spec)));
        const high = HIGH_PROFILES.includes(spec.profileIdc);
        expect(sps.profileIdc).toBe(spec.profileIdc);
        expect(sps.constraintFlags).toBe(spec.constraintFlags);
        expect(sps.levelIdc).toBe(spec.levelIdc);
        expect(sps.spsId).toBe(spec.spsId);
        expect(sps.chromaFormatIdc).toBe(high ? spec.chromaFormatIdc : 1);
        expect(sps.separateColourPlane).toBe(spec.separateColourPlane);
        expect([sps.bitDepthLuma, sps.bitDepthChroma]).toEqual([spec.bitDepthLuma, spec.bitDepthChroma]);
        expect(sps.scalingMatrixPresent).toBe(spec.scalingLists !== undefined);
        expect(sps.log2MaxFrameNum).toBe(spec.log2MaxFrameNum);
        expect(sps.picOrderCntType).toBe(spec.pocType);
        expect(sps.log2MaxPocLsb).toBe(spec.pocType === 0 ? spec.log2MaxPocLsb : undefined);
        expect(sps.deltaPicOrderAlwaysZero).toBe(spec.pocType === 1 ? spec.deltaPicOrderAlwaysZero : undefined);
        if (spec.pocType === 1) {
          expect([sps.offsetForNonRefPic, sps.offsetForTopToBottomField, sps.numRefFramesInPicOrderCntCycle]).toEqual([spec.offsetForNonRefPic, spec.offsetForTopToBottomField, spec.offsetsForRefFrame.length]);
        }
        expect(sps.maxNumRefFrames).toBe(spec.maxNumRefFrames);
        expect(sps.gapsInFrameNumAllowed).toBe(spec.gaps);
        expect([sps.picWidthInMbs, sps.picHeightInMapUnits]).toEqual([spec.widthMbs, spec.heightMapUnits]);
        expect([sps.frameMbsOnly, sps.mbAdaptiveFrameField, sps.direct8x8Inference]).toEqual([spec.frameMbsOnly, spec.mbaff, spec.direct8x8]);
        expect({ width: sps.width, height: sps.height }).toEqual(expectedSize(spec));
        const [left, right, top, bottom] = spec.crop ?? [0, 0, 0, 0];
        expect(sps.crop).toEqual({ left, right, top, bottom });
        const hexByte = (v: number): string => v.toString(16).padStart(2, '0');
        expect(sps.codecString).toBe(`avc1.${hexByte(spec.profileIdc)}${hexByte(spec.constraintFlags)}${hexByte(spec.levelIdc)}`);
        const v = spec.vui;
        expect(sps.vui === undefined).toBe(v === undefined);
        if (v === undefined || sps.vui === undefined) return;
        expect(sps.vui.aspectRatioIdc).toBe(v.aspectRatioIdc);
        if (v.aspectRatioIdc === 255) expect([sps.vui.sarWidth, sps.vui.sarHeight]).toEqual(v.sar);
        expect(sps.vui.overscanAppropriate).toBe(v.overscan);
        expect(sps.vui.videoFormat).toBe(v.signal?.format);
        expect(sps.vui.colourPrimaries).toBe(v.signal?.colour?.[0]);
        expect(sps.vui.matrixCoefficients).toBe(v.signal?.colour?.[2]);
        expect(sps.vui.chromaSampleLocTypeBottom).toBe(v.chromaLoc?.[1]);
        expect(sps.vui.timing).toEqual(v.timing === undefined ? undefined : { numUnitsInTick: v.timing.numUnitsInTick, timeScale: v.timing.timeScale, fixedFrameRate: v.timing.fixed });
        expect(sps.frameRate).toBe(v.timing === undefined ? undefined : v.timing.timeScale / (2 * v.timing.numUnitsInTick));
        if (v.truncateAfterTiming === true) {
          expect(sps.vui.nalHrd).toBeUndefined();
          expect(sps.vui.bitstreamRestriction).toBeUndefined();
          return;
        }
        expect(sps.vui.truncated).toBe(false);
        expect(sps.vui.nalHrd?.cpbCnt).toBe(v.nalHrd?.cpb.length);
        expect(sps.vui.vclHrd?.cpbRemovalDelayLength).toBe(v.vclHrd?.lengths[1]);
        expect(sps.vui.nalHrd?.timeOffsetLength).toBe(v.nalHrd?.lengths[3]);
        expect(sps.vui.picStructPresent).toBe(v.picStruct);
        expect(sps.vui.bitstreamRestriction?.maxNumReorderFrames).toBe(v.restriction?.[5]);
        expect(sps.vui.bitstreamRestriction?.maxDecFrameBuffering).toBe(v.restriction?.[6]);
      }),
      { numRuns: 700, endOnFailure: true },
    );
  });

  // x264 ultrafast 1280x720 30 fps, with an emulation-prevention byte in the VUI timing information
  const X264_720P = bytes('6742c01fda014016ec0440000003004000000f23c60ca8');

  it('x264 Constrained Baseline 720p30', () => {
    const sps = parseSps(X264_720P);
    expect(sps).toMatchObject({ profileIdc: 66, constraintFlags: 0xc0, levelIdc: 31, width: 1280, height: 720, frameRate: 30, picOrderCntType: 2, frameMbsOnly: true, codecString: 'avc1.42c01f' });
    expect(sps.vui?.bitstreamRestriction?.maxNumReorderFrames).toBe(0);
  });

  it('a VUI cut after the timing information parses, with the frame rate; cut inside it, it is a MediaError', () => {
    // timing ends at RBSP bit 157 (bit 8 of byte 19); escaped, the RBSP's first 20 bytes are 21 bytes
    const cut = X264_720P.subarray(0, 21);
    const sps: Sps = parseSps(cut);
    expect(sps.frameRate).toBe(30);
    expect(sps.vui?.truncated).toBe(true);
    expect(() => parseSps(X264_720P.subarray(0, 16))).toThrow(MediaError);
  });

  it('x264 High 4:4:4 Predictive 640x360 (cropped from 368 lines)', () => {
    const sps = parseSps(bytes('67f4001e919b281405ff1380880000030008000003019078b16cb0'));
    expect(sps).toMatchObject({ profileIdc: 244, chromaFormatIdc: 3, width: 640, height: 360, crop: { left: 0, right: 0, top: 0, bottom: 8 }, frameRate: 25 });
  });

  it('refuses wrong NAL types and out-of-range fields', () => {
    expect(() => parseSps(bytes('68ce'))).toThrow(/expected 7/);
    expect(() => parseSps(bytes('67'))).toThrow(MediaError);
    const w = new _BitWriter().u(8, 0x67).u(8, 66).u(8, 0).u(8, 30).ue(32); // seq_parameter_set_id 32
    expect(() => parseSps(escapeRbsp(w.trailingBits().toBytes()))).toThrow(/seq_parameter_set_id = 32/);
    const crop = new _BitWriter().u(8, 0x67).u(8, 66).u(8, 0).u(8, 30).ue(0).ue(0).ue(2).ue(0).flag(false).ue(0).ue(0).flag(true).flag(true).flag(true).ue(8).ue(0).ue(0).ue(0);
    expect(() => parseSps(escapeRbsp(crop.flag(false).trailingBits().toBytes()))).toThrow(/cropping leaves no picture/);
  });
});

describe('parsePps', () => {
  it('parses what writePps wrote: slice groups of every map type, 8x8 transform, scaling lists (property)', () => {
    fc.assert(
      fc.property(fc.gen(), (g) => {
        const sps = parseSps(escapeRbsp(writeSps(genSps(g, true))));
        const spec = genPps(g, sps);
        const pps = parsePps(escapeRbsp(writePps(spec, sps.chromaFormatIdc)), new Map([[sps.spsId, sps]]));
        expect(pps).toMatchObject({
          ppsId: spec.ppsId,
          spsId: spec.spsId,
          entropyCodingModeFlag: spec.cabac,
          bottomFieldPicOrderInFramePresent: spec.bottomFieldPicOrder,
          numSliceGroups: spec.sliceGroups?.count ?? 1,
          numRefIdxL0DefaultActive: spec.numRefIdxL0,
          numRefIdxL1DefaultActive: spec.numRefIdxL1,
          weightedPredFlag: spec.weightedPred,
          weightedBipredIdc: spec.weightedBipredIdc,
          picInitQp: spec.picInitQp,
          picInitQs: spec.picInitQs,
          chromaQpIndexOffset: spec.chromaQpIndexOffset,
          deblockingFilterControlPresent: spec.deblockingControl,
          constrainedIntraPred: spec.constrainedIntra,
          redundantPicCntPresent: spec.redundantPicCnt,
        });
        expect(pps.sliceGroupMapType).toBe(spec.sliceGroups?.mapType);
        const mt = spec.sliceGroups?.mapType ?? -1;
        expect(pps.sliceGroupChangeRate).toBe(mt >= 3 && mt <= 5 ? spec.sliceGroups?.changeRate : undefined);
        expect(pps.transform8x8Mode).toBe(spec.ext?.transform8x8);
        expect(pps.picScalingMatrixPresent).toBe(spec.ext === undefined ? undefined : spec.ext.scalingLists !== undefined);
        expect(pps.secondChromaQpIndexOffset).toBe(spec.ext?.secondChromaQpIndexOffset);
      }),
      { numRuns: 700, endOnFailure: true },
    );
  });

  it('needs the SPS it names', () => {
    const sps = parseSps(X264_SPS);
    expect(() => parsePps(bytes('68ce0fc8'), new Map())).toThrow(/unknown SPS 0/);
    expect(parsePps(bytes('68ce0fc8'), new Map([[0, sps]]))).toMatchObject({ ppsId: 0, spsId: 0, entropyCodingModeFlag: false, picInitQp: 23 });
  });
});

const X264_SPS = bytes('6742c01fda014016ec0440000003004000000f23c60ca8');
