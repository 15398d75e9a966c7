/** NAL headers, Annex-B and length-prefixed framing: examples, round trips and the streaming splitter. */
import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import { MediaError } from '../../../src/errors.js';
import { AnnexBSplitter, escapeRbsp, isVcl, nalRefIdc, nalType, NalType, splitAnnexB, splitLengthPrefixed, writeAnnexB, writeLengthPrefixed } from '../../../src/media/h264/index.js';
import { briefStreams, readStream } from './_streams.js';

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
const bytes = (h: string): Uint8Array => Uint8Array.from(Buffer.from(h.replace(/\s/g, ''), 'hex'));

/** Escaped NAL units as a real writer makes them: a valid header, biased payload, a non-zero last byte. */
const escapedNal = fc
  .record({
    header: fc.integer({ min: 1, max: 0x7f }),
    body: fc.array(fc.constantFrom(0, 0, 0, 1, 2, 3, 0x80, 255), { maxLength: 80 }),
    last: fc.integer({ min: 1, max: 255 }),
  })
  .map(({ header, body, last }) => escapeRbsp(Uint8Array.from([header, ...body, last])));

describe('NAL unit header', () => {
  it('type, nal_ref_idc, VCL', () => {
    expect(nalType(bytes('67'))).toBe(NalType.SPS);
    expect(nalRefIdc(bytes('67'))).toBe(3);
    expect(nalType(bytes('41'))).toBe(NalType.SLICE);
    expect(nalRefIdc(bytes('41'))).toBe(2);
    expect(nalRefIdc(bytes('01'))).toBe(0);
    expect([0, 1, 2, 3, 4, 5, 6, 7].map(isVcl)).toEqual([false, true, true, true, true, true, false, false]);
  });

  it('empty NAL units and a set forbidden_zero_bit are MediaErrors', () => {
    expect(() => nalType(new Uint8Array())).toThrow(MediaError);
    expect(() => nalType(bytes('e7'))).toThrow(/forbidden_zero_bit/);
    expect(() => nalRefIdc(bytes('85'))).toThrow(MediaError);
  });
});

describe('splitAnnexB / writeAnnexB', () => {
  it('3- and 4-byte start codes, leading zeros, trailing_zero_8bits stripped', () => {
    const data = bytes('00 00 00 00 01 67 42 00 00 01 68 ce 00 00 00 00 00 01 65 88 80 00 00');
    expect(splitAnnexB(data).map(hex)).toEqual(['6742', '68ce', '658880']);
  });

  it('returns views into the input, no copies', () => {
    const data = bytes('00 00 01 67 42 00 00 00 01 68 ce');
    const nals = splitAnnexB(data);
    for (const nal of nals) expect(nal.buffer).toBe(data.buffer);
    expect(nals[1]?.byteOffset).toBe(9);
  });

  it('empty input or only zeros gives no NAL units; empty NAL units are skipped', () => {
    expect(splitAnnexB(new Uint8Array())).toEqual([]);
    expect(splitAnnexB(new Uint8Array(10))).toEqual([]);
    expect(splitAnnexB(bytes('00 00 01 00 00 01 09 f0 00 00 01 00 00 00 01 67')).map(hex)).toEqual(['09f0', '67']);
  });

  it('anything but zeros before the first start code is a MediaError', () => {
    for (const bad of ['01', '00 01 67', 'ff 00 00 01 67', '00 00 02 00 00 01 67', '67 42']) {
      expect(() => splitAnnexB(bytes(bad)), bad).toThrow(MediaError);
    }
  });

  it('writeAnnexB uses 4-byte start codes in one buffer and refuses empty NAL units', () => {
    expect(hex(writeAnnexB([bytes('6742'), bytes('68')]))).toBe('000000016742' + '0000000168');
    expect(() => writeAnnexB([new Uint8Array()])).toThrow(MediaError);
  });

  it('splitAnnexB(writeAnnexB(nals)) === nals for escaped NAL units (property)', () => {
    fc.assert(
      fc.property(fc.array(escapedNal, { maxLength: 20 }), (nals) => {
        expect(splitAnnexB(writeAnnexB(nals)).map(hex)).toEqual(nals.map(hex));
      }),
      { numRuns: 500 },
    );
  });

  it('any mix of 3-/4-byte start codes and trailing zeros splits back to the same NAL units (property)', () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(escapedNal, fc.nat(3), fc.boolean()), { maxLength: 20 }), fc.nat(4), (items, lead) => {
        const parts: number[] = new Array<number>(lead).fill(0);
        for (const [nal, trailing, four] of items) parts.push(...(four ? [0, 0, 0, 1] : [0, 0, 1]), ...nal, ...new Array<number>(trailing).fill(0));
        expect(splitAnnexB(Uint8Array.from(parts)).map(hex)).toEqual(items.map(([nal]) => hex(nal)));
      }),
      { numRuns: 500 },
    );
  });
});

