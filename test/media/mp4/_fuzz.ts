/**
 * Mutation fuzzing of the MP4 demuxer, shared by the quick run in `npm test` (fuzz.test.ts) and the long
 * campaign (fuzz.slow.ts). Inputs derive from real files; mutations aim at structure — box headers, counts,
 * sizes, truncation, duplicated or deleted boxes — rather than at sample bytes the demuxer never interprets.
 * Every case is reproducible from its seed (a 32-bit integer), which failure messages print.
 */
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { MediaError } from '../../../src/errors.js';
import { bufferSource, buildFragment, buildInitSegment, buildPssh, CLEARKEY_SYSTEM_ID, childrenStart, fullBox, iterateBoxes, openMp4 } from '../../../src/media/mp4/index.js';
import type { BoxHeader, DemuxedSample, FragmentSample } from '../../../src/media/mp4/index.js';
import { clip, ffmpeg } from '../../helpers/media.js';

/** mulberry32: small, fast, deterministic. */
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

const CONTAINERS = new Set(['moov', 'trak', 'mdia', 'minf', 'stbl', 'dinf', 'edts', 'mvex', 'moof', 'traf', 'mfra', 'udta', 'sinf', 'schi', 'stsd', 'avc1', 'encv', 'dref']);

interface Node {
  h: BoxHeader;
  /** Offsets of the enclosing boxes, outermost first (for fixing their sizes). */
  ancestors: BoxHeader[];
}

/** Every box of a well-formed input, depth first. */
export function boxTree(buf: Uint8Array): Node[] {
  const out: Node[] = [];
  const walk = (start: number, end: number, ancestors: BoxHeader[]): void => {
    for (const h of iterateBoxes(buf, start, end)) {
      out.push({ h, ancestors });
      if (CONTAINERS.has(h.type)) walk(childrenStart(h), h.offset + h.size, [...ancestors, h]);
    }
  };
  walk(0, buf.length, []);
  return out;
}

export interface Seed {
  name: string;
  bytes: Uint8Array;
  boxes: Node[];
  /** Byte ranges that are structure (everything but mdat payloads). */
  structure: [number, number][];
}

export function seedOf(name: string, bytes: Uint8Array): Seed {
  const boxes = boxTree(bytes);
  const structure: [number, number][] = [];
  for (const { h, ancestors } of boxes) {
    if (ancestors.length > 0) continue;
    structure.push(h.type === 'mdat' ? [h.offset, h.offset + h.headerSize] : [h.offset, h.offset + h.size]);
  }
  return { name, bytes, boxes, structure };
}

const INTERESTING_U32 = [0, 1, 2, 7, 8, 9, 15, 16, 0x7f, 0xff, 0x100, 0xffff, 0x10000, 0x7fffffff, 0x80000000, 0xfffffffe, 0xffffffff];
const TYPES = ['moov', 'trak', 'mdia', 'minf', 'stbl', 'stsd', 'avc1', 'encv', 'avcC', 'sinf', 'frma', 'schm', 'schi', 'tenc', 'stts', 'ctts', 'stss', 'stsc', 'stsz', 'stz2', 'stco', 'co64', 'senc', 'saiz', 'saio', 'sgpd', 'sbgp', 'moof', 'traf', 'tfhd', 'tfdt', 'trun', 'mvex', 'trex', 'mdat', 'free', 'uuid', 'pssh', 'mfhd', 'hdlr', 'tkhd', 'mdhd'];

function put32(b: Uint8Array, at: number, v: number): void {
  if (at < 0 || at + 4 > b.length) return;
  b[at] = v >>> 24;
  b[at + 1] = (v >>> 16) & 0xff;
  b[at + 2] = (v >>> 8) & 0xff;
  b[at + 3] = v & 0xff;
}

function get32(b: Uint8Array, at: number): number {
  return ((b[at] ?? 0) * 0x1000000 + (((b[at + 1] ?? 0) << 16) | ((b[at + 2] ?? 0) << 8) | (b[at + 3] ?? 0))) >>> 0;
}

/** Adds `delta` to the 32-bit sizes of `boxes` (ancestors of an edited box), so the edit stays "consistent". */
function fixSizes(b: Uint8Array, boxes: readonly BoxHeader[], delta: number): void {
  // ancestors start before the edited box, so their size fields did not move
  for (const a of boxes) if (a.headerSize === 8) put32(b, a.offset, (get32(b, a.offset) + delta) >>> 0);
}

