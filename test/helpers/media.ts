/**
 * Test clips made with ffmpeg at test time (testsrc2, libx264), cached per parameter set in the system temp
 * directory so that the suites of one run share them. Each file is created under a temporary name and renamed,
 * so concurrent test processes never read a half-written clip.
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, renameSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';

export interface ClipOptions {
  readonly width?: number;
  readonly height?: number;
  readonly fps?: number;
  readonly seconds?: number;
  /** GOP length in frames (one CMAF fragment per GOP). */
  readonly gop?: number;
  /** Target bitrate, e.g. '4M'. */
  readonly bitrate?: string;
  /** libx264 slices per picture (multi-slice pictures). */
  readonly slices?: number;
  readonly preset?: string;
  /** Camera-like: -tune zerolatency -bf 0. Default true. */
  readonly zerolatency?: boolean;
  /** 'h264' Annex-B (default), 'mp4' ordinary, 'fmp4' fragmented (one fragment per GOP). */
  readonly format?: 'h264' | 'mp4' | 'fmp4';
}

/** Clips outlive a run (npm test points this outside its per-run temporary directory). */
const CACHE = process.env['KEYFRAME_TEST_CACHE'] ?? join(tmpdir(), 'keyframe-test-clips');

/** Runs ffmpeg; rejects on a non-zero exit unless `tolerateFailure` (garbled input makes ffmpeg fail). */
export function ffmpeg(args: readonly string[], input?: Uint8Array, tolerateFailure = false): Promise<Buffer> {
  return new Promise((resolvePromise, reject) => {
    const child = execFile('ffmpeg', ['-hide_banner', '-loglevel', 'error', ...args], { encoding: 'buffer', maxBuffer: 1 << 30 }, (err, stdout, stderr) => {
      if (err && !tolerateFailure) reject(new Error(`ffmpeg ${args.join(' ')}: ${err.message}\n${stderr.toString()}`));
      else resolvePromise(stdout);
    });
    child.stdin?.on('error', () => undefined);
    if (input !== undefined) child.stdin?.end(input);
  });
}

/**
 * ffmpeg's MD5 of each decoded frame of an MP4 given as bytes (through a pipe: ffmpeg 5.1 misreads seekable
 * multi-fragment CENC files), decrypted with `key` (hex) when given, frames passed through as timed; `garbled`
 * tolerates decoding errors (a wrong key).
 */
export async function decodedFrameMd5s(key: string | undefined, data: Uint8Array, garbled = false): Promise<string[]> {
  const out = await ffmpeg([...(key !== undefined ? ['-decryption_key', key] : []), '-f', 'mp4', '-i', '-', '-map', '0:v', '-fps_mode', 'passthrough', '-f', 'framemd5', '-'], data, garbled);
  return out
    .toString()
    .split('\n')
    .filter((l) => l !== '' && !l.startsWith('#'))
    .map((l) => l.split(',').pop()?.trim() ?? '');
}

/** Path of a clip with these options, made on first use. */
export async function clip(options: ClipOptions = {}): Promise<string> {
  const o = { width: 1280, height: 720, fps: 30, seconds: 5, gop: 30, bitrate: '', slices: 1, preset: 'ultrafast', zerolatency: true, format: 'h264' as const, ...options };
  const rate = o.bitrate !== '' ? ['-b:v', o.bitrate, '-maxrate', o.bitrate, '-bufsize', `${Number.parseInt(o.bitrate, 10) * 2}M`] : [];
  const tune = o.zerolatency ? ['-tune', 'zerolatency', '-bf', '0'] : [];
  // zerolatency turns on x264's sliced threads, whose count overrides -slices: pin the threads to the slices
  const slices = o.slices > 1 ? ['-threads', String(o.slices), '-slices', String(o.slices)] : [];
  const mux =
    o.format === 'h264'
      ? ['-bsf:v', 'h264_mp4toannexb', '-f', 'h264']
      : o.format === 'fmp4'
        ? ['-movflags', '+frag_keyframe+empty_moov+default_base_moof', '-f', 'mp4']
        : ['-f', 'mp4'];
  const args = [
    '-y', '-f', 'lavfi', '-i', `testsrc2=size=${o.width}x${o.height}:rate=${o.fps}`, '-t', String(o.seconds),
    '-c:v', 'libx264', '-preset', o.preset, ...tune, ...rate, ...slices, '-g', String(o.gop), '-keyint_min', String(o.gop), '-sc_threshold', '0',
    '-pix_fmt', 'yuv420p', ...mux,
  ];
  // The cache is shared by concurrent runs, possibly of other checkouts: key on the exact encoder arguments, and on
  // the CPU count, from which x264 picks its threads when they are not pinned (and with them slices and bits).
  const key = createHash('sha256').update(JSON.stringify([availableParallelism(), args])).digest('hex').slice(0, 16);
  const ext = o.format === 'h264' ? 'h264' : 'mp4';
  const path = join(CACHE, `${o.width}x${o.height}-${o.fps}-${o.seconds}s-${key}.${o.format === 'fmp4' ? 'frag.' : ''}${ext}`);
  if (existsSync(path)) return path;
  mkdirSync(CACHE, { recursive: true });
  const tmp = `${path}.${process.pid}.${Math.random().toString(36).slice(2)}.tmp`;
  await ffmpeg([...args, tmp]);
  renameSync(tmp, path);
  return path;
}

/** SHA-256 of the compressed video packets, as ffmpeg sees them (`-f hash`); pipe input for fragmented files. */
export async function packetHash(path: string, options: { key?: string; pipe?: boolean } = {}): Promise<string> {
  return hashOf(path, ['-map', '0:v', '-c', 'copy', '-f', 'hash', '-hash', 'sha256', '-'], options);
}

/** MD5 of the decoded frames (`-f hash -hash md5`). */
export async function frameHash(path: string, options: { key?: string; pipe?: boolean } = {}): Promise<string> {
  return hashOf(path, ['-map', '0:v', '-f', 'hash', '-hash', 'md5', '-'], options);
}

/** One MD5 per decoded frame (`-f framemd5`), in order. With `garbled`, frames that fail to decode are skipped. */
export async function frameMd5s(path: string, options: { key?: string; pipe?: boolean; garbled?: boolean } = {}): Promise<string[]> {
  const out = await runHash(path, ['-map', '0:v', '-f', 'framemd5', '-'], options);
  return out
    .split('\n')
    .filter((l) => l !== '' && !l.startsWith('#'))
    .map((l) => l.split(',').pop()?.trim() ?? '');
}

async function hashOf(path: string, tail: string[], options: { key?: string; pipe?: boolean }): Promise<string> {
  return (await runHash(path, tail, options)).trim();
}

async function runHash(path: string, tail: string[], options: { key?: string; pipe?: boolean; garbled?: boolean }): Promise<string> {
  const keyArgs = options.key !== undefined ? ['-decryption_key', options.key] : [];
  const tolerate = options.garbled === true;
  if (options.pipe === true) {
    const { readFileSync } = await import('node:fs');
    return (await ffmpeg([...keyArgs, '-f', 'mp4', '-i', '-', ...tail], readFileSync(path), tolerate)).toString();
  }
  return (await ffmpeg([...keyArgs, '-i', path, ...tail], undefined, tolerate)).toString();
}
