/**
 * NVR timeline query benchmark (issue 12: "timeline query of 30 days × 100 cameras' index, goal ≤ 50 ms").
 *
 * An NVR index (the real schema, migrations and triggers of dist/nvr/db.js) holding 30 days × 100 cameras:
 *   - camera CAM-000's last day as real segment rows (2 s segments, 43,200 rows, inserted through the index, so its
 *     spans are the ones the triggers make), with outages that split it;
 *   - every other camera-day as the spans the triggers make of such a day (sessions of 24 h, OUTAGES a day, each
 *     splitting the day's run: OUTAGES + 1 spans a day), plus expired ranges for the oldest 5 days, a lost range
 *     and a quarantined segment a day, and evidence locks.
 * Measured: NvrOps.timeline (spans, quarantine, lost, expired, ring report, locks → buildTimeline) for a camera over
 * 30 days and over 1 day, and, as the baseline in the same run, the naive timeline of the same day from the segment
 * rows (every segment a range into buildTimeline). Medians of RUNS queries each, cameras in rotation.
 *
 * Plain ESM over the compiled code: `npm run build && node bench/nvr-timeline-bench.mjs`.
 * Environment: BENCH_RUNS (default 50), BENCH_CAMERAS (default 100), BENCH_DAYS (default 30).
 * Writes bench/results/nvr-timeline.json.
 */
