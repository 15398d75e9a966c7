/**
 * Helpers of the camera-source suites: niced ffmpeg/ffprobe runs (the machine is shared), small clips in a
 * per-run temporary directory, and collecting a source's events.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { SourceEvent, SourceFrame, VideoSource } from '../../src/camera/source.js';

/** Runs a command at niceness 19; resolves with stdout, rejects with stderr on a non-zero exit. */
export function niced(cmd: string, args: readonly string[], input?: Uint8Array): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const child = execFile('nice', ['-n', '19', cmd, ...args], { encoding: 'buffer', maxBuffer: 1 << 30 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${cmd} ${args.join(' ')}: ${err.message}\n${stderr.toString()}`));
      else resolve(stdout);
    });
    child.stdin?.on('error', () => undefined);
    if (input !== undefined) child.stdin?.end(input);
    else child.stdin?.end();
  });
}

export function ffmpegRun(args: readonly string[], input?: Uint8Array): Promise<Buffer> {
  return niced('ffmpeg', ['-nostdin', '-hide_banner', '-loglevel', 'error', ...args], input);
}

/** A temporary directory unique to this run; removed by the returned function. */
export function tempDir(prefix: string): { dir: string; remove: () => void } {
  const dir = mkdtempSync(join(tmpdir(), `kf-${prefix}-`));
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

export interface SmallClip {
  readonly width?: number;
  readonly height?: number;
  readonly fps?: number;
  readonly seconds?: number;
  readonly gop?: number;
  readonly bframes?: number;
  /** mp4 (default) or h264 (Annex-B). */
  readonly format?: 'mp4' | 'h264';
}

/** A small libx264 clip of testsrc2 written to `path`. */
export async function makeClip(path: string, o: SmallClip = {}): Promise<string> {
  const bf = o.bframes ?? 0;
  const mux = o.format === 'h264' ? ['-bsf:v', 'h264_mp4toannexb', '-f', 'h264'] : ['-f', 'mp4'];
  await ffmpegRun([
    '-y', '-f', 'lavfi', '-i', `testsrc2=size=${o.width ?? 320}x${o.height ?? 180}:rate=${o.fps ?? 25}`, '-t', String(o.seconds ?? 2),
    '-c:v', 'libx264', '-preset', bf > 0 ? 'veryfast' : 'ultrafast', '-bf', String(bf), '-g', String(o.gop ?? 25), '-keyint_min', String(o.gop ?? 25),
    '-sc_threshold', '0', '-pix_fmt', 'yuv420p', ...mux, path,
  ]);
  return path;
}

export interface Collected {
  readonly frames: SourceFrame[];
  /** Wall-clock arrival of each frame, ms. */
  readonly arrivals: number[];
  readonly events: SourceEvent[];
}

/**
 * Collects a source's events until `until` says stop (checked after each event) or `timeoutMs` passes; then aborts
 * and drains the iterator. A thrown error is returned as `error`.
 */
export async function collect(source: VideoSource, until: (c: Collected) => boolean, timeoutMs: number, onEvent?: (e: SourceEvent, c: Collected) => void | Promise<void>): Promise<Collected & { error?: unknown; timedOut: boolean }> {
  const ac = new AbortController();
  const c: Collected = { frames: [], arrivals: [], events: [] };
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    ac.abort();
  }, timeoutMs);
  try {
    for await (const e of source.events(ac.signal)) {
      c.events.push(e);
      if (e.type === 'frame') {
        c.frames.push(e.frame);
        c.arrivals.push(Date.now());
      }
      await onEvent?.(e, c);
      if (until(c)) ac.abort();
    }
    return { ...c, timedOut };
  } catch (error) {
    return { ...c, error, timedOut };
  } finally {
    clearTimeout(timer);
  }
}
