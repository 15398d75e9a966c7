/**
 * The MPEG-TS demuxer against its own writer (property tests) and against ffmpeg: access units out of ffmpeg's
 * MPEG-TS have the NAL units of `ffmpeg -c copy -f h264`, the times of `ffprobe -show_packets`, and decode to the
 * frames of the source clip.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NotH264Error, PTS_WRAP, TsDemuxer, writeTs, type TsWriteUnit } from '../../src/camera/sources/mpegts.js';
import { TsH264Reader, Unwrapper } from '../../src/camera/sources/ts-h264.js';
import { TS_OUTPUT_ARGS } from '../../src/camera/sources/ffmpeg.js';
import { splitAnnexB, writeAnnexB } from '../../src/media/h264/index.js';
import { ffmpegRun, makeClip, niced, tempDir } from './_sources.js';

function chunks(data: Uint8Array, cuts: number[]): Uint8Array[] {
  const points = [...new Set(cuts.map((c) => c % (data.length + 1)))].sort((a, b) => a - b);
  const out: Uint8Array[] = [];
  let p = 0;
  for (const c of points) {
    out.push(data.subarray(p, c));
    p = c;
  }
  out.push(data.subarray(p));
  return out;
}

const unitArb = fc
  .record({
    payload: fc.oneof(
      fc.uint8Array({ minLength: 1, maxLength: 600 }),
      // PES packets around the 16-bit length limit, filled from a seed (generating 65 000 bytes one by one is slow)
      fc.tuple(fc.integer({ min: 65_000, max: 70_000 }), fc.integer()).map(([n, seed]) => Uint8Array.from({ length: n }, (_, i) => (Math.imul(i + 1, seed | 1) >>> 13) & 0xff)),
    ),
    dts: fc.oneof(fc.integer({ min: 0, max: PTS_WRAP - 1 }), fc.integer({ min: PTS_WRAP - 10_000, max: PTS_WRAP - 1 })),
    cto: fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 90_000 })),
  })
  .map((u): TsWriteUnit => ({ payload: u.payload, dts: u.dts, pts: (u.dts + u.cto) % PTS_WRAP }));

describe('MPEG-TS demuxer', () => {
  it('returns the PES packets writeTs wrote, with their times, in any chunking', () => {
    fc.assert(
      fc.property(fc.array(unitArb, { minLength: 1, maxLength: 8 }), fc.boolean(), fc.array(fc.nat(), { maxLength: 12 }), (units, pesLength, cuts) => {
        const ts = writeTs(units, { pesLength });
        const d = new TsDemuxer();
        const got = [...chunks(ts, cuts).flatMap((c) => d.push(c)), ...d.flush()];
        expect(got.map((p) => p.pts)).toEqual(units.map((u) => u.pts));
        expect(got.map((p) => p.dts)).toEqual(units.map((u) => u.dts));
        expect(got.map((p) => Buffer.from(p.payload).toString('hex'))).toEqual(units.map((u) => Buffer.from(u.payload).toString('hex')));
      }),
      { numRuns: 60 },
    );
  });

  it('completes a PES packet with a length as soon as its bytes are in (no wait for the next one)', () => {
    const units = [{ payload: Uint8Array.of(0, 0, 0, 1, 9, 0xf0), pts: 100, dts: 100 }];
    const d = new TsDemuxer();
    expect(d.push(writeTs(units, { pesLength: true }))).toHaveLength(1);
    const u = new TsDemuxer();
    expect(u.push(writeTs(units, { pesLength: false }))).toHaveLength(0);
    expect(u.flush()).toHaveLength(1);
  });

  it('resynchronises after garbage between packets', () => {
    const units = [1, 2, 3].map((i) => ({ payload: Uint8Array.of(0, 0, 1, i), pts: i * 3600, dts: i * 3600 }));
    const ts = writeTs(units);
    const mangled = Buffer.concat([ts.subarray(0, 188 * 2), Buffer.from([1, 2, 0x47, 3]), ts.subarray(188 * 2)]);
    const d = new TsDemuxer();
    expect([...d.push(mangled), ...d.flush()].map((p) => p.pts)).toEqual([3600, 7200, 10_800]);
  });

  it('refuses a video stream that is not H.264, naming what it is', () => {
    const ts = writeTs([{ payload: Uint8Array.of(0, 0, 1, 0xb3), pts: 0, dts: 0 }], { streamType: 0x24 });
    expect(() => new TsDemuxer().push(ts)).toThrow(NotH264Error);
    expect(() => new TsDemuxer().push(ts)).toThrow(/H\.265\/HEVC.*not H\.264/);
  });

  it('unwraps 33-bit times into a continuous count from any start', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 2 ** 40 }), fc.array(fc.integer({ min: -90_000, max: 2 ** 31 }), { maxLength: 50 }), (start, steps) => {
        const u = new Unwrapper();
        const first = u.unwrap(start % PTS_WRAP);
        let v = start;
        for (const s of steps) {
          v += s;
          expect(u.unwrap(((v % PTS_WRAP) + PTS_WRAP) % PTS_WRAP) - first).toBe(v - start);
        }
      }),
    );
  });
});

describe('timed access units', () => {
  /** One IDR picture (16×16, by libx264) as a PES payload. */
  let idr: Uint8Array;
  beforeAll(async () => {
    idr = await ffmpegRun(['-f', 'lavfi', '-i', 'color=c=gray:s=16x16', '-frames:v', '1', '-c:v', 'libx264', '-preset', 'ultrafast', '-f', 'h264', '-']);
  });

  it('keeps PTS and DTS continuous across the 33-bit wrap, even far apart (RTSP placeholder DTS)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: PTS_WRAP - 1 }), fc.integer({ min: 0, max: PTS_WRAP - 1 }), fc.integer({ min: 1, max: 2 ** 28 }), (dts0, gap, step) => {
        // 40 pictures, PTS advancing by `step` (enough to wrap several times), DTS by 1, `gap` apart at the start
        const units = Array.from({ length: 40 }, (_, i) => ({ payload: idr, dts: (dts0 + i) % PTS_WRAP, pts: (dts0 + gap + i * step) % PTS_WRAP }));
        const reader = new TsH264Reader({ pesIsAccessUnit: true });
        const aus = [...reader.push(writeTs(units)), ...reader.flush()];
        expect(aus).toHaveLength(40);
        const signedGap = gap > PTS_WRAP / 2 ? gap - PTS_WRAP : gap;
        aus.forEach((a, i) => {
          expect(a.dts - (aus[0]?.dts ?? 0)).toBe(i);
          expect(a.pts - (aus[0]?.dts ?? 0)).toBe(signedGap + i * step);
        });
      }),
      { numRuns: 50 },
    );
  });
});

