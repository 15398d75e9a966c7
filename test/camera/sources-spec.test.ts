/**
 * camera.json source specs (strings and objects) → VideoSource; the V4L2 source's error when the device does not
 * exist; DTS derived from PTS (the RTSP path) as property tests; abort stopping ffmpeg.
 */
import { existsSync } from 'node:fs';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { InputError } from '../../src/errors.js';
import { SourceError } from '../../src/camera/sources/base.js';
import { DtsFromPts } from '../../src/camera/sources/dts.js';
import { liveFfmpegPids } from '../../src/camera/sources/ffmpeg.js';
import { FileSource } from '../../src/camera/sources/file.js';
import { PatternSource } from '../../src/camera/sources/pattern.js';
import { RtspSource } from '../../src/camera/sources/rtsp.js';
import { createSource, parseSourceSpec } from '../../src/camera/sources/spec.js';
import { V4l2Source } from '../../src/camera/sources/v4l2.js';
import { collect } from './_sources.js';

describe('source specs', () => {
  it('reads the string forms', () => {
    expect(parseSourceSpec('rtsp://u:p@cam.local:554/stream1')).toEqual({ type: 'rtsp', url: 'rtsp://u:p@cam.local:554/stream1' });
    expect(parseSourceSpec('rtsps://cam.local/s')).toEqual({ type: 'rtsp', url: 'rtsps://cam.local/s' });
    expect(parseSourceSpec('pattern')).toEqual({ type: 'pattern' });
    expect(parseSourceSpec('pattern:width=1280,height=720,fps=30,gop=60,bitrate=2000000,bframes=2,clock=false')).toEqual({
      type: 'pattern', width: 1280, height: 720, fps: 30, gop: 60, bitrate: 2_000_000, bframes: 2, clock: false,
    });
    expect(parseSourceSpec('file:/srv/clip.mp4')).toEqual({ type: 'file', path: '/srv/clip.mp4' });
    expect(parseSourceSpec('/srv/clip.h264')).toEqual({ type: 'file', path: '/srv/clip.h264' });
    expect(parseSourceSpec('v4l2:/dev/video2')).toEqual({ type: 'v4l2', device: '/dev/video2' });
    expect(parseSourceSpec('/dev/video0')).toEqual({ type: 'v4l2', device: '/dev/video0' });
  });

  it('reads the object forms and makes the matching source', () => {
    expect(createSource({ type: 'pattern', width: 640, height: 360 })).toBeInstanceOf(PatternSource);
    expect(createSource({ type: 'file', path: '/x.mp4', once: true })).toBeInstanceOf(FileSource);
    expect(createSource({ type: 'v4l2', device: '/dev/video9', width: 1280, height: 720 })).toBeInstanceOf(V4l2Source);
    const rtsp = createSource({ type: 'rtsp', url: 'rtsp://admin:hunter2@10.0.0.7/live', stallMs: 3000 });
    expect(rtsp).toBeInstanceOf(RtspSource);
    expect(rtsp.status()).toEqual({ state: 'stopped', description: 'rtsp://***@10.0.0.7/live', frames: 0, reconnects: 0 });
    expect(createSource('pattern:width=320,height=180,clock=false').status().description).toBe('test pattern testsrc2 320x180@25 gop 50');
  });

  it('refuses malformed specs with an input error that names the problem and never the password', () => {
    const refused = (spec: unknown, message: RegExp): void => {
      let error: unknown;
      try {
        parseSourceSpec(spec);
      } catch (e) {
        error = e;
      }
      expect(error).toBeInstanceOf(InputError);
      expect((error as Error).message).toMatch(message);
      expect((error as Error).message).not.toContain('hunter2');
    };
    refused('http://cam/x', /scheme http is not rtsp or rtsps/);
    refused('camera', /a source is an rtsp/);
    refused(42, /string or an object/);
    refused({ type: 'ftp' }, /source type "ftp"/);
    refused({ type: 'rtsp' }, /url is required/);
    refused({ type: 'rtsp', url: 'rtsp://admin:hunter2@10.0.0.7/live', stallMs: 5 }, /^rtsp:\/\/\*\*\*@10\.0\.0\.7\/live: stallMs/);
    refused({ type: 'rtsp', url: 'rtsp://admin:hunter2@10.0.0.7/live', user: 'x' }, /unknown field "user"/);
    refused('pattern:width=641', /must be even/);
    refused('pattern:width=200,height=100', /too narrow for the pixel clock/);
    refused('pattern:fps=0', /frame rate 0/);
    refused('pattern:bframes=9', /bframes 9/);
    refused('pattern:clock=maybe', /clock must be true or false/);
    refused('pattern:width', /not key=value/);
    refused({ type: 'file' }, /path is required/);
    refused({ type: 'v4l2', device: 'video0' }, /path under \/dev/);
  });
});

