/**
 * What the NVR's operators see and do, over the index (issue 12 §2, "An admin API"): the camera list (last seen,
 * upload lag, bytes, segments, verification summary, skew), each camera's timeline (buildTimeline over the stored
 * spans, quarantined segments, lost records, expired ranges, the camera's latest ring report, and the locks), and
 * the ring reports cameras send (protocol.ts, `PUT /ingest/v1/{serial}/ring`). Used by admin.ts and the CLI.
 */
import { InputError } from '../errors.js';
import type { NvrIndex } from './db.js';
import { LockStore } from './locks.js';
import type { RingReport } from './protocol.js';
import type { RetentionService } from './retention-service.js';
import { buildTimeline, timelineTotals } from './timeline.js';
import type { StateRange, Timeline, TimeRange } from './timeline.js';

const SESSION = /^[0-9a-f]{32}$/;

/** Validates a ring report body (protocol.ts); throws InputError. */
export function parseRingReport(text: string): RingReport {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    throw new InputError('a ring report is JSON');
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new InputError('a ring report is a JSON object');
  const keys = Object.keys(raw);
  if (keys.length !== 1 || keys[0] !== 'sessions') throw new InputError('a ring report holds "sessions" only');
  const sessions = (raw as { sessions: unknown }).sessions;
  if (typeof sessions !== 'object' || sessions === null || Array.isArray(sessions)) throw new InputError('"sessions" maps session ids to lists of [from, to] fragment ranges');
  const entries = Object.entries(sessions as Record<string, unknown>);
  if (entries.length > 1000) throw new InputError('a ring report names at most 1000 sessions');
  let total = 0;
  const out: Record<string, [number, number][]> = {};
  for (const [session, ranges] of entries) {
    if (!SESSION.test(session)) throw new InputError(`${JSON.stringify(session)} is not a session id`);
    if (!Array.isArray(ranges)) throw new InputError(`session ${session}: a list of [from, to] ranges`);
    total += ranges.length;
    if (total > 10_000) throw new InputError('a ring report holds at most 10000 ranges');
    out[session] = ranges.map((r: unknown) => {
      if (!Array.isArray(r) || r.length !== 2 || !r.every((n) => Number.isSafeInteger(n) && (n as number) >= 0) || (r[0] as number) >= (r[1] as number)) throw new InputError(`session ${session}: ${JSON.stringify(r)} is not a [from, to) range of fragment numbers`);
      return [r[0] as number, r[1] as number];
    });
  }
  return { sessions: out };
}

export interface CameraInfo {
  readonly serial: string;
  readonly firstSeen: string;
  readonly lastSeen: string;
  /** The newest segment's wall-clock end (what the camera recorded last that the NVR holds). */
  readonly latestRecorded: string | null;
  /** How long the newest segment took to arrive after it ended (receipt − wall end), ms. */
  readonly uploadLagMs: number | null;
  /** How far behind now the newest held segment ends, ms. */
  readonly behindMs: number | null;
  readonly bytes: number;
  readonly segments: number;
  readonly verification: { readonly verified: number; readonly unverified: number; readonly quarantined: number; readonly quarantinedObjects: number };
  /** Receipt − claimed start of the camera's newest session (its clock skew), ms. */
  readonly skewMs: number | null;
  readonly lockedRanges: number;
  readonly ringReport: string | null;
}

export class NvrOps {
  readonly locks: LockStore;

  constructor(
    readonly index: NvrIndex,
    readonly retention?: RetentionService,
    private readonly now: () => number = Date.now,
  ) {
    this.locks = new LockStore(index, now);
  }

  private get db() {
    return this.index.sqlite;
  }

  putRing(serial: string, report: RingReport): void {
    this.db.prepare('INSERT INTO ring_reports (serial, at, body) VALUES (?, ?, ?) ON CONFLICT(serial) DO UPDATE SET at = excluded.at, body = excluded.body').run(serial, this.now(), JSON.stringify(report));
  }

