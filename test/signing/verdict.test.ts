/**
 * The verdict agrees with the ranges (docs/signed-video.md §2): UNSIGNED only when nothing is signed and nothing
 * claims to be (no authentic, tampered or missing range), AUTHENTIC only with authentic ranges and nothing else,
 * AUTHENTIC_WITH_GAPS with nothing tampered or unverified. Checked as a property of the verdict rules over any
 * session report, and over real x264 streams whose signing SEIs are kept, dropped or malformed at random; and the
 * case of issue 10: a stream whose every signing SEI is malformed claims to be signed and is NOT_AUTHENTIC, each
 * malformed SEI reported where it is.
 */
import { readFileSync, rmSync } from 'node:fs';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildSeiNal, userDataUnregistered } from '../../src/media/h264/index.js';
import { overallVerdict, sessionVerdict, type RangeStatus, type ReportRange, type SessionReport, type Trust, type Verdict, type VerificationReport } from '../../src/signing/report.js';
import { ONVIF_UUID } from '../../src/signing/sei.js';
import { insertMarkers } from '../../src/signing/verifier.js';
import { clip } from '../helpers/media.js';
import { firstFrameOf, makePki, parseSigned, signWith, verify, writeSigned, type Pki, type SignedStream } from './_setup.js';

/** What the verdict says about the ranges, for any report. */
function consistent(verdict: Verdict, ranges: readonly ReportRange[]): string | undefined {
  const has = (s: RangeStatus): boolean => ranges.some((r) => r.status === s);
  if (verdict === 'UNSIGNED' && (has('authentic') || has('tampered') || has('missing'))) return 'UNSIGNED with signed (authentic, tampered or missing) ranges';
  if (verdict === 'AUTHENTIC' && (has('tampered') || has('missing') || has('unverified') || !has('authentic'))) return 'AUTHENTIC with ranges that are not authentic';
  if (verdict === 'AUTHENTIC_WITH_GAPS' && (has('tampered') || has('unverified'))) return 'AUTHENTIC_WITH_GAPS with tampered or unverified ranges';
  if (has('tampered') && verdict !== 'NOT_AUTHENTIC' && verdict !== 'UNTRUSTED_SIGNER') return `${verdict} with tampered ranges`;
  return undefined;
}

function reportProblems(r: VerificationReport): string[] {
  const out: string[] = [];
  const all = r.sessions.flatMap((s) => s.ranges);
  const whole = consistent(r.verdict, all);
  if (whole !== undefined) out.push(`stream: ${whole}`);
  r.sessions.forEach((s, i) => {
    const p = consistent(s.verdict, s.ranges);
    if (p !== undefined) out.push(`session ${i}: ${p}`);
    for (const g of s.ranges) {
      if (!(g.firstFrame >= 0 && g.firstFrame <= g.lastFrame && g.start <= g.end)) out.push(`session ${i}: range ${JSON.stringify(g)} is not a range`);
      if (g.inputFirst !== undefined && !(g.inputFirst >= 0 && (g.inputLast ?? -1) >= g.inputFirst && (g.inputLast ?? 0) < r.frames)) out.push(`session ${i}: input positions of ${JSON.stringify(g)} outside the input`);
    }
  });
  return out;
}

const statuses: RangeStatus[] = ['authentic', 'missing', 'tampered', 'unverified', 'excluded'];

const rangeArb: fc.Arbitrary<ReportRange> = fc
  .record({ status: fc.constantFrom(...statuses), first: fc.nat(500), len: fc.nat(60), reason: fc.option(fc.constantFrom('frame modified', 'not signed', 'malformed signing SEI: x'), { nil: undefined }) })
  .map(({ status, first, len, reason }) => ({ status, start: first / 25, end: (first + len) / 25, firstFrame: first, lastFrame: first + len, ...(reason !== undefined ? { reason } : {}) }));

const sessionArb: fc.Arbitrary<Omit<SessionReport, 'verdict'>> = fc.record({
  trust: fc.constantFrom<Trust>('trusted', 'untrusted', 'invalid', 'none'),
  chain: fc.constant([]),
  units: fc.oneof(fc.constant(0), fc.nat(20)),
  frames: fc.nat(500),
  endMarker: fc.boolean(),
  endExcluded: fc.boolean(),
  ranges: fc.array(rangeArb, { maxLength: 6 }),
});

