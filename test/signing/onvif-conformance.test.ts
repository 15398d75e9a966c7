/**
 * keyframe's signed output as ONVIF Media Signing (issue 11): 1080p25 x264, one slice (with B-frames) and four slices
 * (zerolatency) per picture,
 * intact, one P slice dropped, one byte of a P slice flipped — the cases docs/signed-video.md runs through ONVIF's
 * reference validator. Here keyframe's own verifier checks them twice: with keyframe's extension SEIs (both layers),
 * and with the extension SEIs stripped, so that only the ONVIF layer speaks (as for any other ONVIF signer; the
 * verdict then also carries the stripping, which the signed vendor info gives away).
 */
import { execFileSync } from 'node:child_process';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { clip, ffmpeg } from '../helpers/media.js';
import { NalType, nalType, splitAnnexB, writeAnnexB } from '../../src/media/h264/index.js';
import { isKeyframeSei, parseSigningSei } from '../../src/signing/sei.js';
import type { RangeStatus, ReportRange, VerificationReport } from '../../src/signing/report.js';
import { makePki, signWith, verify, type Pki } from './_setup.js';

let pki: Pki;
let dev: string;
const signed: Record<'single' | 'slices4', Uint8Array> = { single: new Uint8Array(), slices4: new Uint8Array() };

beforeAll(async () => {
  pki = await makePki();
  dev = await pki.provision('SN-ONVIF');
  // 4 s: two 2-s GOPs, so that the changes hit the second GOP (as for the reference validator)
  const base = { width: 1920, height: 1080, fps: 25, seconds: 4, gop: 50, bitrate: '4M' };
  // one slice per picture needs x264 without zerolatency (its sliced threads make one slice per thread): B-frames
  signed.single = await signWith(dev, readFileSync(await clip({ ...base, zerolatency: false })));
  signed.slices4 = await signWith(dev, readFileSync(await clip({ ...base, slices: 4 })));
}, 180_000);

afterAll(async () => {
  await pki.caStore.close();
  rmSync(pki.work, { recursive: true, force: true });
});

/** Index of the `k`-th slice NAL unit of picture `frame` (0-based, counted over primary slices). */
function sliceIndex(nals: readonly Uint8Array[], frame: number, k: number): number {
  let f = -1;
  let s = 0;
  for (let i = 0; i < nals.length; i++) {
    const n = nals[i] as Uint8Array;
    const t = nalType(n);
    if (t !== NalType.SLICE && t !== NalType.IDR) continue;
    if (((n[1] ?? 0) & 0x80) !== 0) {
      f++;
      s = 0;
    } else s++;
    if (f === frame && s === k) return i;
  }
  throw new Error(`no slice ${k} in frame ${frame}`);
}

function dropped(data: Uint8Array, frame: number, k: number): Uint8Array {
  const nals = splitAnnexB(data);
  nals.splice(sliceIndex(nals, frame, k), 1);
  return writeAnnexB(nals);
}

/** Flips one byte in the middle of a slice, where no start code can appear. */
function flipped(data: Uint8Array, frame: number, k: number): Uint8Array {
  const nals = splitAnnexB(data);
  const i = sliceIndex(nals, frame, k);
  const nal = Uint8Array.from(nals[i] as Uint8Array);
  let p = nal.length >> 1;
  while ((nal[p] as number) === 0 || (nal[p - 1] as number) === 0 || (nal[p + 1] as number) === 0 || ((nal[p] as number) ^ 0x10) < 4) p++;
  nal[p] = (nal[p] as number) ^ 0x10;
  nals[i] = nal;
  return writeAnnexB(nals);
}

function onvifOnly(data: Uint8Array): Uint8Array {
  return writeAnnexB(splitAnnexB(data).filter((n) => !isKeyframeSei(n)));
}

const STRIPPED = "keyframe's extension SEIs are missing from a keyframe camera's stream (stripped)";

/** The ranges of a status, without the marker for keyframe's stripped SEIs. */
function ranges(r: VerificationReport, status: RangeStatus): ReportRange[] {
  return r.sessions.flatMap((s) => s.ranges.filter((g) => g.status === status && g.reason !== STRIPPED));
}

const check = (data: Uint8Array): Promise<VerificationReport> => verify(data, { roots: [pki.root] });

