/**
 * The acceptance of the encrypted-video issue, with ffmpeg as the independent oracle. Hashes are compared,
 * never exit codes (ffmpeg exits 0 on garbage, and a wrong key gives no crypto error).
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.js';
import { clip, ffmpeg, frameHash, frameMd5s, packetHash } from '../helpers/media.js';

const KEY = '00112233445566778899aabbccddeeff';
const KID = '0123456789abcdef0123456789abcdef';
const WRONG = 'ffeeddccbbaa99887766554433221100';
let work: string;
let srcMp4: string;
let srcH264: string;

function ffprobe(args: string[], input: Buffer): Promise<string> {
  return new Promise((resolvePromise, reject) => {
    const child = execFile('ffprobe', ['-v', 'error', ...args, '-f', 'mp4', '-'], { maxBuffer: 1 << 26 }, (err, stdout, stderr) =>
      err ? reject(new Error(`${err.message}\n${stderr}`)) : resolvePromise(stdout),
    );
    child.stdin?.on('error', () => undefined);
    child.stdin?.end(input);
  });
}

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'kf-cenc-'));
  // 1080p 4 Mbit/s, GOP 2 s: 6 fragments. Two slices, pinned: unpinned, zerolatency x264 makes one slice per CPU,
  // and from 4 slices on the per-NAL subsample entries alone exceed the 0.2 % asserted below.
  const camera = { width: 1920, height: 1080, seconds: 12, gop: 60, bitrate: '4M', slices: 2 } as const;
  srcMp4 = await clip({ ...camera, format: 'mp4' });
  srcH264 = await clip({ ...camera, format: 'h264' });
}, 240_000);

afterAll(() => rmSync(work, { recursive: true, force: true }));

describe.each(['cbcs', 'cenc'] as const)('%s', (scheme) => {
  let out: string;
  let clearFrames: string[];

  beforeAll(async () => {
    out = join(work, `${scheme}.mp4`);
    const r = await runCli(['package', srcMp4, '--out', out, '--scheme', scheme, '--key', KEY, '--kid', KID]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/in 6 fragments/);
    clearFrames = await frameMd5s(srcMp4);
  }, 240_000);

  it('ffmpeg decrypts it through a pipe to the clear packets and the clear pictures', async () => {
    expect(await packetHash(out, { key: KEY, pipe: true })).toBe(await packetHash(srcMp4));
    expect(await frameHash(out, { key: KEY, pipe: true })).toBe(await frameHash(srcMp4));
  });

  it('without the key no frame decodes to the clear picture, yet ffprobe still sees a standard H.264 stream', async () => {
    // the decoder may reject frames outright (cenc leaves even the slice header encrypted) or produce noise:
    // either way no decoded frame may equal any clear frame
    const garbled = await frameMd5s(out, { pipe: true, garbled: true });
    expect(clearFrames.length).toBe(360);
    const clearSet = new Set(clearFrames);
    expect(garbled.filter((md5) => clearSet.has(md5))).toEqual([]);
    const probe = JSON.parse(
      await ffprobe(['-count_packets', '-show_entries', 'stream=codec_name,width,height,nb_read_packets', '-of', 'json'], readFileSync(out)),
    ) as { streams: { codec_name: string; width: number; height: number; nb_read_packets: string }[] };
    expect(probe.streams[0]).toMatchObject({ codec_name: 'h264', width: 1920, height: 1080, nb_read_packets: '360' });
  });

  it('with a wrong key ffmpeg gets garbage (CENC has no integrity) — and keyframe decrypt refuses the key', async () => {
    const wrong = await frameMd5s(out, { key: WRONG, pipe: true, garbled: true });
    const clearSet = new Set(clearFrames);
    expect(wrong.filter((md5) => clearSet.has(md5))).toEqual([]);
    const dec = join(work, `${scheme}-wrong.mp4`);
    const r = await runCli(['decrypt', out, '--key', WRONG, '--out', dec]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^keyframe: wrong key for KID 0123456789abcdef0123456789abcdef/);
    expect(existsSync(dec)).toBe(false);
  });

  it('keyframe decrypt gives back the clear packets, with the key verified', async () => {
    const dec = join(work, `${scheme}-dec.mp4`);
    const r = await runCli(['decrypt', out, '--key', `${KID}:${KEY}`, '--out', dec]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/key verified/);
    expect(await packetHash(dec, { pipe: true })).toBe(await packetHash(srcMp4));
  });

  it('adds at most 0.2 % to a clear fragmented MP4 of the same fragmentation (1080p, 4 Mbit/s)', async () => {
    const clear = join(work, `${scheme}-clear.mp4`);
    const r = await runCli(['package', srcMp4, '--out', clear, '--scheme', 'none']);
    expect(r.code, r.stderr).toBe(0);
    const videoBytes = Number(/: (\d+) of video/.exec(r.stdout)?.[1]);
    const added = statSync(out).size - statSync(clear).size;
    expect(added).toBeGreaterThan(0);
    expect(added / videoBytes).toBeLessThanOrEqual(0.002);
  });
});

describe('Annex-B input (a camera elementary stream)', () => {
  it('packages a .h264 stream; ffmpeg decrypts it to the same pictures as the source', async () => {
    const out = join(work, 'annexb-cbcs.mp4');
    const r = await runCli(['package', srcH264, '--out', out, '--key', KEY, '--kid', KID]);
    expect(r.code, r.stderr).toBe(0);
    expect(await frameMd5s(out, { key: KEY, pipe: true })).toEqual(await frameMd5s(srcH264));
  });

  it('multi-slice pictures (zerolatency, 4 slices) survive cbcs with every slice header clear', async () => {
    const src = await clip({ width: 1280, height: 720, seconds: 4, gop: 30, slices: 4, format: 'h264' });
    const out = join(work, 'slices-cbcs.mp4');
    expect((await runCli(['package', src, '--out', out, '--key', KEY, '--kid', KID])).code).toBe(0);
    expect(await frameMd5s(out, { key: KEY, pipe: true })).toEqual(await frameMd5s(src));
  });
});

describe("ffmpeg's own cenc-aes-ctr output", () => {
  it('keyframe decrypt turns it into the clear packets (senc in stbl, absolute saio), saying the key could not be checked', async () => {
    const enc = join(work, 'ffmpeg-cenc.mp4');
    await ffmpeg(['-y', '-i', srcMp4, '-c', 'copy', '-encryption_scheme', 'cenc-aes-ctr', '-encryption_key', KEY, '-encryption_kid', KID, enc]);
    const dec = join(work, 'ffmpeg-cenc-dec.mp4');
    const r = await runCli(['decrypt', enc, '--key', KEY, '--out', dec]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/key NOT verifiable/);
    expect(await packetHash(dec, { pipe: true })).toBe(await packetHash(srcMp4));
  });
});
