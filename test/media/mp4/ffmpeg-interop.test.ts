/**
 * Interop with ffmpeg/ffprobe as independent implementations. Judged by packet hashes and decoded metadata,
 * never by exit codes (ffmpeg exits 0 on garbage). Multi-fragment files go to ffmpeg through a pipe
 * (interop.md §2).
 */
import { execFile } from 'node:child_process';
import { createCipheriv } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  CLEARKEY_SYSTEM_ID,
  bufferSource,
  buildFragment,
  buildInitSegment,
  buildPssh,
  fileSource,
  findBoxes,
  openMp4,
} from '../../../src/media/mp4/index.js';
import type { DemuxedSample, FragmentSample, SampleEncryption, TrackInfo, TrackProtection } from '../../../src/media/mp4/index.js';
import { clip, ffmpeg, packetHash } from '../../helpers/media.js';

const KEY = Buffer.from('00112233445566778899aabbccddeeff', 'hex');
const KID = Buffer.from('0123456789abcdef0123456789abcdef', 'hex');
/** interop.md §6: the 1080p30 "camera", 10 s, GOP 60. */
const CAMERA = { width: 1920, height: 1080, seconds: 10, gop: 60, bitrate: '4M' } as const;

const dir = mkdtempSync(join(tmpdir(), 'kf-mp4-interop-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const hex = (b: Uint8Array | undefined): string => Buffer.from(b ?? []).toString('hex');

function ffprobe(args: readonly string[], input?: Uint8Array): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = execFile('ffprobe', ['-hide_banner', '-v', 'error', ...args], { maxBuffer: 1 << 26 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`ffprobe ${args.join(' ')}: ${err.message}\n${stderr}`));
      else resolve(stdout);
    });
    // ffprobe may stop reading once it has what it needs: a closed pipe is not an error here
    child.stdin?.on('error', () => undefined);
    if (input !== undefined) child.stdin?.end(input);
  });
}

async function demux(path: string): Promise<{ track: TrackInfo; samples: DemuxedSample[] }> {
  const source = await fileSource(path);
  try {
    const { track, samples } = await openMp4(source);
    const all: DemuxedSample[] = [];
    for await (const s of samples()) all.push(s);
    return { track, samples: all };
  } finally {
    await source.close();
  }
}

/** Groups samples at sync samples: one CMAF fragment per GOP. */
function gops<T extends { isSync: boolean }>(samples: readonly T[]): T[][] {
  const out: T[][] = [];
  for (const s of samples) {
    if (s.isSync || out.length === 0) out.push([]);
    out[out.length - 1]?.push(s);
  }
  return out;
}

/** Writes `samples` (data already transformed) as init + one fragment per GOP; returns the file's bytes. */
function fragmented(track: TrackInfo, samples: readonly { s: DemuxedSample; data: Uint8Array; enc?: SampleEncryption }[], protection?: TrackProtection): Buffer {
  const chunks: Uint8Array[] = [
    buildInitSegment(
      { trackId: track.trackId, timescale: track.timescale, width: track.width, height: track.height, avcC: track.avcC },
      protection !== undefined ? { protection, pssh: [buildPssh(CLEARKEY_SYSTEM_ID, [KID])] } : {},
    ),
  ];
  gops(samples.map((x) => ({ ...x, isSync: x.s.isSync }))).forEach((gop, i) => {
    const fs: FragmentSample[] = gop.map(({ s, data, enc }) => ({ size: data.length, duration: s.duration, isSync: s.isSync, compositionOffset: s.cts - s.dts, ...(enc !== undefined ? { encryption: enc } : {}) }));
    const f = buildFragment({ sequenceNumber: i + 1, trackId: track.trackId, baseMediaDecodeTime: gop[0]?.s.dts ?? 0, samples: fs, ...(protection !== undefined ? { perSampleIvSize: protection.perSampleIvSize } : {}) });
    chunks.push(f.header);
    let total = f.header.length;
    for (const g of gop) {
      chunks.push(g.data);
      total += g.data.length;
    }
    expect(total).toBe(f.totalSize);
  });
  return Buffer.concat(chunks);
}

/** The NAL units of a 4-byte-length-prefixed sample: [offset of the length prefix, NAL length]. */
function nals(sample: Uint8Array): [number, number][] {
  const out: [number, number][] = [];
  const v = Buffer.from(sample.buffer, sample.byteOffset, sample.byteLength);
  for (let pos = 0; pos < v.length; ) {
    const len = v.readUInt32BE(pos);
    out.push([pos, len]);
    pos += 4 + len;
  }
  return out;
}

/** ffmpeg's subsample layout (interop.md §1.1): per NAL, the 4-byte length and the NAL header clear. */
function ffmpegLayout(sample: Uint8Array): { clear: number; protected: number }[] {
  return nals(sample).map(([, len]) => ({ clear: 5, protected: len - 1 }));
}

