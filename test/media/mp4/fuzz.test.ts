/**
 * Quick fuzz run (part of npm test): 20,000 mutated MP4 files derived from real clips — ordinary, fragmented,
 * ffmpeg-encrypted, and our own encrypted fragments — each either demuxes or fails with a MediaError. Small
 * clips (1 s, 320x240) and at most 300 samples per case keep it to a few seconds; fuzz.slow.ts runs a longer
 * campaign. A failure prints the case's seed: `mutate(seed, prng(caseSeed))` reproduces it.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { corpus, fuzz, runCase } from './_fuzz.js';
import type { Seed } from './_fuzz.js';

const CASES_PER_INPUT = 5000;
const BASE_SEED = 0x6b660000;

describe('demuxer fuzzing', () => {
  let seeds: Seed[];
  beforeAll(async () => {
    seeds = await corpus({ width: 320, height: 240, seconds: 1, gop: 10 });
  }, 240_000);

  it('the unmutated inputs demux cleanly', async () => {
    expect(seeds.map((s) => s.name)).toEqual(['mp4', 'fmp4', 'ffmpeg-cenc', 'our-cenc-frag']);
    for (const s of seeds) expect(await runCase(s.bytes, Infinity)).toBe('ok');
  });

  it(`${4 * CASES_PER_INPUT} mutated files: each demuxes or throws MediaError, nothing else`, async () => {
    const started = Date.now();
    const stats = await fuzz(seeds, CASES_PER_INPUT, BASE_SEED, 300);
    expect(stats.runs).toBe(4 * CASES_PER_INPUT);
    // both outcomes are common: the mutations reach the parsers rather than being rejected at the door
    expect(stats.mediaErrors).toBeGreaterThan(stats.runs / 10);
    expect(stats.ok).toBeGreaterThan(stats.runs / 10);
    console.log(`mp4 fuzz: ${stats.runs} cases, ${stats.ok} demuxed, ${stats.mediaErrors} MediaErrors, ${Date.now() - started} ms`);
  }, 240_000);
});