/** One mutation of `seed.bytes`; returns the new bytes and what was done. */
export function mutate(seed: Seed, rand: () => number): { bytes: Uint8Array; what: string } {
  const int = (n: number): number => Math.floor(rand() * n);
  const pick = <T>(a: readonly T[]): T => a[int(a.length)] as T;
  const u32 = (): number => (rand() < 0.7 ? pick(INTERESTING_U32) : int(0x100000000));
  const structural = (): number => {
    const [s, e] = pick(seed.structure);
    return s + int(Math.max(1, e - s));
  };
  let bytes = Uint8Array.from(seed.bytes);
  const what: string[] = [];
  const rounds = 1 + (rand() < 0.3 ? int(3) : 0);
  for (let r = 0; r < rounds; r++) {
    const node = pick(seed.boxes);
    const { h } = node;
    switch (int(7)) {
      case 0: {
        const n = 1 + int(8);
        for (let i = 0; i < n; i++) {
          const at = rand() < 0.85 ? structural() : int(bytes.length);
          if (at < bytes.length) bytes[at] = (bytes[at] ?? 0) ^ (1 << int(8));
        }
        what.push(`${n} bit flips`);
        break;
      }
      case 1: {
        const v = rand() < 0.5 ? u32() : pick([h.size - 1, h.size + 1, h.size * 2, h.size + 8, bytes.length - h.offset, bytes.length]);
        put32(bytes, h.offset, v >>> 0);
        what.push(`size of ${h.type}@${h.offset} = ${v >>> 0}`);
        break;
      }
      case 2: {
        const t = rand() < 0.8 ? pick(TYPES) : String.fromCharCode(int(256), int(256), int(256), int(256));
        for (let i = 0; i < 4; i++) bytes[h.offset + 4 + i] = t.charCodeAt(i);
        what.push(`type of ${h.type}@${h.offset} = ${JSON.stringify(t)}`);
        break;
      }
      case 3: {
        // a count, flag or field inside the first bytes of the payload
        const at = h.offset + h.headerSize + 4 * int(Math.max(1, Math.min(12, Math.floor((h.size - h.headerSize) / 4))));
        const v = u32();
        if (at + 4 <= h.offset + h.size) put32(bytes, at, v);
        what.push(`u32 at ${at} in ${h.type} = ${v}`);
        break;
      }
      case 4: {
        const at = rand() < 0.7 ? structural() : int(bytes.length);
        bytes = bytes.slice(0, at);
        what.push(`truncated to ${at}`);
        break;
      }
      case 5: {
        if (h.offset + h.size > bytes.length) break;
        const copy = bytes.slice(h.offset, h.offset + h.size);
        const out = new Uint8Array(bytes.length + copy.length);
        const end = h.offset + h.size;
        out.set(bytes.subarray(0, end));
        out.set(copy, end);
        out.set(bytes.subarray(end), end + copy.length);
        const fix = rand() < 0.6;
        if (fix) fixSizes(out, node.ancestors, copy.length);
        bytes = out;
        what.push(`duplicated ${h.type}@${h.offset}${fix ? ' (parents fixed)' : ''}`);
        break;
      }
      default: {
        if (h.offset + h.size > bytes.length) break;
        const out = new Uint8Array(bytes.length - h.size);
        out.set(bytes.subarray(0, h.offset));
        out.set(bytes.subarray(h.offset + h.size), h.offset);
        const fix = rand() < 0.6;
        if (fix) fixSizes(out, node.ancestors, -h.size);
        bytes = out;
        what.push(`deleted ${h.type}@${h.offset}${fix ? ' (parents fixed)' : ''}`);
      }
    }
  }
  return { bytes, what: what.join('; ') };
}

/** Demuxes `bytes` and drains up to `maxSamples` samples. Resolves 'ok' or 'media-error'; anything else throws. */
export async function runCase(bytes: Uint8Array, maxSamples: number): Promise<'ok' | 'media-error'> {
  try {
    const { samples } = await openMp4(bufferSource(bytes));
    let n = 0;
    for await (const s of samples()) {
      check(s);
      if (++n >= maxSamples) break;
    }
    return 'ok';
  } catch (e) {
    if (e instanceof MediaError) return 'media-error';
    throw e;
  }
}

/** What a sample promises, whatever the input: data within bounds, sane numbers, subsamples covering it. */
function check(s: DemuxedSample): void {
  if (!Number.isSafeInteger(s.dts) || !Number.isSafeInteger(s.cts) || !(s.data instanceof Uint8Array)) throw new Error(`bad sample ${s.index}`);
  const e = s.encryption;
  if (e !== undefined && e.subsamples.length > 0 && e.subsamples.reduce((n, x) => n + x.clear + x.protected, 0) !== s.data.length) throw new Error(`subsamples do not cover sample ${s.index}`);
}