/** Reference CENC transforms (AES-128-CTR continuous over a sample; cbcs 1:9 with CBC restarting per subsample). */
function cencCtr(data: Uint8Array, iv: Uint8Array, subsamples: readonly { clear: number; protected: number }[]): Buffer {
  const out = Buffer.from(data);
  const counter = Buffer.concat([iv, Buffer.alloc(16 - iv.length)]);
  const ranges: [number, number][] = [];
  let pos = 0;
  for (const s of subsamples) {
    pos += s.clear;
    ranges.push([pos, s.protected]);
    pos += s.protected;
  }
  const ks = createCipheriv('aes-128-ctr', KEY, counter).update(Buffer.alloc(ranges.reduce((n, [, l]) => n + l, 0)));
  let k = 0;
  for (const [at, len] of ranges) for (let i = 0; i < len; i++) out[at + i] = (out[at + i] ?? 0) ^ (ks[k++] ?? 0);
  return out;
}

function cbcsEncrypt(data: Uint8Array, iv: Uint8Array, subsamples: readonly { clear: number; protected: number }[]): Buffer {
  const out = Buffer.from(data);
  let pos = 0;
  for (const s of subsamples) {
    pos += s.clear;
    const blocks: number[] = [];
    for (let b = 0; (b + 1) * 16 <= s.protected; b += 10) blocks.push(pos + b * 16);
    if (blocks.length > 0) {
      const cipher = createCipheriv('aes-128-cbc', KEY, iv).setAutoPadding(false);
      const enc = cipher.update(Buffer.concat(blocks.map((at) => out.subarray(at, at + 16))));
      blocks.forEach((at, i) => enc.copy(out, at, i * 16, i * 16 + 16));
    }
    pos += s.protected;
  }
  return out;
}

let clearMp4: string;
let clearFmp4: string;

beforeAll(async () => {
  [clearMp4, clearFmp4] = await Promise.all([clip({ ...CAMERA, format: 'mp4' }), clip({ ...CAMERA, format: 'fmp4' })]);
}, 240_000);

describe('ffmpeg-written MP4 → openMp4 → our fragmented MP4', () => {
  for (const format of ['mp4', 'fmp4'] as const) {
    it(`${format}: demuxed and re-muxed (one fragment per GOP), same packet hash, frame count and size in ffprobe`, async () => {
      const path = format === 'mp4' ? clearMp4 : clearFmp4;
      const { track, samples } = await demux(path);
      expect({ width: track.width, height: track.height, fragmented: track.fragmented, entry: track.sampleEntryType, protection: track.protection }).toEqual({ width: 1920, height: 1080, fragmented: format === 'fmp4', entry: 'avc1', protection: undefined });
      expect(samples.length).toBe(300);
      expect(samples.filter((s) => s.isSync).map((s) => s.index)).toEqual([0, 60, 120, 180, 240]);
      expect(samples.map((s) => s.fragmentIndex).filter((v, i, a) => a.indexOf(v) === i)).toEqual(format === 'mp4' ? [0] : [0, 1, 2, 3, 4]);
      samples.forEach((s, i) => expect(s.dts).toBe(i * (samples[1]?.dts ?? 0)));

      const out = join(dir, `remux-${format}.mp4`);
      writeFileSync(out, fragmented(track, samples.map((s) => ({ s, data: s.data }))));
      const [ours, theirs] = await Promise.all([packetHash(out, { pipe: true }), packetHash(path)]);
      expect(ours).toMatch(/^SHA256=[0-9a-f]{64}$/);
      expect(ours).toBe(theirs);
      const probe = JSON.parse(await ffprobe(['-count_frames', '-show_entries', 'stream=codec_name,width,height,nb_read_frames', '-of', 'json', '-f', 'mp4', '-'], readFileSync(out))) as { streams: Record<string, unknown>[] };
      expect(probe.streams).toEqual([{ codec_name: 'h264', width: 1920, height: 1080, nb_read_frames: '300' }]);
    });
  }

  it('B-frames: composition offsets (ctts → trun) survive the remux', async () => {
    const path = await clip({ width: 320, height: 240, seconds: 2, gop: 30, zerolatency: false, preset: 'veryfast', format: 'mp4' });
    const { track, samples } = await demux(path);
    expect(samples.some((s) => s.cts !== s.dts)).toBe(true);
    const out = join(dir, 'remux-bframes.mp4');
    writeFileSync(out, fragmented(track, samples.map((s) => ({ s, data: s.data }))));
    expect(await packetHash(out, { pipe: true })).toBe(await packetHash(path));
    const back = await demux(out);
    expect(back.samples.map((s) => [s.dts, s.cts, s.isSync])).toEqual(samples.map((s) => [s.dts, s.cts, s.isSync]));
  });

  it('an init segment and one fragment: ffprobe reads h264 with the right size', async () => {
    const { track, samples } = await demux(clearFmp4);
    const first = gops(samples)[0] ?? [];
    const bytes = fragmented(track, first.map((s) => ({ s, data: s.data })));
    const out = await ffprobe(['-show_streams', '-show_format', '-f', 'mp4', '-'], bytes);
    expect(out).toMatch(/codec_name=h264/);
    expect(out).toMatch(/\bwidth=1920\b/);
    expect(out).toMatch(/\bheight=1080\b/);
    expect(out).toMatch(/format_name=mov,mp4/);
  });
});

