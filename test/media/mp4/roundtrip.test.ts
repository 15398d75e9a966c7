/**
 * Init segment + fragments from the writer, read back by the demuxer: sample metadata, data and encryption
 * information come back identical (property), plus the fragment rules the writer never exercises itself —
 * trex defaults, the legacy base-data-offset rule, missing tfdt, seig key rotation — on hand-built boxes.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { MediaError } from '../../../src/errors.js';
import {
  CLEARKEY_SYSTEM_ID,
  box,
  bufferSource,
  buildFragment,
  buildInitSegment,
  buildPssh,
  findBoxes,
  fullBox,
  openMp4,
  parsePssh,
} from '../../../src/media/mp4/index.js';
import type { DemuxedSample, FragmentSample, SampleEncryption, TrackProtection, VideoTrack } from '../../../src/media/mp4/index.js';

const hex = (b: Uint8Array | undefined): string | undefined => (b === undefined ? undefined : Buffer.from(b).toString('hex'));
const u32 = (v: number): Buffer => {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(v);
  return b;
};

const AVC = { profile: 100, compatibility: 0, level: 40, lengthSize: 4 as const, sps: [Uint8Array.of(0x67, 0x64, 0, 0x28)], pps: [Uint8Array.of(0x68, 0xee)], chromaFormat: 1, bitDepthLumaMinus8: 0, bitDepthChromaMinus8: 0, spsExt: [] };

/** The moof of a built fragment (its header without the 8-byte mdat header). */
const moofOf = (header: Uint8Array): Buffer => Buffer.from(header.subarray(0, header.length - 8));

/** Sample bytes that identify the sample: fragment, index and position. */
function fill(size: number, seed: number): Uint8Array {
  const b = new Uint8Array(size);
  for (let i = 0; i < size; i++) b[i] = (seed * 31 + i * 7) & 0xff;
  return b;
}

async function drain(file: Uint8Array): Promise<{ track: Awaited<ReturnType<typeof openMp4>>['track']; samples: DemuxedSample[] }> {
  const { track, samples } = await openMp4(bufferSource(file));
  const out: DemuxedSample[] = [];
  for await (const s of samples()) out.push(s);
  return { track, samples: out };
}

type Mode = 'clear' | 'cenc8' | 'cenc16' | 'cbcs16' | 'cbcs8' | 'cbcsIv16';

function protectionFor(mode: Mode, kid: Uint8Array, constantIv: Uint8Array): TrackProtection | undefined {
  switch (mode) {
    case 'clear':
      return undefined;
    case 'cenc8':
    case 'cenc16':
      return { scheme: 'cenc', kid, perSampleIvSize: mode === 'cenc8' ? 8 : 16, cryptByteBlock: 0, skipByteBlock: 0, originalFormat: 'avc1' };
    case 'cbcsIv16':
      return { scheme: 'cbcs', kid, perSampleIvSize: 16, cryptByteBlock: 1, skipByteBlock: 9, originalFormat: 'avc1' };
    default:
      return { scheme: 'cbcs', kid, perSampleIvSize: 0, constantIv: mode === 'cbcs16' ? constantIv : constantIv.subarray(0, 8), cryptByteBlock: 1, skipByteBlock: 9, originalFormat: 'avc3' };
  }
}

interface GenSample {
  size: number;
  duration: number;
  isSync: boolean;
  cto: number | undefined;
  subsamples: { clear: number; protected: number }[];
  iv: Uint8Array;
}

const subsample = fc.record({ clear: fc.integer({ min: 0, max: 400 }), protected: fc.integer({ min: 0, max: 3000 }) });
const genSample = fc
  .record({
    size: fc.integer({ min: 0, max: 3000 }),
    duration: fc.oneof(fc.constant(3000), fc.integer({ min: 0, max: 0xffffffff })),
    isSync: fc.boolean(),
    cto: fc.option(fc.integer({ min: -100000, max: 100000 }), { nil: undefined }),
    subsamples: fc.array(subsample, { maxLength: 20 }),
    iv: fc.uint8Array({ minLength: 16, maxLength: 16 }),
  })
  .map((s): GenSample => (s.subsamples.length > 0 ? { ...s, size: s.subsamples.reduce((n, x) => n + x.clear + x.protected, 0) } : s));