  ring(serial: string): { at: number; report: RingReport } | undefined {
    const r = this.db.prepare<[string], { at: number; body: string }>('SELECT at, body FROM ring_reports WHERE serial = ?').get(serial);
    return r === undefined ? undefined : { at: r.at, report: JSON.parse(r.body) as RingReport };
  }

  /** The wall-clock ranges of a ring report: from the fragment records the NVR holds, else its neighbours' times. */
  onCamera(serial: string): TimeRange[] {
    const ring = this.ring(serial);
    if (ring === undefined) return [];
    const out: TimeRange[] = [];
    const seg = this.db.prepare<[string, string, number], { wall_start: number | null; wall_end: number | null }>('SELECT wall_start, wall_end FROM segments WHERE serial = ? AND session = ? AND seq = ?');
    const recs = this.db.prepare<[string, string, number, number], { json: string }>("SELECT json FROM records WHERE serial = ? AND session = ? AND idx BETWEEN ? AND ? AND kind = 'fragment' AND state = 'ok'");
    for (const [session, ranges] of Object.entries(ring.report.sessions)) {
      const s = this.index.session(serial, session);
      if (s?.start_ms === null || s?.start_ms === undefined) continue; // no session record: its wall clock is unknown
      const startMs = s.start_ms;
      const avg = this.db.prepare<[string, string], { d: number | null }>('SELECT avg(wall_end - wall_start) AS d FROM (SELECT wall_start, wall_end FROM segments WHERE serial = ? AND session = ? AND wall_start IS NOT NULL ORDER BY seq DESC LIMIT 50)').get(serial, session)?.d ?? 1000;
      /** The fragment record of `seq` (record idx is seq + 1 plus any lost records before it). */
      const fragment = (seq: number): { start: number; end: number } | undefined => {
        for (const r of recs.all(serial, session, seq + 1, seq + 65)) {
          const f = JSON.parse(r.json) as { seq: number; start: number; end: number };
          if (f.seq === seq) return { start: startMs + f.start * 1000, end: startMs + f.end * 1000 };
        }
        return undefined;
      };
      for (const [from, to] of ranges) {
        const start = fragment(from)?.start ?? (from === 0 ? startMs : seg.get(serial, session, from - 1)?.wall_end) ?? startMs + from * avg;
        const end = fragment(to - 1)?.end ?? seg.get(serial, session, to)?.wall_start ?? start + (to - from) * avg;
        if (end > start) out.push({ start: Math.round(start), end: Math.round(end) });
      }
    }
    return out;
  }

  /** A camera's timeline over [from, to). */
  timeline(serial: string, from: number, to: number): Timeline & { totals: ReturnType<typeof timelineTotals> } {
    const db = this.db;
    const held: StateRange[] = db
      .prepare<[string, number, number], { state: string; wall_start: number; wall_end: number }>('SELECT state, wall_start, wall_end FROM spans WHERE serial = ? AND wall_start < ? AND wall_end > ?')
      .all(serial, to, from)
      .map((r) => ({ start: r.wall_start, end: r.wall_end, state: r.state === 'verified' ? 'verified' : r.state === 'quarantined' ? 'quarantined' : 'unverified' }));
    // quarantined segments are placed by their signed fragment record, when it is held
    const q = db.prepare<[string], { session: string; idx: number; start_ms: number | null }>("SELECT q.session, q.idx, s.start_ms FROM quarantine q JOIN sessions s ON s.serial = q.serial AND s.session = q.session WHERE q.serial = ? AND q.kind = 'seg' AND q.idx IS NOT NULL").all(serial);
    const recs = db.prepare<[string, string, number, number], { json: string }>("SELECT json FROM records WHERE serial = ? AND session = ? AND idx BETWEEN ? AND ? AND kind = 'fragment' AND state = 'ok'");
    for (const r of q) {
      if (r.start_ms === null) continue;
      for (const rec of recs.all(serial, r.session, r.idx + 1, r.idx + 65)) {
        const f = JSON.parse(rec.json) as { seq: number; start: number; end: number };
        if (f.seq === r.idx) held.push({ start: Math.round(r.start_ms + f.start * 1000), end: Math.round(r.start_ms + f.end * 1000), state: 'quarantined' });
      }
    }
    const lost = db
      .prepare<[string], { start_ms: number | null; media_start: number; media_end: number }>('SELECT s.start_ms, l.media_start, l.media_end FROM lost l JOIN sessions s ON s.serial = l.serial AND s.session = l.of_session WHERE l.serial = ?')
      .all(serial)
      .filter((l) => l.start_ms !== null)
      .map((l) => ({ start: Math.round((l.start_ms as number) + l.media_start * 1000), end: Math.round((l.start_ms as number) + l.media_end * 1000) }));
    const expired = db.prepare<[string, number, number], { start_ms: number; end_ms: number }>('SELECT start_ms, end_ms FROM expired WHERE serial = ? AND start_ms < ? AND end_ms > ?').all(serial, to, from).map((e) => ({ start: e.start_ms, end: e.end_ms }));
    const locks = this.locks.active(serial, from, to).map((l) => ({ start: l.start_ms, end: l.end_ms, caseId: l.case_id }));
    const t = buildTimeline({ held, onCamera: this.onCamera(serial), lost, expired, locks }, from, to);
    return { ...t, totals: timelineTotals(t) };
  }

