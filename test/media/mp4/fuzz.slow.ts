/**
 * Long fuzz campaign for the MP4 demuxer (npm run test:slow): more inputs — B-frames (ctts, trun composition
 * offsets), multi-slice pictures (more subsamples), longer GOP structures — and as many cases as fit in the time
 * budget. KEYFRAME_FUZZ_SEED fixes the base seed (default: random, printed), KEYFRAME_FUZZ_SECONDS the budget
 * (default 240). A failure prints the case's seed.
 */
import { describe, expect, it } from 'vitest';
import { clip } from '../../helpers/media.js';
import { corpus, fuzz, seedOf } from './_fuzz.js';
import { readFileSync } from 'node:fs';

const SECONDS = Number(process.env['KEYFRAME_FUZZ_SECONDS'] ?? '240');
const BASE_SEED = process.env['KEYFRAME_FUZZ_SEED'] !== undefined ? Number(process.env['KEYFRAME_FUZZ_SEED']) : Math.floor(Math.random() * 2 ** 32);

describe('demuxer fuzzing (long campaign)', () => {
  it(`mutated files for ${SECONDS} s: each demuxes or throws MediaError (base seed ${BASE_SEED})`, async () => {
    const seeds = [
      ...(await corpus({ width: 320, height: 240, seconds: 2, gop: 15 })),
      seedOf('bframes', readFileSync(await clip({ width: 320, height: 240, seconds: 1, gop: 12, zerolatency: false, preset: 'veryfast', format: 'mp4' }))),
      seedOf('bframes-frag', readFileSync(await clip({ width: 320, height: 240, seconds: 1, gop: 12, zerolatency: false, preset: 'veryfast', format: 'fmp4' }))),
      seedOf('slices', readFileSync(await clip({ width: 320, height: 240, seconds: 1, gop: 10, slices: 4, format: 'fmp4' }))),
    ];
    const started = Date.now();
    const stats = await fuzz(seeds, Number.MAX_SAFE_INTEGER, BASE_SEED, 2000, started + SECONDS * 1000);
    console.log(`mp4 fuzz campaign: base seed ${BASE_SEED}, ${stats.runs} cases, ${stats.ok} demuxed, ${stats.mediaErrors} MediaErrors, ${Date.now() - started} ms`);
    expect(stats.runs).toBeGreaterThan(0);
  }, (SECONDS + 120) * 1000);
});