const scenario = fc.record({
  mode: fc.constantFrom<Mode>('clear', 'cenc8', 'cenc16', 'cbcs16', 'cbcs8', 'cbcsIv16'),
  trackId: fc.integer({ min: 1, max: 1000 }),
  timescale: fc.integer({ min: 1, max: 1_000_000 }),
  width: fc.integer({ min: 16, max: 4096 }),
  height: fc.integer({ min: 16, max: 4096 }),
  kid: fc.uint8Array({ minLength: 16, maxLength: 16 }),
  constantIv: fc.uint8Array({ minLength: 16, maxLength: 16 }),
  psshData: fc.option(fc.uint8Array({ maxLength: 30 }), { nil: undefined }),
  firstBase: fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 2 ** 45 })),
  fragments: fc.array(fc.array(genSample, { minLength: 0, maxLength: 12 }), { minLength: 1, maxLength: 4 }),
  noSubsamples: fc.boolean(),
});

describe('init + fragments → openMp4', () => {
  it('gives back identical track, sample metadata, data and encryption (property)', async () => {
    await fc.assert(
      fc.asyncProperty(scenario, async (sc) => {
        const protection = protectionFor(sc.mode, sc.kid, sc.constantIv);
        const ivSize = protection?.perSampleIvSize ?? 0;
        const track: VideoTrack = { trackId: sc.trackId, timescale: sc.timescale, width: sc.width, height: sc.height, avcC: AVC };
        const pssh = protection !== undefined ? [buildPssh(CLEARKEY_SYSTEM_ID, [sc.kid], sc.psshData)] : [];
        const parts: Uint8Array[] = [buildInitSegment(track, protection !== undefined ? { protection, pssh } : {})];
        const expected: { s: GenSample; dts: number; frag: number; data: Uint8Array; enc: SampleEncryption | undefined }[] = [];
        let base = sc.firstBase;
        sc.fragments.forEach((samples, f) => {
          const fs: FragmentSample[] = samples.map((s) => {
            const enc: SampleEncryption | undefined =
              protection !== undefined ? { iv: s.iv.subarray(0, ivSize), subsamples: sc.noSubsamples ? [] : s.subsamples } : undefined;
            const out: FragmentSample = { size: s.size, duration: s.duration, isSync: s.isSync };
            if (s.cto !== undefined) out.compositionOffset = s.cto;
            if (enc !== undefined) out.encryption = enc;
            return out;
          });
          const built = buildFragment({ sequenceNumber: f + 1, trackId: sc.trackId, baseMediaDecodeTime: base, samples: fs, ...(protection !== undefined ? { perSampleIvSize: ivSize } : {}) });
          parts.push(built.header);
          let dts = base;
          let total = built.header.length;
          samples.forEach((s, i) => {
            const data = fill(s.size, expected.length + 1);
            parts.push(data);
            total += data.length;
            expected.push({ s, dts, frag: f, data, enc: fs[i]?.encryption });
            dts += s.duration;
          });
          expect(total).toBe(built.totalSize);
          base = dts;
        });
        const file = Buffer.concat(parts);
        const { track: got, samples } = await drain(file);

        expect({ ...got, avcC: undefined, protection: undefined, pssh: undefined }).toEqual({ trackId: sc.trackId, timescale: sc.timescale, width: sc.width, height: sc.height, sampleEntryType: protection ? 'encv' : 'avc1', fragmented: true, avcC: undefined, protection: undefined, pssh: undefined });
        expect(got.avcC).toEqual(AVC);
        expect(got.pssh.map(hex)).toEqual(pssh.map(hex));
        if (protection === undefined) expect(got.protection).toBeUndefined();
        else expect({ ...got.protection, kid: hex(got.protection?.kid), constantIv: hex(got.protection?.constantIv) }).toEqual({ ...protection, kid: hex(protection.kid), constantIv: hex(protection.constantIv) });

        expect(samples.length).toBe(expected.length);
        samples.forEach((s, i) => {
          const e = expected[i];
          if (e === undefined) throw new Error('missing');
          expect({ index: s.index, dts: s.dts, cts: s.cts, duration: s.duration, isSync: s.isSync, fragmentIndex: s.fragmentIndex }).toEqual({
            index: i,
            dts: e.dts,
            cts: e.dts + (e.s.cto ?? 0),
            duration: e.s.duration,
            isSync: e.s.isSync,
            fragmentIndex: e.frag, // every moof counts, even one without samples
          });
          expect(Buffer.from(s.data).equals(Buffer.from(e.data))).toBe(true);
          if (e.enc === undefined) expect(s.encryption).toBeUndefined();
          else expect({ iv: hex(s.encryption?.iv), subsamples: s.encryption?.subsamples }).toEqual({ iv: hex(e.enc.iv), subsamples: e.enc.subsamples });
          expect(s.kid).toBeUndefined();
        });
      }),
      { numRuns: 150 },
    );
  });

  it('tfdt past 2^32 and negative composition offsets (tfdt v1, trun v1)', async () => {
    const track: VideoTrack = { trackId: 7, timescale: 90000, width: 640, height: 480, avcC: AVC };
    const f = buildFragment({ sequenceNumber: 1, trackId: 7, baseMediaDecodeTime: 2 ** 40 + 5, samples: [{ size: 3, duration: 3000, isSync: true, compositionOffset: -1500 }, { size: 2, duration: 3000, isSync: false, compositionOffset: 6000 }] });
    const [trun] = findBoxes(moofOf(f.header), ['moof', 'traf', 'trun']);
    expect(f.header[(trun?.offset ?? 0) + 8]).toBe(1);
    const { samples } = await drain(Buffer.concat([buildInitSegment(track), f.header, fill(5, 0)]));
    expect(samples.map((s) => [s.dts, s.cts])).toEqual([
      [2 ** 40 + 5, 2 ** 40 + 5 - 1500],
      [2 ** 40 + 3005, 2 ** 40 + 3005 + 6000],
    ]);
  });

  it('pssh in moov is a 52-byte ClearKey v1 box for one KID', () => {
    const kid = Buffer.from('0123456789abcdef0123456789abcdef', 'hex');
    const p = buildPssh(CLEARKEY_SYSTEM_ID, [kid]);
    expect(p.length).toBe(52);
    expect(Buffer.from(p).toString('hex')).toBe('00000034' + '70737368' + '01000000' + '1077efecc0b24d02ace33c1e52e2fb4b' + '00000001' + kid.toString('hex') + '00000000');
    expect(parsePssh(p)).toEqual({ version: 1, systemId: CLEARKEY_SYSTEM_ID, kids: [Uint8Array.from(kid)], data: new Uint8Array(0) });
    const v0 = parsePssh(buildPssh(CLEARKEY_SYSTEM_ID, [], Uint8Array.of(1, 2, 3)));
    expect(v0.version).toBe(0);
    expect([...v0.data]).toEqual([1, 2, 3]);
    expect(() => parsePssh(box('free'))).toThrow(MediaError);
    expect(() => parsePssh(fullBox('pssh', 1, 0, CLEARKEY_SYSTEM_ID, u32(1000)))).toThrow(/KID entries/);
  });
});