describe.each(['single', 'slices4'] as const)('1080p25 x264, %s', (kind) => {
  it('slices per picture', () => {
    const nals = splitAnnexB(signed[kind]).filter((n) => nalType(n) === NalType.SLICE || nalType(n) === NalType.IDR);
    expect(nals.length).toBe(kind === 'single' ? 100 : 400);
  });

  it('the signing SEIs: an ONVIF certificate SEI, an ONVIF SEI with a hash list per GOP, right before a primary slice', () => {
    const nals = splitAnnexB(signed[kind]);
    const onvif = nals.flatMap((n, i) => {
      const p = parseSigningSei(n);
      return p?.kind === 'onvif' ? [{ p, next: nals[i + 1] as Uint8Array }] : [];
    });
    expect(onvif.map((o) => o.p.certificate)).toEqual([true, false, false]);
    expect(onvif[0]?.p.tags).toEqual([4, 5, 6, 3]);
    expect(onvif[0]?.p.reserved).toBe(0x80);
    expect(onvif.slice(1).map((o) => [o.p.reserved, o.p.tags])).toEqual([
      [0, [1, 2, 3]],
      [0, [1, 2, 3]],
    ]);
    // the certificate TLV: the chain without the root (device certificate and intermediate)
    expect(onvif[0]?.p.certificates[0]?.chainPem.match(/BEGIN CERTIFICATE/g)).toHaveLength(2);
    // placement: each ONVIF SEI is followed by another signing SEI or a primary slice; the last closes the stream
    for (const o of onvif.slice(0, -1)) {
      const t = nalType(o.next);
      expect(t === NalType.SEI || ((t === NalType.SLICE || t === NalType.IDR) && ((o.next[1] ?? 0) & 0x80) !== 0)).toBe(true);
    }
  });

  it('intact: AUTHENTIC, both layers', async () => {
    const r = await check(signed[kind]);
    expect(r.verdict).toBe('AUTHENTIC');
    expect(r.sessions[0]?.format).toBe('keyframe');
    expect(r.sessions[0]?.onvif).toMatchObject({ gops: 2, valid: 2, invalid: 0 });
    const o = await check(onvifOnly(signed[kind]));
    expect(o.sessions[0]?.format).toBe('onvif');
    expect(ranges(o, 'tampered')).toEqual([]);
    expect(ranges(o, 'missing')).toEqual([]);
    expect(o.sessions[0]?.missingGuarantees?.some((m) => m.startsWith('cut end not detectable'))).toBe(true);
    expect(ranges(o, 'authentic')).toMatchObject([{ firstFrame: 0, lastFrame: 99, inputFirst: 0, inputLast: 99 }]);
  });

  it('one P slice of frame 60 dropped: keyframe names the frame; the ONVIF layer alone reports it missing', async () => {
    const d = dropped(signed[kind], 60, kind === 'single' ? 0 : 2);
    const r = await check(d);
    const o = await check(onvifOnly(d));
    expect(ranges(o, 'tampered')).toEqual([]);
    if (kind === 'single') {
      expect(r.verdict).toBe('AUTHENTIC_WITH_GAPS');
      expect(ranges(r, 'missing')).toMatchObject([{ firstFrame: 60, lastFrame: 60, start: 2.4 }]);
      expect(ranges(o, 'missing')).toMatchObject([{ firstFrame: 60, lastFrame: 60, reason: '1 signed slice missing (1 frame)' }]);
    } else {
      // a picture missing one of its four slices is a changed picture for keyframe (its frame hash covers them all)
      expect(r.verdict).toBe('NOT_AUTHENTIC');
      expect(ranges(r, 'tampered')).toMatchObject([{ firstFrame: 60, lastFrame: 60, inputFirst: 60, inputLast: 60, reason: 'frame modified' }]);
      expect(ranges(o, 'missing')).toHaveLength(1);
      expect(ranges(o, 'missing')[0]?.reason).toMatch(/^1 signed slice missing/);
    }
  });

  it('one byte of a P slice of frame 60 flipped: NOT_AUTHENTIC, frame 60 modified, in both layers', async () => {
    const f = flipped(signed[kind], 60, kind === 'single' ? 0 : 1);
    for (const r of [await check(f), await check(onvifOnly(f))]) {
      expect(r.verdict).toBe('NOT_AUTHENTIC');
      expect(ranges(r, 'tampered')).toMatchObject([{ firstFrame: 60, lastFrame: 60, inputFirst: 60, inputLast: 60, reason: 'frame modified' }]);
      expect(ranges(r, 'authentic').map((g) => [g.inputFirst, g.inputLast])).toEqual([
        [0, 59],
        [61, 99],
      ]);
    }
  });

  it("keyframe's SEIs stripped from a keyframe camera's stream: NOT_AUTHENTIC (the certificate SEI's vendor info names keyframe)", async () => {
    const r = await check(onvifOnly(signed[kind]));
    // the vendor info is signed: it says a keyframe firmware made the stream, so the extension is missing
    expect(r.verdict).toBe('NOT_AUTHENTIC');
    expect(r.sessions[0]?.ranges[0]).toMatchObject({ status: 'tampered', reason: STRIPPED });
    expect(r.sessions[0]?.ranges.slice(1)).toMatchObject([{ status: 'authentic', firstFrame: 0, lastFrame: 99 }]);
  });

  it('after GStreamer h264parse (AUDs added) and after an MP4 round trip: AUTHENTIC', async () => {
    const input = join(pki.work, `${kind}-in.h264`);
    const output = join(pki.work, `${kind}-gst.h264`);
    writeFileSync(input, signed[kind]);
    execFileSync('gst-launch-1.0', ['-q', 'filesrc', `location=${input}`, '!', 'h264parse', '!', 'video/x-h264,stream-format=byte-stream,alignment=au', '!', 'filesink', `location=${output}`]);
    const gst = readFileSync(output);
    const before = splitAnnexB(signed[kind]);
    const after = splitAnnexB(gst);
    expect(after.filter((n) => nalType(n) === NalType.AUD).length).toBeGreaterThan(before.filter((n) => nalType(n) === NalType.AUD).length);
    expect((await check(gst)).verdict).toBe('AUTHENTIC');
    const mp4 = await ffmpeg(['-f', 'h264', '-i', '-', '-c', 'copy', '-movflags', 'frag_keyframe+empty_moov', '-f', 'mp4', '-'], signed[kind]);
    const back = new Uint8Array(await ffmpeg(['-f', 'mp4', '-i', '-', '-c', 'copy', '-bsf:v', 'h264_mp4toannexb', '-f', 'h264', '-'], mp4));
    expect((await check(back)).verdict).toBe('AUTHENTIC');
  });
});