describe('AnnexBSplitter (streaming)', () => {
  let stream: Uint8Array;
  let prefix: Uint8Array;
  beforeAll(async () => {
    const [camera] = await briefStreams();
    stream = readStream(camera?.path ?? '');
    prefix = stream.subarray(0, 400_000);
  });

  function chunked(data: Uint8Array, sizes: readonly number[]): Uint8Array[] {
    const s = new AnnexBSplitter();
    const out: Uint8Array[] = [];
    let pos = 0;
    let i = 0;
    while (pos < data.length) {
      const size = sizes.length === 0 ? data.length : (sizes[i++ % sizes.length] ?? 1);
      out.push(...s.push(data.subarray(pos, pos + size)));
      pos += size;
    }
    out.push(...s.flush());
    return out;
  }

  it('gives the same NAL units as splitAnnexB for the real stream in random chunk sizes (property)', () => {
    const expected = splitAnnexB(prefix).map(hex);
    fc.assert(
      fc.property(fc.array(fc.oneof(fc.integer({ min: 1, max: 8 }), fc.integer({ min: 1, max: 70_000 })), { minLength: 1, maxLength: 30 }), (sizes) => {
        expect(chunked(prefix, sizes).map(hex)).toEqual(expected);
      }),
      { numRuns: 60 },
    );
  });

  it('the whole real stream, in 64 KiB chunks and in one chunk', () => {
    const expected = splitAnnexB(stream);
    for (const sizes of [[65536], []]) {
      const got = chunked(stream, sizes);
      expect(got.length).toBe(expected.length);
      got.forEach((nal, i) => expect(Buffer.compare(nal, expected[i] ?? new Uint8Array())).toBe(0));
    }
  });

  it('one byte at a time, and equal to splitAnnexB on synthetic streams (property)', () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(escapedNal, fc.nat(3), fc.boolean()), { maxLength: 12 }), fc.array(fc.integer({ min: 1, max: 9 }), { minLength: 1, maxLength: 5 }), (items, sizes) => {
        const parts: number[] = [];
        for (const [nal, trailing, four] of items) parts.push(...(four ? [0, 0, 0, 1] : [0, 0, 1]), ...nal, ...new Array<number>(trailing).fill(0));
        const data = Uint8Array.from(parts);
        expect(chunked(data, sizes).map(hex)).toEqual(splitAnnexB(data).map(hex));
        expect(chunked(data, [1]).map(hex)).toEqual(splitAnnexB(data).map(hex));
      }),
      { numRuns: 300 },
    );
  });

  it('emits copies, refuses leading garbage, and is reusable after flush', () => {
    const s = new AnnexBSplitter();
    const chunk = bytes('00 00 01 67 42 00 00 01 68');
    const [sps] = s.push(chunk);
    chunk.fill(0xee);
    expect(hex(sps ?? new Uint8Array())).toBe('6742');
    expect(s.flush().map(hex)).toEqual(['68']);
    expect(s.push(bytes('00 00'))).toEqual([]);
    expect(() => s.push(bytes('00 05'))).toThrow(MediaError);
    const t = new AnnexBSplitter();
    expect(t.push(bytes('00 00 00'))).toEqual([]);
    expect(t.push(bytes('01 09 f0 00'))).toEqual([]);
    expect(t.push(bytes('00 00 01 67'))).toEqual([bytes('09f0')]);
    expect(t.flush()).toEqual([bytes('67')]);
  });
});

describe('AnnexBSplitter memory bound', () => {
  it('a NAL unit longer than maxNalBytes is a MediaError, after which the splitter starts over', () => {
    const s = new AnnexBSplitter({ maxNalBytes: 1000 });
    expect(s.push(bytes('00 00 01 67 42 00 00 01 65'))).toEqual([bytes('6742')]);
    expect(s.push(new Uint8Array(900).fill(0x11))).toEqual([]);
    expect(() => s.push(new Uint8Array(200).fill(0x11))).toThrow(/longer than 1000 bytes/);
    expect(() => s.push(bytes('11'))).toThrow(/does not begin with a start code/);
    expect(s.push(bytes('00 00 01 68 ce 00 00 01'))).toEqual([bytes('68ce')]);
  });
});

describe('length-prefixed NAL units', () => {
  it('write → split round trip for length sizes 1, 2, 4; results are views (property)', () => {
    fc.assert(
      fc.property(fc.constantFrom(1 as const, 2 as const, 4 as const), fc.array(fc.uint8Array({ minLength: 1, maxLength: 300 }), { maxLength: 10 }), (size, nals) => {
        const fitting = size === 1 ? nals.map((n) => n.subarray(0, 255)) : nals;
        const sample = writeLengthPrefixed(fitting, size);
        const back = splitLengthPrefixed(sample, size);
        expect(back.map(hex)).toEqual(fitting.map(hex));
        for (const nal of back) expect(nal.buffer).toBe(sample.buffer);
      }),
    );
  });

  it('defaults to 4-byte lengths', () => {
    expect(hex(writeLengthPrefixed([bytes('6588')]))).toBe('000000026588');
    expect(splitLengthPrefixed(bytes('000000026588 0000000109')).map(hex)).toEqual(['6588', '09']);
  });

  it('truncated or overlong lengths, zero lengths and oversize NAL units are MediaErrors', () => {
    expect(() => splitLengthPrefixed(bytes('000000'))).toThrow(/truncated/);
    expect(() => splitLengthPrefixed(bytes('00000003 6588'))).toThrow(/overruns/);
    expect(() => splitLengthPrefixed(bytes('00000002 6588 00'))).toThrow(/truncated/);
    expect(() => splitLengthPrefixed(bytes('00000000'))).toThrow(/zero-length/);
    expect(() => splitLengthPrefixed(bytes('ffffffff 65'))).toThrow(MediaError);
    expect(() => writeLengthPrefixed([new Uint8Array(256)], 1)).toThrow(MediaError);
    expect(() => splitLengthPrefixed(bytes('01 65'), 3 as 4)).toThrow(MediaError);
  });
});
