/**
 * The NVR index's tables for retention, evidence lock and the admin timeline (issue 12 §2), as one migration
 * appended to NVR_MIGRATIONS (db.ts). Kept apart from the ingest tables so that the ingest code is not touched:
 * two things are maintained by triggers on `segments`, whoever writes it (ingest, `nvr check --repair`):
 *
 *   spans            contiguous runs of a session's segments in one state (seq [start_seq, end_seq), wall-clock
 *                    [wall_start, wall_end)): a segment that continues a run extends it, one that closes the gap
 *                    between two runs merges them — 30 days of a camera are a few rows per session, so a
 *                    timeline query reads a few rows, not a million segments. Only segments with wall times (their
 *                    fragment record held) are placed; a segment that changes state leaves its old span (split in
 *                    two) for one of its new state; retention shrinks or rebuilds the spans it cuts.
 *   camera_usage     bytes and segments per camera (retention by bytes, the admin camera list) without a scan.
 *
 * And the tables:
 *   expired          ranges retention deleted, per session (seq and wall-clock), so that a timeline and an export
 *                    say "expired by retention", never "missing"
 *   retention_journal  files whose rows retention deleted and that are not yet unlinked (crash between the two:
 *                    `nvr serve` and `nvr check --repair` finish the unlinks; nothing re-indexes them)
 *   locks            evidence locks: case, camera, wall-clock range, who, when, why; released (never deleted)
 *                    with who, when, why
 *   nvr_audit        every lock and unlock, hash-chained (RFC 6962 leaf hash of the canonical JSON entry,
 *                    h_i = SHA-256(h_{i-1} ‖ leaf_i)); the schema issue 13's audit log with checkpoints takes over
 *   ring_reports     the latest ring report of each camera (protocol.ts: what its ring holds that the NVR may lack)
 *
 * The triggers are SQLite's syntax; a PostgreSQL catalog would carry the same logic as plpgsql (or in the store).
 */
import type { Migration } from '../util/sqlite.js';

/** The trigger body that adds segment NEW to its session's spans (extend, prepend, merge, or a new span). */
const ADD_TO_SPANS = `
  UPDATE spans SET end_seq = NEW.seq + 1, wall_end = max(wall_end, NEW.wall_end), wall_start = min(wall_start, NEW.wall_start)
    WHERE serial = NEW.serial AND session = NEW.session AND state = NEW.state AND end_seq = NEW.seq;
  UPDATE spans SET start_seq = NEW.seq, wall_start = min(wall_start, NEW.wall_start), wall_end = max(wall_end, NEW.wall_end)
    WHERE serial = NEW.serial AND session = NEW.session AND state = NEW.state AND start_seq = NEW.seq + 1
      AND NOT EXISTS (SELECT 1 FROM spans a WHERE a.serial = NEW.serial AND a.session = NEW.session AND a.state = NEW.state AND a.end_seq = NEW.seq + 1);
  UPDATE spans SET
      end_seq = (SELECT b.end_seq FROM spans b WHERE b.serial = NEW.serial AND b.session = NEW.session AND b.state = NEW.state AND b.start_seq = NEW.seq + 1),
      wall_end = max(wall_end, (SELECT b.wall_end FROM spans b WHERE b.serial = NEW.serial AND b.session = NEW.session AND b.state = NEW.state AND b.start_seq = NEW.seq + 1))
    WHERE serial = NEW.serial AND session = NEW.session AND state = NEW.state AND end_seq = NEW.seq + 1
      AND EXISTS (SELECT 1 FROM spans b WHERE b.serial = NEW.serial AND b.session = NEW.session AND b.state = NEW.state AND b.start_seq = NEW.seq + 1);
  DELETE FROM spans WHERE serial = NEW.serial AND session = NEW.session AND state = NEW.state AND start_seq = NEW.seq + 1
      AND EXISTS (SELECT 1 FROM spans a WHERE a.serial = NEW.serial AND a.session = NEW.session AND a.state = NEW.state AND a.start_seq <= NEW.seq AND a.end_seq > NEW.seq + 1);
  INSERT INTO spans (serial, session, state, start_seq, end_seq, wall_start, wall_end)
    SELECT NEW.serial, NEW.session, NEW.state, NEW.seq, NEW.seq + 1, NEW.wall_start, NEW.wall_end
    WHERE NOT EXISTS (SELECT 1 FROM spans a WHERE a.serial = NEW.serial AND a.session = NEW.session AND a.state = NEW.state AND a.start_seq <= NEW.seq AND a.end_seq > NEW.seq);`;

/** The trigger body that takes segment OLD out of the span of its old state (split in two, or shortened). */
const REMOVE_FROM_SPANS = `
  INSERT INTO spans (serial, session, state, start_seq, end_seq, wall_start, wall_end)
    SELECT serial, session, state, start_seq, OLD.seq, wall_start,
           coalesce((SELECT g.wall_end FROM segments g WHERE g.serial = OLD.serial AND g.session = OLD.session AND g.seq = OLD.seq - 1), OLD.wall_start)
    FROM spans WHERE serial = OLD.serial AND session = OLD.session AND state = OLD.state AND start_seq < OLD.seq AND end_seq > OLD.seq;
  INSERT INTO spans (serial, session, state, start_seq, end_seq, wall_start, wall_end)
    SELECT serial, session, state, OLD.seq + 1, end_seq,
           coalesce((SELECT g.wall_start FROM segments g WHERE g.serial = OLD.serial AND g.session = OLD.session AND g.seq = OLD.seq + 1), OLD.wall_end), wall_end
    FROM spans WHERE serial = OLD.serial AND session = OLD.session AND state = OLD.state AND start_seq <= OLD.seq AND end_seq > OLD.seq + 1;
  DELETE FROM spans WHERE serial = OLD.serial AND session = OLD.session AND state = OLD.state AND start_seq <= OLD.seq AND end_seq > OLD.seq;`;

