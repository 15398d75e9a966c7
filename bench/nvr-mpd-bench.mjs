/**
 * NVR manifest benchmark (issue 13: "MPD for 24 h of one camera, goal ≤ 20 ms").
 *
 * The NVR's viewers' listener (dist/nvr/viewer.js, as the NVR builds it: TLS 1.3, access tokens checked offline with
 * the KMS's public key) over a real NVR index and segment store in a temporary directory: one camera's last 24 h as
 * segment rows inserted through the index (2 s segments, 43,200 rows less OUTAGES outages of 60 s, a new key epoch
 * every hour: a Period per session and epoch), its session's init segment (CENC, made by the media code) on disk.
 * A token for an investigator with playback of the camera is signed with an ES256 key made here (the KMS's format,
 * access/token.js); the listener gets its public key.
 *
 * Measured over one kept-alive TLS connection, sequentially (RUNS each, after 5 warm-ups):
 *   manifest24h  GET /v1/cameras/CAM-000/manifest.mpd for the 24 h (request to the last byte of the answer);
 *   baseline     the same route for the last minute (token check, range, one init look-up, a one-Period MPD),
 *                so the ratio isolates the cost of a day's rows;
 *   parts        in this process: one SQL read of the day's rows (what every manifest cost before whole hours
 *                were kept between manifests, nvr/mpd-rows.js), and buildMpd (nvr/mpd.js) alone over those rows.
 * The first request of the day's manifest (nothing kept yet) is reported apart (coldMs); the medians are of the
 * requests after it, as for a viewer scrubbing a day; manifest24hRecording is the same with a segment of the last
 * hour changed before each request (the camera recording into it: that hour is read again each time).
 * Every answer is checked: 200, one Period per epoch and outage-split run, every segment in a SegmentTimeline.
 *
 * Plain ESM over the compiled code: `npm run build && node bench/nvr-mpd-bench.mjs`.
 * Environment: BENCH_RUNS (default 50), BENCH_OUT (default bench/results/nvr-mpd.json), BENCH_NOTE (what else ran).
 */
