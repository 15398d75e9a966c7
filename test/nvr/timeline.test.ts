/** The timeline's pure core: exact cover of the window, precedence where ranges overlap, checked against a model. */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { buildTimeline, timelineTotals } from '../../src/nvr/timeline.js';
import type { StateRange, TimeRange, TimelineInput, TimelineState } from '../../src/nvr/timeline.js';

const ORDER: TimelineState[] = ['verified', 'unverified', 'quarantined', 'on-camera', 'lost', 'expired', 'missing'];

/** The state at instant t by brute force. */
function stateAt(input: TimelineInput, t: number): TimelineState {
  const covers = (r: TimeRange): boolean => r.start <= t && t < r.end;
  const found = new Set<TimelineState>();
  for (const r of input.held) if (covers(r)) found.add(r.state);
  if ((input.onCamera ?? []).some(covers)) found.add('on-camera');
  if ((input.lost ?? []).some(covers)) found.add('lost');
  if ((input.expired ?? []).some(covers)) found.add('expired');
  return ORDER.find((s) => found.has(s)) ?? 'missing';
}

const range = fc.tuple(fc.integer({ min: -50, max: 1050 }), fc.integer({ min: 0, max: 300 })).map(([s, len]) => ({ start: s, end: s + len }));
const held = fc.tuple(range, fc.constantFrom<TimelineState>('verified', 'unverified', 'quarantined')).map(([r, state]) => ({ ...r, state }));
const input = fc.record({ held: fc.array(held, { maxLength: 12 }), onCamera: fc.array(range, { maxLength: 4 }), lost: fc.array(range, { maxLength: 4 }), expired: fc.array(range, { maxLength: 4 }) });

describe('buildTimeline', () => {
  it('cuts the window into consecutive ranges whose state is the one of highest precedence at every instant', () => {
    fc.assert(
      fc.property(input, fc.integer({ min: 0, max: 500 }), fc.integer({ min: 1, max: 600 }), (inp, from, len) => {
        const to = from + len;
        const t = buildTimeline(inp, from, to);
        expect(t.ranges[0]?.start).toBe(from);
        expect(t.ranges[t.ranges.length - 1]?.end).toBe(to);
        t.ranges.forEach((r, i) => {
          expect(r.end).toBeGreaterThan(r.start);
          const next = t.ranges[i + 1];
          if (next !== undefined) {
            expect(next.start).toBe(r.end);
            expect(next.state).not.toBe(r.state);
          }
          // the inputs are integers, so the state is constant between integer boundaries: check the first, the
          // middle and the last instant of each range
          for (const x of new Set([r.start, Math.floor((r.start + r.end) / 2), r.end - 1])) expect(stateAt(inp, x), `at ${x}`).toBe(r.state);
        });
      }),
      { numRuns: 500 },
    );
  });

  it('names a gap between held video "missing", unless the camera still has it, lost it, or retention expired it', () => {
    const h = (start: number, end: number, state: StateRange['state'] = 'verified'): StateRange => ({ start, end, state });
    const t = buildTimeline({ held: [h(0, 10), h(20, 30), h(40, 50, 'unverified'), h(60, 70)], onCamera: [{ start: 30, end: 40 }], lost: [{ start: 50, end: 55 }], expired: [{ start: -100, end: 0 }] }, -10, 80);
    expect(t.ranges.map((r) => [r.start, r.end, r.state])).toEqual([
      [-10, 0, 'expired'],
      [0, 10, 'verified'],
      [10, 20, 'missing'],
      [20, 30, 'verified'],
      [30, 40, 'on-camera'],
      [40, 50, 'unverified'],
      [50, 55, 'lost'],
      [55, 60, 'missing'],
      [60, 70, 'verified'],
      [70, 80, 'missing'],
    ]);
    expect(timelineTotals(t)).toMatchObject({ verified: 0.03, missing: 0.025, lost: 0.005 });
  });

  it('merges adjacent spans of one state, clips locks to the window, and refuses an empty window', () => {
    const t = buildTimeline({ held: [{ start: 0, end: 5, state: 'verified' }, { start: 5, end: 9, state: 'verified' }], locks: [{ start: -5, end: 3, caseId: 'C-1' }, { start: 50, end: 60, caseId: 'C-2' }] }, 0, 10);
    expect(t.ranges).toEqual([
      { start: 0, end: 9, state: 'verified' },
      { start: 9, end: 10, state: 'missing' },
    ]);
    expect(t.locks).toEqual([{ start: 0, end: 3, caseId: 'C-1' }]);
    expect(() => buildTimeline({ held: [] }, 10, 10)).toThrow(/empty/);
  });
});
