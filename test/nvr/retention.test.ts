/** Retention's pure planner: age, bytes and the disk watermark, oldest first, never a locked segment; 507 when only locked data is left. */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { planRetention } from '../../src/nvr/retention.js';
import type { CameraLock, StoredSegment } from '../../src/nvr/retention.js';

const MIN = 60_000;
function segments(camera: string, count: number, idBase: number, bytes = 100): StoredSegment[] {
  return Array.from({ length: count }, (_, i) => ({ id: idBase + i, camera, start: i * MIN, end: (i + 1) * MIN, bytes }));
}
const total = (segs: StoredSegment[], camera: string): number => segs.filter((s) => s.camera === camera).reduce((a, s) => a + s.bytes, 0);

describe('planRetention', () => {
  it('deletes by age and by bytes per camera, oldest first, and records merged expired ranges', () => {
    const segs = [...segments('A', 10, 0), ...segments('B', 10, 100)].sort((a, b) => a.start - b.start);
    const plan = planRetention({
      now: 10 * MIN,
      policyOf: (c) => (c === 'A' ? { maxAgeMs: 7 * MIN } : { maxBytes: 500 }),
      cameraBytes: new Map([
        ['A', total(segs, 'A')],
        ['B', total(segs, 'B')],
      ]),
      oldest: segs,
      locks: [],
    });
    expect(plan.delete.filter((s) => s.camera === 'A').map((s) => [s.id, s.reason])).toEqual([
      [0, 'age'],
      [1, 'age'],
      [2, 'age'],
    ]);
    expect(plan.delete.filter((s) => s.camera === 'B').map((s) => s.id)).toEqual([100, 101, 102, 103, 104]);
    expect(plan.expired.get('A')).toEqual([{ start: 0, end: 3 * MIN }]);
    expect(plan.expired.get('B')).toEqual([{ start: 0, end: 5 * MIN }]);
    expect(plan.freedBytes).toBe(800);
    expect(plan.full).toBe(false);
  });

  it('never deletes a locked segment; the disk floor with only locked data left says full (507)', () => {
    const segs = segments('A', 6, 0);
    const locks: CameraLock[] = [{ camera: 'A', start: 1.5 * MIN, end: 6 * MIN, caseId: 'CASE-7' }];
    const plan = planRetention({ now: 100 * MIN, policyOf: () => ({ maxAgeMs: MIN }), cameraBytes: new Map([['A', 600]]), oldest: segs, locks, disk: { freeBytes: 50, floorBytes: 1000, targetBytes: 2000 } });
    expect(plan.delete.map((s) => s.id)).toEqual([0]);
    expect(plan.keptLocked).toBe(5);
    expect(plan.full).toBe(true);
    // a lock on another camera protects nothing here
    const other = planRetention({ now: 100 * MIN, policyOf: () => ({}), cameraBytes: new Map([['A', 600]]), oldest: segs, locks: [{ ...locks[0], camera: 'B' } as CameraLock], disk: { freeBytes: 50, floorBytes: 300, targetBytes: 400 } });
    expect(other.delete.map((s) => [s.id, s.reason])).toEqual([
      [0, 'disk'],
      [1, 'disk'],
      [2, 'disk'],
      [3, 'disk'],
    ]);
    expect(other.full).toBe(false);
  });

  it('properties: nothing locked is deleted; per-camera caps hold unless locks prevent it; deletions are the oldest unlocked', () => {
    const seg = fc.record({ camera: fc.constantFrom('A', 'B', 'C'), start: fc.integer({ min: 0, max: 1000 }), len: fc.integer({ min: 1, max: 50 }), bytes: fc.integer({ min: 1, max: 100 }) });
    const lock = fc.record({ camera: fc.constantFrom('A', 'B', 'C'), start: fc.integer({ min: 0, max: 1000 }), len: fc.integer({ min: 1, max: 200 }) });
    fc.assert(
      fc.property(fc.array(seg, { maxLength: 40 }), fc.array(lock, { maxLength: 3 }), fc.integer({ min: 0, max: 2000 }), fc.integer({ min: 0, max: 1500 }), (raw, rawLocks, maxBytes, maxAge) => {
        const segs = raw.map((s, id) => ({ id, camera: s.camera, start: s.start, end: s.start + s.len, bytes: s.bytes })).sort((a, b) => a.start - b.start || a.id - b.id);
        const locks = rawLocks.map((l) => ({ camera: l.camera, start: l.start, end: l.start + l.len, caseId: 'x' }));
        const bytes = new Map(['A', 'B', 'C'].map((c) => [c, total(segs, c)]));
        const plan = planRetention({ now: 1100, policyOf: () => ({ maxBytes, maxAgeMs: maxAge }), cameraBytes: bytes, oldest: segs, locks });
        const isLocked = (s: StoredSegment): boolean => locks.some((l) => l.camera === s.camera && l.start < s.end && s.start < l.end);
        const deleted = new Set(plan.delete.map((s) => s.id));
        for (const s of plan.delete) expect(isLocked(s)).toBe(false);
        for (const c of ['A', 'B', 'C']) {
          const kept = segs.filter((s) => s.camera === c && !deleted.has(s.id));
          const keptBytes = kept.reduce((a, s) => a + s.bytes, 0);
          if (keptBytes > maxBytes) expect(kept.some(isLocked) || keptBytes <= maxBytes).toBe(true);
          for (const s of kept) if (s.end <= 1100 - maxAge) expect(isLocked(s)).toBe(true);
          // over the byte cap, the oldest go first: every unlocked segment before one deleted for bytes is deleted too
          const mine = segs.filter((s) => s.camera === c);
          const lastByBytes = mine.map((s) => plan.delete.find((d) => d.id === s.id)?.reason).lastIndexOf('bytes');
          for (const s of mine.slice(0, Math.max(0, lastByBytes))) if (!isLocked(s)) expect(deleted.has(s.id)).toBe(true);
        }
      }),
      { numRuns: 300 },
    );
  });
});
