/**
 * The DASH MPD builder (src/nvr/mpd.ts): one Period per run of segments with one session and one KID and no gap,
 * gaps left as jumps (nothing invented), the ClearKey signalling of DASH-IF IOP Part 6, a SegmentTimeline that
 * matches the segments' media times.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { buildMpd, isoDuration, kidUuid, periodsOf, timeline } from '../../src/nvr/mpd.js';
import type { MpdInput, MpdSegment } from '../../src/nvr/mpd.js';

const T0 = Date.UTC(2026, 11, 7, 10, 0, 0);
const K1 = '00112233445566778899aabbccddeeff';
const K2 = 'ffeeddccbbaa99887766554433221100';
const track = { codecs: 'avc1.640028', width: 1280, height: 720, timescale: 90_000 };

/** n two-second segments of a session from `seq`, starting at wall time `at`. */
function run(session: string, seq: number, n: number, at: number, kid: string | null, media0 = 0): MpdSegment[] {
  return Array.from({ length: n }, (_, i) => ({ session, seq: seq + i, mediaStart: media0 + 2 * i, mediaEnd: media0 + 2 * i + 2, wallStart: at + 2000 * i, wallEnd: at + 2000 * i + 2000, kid }));
}

function input(segments: MpdSegment[], over: Partial<MpdInput> = {}): MpdInput {
  return { serial: 'CAM-1', from: T0, to: T0 + 3_600_000, segments, tracks: new Map([['s1', track], ['s2', track]]), mediaBase: '/v1/media/', licenceUrl: 'https://kms.example:8444/v1/licence', ...over };
}

