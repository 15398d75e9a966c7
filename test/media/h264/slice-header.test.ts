/**
 * Slice-header length, checked three independent ways on every slice of every test stream: ffmpeg's
 * trace_headers parser, CABAC alignment bits, and re-serialising the parsed fields bit for bit; plus a
 * serialise → parse property over the syntax x264 never writes.
 */
import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import { MediaError } from '../../../src/errors.js';
import { _BitReader, _BitWriter } from '../../../src/media/h264/_bits.js';
import { escapedLength, escapeRbsp, parsePps, parseSliceHeader, parseSps, unescapeRbsp, type Pps, type SliceHeader, type Sps } from '../../../src/media/h264/index.js';
import { genPps, genSlice, genSps } from './_gen.js';
import { assemble, briefStreams, extraStreams, readStream, traceSliceHeaderBits, type Assembled, type TestStream } from './_streams.js';
import { writePps, writeSliceHeader, writeSps } from './_writers.js';

interface Loaded {
  readonly stream: TestStream;
  readonly a: Assembled;
  readonly slices: { nal: Uint8Array; h: SliceHeader; sps: Sps; pps: Pps }[];
}

let loaded: Loaded[] = [];

beforeAll(async () => {
  const streams = [...(await briefStreams()), ...(await extraStreams())];
  loaded = streams.map((stream) => {
    const a = assemble(readStream(stream.path));
    const slices = a.aus.flatMap((au) =>
      au.slices.map((s) => {
        const sps = a.assembler.sps.get(s.header.spsId);
        const pps = a.assembler.pps.get(s.header.ppsId);
        if (sps === undefined || pps === undefined) throw new Error('parameter sets missing');
        return { nal: au.nals[s.nalIndex] ?? new Uint8Array(), h: s.header, sps, pps };
      }),
    );
    return { stream, a, slices };
  });
}, 240_000);

function rbspBits(nal: Uint8Array, from: number, count: number): string {
  const r = new _BitReader(unescapeRbsp(nal).rbsp);
  r.skip(from);
  let s = '';
  for (let i = 0; i < count; i++) s += String(r.bit());
  return s;
}

function writtenBits(rbsp: Uint8Array, from: number, count: number): string {
  const r = new _BitReader(rbsp);
  r.skip(from);
  let s = '';
  for (let i = 0; i < count; i++) s += String(r.bit());
  return s;
}

describe('slice header length on real streams', () => {
  it('the streams cover CAVLC and CABAC, I/P/B slices, weighted prediction, list modification, MMCO', () => {
    const all = loaded.flatMap((l) => l.slices);
    expect(new Set(all.map((s) => s.pps.entropyCodingModeFlag))).toEqual(new Set([false, true]));
    expect(new Set(all.map((s) => s.h.sliceKind))).toEqual(new Set(['I', 'P', 'B']));
    expect(all.some((s) => s.h.predWeightTable !== undefined)).toBe(true);
    expect(all.some((s) => s.h.refPicListModificationL0 !== undefined && s.h.refPicListModificationL0.length > 0)).toBe(true);
    expect(all.some((s) => (s.h.decRefPicMarking?.mmco?.length ?? 0) > 0)).toBe(true);
    expect(all.some((s) => !s.sps.frameMbsOnly)).toBe(true);
  });

  it('headerBits equals the end of the slice header in ffmpeg trace_headers, for every slice', async () => {
    for (const { stream, slices } of loaded) {
      const traced = await traceSliceHeaderBits(stream.path);
      expect(traced.length, stream.name).toBe(slices.length);
      const mismatches = slices.flatMap((s, i) => (s.h.headerBits === traced[i] ? [] : [`#${i}: ours ${s.h.headerBits}, ffmpeg ${traced[i]}`]));
      expect(mismatches, stream.name).toEqual([]);
    }
  }, 240_000);

  it('CABAC: the bits from headerBits to the byte boundary are cabac_alignment_one_bits', () => {
    let checked = 0;
    for (const { stream, slices } of loaded) {
      for (const s of slices) {
        if (!s.pps.entropyCodingModeFlag) continue;
        const end = 8 + s.h.headerBits;
        const pad = (8 - (end % 8)) % 8;
        expect(rbspBits(s.nal, end, pad), `${stream.name}, ${s.h.sliceKind} slice`).toBe('1'.repeat(pad));
        checked++;
      }
    }
    expect(checked).toBeGreaterThan(400);
  });

  it('re-serialising the parsed header reproduces the original RBSP bits exactly up to headerBits', () => {
    for (const { stream, slices } of loaded) {
      for (const [i, s] of slices.entries()) {
        const w = writeSliceHeader(s.h, s.sps, s.pps);
        expect(w.bits, `${stream.name} #${i}`).toBe(s.h.headerBits);
        expect(writtenBits(w.rbsp, 0, 8 + w.bits), `${stream.name} #${i}`).toBe(rbspBits(s.nal, 0, 8 + s.h.headerBits));
      }
    }
  });

  it('headerBytes: the escaped prefix of that length parses to the same header, one byte less does not', () => {
    for (const { stream, a, slices } of loaded) {
      for (const s of slices) {
        const { epb } = unescapeRbsp(s.nal);
        expect(s.h.headerBytes).toBe(escapedLength(1 + Math.ceil(s.h.headerBits / 8), epb));
        expect(parseSliceHeader(s.nal.subarray(0, s.h.headerBytes), a.assembler.sps, a.assembler.pps), stream.name).toEqual(s.h);
        expect(() => parseSliceHeader(s.nal.subarray(0, s.h.headerBytes - 1), a.assembler.sps, a.assembler.pps)).toThrow(MediaError);
      }
    }
  });
});