describe("ffmpeg's own cenc-aes-ctr output (non-fragmented: senc/saiz/saio in stbl, absolute saio offsets)", () => {
  let enc: string;
  beforeAll(async () => {
    enc = join(dir, 'enc.mp4');
    await ffmpeg(['-y', '-i', clearMp4, '-c', 'copy', '-encryption_scheme', 'cenc-aes-ctr', '-encryption_key', KEY.toString('hex'), '-encryption_kid', KID.toString('hex'), enc]);
  });

  it('reports the scheme, KID and IV size from tenc, and per-sample IVs and subsamples in ffmpeg\'s layout', async () => {
    const clear = await demux(clearMp4);
    const { track, samples } = await demux(enc);
    expect(track.sampleEntryType).toBe('encv');
    expect({ ...track.protection, kid: hex(track.protection?.kid) }).toEqual({ scheme: 'cenc', kid: KID.toString('hex'), perSampleIvSize: 8, cryptByteBlock: 0, skipByteBlock: 0, originalFormat: 'avc1' });
    expect(samples.length).toBe(clear.samples.length);
    let previousIv: bigint | undefined;
    samples.forEach((s, i) => {
      const c = clear.samples[i] as DemuxedSample;
      expect([s.dts, s.isSync, s.data.length]).toEqual([c.dts, c.isSync, c.data.length]);
      const e = s.encryption as SampleEncryption;
      expect(e.iv.length).toBe(8);
      // ffmpeg counts its IVs up by one per sample: reading the wrong bytes would break the sequence
      const iv = Buffer.from(e.iv).readBigUInt64BE(0);
      if (previousIv !== undefined) expect(iv).toBe(previousIv + 1n);
      previousIv = iv;
      expect(e.subsamples.reduce((n, x) => n + x.clear + x.protected, 0)).toBe(s.data.length);
      expect(e.subsamples).toEqual(ffmpegLayout(c.data));
      // clear ranges are identical, and the reference CTR transform gives the clear sample back
      for (const [at] of nals(c.data)) expect(hex(s.data.subarray(at, at + 5))).toBe(hex(c.data.subarray(at, at + 5)));
      expect(cencCtr(s.data, e.iv, e.subsamples).equals(Buffer.from(c.data))).toBe(true);
    });
  });

  it('the aux info saio points at (absolute offset) is senc\'s; without saiz/saio, senc alone gives the same', async () => {
    const bytes = readFileSync(enc);
    const stbl = ['moov', 'trak', 'mdia', 'minf', 'stbl'];
    const [senc] = findBoxes(bytes, [...stbl, 'senc']);
    const [saio] = findBoxes(bytes, [...stbl, 'saio']);
    expect(bytes.readUInt32BE((saio?.offset ?? 0) + 16)).toBe((senc?.offset ?? 0) + 16);
    const withAux = await openMp4(bufferSource(bytes));
    const stripped = Buffer.from(bytes);
    for (const t of ['saiz', 'saio']) for (const h of findBoxes(stripped, [...stbl, t])) stripped.write('free', h.offset + 4, 'latin1');
    const sencOnly = await openMp4(bufferSource(stripped));
    const a: (SampleEncryption | undefined)[] = [];
    const b: (SampleEncryption | undefined)[] = [];
    for await (const s of withAux.samples()) a.push(s.encryption);
    for await (const s of sencOnly.samples()) b.push(s.encryption);
    expect(b.map((e) => [hex(e?.iv), e?.subsamples])).toEqual(a.map((e) => [hex(e?.iv), e?.subsamples]));
  });
});

