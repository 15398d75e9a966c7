/**
 * Mutation fuzzer for the H.264 layer. Inputs are built from the real test streams (parameter sets, SEIs, slice
 * headers, short Annex-B and length-prefixed streams) and mutated: bit flips, byte replacements, truncations,
 * inserted start codes and escapes, random NAL types, chopped lengths, deleted, duplicated and spliced ranges.
 * Every call must return or throw a MediaError; a few cheap invariants are checked on the way. Each iteration has
 * its own PRNG derived from (seed, iteration), so a failure is replayed from those two numbers.
 */
import { MediaError } from '../../../src/errors.js';
import {
  AccessUnitAssembler,
  AnnexBSplitter,
  GopAssembler,
  isVcl,
  nalType,
  parsePps,
  parseSei,
  parseSliceHeader,
  parseSps,
  splitAnnexB,
  splitLengthPrefixed,
  unescapeRbsp,
  writeAnnexB,
  writeLengthPrefixed,
  type Pps,
  type Sps,
} from '../../../src/media/h264/index.js';
import { assemble, briefStreams, extraStreams, prng, readStream } from './_streams.js';

export interface CorpusNal {
  readonly nal: Uint8Array;
  readonly sps: ReadonlyMap<number, Sps>;
  readonly pps: ReadonlyMap<number, Pps>;
}

export interface Corpus {
  readonly nals: CorpusNal[];
  /** Short Annex-B streams: parameter sets, SEI, a few pictures with slices cut after their headers. */
  readonly streams: Uint8Array[];
}

const SLICE_KEEP = 96;

/** Builds the corpus from the brief's streams and the extra ones (scaling matrices, MBAFF, 10-bit). */
export async function buildCorpus(): Promise<Corpus> {
  const nals: CorpusNal[] = [];
  const streams: Uint8Array[] = [];
  for (const s of [...(await briefStreams()), ...(await extraStreams())]) {
    const a = assemble(readStream(s.path));
    const sps = a.assembler.sps;
    const pps = a.assembler.pps;
    const cut = (n: Uint8Array): Uint8Array => (isVcl(nalType(n)) ? n.subarray(0, SLICE_KEEP) : n);
    const firstAus = a.aus.slice(0, 40);
    for (const au of firstAus) for (const n of au.nals) nals.push({ nal: cut(n), sps, pps });
    const ps = a.aus[0]?.nals.filter((n) => nalType(n) === 7 || nalType(n) === 8) ?? [];
    streams.push(writeAnnexB(a.aus.slice(0, 6).flatMap((au) => au.nals.map(cut))));
    // across a GOP boundary, with the parameter sets in front
    const g = a.gops[1]?.accessUnits[0];
    const at = g === undefined ? -1 : a.aus.indexOf(g);
    if (at > 2) streams.push(writeAnnexB([...ps, ...a.aus.slice(at - 3, at + 3).flatMap((au) => au.nals.map(cut))]));
  }
  return { nals, streams };
}

export interface FuzzFailure {
  readonly seed: number;
  readonly iteration: number;
  readonly target: string;
  readonly error: string;
  readonly input: string;
}

export interface FuzzResult {
  readonly inputs: number;
  readonly calls: number;
  readonly mediaErrors: number;
  /** Per target: calls and MediaErrors, to see that mutations reach deep into each parser. */
  readonly byTarget: Record<string, { calls: number; mediaErrors: number }>;
  readonly failures: FuzzFailure[];
}

type Rnd = () => number;
const pick = <T>(rnd: Rnd, items: readonly T[]): T => items[Math.floor(rnd() * items.length)] as T;
const int = (rnd: Rnd, n: number): number => Math.floor(rnd() * n);

function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

const INSERTS = [Uint8Array.from([0, 0, 1]), Uint8Array.from([0, 0, 0, 1]), Uint8Array.from([0, 0, 3]), Uint8Array.from([0, 0, 0]), Uint8Array.from([0xff, 0xff, 0xff])];