describe('buildFragment refuses what it cannot write', () => {
  const enc = (iv: number, subsamples: { clear: number; protected: number }[] = []): SampleEncryption => ({ iv: new Uint8Array(iv), subsamples });
  const bad = (samples: FragmentSample[], extra: Partial<Parameters<typeof buildFragment>[0]> = {}): void =>
    expect(() => buildFragment({ sequenceNumber: 1, trackId: 1, baseMediaDecodeTime: 0, samples, ...extra })).toThrow(MediaError);

  it('mixed clear and encrypted samples, IV sizes that differ, subsamples not covering the sample, too many subsamples', () => {
    bad([{ size: 1, duration: 1, isSync: true, encryption: enc(8) }, { size: 1, duration: 1, isSync: true }]);
    bad([{ size: 1, duration: 1, isSync: true, encryption: enc(8) }, { size: 1, duration: 1, isSync: true, encryption: enc(16) }]);
    bad([{ size: 1, duration: 1, isSync: true, encryption: enc(8) }], { perSampleIvSize: 16 });
    bad([{ size: 1, duration: 1, isSync: true, encryption: enc(12) }]);
    bad([{ size: 10, duration: 1, isSync: true, encryption: enc(8, [{ clear: 5, protected: 4 }]) }]);
    bad([{ size: 40 * 5, duration: 1, isSync: true, encryption: enc(16, Array.from({ length: 40 }, () => ({ clear: 1, protected: 4 }))) }]);
    bad([{ size: 70000, duration: 1, isSync: true, encryption: enc(8, [{ clear: 70000, protected: 0 }]) }]);
    bad([{ size: -1, duration: 1, isSync: true }]);
    bad([{ size: 1, duration: 2 ** 32, isSync: true }, { size: 1, duration: 1, isSync: true }]);
    bad([{ size: 1, duration: 1, isSync: true }], { pssh: [box('free')] });
  });

  it('a fragment with a single subsample-less protected layout (full-sample cbcs, constant IV) has 0-byte aux info', async () => {
    const kid = new Uint8Array(16).fill(9);
    const protection: TrackProtection = { scheme: 'cbcs', kid, perSampleIvSize: 0, constantIv: new Uint8Array(16).fill(1), cryptByteBlock: 1, skipByteBlock: 9, originalFormat: 'avc1' };
    const track: VideoTrack = { trackId: 1, timescale: 30, width: 64, height: 64, avcC: AVC };
    const f = buildFragment({ sequenceNumber: 1, trackId: 1, baseMediaDecodeTime: 0, samples: [{ size: 4, duration: 1, isSync: true, encryption: { iv: new Uint8Array(0), subsamples: [] } }] });
    const { samples } = await drain(Buffer.concat([buildInitSegment(track, { protection }), f.header, fill(4, 1)]));
    expect(samples[0]?.encryption).toEqual({ iv: new Uint8Array(0), subsamples: [] });
  });
});

