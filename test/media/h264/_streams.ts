/**
 * Test streams for the H.264 suites and the ffmpeg/ffprobe oracles that describe them: frame counts, picture
 * size, profile and level (ffprobe), key-packet positions in decoding order (ffprobe packets) and slice-header
 * lengths (ffmpeg's trace_headers bitstream filter, an independent parser).
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { clip, ffmpeg } from '../../helpers/media.js';
import { AccessUnitAssembler, GopAssembler, splitAnnexB, type AccessUnit, type Gop } from '../../../src/media/h264/index.js';

export interface TestStream {
  readonly name: string;
  readonly path: string;
}

/** The streams of the brief, made by the shared clip() helper. */
export async function briefStreams(): Promise<TestStream[]> {
  return [
    { name: '720p30 GOP 30 (ultrafast, zerolatency)', path: await clip({}) },
    { name: 'clip({slices: 4})', path: await clip({ slices: 4 }) },
    { name: 'High, medium, B-frames', path: await clip({ zerolatency: false, preset: 'medium' }) },
  ];
}

/** Clips outlive a run (npm test points this outside its per-run temporary directory). */
const CACHE = process.env['KEYFRAME_TEST_CACHE'] ?? join(tmpdir(), 'keyframe-test-clips');

/** A clip made with explicit ffmpeg encoder arguments (for what clip() cannot express), cached like clip(). */
export async function ownClip(name: string, encoder: readonly string[], size = '640x360', seconds = 2, fps = 25): Promise<TestStream> {
  const args = ['-y', '-f', 'lavfi', '-i', `testsrc2=size=${size}:rate=${fps}`, '-t', String(seconds), '-c:v', 'libx264', ...encoder, '-bsf:v', 'h264_mp4toannexb', '-f', 'h264'];
  // the CPU count too: x264 picks its threads from it when they are not pinned (see clip())
  const key = createHash('sha256').update(JSON.stringify([availableParallelism(), args])).digest('hex').slice(0, 16);
  const path = join(CACHE, `h264-${key}.h264`);
  if (!existsSync(path)) {
    mkdirSync(CACHE, { recursive: true });
    const tmp = `${path}.${process.pid}.${Math.random().toString(36).slice(2)}.tmp`;
    await ffmpeg([...args, tmp]);
    renameSync(tmp, path);
  }
  return { name, path };
}

/** Streams that cover what the brief's three do not: exactly four slices, high bit depth, 4:2:2/4:4:4 with scaling matrices, MBAFF, cropping. */
export async function extraStreams(): Promise<TestStream[]> {
  const gop = ['-g', '25', '-keyint_min', '25', '-sc_threshold', '0'];
  return Promise.all([
    ownClip('4 slices (threads 4)', ['-preset', 'ultrafast', '-tune', 'zerolatency', '-bf', '0', '-threads', '4', '-slices', '4', ...gop, '-pix_fmt', 'yuv420p'], '1280x720'),
    ownClip('High 10', ['-preset', 'fast', ...gop, '-pix_fmt', 'yuv420p10le']),
    ownClip('High 4:2:2, JVT scaling matrices', ['-preset', 'fast', ...gop, '-pix_fmt', 'yuv422p', '-x264-params', 'cqm=jvt']),
    ownClip('High 4:4:4 Predictive, JVT scaling matrices', ['-preset', 'fast', ...gop, '-pix_fmt', 'yuv444p', '-x264-params', 'cqm=jvt']),
    ownClip('MBAFF interlaced', ['-preset', 'fast', ...gop, '-pix_fmt', 'yuv420p', '-flags', '+ildct+ilme']),
    ownClip('CABAC zerolatency, 3 slices, weighted P', ['-preset', 'medium', '-tune', 'zerolatency', '-bf', '0', '-threads', '3', '-slices', '3', ...gop, '-pix_fmt', 'yuv420p'], '854x480'),
  ]);
}

/** The 10 s 1080p 4 Mbit/s camera stream of interop.md §6 (also the cropping case: 1088 coded lines). */
export function camera1080(): Promise<string> {
  return clip({ width: 1920, height: 1080, seconds: 10, gop: 60, bitrate: '4M' });
}

