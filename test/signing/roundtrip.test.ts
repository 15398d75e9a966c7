/**
 * keyframe's signed stream survives the ordinary tools of a video pipeline (issue 11): GStreamer's h264parse
 * (`gst-launch-1.0 filesrc ! h264parse ! filesink`, which drops an SEI placed between an AUD and the SPS) and an
 * ffmpeg remux to MP4 and back to Annex-B (`-c copy`, `-bsf:v h264_mp4toannexb`). After each, `keyframe verify`
 * still says AUTHENTIC over every frame, every signing SEI is still there byte for byte and in order, and the
 * decoded pictures (ffmpeg framemd5) are those of the unsigned input.
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NalType, nalType, splitAnnexB } from '../../src/media/h264/index.js';
import type { VerificationReport } from '../../src/signing/report.js';
import { clip, ffmpeg, frameMd5s } from '../helpers/media.js';
import { makePki, runSigningCli, signWith, type Pki } from './_setup.js';

let pki: Pki;
let dev: string;
let work: string;

/**
 * `gst-launch-1.0 -q filesrc location=IN ! h264parse ! video/x-h264,stream-format=byte-stream ! filesink location=OUT`.
 * The caps keep the output Annex-B: towards a filesink, which accepts anything, h264parse 1.22 writes the
 * length-prefixed "avc" form (without its codec data: no file any tool reads back).
 */
function gstH264parse(input: string, output: string): Promise<void> {
  return new Promise((resolvePromise, reject) => {
    const pipeline = ['filesrc', `location=${input}`, '!', 'h264parse', '!', 'video/x-h264,stream-format=byte-stream', '!', 'filesink', `location=${output}`];
    execFile('gst-launch-1.0', ['-q', ...pipeline], (err, _stdout, stderr) => {
      if (err) reject(new Error(`gst-launch-1.0: ${err.message}\n${stderr}`));
      else resolvePromise();
    });
  });
}

async function keyframeVerify(path: string): Promise<VerificationReport> {
  const r = await runSigningCli(['verify', path, '--root', pki.rootPath, '--json']);
  expect(r.stderr).toBe('');
  return JSON.parse(r.stdout) as VerificationReport;
}

const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

/** SHA-256 of each SEI NAL unit, in stream order (trailing zero bytes of a NAL unit are not part of it). */
function seis(data: Uint8Array): string[] {
  return splitAnnexB(data)
    .filter((n) => nalType(n) === NalType.SEI)
    .map((n) => {
      let end = n.length;
      while (end > 1 && n[end - 1] === 0) end--;
      return sha(n.subarray(0, end));
    });
}

/** The report's verdict and its non-authentic ranges, and the input frames its authentic ranges cover. */
function summary(r: VerificationReport): { verdict: string; notAuthentic: unknown[]; authenticFrames: number } {
  const ranges = r.sessions.flatMap((s) => s.ranges);
  return {
    verdict: r.verdict,
    notAuthentic: ranges.filter((g) => g.status !== 'authentic'),
    authenticFrames: ranges.filter((g) => g.status === 'authentic').reduce((n, g) => n + ((g.inputLast ?? -1) - (g.inputFirst ?? 0) + 1), 0),
  };
}

beforeAll(async () => {
  pki = await makePki('Round Trip Cameras');
  dev = await pki.provision('SN-RT');
  work = mkdtempSync(join(tmpdir(), 'kf-roundtrip-'));
});

afterAll(async () => {
  await pki.caStore.close();
  rmSync(pki.work, { recursive: true, force: true });
  rmSync(work, { recursive: true, force: true });
});

describe.each([
  ['single-slice 640×360 25 fps, GOP 25', { width: 640, height: 360, fps: 25, seconds: 4, gop: 25 }],
  ['4 slices per picture 640×360 25 fps, GOP 25', { width: 640, height: 360, fps: 25, seconds: 4, gop: 25, slices: 4 }],
])('a keyframe-signed stream (%s)', (name, options) => {
  const tag = name.startsWith('4') ? 'ms' : 'ss';
  let unsignedPath: string;
  let signedPath: string;
  let signed: Uint8Array;
  let signingSeis: string[];
  let unsignedFrames: string[];

  beforeAll(async () => {
    unsignedPath = await clip(options);
    const source = readFileSync(unsignedPath);
    signed = await signWith(dev, source);
    signedPath = join(work, `${tag}-signed.h264`);
    writeFileSync(signedPath, signed);
    // the SEIs signing added: those of the signed stream that the unsigned input does not have
    const before = new Set(seis(source));
    signingSeis = seis(signed).filter((h) => !before.has(h));
    unsignedFrames = await frameMd5s(unsignedPath);
  });

  it('verifies AUTHENTIC as signed, and decodes to the unsigned input’s pictures', async () => {
    expect(signingSeis.length).toBeGreaterThan(0);
    const r = await keyframeVerify(signedPath);
    expect(summary(r)).toEqual({ verdict: 'AUTHENTIC', notAuthentic: [], authenticFrames: unsignedFrames.length });
    expect(r.frames).toBe(unsignedFrames.length);
    expect(await frameMd5s(signedPath)).toEqual(unsignedFrames);
  });

  it('after gst-launch-1.0 filesrc ! h264parse ! filesink: every signing SEI kept, AUTHENTIC, same pictures', async () => {
    const out = join(work, `${tag}-gst.h264`);
    await gstH264parse(signedPath, out);
    const data = readFileSync(out);
    expect(seis(data).filter((h) => signingSeis.includes(h))).toEqual(signingSeis);
    const r = await keyframeVerify(out);
    expect(summary(r)).toEqual({ verdict: 'AUTHENTIC', notAuthentic: [], authenticFrames: unsignedFrames.length });
    expect(await frameMd5s(out)).toEqual(unsignedFrames);
  });

  it('after ffmpeg -c copy to MP4 and back to Annex-B (h264_mp4toannexb): every signing SEI kept, AUTHENTIC, same pictures', async () => {
    const mp4 = join(work, `${tag}-remux.mp4`);
    const back = join(work, `${tag}-remux.h264`);
    await ffmpeg(['-y', '-f', 'h264', '-i', signedPath, '-c', 'copy', '-f', 'mp4', mp4]);
    await ffmpeg(['-y', '-i', mp4, '-c:v', 'copy', '-bsf:v', 'h264_mp4toannexb', '-f', 'h264', back]);
    const data = readFileSync(back);
    expect(sha(data)).not.toBe(sha(signed)); // the remux did rewrite the stream (start codes, parameter sets)
    expect(seis(data).filter((h) => signingSeis.includes(h))).toEqual(signingSeis);
    const r = await keyframeVerify(back);
    expect(summary(r)).toEqual({ verdict: 'AUTHENTIC', notAuthentic: [], authenticFrames: unsignedFrames.length });
    expect(await frameMd5s(back)).toEqual(unsignedFrames);
    // keyframe verify reads the MP4 itself too
    const m = await keyframeVerify(mp4);
    expect(m.verdict).toBe('AUTHENTIC');
  });
});
