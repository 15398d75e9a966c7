/** Performance sanity: splitting and access-unit assembly keep up with many cameras on one core. */
import { beforeAll, describe, expect, it } from 'vitest';
import { AccessUnitAssembler, AnnexBSplitter, GopAssembler, splitAnnexB } from '../../../src/media/h264/index.js';
import { camera1080, probe, readStream } from './_streams.js';

let data: Uint8Array;
let frames: number;

beforeAll(async () => {
  const path = await camera1080();
  data = readStream(path);
  frames = (await probe(path)).frames;
}, 240_000);

function cpuSeconds(f: () => void): number {
  const start = process.cpuUsage();
  f();
  const used = process.cpuUsage(start);
  return (used.user + used.system) / 1e6;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] ?? Number.NaN;
}

describe('performance', () => {
  it('10 s of 1080p at 4 Mbit/s: split + access-unit + GOP assembly in < 0.5 s CPU', () => {
    let count = 0;
    const run = (): void => {
      const asm = new AccessUnitAssembler();
      const gops = new GopAssembler();
      count = 0;
      const aus = splitAnnexB(data).flatMap((nal) => asm.push(nal));
      aus.push(...asm.flush());
      for (const au of aus) gops.push(au);
      gops.flush();
      count = aus.length;
    };
    const cold = cpuSeconds(run);
    const times = [cpuSeconds(run), cpuSeconds(run), cpuSeconds(run)];
    console.log(`h264 perf: ${(data.length / 1e6).toFixed(2)} MB, ${count} access units, split+assemble CPU first run ${(cold * 1000).toFixed(1)} ms, then median ${(median(times) * 1000).toFixed(1)} ms`);
    expect(count).toBe(frames);
    expect(cold).toBeLessThan(0.5);
    expect(median(times)).toBeLessThan(0.5);
  });

  it('the streaming splitter in 64 KiB chunks is as fast', () => {
    let nals = 0;
    const run = (): void => {
      const s = new AnnexBSplitter();
      const asm = new AccessUnitAssembler();
      nals = 0;
      const all: Uint8Array[] = [];
      for (let pos = 0; pos < data.length; pos += 65536) all.push(...s.push(data.subarray(pos, pos + 65536)));
      all.push(...s.flush());
      for (const nal of all) asm.push(nal);
      asm.flush();
      nals = all.length;
    };
    run();
    const times = [cpuSeconds(run), cpuSeconds(run), cpuSeconds(run)];
    console.log(`h264 perf: streaming split (64 KiB chunks) + assemble CPU median ${(median(times) * 1000).toFixed(1)} ms, ${nals} NAL units`);
    expect(nals).toBe(splitAnnexB(data).length);
    expect(median(times)).toBeLessThan(0.5);
  });
});
