// The manifest's segments with whole hours kept between manifests (src/nvr/mpd-rows.ts), on a real NVR index:
// whatever the range and whatever changed in between (segments received, verified, quarantined, expired, moved),
// the answer is exactly the verified segments wholly inside the range, in order, as a plain query reads them; the
// cache stays under its bound.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HOUR_MS, NvrIndex } from '../../src/nvr/db.js';
import type { SegmentRow } from '../../src/nvr/db.js';
import { ManifestRows } from '../../src/nvr/mpd-rows.js';

const SERIAL = 'CAM-M';
const T0 = Date.UTC(2026, 11, 1, 0, 0, 0);
const HOURS = 30;
/** Segments of 10 s (some of 7.5 s): the cache's logic does not depend on their length, the test's time does. */
const SEG = 10_000;
let dir: string;
let index: NvrIndex;

function row(session: string, seq: number, wallStart: number, ms: number, kid: string | null, state: SegmentRow['state'] = 'verified'): SegmentRow {
  return { serial: SERIAL, session, seq, size: 1000 + seq, sha256: 'ab'.repeat(32), state, media_start: (seq * SEG) / 1000, media_end: (seq * SEG + ms) / 1000, wall_start: wallStart, wall_end: wallStart + ms, kid, received: wallStart + ms + 100, skew_ms: 100 };
}

/** The reference: one plain query, no hours, no cache. */
function reference(from: number, to: number): unknown[] {
  return index.sqlite
    .prepare<[string, number, number, number], { session: string; seq: number; size: number; media_start: number; media_end: number; wall_start: number; wall_end: number; kid: string | null }>(
      "SELECT session, seq, size, media_start, media_end, wall_start, wall_end, kid FROM segments WHERE serial = ? AND state = 'verified' AND wall_start >= ? AND wall_start < ? AND wall_end <= ? ORDER BY wall_start, seq",
    )
    .all(SERIAL, from, to, to)
    .map((r) => ({ session: r.session, seq: r.seq, mediaStart: r.media_start, mediaEnd: r.media_end, wallStart: r.wall_start, wallEnd: r.wall_end, kid: r.kid, size: r.size }));
}

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'kf-mpd-rows-'));
  index = NvrIndex.open(join(dir, 'nvr.sqlite'), { create: true });
  // two sessions over 30 h: segments of SEG (some shorter), a key per hour, gaps, a few not verified
  index.sqlite.transaction(() => {
    for (const [n, session] of ['a1'.repeat(16), 'b2'.repeat(16)].entries()) {
      let t = T0 + n * 15 * HOUR_MS;
      for (let seq = 0; t < T0 + (n + 1) * 15 * HOUR_MS; seq++) {
        const ms = seq % 97 === 0 ? SEG * 0.75 : SEG;
        const state = seq % 211 === 5 ? 'quarantined' : seq % 307 === 7 ? 'pending-record' : 'verified';
        index.putSegment(row(session, seq, t, ms, String(Math.floor((t - T0) / HOUR_MS)).padStart(32, '0'), state));
        t += ms + (seq % 400 === 399 ? 60_000 : 0);
      }
    }
  })();
});
afterAll(() => {
  index.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('manifest segments, whole hours kept', () => {
  it('equal a plain query for any range, before and after any change to the index', () => {
    const rows = new ManifestRows(index.sqlite, 4_000);
    const time = fc.integer({ min: T0 - HOUR_MS, max: T0 + (HOURS + 1) * HOUR_MS });
    const change = fc.record({ kind: fc.constantFrom('quarantine', 'verify', 'delete', 'insert', 'move', 'none'), at: fc.integer({ min: 0, max: 5_500 }), session: fc.constantFrom('a1'.repeat(16), 'b2'.repeat(16)) });
    fc.assert(
      fc.property(time, fc.integer({ min: 1, max: 36 * HOUR_MS }), change, (from, span, c) => {
        const to = from + span;
        expect(rows.segments(SERIAL, from, to)).toEqual(reference(from, to));
        const s = index.segment(SERIAL, c.session, c.at);
        if (c.kind === 'quarantine' && s !== undefined) index.setSegmentState(SERIAL, c.session, c.at, 'quarantined');
        if (c.kind === 'verify' && s !== undefined) index.setSegmentState(SERIAL, c.session, c.at, 'verified');
        if (c.kind === 'delete' && s !== undefined) index.sqlite.prepare('DELETE FROM segments WHERE serial = ? AND session = ? AND seq = ?').run(SERIAL, c.session, c.at);
        if (c.kind === 'insert' && s === undefined) index.putSegment(row(c.session, c.at, T0 + c.at * SEG + 1, SEG, null));
        if (c.kind === 'move' && s !== undefined && s.wall_start !== null) index.putSegment({ ...s, wall_start: s.wall_start + 3 * HOUR_MS, wall_end: (s.wall_end ?? s.wall_start) + 3 * HOUR_MS });
        // the same range again, after the change
        expect(rows.segments(SERIAL, from, to)).toEqual(reference(from, to));
        expect(rows.size).toBeLessThanOrEqual(4_000);
      }),
      { numRuns: 60, seed: 13 },
    );
  });

  it('a day: hours in the cache are answered without reading them again', () => {
    const rows = new ManifestRows(index.sqlite);
    const from = T0 + 2 * HOUR_MS + 123;
    const to = from + 24 * HOUR_MS;
    const first = rows.segments(SERIAL, from, to);
    expect(first).toEqual(reference(from, to));
    expect(rows.size).toBeGreaterThan(20 * 300);
    const again = rows.segments(SERIAL, from, to);
    // the same objects for the whole hours (kept), an equal answer
    expect(again).toEqual(first);
    expect(again[first.length >> 1]).toBe(first[first.length >> 1]);
  });
});