import { existsSync, mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { machine, median } from './_machine.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const dist = join(root, 'dist', 'nvr');
if (!existsSync(join(dist, 'ops.js'))) {
  console.error('nvr-timeline-bench: dist/nvr/ops.js is missing: run `npm run build` first');
  process.exit(1);
}
const { NvrIndex } = await import(join(dist, 'db.js'));
const { NvrOps } = await import(join(dist, 'ops.js'));
const { buildTimeline } = await import(join(dist, 'timeline.js'));

const RUNS = Number(process.env['BENCH_RUNS'] ?? 50);
const CAMERAS = Number(process.env['BENCH_CAMERAS'] ?? 100);
const DAYS = Number(process.env['BENCH_DAYS'] ?? 30);
const OUTAGES = 3;
const DAY = 86_400_000;
const SEG_MS = 2000;
const END = Date.parse('2026-12-07T00:00:00Z');
const START = END - DAYS * DAY;
const serial = (c) => `CAM-${String(c).padStart(3, '0')}`;
const sessionOf = (c, d) => (c.toString(16).padStart(8, '0') + d.toString(16).padStart(8, '0')).repeat(2);

const tmp = mkdtempSync(join(os.tmpdir(), 'kf-bench-timeline-'));
const file = join(tmp, 'nvr.sqlite');
const index = NvrIndex.open(file, { create: true });
const db = index.sqlite;
const ops = new NvrOps(index, undefined, () => END);

console.log(`building the index: ${CAMERAS} cameras × ${DAYS} days …`);
const tBuild = Date.now();
const insertSpan = db.prepare('INSERT INTO spans (serial, session, state, start_seq, end_seq, wall_start, wall_end) VALUES (?, ?, ?, ?, ?, ?, ?)');
const insertSession = db.prepare('INSERT INTO sessions (serial, session, received, start, start_ms, scheme, kid, verified, ended, skew_ms) VALUES (?, ?, ?, ?, ?, ?, ?, 1, 1, 0)');
const insertExpired = db.prepare('INSERT INTO expired (serial, session, from_seq, to_seq, start_ms, end_ms, at, reason) VALUES (?, ?, ?, ?, ?, ?, ?, ?)');
const insertLost = db.prepare('INSERT INTO lost (serial, session, record_idx, of_session, from_seq, to_seq, media_start, media_end) VALUES (?, ?, ?, ?, ?, ?, ?, ?)');
const insertQuarantine = db.prepare('INSERT INTO quarantine (serial, session, kind, idx, sha256, size, path, reason, received) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)');
const insertUsage = db.prepare('INSERT INTO camera_usage (serial, bytes, segments) VALUES (?, ?, ?) ON CONFLICT(serial) DO UPDATE SET bytes = bytes + excluded.bytes, segments = segments + excluded.segments');
const perDay = DAY / SEG_MS;
const cut = (k) => Math.floor(((k + 1) * perDay) / (OUTAGES + 1));
db.transaction(() => {
  for (let c = 0; c < CAMERAS; c++) {
    const s = serial(c);
    index.seen(s, END);
    for (let d = 0; d < DAYS; d++) {
      const session = sessionOf(c, d);
      const dayStart = START + d * DAY;
      insertSession.run(s, session, dayStart, new Date(dayStart).toISOString(), dayStart, 'cbcs', '00'.repeat(16));
      if (c === 0 && d === DAYS - 1) continue; // real rows below
      if (d < 5) {
        insertExpired.run(s, session, 0, perDay, dayStart, dayStart + DAY, END, 'retention:age');
        continue;
      }
      // OUTAGES gaps of 60 s (30 segments) split the day's run
      let from = 0;
      for (let k = 0; k <= OUTAGES; k++) {
        const to = k === OUTAGES ? perDay : cut(k) - 30;
        insertSpan.run(s, session, 'verified', from, to, dayStart + from * SEG_MS, dayStart + to * SEG_MS);
        from = cut(k);
      }
      insertLost.run(s, session, 1, session, 100, 105, 200, 210);
      insertQuarantine.run(s, session, 'seg', 500, 'ab'.repeat(32), 1_000_000, `.quarantine/${s}/${session}/000500.m4s`, 'differs from its signed record', dayStart);
      insertUsage.run(s, perDay * 1_000_000, perDay);
    }
  }
})();
// camera 0's last day: real segment rows through the index (its triggers build the spans)
const realSession = sessionOf(0, DAYS - 1);
const realStart = END - DAY;
db.transaction(() => {
  for (let seq = 0; seq < perDay; seq++) {
    if ([1, 2, 3].some((k) => seq >= cut(k - 1) - 30 && seq < cut(k - 1))) continue; // the outages
    index.putSegment({ serial: serial(0), session: realSession, seq, size: 1_000_000, sha256: 'cd'.repeat(32), state: 'verified', media_start: seq * 2, media_end: seq * 2 + 2, wall_start: realStart + seq * SEG_MS, wall_end: realStart + (seq + 1) * SEG_MS, kid: null, received: realStart + (seq + 1) * SEG_MS + 300, skew_ms: 300 });
  }
})();
for (let c = 0; c < CAMERAS; c += 10) ops.locks.lock({ serial: serial(c), from: END - 10 * DAY, to: END - 9 * DAY, caseId: `CASE-${c}`, reason: 'bench', actor: 'os:bench' });
db.pragma('wal_checkpoint(TRUNCATE)');
db.exec('ANALYZE');
const buildMs = Date.now() - tBuild;
const counts = {
  spans: db.prepare('SELECT count(*) AS n FROM spans').get().n,
  spansCamera0LastDay: db.prepare('SELECT count(*) AS n FROM spans WHERE serial = ? AND session = ?').get(serial(0), realSession).n,
  segmentRows: db.prepare('SELECT count(*) AS n FROM segments').get().n,
  segmentsRepresented: CAMERAS * (DAYS - 5) * perDay,
  expiredRows: db.prepare('SELECT count(*) AS n FROM expired').get().n,
  lockRows: db.prepare('SELECT count(*) AS n FROM locks').get().n,
};
console.log(`built in ${buildMs} ms: ${JSON.stringify(counts)}`);

function time(fn) {
  for (let i = 0; i < 5; i++) fn(i);
  const out = [];
  for (let i = 0; i < RUNS; i++) {
    const t0 = process.hrtime.bigint();
    fn(i);
    out.push(Number(process.hrtime.bigint() - t0) / 1e6);
  }
  return { medianMs: Number(median(out).toFixed(3)), minMs: Number(Math.min(...out).toFixed(3)), maxMs: Number(Math.max(...out).toFixed(3)), runs: RUNS };
}

let ranges30 = 0;
const month = time((i) => {
  const t = ops.timeline(serial((i * 7) % CAMERAS), START, END);
  ranges30 = t.ranges.length;
});
const dayWithSpans = time(() => ops.timeline(serial(0), realStart, END));
const naiveStmt = db.prepare('SELECT state, wall_start, wall_end FROM segments WHERE serial = ? AND wall_start < ? AND wall_end > ?');
const naiveDay = time(() => {
  const held = naiveStmt.all(serial(0), END, realStart).map((r) => ({ start: r.wall_start, end: r.wall_end, state: r.state === 'verified' ? 'verified' : 'unverified' }));
  return buildTimeline({ held }, realStart, END);
});
const spanDay = ops.timeline(serial(0), realStart, END);
const naive = buildTimeline({ held: naiveStmt.all(serial(0), END, realStart).map((r) => ({ start: r.wall_start, end: r.wall_end, state: 'verified' })) }, realStart, END);
const same = JSON.stringify(spanDay.ranges) === JSON.stringify(naive.ranges);

const result = {
  benchmark: 'nvr-timeline',
  machine: { ...machine(), loadavg: os.loadavg().map((l) => Number(l.toFixed(2))) },
  setup: { cameras: CAMERAS, days: DAYS, segmentSeconds: SEG_MS / 1000, outagesPerDay: OUTAGES, indexBytes: statSync(file).size, buildMs, ...counts },
  goalMs: 50,
  results: {
    timeline30Days: { ...month, ranges: ranges30, note: 'NvrOps.timeline of one camera over 30 days (cameras in rotation)' },
    timeline1DaySpans: { ...dayWithSpans, note: 'camera 0, its last day (real segment rows; spans made by the triggers)' },
    timeline1DayNaive: { ...naiveDay, note: `baseline: the same day from its ${counts.segmentRows} segment rows, each a range` },
    naiveOverSpans: Number((naiveDay.medianMs / dayWithSpans.medianMs).toFixed(1)),
    sameRanges: same,
  },
};
mkdirSync(join(root, 'bench', 'results'), { recursive: true });
writeFileSync(join(root, 'bench', 'results', 'nvr-timeline.json'), JSON.stringify(result, null, 2) + '\n');
console.log(JSON.stringify(result.results, null, 2));
index.close();
rmSync(tmp, { recursive: true, force: true });
if (!same) {
  console.error('nvr-timeline-bench: the span timeline differs from the naive one');
  process.exit(1);
}