/** Hand-built fragments: the reading rules our writer does not produce. */
describe('fragment reading rules', () => {
  const track: VideoTrack = { trackId: 1, timescale: 1000, width: 64, height: 64, avcC: AVC };

  /** An init segment whose trex for track 1 carries the given defaults. */
  function initWithTrex(duration: number, size: number, flags: number): Buffer {
    const init = Buffer.from(buildInitSegment(track));
    const [trex] = findBoxes(init, ['moov', 'mvex', 'trex']);
    const at = (trex?.offset ?? 0) + 12 + 8; // after version/flags, track_ID, default_sample_description_index
    init.writeUInt32BE(duration, at);
    init.writeUInt32BE(size, at + 4);
    init.writeUInt32BE(flags, at + 8);
    return init;
  }

  /** Builds a box twice: the second time with the data offset that points just past it and an mdat header. */
  function withDataOffset(make: (dataOffset: number) => Uint8Array): Uint8Array {
    return make(make(0).length + 8);
  }

  it('trex defaults, the legacy base offset (end of the previous traf) and a missing tfdt', async () => {
    // traf of track 2 first (2 samples of 3 bytes), then track 1 with no data offset: its data follows track 2's
    const traf1 = box('traf', fullBox('tfhd', 0, 0, u32(1)), fullBox('trun', 0, 0x4, u32(3), u32(0x02000000)));
    const moof = withDataOffset((off) => box('moof', fullBox('mfhd', 0, 0, u32(1)), box('traf', fullBox('tfhd', 0, 0x10, u32(2), u32(3)), fullBox('trun', 0, 0x1, u32(2), u32(off))), traf1));
    const mdat = box('mdat', Buffer.from('oooooo'), Buffer.from('AAAAABBBBBCCCCC'));
    const moof2 = withDataOffset((off) => box('moof', fullBox('mfhd', 0, 0, u32(2)), box('traf', fullBox('tfhd', 0, 0x20000, u32(1)), fullBox('trun', 0, 0x1, u32(1), u32(off)))));
    const file = Buffer.concat([initWithTrex(40, 5, 0x01010000), moof, mdat, moof2, box('mdat', Buffer.from('DDDDD'))]);
    const { samples } = await drain(file);
    expect(samples.map((s) => [Buffer.from(s.data).toString(), s.dts, s.duration, s.isSync, s.fragmentIndex])).toEqual([
      ['AAAAA', 0, 40, true, 0],
      ['BBBBB', 40, 40, false, 0],
      ['CCCCC', 80, 40, false, 0],
      ['DDDDD', 120, 40, false, 1],
    ]);
  });

  it('explicit base_data_offset, several truns continuing each other', async () => {
    const init = initWithTrex(10, 0, 0);
    const make = (baseDataOffset: number): Uint8Array =>
      box(
        'moof',
        fullBox('mfhd', 0, 0, u32(1)),
        box('traf', fullBox('tfhd', 0, 0x1 | 0x10, u32(1), u32(0), u32(baseDataOffset), u32(2)), fullBox('tfdt', 0, 0, u32(500)), fullBox('trun', 0, 0x1, u32(1), u32(0)), fullBox('trun', 0, 0, u32(2))),
      );
    const moof = make(init.length + make(0).length + 8); // base = the first byte of the mdat payload
    const { samples } = await drain(Buffer.concat([init, moof, box('mdat', Buffer.from('aabbcc'))]));
    expect(samples.map((s) => [Buffer.from(s.data).toString(), s.dts])).toEqual([
      ['aa', 500],
      ['bb', 510],
      ['cc', 520],
    ]);
  });

  it('seig sample groups: per-fragment KID and constant IV (key rotation), and samples marked clear', async () => {
    const kid0 = new Uint8Array(16).fill(0xaa);
    const kid1 = new Uint8Array(16).fill(0xbb);
    const iv1 = new Uint8Array(16).fill(0x11);
    const protection: TrackProtection = { scheme: 'cbcs', kid: kid0, perSampleIvSize: 0, constantIv: new Uint8Array(16), cryptByteBlock: 1, skipByteBlock: 9, originalFormat: 'avc1' };
    const seig = (isProtected: number, kid: Uint8Array, iv?: Uint8Array): Buffer => Buffer.concat([Buffer.from([0, 0x19, isProtected, 0]), kid, iv ? Buffer.from([iv.length, ...iv]) : Buffer.alloc(0)]);
    const e1 = seig(1, kid1, iv1);
    const e2 = seig(0, new Uint8Array(16));
    const sgpd = fullBox('sgpd', 1, 0, Buffer.from('seig'), u32(0), u32(2), u32(e1.length), e1, u32(e2.length), e2);
    const sbgp = fullBox('sbgp', 0, 0, Buffer.from('seig'), u32(2), u32(2), u32(0x10001), u32(1), u32(0x10002));
    const sample = (n: number): FragmentSample => ({ size: 4, duration: 1, isSync: n === 0, encryption: { iv: new Uint8Array(0), subsamples: [{ clear: 2, protected: 2 }] } });
    const f = buildFragment({ sequenceNumber: 1, trackId: 1, baseMediaDecodeTime: 0, samples: [0, 1, 2].map(sample), trafExtra: [sgpd, sbgp] });
    const { samples } = await drain(Buffer.concat([buildInitSegment(track, { protection }), f.header, fill(12, 3)]));
    expect(samples.map((s) => [hex(s.kid), hex(s.constantIv), s.encryption?.subsamples.length])).toEqual([
      [hex(kid1), hex(iv1), 1],
      [hex(kid1), hex(iv1), 1],
      [undefined, undefined, undefined],
    ]);
  });

  it('errors: subsamples not covering a sample, senc counts that disagree, samples outside the file', async () => {
    const protection: TrackProtection = { scheme: 'cenc', kid: new Uint8Array(16), perSampleIvSize: 8, cryptByteBlock: 0, skipByteBlock: 0, originalFormat: 'avc1' };
    const init = buildInitSegment(track, { protection });
    const f = buildFragment({ sequenceNumber: 1, trackId: 1, baseMediaDecodeTime: 0, samples: [{ size: 6, duration: 1, isSync: true, encryption: { iv: new Uint8Array(8), subsamples: [{ clear: 5, protected: 1 }] } }] });
    const header = Buffer.from(f.header);
    const [senc] = findBoxes(moofOf(header), ['moof', 'traf', 'senc']);
    header.writeUInt32BE(2, (senc?.offset ?? 0) + 8 + 4 + 4 + 8 + 2 + 2); // protected 1 → 2
    await expect(drain(Buffer.concat([init, header, fill(6, 1)]))).rejects.toThrow(/subsamples cover 7 bytes, the sample has 6/);
    await expect(drain(Buffer.concat([init, f.header, fill(5, 1)]))).rejects.toThrow(MediaError);
    const noAux = Buffer.from(f.header);
    for (const t of ['saiz', 'saio', 'senc']) {
      const [h] = findBoxes(moofOf(noAux), ['moof', 'traf', t]);
      noAux.write('free', (h?.offset ?? 0) + 4, 'latin1');
    }
    await expect(drain(Buffer.concat([init, noAux, fill(6, 1)]))).rejects.toThrow(/no encryption information/);
  });
});