/** One to three mutations of `input` (never mutated in place). `keepHeader` spares byte 0 except for type changes. */
function mutate(rnd: Rnd, input: Uint8Array, other: Uint8Array, keepHeader: boolean): Uint8Array {
  let d: Uint8Array = input.slice();
  const from = keepHeader ? 1 : 0;
  const rounds = 1 + int(rnd, 3);
  for (let r = 0; r < rounds; r++) {
    const span = Math.max(d.length - from, 1);
    const at = from + int(rnd, span);
    switch (int(rnd, 10)) {
      case 0: // bit flips
        for (let k = 1 + int(rnd, 8); k > 0 && d.length > from; k--) {
          const i = from + int(rnd, d.length - from);
          d[i] = (d[i] ?? 0) ^ (1 << int(rnd, 8));
        }
        break;
      case 1: // byte replacements
        for (let k = 1 + int(rnd, 4); k > 0 && d.length > from; k--) d[from + int(rnd, d.length - from)] = pick(rnd, [0, 0, 0xff, 3, 1, 0x80, int(rnd, 256)]);
        break;
      case 2: // truncation
        d = d.slice(0, int(rnd, d.length + 1));
        break;
      case 3: // inserted start code, escape, zeros
        d = concat(d.subarray(0, at), pick(rnd, INSERTS), d.subarray(at));
        break;
      case 4: // random NAL header type (and sometimes the forbidden bit)
        if (d.length > 0) d[0] = ((d[0] ?? 0) & 0x60) | int(rnd, 32) | (int(rnd, 16) === 0 ? 0x80 : 0);
        break;
      case 5: // delete a range
        d = concat(d.subarray(0, at), d.subarray(Math.min(d.length, at + 1 + int(rnd, 64))));
        break;
      case 6: // duplicate a range
        d = concat(d.subarray(0, at), d.subarray(at, at + 1 + int(rnd, 64)), d.subarray(at));
        break;
      case 7: // splice with another input
        d = concat(d.subarray(0, at), other.subarray(int(rnd, other.length + 1)));
        break;
      case 8: // long runs of 0xff or 0x00 (ff-coding, Exp-Golomb prefixes)
        d = concat(d.subarray(0, at), new Uint8Array(1 + int(rnd, 40)).fill(pick(rnd, [0, 0xff])), d.subarray(at));
        break;
      default: // a big random number in a big-endian field: chopped or overlong lengths
        for (let k = 0; k < 4 && at + k < d.length; k++) d[at + k] = int(rnd, 256);
        break;
    }
  }
  return d;
}

class Campaign {
  calls = 0;
  mediaErrors = 0;
  readonly byTarget: Record<string, { calls: number; mediaErrors: number }> = {};
  readonly failures: FuzzFailure[] = [];
  constructor(
    readonly seed: number,
    private iteration = 0,
  ) {}

  at(iteration: number): void {
    this.iteration = iteration;
  }

  /** Runs `f`; a MediaError is fine, anything else is recorded as a failure. */
  call<T>(target: string, input: Uint8Array, f: () => T): T | undefined {
    this.calls++;
    const stats = (this.byTarget[target] ??= { calls: 0, mediaErrors: 0 });
    stats.calls++;
    try {
      return f();
    } catch (e) {
      if (e instanceof MediaError && e.code === 'KF_ERR_MEDIA') {
        this.mediaErrors++;
        stats.mediaErrors++;
        return undefined;
      }
      this.fail(target, input, e instanceof Error ? `${e.name}: ${e.message}\n${e.stack ?? ''}` : String(e));
      return undefined;
    }
  }

  fail(target: string, input: Uint8Array, error: string): void {
    this.failures.push({ seed: this.seed, iteration: this.iteration, target, error, input: Buffer.from(input.subarray(0, 256)).toString('hex') });
  }
}

function runStream(c: Campaign, rnd: Rnd, data: Uint8Array): void {
  const nals = c.call('splitAnnexB', data, () => splitAnnexB(data));
  // differential: the streaming splitter in random chunks agrees with splitAnnexB
  const streamed = c.call('AnnexBSplitter', data, () => {
    const s = new AnnexBSplitter();
    const out: Uint8Array[] = [];
    let pos = 0;
    while (pos < data.length) {
      const n = 1 + int(rnd, 300);
      out.push(...s.push(data.subarray(pos, pos + n)));
      pos += n;
    }
    out.push(...s.flush());
    return out;
  });
  if ((nals === undefined) !== (streamed === undefined)) c.fail('AnnexBSplitter vs splitAnnexB', data, 'one threw, the other did not');
  if (nals === undefined) return;
  if (streamed !== undefined && (streamed.length !== nals.length || streamed.some((n, i) => Buffer.compare(n, nals[i] ?? new Uint8Array()) !== 0))) c.fail('AnnexBSplitter vs splitAnnexB', data, 'different NAL units');
  for (const nal of nals) if (nal.length === 0 || nal.buffer !== data.buffer) c.fail('splitAnnexB', data, 'empty NAL unit or not a view');
  runAssembly(c, data, nals);
}

