/**
 * The demuxer on real files from its two sources: the file source reads ranges (not the whole file) and closes;
 * a truncated recording gives its complete fragments, then a MediaError; errors carry file offsets.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MediaError, NotFoundError } from '../../../src/errors.js';
import { bufferSource, fileSource, findBoxes, openMp4 } from '../../../src/media/mp4/index.js';
import type { DemuxedSample, Mp4Source } from '../../../src/media/mp4/index.js';
import { clip } from '../../helpers/media.js';

const SMALL = { width: 320, height: 240, seconds: 1, gop: 10 } as const;
const dir = mkdtempSync(join(tmpdir(), 'kf-mp4-demux-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function drain(source: Mp4Source): Promise<{ samples: DemuxedSample[]; error?: unknown }> {
  const samples: DemuxedSample[] = [];
  try {
    const d = await openMp4(source);
    for await (const s of d.samples()) samples.push(s);
    return { samples };
  } catch (error) {
    return { samples, error };
  }
}

/** A source that records what is read. */
function counting(buf: Uint8Array): Mp4Source & { reads: [number, number][] } {
  const inner = bufferSource(buf);
  const reads: [number, number][] = [];
  return {
    size: inner.size,
    reads,
    read(offset, length) {
      reads.push([offset, length]);
      return inner.read(offset, length);
    },
  };
}

let mp4: Buffer;
let fmp4: Buffer;
let fmp4Path: string;

beforeAll(async () => {
  fmp4Path = await clip({ ...SMALL, format: 'fmp4' });
  mp4 = readFileSync(await clip({ ...SMALL, format: 'mp4' }));
  fmp4 = readFileSync(fmp4Path);
});

describe('sources', () => {
  it('fileSource gives the same samples as bufferSource, reads ranges and closes', async () => {
    const source = await fileSource(fmp4Path);
    const fromFile = await drain(source);
    await source.close();
    const fromBuffer = await drain(bufferSource(fmp4));
    expect(fromFile.error).toBeUndefined();
    expect(fromFile.samples.map((s) => [s.dts, s.isSync, Buffer.from(s.data).toString('hex')])).toEqual(fromBuffer.samples.map((s) => [s.dts, s.isSync, Buffer.from(s.data).toString('hex')]));
    await expect(source.read(0, 8)).rejects.toThrow();
    await expect(fileSource(join(dir, 'missing.mp4'))).rejects.toThrow(NotFoundError);
    await expect(fileSource(dir)).rejects.toThrow(MediaError);
    const src = bufferSource(new Uint8Array(10));
    await expect(src.read(8, 4)).rejects.toThrow(MediaError);
    await expect(src.read(-1, 1)).rejects.toThrow(MediaError);
  });

  it('a fragmented file is read one moof and one sample at a time: no read spans two fragments', async () => {
    const source = counting(fmp4);
    const { samples, error } = await drain(source);
    expect(error).toBeUndefined();
    expect(samples.length).toBe(30);
    // the largest read is a moov, a moof or one sample — never a fragment's mdat, let alone the file
    const boxes = [...findBoxes(fmp4, ['moov']), ...findBoxes(fmp4, ['moof'])];
    const largest = Math.max(32, ...boxes.map((b) => b.size), ...samples.map((s) => s.data.length));
    expect(Math.max(...source.reads.map(([, n]) => n))).toBe(largest);
    const mdats = findBoxes(fmp4, ['mdat']);
    expect(source.reads.every(([, n]) => mdats.every((m) => n < m.size - 8))).toBe(true);
  });
});

describe('damaged files', () => {
  it('a fragmented recording cut inside its last mdat yields the complete fragments, then a MediaError', async () => {
    const moofs = findBoxes(fmp4, ['moof']);
    const last = moofs[moofs.length - 1];
    if (last === undefined) throw new Error('no moof');
    const cut = fmp4.subarray(0, last.offset + last.size + 100);
    const { samples, error } = await drain(bufferSource(cut));
    expect(error).toBeInstanceOf(MediaError);
    const complete = (await drain(bufferSource(fmp4))).samples.filter((s) => s.fragmentIndex < moofs.length - 1);
    expect(samples.length).toBeGreaterThanOrEqual(complete.length);
    expect(samples.slice(0, complete.length).map((s) => s.dts)).toEqual(complete.map((s) => s.dts));
  });

  it('an ordinary file without its moov, or with a moov cut short, is a MediaError naming where', async () => {
    const moov = findBoxes(mp4, ['moov'])[0];
    if (moov === undefined) throw new Error('no moov');
    const noMoov = (await drain(bufferSource(mp4.subarray(0, moov.offset)))).error;
    expect(noMoov).toBeInstanceOf(MediaError);
    expect((noMoov as Error).message).toMatch(/no moov/);
    const cut = (await drain(bufferSource(mp4.subarray(0, moov.offset + 100)))).error as MediaError;
    expect(cut).toBeInstanceOf(MediaError);
    expect(cut.message).toMatch(/'moov'.*runs past the end/);
    expect(cut.offset).toBe(moov.offset);
  });

  it('an error deep inside moov carries its file offset', async () => {
    const bad = Buffer.from(mp4);
    const [stsz] = findBoxes(bad, ['moov', 'trak', 'mdia', 'minf', 'stbl', 'stsz']);
    if (stsz === undefined) throw new Error('no stsz');
    bad.writeUInt32BE(0x10000, stsz.offset + 16); // sample_count far beyond the table
    const { error } = await drain(bufferSource(bad));
    expect(error).toBeInstanceOf(MediaError);
    expect((error as Error).message).toMatch(/65536 entry_size entries of 4 bytes do not fit/);
    expect((error as MediaError).offset).toBe(stsz.offset + 20);
  });

  it('samples written outside the file are refused, not read', async () => {
    const bad = Buffer.from(mp4);
    const [stco] = findBoxes(bad, ['moov', 'trak', 'mdia', 'minf', 'stbl', 'stco']);
    if (stco === undefined) throw new Error('no stco');
    bad.writeUInt32BE(bad.length - 10, stco.offset + 16);
    const { samples, error } = await drain(bufferSource(bad));
    expect(samples.length).toBe(0);
    expect((error as Error).message).toMatch(/sample 0: \d+ bytes at \d+ lie outside/);
    writeFileSync(join(dir, 'bad.mp4'), bad);
    const source = await fileSource(join(dir, 'bad.mp4'));
    await expect(drain(source).then((r) => Promise.reject(r.error as Error))).rejects.toThrow(MediaError);
    await source.close();
  });
});