describe('slice header syntax (serialise → parse)', () => {
  it('every field survives, with headerBits and headerBytes right: field pictures, POC type 1, SP/SI, redundant pictures, slice groups, colour planes (property)', () => {
    fc.assert(
      fc.property(fc.gen(), fc.uint8Array({ minLength: 1, maxLength: 40 }), (g, data) => {
        const sps = parseSps(escapeRbsp(writeSps(genSps(g, true))));
        const pps = parsePps(escapeRbsp(writePps(genPps(g, sps), sps.chromaFormatIdc)), new Map([[sps.spsId, sps]]));
        const expected = genSlice(g, sps, pps);
        const written = writeSliceHeader(expected, sps, pps);
        // slice data after the header: the written bits, then arbitrary bytes ending in a stop bit
        const w = new _BitWriter();
        const r = new _BitReader(written.rbsp);
        for (let i = 0; i < 8 + written.bits; i++) w.bit(r.bit());
        for (const b of data) w.u(8, b);
        const nal = escapeRbsp(w.trailingBits().toBytes());
        const h = parseSliceHeader(nal, new Map([[sps.spsId, sps]]), new Map([[pps.ppsId, pps]]));
        const { epb } = unescapeRbsp(nal);
        expect(h).toEqual({ ...expected, headerBits: written.bits, headerBytes: escapedLength(1 + Math.ceil(written.bits / 8), epb) });
      }),
      { numRuns: 700, endOnFailure: true },
    );
  });

  it('refuses NAL units without a slice header, unknown parameter sets and out-of-range fields', () => {
    const sps = parseSps(Uint8Array.from(Buffer.from('6742c01fda014016ec0440000003004000000f23c60ca8', 'hex')));
    const pps = parsePps(Uint8Array.from([0x68, 0xce, 0x0f, 0xc8]), new Map([[0, sps]]));
    const spsMap = new Map([[0, sps]]);
    const ppsMap = new Map([[0, pps]]);
    expect(() => parseSliceHeader(Uint8Array.from([0x67, 0x88]), spsMap, ppsMap)).toThrow(/no slice header/);
    expect(() => parseSliceHeader(Uint8Array.from([0x23, 0x88]), spsMap, ppsMap)).toThrow(/no slice header/);
    const slice = (f: (w: _BitWriter) => void, header = 0x65): Uint8Array => {
      const w = new _BitWriter().u(8, header);
      f(w);
      return escapeRbsp(w.trailingBits().toBytes());
    };
    expect(() => parseSliceHeader(slice((w) => w.ue(0).ue(7).ue(1)), spsMap, ppsMap)).toThrow(/unknown PPS 1/);
    expect(() => parseSliceHeader(slice((w) => w.ue(0).ue(7).ue(0)), spsMap, new Map([[0, { ...pps, spsId: 3 }]]))).toThrow(/unknown SPS 3/);
    expect(() => parseSliceHeader(slice((w) => w.ue(0).ue(10)), spsMap, ppsMap)).toThrow(/slice_type/);
    expect(() => parseSliceHeader(slice((w) => w.ue(0).ue(5)), spsMap, ppsMap)).toThrow(/IDR slice of type P/);
    expect(() => parseSliceHeader(slice((w) => w.ue(3600).ue(7)), spsMap, ppsMap)).toThrow(/first_mb_in_slice/);
    expect(() => parseSliceHeader(slice((w) => w.ue(0).ue(7), 0x05), spsMap, ppsMap)).toThrow(/nal_ref_idc 0/);
    expect(() => parseSliceHeader(slice((w) => w.ue(0).ue(7).ue(0)), spsMap, ppsMap)).toThrow(MediaError);
  });
});
