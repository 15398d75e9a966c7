/**
 * The long H.264 fuzz campaign (npm run test:slow): 500,000 mutated inputs. The seed is random unless
 * KEYFRAME_FUZZ_SEED is set, and is printed, with the failing iteration, on failure; KEYFRAME_FUZZ_ITERATIONS
 * changes the length.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { buildCorpus, describeFailures, describeTargets, runFuzz, type Corpus } from './_fuzz.js';

const SEED = Number(process.env['KEYFRAME_FUZZ_SEED'] ?? Math.floor(Math.random() * 2 ** 31));
const ITERATIONS = Number(process.env['KEYFRAME_FUZZ_ITERATIONS'] ?? 500_000);
let corpus: Corpus;

beforeAll(async () => {
  corpus = await buildCorpus();
}, 300_000);

describe('H.264 fuzz, long campaign', () => {
  it(`${ITERATIONS} mutated inputs: every parser returns or throws MediaError (seed ${SEED})`, () => {
    const started = process.cpuUsage();
    const r = runFuzz(corpus, SEED, ITERATIONS);
    const cpu = process.cpuUsage(started);
    console.log(`h264 fuzz: seed ${SEED} (replay with KEYFRAME_FUZZ_SEED=${SEED}), ${r.inputs} inputs, ${r.calls} calls, ${r.mediaErrors} MediaErrors, ${((cpu.user + cpu.system) / 1e6).toFixed(1)} s CPU`);
    console.log(describeTargets(r));
    expect(r.failures, describeFailures(r)).toEqual([]);
  }, 3_600_000);
});