/** The fuzz corpus: ordinary, fragmented, ffmpeg-encrypted, and our own encrypted fragments with seig groups. */
export async function corpus(options: { width: number; height: number; seconds: number; gop: number }): Promise<Seed[]> {
  const [mp4, fmp4] = await Promise.all([clip({ ...options, format: 'mp4' }), clip({ ...options, format: 'fmp4' })]);
  const tmp = mkdtempSync(join(tmpdir(), 'kf-mp4-fuzz-'));
  const enc = join(tmp, 'enc.mp4');
  let encBytes: Buffer;
  try {
    await ffmpeg(['-y', '-i', mp4, '-c', 'copy', '-encryption_scheme', 'cenc-aes-ctr', '-encryption_key', '00112233445566778899aabbccddeeff', '-encryption_kid', '0123456789abcdef0123456789abcdef', enc]);
    encBytes = readFileSync(enc);
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
  const fragBytes = readFileSync(fmp4);
  return [seedOf('mp4', readFileSync(mp4)), seedOf('fmp4', fragBytes), seedOf('ffmpeg-cenc', encBytes), seedOf('our-cenc-frag', await ourEncrypted(fragBytes))];
}

/** Our writer's encrypted fragments (fake IVs, per-NAL subsamples), the second fragment in a seig group. */
async function ourEncrypted(fmp4: Uint8Array): Promise<Uint8Array> {
  const { track, samples } = await openMp4(bufferSource(fmp4));
  const all: DemuxedSample[] = [];
  for await (const s of samples()) all.push(s);
  const kid = new Uint8Array(16).fill(7);
  const parts: Uint8Array[] = [
    buildInitSegment(
      { trackId: track.trackId, timescale: track.timescale, width: track.width, height: track.height, avcC: track.avcC },
      { protection: { scheme: 'cenc', kid, perSampleIvSize: 16, cryptByteBlock: 0, skipByteBlock: 0, originalFormat: 'avc1' }, pssh: [buildPssh(CLEARKEY_SYSTEM_ID, [kid])] },
    ),
  ];
  const groups = new Map<number, DemuxedSample[]>();
  for (const s of all) groups.set(s.fragmentIndex, [...(groups.get(s.fragmentIndex) ?? []), s]);
  for (const [f, gop] of groups) {
    const fs: FragmentSample[] = gop.map((s) => {
      const subsamples: { clear: number; protected: number }[] = [];
      for (let pos = 0; pos + 4 <= s.data.length; ) {
        const len = get32(s.data, pos);
        subsamples.push({ clear: 5, protected: len - 1 });
        pos += 4 + len;
      }
      return { size: s.data.length, duration: s.duration, isSync: s.isSync, encryption: { iv: new Uint8Array(16).fill(s.index), subsamples } };
    });
    const seigEntry = Uint8Array.of(0, 0, 1, 16, ...new Uint8Array(16).fill(f));
    const trafExtra =
      f % 2 === 1
        ? [fullBox('sgpd', 1, 0, Uint8Array.of(0x73, 0x65, 0x69, 0x67, 0, 0, 0, 20, 0, 0, 0, 1), seigEntry), fullBox('sbgp', 0, 0, Uint8Array.of(0x73, 0x65, 0x69, 0x67, 0, 0, 0, 1), u32Bytes(gop.length), u32Bytes(0x10001))]
        : [];
    const built = buildFragment({ sequenceNumber: f + 1, trackId: track.trackId, baseMediaDecodeTime: gop[0]?.dts ?? 0, samples: fs, perSampleIvSize: 16, trafExtra, ...(f === 1 ? { pssh: [buildPssh(CLEARKEY_SYSTEM_ID, [kid])] } : {}) });
    parts.push(built.header, ...gop.map((s) => s.data));
  }
  return Buffer.concat(parts);
}

function u32Bytes(v: number): Uint8Array {
  const b = new Uint8Array(4);
  put32(b, 0, v);
  return b;
}

/** Runs `cases` mutations per seed file from `baseSeed`; throws with the failing seed and mutation. */
export async function fuzz(seeds: readonly Seed[], cases: number, baseSeed: number, maxSamples: number, deadline = Infinity): Promise<{ runs: number; ok: number; mediaErrors: number }> {
  const stats = { runs: 0, ok: 0, mediaErrors: 0 };
  for (let i = 0; i < cases && Date.now() < deadline; i++) {
    for (let k = 0; k < seeds.length; k++) {
      const seed = seeds[k] as Seed;
      const caseSeed = (baseSeed + i * seeds.length + k) >>> 0;
      const { bytes, what } = mutate(seed, prng(caseSeed));
      try {
        const r = await runCase(bytes, maxSamples);
        stats.runs++;
        if (r === 'ok') stats.ok++;
        else stats.mediaErrors++;
      } catch (e) {
        throw new Error(`fuzz case seed=${caseSeed} (input ${seed.name}: ${what}) threw a non-MediaError: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`, { cause: e });
      }
    }
  }
  return stats;
}
