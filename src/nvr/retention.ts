/**
 * Retention (issue 12 §2): which stored segments to delete, and why — by age and by bytes per camera (or group),
 * and by the disk's watermark across cameras — never one under an evidence lock. Pure: the store hands it the
 * oldest segments and the locks, deletes what it returns, and records the deleted ranges as expired, so that a
 * timeline and `verify` say "expired by retention", not "missing".
 *
 * The disk watermark: below `floorBytes` free, delete the oldest unlocked segments of any camera until `targetBytes`
 * are free. When only locked data is left and the disk is still below the floor, the plan says so (`full`): ingest
 * then answers 507, cameras keep buffering, and an alarm is raised — locked data is never deleted.
 */
import type { LockRange, TimeRange } from './timeline.js';

export interface RetentionPolicy {
  /** Delete segments that ended more than this long ago. */
  readonly maxAgeMs?: number;
  /** Keep at most this many bytes for the camera (oldest first out). */
  readonly maxBytes?: number;
}

export interface StoredSegment extends TimeRange {
  readonly id: number;
  readonly camera: string;
  readonly bytes: number;
}

export interface CameraLock extends LockRange {
  readonly camera: string;
}

export interface RetentionInput {
  readonly now: number;
  readonly policyOf: (camera: string) => RetentionPolicy;
  /** Bytes each camera holds now. */
  readonly cameraBytes: ReadonlyMap<string, number>;
  /** Candidates, oldest first (by start), of every camera. */
  readonly oldest: readonly StoredSegment[];
  readonly locks: readonly CameraLock[];
  readonly disk?: { readonly freeBytes: number; readonly floorBytes: number; readonly targetBytes: number };
}

export type RetentionReason = 'age' | 'bytes' | 'disk';

export interface RetentionPlan {
  readonly delete: readonly (StoredSegment & { readonly reason: RetentionReason })[];
  /** The deleted ranges per camera, merged: what the store records as expired. */
  readonly expired: ReadonlyMap<string, readonly TimeRange[]>;
  readonly freedBytes: number;
  /** Segments kept only because a lock covers them (that retention would otherwise delete). */
  readonly keptLocked: number;
  /** The disk is below its floor and nothing unlocked is left among the candidates: refuse ingest (507). */
  readonly full: boolean;
}

function locked(seg: StoredSegment, locks: readonly CameraLock[]): boolean {
  return locks.some((l) => l.camera === seg.camera && l.start < seg.end && seg.start < l.end);
}

export function planRetention(input: RetentionInput): RetentionPlan {
  const chosen = new Map<number, StoredSegment & { reason: RetentionReason }>();
  const bytesLeft = new Map(input.cameraBytes);
  let keptLocked = 0;
  let freed = 0;
  const take = (seg: StoredSegment, reason: RetentionReason): void => {
    chosen.set(seg.id, { ...seg, reason });
    bytesLeft.set(seg.camera, (bytesLeft.get(seg.camera) ?? 0) - seg.bytes);
    freed += seg.bytes;
  };
  // 1. per camera: age, then bytes (oldest first)
  for (const seg of input.oldest) {
    const policy = input.policyOf(seg.camera);
    const tooOld = policy.maxAgeMs !== undefined && seg.end <= input.now - policy.maxAgeMs;
    const tooBig = policy.maxBytes !== undefined && (bytesLeft.get(seg.camera) ?? 0) > policy.maxBytes;
    if (!tooOld && !tooBig) continue;
    if (locked(seg, input.locks)) {
      keptLocked++;
      continue;
    }
    take(seg, tooOld ? 'age' : 'bytes');
  }
  // 2. the disk's watermark, across cameras, oldest first
  let full = false;
  const disk = input.disk;
  if (disk !== undefined && disk.freeBytes + freed < disk.floorBytes) {
    for (const seg of input.oldest) {
      if (disk.freeBytes + freed >= disk.targetBytes) break;
      if (chosen.has(seg.id)) continue;
      if (locked(seg, input.locks)) continue;
      take(seg, 'disk');
    }
    full = disk.freeBytes + freed < disk.floorBytes;
  }
  const del = [...chosen.values()].sort((a, b) => a.start - b.start || a.id - b.id);
  const expired = new Map<string, TimeRange[]>();
  for (const seg of [...del].sort((a, b) => (a.camera < b.camera ? -1 : a.camera > b.camera ? 1 : a.start - b.start))) {
    const list = expired.get(seg.camera) ?? [];
    const last = list[list.length - 1];
    if (last !== undefined && seg.start <= last.end) list[list.length - 1] = { start: last.start, end: Math.max(last.end, seg.end) };
    else list.push({ start: seg.start, end: seg.end });
    expired.set(seg.camera, list);
  }
  return { delete: del, expired, freedBytes: freed, keptLocked, full };
}