import { execFileSync } from 'node:child_process';
import { generateKeyPairSync, randomBytes, sign as cryptoSign } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { Agent, request } from 'node:https';
import os from 'node:os';
import { dirname, join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { benchNote, machine, median } from './_machine.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const dist = join(root, 'dist');
if (!existsSync(join(dist, 'nvr', 'viewer.js'))) {
  console.error('nvr-mpd-bench: dist/nvr/viewer.js is missing: run `npm run build` first');
  process.exit(1);
}
const imp = (p) => import(join(dist, p));
const { NvrIndex } = await imp('nvr/db.js');
const { NvrOps } = await imp('nvr/ops.js');
const { SegmentStore } = await imp('nvr/store.js');
const { LiveFeed } = await imp('nvr/live.js');
const { buildViewerServer } = await imp('nvr/viewer.js');
const { buildMpd } = await imp('nvr/mpd.js');
const { DEFAULT_LIMITS } = await imp('server/limits.js');
const { silentLogger } = await imp('server/log.js');
const { signAccessToken } = await imp('access/token.js');
const { buildInitSegment } = await imp('media/mp4/init.js');
const { CLEARKEY_SYSTEM_ID, buildPssh } = await imp('media/mp4/protection.js');

const RUNS = Number(process.env.BENCH_RUNS ?? 50);
const OUT = process.env.BENCH_OUT !== undefined && process.env.BENCH_OUT !== '' ? process.env.BENCH_OUT : join(root, 'bench', 'results', 'nvr-mpd.json');
const GOAL_MS = 20;
const DAY = 86_400_000;
const HOUR = 3_600_000;
const SEG_MS = 2000;
const OUTAGES = 3;
const SERIAL = 'CAM-000';
const SESSION = 'a1'.repeat(16);
const END = Math.floor(Date.now() / SEG_MS) * SEG_MS;
const START = END - DAY;
const perDay = DAY / SEG_MS;
const kidOf = (hour) => randomBytesFrom(hour);
function randomBytesFrom(h) {
  return Buffer.alloc(16, h + 1).toString('hex');
}

const tmp = mkdtempSync(join(os.tmpdir(), 'kf-bench-mpd-'));
const cleanup = () => rmSync(tmp, { recursive: true, force: true });
for (const sig of ['SIGINT', 'SIGTERM']) {
  process.once(sig, () => {
    cleanup();
    process.exit(130);
  });
}

let server;
try {
  // the index: the day's rows through NvrIndex.putSegment (its triggers keep the spans, as at ingest)
  const index = NvrIndex.open(join(tmp, 'nvr.sqlite'), { create: true });
  const db = index.sqlite;
  const ops = new NvrOps(index, undefined, () => END);
  const store = new SegmentStore(join(tmp, 'store'));
  await store.prepare();
  const outage = (seq) => [1, 2, 3].some((k) => seq >= Math.floor((k * perDay) / (OUTAGES + 1)) && seq < Math.floor((k * perDay) / (OUTAGES + 1)) + 30);
  let rows = 0;
  db.transaction(() => {
    index.seen(SERIAL, END);
    db.prepare('INSERT INTO sessions (serial, session, received, start, start_ms, scheme, kid, verified, ended, skew_ms) VALUES (?, ?, ?, ?, ?, ?, ?, 1, 0, 0)').run(SERIAL, SESSION, START, new Date(START).toISOString(), START, 'cbcs', kidOf(0));
    for (let seq = 0; seq < perDay; seq++) {
      if (outage(seq)) continue;
      const wallStart = START + seq * SEG_MS;
      index.putSegment({ serial: SERIAL, session: SESSION, seq, size: 400_000 + (seq % 7) * 1000, sha256: 'cd'.repeat(32), state: 'verified', media_start: seq * 2, media_end: (seq + 1) * 2, wall_start: wallStart, wall_end: wallStart + SEG_MS, kid: kidOf(Math.floor((wallStart - START) / HOUR)), received: wallStart + SEG_MS + 300, skew_ms: 300 });
      rows++;
    }
  })();
  db.pragma('wal_checkpoint(TRUNCATE)');
  db.exec('ANALYZE');
  // the session's init segment (CENC cbcs, a pssh for ClearKey), as the camera sends it
  const avcC = { profile: 100, compatibility: 0, level: 31, lengthSize: 4, sps: [Uint8Array.of(0x67, 0x64, 0x00, 0x1f, 0xac, 0xd9, 0x40, 0x50, 0x05, 0xbb, 0x01, 0x10)], pps: [Uint8Array.of(0x68, 0xeb, 0xe3, 0xcb, 0x22, 0xc0)] };
  const kid0 = Buffer.from(kidOf(0), 'hex');
  const init = buildInitSegment({ trackId: 1, timescale: 90_000, width: 1280, height: 720, avcC }, { protection: { scheme: 'cbcs', kid: kid0, perSampleIvSize: 0, constantIv: new Uint8Array(16), cryptByteBlock: 1, skipByteBlock: 9, originalFormat: 'avc1' }, pssh: [buildPssh(CLEARKEY_SYSTEM_ID, [kid0])] });
  const initPath = store.path(SERIAL, SESSION, 'init');
  mkdirSync(dirname(initPath), { recursive: true });
  writeFileSync(initPath, init);

  // identities: the KMS's token key (ES256) and the listener's TLS certificate (self-signed)
  const kmsKey = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const tlsKey = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const tlsKeyPem = tlsKey.privateKey.export({ type: 'pkcs8', format: 'pem' });
  // openssl signs the certificate from the key written encrypted (PKCS#8, passphrase in its environment only)
  const passphrase = randomBytes(16).toString('hex');
  const keyFile = join(tmp, 'tls-key.pem');
  writeFileSync(keyFile, tlsKey.privateKey.export({ type: 'pkcs8', format: 'pem', cipher: 'aes-256-cbc', passphrase }), { mode: 0o600 });
  const cert = execFileSync('openssl', ['req', '-x509', '-key', keyFile, '-passin', 'env:KF_BENCH_TLS_PASS', '-subj', '/CN=localhost', '-days', '1', '-addext', 'subjectAltName=IP:127.0.0.1'], { env: { ...process.env, KF_BENCH_TLS_PASS: passphrase }, encoding: 'utf8' });
  server = buildViewerServer({
    tls: { key: tlsKeyPem, cert },
    limits: DEFAULT_LIMITS,
    log: silentLogger(),
    index,
    store,
    ops,
    feed: new LiveFeed(),
    kms: { publicKey: kmsKey.publicKey, issuer: 'keyframe-kms bench', audience: 'nvr-bench', licence: 'https://127.0.0.1:8444/v1/licence' },
  });
  const { port } = await server.listen('127.0.0.1', 0);
  const iat = Math.floor(Date.now() / 1000);
  const token = await signAccessToken(
    { iss: 'keyframe-kms bench', sub: 'ivan', aud: 'nvr-bench', sid: 'c2Vzc2lvbi0xMjM0NTY3OA', role: 'investigator', iat, exp: iat + 120, jti: randomBytes(16).toString('base64url'), acl: [{ cams: [SERIAL], rights: ['playback'], from: START - DAY, to: END + DAY }] },
    async (data) => cryptoSign('sha256', data, { key: kmsKey.privateKey, dsaEncoding: 'ieee-p1363' }),
  );
  const agent = new Agent({ keepAlive: true, maxSockets: 1, ca: cert });
  const get = (path) =>
    new Promise((resolve, reject) => {
      const t0 = performance.now();
      const req = request({ host: '127.0.0.1', port, path, agent, headers: { authorization: `Bearer ${token}` } }, (res) => {
        const chunks = [];
        res.on('data', (c) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode, body: Buffer.concat(chunks).toString('utf8'), ms: performance.now() - t0 }));
        res.on('error', reject);
      });
      req.on('error', reject);
      req.end();
    });
  const iso = (t) => new Date(t).toISOString();
  const dayPath = `/v1/cameras/${SERIAL}/manifest.mpd?from=${iso(START)}&to=${iso(END)}`;
  const minutePath = `/v1/cameras/${SERIAL}/manifest.mpd?from=${iso(END - 60_000)}&to=${iso(END)}`;

  const check = (r, segments) => {
    if (r.status !== 200) throw new Error(`manifest: HTTP ${r.status}: ${r.body.slice(0, 200)}`);
    const timeline = (r.body.match(/<S [^>]*\/>/g) ?? []).reduce((n, el) => n + 1 + Number(/ r="(\d+)"/.exec(el)?.[1] ?? 0), 0);
    if (timeline !== segments) throw new Error(`manifest: ${timeline} segments in its SegmentTimelines, expected ${segments}`);
    return (r.body.match(/<Period /g) ?? []).length;
  };
  async function timeRoute(path, segments, before = () => {}) {
    let bytes = 0;
    // the first request reads every hour from the index (nothing kept yet): the cold cost
    const cold = await get(path);
    let periods = check(cold, segments);
    for (let i = 0; i < 5; i++) periods = check(await get(path), segments);
    const ms = [];
    const cpu0 = process.cpuUsage();
    for (let i = 0; i < RUNS; i++) {
      before();
      const r = await get(path);
      check(r, segments);
      bytes = Buffer.byteLength(r.body);
      ms.push(r.ms);
    }
    const cpu = process.cpuUsage(cpu0);
    ms.sort((a, b) => a - b);
    return { coldMs: Number(cold.ms.toFixed(3)), medianMs: Number(median(ms).toFixed(3)), p95Ms: Number(ms[Math.floor(0.95 * (ms.length - 1))].toFixed(3)), minMs: Number(ms[0].toFixed(3)), maxMs: Number(ms.at(-1).toFixed(3)), cpuMsPerRequest: Number(((cpu.user + cpu.system) / 1000 / RUNS).toFixed(3)), periods, bytes, runs: RUNS };
  }
  const minuteSegments = 30;
  const manifest24h = await timeRoute(dayPath, rows);
  const baseline = await timeRoute(minutePath, minuteSegments);
  // as while the camera records: before each request a segment of the last hour changes (the upsert a verification
  // makes), so that hour is read again every time
  const lastSeq = perDay - 1;
  const lastRow = db.prepare('SELECT * FROM segments WHERE serial = ? AND session = ? AND seq = ?').get(SERIAL, SESSION, lastSeq);
  const recording = await timeRoute(dayPath, rows, () => index.putSegment({ ...lastRow, received: lastRow.received + 1 }));

  // the parts, in this process
  // the route's query (viewer.ts), raw rows over the covering index segments_for_mpd
  const select = db.prepare("SELECT session, seq, size, media_start, media_end, wall_start, wall_end, kid FROM segments WHERE serial = ? AND wall_start >= ? AND wall_start < ? AND wall_end <= ? AND state = 'verified' ORDER BY wall_start, seq").raw(true);
  const part = (fn) => {
    for (let i = 0; i < 5; i++) fn();
    const ms = [];
    for (let i = 0; i < RUNS; i++) {
      const t0 = performance.now();
      fn();
      ms.push(performance.now() - t0);
    }
    return Number(median(ms).toFixed(3));
  };
  let dayRows = [];
  const sqlMs = part(() => {
    dayRows = select.all(SERIAL, START, END, END);
  });
  const segments = dayRows.map(([session, seq, size, mediaStart, mediaEnd, wallStart, wallEnd, kid]) => ({ session, seq, mediaStart, mediaEnd, wallStart, wallEnd, kid, size }));
  const tracks = new Map([[SESSION, { codecs: 'avc1.64001f', width: 1280, height: 720, timescale: 90_000 }]]);
  const buildMs = part(() => buildMpd({ serial: SERIAL, from: START, to: END, segments, tracks, mediaBase: '/v1/media/', licenceUrl: 'https://127.0.0.1:8444/v1/licence' }));

  const result = {
    benchmark: 'nvr-mpd',
    method: 'the NVR viewers\' listener (TLS 1.3, ES256 access token checked per request) over a real index and store; sequential GETs over one kept-alive connection from this process; latency from the request call to the end of the answer; medians of BENCH_RUNS after 5 warm-ups; every answer checked (200, every segment in a SegmentTimeline); cpuMsPerRequest is this process (client and listener) per request',
    machine: { ...machine(), loadavg: os.loadavg().map((l) => Number(l.toFixed(2))), note: benchNote('the client and the listener share this process') },
    setup: { camera: SERIAL, hours: 24, segmentSeconds: SEG_MS / 1000, rows, outages: OUTAGES, epochs: 24 },
    goalMs: GOAL_MS,
    result: {
      manifest24hMedianMs: manifest24h.medianMs,
      manifest24hP95Ms: manifest24h.p95Ms,
      manifest24hColdMs: manifest24h.coldMs,
      manifest24hRecordingMedianMs: recording.medianMs,
      baselineMinuteMedianMs: baseline.medianMs,
      manifest24hVsBaseline: Number((manifest24h.medianMs / baseline.medianMs).toFixed(2)),
      sqlReadMedianMs: sqlMs,
      buildMpdMedianMs: buildMs,
      periods: manifest24h.periods,
      mpdBytes: manifest24h.bytes,
    },
    goalMet: manifest24h.medianMs <= GOAL_MS,
    manifest24h,
    manifest24hRecording: recording,
    baseline,
  };
  console.log(`manifest for 24 h (${rows} segments, ${manifest24h.periods} Periods, ${manifest24h.bytes} bytes): median ${manifest24h.medianMs} ms, p95 ${manifest24h.p95Ms} ms (first, nothing kept: ${manifest24h.coldMs} ms; while recording into the last hour: ${recording.medianMs} ms); last minute: ${baseline.medianMs} ms (×${result.result.manifest24hVsBaseline}); SQL read ${sqlMs} ms, buildMpd ${buildMs} ms; goal ≤ ${GOAL_MS} ms: ${result.goalMet ? 'met' : 'NOT met'}`);
  mkdirSync(dirname(OUT), { recursive: true });
  writeFileSync(OUT, `${JSON.stringify(result, null, 2)}\n`);
  console.log(`wrote ${OUT}`);
  agent.destroy();
} finally {
  await server?.app.close();
  cleanup();
}