describe('timed access units from ffmpeg', () => {
  let tmp: ReturnType<typeof tempDir>;
  beforeAll(() => {
    tmp = tempDir('ts');
  });
  afterAll(() => tmp.remove());

  for (const bframes of [0, 3]) {
    it(`match ffmpeg's packets, times and frames (${bframes} B-frames)`, async () => {
      const src = await makeClip(join(tmp.dir, `b${bframes}.mp4`), { bframes, seconds: 2, gop: 12 });
      const tsPath = join(tmp.dir, `b${bframes}.ts`);
      await ffmpegRun(['-y', '-i', src, '-map', '0:v', '-c', 'copy', ...TS_OUTPUT_ARGS.slice(0, -1), tsPath]);
      const ts = readFileSync(tsPath);
      const reader = new TsH264Reader({ pesIsAccessUnit: bframes === 0 });
      const aus = [...chunks(ts, [1000, 5000, 5001, 40_000, 77_777]).flatMap((c) => reader.push(c)), ...reader.flush()];
      expect(reader.untimed).toBe(0);
      expect(reader.skipped).toBe(0);

      const probe = (await niced('ffprobe', ['-v', 'error', '-show_packets', '-show_entries', 'packet=pts,dts', '-of', 'csv=p=0', tsPath])).toString();
      const packets = probe.split('\n').filter((l) => l.trim() !== '').map((l) => l.split(',').slice(0, 2).map(Number));
      expect(aus.map((a) => [a.pts, a.dts])).toEqual(packets);
      if (bframes > 0) expect(aus.some((a) => a.pts > a.dts)).toBe(true);
      expect(aus.every((a) => a.pts >= a.dts)).toBe(true);

      const theirs = splitAnnexB(await ffmpegRun(['-i', tsPath, '-map', '0:v', '-c', 'copy', '-f', 'h264', '-']));
      const ours = aus.flatMap((a) => a.au.nals);
      expect(ours.length).toBe(theirs.length);
      expect(ours.map((n) => Buffer.from(n).toString('base64'))).toEqual(theirs.map((n) => Buffer.from(n).toString('base64')));

      const annexB = Buffer.from(writeAnnexB(ours));
      const md5 = async (args: string[], input?: Uint8Array): Promise<string[]> =>
        (await ffmpegRun([...args, '-map', '0:v', '-f', 'framemd5', '-'], input)).toString().split('\n').filter((l) => l !== '' && !l.startsWith('#')).map((l) => l.split(',').pop()?.trim() ?? '');
      const mine = await md5(['-f', 'h264', '-i', '-'], annexB);
      const source = await md5(['-i', src]);
      expect(mine.length).toBe(50);
      expect(mine).toEqual(source);
    });
  }
});
