/** Access units, GOPs and parameter sets of real x264 streams, against ffprobe. */
import { beforeAll, describe, expect, it } from 'vitest';
import { AccessUnitAssembler, AnnexBSplitter, parseSei, parseUserDataUnregistered, uuidBytes, type AccessUnit } from '../../../src/media/h264/index.js';
import { assemble, briefStreams, camera1080, extraStreams, ffprobeProfileName, keyPacketIndexes, ownClip, probe, readStream, x264Option, type Assembled, type Probe, type TestStream } from './_streams.js';

interface Case {
  readonly stream: TestStream;
  readonly gop: number;
  readonly a: Assembled;
  readonly probe: Probe;
  readonly keys: number[];
}

const cases: Case[] = [];
const byName = (prefix: string): Case => {
  const c = cases.find((x) => x.stream.name.startsWith(prefix));
  if (c === undefined) throw new Error(`no stream ${prefix}`);
  return c;
};

beforeAll(async () => {
  const brief = await briefStreams();
  const extra = await extraStreams();
  const all: [TestStream, number][] = [...brief.map((s): [TestStream, number] => [s, 30]), ...extra.map((s): [TestStream, number] => [s, 25]), [{ name: '1080p 4 Mbit/s camera', path: await camera1080() }, 60]];
  for (const [stream, gop] of all) {
    const [p, keys] = await Promise.all([probe(stream.path), keyPacketIndexes(stream.path)]);
    cases.push({ stream, gop, a: assemble(readStream(stream.path)), probe: p, keys });
  }
}, 240_000);

const idrIndexes = (aus: readonly AccessUnit[]): number[] => aus.flatMap((au, i) => (au.isIdr ? [i] : []));

describe('real streams against ffprobe', () => {
  it('access-unit count equals the frames ffprobe decodes', () => {
    for (const c of cases) expect(c.a.aus.length, c.stream.name).toBe(c.probe.frames);
  });

  it('SPS width, height, frame rate, profile and level equal ffprobe’s', () => {
    for (const c of cases) {
      const sps = c.a.assembler.sps.get(0);
      expect(sps, c.stream.name).toBeDefined();
      if (sps === undefined) continue;
      expect({ width: sps.width, height: sps.height, frameRate: sps.frameRate, profile: ffprobeProfileName(sps.profileIdc, sps.constraintFlags), level: sps.levelIdc }, c.stream.name).toEqual({
        width: c.probe.width,
        height: c.probe.height,
        frameRate: c.probe.frameRate,
        profile: c.probe.profile,
        level: c.probe.level,
      });
    }
  });

  it('GOP count is ceil(frames / gop); IDR access units sit where ffprobe puts key packets, every gop frames', () => {
    for (const c of cases) {
      expect(c.a.gops.length, c.stream.name).toBe(Math.ceil(c.probe.frames / c.gop));
      const idrs = idrIndexes(c.a.aus);
      expect(idrs, c.stream.name).toEqual(c.keys);
      expect(idrs, c.stream.name).toEqual(Array.from({ length: c.a.gops.length }, (_, i) => i * c.gop));
      for (const gop of c.a.gops) {
        expect(gop.open).toBe(false);
        expect(gop.accessUnits[0]?.isIdr).toBe(true);
        expect(gop.accessUnits.slice(1).every((au) => !au.isIdr && !au.isKeyframe)).toBe(true);
      }
      expect(c.a.aus.every((au) => au.isKeyframe === au.isIdr)).toBe(true);
    }
  });

  it('no NAL unit is lost or reordered: access units concatenate back to the NAL stream', () => {
    for (const c of cases) {
      const flat = c.a.aus.flatMap((au) => au.nals);
      expect(flat.length, c.stream.name).toBe(c.a.nals.length);
      expect(flat.every((nal, i) => nal === c.a.nals[i])).toBe(true);
    }
  });

  it('each access unit is one picture: its slices share frame_num, POC and IDR flag, and start at macroblock 0', () => {
    for (const c of cases) {
      for (const au of c.a.aus) {
        const [first, ...rest] = au.slices.map((s) => s.header);
        expect(first?.firstMbInSlice).toBe(0);
        for (const h of rest) {
          expect([h.frameNum, h.picOrderCntLsb, h.nalType, h.idrPicId]).toEqual([first?.frameNum, first?.picOrderCntLsb, first?.nalType, first?.idrPicId]);
          expect(h.firstMbInSlice).toBeGreaterThan(0);
        }
      }
    }
  });
});

describe('multi-slice pictures stay one access unit', () => {
  it('the 4-slice stream: every access unit has sliceCount 4', () => {
    const c = byName('4 slices');
    expect(c.a.aus.length).toBe(c.probe.frames);
    expect(c.a.aus.every((au) => au.sliceCount === 4)).toBe(true);
  });

  it('clip({slices: 4}): every access unit has the slice count x264 reports using (sliced threads may override -slices)', () => {
    const c = byName('clip({slices: 4})');
    const declared = Number(x264Option(c.a.data, 'slices') ?? '1');
    expect(declared).toBeGreaterThan(1);
    expect(c.a.aus.every((au) => au.sliceCount === declared)).toBe(true);
  });

  it('the 3-slice CABAC stream: every access unit has sliceCount 3', () => {
    const c = byName('CABAC zerolatency, 3 slices');
    expect(c.a.aus.every((au) => au.sliceCount === 3)).toBe(true);
  });
});