  cameras(): CameraInfo[] {
    const db = this.db;
    const now = this.now();
    const iso = (ms: number | null | undefined): string | null => (ms === null || ms === undefined ? null : new Date(ms).toISOString());
    const newest = db.prepare<[string], { wall_end: number; received: number }>('SELECT wall_end, received FROM segments WHERE serial = ? AND wall_start IS NOT NULL ORDER BY wall_start DESC LIMIT 1');
    const usage = db.prepare<[string], { bytes: number; segments: number }>('SELECT bytes, segments FROM camera_usage WHERE serial = ?');
    const byState = db.prepare<[string], { state: string; n: number }>('SELECT state, count(*) AS n FROM segments WHERE serial = ? AND state IN (\'pending-record\', \'quarantined\') GROUP BY state');
    const qObjects = db.prepare<[string], { n: number }>('SELECT count(*) AS n FROM quarantine WHERE serial = ?');
    const skew = db.prepare<[string], { skew_ms: number | null }>('SELECT skew_ms FROM sessions WHERE serial = ? AND verified = 1 ORDER BY start_ms DESC LIMIT 1');
    const locks = db.prepare<[string], { n: number }>('SELECT count(*) AS n FROM locks WHERE serial = ? AND released_at IS NULL');
    const ring = db.prepare<[string], { at: number }>('SELECT at FROM ring_reports WHERE serial = ?');
    return this.index.cameras().map((c) => {
      const n = newest.get(c.serial);
      const u = usage.get(c.serial) ?? { bytes: 0, segments: 0 };
      const states = new Map(byState.all(c.serial).map((r) => [r.state, r.n]));
      const unverified = states.get('pending-record') ?? 0;
      const quarantined = states.get('quarantined') ?? 0;
      return {
        serial: c.serial,
        firstSeen: new Date(c.first_seen).toISOString(),
        lastSeen: new Date(c.last_seen).toISOString(),
        latestRecorded: iso(n?.wall_end),
        uploadLagMs: n === undefined ? null : n.received - n.wall_end,
        behindMs: n === undefined ? null : now - n.wall_end,
        bytes: u.bytes,
        segments: u.segments,
        verification: { verified: u.segments - unverified - quarantined, unverified, quarantined, quarantinedObjects: (qObjects.get(c.serial) as { n: number }).n },
        skewMs: skew.get(c.serial)?.skew_ms ?? null,
        lockedRanges: (locks.get(c.serial) as { n: number }).n,
        ringReport: iso(ring.get(c.serial)?.at),
      };
    });
  }

  status(): Record<string, unknown> {
    return {
      storage: this.retention?.state ?? null,
      counts: this.index.counts(),
      recentAlarms: this.index
        .alarms()
        .slice(-20)
        .map((a) => ({ ...a, at: new Date(a.at).toISOString() })),
    };
  }
}
