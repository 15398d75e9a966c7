/**
 * The segments a manifest lists (viewer.ts): a camera's verified segments wholly inside [from, to), in time order.
 *
 * A day is 43,200 two-second segments; reading them from SQLite for every manifest costs more than building the MPD.
 * So whole hours are kept in memory between manifests: each hour of a camera has a change counter in the index
 * (segment_hours, schema 5, moved by triggers on every insert, update and delete of a segment starting in it), and a
 * cached hour is used only while its counter is unchanged — a segment received, verified, quarantined or expired
 * makes its hour read again (so the hour a camera is recording into is read for every manifest that covers it). The
 * hours at the range's ends are filtered to it. Bounded: at most `maxSegments` segments are kept (least recently
 * used hour out first).
 */
import type { Database as Db, Statement } from 'better-sqlite3';
import { prepareOwn } from '../util/sqlite.js';
import { HOUR_MS } from './db.js';
import type { MpdSegment } from './mpd.js';

/** A segment as read (raw): session, seq, size, media_start, media_end, wall_start, wall_end, kid. */
type Row = [string, number, number, number, number, number, number, string | null];

/** The default bound: about 60 MB of segments (some 11 camera-days of 2 s segments). */
export const MPD_CACHE_SEGMENTS = 500_000;

const toSegment = ([session, seq, size, mediaStart, mediaEnd, wallStart, wallEnd, kid]: Row): MpdSegment => ({ session, seq, mediaStart, mediaEnd, wallStart, wallEnd, kid, size });

export class ManifestRows {
  private readonly inRange: Statement<[string, number, number, number], Row>;
  private readonly versions: Statement<[string, number, number], { hour: number; version: number }>;
  private readonly hours = new Map<string, { readonly version: number; readonly segments: readonly MpdSegment[] }>();
  private held = 0;

  constructor(
    db: Db,
    private readonly maxSegments = MPD_CACHE_SEGMENTS,
  ) {
    // a range of the covering index segments_for_mpd, read as arrays (objects per row would cost more than the read)
    this.inRange = prepareOwn<[string, number, number, number], Row>(
      db,
      "SELECT session, seq, size, media_start, media_end, wall_start, wall_end, kid FROM segments WHERE serial = ? AND wall_start >= ? AND wall_start < ? AND wall_end <= ? AND state = 'verified' ORDER BY wall_start, seq",
    ).raw(true);
    this.versions = prepareOwn(db, 'SELECT hour, version FROM segment_hours WHERE serial = ? AND hour >= ? AND hour <= ? ORDER BY hour');
  }

  /** The camera's verified segments with from ≤ wall_start and wall_end ≤ to, ordered by wall_start then seq. */
  segments(serial: string, from: number, to: number): MpdSegment[] {
    const first = Math.floor(from / HOUR_MS);
    const last = Math.floor((to - 1) / HOUR_MS);
    // a range inside one hour: read exactly (a live view's last minutes; nothing worth keeping)
    if (last === first) return this.read(serial, from, to, to);
    const out: MpdSegment[] = [];
    for (const { hour, version } of this.versions.all(serial, first, last)) {
      const segs = this.hour(serial, hour, version);
      // the hours at the ends are covered in part
      if (hour === first || hour === last) {
        for (const s of segs) if (s.wallStart >= from && s.wallStart < to && s.wallEnd <= to) out.push(s);
      } else {
        for (const s of segs) if (s.wallEnd <= to) out.push(s);
      }
    }
    return out;
  }

  private read(serial: string, from: number, before: number, endBy: number): MpdSegment[] {
    return this.inRange.all(serial, from, before, endBy).map(toSegment);
  }

  private hour(serial: string, hour: number, version: number): readonly MpdSegment[] {
    const key = `${serial}\u0000${hour}`;
    const hit = this.hours.get(key);
    if (hit !== undefined && hit.version === version) {
      // most recently used last
      this.hours.delete(key);
      this.hours.set(key, hit);
      return hit.segments;
    }
    if (hit !== undefined) {
      this.hours.delete(key);
      this.held -= hit.segments.length;
    }
    // every segment starting in the hour (a segment ending after `to` is left out by the caller, not here)
    const segments = this.read(serial, hour * HOUR_MS, (hour + 1) * HOUR_MS, Number.MAX_SAFE_INTEGER);
    if (segments.length <= this.maxSegments) {
      this.hours.set(key, { version, segments });
      this.held += segments.length;
      for (const [k, v] of this.hours) {
        if (this.held <= this.maxSegments) break;
        this.hours.delete(k);
        this.held -= v.segments.length;
      }
    }
    return segments;
  }

  /** Segments held in memory now. */
  get size(): number {
    return this.held;
  }
}
