/**
 * No false positive (issue 4): 50 random real x264 clips — size, frame rate, length, GOP, slices, B-frames,
 * preset, bitrate, unit length all drawn from a seeded generator — are each signed by a provisioned camera and
 * must verify AUTHENTIC, every frame authentic, the signed stream being the source plus signing SEIs only.
 * Clips are small (at most 426×240, 1–3 s) and cached like every test clip (test/helpers/media.ts).
 */
import { readFileSync, rmSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { clip, type ClipOptions } from '../helpers/media.js';
import { splitAnnexB } from '../../src/media/h264/index.js';
import { openDevice } from '../../src/pki/device.js';
import { signAnnexB } from '../../src/signing/device.js';
import { parseSigningSei } from '../../src/signing/sei.js';
import { makePki, verify, type Pki } from './_setup.js';

const CLIPS = 50;

interface Case {
  readonly clip: ClipOptions & { fps: number; seconds: number; gop: number };
  readonly maxUnitSeconds: number;
}

/** The cases, from a fixed seed (a 31-bit LCG), so that every run sees the same clips. */
function cases(): Case[] {
  let seed = 0x5eed4;
  const rnd = (n: number): number => {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    return Math.floor((seed / 2 ** 31) * n);
  };
  const pick = <T>(xs: readonly T[]): T => xs[rnd(xs.length)] as T;
  return Array.from({ length: CLIPS }, () => {
    const fps = pick([5, 10, 12, 15, 24, 25, 30, 50, 60]);
    const clipOptions = {
      width: 160 + 2 * rnd(134), // 160–426, even (4:2:0)
      height: 90 + 2 * rnd(76), // 90–240
      fps,
      seconds: 1 + rnd(3),
      gop: 1 + rnd(fps * 3), // all-intra to 3 s GOPs (longer GOPs are split into partial-GOP units)
      slices: 1 + rnd(4),
      zerolatency: rnd(4) !== 0, // otherwise B-frames
      preset: pick(['ultrafast', 'superfast', 'veryfast']),
      bitrate: pick(['', '', '1M', '2M']),
    };
    return { clip: clipOptions, maxUnitSeconds: pick([0.5, 1, 1, 2]) };
  });
}

const all = cases();
let pki: Pki;
let dev: string;
const paths: string[] = [];

beforeAll(async () => {
  pki = await makePki();
  dev = await pki.provision('SN-RANDOM');
  // made two at a time (and cached for later runs)
  for (let i = 0; i < all.length; i += 2) paths.push(...(await Promise.all(all.slice(i, i + 2).map((c) => clip(c.clip)))));
}, 300_000);

afterAll(async () => {
  await pki.caStore.close();
  rmSync(pki.work, { recursive: true, force: true });
});

describe(`${CLIPS} random clips`, () => {
  it('cover the space: sizes, rates, GOPs, slices, B-frames, presets, bitrates, unit lengths', () => {
    const distinct = (f: (c: Case) => unknown): number => new Set(all.map((c) => JSON.stringify(f(c)))).size;
    expect(distinct((c) => c.clip.fps)).toBeGreaterThanOrEqual(6);
    expect(distinct((c) => c.clip.slices)).toBe(4);
    expect(distinct((c) => c.clip.zerolatency)).toBe(2);
    expect(distinct((c) => c.clip.preset)).toBe(3);
    expect(distinct((c) => c.clip.bitrate)).toBe(3);
    expect(distinct((c) => c.maxUnitSeconds)).toBe(3);
    expect(distinct((c) => [c.clip.width, c.clip.height])).toBeGreaterThanOrEqual(45);
    expect(all.some((c) => c.clip.gop === 1)).toBe(true);
    expect(all.some((c) => c.clip.gop > c.clip.fps * c.maxUnitSeconds)).toBe(true);
  });

  it.each(all.map((c, i) => [i, c] as const))('clip %i is AUTHENTIC, every frame (%j)', async (i, c) => {
    const source = readFileSync(paths[i] as string);
    const device = await openDevice(dev);
    let signed: Uint8Array;
    try {
      signed = (await signAnnexB(device, source, { maxUnitSeconds: c.maxUnitSeconds })).output;
    } finally {
      await device.close();
    }
    const frames = c.clip.fps * c.clip.seconds;
    const r = await verify(signed, { roots: [pki.root] });
    expect(r.verdict).toBe('AUTHENTIC');
    expect(r.frames).toBe(frames);
    expect(r.sessions).toHaveLength(1);
    expect(r.sessions[0]?.ranges).toMatchObject([{ status: 'authentic', firstFrame: 0, lastFrame: frames - 1, inputFirst: 0, inputLast: frames - 1 }]);
    expect(r.sessions[0]?.endMarker).toBe(true);
    // the signed stream is the source plus signing SEIs, nothing else
    const plain = splitAnnexB(signed).filter((n) => parseSigningSei(n) === undefined);
    expect(Buffer.concat(plain).equals(Buffer.concat(splitAnnexB(source)))).toBe(true);
  });
});
