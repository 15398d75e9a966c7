/**
 * Retention in the NVR (src/nvr/retention-service.ts) on real files, a real index and a real small file system
 * (a tmpfs of a few MB mounted for the test; the suite runs as root): age and byte policies delete the oldest
 * first and record what they deleted as expired; an evidence lock survives both and the disk watermark; a store
 * full of locked evidence answers 507 to a real upload over mutual TLS, deletes nothing and raises an alarm, and
 * ingest resumes when space is freed or the lock released. A crash between the index commit and the unlinks is
 * finished by the next run and reported by `nvr check`, never re-indexed.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statfsSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { checkStore } from '../../src/nvr/check.js';
import { loadNvrConfig } from '../../src/nvr/config.js';
import { NvrIndex } from '../../src/nvr/db.js';
import type { SegmentRow } from '../../src/nvr/db.js';
import { exportSession } from '../../src/nvr/ingest.js';
import { NvrOps } from '../../src/nvr/ops.js';
import { parseCertificates } from '../../src/pki/pem.js';
import { verifyEvidence } from '../../src/recording/evidence.js';
import { RETENTION_DEFAULTS } from '../../src/nvr/ops-config.js';
import { RetentionService } from '../../src/nvr/retention-service.js';
import { startNvr } from '../../src/nvr/server.js';
import type { RunningNvr } from '../../src/nvr/server.js';
import { SegmentStore } from '../../src/nvr/store.js';
import { sha256Hex } from '../../src/recording/records.js';
import { silentLogger } from '../../src/server/log.js';
import { runCli } from '../helpers/cli.js';
import { CameraClient, makeNvrSite, readRecording, recordFor } from './_setup.js';

const mounts: string[] = [];
function tmpfs(dir: string, size: string): string {
  mkdirSync(dir, { recursive: true });
  execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${size},mode=0700`, 'tmpfs', dir]);
  mounts.push(dir);
  return dir;
}
const running: RunningNvr[] = [];
afterAll(async () => {
  for (const n of running) await n.close();
  for (const m of mounts) execFileSync('umount', [m]);
});

const DAY = 86_400_000;
const NOW = Date.parse('2026-12-07T00:00:00Z');

function seg(serial: string, session: string, seq: number, wallStart: number, size: number, sha256: string): SegmentRow {
  return { serial, session, seq, size, sha256, state: 'verified', media_start: seq, media_end: seq + 1, wall_start: wallStart, wall_end: wallStart + 1000, kid: null, received: wallStart + 2000, skew_ms: 2000 };
}

/** An index and store with segment files of `size` bytes: CAM-1 one per day for 10 days, CAM-2 ten a minute apart. */
async function populated(root: string, size: number, dbDir = root): Promise<{ index: NvrIndex; store: SegmentStore; s1: string; s2: string }> {
  const store = new SegmentStore(join(root, 'store'));
  await store.prepare();
  const index = NvrIndex.open(join(dbDir, 'nvr.sqlite'), { create: true });
  const s1 = '11'.repeat(16);
  const s2 = '22'.repeat(16);
  for (const [serial, session, step] of [['CAM-1', s1, DAY], ['CAM-2', s2, 60_000]] as const) {
    index.seen(serial, NOW);
    index.ensureSession(serial, session, NOW);
    for (let i = 0; i < 10; i++) {
      const start = NOW - (10 - i) * step;
      const path = store.path(serial, session, 'seg', i);
      mkdirSync(join(path, '..'), { recursive: true });
      const bytes = Buffer.alloc(size, i);
      writeFileSync(path, bytes);
      index.putSegment(seg(serial, session, i, start, size, sha256Hex(bytes)));
    }
  }
  return { index, store, s1, s2 };
}

