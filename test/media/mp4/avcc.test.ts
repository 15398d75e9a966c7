/** avcC: byte-exact round trips of ffmpeg's records (baseline and high profile), as a property, and malformed input. */
import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { MediaError } from '../../../src/errors.js';
import { boxPayload, buildAvcC, findBoxes, parseAvcC } from '../../../src/media/mp4/index.js';
import type { AvcConfig } from '../../../src/media/mp4/index.js';
import { clip } from '../../helpers/media.js';

function ffmpegAvcC(path: string): Uint8Array {
  const buf = readFileSync(path);
  const [h] = findBoxes(buf, ['moov', 'trak', 'mdia', 'minf', 'stbl', 'stsd', 'avc1', 'avcC']);
  if (h === undefined) throw new Error(`no avcC in ${path}`);
  return buf.subarray(h.offset, h.offset + h.size);
}

const nal = fc.uint8Array({ minLength: 1, maxLength: 40 });
const config: fc.Arbitrary<AvcConfig> = fc
  .record({
    profile: fc.constantFrom(66, 77, 88, 100, 110, 122, 144),
    compatibility: fc.integer({ min: 0, max: 255 }),
    level: fc.integer({ min: 0, max: 255 }),
    lengthSize: fc.constantFrom<1 | 2 | 4>(1, 2, 4),
    sps: fc.array(nal, { maxLength: 3 }),
    pps: fc.array(nal, { maxLength: 3 }),
    trailer: fc.option(fc.record({ chromaFormat: fc.integer({ min: 0, max: 3 }), bitDepthLumaMinus8: fc.integer({ min: 0, max: 7 }), bitDepthChromaMinus8: fc.integer({ min: 0, max: 7 }), spsExt: fc.array(nal, { maxLength: 2 }) })),
  })
  .map(({ trailer, ...c }) => (trailer !== null && [100, 110, 122, 144].includes(c.profile) ? { ...c, ...trailer } : c));

describe('avcC', () => {
  it("parse → build gives ffmpeg's records back byte for byte (baseline, and high profile with its trailer)", async () => {
    const baseline = ffmpegAvcC(await clip({ format: 'mp4' }));
    const high = ffmpegAvcC(await clip({ format: 'mp4', width: 320, height: 240, seconds: 1, preset: 'veryfast' }));
    for (const record of [baseline, high]) {
      const cfg = parseAvcC(record.subarray(8));
      expect(Buffer.from(buildAvcC(cfg)).equals(Buffer.from(record))).toBe(true);
      expect(cfg.lengthSize).toBe(4);
      expect(cfg.sps.length).toBe(1);
      expect(cfg.pps.length).toBe(1);
      expect((cfg.sps[0]?.[0] ?? 0) & 0x1f).toBe(7);
      expect((cfg.pps[0]?.[0] ?? 0) & 0x1f).toBe(8);
    }
    expect(parseAvcC(high.subarray(8))).toMatchObject({ profile: 100, chromaFormat: 1, bitDepthLumaMinus8: 0, spsExt: [] });
  });

  it('build → parse is the identity, and parse → build reproduces the bytes (property)', () => {
    fc.assert(
      fc.property(config, (cfg) => {
        const built = buildAvcC(cfg);
        const parsed = parseAvcC(boxPayload(built, { type: 'avcC', offset: 0, size: built.length, headerSize: 8 }));
        const norm = (c: AvcConfig) => JSON.parse(JSON.stringify(c, (_k, v: unknown) => (v instanceof Uint8Array ? Buffer.from(v).toString('hex') : v))) as unknown;
        expect(norm(parsed)).toEqual(norm(cfg));
        expect(Buffer.from(buildAvcC(parsed)).equals(Buffer.from(built))).toBe(true);
      }),
    );
  });

  it('malformed records are MediaErrors', () => {
    const good = buildAvcC({ profile: 66, compatibility: 0, level: 30, lengthSize: 4, sps: [Uint8Array.of(0x67, 1)], pps: [Uint8Array.of(0x68, 2)] }).subarray(8);
    const bad = (edit: (b: Buffer) => Buffer): void => expect(() => parseAvcC(edit(Buffer.from(good)))).toThrow(MediaError);
    bad((b) => Buffer.from([2, ...b.subarray(1)])); // version
    bad((b) => Buffer.from([...b.subarray(0, 4), 0xfe, ...b.subarray(5)])); // length size 3
    for (let n = 0; n < good.length; n++) bad((b) => b.subarray(0, n)); // every truncation
    expect(() => buildAvcC({ profile: 66, compatibility: 0, level: 30, lengthSize: 4, sps: [], pps: [], spsExt: [] })).toThrow(MediaError);
    expect(() => buildAvcC({ profile: 66, compatibility: 0, level: 30, lengthSize: 3 as 4, sps: [], pps: [] })).toThrow(MediaError);
    expect(() => buildAvcC({ profile: 66, compatibility: 0, level: 30, lengthSize: 4, sps: [new Uint8Array(70000)], pps: [] })).toThrow(MediaError);
  });
});