describe('protected init segments and fragments', () => {
  const constantIv = Buffer.from('00112233445566778899aabbccddeeff', 'hex').reverse();
  const cbcs: TrackProtection = { scheme: 'cbcs', kid: KID, perSampleIvSize: 0, constantIv, cryptByteBlock: 1, skipByteBlock: 9, originalFormat: 'avc1' };
  const cenc: TrackProtection = { scheme: 'cenc', kid: KID, perSampleIvSize: 8, cryptByteBlock: 0, skipByteBlock: 0, originalFormat: 'avc1' };

  it('cbcs with a constant IV: the sinf/tenc/pssh bytes of interop.md §1.2', async () => {
    const { track } = await demux(clearFmp4);
    const init = Buffer.from(buildInitSegment({ trackId: 1, timescale: track.timescale, width: 1920, height: 1080, avcC: track.avcC }, { protection: cbcs, pssh: [buildPssh(CLEARKEY_SYSTEM_ID, [KID])] }));
    const entry = ['moov', 'trak', 'mdia', 'minf', 'stbl', 'stsd', 'encv'];
    const one = (path: string[]) => {
      const found = findBoxes(init, path);
      expect(found.length).toBe(1);
      return found[0] as { offset: number; size: number };
    };
    const bytes = (h: { offset: number; size: number }): string => init.subarray(h.offset, h.offset + h.size).toString('hex');
    // "tenc 49 v1 pattern_byte=0x19 isProtected=1 PerSampleIVSize=0 KID=…", then the constant IV
    expect(bytes(one([...entry, 'sinf', 'schi', 'tenc']))).toBe('00000031' + '74656e63' + '01000000' + '00' + '19' + '01' + '00' + KID.toString('hex') + '10' + constantIv.toString('hex'));
    expect(bytes(one([...entry, 'sinf', 'frma']))).toBe('0000000c' + '66726d61' + '61766331');
    expect(bytes(one([...entry, 'sinf', 'schm']))).toBe('00000014' + '7363686d' + '00000000' + '63626373' + '00010000');
    expect(one([...entry, 'sinf']).size).toBe(97);
    expect(one([...entry, 'sinf', 'schi']).size).toBe(57);
    expect(one([...entry, 'avcC']).size).toBe(8 + buildAvcCLength(track));
    expect(bytes(one(['moov', 'pssh']))).toBe('00000034' + '70737368' + '01000000' + '1077efecc0b24d02ace33c1e52e2fb4b' + '00000001' + KID.toString('hex') + '00000000');
    // cenc: tenc v0, 32 bytes, per-sample IV size 8
    const cencInit = Buffer.from(buildInitSegment({ trackId: 1, timescale: 90000, width: 64, height: 64, avcC: track.avcC }, { protection: cenc }));
    const [tenc] = findBoxes(cencInit, [...entry, 'sinf', 'schi', 'tenc']);
    expect(cencInit.subarray(tenc?.offset, (tenc?.offset ?? 0) + (tenc?.size ?? 0)).toString('hex')).toBe('00000020' + '74656e63' + '00000000' + '0000' + '01' + '08' + KID.toString('hex'));
    // ffprobe maps encv back to h264 without a key
    const probe = await ffprobe(['-show_streams', '-f', 'mp4', '-'], init);
    expect(probe).toMatch(/codec_name=h264/);
    expect(probe).toMatch(/\bwidth=1920\b/);
  });

  for (const p of [cenc, cbcs]) {
    it(`${p.scheme}: our fragments (senc, saiz, saio relative to moof) decrypt in ffmpeg to the clear packet hash`, async () => {
      const { track, samples } = await demux(clearFmp4);
      let counter = 0x0102030405060708n;
      const items = samples.map((s) => {
        const subsamples = ffmpegLayout(s.data);
        if (p.scheme === 'cenc') {
          const iv = Buffer.alloc(8);
          iv.writeBigUInt64BE(counter++);
          return { s, data: cencCtr(s.data, iv, subsamples), enc: { iv, subsamples } };
        }
        return { s, data: cbcsEncrypt(s.data, constantIv, subsamples), enc: { iv: new Uint8Array(0), subsamples } };
      });
      const out = join(dir, `ours-${p.scheme}.mp4`);
      const file = fragmented(track, items, p);
      writeFileSync(out, file);
      const clearHash = await packetHash(clearFmp4);
      expect(await packetHash(out, { pipe: true, key: KEY.toString('hex') })).toBe(clearHash);
      expect(await packetHash(out, { pipe: true })).not.toBe(clearHash); // the samples really are encrypted
      // and our demuxer reads back exactly what was written
      const back = await openMp4(bufferSource(file));
      let i = 0;
      for await (const s of back.samples()) {
        const want = items[i++];
        expect([hex(s.encryption?.iv), s.encryption?.subsamples]).toEqual([hex(want?.enc.iv), want?.enc.subsamples]);
      }
      expect(i).toBe(items.length);
    });
  }
});

function buildAvcCLength(track: TrackInfo): number {
  const c = track.avcC;
  return 7 + c.sps.reduce((n, s) => n + 2 + s.length, 0) + c.pps.reduce((n, s) => n + 2 + s.length, 0) + (c.spsExt !== undefined ? 4 + c.spsExt.reduce((n, s) => n + 2 + s.length, 0) : 0);
}
