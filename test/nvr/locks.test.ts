/**
 * Evidence locks and their audit chain (src/nvr/locks.ts), the timeline spans the index keeps by trigger
 * (src/nvr/ops-schema.ts), and `keyframe nvr lock | unlock | locks` as a real process on a real index.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { NVR_MIGRATIONS, NvrIndex } from '../../src/nvr/db.js';
import type { SegmentRow } from '../../src/nvr/db.js';
import { LockStore, verifyAuditChain } from '../../src/nvr/locks.js';
import { ISLANDS_SQL } from '../../src/nvr/ops-schema.js';
import { expectOneLineError, runCli } from '../helpers/cli.js';

const T0 = Date.parse('2026-12-01T00:00:00Z');
const fresh = (): { dir: string; file: string; index: NvrIndex } => {
  const dir = mkdtempSync(join(tmpdir(), 'kf-nvr-locks-'));
  const file = join(dir, 'nvr.sqlite');
  return { dir, file, index: NvrIndex.open(file, { create: true }) };
};

const SESSION = 'aa'.repeat(16);
function seg(seq: number, state: SegmentRow['state'] = 'verified', session = SESSION): SegmentRow {
  const wall = state === 'pending-record' ? null : T0 + seq * 1000;
  return { serial: 'CAM-1', session, seq, size: 100, sha256: 'ab'.repeat(32), state, media_start: seq, media_end: seq + 1, wall_start: wall, wall_end: wall === null ? null : wall + 1000, kid: null, received: T0, skew_ms: 0 };
}

describe('evidence locks', () => {
  it('locks and unlocks with who, when and why; every change in a hash chain that catches edits, deletions and reordering', () => {
    const { index } = fresh();
    let now = T0;
    const store = new LockStore(index, () => (now += 1000));
    const a = store.lock({ serial: 'CAM-1', from: T0, to: T0 + 60_000, caseId: 'CASE-7', reason: 'burglary 1 Dec', actor: 'os:alice' });
    store.lock({ serial: 'CAM-2', from: T0, to: T0 + 60_000, caseId: 'CASE-7', reason: 'same case, other angle', actor: 'os:alice' });
    store.lock({ serial: 'CAM-1', from: T0 + 120_000, to: T0 + 180_000, caseId: 'CASE-8', reason: 'another', actor: 'cert:CN=ops' });
    expect(a.lock).toMatchObject({ case_id: 'CASE-7', serial: 'CAM-1', created_by: 'os:alice', reason: 'burglary 1 Dec', released_at: null });
    expect(store.active('CAM-1').map((l) => l.case_id)).toEqual(['CASE-7', 'CASE-8']);
    expect(store.active('CAM-1', T0 + 61_000, T0 + 119_000)).toEqual([]);
    // unlock one camera of a case, then the rest
    const u = store.unlock({ caseId: 'CASE-7', serial: 'CAM-2', reason: 'angle not needed', actor: 'os:bob' });
    expect(u.released.map((l) => [l.serial, l.released_by, l.release_reason])).toEqual([['CAM-2', 'os:bob', 'angle not needed']]);
    expect(store.active().map((l) => `${l.case_id}/${l.serial}`)).toEqual(['CASE-7/CAM-1', 'CASE-8/CAM-1']);
    expect(() => store.unlock({ caseId: 'CASE-7', serial: 'CAM-2', reason: 'again', actor: 'os:bob' })).toThrow(/no active lock of case CASE-7 on camera CAM-2/);
    expect(() => store.lock({ serial: 'CAM-1', from: T0, to: T0, caseId: 'X', reason: 'r', actor: 'a' })).toThrow(/end after it starts/);
    expect(() => store.lock({ serial: 'CAM-1', from: T0, to: T0 + 1, caseId: 'X', reason: 'line\nbreak', actor: 'a' })).toThrow(/reason/);
    // released locks are kept, with who and why
    expect(store.all()).toHaveLength(3);

    const log = store.auditLog();
    expect(log.map((r) => r.action)).toEqual(['lock', 'lock', 'lock', 'unlock']);
    expect(JSON.parse(log[3]?.entry as string)).toMatchObject({ v: 1, seq: 4, actor: 'os:bob', action: 'unlock', case: 'CASE-7', camera: 'CAM-2', reason: 'angle not needed' });
    const ok = verifyAuditChain(log);
    expect(ok.ok).toBe(true);
    expect(ok.ok && ok.head).toBe(log[3]?.hash);

    // an edited entry (its hashes left alone), a deleted one, two swapped: each caught at the entry
    const edited = log.map((r) => (r.seq === 2 ? { ...r, entry: r.entry.replace('other angle', 'nothing') } : r));
    expect(verifyAuditChain(edited)).toMatchObject({ ok: false, seq: 2, problem: /does not hash to its leaf/ });
    expect(verifyAuditChain([log[0], log[2], log[3]].map((r) => r as (typeof log)[number]))).toMatchObject({ ok: false, seq: 3 });
    expect(verifyAuditChain([log[1], log[0]].map((r) => r as (typeof log)[number]))).toMatchObject({ ok: false, seq: 2 });
    // an entry rewritten with a fresh leaf hash still breaks the link to the next
    const r2 = log[1] as (typeof log)[number];
    const forgedEntry = r2.entry.replace('other angle', 'nothing');
    const leafHash = (e: string): string => createHash('sha256').update(Buffer.concat([Buffer.from([0]), Buffer.from(e, 'utf8')])).digest('hex');
    const rewritten = log.map((r) => (r.seq === 2 ? { ...r, entry: forgedEntry, leaf: leafHash(forgedEntry) } : r));
    expect(verifyAuditChain(rewritten)).toMatchObject({ ok: false, seq: 2, problem: /does not chain/ });
    index.close();
  });

  it('keeps a camera\'s segments as a few spans, whatever order they arrive in (extend, prepend, merge, state)', () => {
    const { index } = fresh();
    const db = index.sqlite;
    const spans = (): { state: string; start_seq: number; end_seq: number; wall_start: number; wall_end: number }[] =>
      db.prepare<[], { state: string; start_seq: number; end_seq: number; wall_start: number; wall_end: number }>('SELECT state, start_seq, end_seq, wall_start, wall_end FROM spans ORDER BY start_seq').all();
    const islands = (): unknown[] => db.prepare(`SELECT state, start_seq, end_seq, wall_start, wall_end FROM (${ISLANDS_SQL.replace('%WHERE%', '')}) ORDER BY start_seq`).all();
    // live first: 0…9, then 20…29, then backfill 10…19 in order (extends 0…9, then merges with 20…29)
    for (let s = 0; s < 10; s++) index.putSegment(seg(s));
    for (let s = 20; s < 30; s++) index.putSegment(seg(s));
    expect(spans().map((s) => [s.start_seq, s.end_seq])).toEqual([[0, 10], [20, 30]]);
    for (let s = 10; s < 20; s++) index.putSegment(seg(s));
    expect(spans()).toEqual([{ state: 'verified', start_seq: 0, end_seq: 30, wall_start: T0, wall_end: T0 + 30_000 }]);
    // backfill in reverse order prepends
    for (let s = 49; s >= 35; s--) index.putSegment(seg(s));
    expect(spans().map((s) => [s.start_seq, s.end_seq])).toEqual([[0, 30], [35, 50]]);
    // a segment waiting for its record is not on the wall clock yet; when it verifies it joins the span
    index.putSegment(seg(30, 'pending-record'));
    expect(spans()).toHaveLength(2);
    index.setSegmentState('CAM-1', SESSION, 30, 'verified', { media_start: 30, media_end: 31, wall_start: T0 + 30_000, wall_end: T0 + 31_000, kid: null, skew_ms: 0 });
    expect(spans().map((s) => [s.start_seq, s.end_seq])).toEqual([[0, 31], [35, 50]]);
    // an identical retry changes nothing
    index.putSegment(seg(5));
    expect(spans()).toEqual(islands());
    // a segment of a span changing state splits it (the order of two triggers on one UPDATE is SQLite's to choose)
    index.setSegmentState('CAM-1', SESSION, 40, 'quarantined');
    expect(spans().map((s) => [s.state, s.start_seq, s.end_seq])).toEqual([['verified', 0, 31], ['verified', 35, 40], ['quarantined', 40, 41], ['verified', 41, 50]]);
    expect(spans().find((s) => s.start_seq === 35)?.wall_end).toBe(T0 + 40_000);
    expect(spans().find((s) => s.start_seq === 41)?.wall_start).toBe(T0 + 41_000);
    expect([...spans()].sort((a, b) => a.start_seq - b.start_seq || a.state.localeCompare(b.state))).toEqual(islands());
    index.setSegmentState('CAM-1', SESSION, 35, 'quarantined');
    index.setSegmentState('CAM-1', SESSION, 49, 'quarantined');
    expect(spans().map((s) => [s.state, s.start_seq, s.end_seq])).toEqual([['verified', 0, 31], ['quarantined', 35, 36], ['verified', 36, 40], ['quarantined', 40, 41], ['verified', 41, 49], ['quarantined', 49, 50]]);
    // bytes per camera kept by trigger
    expect(db.prepare('SELECT bytes, segments FROM camera_usage WHERE serial = ?').get('CAM-1')).toEqual({ bytes: 100 * 46, segments: 46 });
    index.close();
  });

  it('an index of schema 2 with segments gets its spans and byte counts at the upgrade', () => {
    const dir = mkdtempSync(join(tmpdir(), 'kf-nvr-locks-'));
    const file = join(dir, 'nvr.sqlite');
    const v2 = NvrIndex.open(file, { create: true, migrations: NVR_MIGRATIONS.slice(0, 2) });
    for (const s of [0, 1, 2, 5, 6]) v2.putSegment(seg(s));
    v2.putSegment(seg(7, 'pending-record'));
    v2.close();
    const v3 = NvrIndex.open(file);
    expect(v3.migratedFrom).toBe(2);
    expect(v3.sqlite.prepare('SELECT state, start_seq, end_seq, wall_start, wall_end FROM spans ORDER BY start_seq').all()).toEqual([
      { state: 'verified', start_seq: 0, end_seq: 3, wall_start: T0, wall_end: T0 + 3000 },
      { state: 'verified', start_seq: 5, end_seq: 7, wall_start: T0 + 5000, wall_end: T0 + 7000 },
    ]);
    expect(v3.sqlite.prepare('SELECT serial, bytes, segments FROM camera_usage').all()).toEqual([{ serial: 'CAM-1', bytes: 600, segments: 6 }]);
    v3.close();
  });

  it('keyframe nvr lock | locks | unlock: the OS user as actor, the chain checked, errors in one line', async () => {
    const { dir, file, index } = fresh();
    index.close();
    const config = join(dir, 'nvr.json');
    writeFileSync(config, JSON.stringify({ identity: 'nvr', trust: { root: 'root.pem' }, store: 'store', database: 'nvr.sqlite', freeSpaceFloor: 0 }));
    const user = `os:${userInfo().username}`;
    const base = ['--config', config, '--camera', 'CAM-9', '--case', 'C-1', '--reason', 'hit and run'];
    // 11:00+01:00 is 10:00Z: an empty range
    expectOneLineError(await runCli(['nvr', 'lock', ...base, '--from', '2026-12-01T10:00:00Z', '--to', '2026-12-01T11:00:00+01:00']), 2, /--to must be after --from/);
    expectOneLineError(await runCli(['nvr', 'lock', ...base, '--from', '1 Dec 2026', '--to', '2026-12-01T11:00:00Z']), 2, /--from must be an ISO 8601 time/);
    const lock = await runCli(['nvr', 'lock', ...base, '--from', '2026-12-01T10:00:00Z', '--to', '2026-12-01T12:00:00+01:00']);
    expect(lock.code, lock.stderr).toBe(0);
    expect(lock.stdout).toContain(`locked CAM-9 2026-12-01T10:00:00.000Z … 2026-12-01T11:00:00.000Z for case C-1 (lock 1, by ${user}; audit entry 1`);
    const raw = new Database(file, { readonly: true });
    expect(raw.prepare('SELECT serial, start_ms, end_ms, created_by, reason FROM locks').all()).toEqual([{ serial: 'CAM-9', start_ms: Date.parse('2026-12-01T10:00:00Z'), end_ms: Date.parse('2026-12-01T11:00:00Z'), created_by: user, reason: 'hit and run' }]);
    raw.close();
    const list = await runCli(['nvr', 'locks', '--config', config]);
    expect(list.code, list.stderr).toBe(0);
    expect(list.stdout).toMatch(/^1 {2}case C-1 {2}CAM-9 /m);
    expect(list.stdout).toMatch(/audit chain: 1 entries, head [0-9a-f]{64}/);
    const unlock = await runCli(['nvr', 'unlock', '--config', config, '--case', 'C-1', '--reason', 'case closed']);
    expect(unlock.code, unlock.stderr).toBe(0);
    expect(unlock.stdout).toContain(`unlocked lock 1: CAM-9`);
    expectOneLineError(await runCli(['nvr', 'unlock', '--config', config, '--case', 'C-1', '--reason', 'again']), 2, /no active lock of case C-1/);
    const all = await runCli(['nvr', 'locks', '--config', config, '--all', '--json']);
    const j = JSON.parse(all.stdout) as { locks: { released_by: string; release_reason: string }[]; audit: { ok: boolean; entries: number } };
    expect(j.locks).toMatchObject([{ released_by: user, release_reason: 'case closed' }]);
    expect(j.audit).toMatchObject({ ok: true, entries: 2 });
    // an edit of the audit table is caught: exit 1
    const rw = new Database(file);
    rw.prepare("UPDATE nvr_audit SET entry = replace(entry, 'hit and run', 'nothing') WHERE seq = 1").run();
    rw.close();
    const broken = await runCli(['nvr', 'locks', '--config', config]);
    expect(broken.code).toBe(1);
    expect(broken.stdout).toMatch(/AUDIT CHAIN BROKEN at entry 1: the entry does not hash to its leaf/);
    // ordinary I/O problems: one line naming the path, exit 2, nothing written
    const lockArgs = ['--camera', 'CAM-9', '--case', 'C-2', '--reason', 'r', '--from', '2026-12-01T10:00:00Z', '--to', '2026-12-01T11:00:00Z'];
    expectOneLineError(await runCli(['nvr', 'lock', '--config', join(dir, 'none', 'nvr.json'), ...lockArgs]), 2, /NVR config not found: .*none\/nvr\.json/);
    const elsewhere = join(dir, 'elsewhere.json');
    writeFileSync(elsewhere, JSON.stringify({ identity: 'nvr', trust: { root: 'root.pem' }, store: 'store', database: 'gone.sqlite', freeSpaceFloor: 0 }));
    for (const cmd of [['nvr', 'lock', '--config', elsewhere, ...lockArgs], ['nvr', 'unlock', '--config', elsewhere, '--case', 'C-2', '--reason', 'r'], ['nvr', 'locks', '--config', elsewhere]]) {
      expectOneLineError(await runCli(cmd), 2, /NVR index not found: .*gone\.sqlite/);
    }
    expect(existsSync(join(dir, 'gone.sqlite'))).toBe(false);
    mkdirSync(join(dir, 'gone.sqlite'));
    for (const cmd of [['nvr', 'lock', '--config', elsewhere, ...lockArgs], ['nvr', 'unlock', '--config', elsewhere, '--case', 'C-2', '--reason', 'r'], ['nvr', 'locks', '--config', elsewhere]]) {
      expectOneLineError(await runCli(cmd), 2, /NVR index .*gone\.sqlite is not a file/);
    }
  });
});
