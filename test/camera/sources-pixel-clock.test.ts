/**
 * The pixel clock: the reference drawing read back (property tests), and the test-pattern source end to end: its
 * access units decoded by ffmpeg to gray pictures show, in their pixels, the capture time of their SourceFrame.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { PatternSource } from '../../src/camera/sources/pattern.js';
import { drawPixelClock, pixelClockCell, PIXEL_CLOCK_MAX, readPixelClock } from '../../src/camera/sources/pixel-clock.js';
import { writeAnnexB } from '../../src/media/h264/index.js';
import { collect, ffmpegRun } from './_sources.js';

const picture = fc.record({ width: fc.integer({ min: 128, max: 960 }).map((w) => w * 2), height: fc.integer({ min: 30, max: 540 }).map((h) => h * 2) });

describe('pixel clock', () => {
  it('reads back what is drawn, on any background and with noise', () => {
    fc.assert(
      fc.property(picture, fc.integer({ min: 0, max: PIXEL_CLOCK_MAX }), fc.integer({ min: 0, max: 255 }), fc.integer(), (p, ms, background, seed) => {
        const gray = new Uint8Array(p.width * p.height).fill(background);
        drawPixelClock(gray, p.width, p.height, ms);
        // compression-like noise: ±40 on every pixel
        let x = seed | 1;
        for (let i = 0; i < gray.length; i++) {
          x ^= x << 13;
          x ^= x >>> 17;
          x ^= x << 5;
          gray[i] = Math.max(0, Math.min(255, (gray[i] as number) + ((x >>> 0) % 81) - 40));
        }
        expect(readPixelClock(gray, p.width, p.height)).toBe(ms);
      }),
      { numRuns: 60 },
    );
  });

  it('refuses a picture whose clock has any one cell wrong, or no clock', () => {
    fc.assert(
      fc.property(picture, fc.integer({ min: 0, max: PIXEL_CLOCK_MAX }), fc.integer({ min: 0, max: 63 }), (p, ms, cell) => {
        const gray = new Uint8Array(p.width * p.height).fill(128);
        expect(readPixelClock(gray, p.width, p.height)).toBeUndefined();
        drawPixelClock(gray, p.width, p.height, ms);
        const s = pixelClockCell(p.width);
        for (let y = 0; y < s; y++) for (let x = cell * s; x < (cell + 1) * s; x++) gray[y * p.width + x] = 251 - (gray[y * p.width + x] as number);
        expect(readPixelClock(gray, p.width, p.height)).toBeUndefined();
      }),
      { numRuns: 60 },
    );
  });

  it('needs a picture at least 256 pixels wide', () => {
    expect(pixelClockCell(255)).toBe(0);
    expect(pixelClockCell(256)).toBe(4);
    expect(() => drawPixelClock(new Uint8Array(200 * 100), 200, 100, 1)).toThrow(RangeError);
    expect(readPixelClock(new Uint8Array(200 * 100), 200, 100)).toBeUndefined();
  });

  for (const [width, height, bframes, bitrate] of [
    [640, 360, 0, 400_000],
    [1280, 720, 2, 800_000],
  ] as const) {
    it(`is drawn by the test pattern at ${height}p (${bframes} B-frames) and reads back as each frame's capture time`, async () => {
      const started = Date.now();
      const source = new PatternSource({ width, height, fps: 25, gop: 25, bframes, bitrate }, { niceness: 19 });
      const got = await collect(source, (c) => c.frames.length >= 40, 60_000);
      expect(got.error).toBeUndefined();
      expect(got.frames.length).toBe(40);
      const frames = got.frames;
      // decode order in, presentation order out of the decoder
      for (let i = 1; i < frames.length; i++) expect((frames[i] as (typeof frames)[0]).dts).toBeGreaterThan((frames[i - 1] as (typeof frames)[0]).dts);
      if (bframes > 0) expect(frames.some((f) => f.cto > 0)).toBe(true);
      const presented = [...frames].sort((a, b) => a.dts + a.cto - (b.dts + b.cto));
      const gray = await ffmpegRun(['-f', 'h264', '-i', '-', '-f', 'rawvideo', '-pix_fmt', 'gray', '-'], writeAnnexB(frames.flatMap((f) => f.au.nals)));
      const size = width * height;
      expect(gray.length / size).toBe(frames.length);
      const read = presented.map((_, i) => readPixelClock(gray.subarray(i * size, (i + 1) * size), width, height));
      expect(read.every((t) => t !== undefined)).toBe(true);
      // every picture shows its own capture time (on a mismatch, the whole table: decode order, composition offset,
      // captured, drawn — to tell a wrong time from pictures paired out of order)
      const table = presented.map((f, i) => ({ dts: f.dts, cto: f.cto, captured: f.captured, drawn: read[i] as number }));
      const wrong = table.filter((r) => Math.abs(r.drawn - r.captured) > 2);
      expect(wrong, JSON.stringify(table)).toEqual([]);
      // captured is wall-clock capture time: never in the future when the frame arrives (how long before depends on
      // the encoder's speed, i.e. the machine's load; the bounds below keep it inside the test's own time)
      got.frames.forEach((f, i) => expect((got.arrivals[i] as number) - f.captured).toBeGreaterThanOrEqual(-1));
      // and a wall clock in ms: 40 frames paced at 25 fps span at least about 1.56 s of capture time (a paced source
      // is never faster; on a loaded machine it is slower), all of it inside the time this test watched it
      const captured = frames.map((f) => f.captured);
      expect(Math.max(...captured) - Math.min(...captured)).toBeGreaterThan(1200);
      expect(Math.min(...captured)).toBeGreaterThanOrEqual(started - 1);
      expect(Math.max(...captured)).toBeLessThanOrEqual(Math.max(...got.arrivals) + 1);
    });
  }
});
