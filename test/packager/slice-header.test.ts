/**
 * cbcs leaves every slice header clear: the encrypted samples of a multi-slice stream still parse, slice by
 * slice, to the very same headers as the clear samples — without the key.
 */
import { describe, expect, it } from 'vitest';
import { parsePps, parseSliceHeader, parseSps, splitLengthPrefixed } from '../../src/media/h264/index.js';
import type { Pps, Sps } from '../../src/media/h264/index.js';
import { bufferSource, openMp4 } from '../../src/media/mp4/index.js';
import { openInput } from '../../src/packager/input.js';
import { emptyStats, packageChunks } from '../../src/packager/package.js';
import { clip } from '../helpers/media.js';

async function collect(chunks: AsyncIterable<Uint8Array>): Promise<Buffer> {
  const parts: Uint8Array[] = [];
  for await (const c of chunks) parts.push(c);
  return Buffer.concat(parts);
}

async function headers(file: Uint8Array): Promise<{ headers: string[]; encrypted: boolean }> {
  const { track, samples } = await openMp4(bufferSource(file));
  const sps = new Map<number, Sps>();
  const pps = new Map<number, Pps>();
  for (const n of track.avcC.sps) {
    const s = parseSps(n);
    sps.set(s.spsId, s);
  }
  for (const n of track.avcC.pps) {
    const p = parsePps(n, sps);
    pps.set(p.ppsId, p);
  }
  const out: string[] = [];
  for await (const s of samples()) {
    for (const nal of splitLengthPrefixed(s.data, track.avcC.lengthSize)) {
      const t = (nal[0] ?? 0) & 0x1f;
      if (t !== 1 && t !== 5) continue;
      const h = parseSliceHeader(nal, sps, pps);
      out.push(JSON.stringify([h.firstMbInSlice, h.sliceType, h.frameNum, h.ppsId, h.idrPicId, h.picOrderCntLsb, h.headerBits]));
    }
  }
  return { headers: out, encrypted: track.protection !== undefined };
}

describe('cbcs keeps slice headers clear', () => {
  it('every slice header of a 4-slice stream parses identically from the encrypted samples', async () => {
    const src = await clip({ width: 1280, height: 720, seconds: 2, gop: 30, slices: 4, format: 'h264' });
    const clear = await collect(packageChunks(await openInput(src), { scheme: 'none' }, emptyStats()));
    const key = { kid: Buffer.alloc(16, 1), key: Buffer.alloc(16, 2) };
    const enc = await collect(packageChunks(await openInput(src), { scheme: 'cbcs', keyFor: () => key }, emptyStats()));
    const a = await headers(clear);
    const b = await headers(enc);
    expect(a.encrypted).toBe(false);
    expect(b.encrypted).toBe(true);
    expect(a.headers.length).toBe(60 * 4);
    expect(b.headers).toEqual(a.headers);
    expect(enc.equals(clear)).toBe(false);
  });
});
