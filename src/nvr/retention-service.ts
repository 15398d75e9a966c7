/**
 * Retention in `nvr serve` (issue 12 §2): every `retention.interval`, and whenever an upload finds the store's
 * file system under its free-space floor, it asks planRetention (retention.ts) which of the oldest segments go —
 * by each camera's policy (max age, max bytes; config map camera → policy, with a default) and by the disk
 * watermark (below the floor, oldest unlocked segments of any camera until the target is free). In batches: at most
 * `batch` candidates per camera and pass, read oldest first through an index, so memory stays bounded however
 * large the store.
 *
 * Order (crash-safe with `nvr check`): one IMMEDIATE transaction re-checks the locks (so a lock committed before
 * it always wins, and none can commit during it), deletes the rows, records the ranges as expired, shrinks the
 * timeline spans and writes the files to a journal; then the files are unlinked and their directories fsync'd;
 * then the journal rows go. A crash after the commit leaves files listed in the journal: `nvr serve` finishes the
 * unlinks at start, and `nvr check` reports them as expired files (never as files to re-index) and removes them
 * with --repair. Deleting files first (Frigate's order) would leave rows without files after a crash, which `check`
 * cannot tell from real loss.
 *
 * When the disk is under its floor and nothing unlocked is left, the store is full of locked evidence: an alarm is
 * raised (alarms table, log, `nvr status`), ingest keeps answering 507 (its own free-space check) and cameras keep
 * buffering; as soon as space is freed — a lock released, files removed — uploads succeed again and the alarm is
 * cleared.
 */
import { constants } from 'node:fs';
import { open, rm } from 'node:fs/promises';
import { dirname, join, relative } from 'node:path';
import type { ExpiredInfo } from '../recording/layout.js';
import type { Logger } from '../server/log.js';
import type { NvrIndex } from './db.js';
import type { LockRow } from './locks.js';
import type { RetentionConfig } from './ops-config.js';
import { ISLANDS_SQL } from './ops-schema.js';
import { planRetention } from './retention.js';
import type { CameraLock, RetentionPolicy, RetentionReason, StoredSegment } from './retention.js';
import type { SegmentStore } from './store.js';

export interface RetentionServiceOptions {
  readonly index: NvrIndex;
  readonly store: SegmentStore;
  readonly floorBytes: number;
  readonly targetBytes: number;
  readonly config: RetentionConfig;
  readonly log: Logger;
  readonly now?: () => number;
  /** Free bytes on the store's file system (default: statfs of the store). */
  readonly freeBytes?: () => Promise<number>;
}

export interface RetentionRun {
  readonly at: number;
  readonly why: string;
  readonly deleted: number;
  readonly freedBytes: number;
  readonly byReason: Record<RetentionReason, number>;
  readonly freeBytes: number;
  readonly full: boolean;
}

interface Candidate extends StoredSegment {
  readonly session: string;
  readonly seq: number;
}

/** Unlinks the files the journal lists and forgets them (after a crash between commit and unlink, too). */
export async function finishRetentionJournal(index: NvrIndex, store: SegmentStore): Promise<number> {
  const db = index.sqlite;
  const rows = db.prepare<[], { id: number; path: string }>('SELECT id, path FROM retention_journal ORDER BY id').all();
  if (rows.length === 0) return 0;
  const dirs = new Set<string>();
  for (const r of rows) {
    await rm(join(store.root, r.path), { force: true });
    dirs.add(dirname(join(store.root, r.path)));
  }
  for (const d of dirs) {
    try {
      const fh = await open(d, constants.O_RDONLY | constants.O_DIRECTORY);
      try {
        await fh.sync();
      } finally {
        await fh.close();
      }
    } catch {
      // the directory is gone: nothing to make durable
    }
  }
  const del = db.prepare('DELETE FROM retention_journal WHERE id = ?');
  db.transaction(() => {
    for (const r of rows) del.run(r.id);
  })();
  return rows.length;
}

/** expired.json for an export of a session (recording/layout.ts): what retention deleted of it; undefined: nothing. */
export function expiredInfo(index: NvrIndex, serial: string, session: string): ExpiredInfo | undefined {
  const rows = index.sqlite.prepare<[string, string], { from_seq: number; to_seq: number; at: number; reason: string }>('SELECT from_seq, to_seq, at, reason FROM expired WHERE serial = ? AND session = ? ORDER BY from_seq').all(serial, session);
  return rows.length === 0 ? undefined : { v: 1, ranges: rows.map((r) => ({ from: r.from_seq, to: r.to_seq, at: new Date(r.at).toISOString(), reason: r.reason })) };
}