function run(cmd: string, args: readonly string[]): Promise<string> {
  return new Promise((resolvePromise, reject) => {
    execFile(cmd, args, { maxBuffer: 1 << 30 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${cmd} ${args.join(' ')}: ${err.message}\n${stderr}`));
      else resolvePromise(stdout + stderr);
    });
  });
}

export interface Probe {
  readonly frames: number;
  readonly width: number;
  readonly height: number;
  readonly frameRate: number;
  readonly profile: string;
  readonly level: number;
}

/** ffprobe's view of the first video stream, frames counted by decoding. */
export async function probe(path: string): Promise<Probe> {
  const out = await run('ffprobe', ['-v', 'error', '-count_frames', '-select_streams', 'v:0', '-show_entries', 'stream=nb_read_frames,width,height,r_frame_rate,profile,level', '-of', 'json', path]);
  const s = (JSON.parse(out) as { streams: Record<string, unknown>[] }).streams[0] ?? {};
  const [num, den] = String(s['r_frame_rate']).split('/').map(Number);
  return { frames: Number(s['nb_read_frames']), width: Number(s['width']), height: Number(s['height']), frameRate: (num ?? 0) / (den ?? 1), profile: String(s['profile']), level: Number(s['level']) };
}

/** Indexes, in decoding order, of the packets ffprobe flags as key frames. */
export async function keyPacketIndexes(path: string): Promise<number[]> {
  const out = await run('ffprobe', ['-v', 'error', '-select_streams', 'v:0', '-show_entries', 'packet=flags', '-of', 'csv=p=0', path]);
  return out
    .split('\n')
    .filter((l) => l.trim() !== '')
    .flatMap((l, i) => (l.startsWith('K') ? [i] : []));
}

/** ffprobe's profile name for an SPS (libavcodec's names). */
export function ffprobeProfileName(profileIdc: number, constraintFlags: number): string {
  const cs1 = (constraintFlags & 0x40) !== 0;
  const cs3 = (constraintFlags & 0x10) !== 0;
  switch (profileIdc) {
    case 66:
      return cs1 ? 'Constrained Baseline' : 'Baseline';
    case 77:
      return 'Main';
    case 88:
      return 'Extended';
    case 100:
      return 'High';
    case 110:
      return cs3 ? 'High 10 Intra' : 'High 10';
    case 122:
      return cs3 ? 'High 4:2:2 Intra' : 'High 4:2:2';
    case 244:
      return cs3 ? 'High 4:4:4 Intra' : 'High 4:4:4 Predictive';
    default:
      return `profile ${profileIdc}`;
  }
}

/**
 * Slice-header lengths in bits (after the NAL header) of every slice, in stream order, as ffmpeg's
 * trace_headers filter reports them: the end of the last syntax element of each "Slice Header" block, before any
 * cabac_alignment_one_bit.
 */
export async function traceSliceHeaderBits(path: string): Promise<number[]> {
  const log = await run('ffmpeg', ['-hide_banner', '-nostats', '-loglevel', 'info', '-i', path, '-c', 'copy', '-bsf:v', 'trace_headers', '-f', 'null', '-']);
  const result: number[] = [];
  let inSlice = false;
  let end = 0;
  for (const raw of log.split('\n')) {
    const line = raw.replace(/^\[trace_headers @ [^\]]*\] /, '');
    const m = /^(\d+)\s+(\S+)\s+([01]+) = -?\d+$/.exec(line.trim());
    if (m !== null && inSlice) {
      if (m[2] !== 'cabac_alignment_one_bit') end = Math.max(end, Number(m[1]) + (m[3] ?? '').length);
      continue;
    }
    if (inSlice) {
      result.push(end - 8);
      inSlice = false;
    }
    if (line.trim() === 'Slice Header') {
      inSlice = true;
      end = 0;
    }
  }
  if (inSlice) result.push(end - 8);
  return result;
}

export interface Assembled {
  readonly data: Uint8Array;
  readonly nals: Uint8Array[];
  readonly aus: AccessUnit[];
  readonly gops: Gop[];
  readonly assembler: AccessUnitAssembler;
}

/** Splits, assembles access units and GOPs. */
export function assemble(data: Uint8Array): Assembled {
  const nals = splitAnnexB(data);
  const assembler = new AccessUnitAssembler();
  const aus: AccessUnit[] = [];
  for (const nal of nals) aus.push(...assembler.push(nal));
  aus.push(...assembler.flush());
  const g = new GopAssembler();
  const gops: Gop[] = [];
  for (const au of aus) gops.push(...g.push(au));
  gops.push(...g.flush());
  return { data, nals, aus, gops, assembler };
}

export function readStream(path: string): Uint8Array {
  return new Uint8Array(readFileSync(path));
}

/** x264's info SEI names its options; `slices=N` is the slice count it used. */
export function x264Option(data: Uint8Array, name: string): string | undefined {
  const text = Buffer.from(data.subarray(0, 4096)).toString('latin1');
  return new RegExp(`[ ]${name}=([^ ]+)`).exec(text)?.[1];
}

/** Deterministic PRNG (mulberry32) for the fuzzers: the seed reproduces a failure. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