describe('the verdict agrees with the ranges', () => {
  it('for any session report: sessionVerdict and overallVerdict', () => {
    fc.assert(
      fc.property(fc.array(sessionArb, { minLength: 1, maxLength: 4 }), (raw) => {
        const sessions: SessionReport[] = raw.map((s) => ({ verdict: sessionVerdict(s), ...s }));
        for (const s of sessions) expect(consistent(s.verdict, s.ranges)).toBeUndefined();
        expect(consistent(overallVerdict(sessions), sessions.flatMap((s) => s.ranges))).toBeUndefined();
      }),
      { numRuns: 2000 },
    );
  });

  it('an unsigned session with a tampered range (a malformed signing SEI) is NOT_AUTHENTIC, not UNSIGNED', () => {
    const base = { trust: 'none' as const, chain: [], units: 0, frames: 50, endMarker: false };
    const unverified: ReportRange = { status: 'unverified', start: 0, end: 2, firstFrame: 0, lastFrame: 49, inputFirst: 0, inputLast: 49, reason: 'not signed' };
    expect(sessionVerdict({ ...base, ranges: [unverified] })).toBe('UNSIGNED');
    expect(sessionVerdict({ ...base, ranges: [] })).toBe('UNSIGNED');
    const marker: ReportRange = { status: 'tampered', start: 1, end: 1, firstFrame: 25, lastFrame: 25, reason: 'malformed signing SEI: x' };
    expect(sessionVerdict({ ...base, ranges: [unverified, marker] })).toBe('NOT_AUTHENTIC');
  });

  it('markers go in at their frame, after what starts before it, in stream order, repeats dropped', () => {
    const r = (status: RangeStatus, a: number, b: number): ReportRange => ({ status, start: a, end: b + 1, firstFrame: a, lastFrame: b });
    const m = (f: number, reason = 'malformed signing SEI: x'): ReportRange => ({ status: 'tampered', start: f, end: f, firstFrame: f, lastFrame: f, reason });
    const ranges = [r('authentic', 0, 24), r('unverified', 25, 49), r('authentic', 50, 74)];
    insertMarkers(ranges, [m(0), m(25), m(25), m(25, 'malformed signing SEI: y'), m(75), m(10)]);
    expect(ranges.map((g) => [g.status, g.firstFrame, g.reason ?? ''])).toEqual([
      ['tampered', 0, 'malformed signing SEI: x'],
      ['authentic', 0, ''],
      ['tampered', 10, 'malformed signing SEI: x'],
      ['tampered', 25, 'malformed signing SEI: x'],
      ['tampered', 25, 'malformed signing SEI: y'],
      ['unverified', 25, ''],
      ['authentic', 50, ''],
      ['tampered', 75, 'malformed signing SEI: x'],
    ]);
  });
});

let pki: Pki;
let signed: Uint8Array;
let source: Uint8Array;

beforeAll(async () => {
  pki = await makePki();
  const dev = await pki.provision('SN-VERDICT');
  // 3 s at 25 fps, 1 s GOPs: a certificate SEI and 3 unit SEIs (the last with the end marker)
  source = readFileSync(await clip({ width: 320, height: 240, fps: 25, seconds: 3, gop: 25, slices: 1 }));
  signed = await signWith(dev, source);
}, 60_000);

afterAll(async () => {
  await pki.caStore.close();
  rmSync(pki.work, { recursive: true, force: true });
});

/** A Media Signing SEI that does not parse: a TLV announcing 9 bytes that are not there. */
const MALFORMED = buildSeiNal([userDataUnregistered(ONVIF_UUID, new Uint8Array([0x40, 1, 0, 9]))]);

/** The input frame before which each unit's signing SEIs sit: the opening SEIs, then unit k's before unit k + 1. */
function seiPositions(m: SignedStream): number[] {
  return [0, ...m.units.map((_, k) => firstFrameOf(m, k + 1))];
}