/** The journal's paths (relative to the store): files retention expired whose unlink did not finish. */
export function retentionJournal(index: NvrIndex): Set<string> {
  return new Set(index.sqlite.prepare<[], { path: string }>('SELECT path FROM retention_journal').all().map((r) => r.path));
}

export class RetentionService {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<RetentionRun> | undefined;
  private lastRunAt = 0;
  private fullSince: number | undefined;
  private lastFree: number | undefined;
  private stopped = false;
  private readonly now: () => number;
  private readonly free: () => Promise<number>;
  last: RetentionRun | undefined;

  constructor(private readonly o: RetentionServiceOptions) {
    this.now = o.now ?? Date.now;
    this.free = o.freeBytes ?? (() => o.store.freeBytes());
  }

  /** Whether the store is full of locked evidence (ingest answers 507), and since when. */
  get state(): { full: boolean; since?: string; freeBytes?: number; floorBytes: number; targetBytes: number; lastRun?: RetentionRun } {
    return {
      full: this.fullSince !== undefined,
      ...(this.fullSince !== undefined ? { since: new Date(this.fullSince).toISOString() } : {}),
      ...(this.lastFree !== undefined ? { freeBytes: this.lastFree } : {}),
      floorBytes: this.o.floorBytes,
      targetBytes: this.o.targetBytes,
      ...(this.last !== undefined ? { lastRun: this.last } : {}),
    };
  }

  policyOf(serial: string): RetentionPolicy {
    return this.o.config.cameras.get(serial) ?? this.o.config.default;
  }