describe('B-frames (High profile, medium preset)', () => {
  it('has B slices and non-reference pictures, and still one access unit per frame in decoding order', () => {
    const c = byName('High, medium');
    const kinds = new Set(c.a.aus.flatMap((au) => au.slices.map((s) => s.header.sliceKind)));
    expect(kinds).toEqual(new Set(['I', 'P', 'B']));
    expect(c.a.aus.some((au) => au.slices[0]?.header.nalRefIdc === 0)).toBe(true);
    expect(c.a.aus.length).toBe(c.probe.frames);
    // POC order differs from decoding order within a GOP
    const pocs = c.a.aus.slice(0, 30).map((au) => au.slices[0]?.header.picOrderCntLsb ?? 0);
    expect(pocs).not.toEqual([...pocs].sort((x, y) => x - y));
    expect(c.a.assembler.sps.get(0)?.vui?.bitstreamRestriction?.maxNumReorderFrames).toBeGreaterThan(0);
  });
});

describe('recovery points (x264 open GOP)', () => {
  it('non-IDR I pictures with a recovery-point SEI are keyframes where ffprobe has key packets; GOPs still start at IDRs', async () => {
    const og = await ownClip('open GOP', ['-preset', 'fast', '-g', '25', '-keyint_min', '25', '-sc_threshold', '0', '-x264-params', 'open-gop=1', '-pix_fmt', 'yuv420p'], '640x360', 4);
    const a = assemble(readStream(og.path));
    const keys = await keyPacketIndexes(og.path);
    expect(a.aus.length).toBe((await probe(og.path)).frames);
    expect(a.aus.flatMap((au, i) => (au.isKeyframe ? [i] : []))).toEqual(keys);
    expect(idrIndexes(a.aus)).toEqual([0]);
    expect(keys.length).toBeGreaterThan(1);
    expect(a.gops.length).toBe(1);
  }, 240_000);
});

describe('parameter sets and side data of the streams', () => {
  it('10-bit, 4:2:2 and 4:4:4 streams: bit depth and chroma format; scaling matrices in the PPS', () => {
    expect(byName('High 10').a.assembler.sps.get(0)).toMatchObject({ profileIdc: 110, bitDepthLuma: 10, bitDepthChroma: 10, chromaFormatIdc: 1 });
    expect(byName('High 4:2:2').a.assembler.sps.get(0)).toMatchObject({ profileIdc: 122, chromaFormatIdc: 2 });
    expect(byName('High 4:4:4').a.assembler.sps.get(0)).toMatchObject({ profileIdc: 244, chromaFormatIdc: 3 });
    expect(byName('High 4:4:4').a.assembler.pps.get(0)?.picScalingMatrixPresent).toBe(true);
    expect(byName('High 4:2:2').a.assembler.pps.get(0)?.picScalingMatrixPresent).toBe(true);
  });

  it('MBAFF: frame_mbs_only 0, mb_adaptive_frame_field 1, frame pictures', () => {
    const c = byName('MBAFF');
    expect(c.a.assembler.sps.get(0)).toMatchObject({ frameMbsOnly: false, mbAdaptiveFrameField: true, width: 640, height: 360 });
    expect(c.a.aus.every((au) => au.slices.every((s) => !s.header.fieldPic))).toBe(true);
  });

  it('1080p: 1088 coded lines cropped to 1080, codec string avc1.42c028', () => {
    const sps = byName('1080p').a.assembler.sps.get(0);
    expect(sps).toMatchObject({ width: 1920, height: 1080, crop: { left: 0, right: 0, top: 0, bottom: 4 }, picHeightInMapUnits: 68, codecString: 'avc1.42c028' });
  });

  it('x264 writes its settings as user_data_unregistered in the first access unit', () => {
    const au = byName('720p30').a.aus[0];
    const sei = au?.nals.find((n) => (n[0] ?? 0) === 0x06);
    expect(sei).toBeDefined();
    const [msg] = parseSei(sei ?? new Uint8Array());
    const { uuid, data } = parseUserDataUnregistered(msg ?? { payloadType: 5, payload: new Uint8Array(16) });
    expect(Buffer.from(uuid).equals(Buffer.from(uuidBytes('dc45e9bd-e6d9-48b7-962c-d820d923eeef')))).toBe(true);
    expect(Buffer.from(data).toString('latin1')).toMatch(/^x264 - core \d+/);
  });
});

describe('streaming: AnnexBSplitter → AccessUnitAssembler', () => {
  it('gives the same access units as the one-shot path', () => {
    const c = byName('High, medium');
    const splitter = new AnnexBSplitter();
    const asm = new AccessUnitAssembler();
    const aus: AccessUnit[] = [];
    for (let pos = 0; pos < c.a.data.length; pos += 10_007) for (const nal of splitter.push(c.a.data.subarray(pos, pos + 10_007))) aus.push(...asm.push(nal));
    for (const nal of splitter.flush()) aus.push(...asm.push(nal));
    aus.push(...asm.flush());
    expect(aus.map((au) => [au.nals.length, au.sliceCount, au.isIdr])).toEqual(c.a.aus.map((au) => [au.nals.length, au.sliceCount, au.isIdr]));
  });
});