describe('malformed signing SEIs in a real stream', () => {
  it('every signing SEI malformed: NOT_AUTHENTIC, a tampered marker where each SEI is, every frame unverified (was UNSIGNED, markers all at frame 0)', async () => {
    const m = parseSigned(signed);
    expect(m.head).toHaveLength(2);
    expect(m.units).toHaveLength(3);
    const at = seiPositions(m);
    m.head = [MALFORMED];
    for (const u of m.units) u.sei = [MALFORMED];
    const r = await verify(writeSigned(m), { roots: [pki.root] });
    expect(r.verdict).toBe('NOT_AUTHENTIC');
    expect(r.frames).toBe(75);
    expect(reportProblems(r)).toEqual([]);
    const ranges = r.sessions.flatMap((s) => s.ranges);
    const markers = ranges.filter((g) => g.status === 'tampered');
    expect(markers.map((g) => [g.firstFrame, g.lastFrame, g.start, g.end])).toEqual(at.map((f) => [f, f, f / 25, f / 25]));
    expect(at).toEqual([0, 25, 50, 75]);
    for (const g of markers) expect(g.reason).toMatch(/^malformed signing SEI: /);
    // the frames: all present, none covered by a signature
    const frames = ranges.filter((g) => g.status !== 'tampered');
    expect(frames.every((g) => g.status === 'unverified')).toBe(true);
    expect(frames.reduce((n, g) => n + g.lastFrame - g.firstFrame + 1, 0)).toBe(75);
    // stream order: every range starts at or after the one before it
    expect(ranges.map((g) => g.firstFrame)).toEqual([...ranges.map((g) => g.firstFrame)].sort((a, b) => a - b));
  });

  it('every unit SEI malformed behind a valid certificate SEI: NOT_AUTHENTIC, markers at frames 25, 50, 75 (were all at frame 0)', async () => {
    const m = parseSigned(signed);
    const at = seiPositions(m).slice(1);
    for (const u of m.units) u.sei = [MALFORMED];
    const r = await verify(writeSigned(m), { roots: [pki.root] });
    expect(r.verdict).toBe('NOT_AUTHENTIC');
    expect(r.sessions.map((s) => s.trust)).toEqual(['trusted']);
    expect(reportProblems(r)).toEqual([]);
    expect(r.sessions[0]?.ranges.filter((g) => g.status === 'tampered').map((g) => g.firstFrame)).toEqual(at);
  });

  it('no signing SEI at all: UNSIGNED, and nothing but unverified frames', async () => {
    const r = await verify(source, { roots: [pki.root] });
    expect(r.verdict).toBe('UNSIGNED');
    expect(reportProblems(r)).toEqual([]);
    expect(r.sessions.flatMap((s) => s.ranges.map((g) => g.status))).toEqual(['unverified']);
  });

  it('signing SEIs kept, dropped or malformed at random: the verdict always agrees with the ranges, markers where the SEIs are', async () => {
    const action = fc.constantFrom('keep', 'drop', 'malform');
    await fc.assert(
      fc.asyncProperty(fc.record({ head: action, units: fc.array(action, { minLength: 3, maxLength: 3 }) }), async (plan) => {
        const m = parseSigned(signed);
        const at = seiPositions(m);
        const act = (a: string, sei: Uint8Array[] | undefined): Uint8Array[] | undefined => (a === 'keep' ? sei : a === 'drop' ? undefined : [MALFORMED]);
        m.head = plan.head === 'keep' ? m.head : plan.head === 'drop' ? [] : [MALFORMED];
        m.units.forEach((u, k) => (u.sei = act(plan.units[k] as string, u.sei)));
        const r = await verify(writeSigned(m), { roots: [pki.root] });
        expect(reportProblems(r)).toEqual([]);
        const malformedAt = [plan.head, ...plan.units].flatMap((a, i) => (a === 'malform' ? [at[i] as number] : []));
        const markers = r.sessions.flatMap((s) => s.ranges.filter((g) => g.reason?.startsWith('malformed signing SEI') === true));
        expect(markers.map((g) => g.firstFrame)).toEqual(malformedAt);
        const anySei = [plan.head, ...plan.units].some((a) => a !== 'drop');
        if (!anySei) expect(r.verdict).toBe('UNSIGNED');
        else expect(r.verdict).not.toBe('UNSIGNED');
        if (plan.head === 'keep' && plan.units.every((a) => a === 'keep')) expect(r.verdict).toBe('AUTHENTIC');
      }),
      { numRuns: 40 },
    );
  });
});
