/**
 * checkPicture walks CAVLC slice data macroblock by macroblock (media/h264/completeness.ts). On real x264 clips
 * every picture walks to its stop bit and covers the picture (this also pins the VLC tables: one wrong codeword
 * derails the walk); every cut of the last NAL unit is found; what the walk does not cover says 'unknown'.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { AccessUnitAssembler, checkPicture, splitAnnexB } from '../../../src/media/h264/index.js';
import { MediaError } from '../../../src/errors.js';
import { clip } from '../../helpers/media.js';

function statuses(data: Uint8Array): { counts: Record<string, number>; last: ReturnType<typeof checkPicture> | 'header cut' } {
  const a = new AccessUnitAssembler();
  const nals = splitAnnexB(data);
  const aus = nals.slice(0, -1).flatMap((n) => a.push(n));
  try {
    aus.push(...a.push(nals[nals.length - 1] as Uint8Array));
  } catch (e) {
    if (!(e instanceof MediaError)) throw e;
    return { counts: {}, last: 'header cut' };
  }
  aus.push(...a.flush());
  const counts: Record<string, number> = {};
  let last: ReturnType<typeof checkPicture> | undefined;
  for (const au of aus) {
    last = checkPicture(au.nals, a.sps, a.pps);
    counts[last.status] = (counts[last.status] ?? 0) + 1;
  }
  return { counts, last: last as ReturnType<typeof checkPicture> };
}

describe('checkPicture', () => {
  it('every picture of CAVLC x264 clips is complete: I and P, one and four slices, small and 720p', async () => {
    const clips = [
      { o: { width: 320, height: 240, fps: 25, seconds: 2, gop: 25 }, n: 50 },
      { o: { width: 320, height: 240, fps: 25, seconds: 2, gop: 25, slices: 4 }, n: 50 },
      { o: { width: 1280, height: 720, fps: 30, seconds: 1, gop: 30, bitrate: '4M' }, n: 30 },
      { o: { width: 176, height: 144, fps: 10, seconds: 2, gop: 5, bitrate: '50k' }, n: 20 },
    ];
    for (const { o, n } of clips) {
      const { counts } = statuses(readFileSync(await clip(o)));
      expect(counts, JSON.stringify(o)).toEqual({ complete: n });
    }
  }, 240_000);

  it('finds every cut of the last NAL unit of a picture', async () => {
    const data = readFileSync(await clip({ width: 176, height: 144, fps: 10, seconds: 1, gop: 10 }));
    const nals = splitAnnexB(data);
    const start = (nals[nals.length - 1] as Uint8Array).byteOffset - data.byteOffset;
    let cuts = 0;
    for (let end = start + 1; end < data.length; end++) {
      const { last } = statuses(data.subarray(0, end));
      if (last !== 'header cut') expect(last.status, `cut at ${end} of ${data.length}`).toBe('incomplete');
      cuts++;
    }
    expect(cuts).toBeGreaterThan(100);
  }, 240_000);

  it("says 'unknown' for CABAC, which it does not walk", async () => {
    const { counts } = statuses(readFileSync(await clip({ width: 320, height: 240, fps: 25, seconds: 1, gop: 25, preset: 'veryfast' })));
    expect(Object.keys(counts)).toEqual(['unknown']);
  }, 240_000);
});