describe('V4L2 source', () => {
  it('says clearly that a device does not exist', async () => {
    let device = '/dev/video0';
    for (let n = 0; existsSync(device); n++) device = `/dev/video${n}`;
    const source = new V4l2Source(device, {}, { niceness: 19 });
    const got = await collect(source, () => false, 10_000);
    expect(got.error).toBeInstanceOf(SourceError);
    expect((got.error as SourceError).permanent).toBe(true);
    expect((got.error as SourceError).code).toBe('KF_ERR_NOT_FOUND');
    expect((got.error as Error).message).toBe(`V4L2 device ${device}: no such device`);
    expect(source.status()).toMatchObject({ state: 'failed', lastError: `V4L2 device ${device}: no such device` });
  });

  it('refuses something that is not a character device', async () => {
    const got = await collect(new V4l2Source('/dev/shm', {}, { niceness: 19 }), () => false, 10_000);
    expect((got.error as Error).message).toBe('V4L2 device /dev/shm: not a character device');
  });
});

describe('DTS from PTS', () => {
  /** A decode order of `n` pictures with B-frames: each reference followed by the B-frames displayed before it. */
  const stream = fc.record({ n: fc.integer({ min: 1, max: 80 }), b: fc.integer({ min: 0, max: 3 }), start: fc.integer({ min: -1e6, max: 1e9 }), step: fc.constantFrom(3000, 3600, 1501) });

  function decodeOrder(n: number, b: number): number[] {
    // presentation indexes in decode order: 0, then groups [ref, ref-b … ref-1]
    const order = [0];
    for (let ref = b + 1; order.length < n; ref += b + 1) {
      order.push(ref);
      for (let k = ref - b; k < ref; k++) order.push(k);
    }
    return order.slice(0, n);
  }

  it('gives increasing DTS never after the PTS, spaced as the stream', () => {
    fc.assert(
      fc.property(stream, fc.integer({ min: 0, max: 4 }), ({ n, b, start, step }, extra) => {
        const d = new DtsFromPts(b > 0 ? 1 + extra : extra, step);
        const pts = decodeOrder(n, b).map((k) => start + k * step);
        const dts = pts.map((p) => d.next(p));
        dts.forEach((t, i) => {
          expect(t).toBeLessThanOrEqual(pts[i] as number);
          if (i > 0) expect(t - (dts[i - 1] as number)).toBe(step);
        });
      }),
    );
  });

  it('keeps DTS increasing and ≤ PTS when the stream is reordered deeper than declared', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: 1e6 }), { minLength: 1, maxLength: 60 }), (pts) => {
        const d = new DtsFromPts(0);
        const dts = pts.map((p) => d.next(p));
        dts.forEach((t, i) => {
          if (i > 0) expect(t).toBeGreaterThan(dts[i - 1] as number);
        });
      }),
    );
  });
});

describe('stopping', () => {
  it('stops ffmpeg when the signal aborts, and says stopped', async () => {
    const source = new PatternSource({ width: 320, height: 180, clock: false }, { niceness: 19 });
    let pidsWhileRunning: number[] = [];
    const got = await collect(source, (c) => {
      if (c.frames.length === 5) pidsWhileRunning = liveFfmpegPids();
      return c.frames.length >= 5;
    }, 30_000);
    expect(got.error).toBeUndefined();
    expect(pidsWhileRunning).toHaveLength(1);
    expect(liveFfmpegPids()).toEqual([]);
    expect(existsSync(`/proc/${pidsWhileRunning[0]}`)).toBe(false);
    expect(source.status().state).toBe('stopped');
  });
});