/**
 * Spans of the segments of (serial, session) with seq in [fromSeq, toSeq), computed from the rows ("gaps and
 * islands"): used to fill the table at migration and to rebuild what retention cut.
 */
export const ISLANDS_SQL = `
  SELECT serial, session, state, min(seq) AS start_seq, max(seq) + 1 AS end_seq, min(wall_start) AS wall_start, max(wall_end) AS wall_end
  FROM (SELECT serial, session, state, seq, wall_start, wall_end,
          seq - row_number() OVER (PARTITION BY serial, session, state ORDER BY seq) AS grp
        FROM segments WHERE wall_start IS NOT NULL AND wall_end IS NOT NULL %WHERE%)
  GROUP BY serial, session, state, grp`;

export const NVR_OPS_MIGRATION: Migration = {
  version: 4,
  description: 'retention (expired ranges, journal, usage), evidence locks and their audit chain, timeline spans, ring reports',
  up: (db) => {
    db.exec(`
CREATE TABLE spans (
  id INTEGER PRIMARY KEY, serial TEXT NOT NULL, session TEXT NOT NULL, state TEXT NOT NULL,
  start_seq INTEGER NOT NULL, end_seq INTEGER NOT NULL, wall_start INTEGER NOT NULL, wall_end INTEGER NOT NULL);
CREATE INDEX spans_by_time ON spans (serial, wall_start);
CREATE INDEX spans_by_end ON spans (serial, session, state, end_seq);
CREATE INDEX spans_by_start ON spans (serial, session, state, start_seq);
CREATE TABLE camera_usage (serial TEXT PRIMARY KEY, bytes INTEGER NOT NULL, segments INTEGER NOT NULL);
CREATE TABLE expired (
  id INTEGER PRIMARY KEY, serial TEXT NOT NULL, session TEXT NOT NULL, from_seq INTEGER NOT NULL, to_seq INTEGER NOT NULL,
  start_ms INTEGER NOT NULL, end_ms INTEGER NOT NULL, at INTEGER NOT NULL, reason TEXT NOT NULL);
CREATE INDEX expired_by_time ON expired (serial, start_ms);
CREATE INDEX expired_by_session ON expired (serial, session, to_seq);
CREATE TABLE retention_journal (id INTEGER PRIMARY KEY, path TEXT NOT NULL, at INTEGER NOT NULL);
CREATE TABLE locks (
  id INTEGER PRIMARY KEY, case_id TEXT NOT NULL, serial TEXT NOT NULL, start_ms INTEGER NOT NULL, end_ms INTEGER NOT NULL,
  reason TEXT NOT NULL, created_at INTEGER NOT NULL, created_by TEXT NOT NULL,
  released_at INTEGER, released_by TEXT, release_reason TEXT, CHECK (end_ms > start_ms));
CREATE INDEX locks_active ON locks (serial, released_at, start_ms);
CREATE INDEX locks_by_case ON locks (case_id);
CREATE TABLE nvr_audit (
  seq INTEGER PRIMARY KEY, at INTEGER NOT NULL, actor TEXT NOT NULL, action TEXT NOT NULL, entry TEXT NOT NULL,
  leaf TEXT NOT NULL, prev TEXT NOT NULL, hash TEXT NOT NULL);
CREATE TABLE ring_reports (serial TEXT PRIMARY KEY, at INTEGER NOT NULL, body TEXT NOT NULL);
CREATE INDEX segments_by_wall ON segments (wall_start);
CREATE INDEX segments_by_serial_wall ON segments (serial, wall_start);
CREATE INDEX segments_by_state ON segments (state, serial);

CREATE TRIGGER segments_span_insert AFTER INSERT ON segments WHEN NEW.wall_start IS NOT NULL AND NEW.wall_end IS NOT NULL
BEGIN ${ADD_TO_SPANS}
END;
CREATE TRIGGER segments_span_leave AFTER UPDATE OF state ON segments
  WHEN OLD.wall_start IS NOT NULL AND OLD.state IS NOT NEW.state
BEGIN ${REMOVE_FROM_SPANS}
END;
CREATE TRIGGER segments_span_update AFTER UPDATE OF state, wall_start, wall_end ON segments
  WHEN NEW.wall_start IS NOT NULL AND NEW.wall_end IS NOT NULL AND (OLD.wall_start IS NULL OR OLD.state IS NOT NEW.state)
BEGIN ${ADD_TO_SPANS}
END;
CREATE TRIGGER segments_usage_insert AFTER INSERT ON segments
BEGIN
  INSERT INTO camera_usage (serial, bytes, segments) VALUES (NEW.serial, NEW.size, 1)
    ON CONFLICT(serial) DO UPDATE SET bytes = bytes + NEW.size, segments = segments + 1;
END;
CREATE TRIGGER segments_usage_update AFTER UPDATE OF size ON segments
BEGIN
  UPDATE camera_usage SET bytes = bytes - OLD.size + NEW.size WHERE serial = NEW.serial;
END;
CREATE TRIGGER segments_usage_delete AFTER DELETE ON segments
BEGIN
  UPDATE camera_usage SET bytes = bytes - OLD.size, segments = segments - 1 WHERE serial = OLD.serial;
END;
`);
    db.exec(`INSERT INTO camera_usage (serial, bytes, segments) SELECT serial, sum(size), count(*) FROM segments GROUP BY serial`);
    db.exec(`INSERT INTO spans (serial, session, state, start_seq, end_seq, wall_start, wall_end)
      SELECT serial, session, state, start_seq, end_seq, wall_start, wall_end FROM (${ISLANDS_SQL.replace('%WHERE%', '')})`);
  },
};