describe('DASH MPD', () => {
  it('one Period per session and KID; a key rotation, a new session and a gap each start a Period; nothing invented', () => {
    const segs = [
      ...run('s1', 0, 5, T0, K1), // 0–10 s
      ...run('s1', 5, 5, T0 + 10_000, K2, 10), // rotation at 10 s
      ...run('s2', 0, 3, T0 + 30_000, K2), // a gap of 10 s, then a new session
    ];
    const periods = periodsOf(input([...segs].reverse()));
    expect(periods.map((p) => [p.session, p.kid, p.segments.map((s) => s.seq), p.start, p.duration])).toEqual([
      ['s1', K1, [0, 1, 2, 3, 4], 0, 10],
      ['s1', K2, [5, 6, 7, 8, 9], 10, 10],
      ['s2', K2, [0, 1, 2], 30, 6],
    ]);
    // a missing segment inside a session is a gap too
    const holed = periodsOf(input(run('s1', 0, 6, T0, K1).filter((s) => s.seq !== 3)));
    expect(holed.map((p) => p.segments.map((s) => s.seq))).toEqual([[0, 1, 2], [4, 5]]);
    expect(holed[1]?.start).toBe(8);
  });

  it('signals CENC with the default KID and ClearKey with the licence URL; the timeline is the segments’ media times', () => {
    const xml = buildMpd(input([...run('s1', 0, 3, T0 + 60_000, K1), ...run('s1', 3, 2, T0 + 66_000, K2, 6)]));
    expect(xml).toContain('type="static"');
    expect(xml).toContain('mediaPresentationDuration="PT1M10S"');
    expect(xml.match(/<Period /g)).toHaveLength(2);
    expect(xml).toContain('<Period id="p0-s1-0" start="PT1M" duration="PT6S">');
    expect(xml).toContain('<BaseURL>/v1/media/CAM-1/s1/</BaseURL>');
    expect(xml).toContain(`cenc:default_KID="00112233-4455-6677-8899-aabbccddeeff"`);
    expect(xml).toContain(`cenc:default_KID="ffeeddcc-bbaa-9988-7766-554433221100"`);
    expect(xml.match(/schemeIdUri="urn:uuid:e2719d58-a985-b3c9-781a-b030af78d30e"/g)).toHaveLength(2);
    expect(xml).toContain('<dashif:Laurl>https://kms.example:8444/v1/licence</dashif:Laurl>');
    expect(xml).toContain('<SegmentTemplate timescale="90000" presentationTimeOffset="0" startNumber="0" initialization="init.mp4" media="$Number%06d$.m4s">');
    expect(xml).toContain('<SegmentTemplate timescale="90000" presentationTimeOffset="540000" startNumber="3"');
    expect(xml).toContain('<S t="0" d="180000" r="2"/>');
    expect(xml).toContain('<S t="540000" d="180000" r="1"/>');
    // clear video: no ContentProtection
    expect(buildMpd(input(run('s1', 0, 2, T0, null)))).not.toContain('ContentProtection');
    // names are escaped
    expect(buildMpd(input(run('s1', 0, 1, T0, null), { licenceUrl: 'https://k/?a=1&b=<2>' }))).not.toContain('&b=<');
  });

  it('every segment of the range is in exactly one Period, in order, and Periods never overlap (property)', () => {
    fc.assert(
      fc.property(fc.array(fc.record({ n: fc.integer({ min: 1, max: 6 }), gap: fc.integer({ min: 0, max: 8_000 }), rotate: fc.boolean(), newSession: fc.boolean() }), { minLength: 1, maxLength: 8 }), (plan) => {
        const segs: MpdSegment[] = [];
        let at = T0;
        let session = 's1';
        let seq = 0;
        let media = 0;
        let kid = K1;
        for (const step of plan) {
          if (step.newSession) {
            session = session === 's1' ? 's2' : 's1';
            seq = 100 * (segs.length + 1);
            media = 0;
          }
          if (step.rotate) kid = kid === K1 ? K2 : K1;
          at += step.gap;
          segs.push(...run(session, seq, step.n, at, kid, media));
          at += 2000 * step.n;
          seq += step.n;
          media += 2 * step.n;
        }
        const periods = periodsOf(input(segs));
        expect(periods.flatMap((p) => p.segments)).toEqual(segs);
        for (let i = 1; i < periods.length; i++) expect((periods[i] as (typeof periods)[0]).start).toBeGreaterThanOrEqual((periods[i - 1] as (typeof periods)[0]).start + (periods[i - 1] as (typeof periods)[0]).duration - 0.5);
        for (const p of periods) expect(new Set(p.segments.map((s) => `${s.session}/${s.kid}`)).size).toBe(1);
      }),
    );
  });

  it('the SegmentTimeline expands back to every segment’s start and duration (property)', () => {
    fc.assert(
      fc.property(fc.array(fc.record({ len: fc.integer({ min: 1, max: 4 }), jump: fc.integer({ min: 0, max: 3 }) }), { minLength: 1, maxLength: 30 }), (plan) => {
        let t = 0;
        const segs: MpdSegment[] = plan.map((p, i) => {
          t += p.jump * 0.5;
          const s = { session: 's1', seq: i, mediaStart: t, mediaEnd: t + p.len, wallStart: 0, wallEnd: 0, kid: null };
          t += p.len;
          return s;
        });
        const expanded: { t: number; d: number }[] = [];
        let next = 0;
        for (const e of timeline(segs, 1000)) {
          let at = e.t ?? next;
          for (let k = 0; k <= e.r; k++) {
            expanded.push({ t: at, d: e.d });
            at += e.d;
          }
          next = at;
        }
        expect(expanded).toEqual(segs.map((s) => ({ t: Math.round(s.mediaStart * 1000), d: Math.round(s.mediaEnd * 1000) - Math.round(s.mediaStart * 1000) })));
      }),
    );
  });

  it('durations and KIDs are written as DASH wants them', () => {
    expect(isoDuration(0)).toBe('PT0S');
    expect(isoDuration(3723.456)).toBe('PT1H2M3.456S');
    expect(isoDuration(60)).toBe('PT1M');
    expect(kidUuid(K1.toUpperCase())).toBe('00112233-4455-6677-8899-aabbccddeeff');
  });
});
