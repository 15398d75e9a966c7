/** Fuzzing in every npm test run: 24,000 mutated inputs from the real streams, fixed seed (fuzz.slow.ts runs 500,000). */
import { beforeAll, describe, expect, it } from 'vitest';
import { buildCorpus, describeFailures, describeTargets, runFuzz, type Corpus } from './_fuzz.js';

const SEED = 0x6b66_3264;
let corpus: Corpus;

beforeAll(async () => {
  corpus = await buildCorpus();
}, 240_000);

describe('H.264 fuzz', () => {
  it('24,000 mutated inputs: every parser returns or throws MediaError (seed 0x6b663264)', () => {
    const started = process.cpuUsage();
    const r = runFuzz(corpus, SEED, 24_000);
    const cpu = process.cpuUsage(started);
    console.log(`h264 fuzz: seed ${SEED}, ${r.inputs} inputs, ${r.calls} calls, ${r.mediaErrors} MediaErrors, ${((cpu.user + cpu.system) / 1e6).toFixed(2)} s CPU`);
    console.log(describeTargets(r));
    expect(r.failures, describeFailures(r)).toEqual([]);
    // the mutations must reach the parsers' error paths, and not only them
    expect(r.mediaErrors).toBeGreaterThan(r.inputs / 4);
    expect(r.mediaErrors).toBeLessThan(r.calls * 0.9);
  }, 240_000);
});