describe("an SEI before the stream's first SPS (as in ONVIF's test clips)", () => {
  it('is not covered (GStreamer 1.22 h264parse drops it there): intact, without it, and through h264parse AUTHENTIC; after the SPS, covered', async () => {
    const nals = splitAnnexB(readFileSync(await clip({ width: 320, height: 240, fps: 25, seconds: 2, gop: 25 })));
    const k = nals.findIndex((n) => nalType(n) === NalType.SEI);
    expect(nalType(nals[0] as Uint8Array)).toBe(NalType.SPS);
    expect(k).toBeGreaterThan(0);
    const sei = nals[k] as Uint8Array;
    const source = writeAnnexB([sei, ...nals.filter((_, i) => i !== k)]);
    const s = splitAnnexB(await signWith(dev, source));
    expect(Buffer.from(s[0] ?? []).equals(Buffer.from(sei))).toBe(true);
    expect((await check(writeAnnexB(s))).verdict).toBe('AUTHENTIC');
    expect((await check(writeAnnexB(s.slice(1)))).verdict).toBe('AUTHENTIC');
    const input = join(pki.work, 'sei-first.h264');
    const output = join(pki.work, 'sei-first-gst.h264');
    writeFileSync(input, writeAnnexB(s));
    execFileSync('gst-launch-1.0', ['-q', 'filesrc', `location=${input}`, '!', 'h264parse', '!', 'video/x-h264,stream-format=byte-stream,alignment=au', '!', 'filesink', `location=${output}`]);
    const gst = splitAnnexB(readFileSync(output));
    expect(gst.some((n) => Buffer.from(n).equals(Buffer.from(sei)))).toBe(false);
    expect((await check(writeAnnexB(gst))).verdict).toBe('AUTHENTIC');
    // the same SEI after the first SPS is covered: moved there, frame 0 is changed
    const r = await check(writeAnnexB([s[1] as Uint8Array, sei, ...s.slice(2)]));
    expect(r.verdict).toBe('NOT_AUTHENTIC');
    expect(ranges(r, 'tampered')).toMatchObject([{ firstFrame: 0, lastFrame: 0, reason: 'frame modified' }]);
  });
});