function runAssembly(c: Campaign, data: Uint8Array, nals: readonly Uint8Array[]): void {
  const asm = new AccessUnitAssembler();
  const gops = new GopAssembler();
  const accepted: Uint8Array[] = [];
  const out: Uint8Array[] = [];
  for (const nal of nals) {
    const aus = c.call('AccessUnitAssembler.push', nal, () => asm.push(nal));
    if (aus === undefined) continue;
    accepted.push(nal);
    for (const au of aus) {
      out.push(...au.nals);
      c.call('GopAssembler.push', nal, () => gops.push(au));
    }
  }
  for (const au of c.call('AccessUnitAssembler.flush', data, () => asm.flush()) ?? []) {
    out.push(...au.nals);
    c.call('GopAssembler.push', data, () => gops.push(au));
  }
  c.call('GopAssembler.flush', data, () => gops.flush());
  if (out.length !== accepted.length || out.some((n, i) => n !== accepted[i])) c.fail('AccessUnitAssembler', data, 'access units lost or reordered NAL units');
}

function runNal(c: Campaign, entry: CorpusNal, nal: Uint8Array): void {
  c.call('nalType', nal, () => nalType(nal));
  c.call('unescapeRbsp', nal, () => unescapeRbsp(nal));
  const as = (type: number): Uint8Array => {
    const copy = nal.slice();
    if (copy.length > 0) copy[0] = ((copy[0] ?? 0) & 0x60) | type;
    return copy;
  };
  const sps = as(7);
  c.call('parseSps', sps, () => parseSps(sps));
  const pps = as(8);
  c.call('parsePps', pps, () => parsePps(pps, entry.sps));
  const sei = as(6);
  c.call('parseSei', sei, () => parseSei(sei));
  for (const t of [1, 5]) {
    const slice = as(t);
    c.call('parseSliceHeader', slice, () => parseSliceHeader(slice, entry.sps, entry.pps));
  }
  c.call('parse (own type)', nal, () => {
    const t = nalType(nal);
    if (t === 7) return parseSps(nal);
    if (t === 8) return parsePps(nal, entry.sps);
    if (t === 6) return parseSei(nal);
    return t === 1 || t === 2 || t === 5 ? parseSliceHeader(nal, entry.sps, entry.pps) : undefined;
  });
}

function runLengthPrefixed(c: Campaign, rnd: Rnd, corpus: Corpus, base: Uint8Array): void {
  const size = pick(rnd, [1, 2, 4] as const);
  const nals = splitAnnexB(base).filter((n) => size === 4 || n.length < 2 ** (8 * size));
  const sample = writeLengthPrefixed(nals, size);
  const data = mutate(rnd, sample, pick(rnd, corpus.streams), false);
  const got = c.call('splitLengthPrefixed', data, () => splitLengthPrefixed(data, size));
  if (got === undefined) return;
  let total = 0;
  for (const n of got) total += size + n.length;
  if (total !== data.length) c.fail('splitLengthPrefixed', data, 'NAL units do not cover the sample');
  runAssembly(c, data, got);
}

/** Runs `iterations` mutated inputs from `seed`. */
export function runFuzz(corpus: Corpus, seed: number, iterations: number, first = 0): FuzzResult {
  const c = new Campaign(seed);
  let inputs = 0;
  for (let i = first; i < first + iterations; i++) {
    inputs++;
    c.at(i);
    const rnd = prng((seed ^ Math.imul(i + 1, 0x9e3779b1)) >>> 0);
    const kind = i % 8;
    if (kind < 3) {
      const base = pick(rnd, corpus.streams);
      runStream(c, rnd, mutate(rnd, base, pick(rnd, corpus.streams), false));
    } else if (kind < 7) {
      const entry = pick(rnd, corpus.nals);
      runNal(c, entry, mutate(rnd, entry.nal, pick(rnd, corpus.nals).nal, int(rnd, 4) !== 0));
    } else {
      runLengthPrefixed(c, rnd, corpus, pick(rnd, corpus.streams));
    }
    if (c.failures.length >= 5) break;
  }
  return { inputs, calls: c.calls, mediaErrors: c.mediaErrors, byTarget: c.byTarget, failures: c.failures };
}

/** A failure report that names the seed and iteration to replay. */
export function describeTargets(r: FuzzResult): string {
  return Object.entries(r.byTarget)
    .map(([t, v]) => `${t} ${v.calls} (${Math.round((100 * v.mediaErrors) / v.calls)} % MediaError)`)
    .join(', ');
}

export function describeFailures(r: FuzzResult): string {
  return r.failures.map((f) => `seed ${f.seed} iteration ${f.iteration} (${f.target}): ${f.error}\ninput: ${f.input}`).join('\n\n');
}