  /** Finishes an interrupted run's unlinks, runs once, then every interval. */
  async start(): Promise<void> {
    const n = await finishRetentionJournal(this.o.index, this.o.store);
    if (n > 0) this.o.log.info({ event: 'retention-journal', files: n }, `removed ${n} expired files an interrupted retention run left`);
    await this.run('start');
    this.timer = setInterval(() => {
      this.run('interval').catch((e: unknown) => this.o.log.error({ event: 'retention-failed', err: String(e) }, `retention failed: ${String(e)}`));
    }, this.o.config.intervalMs);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer !== undefined) clearInterval(this.timer);
    await this.running?.catch(() => undefined);
  }

  /**
   * Before an upload is taken: when it would leave less than the floor free, retention runs first (one run at a
   * time; while the store is full of locked data, at most one run a second — the uploads get 507 meanwhile).
   */
  async beforeIngest(contentLength: number): Promise<void> {
    if (this.o.floorBytes <= 0 || this.stopped) return;
    const free = await this.free();
    this.lastFree = free;
    if (free - contentLength >= this.o.floorBytes) {
      if (this.fullSince !== undefined) this.clearFull(free);
      return;
    }
    if (this.running !== undefined) {
      await this.running.catch(() => undefined);
      return;
    }
    if (this.fullSince !== undefined && this.now() - this.lastRunAt < 1_000) return;
    await this.run('floor').catch((e: unknown) => this.o.log.error({ event: 'retention-failed', err: String(e) }, `retention failed: ${String(e)}`));
  }

  /** One run now (coalesced with one in progress). */
  run(why: string): Promise<RetentionRun> {
    if (this.running !== undefined) return this.running;
    const p = this.runInner(why).finally(() => {
      this.running = undefined;
      this.lastRunAt = this.now();
    });
    this.running = p;
    return p;
  }

  private activeLocks(): CameraLock[] {
    return this.o.index.sqlite
      .prepare<[], LockRow>('SELECT * FROM locks WHERE released_at IS NULL')
      .all()
      .map((l) => ({ camera: l.serial, start: l.start_ms, end: l.end_ms, caseId: l.case_id }));
  }

  private candidates(serial: string | undefined, limit: number): Candidate[] {
    const db = this.o.index.sqlite;
    const unlocked = `NOT EXISTS (SELECT 1 FROM locks l WHERE l.serial = g.serial AND l.released_at IS NULL AND l.start_ms < g.wall_end AND g.wall_start < l.end_ms)`;
    const cols = `g.rowid AS id, g.serial AS camera, g.session, g.seq, g.size AS bytes, g.wall_start AS start, g.wall_end AS "end"`;
    const base = `FROM segments g WHERE g.wall_start IS NOT NULL AND g.wall_end IS NOT NULL AND g.state <> 'quarantined' AND ${unlocked}`;
    if (serial === undefined) return db.prepare<[number], Candidate>(`SELECT ${cols} ${base} ORDER BY g.wall_start LIMIT ?`).all(limit);
    return db.prepare<[string, number], Candidate>(`SELECT ${cols} ${base} AND g.serial = ? ORDER BY g.wall_start LIMIT ?`).all(serial, limit);
  }

  private async runInner(why: string): Promise<RetentionRun> {
    const { index, config, floorBytes, targetBytes } = this.o;
    const db = index.sqlite;
    const byReason: Record<RetentionReason, number> = { age: 0, bytes: 0, disk: 0 };
    let deleted = 0;
    let freed = 0;
    let free = await this.free();
    let nothingLeft = false;
    // once under the floor, passes go on until the target is free (each pass sees at most `batch` candidates)
    let diskMode = false;
    const at = this.now();
    for (let pass = 0; pass < 1000 && !this.stopped; pass++) {
      const usage = new Map(db.prepare<[], { serial: string; bytes: number }>('SELECT serial, bytes FROM camera_usage').all().map((u) => [u.serial, u.bytes]));
      const now = this.now();
      const chosen = new Map<number, Candidate>();
      for (const serial of usage.keys()) {
        const p = this.policyOf(serial);
        if (p.maxAgeMs === undefined && p.maxBytes === undefined) continue;
        for (const c of this.candidates(serial, config.batch)) chosen.set(c.id, c);
      }
      if (floorBytes > 0 && free < floorBytes) diskMode = true;
      const below = diskMode && free < targetBytes;
      let diskBatch = 0;
      if (below) {
        const cs = this.candidates(undefined, config.batch);
        diskBatch = cs.length;
        for (const c of cs) chosen.set(c.id, c);
      }
      const oldest = [...chosen.values()].sort((a, b) => a.start - b.start || a.id - b.id);
      const plan = planRetention({
        now,
        policyOf: (s) => this.policyOf(s),
        cameraBytes: usage,
        oldest,
        locks: this.activeLocks(),
        ...(floorBytes > 0 ? { disk: { freeBytes: free, floorBytes: diskMode ? targetBytes : floorBytes, targetBytes } } : {}),
      });
      if (plan.delete.length === 0) {
        nothingLeft = below && free < floorBytes && diskBatch === 0;
        break;
      }
      const done = this.apply(plan.delete.map((d) => ({ ...(chosen.get(d.id) as Candidate), reason: d.reason })), now);
      // the rows' deletion and the journal are on disk before any file goes
      await index.durable();
      for (const d of done) {
        byReason[d.reason]++;
        deleted++;
        freed += d.bytes;
      }
      await finishRetentionJournal(index, this.o.store);
      free = await this.free();
      if (done.length === 0) break; // every one was locked meanwhile
    }
    free = await this.free();
    this.lastFree = free;
    if (floorBytes > 0 && free < floorBytes) {
      if (nothingLeft || this.candidates(undefined, 1).length === 0) this.raiseFull(free);
    } else if (this.fullSince !== undefined) this.clearFull(free);
    const r: RetentionRun = { at, why, deleted, freedBytes: freed, byReason, freeBytes: free, full: this.fullSince !== undefined };
    if (deleted > 0) this.o.log.info({ event: 'retention', why, deleted, freedBytes: freed, byReason, freeBytes: free }, `retention deleted ${deleted} segments (${freed} bytes): age ${byReason.age}, bytes ${byReason.bytes}, disk ${byReason.disk}`);
    this.last = r;
    return r;
  }

  /** The transaction: locks re-checked, rows deleted, expired ranges and spans updated, files journalled. */
  private apply(list: readonly (Candidate & { reason: RetentionReason })[], at: number): (Candidate & { reason: RetentionReason })[] {
    const db = this.o.index.sqlite;
    const isLocked = db.prepare<[string, number, number], { n: number }>('SELECT count(*) AS n FROM locks WHERE serial = ? AND released_at IS NULL AND start_ms < ? AND end_ms > ?');
    const del = db.prepare('DELETE FROM segments WHERE rowid = ? AND serial = ? AND session = ? AND seq = ?');
    const journal = db.prepare('INSERT INTO retention_journal (path, at) VALUES (?, ?)');
    const extend = db.prepare('UPDATE expired SET to_seq = ?, end_ms = max(end_ms, ?), at = ? WHERE serial = ? AND session = ? AND to_seq = ?');
    const insert = db.prepare('INSERT INTO expired (serial, session, from_seq, to_seq, start_ms, end_ms, at, reason) VALUES (?, ?, ?, ?, ?, ?, ?, ?)');
    return db
      .transaction(() => {
        const done: (Candidate & { reason: RetentionReason })[] = [];
        for (const c of list) {
          if ((isLocked.get(c.camera, c.end, c.start) as { n: number }).n > 0) continue;
          if (del.run(c.id, c.camera, c.session, c.seq).changes !== 1) continue;
          journal.run(relative(this.o.store.root, this.o.store.path(c.camera, c.session, 'seg', c.seq)), at);
          done.push(c);
        }
        // per session: runs of consecutive seq → expired ranges and the spans they cut
        const bySession = new Map<string, (Candidate & { reason: RetentionReason })[]>();
        for (const c of done) {
          const k = `${c.camera}\n${c.session}`;
          const l = bySession.get(k) ?? [];
          l.push(c);
          bySession.set(k, l);
        }
        for (const segs of bySession.values()) {
          segs.sort((a, b) => a.seq - b.seq);
          const first = segs[0] as Candidate & { reason: RetentionReason };
          let run = { from: first.seq, to: first.seq + 1, start: first.start, end: first.end, reason: first.reason as string };
          const flush = (): void => {
            if (extend.run(run.to, run.end, at, first.camera, first.session, run.from).changes === 0) insert.run(first.camera, first.session, run.from, run.to, run.start, run.end, at, `retention:${run.reason}`);
          };
          for (const s of segs.slice(1)) {
            if (s.seq === run.to) run = { ...run, to: s.seq + 1, end: Math.max(run.end, s.end) };
            else {
              flush();
              run = { from: s.seq, to: s.seq + 1, start: s.start, end: s.end, reason: s.reason };
            }
          }
          flush();
          this.cutSpans(first.camera, first.session, segs.map((s) => s.seq));
        }
        return done;
      })
      .immediate();
  }

  /** The spans of a session after `seqs` were deleted: a prefix moves the span's start; anything else is rebuilt. */
  private cutSpans(serial: string, session: string, seqs: readonly number[]): void {
    const db = this.o.index.sqlite;
    const lo = seqs[0] as number;
    const hi = (seqs[seqs.length - 1] as number) + 1;
    const spans = db.prepare<[string, string, number, number], { id: number; start_seq: number; end_seq: number }>('SELECT id, start_seq, end_seq FROM spans WHERE serial = ? AND session = ? AND start_seq < ? AND end_seq > ?').all(serial, session, hi, lo);
    const set = new Set(seqs);
    for (const sp of spans) {
      let k = sp.start_seq;
      while (k < sp.end_seq && set.has(k)) k++;
      const inside = seqs.filter((s) => s >= sp.start_seq && s < sp.end_seq).length;
      if (inside === k - sp.start_seq) {
        // a prefix (retention is oldest first): the span starts later, or is gone
        if (k === sp.end_seq) db.prepare('DELETE FROM spans WHERE id = ?').run(sp.id);
        else if (k > sp.start_seq) {
          const next = db.prepare<[string, string, number], { wall_start: number }>('SELECT wall_start FROM segments WHERE serial = ? AND session = ? AND seq = ?').get(serial, session, k);
          db.prepare('UPDATE spans SET start_seq = ?, wall_start = coalesce(?, wall_start) WHERE id = ?').run(k, next?.wall_start ?? null, sp.id);
        }
        continue;
      }
      db.prepare('DELETE FROM spans WHERE id = ?').run(sp.id);
      db.prepare(`INSERT INTO spans (serial, session, state, start_seq, end_seq, wall_start, wall_end) SELECT serial, session, state, start_seq, end_seq, wall_start, wall_end FROM (${ISLANDS_SQL.replace('%WHERE%', 'AND serial = ? AND session = ? AND seq >= ? AND seq < ?')})`).run(serial, session, sp.start_seq, sp.end_seq);
    }
  }

  private raiseFull(free: number): void {
    if (this.fullSince !== undefined) return;
    this.fullSince = this.now();
    const locked = (this.o.index.sqlite.prepare<[], { b: number | null }>('SELECT sum(g.size) AS b FROM segments g WHERE EXISTS (SELECT 1 FROM locks l WHERE l.serial = g.serial AND l.released_at IS NULL AND l.start_ms < g.wall_end AND g.wall_start < l.end_ms)').get() as { b: number | null }).b ?? 0;
    const detail = `storage full of locked evidence: ${free} bytes free, floor ${this.o.floorBytes}; ${locked} bytes under evidence locks, nothing unlocked left to delete — ingest answers 507, cameras keep buffering`;
    this.o.index.alarm({ at: this.fullSince, serial: '*', session: null, kind: 'storage-full', detail });
    this.o.log.error({ event: 'alarm', alarm: 'storage-full', freeBytes: free, floorBytes: this.o.floorBytes, lockedBytes: locked }, `ALARM: ${detail}`);
  }

  private clearFull(free: number): void {
    if (this.fullSince === undefined) return;
    const since = this.fullSince;
    this.fullSince = undefined;
    const detail = `storage no longer full: ${free} bytes free (floor ${this.o.floorBytes}), full since ${new Date(since).toISOString()}; ingest resumes`;
    this.o.index.alarm({ at: this.now(), serial: '*', session: null, kind: 'storage-full-cleared', detail });
    this.o.log.warn({ event: 'alarm-cleared', alarm: 'storage-full', freeBytes: free }, detail);
  }
}