describe('retention service', () => {
  it('deletes by age and by bytes, oldest first, records the ranges as expired, keeps what a lock covers', async () => {
    const root = mkdtempSync(join(tmpdir(), 'kf-ret-'));
    const { index, store, s1, s2 } = await populated(root, 100);
    const ops = new NvrOps(index, undefined, () => NOW);
    // CAM-1's third day is evidence
    ops.locks.lock({ serial: 'CAM-1', from: NOW - 8 * DAY, to: NOW - 8 * DAY + 500, caseId: 'CASE-1', reason: 'assault', actor: 'os:test' });
    const svc = new RetentionService({
      index,
      store,
      floorBytes: 0,
      targetBytes: 0,
      log: silentLogger(),
      now: () => NOW,
      config: { ...RETENTION_DEFAULTS, batch: 3, default: {}, cameras: new Map([['CAM-1', { maxAgeMs: 5 * DAY + 1 }], ['CAM-2', { maxBytes: 650 }]]) },
    });
    const run = await svc.run('test');
    // CAM-1: segments 0…4 ended more than 5 days ago; 2 is locked. CAM-2: 1000 bytes → ≤ 650: the 4 oldest go
    expect(run.byReason).toEqual({ age: 4, bytes: 4, disk: 0 });
    expect(index.segments('CAM-1', s1).map((g) => g.seq)).toEqual([2, 5, 6, 7, 8, 9]);
    expect(index.segments('CAM-2', s2).map((g) => g.seq)).toEqual([4, 5, 6, 7, 8, 9]);
    for (const [serial, session, seq, kept] of [['CAM-1', s1, 0, false], ['CAM-1', s1, 2, true], ['CAM-1', s1, 4, false], ['CAM-1', s1, 5, true], ['CAM-2', s2, 3, false], ['CAM-2', s2, 4, true]] as const) {
      expect(existsSync(store.path(serial, session, 'seg', seq)), `${serial} ${seq}`).toBe(kept);
    }
    const db = index.sqlite;
    expect(db.prepare('SELECT serial, from_seq, to_seq, reason FROM expired ORDER BY serial, from_seq').all()).toEqual([
      { serial: 'CAM-1', from_seq: 0, to_seq: 2, reason: 'retention:age' },
      { serial: 'CAM-1', from_seq: 3, to_seq: 5, reason: 'retention:age' },
      { serial: 'CAM-2', from_seq: 0, to_seq: 4, reason: 'retention:bytes' },
    ]);
    expect(db.prepare('SELECT bytes, segments FROM camera_usage WHERE serial = ?').get('CAM-2')).toEqual({ bytes: 600, segments: 6 });
    expect(db.prepare('SELECT count(*) AS n FROM retention_journal').get()).toEqual({ n: 0 });
    // the timeline says expired where retention deleted, verified where the lock kept it, missing between days
    const t = ops.timeline('CAM-1', NOW - 10 * DAY, NOW);
    const at = (ms: number): string | undefined => t.ranges.find((r) => r.start <= ms && ms < r.end)?.state;
    expect(at(NOW - 10 * DAY + 500)).toBe('expired');
    expect(at(NOW - 10 * DAY + 5000)).toBe('expired'); // seq 0 and 1 were contiguous (one session): one expired range
    expect(at(NOW - 6 * DAY + 5000)).toBe('missing'); // after seq 4, before seq 5
    expect(at(NOW - 8 * DAY + 500)).toBe('verified');
    expect(at(NOW - 7 * DAY + 500)).toBe('expired');
    expect(at(NOW - 5 * DAY + 500)).toBe('verified');
    expect(t.locks).toEqual([{ start: NOW - 8 * DAY, end: NOW - 8 * DAY + 500, caseId: 'CASE-1' }]);
    // spans follow: CAM-2's is one run 4…10
    expect(db.prepare("SELECT start_seq, end_seq FROM spans WHERE serial = 'CAM-2'").all()).toEqual([{ start_seq: 4, end_seq: 10 }]);
    // a second run has nothing left to do
    expect((await svc.run('again')).deleted).toBe(0);
    index.close();
  });

  it('below the disk floor deletes the oldest unlocked segments of any camera up to the target; only locked data left: alarm', async () => {
    const disk = tmpfs(mkdtempSync(join(tmpdir(), 'kf-ret-disk-')), '8m');
    const { index, store, s1, s2 } = await populated(disk, 256 * 1024, mkdtempSync(join(tmpdir(), 'kf-ret-db-'))); // 20 × 256 KiB = 5 MiB of 8; the index elsewhere
    const ops = new NvrOps(index, undefined, () => NOW);
    ops.locks.lock({ serial: 'CAM-1', from: NOW - 11 * DAY, to: NOW, caseId: 'CASE-2', reason: 'all of CAM-1', actor: 'os:test' });
    const free = (): number => {
      const s = statfsSync(store.root);
      return s.bavail * s.bsize;
    };
    const before = free();
    const floor = before + 600 * 1024; // 600 KiB short: three segments are needed, the target asks for five
    const svc = new RetentionService({ index, store, floorBytes: floor, targetBytes: before + 1200 * 1024, log: silentLogger(), now: () => NOW, config: { ...RETENTION_DEFAULTS, batch: 4 } });
    const run = await svc.run('test');
    expect(run.byReason.disk).toBe(5);
    expect(run.full).toBe(false);
    // CAM-2's oldest five (CAM-1's older ones are locked)
    expect(index.segments('CAM-2', s2).map((g) => g.seq)).toEqual([5, 6, 7, 8, 9]);
    expect(index.segments('CAM-1', s1)).toHaveLength(10);
    expect(free()).toBeGreaterThanOrEqual(before + 1200 * 1024);
    // now a floor nothing unlocked can reach: CAM-2 goes entirely, CAM-1 stays, and the alarm is raised once
    const svc2 = new RetentionService({ index, store, floorBytes: free() + 4 * 1024 * 1024, targetBytes: free() + 4 * 1024 * 1024, log: silentLogger(), now: () => NOW, config: { ...RETENTION_DEFAULTS, batch: 2 } });
    const run2 = await svc2.run('test');
    expect(run2.full).toBe(true);
    expect(index.segments('CAM-2', s2)).toHaveLength(0);
    expect(index.segments('CAM-1', s1)).toHaveLength(10);
    for (let i = 0; i < 10; i++) expect(existsSync(store.path('CAM-1', s1, 'seg', i))).toBe(true);
    await svc2.run('again');
    expect(index.alarms().filter((a) => a.kind === 'storage-full')).toHaveLength(1);
    expect(index.alarms()[0]?.detail).toMatch(/storage full of locked evidence: .* 2621440 bytes under evidence locks/);
    expect(svc2.state.full).toBe(true);
    index.close();
  });

  it('finishes unlinks a crash interrupted; nvr check reports them as expired files and never re-indexes them', async () => {
    const root = mkdtempSync(join(tmpdir(), 'kf-ret-crash-'));
    const { index, store, s2 } = await populated(root, 100);
    // the state a crash after the commit leaves: row gone, range expired, file still there, listed in the journal
    const rel = join('CAM-2', s2, readdirSync(join(store.root, 'CAM-2', s2)).sort()[0] as string);
    index.tx(() => {
      index.sqlite.prepare('DELETE FROM segments WHERE serial = ? AND session = ? AND seq = 0').run('CAM-2', s2);
      index.sqlite.prepare('INSERT INTO retention_journal (path, at) VALUES (?, ?)').run(rel, NOW);
    });
    const report = await checkStore(index, store);
    expect(report.problems.map((p) => [p.kind, p.path, p.repaired])).toEqual([['expired-file', rel, false]]);
    const repaired = await checkStore(index, store, { repair: true });
    expect(repaired.problems.map((p) => [p.kind, p.repaired])).toEqual([['expired-file', true]]);
    expect(existsSync(join(store.root, rel))).toBe(false);
    expect(index.segment('CAM-2', s2, 0)).toBeUndefined();
    expect((await checkStore(index, store)).problems).toEqual([]);
    index.close();
  });

  it('a store full of locked evidence answers 507 to a real upload, deletes nothing, raises an alarm; freeing space or unlocking resumes ingest', async () => {
    const site = await makeNvrSite(['CAM-A', 'CAM-B']);
    const a = readRecording(await recordFor(site.cameraDirs.get('CAM-A') as string, join(site.work, 'rec-a'), 6));
    const b = readRecording(await recordFor(site.cameraDirs.get('CAM-B') as string, join(site.work, 'rec-b'), 3));
    const disk = tmpfs(join(site.work, 'disk'), '8m');
    const floor = 2 * 1024 * 1024;
    const nvr = await startNvr(loadNvrConfig(site.writeConfig({ store: 'disk/store', freeSpaceFloor: floor, freeSpaceTarget: floor + 512 * 1024, retention: { interval: '1h' } })), { createDatabase: true });
    running.push(nvr);
    const cam = await CameraClient.open(nvr.url, site.cameraDirs.get('CAM-A') as string, join(site.caDir, 'operator.pem'));
    const camB = await CameraClient.open(nvr.url, site.cameraDirs.get('CAM-B') as string, join(site.caDir, 'operator.pem'));
    expect((await cam.upload(a)).every((s) => s === 201)).toBe(true);
    const segs = nvr.index.segments('CAM-A', a.session);
    const aBytes = segs.reduce((n, g) => n + g.size, 0);
    const first = segs[0] as SegmentRow;
    const last = segs[segs.length - 1] as SegmentRow;
    nvr.ops.locks.lock({ serial: 'CAM-A', from: first.wall_start as number, to: last.wall_end as number, caseId: 'CASE-9', reason: 'evidence', actor: 'os:test' });
    const free = (): number => {
      const s = statfsSync(disk);
      return s.bavail * s.bsize;
    };
    // ballast (not the NVR's) until the disk is under the floor by less than CAM-A's bytes
    const shortBy = Math.min(64 * 1024, Math.floor(aBytes / 2));
    const fill = (): void => writeFileSync(join(disk, 'ballast'), Buffer.alloc(Math.max(0, free() - floor + shortBy), 7));
    fill();
    expect(free()).toBeLessThan(floor);
    const files = (): string[] => readdirSync(join(disk, 'store', 'CAM-A', a.session)).sort();
    const held = files();

    const refused = await camB.put('CAM-B', b.session, 'chain', b.chain);
    expect(refused.status).toBe(507);
    expect(files()).toEqual(held);
    expect(nvr.index.segments('CAM-A', a.session)).toHaveLength(segs.length);
    expect(nvr.index.alarms().map((x) => x.kind)).toContain('storage-full');
    expect(nvr.ops.retention?.state.full).toBe(true);
    expect((await camB.put('CAM-B', b.session, 'chain', b.chain)).status).toBe(507);
    expect(nvr.index.alarms().filter((x) => x.kind === 'storage-full')).toHaveLength(1);
    const status = await runCli(['nvr', 'status', '--config', site.configPath]);
    expect(status.code, status.stderr).toBe(0);
    expect(status.stdout).toMatch(/STORAGE FULL since .*: storage full of locked evidence: \d+ bytes free, floor 2097152; \d+ bytes under evidence locks/);

    // space freed by someone else: ingest resumes at once, the alarm is cleared
    rmSync(join(disk, 'ballast'));
    expect((await camB.put('CAM-B', b.session, 'chain', b.chain)).status).toBe(201);
    expect(nvr.index.alarms().map((x) => x.kind)).toContain('storage-full-cleared');
    expect(nvr.ops.retention?.state.full).toBe(false);

    // full again; the case is closed: the unlock lets retention free CAM-A's (now unlocked) segments
    fill();
    expect((await camB.put('CAM-B', b.session, 'init', b.init)).status).toBe(507);
    expect(files()).toEqual(held);
    nvr.ops.locks.unlock({ caseId: 'CASE-9', reason: 'case closed', actor: 'os:test' });
    await new Promise((r) => setTimeout(r, 1100)); // while full, retention runs at most once a second
    expect((await camB.put('CAM-B', b.session, 'init', b.init)).status).toBe(201);
    expect(nvr.index.segments('CAM-A', a.session).length).toBeLessThan(segs.length);
    const t = nvr.ops.timeline('CAM-A', first.wall_start as number, last.wall_end as number);
    expect(t.ranges[0]?.state).toBe('expired');
    rmSync(join(disk, 'ballast'));

    // an export of the session: the verifier reports the deleted fragments as expired by retention, not missing
    const gone = segs.filter((g) => nvr.index.segment('CAM-A', a.session, g.seq) === undefined).map((g) => g.seq);
    expect(gone.length).toBeGreaterThan(0);
    const out = join(site.work, 'export-a');
    await exportSession(nvr.index, nvr.store, 'CAM-A', a.session, out);
    const roots = parseCertificates(readFileSync(join(site.caDir, 'root.pem')), 'root');
    const report = await verifyEvidence(out, { roots });
    const layer = report.fragmentLayer;
    expect(layer?.problems.filter((p) => p.kind === 'expired').map((p) => p.seq)).toEqual(gone);
    expect(layer?.problems.filter((p) => p.kind === 'missing')).toEqual([]);
    expect(layer?.problems[0]?.detail).toMatch(/expired by retention on the recorder at .* \(retention:disk; the recorder's claim, unsigned\)/);
    expect(layer?.verdict).toBe('AUTHENTIC_WITH_GAPS');
    expect(layer?.authentic).toBe(segs.length - gone.length);
    // without the recorder's list the same fragments are plainly missing
    rmSync(join(out, 'expired.json'));
    const bare = await verifyEvidence(out, { roots });
    expect(bare.fragmentLayer?.problems.filter((p) => p.kind === 'missing').map((p) => p.seq)).toEqual(gone);
  });
});
