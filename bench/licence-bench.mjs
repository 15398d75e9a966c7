// Licence benchmark (issue 13): ClearKey licence latency at the KMS's browser listener at a steady 200 requests/s,
// every decision written to the audit log (SQLite WAL, synchronous=FULL: an fsync per decision) before the answer;
// goal p99 ≤ 10 ms on this machine. Login cost stated (argon2id at the parameters of src/access/password.ts).
//
// A whole KMS site is made in a temporary directory (removed at the end, also on SIGINT/SIGTERM): a CA, the KMS's
// TLS identity, an administrator identity, two cameras, all with software key stores (passphrase from
// KF_BENCH_KMS_PIN). The KMS runs as `keyframe kms serve` (a child process: its own event loop, its CPU read from
// /proc/PID/stat); the cameras enrol, a group of both is made and refreshed twice (3 epochs × 2 cameras = 6 KIDs
// from camera.currentContentKey), SESSIONS investigator accounts are created, each granted playback of the group's
// last day, and each logs in once (its own keep-alive TLS 1.3 connection).
//
// Measured, in order:
//   1. login cost: argon2id hash and verify time in this process (median of HASH_RUNS), and POST /v1/login latency
//      (median, p99 of LOGIN_RUNS sequential logins over one keep-alive connection);
//   2. one audit append measured directly: a plain better-sqlite3 INSERT (WAL, synchronous=FULL, exclusive locking,
//      a row of an audit entry's size) in the same directory, median of APPEND_RUNS;
//   3. service time: SEQUENTIAL_RUNS requests of each kind below, one at a time (no queueing);
//   4. baseline: GET /v1/session (authenticated: cookie, session and account look-ups; no key look-up, no audit
//      write) at RATE requests/s, WARMUP s then SECONDS s measured, round-robin over the SESSIONS connections;
//   (4 and 5 are repeated LICENCE_BENCH_ROUNDS times in turn, default 3: the p99s reported are medians over rounds)
//   5. licence: POST /v1/licence ({"kids":[…],"type":"temporary"}, 1 or 2 KIDs alternately, with the session's
//      CSRF token) at the same rate over the same connections; every answer checked (status 200, exactly the keys
//      asked for, each the camera's key).
// Requests are sent open-loop on a fixed schedule (one every 1000/RATE ms); latency is from the request's call to
// the end of its answer (queueing behind the connection's previous request included); the timer lag of this
// process (sent after its due time) is reported apart, and latency from the due time too. KMS CPU over the measured
// window from /proc/PID/stat; audit entries written from GET /v1/admin/audit (size) before and after each phase.
//
// Plain ESM over the compiled code: `npm run build && node bench/licence-bench.mjs`.
// Environment: LICENCE_BENCH_SECONDS (measured seconds per phase, default 30), LICENCE_BENCH_WARMUP (default 5),
// LICENCE_BENCH_RATE (requests/s, default 200), LICENCE_BENCH_SESSIONS (default 8), HASH_RUNS (default 10),
// LICENCE_BENCH_ROUNDS (default 3), LOGIN_RUNS (default 30), APPEND_RUNS (default 200), SEQUENTIAL_RUNS (default 100), LICENCE_BENCH_DIR (parent of
// the temporary directory, default the OS's), BENCH_OUT (result file, default bench/results/licence.json),
// BENCH_NOTE (what else ran), LICENCE_BENCH_KMS_NODE_ARGS (node options for the KMS child, e.g. --cpu-prof).
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { Agent, request } from 'node:https';
import { createServer } from 'node:net';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { setTimeout } from 'node:timers';
import { fileURLToPath } from 'node:url';
import { benchNote, machine, median } from './_machine.mjs';

const root = fileURLToPath(new URL('..', import.meta.url));
const dist = new URL('../dist/', import.meta.url);
if (!existsSync(new URL('kms/browser.js', dist))) {
  console.error('licence-bench: dist/kms/browser.js is missing: run `npm run build` first');
  process.exit(1);
}
const imp = (p) => import(new URL(p, dist).href);

const num = (name, dflt) => {
  const v = process.env[name];
  if (v === undefined || v === '') return dflt;
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0) throw new Error(`${name} must be a positive number`);
  return n;
};
const SECONDS = num('LICENCE_BENCH_SECONDS', 30);
const WARMUP = num('LICENCE_BENCH_WARMUP', 5);
const RATE = num('LICENCE_BENCH_RATE', 200);
const SESSIONS = Math.round(num('LICENCE_BENCH_SESSIONS', 8));
const HASH_RUNS = Math.round(num('HASH_RUNS', 10));
const LOGIN_RUNS = Math.round(num('LOGIN_RUNS', 30));
const APPEND_RUNS = Math.round(num('APPEND_RUNS', 200));
const SEQUENTIAL_RUNS = Math.round(num('SEQUENTIAL_RUNS', 100));
const ROUNDS = Math.round(num('LICENCE_BENCH_ROUNDS', 3));
const OUT = process.env.BENCH_OUT !== undefined && process.env.BENCH_OUT !== '' ? process.env.BENCH_OUT : join(root, 'bench', 'results', 'licence.json');
const GOAL_P99_MS = 10;
// extra node options for the KMS child only (e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof" to see where a licence's time goes)
const KMS_NODE_ARGS = (process.env.LICENCE_BENCH_KMS_NODE_ARGS ?? '').split(' ').filter((a) => a !== '');
const PASSWORD = 'licence bench: correct horse battery staple';
const PIN_ENV = 'KF_BENCH_KMS_PIN';
process.env[PIN_ENV] ??= 'licence bench passphrase';
const BIN = join(root, 'bin', 'keyframe.js');
const CLK_TCK = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;

const { initCa } = await imp('pki/ca.js');
const { CaStore } = await imp('pki/ca-store.js');
const { provisionDevice } = await imp('pki/device.js');
const { createSite } = await imp('pki/site.js');
const { toPem } = await imp('pki/pem.js');
const { openCameraAgent } = await imp('camera/kms-agent.js');
const { openAdminClient } = await imp('kms/open.js');
const { ARGON2ID, hashPassword, verifyPassword } = await imp('access/password.js');
const { encodeLicenceRequest, parseLicenceResponse } = await imp('access/clearkey.js');
const { default: Database } = await import('better-sqlite3');

// ---- small helpers ----------------------------------------------------------------------------------------------
const round = (x, d = 2) => (x === undefined || !Number.isFinite(x) ? x : Math.round(x * 10 ** d) / 10 ** d);
const load = () => loadavg().map((x) => round(x));
/** Nearest-rank percentile of unsorted values. */
function percentile(values, p) {
  if (values.length === 0) return undefined;
  const s = [...values].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))];
}
function summary(values) {
  if (values.length === 0) return { n: 0 };
  return { n: values.length, p50: round(percentile(values, 50)), p95: round(percentile(values, 95)), p99: round(percentile(values, 99)), max: round(Math.max(...values)), mean: round(values.reduce((a, b) => a + b, 0) / values.length) };
}
function niceness() {
  try {
    return Number(readFileSync('/proc/self/stat', 'utf8').split(') ')[1].split(' ')[16]);
  } catch {
    return undefined;
  }
}
/** CPU ms of `pid` so far: user, system. */
function procCpuMs(pid) {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return { user: (Number(f[11]) * 1000) / CLK_TCK, system: (Number(f[12]) * 1000) / CLK_TCK };
}
function procHwmMB(pid) {
  try {
    const m = /VmHWM:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Math.round(Number(m[1]) / 1024) : undefined;
  } catch {
    return undefined;
  }
}
const cpuMs = (c) => (c.user + c.system) / 1000;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
/** The file system `dir` is on (type and device): where the fsyncs go. */
function fsType(dir) {
  try {
    return execFileSync('findmnt', ['-n', '-o', 'FSTYPE,SOURCE', '-T', dir], { encoding: 'utf8' }).trim().replace(/\s+/g, ' ');
  } catch {
    try {
      return execFileSync('stat', ['-f', '-c', '%T', dir], { encoding: 'utf8' }).trim();
    } catch {
      return 'unknown';
    }
  }
}
/** A free port below the kernel's ephemeral range (the KMS's browser listener; its port is in the config). */
async function freePort() {
  let low = 32768;
  try {
    low = Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]) || 32768;
  } catch {
    /* the default */
  }
  for (let attempt = 0; attempt < 50; attempt++) {
    const port = 20000 + Math.floor(Math.random() * Math.max(1000, low - 20000));
    const ok = await new Promise((done) => {
      const s = createServer();
      s.once('error', () => done(false));
      s.listen(port, '127.0.0.1', () => s.close(() => done(true)));
    });
    if (ok) return port;
  }
  throw new Error('no free port found');
}

// ---- the temporary site, removed at the end and on SIGINT / SIGTERM ----------------------------------------------
const started = Date.now();
const loadStart = load();
const parent = process.env.LICENCE_BENCH_DIR ?? tmpdir();
mkdirSync(parent, { recursive: true });
const work = mkdtempSync(join(parent, 'kf-licence-bench-'));
let child;
let cleaned = false;
function cleanup() {
  if (cleaned) return;
  cleaned = true;
  if (child !== undefined && child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  rmSync(work, { recursive: true, force: true });
}
process.on('exit', cleanup);
for (const sig of ['SIGINT', 'SIGTERM']) {
  process.on(sig, () => {
    console.error(`licence-bench: ${sig}: stopping the KMS and removing ${work}`);
    cleanup();
    process.exit(sig === 'SIGINT' ? 130 : 143);
  });
}

const spec = (dir) => `file:${dir};pin-env=${PIN_ENV}`;

async function makeSite() {
  const caDir = join(work, 'ca');
  await initCa({ dir: caDir, keystore: spec(join(caDir, 'keys')) });
  const ca = await CaStore.open(caDir);
  const caStore = await ca.openKeyStore();
  await createSite({ out: join(work, 'kms'), ca, caKeyStore: caStore, name: 'localhost', altNames: ['localhost', '127.0.0.1'], keystore: spec(join(work, 'kms', 'keys')) });
  const adminDir = join(work, 'admin');
  await createSite({ out: adminDir, ca, caKeyStore: caStore, name: 'ops', altNames: ['localhost'], clientAuth: true, keystore: spec(join(adminDir, 'keys')) });
  const cameras = new Map();
  for (const serial of ['CAM-A', 'CAM-B']) {
    const dir = join(work, 'cams', serial);
    await provisionDevice({ ca, caKeyStore: caStore, dir, serial, keystore: spec(join(dir, 'keys')) });
    cameras.set(serial, dir);
  }
  await caStore.close?.();
  const browserPort = await freePort();
  const configPath = join(work, 'kms.json');
  writeFileSync(
    configPath,
    JSON.stringify({
      listen: { host: '127.0.0.1', port: 0 },
      identity: 'kms',
      trust: { root: 'ca/root.pem', factory: 'ca/factory.pem', operator: 'ca/operator.pem' },
      database: 'kms.sqlite',
      admins: ['ops'],
      batchWindow: '50ms',
      browser: { host: '127.0.0.1', port: browserPort },
    }),
  );
  return { ca, adminDir, cameras, configPath, browserUrl: `https://127.0.0.1:${browserPort}` };
}

/** `keyframe kms serve` on the site (niced like this process); resolves with its mutual-TLS URL. */
async function startKmsProcess(configPath) {
  child = spawn(process.execPath, [...KMS_NODE_ARGS, BIN, 'kms', 'serve', '--config', configPath, '--new-database'], { stdio: ['ignore', 'pipe', 'pipe'], env: process.env });
  let errText = '';
  const warnings = [];
  child.stderr.on('data', (d) => (errText = (errText + d).slice(-4000)));
  const url = await new Promise((resolve, reject) => {
    let buf = '';
    // the KMS logs a line per licence (info, written synchronously to its stdout): drained for the whole run
    child.stdout.on('data', (d) => {
      buf += d;
      let nl;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        if (!line.includes('"event":"listening"') && !/"level":(4|5|6)\d/.test(line)) continue;
        try {
          const j = JSON.parse(line);
          if (j.event === 'listening') resolve(j.url);
          else if (j.level >= 40 && warnings.length < 20) warnings.push(line.slice(0, 500));
        } catch {
          /* not JSON */
        }
      }
    });
    child.on('exit', (code, signal) => reject(new Error(`kms serve exited (${code ?? signal}): ${errText}`)));
  });
  return { url, pid: child.pid, warnings, stderr: () => errText };
}

async function stopKmsProcess() {
  if (child === undefined || child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  await Promise.race([exited, sleep(15_000)]);
  if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
}

// ---- HTTPS to the browser listener ------------------------------------------------------------------------------
function send(agent, url, method, path, body, headers) {
  return new Promise((resolve) => {
    const req = request(new URL(path, url), { method, agent, headers: { ...headers, ...(body !== undefined ? { 'content-length': String(body.length) } : {}) }, timeout: 15_000 }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on('error', (e) => resolve({ status: 0, error: e.code ?? e.message }));
    });
    req.on('timeout', () => req.destroy(Object.assign(new Error('timed out'), { code: 'TIMEOUT' })));
    req.on('error', (e) => resolve({ status: 0, error: e.code ?? e.message }));
    req.end(body);
  });
}

const browserAgent = (ca, sockets = 1) => new Agent({ keepAlive: true, maxSockets: sockets, ca, minVersion: 'TLSv1.3' });

async function login(agent, url, user) {
  const r = await send(agent, url, 'POST', '/v1/login', Buffer.from(JSON.stringify({ user, password: PASSWORD })), { 'content-type': 'application/json' });
  if (r.status !== 200) throw new Error(`login as ${user}: ${r.status} ${r.error ?? r.body?.toString().slice(0, 200)}`);
  const setCookie = [].concat(r.headers['set-cookie'] ?? []).find((c) => c.startsWith('__Host-kf_session='));
  if (setCookie === undefined) throw new Error(`login as ${user}: no session cookie`);
  return { cookie: setCookie.split(';')[0], csrf: JSON.parse(r.body.toString('utf8')).csrf };
}

// ---- one load phase: RATE requests/s, open loop, round-robin over the sessions ---------------------------------
async function phase(name, sessions, kmsPid, makeRequest, check) {
  const interval = 1000 / RATE;
  const warmN = Math.round(WARMUP * RATE);
  const total = warmN + Math.round(SECONDS * RATE);
  const latency = [];
  const fromDue = [];
  const lag = [];
  const errors = {};
  let ok = 0;
  let warmErrors = 0;
  const inFlight = new Set();
  let maxInFlight = 0;
  let completed = 0;
  let mark;
  const one = async (k, due) => {
    const s = sessions[k % sessions.length];
    const { method, path, body, headers } = makeRequest(k, s);
    const t0 = performance.now();
    const r = await send(s.agent, s.url, method, path, body, headers);
    const t1 = performance.now();
    completed++;
    const problem = r.status === 0 ? `network ${r.error}` : check(k, r);
    if (k < warmN) {
      if (problem !== undefined) warmErrors++;
      return;
    }
    if (problem !== undefined) errors[problem] = (errors[problem] ?? 0) + 1;
    else ok++;
    latency.push(t1 - t0);
    fromDue.push(t1 - due);
    lag.push(t0 - due);
  };
  const start = performance.now() + 50;
  let i = 0;
  await new Promise((resolve) => {
    const tick = () => {
      const now = performance.now();
      while (i < total && start + i * interval <= now) {
        const k = i++;
        if (k === warmN) mark = { t: performance.now(), kms: procCpuMs(kmsPid), gen: process.cpuUsage(), completed };
        const p = one(k, start + k * interval);
        inFlight.add(p);
        maxInFlight = Math.max(maxInFlight, inFlight.size);
        void p.finally(() => inFlight.delete(p));
      }
      if (i >= total) {
        resolve();
        return;
      }
      setTimeout(tick, Math.max(0, start + i * interval - performance.now()));
    };
    tick();
  });
  await Promise.all(inFlight);
  const wallMs = performance.now() - mark.t;
  const kmsNow = procCpuMs(kmsPid);
  const kmsUser = kmsNow.user - mark.kms.user;
  const kmsSystem = kmsNow.system - mark.kms.system;
  const kmsCpu = kmsUser + kmsSystem;
  const genCpu = cpuMs(process.cpuUsage(mark.gen));
  const measured = total - warmN;
  const errorCount = Object.values(errors).reduce((a, b) => a + b, 0);
  return {
    phase: name,
    requests: measured,
    ok,
    errors: errorCount,
    errorKinds: errors,
    warmupRequests: warmN,
    warmupErrors: warmErrors,
    offeredRate: RATE,
    // answers per second from the first measured request's send to the last answer (a backlog drains in it)
    answeredRate: round((completed - mark.completed) / (wallMs / 1000), 1),
    windowSeconds: round(wallMs / 1000),
    // the KMS did not keep up with the offered rate: requests queued (latency then grows with the run's length)
    saturated: wallMs > (SECONDS * 1000) * 1.05 + 1000,
    latencyMs: summary(latency),
    latencyFromDueMs: summary(fromDue),
    sendLagMs: summary(lag),
    maxInFlight,
    kmsCpuPercentOfCore: round((kmsCpu / wallMs) * 100, 1),
    kmsCpuMsPerRequest: round(kmsCpu / measured, 3),
    kmsCpuUserSystemMsPerRequest: [round(kmsUser / measured, 3), round(kmsSystem / measured, 3)],
    loadGenCpuPercentOfCore: round((genCpu / wallMs) * 100, 1),
    loadGenCpuMsPerRequest: round(genCpu / measured, 3),
    loadavg: load(),
  };
}

/** One request at a time (closed loop, no queueing): the service time of each endpoint on an otherwise idle KMS. */
async function sequential(sessions, makeRequest, check) {
  const ms = [];
  let errors = 0;
  for (let k = 0; k < SEQUENTIAL_RUNS + 10; k++) {
    const s = sessions[k % sessions.length];
    const { method, path, body, headers } = makeRequest(k, s);
    const t0 = performance.now();
    const r = await send(s.agent, s.url, method, path, body, headers);
    const t = performance.now() - t0;
    if (k < 10) continue;
    if (r.status === 0 || check(k, r) !== undefined) errors++;
    ms.push(t);
  }
  return { ...summary(ms), median: round(median(ms), 3), errors };
}

// ---- the run ------------------------------------------------------------------------------------------------------
console.log(`site in ${work} (${fsType(work)}) …`);
const site = await makeSite();
const kms = await startKmsProcess(site.configPath);
console.log(`KMS pid ${kms.pid}: ${kms.url}, browser ${site.browserUrl}`);
const admin = await openAdminClient(kms.url, site.adminDir);
const auditSize = async () => (await admin.json('GET', '/v1/admin/audit?from=999999999&limit=1')).size;

// cameras enrol; a group of both, refreshed twice: 3 epochs, each camera's KID and key of each
const expected = new Map(); // KID hex → key hex
const cams = [];
for (const [serial, dir] of site.cameras) {
  const c = await openCameraAgent({ url: kms.url, deviceDir: dir, stateDir: join(work, 'state', serial), kmsRoots: [site.ca.certs.operator] });
  await c.camera.enrol();
  cams.push(c);
}
for (let e = 1; e <= 3; e++) {
  if (e === 1) await admin.json('POST', '/v1/admin/groups', { id: 'yard', members: [...site.cameras.keys()] });
  else await admin.json('POST', '/v1/admin/groups/yard/refresh', {});
  for (const c of cams) {
    for (let attempt = 0; ; attempt++) {
      const s = await c.camera.sync('yard', { waitMs: attempt === 0 ? 0 : 2_000 });
      if (s.epoch === e) break;
      if (attempt > 10) throw new Error(`camera did not reach epoch ${e} (at ${s.epoch})`);
    }
    const k = await c.camera.currentContentKey('yard');
    expected.set(Buffer.from(k.kid).toString('hex'), Buffer.from(k.key).toString('hex'));
  }
  await sleep(30);
}
for (const c of cams) await c.close();
const KIDS = [...expected.keys()].map((h) => Buffer.from(h, 'hex'));
console.log(`${KIDS.length} KIDs (2 cameras × 3 epochs)`);

// accounts: investigators with playback of the group's last day
const users = Array.from({ length: SESSIONS }, (_, i) => `viewer${String(i + 1).padStart(2, '0')}`);
for (const name of users) {
  await admin.json('POST', '/v1/admin/users', { name, role: 'investigator', password: PASSWORD });
  await admin.json('POST', '/v1/admin/grants', { user: name, group: 'yard', rights: ['playback'], lastMs: 24 * 3600_000 });
}
const ca = [toPem(site.ca.certs.operator.rawData, 'CERTIFICATE')];

// 1. login cost
console.log(`login cost: argon2id m=${ARGON2ID.memoryCost} KiB t=${ARGON2ID.timeCost} p=${ARGON2ID.parallelism}, ${HASH_RUNS} hashes, ${LOGIN_RUNS} logins …`);
const hashMs = [];
const verifyMs = [];
let phc;
await hashPassword('warm-up password'); // the first call loads the library
for (let i = 0; i < HASH_RUNS; i++) {
  const t0 = performance.now();
  phc = await hashPassword(`${PASSWORD} ${i}`);
  hashMs.push(performance.now() - t0);
  const t1 = performance.now();
  const v = await verifyPassword(phc, `${PASSWORD} ${i}`);
  verifyMs.push(performance.now() - t1);
  if (!v.ok) throw new Error('verifyPassword refused its own hash');
}
const loginAgent = browserAgent(ca);
for (let i = 0; i < 2; i++) await login(loginAgent, site.browserUrl, users[i % users.length]); // connection, warm-up
const loginMs = [];
for (let i = 0; i < LOGIN_RUNS; i++) {
  const t0 = performance.now();
  await login(loginAgent, site.browserUrl, users[i % users.length]);
  loginMs.push(performance.now() - t0);
}
loginAgent.destroy();
const loginCost = {
  argon2id: { ...ARGON2ID, algorithm: 'argon2id' },
  hashMs: { runs: HASH_RUNS, median: round(median(hashMs)), min: round(Math.min(...hashMs)), max: round(Math.max(...hashMs)) },
  verifyMs: { runs: HASH_RUNS, median: round(median(verifyMs)), min: round(Math.min(...verifyMs)), max: round(Math.max(...verifyMs)) },
  loginRequestMs: { ...summary(loginMs), median: round(median(loginMs)), what: 'POST /v1/login over a kept-alive TLS 1.3 connection, sequential: argon2id verify in the KMS (thread pool), session row and audit entry (one transaction, fsync)' },
};
console.log(`  argon2id hash median ${loginCost.hashMs.median} ms, verify ${loginCost.verifyMs.median} ms; login request median ${loginCost.loginRequestMs.median} ms, p99 ${loginCost.loginRequestMs.p99} ms`);

// 2. one audit append, measured directly: INSERT of an audit-sized row, WAL, synchronous=FULL, beside the KMS's database
const appendMs = [];
{
  const db = new Database(join(work, 'append-probe.sqlite'));
  db.pragma('locking_mode = EXCLUSIVE');
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = FULL');
  db.exec('CREATE TABLE audit (seq INTEGER PRIMARY KEY, at INTEGER NOT NULL, actor TEXT NOT NULL, action TEXT NOT NULL, detail TEXT NOT NULL, entry TEXT, leaf TEXT, prev TEXT, hash TEXT)');
  const insert = db.prepare('INSERT INTO audit (seq, at, actor, action, detail, entry, leaf, prev, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)');
  const detail = JSON.stringify({ user: 'viewer01', role: 'investigator', session: 'x'.repeat(22), keys: [{ kid: '0'.repeat(32), decision: 'released', group: 'yard', camera: 'CAM-A', epoch: 2, from: new Date().toISOString(), to: new Date().toISOString(), grant: 1, right: 'playback' }] });
  const entry = JSON.stringify({ v: 1, seq: 0, at: new Date().toISOString(), actor: 'user:viewer01', action: 'licence', detail: JSON.parse(detail), from: { address: '127.0.0.1' } });
  const h = 'a'.repeat(64);
  for (let i = 1; i <= APPEND_RUNS + 20; i++) {
    const t0 = performance.now();
    insert.run(i, Date.now(), 'user:viewer01', 'licence', detail, entry, h, h, h);
    if (i > 20) appendMs.push(performance.now() - t0);
  }
  db.close();
}
const auditAppend = { runs: APPEND_RUNS, ...summary(appendMs), median: round(median(appendMs), 3), what: 'better-sqlite3 INSERT of an audit-sized row (autocommit), WAL, synchronous=FULL, locking_mode=EXCLUSIVE, in the same directory as the KMS database, KMS idle' };
console.log(`  audit append (INSERT, WAL, synchronous=FULL) median ${auditAppend.median} ms, p99 ${auditAppend.p99} ms`);

// the load sessions: one user and one keep-alive connection each
const sessions = [];
for (const user of users) {
  const agent = browserAgent(ca);
  const s = await login(agent, site.browserUrl, user);
  sessions.push({ user, agent, url: site.browserUrl, ...s });
}

// the two request kinds: GET /v1/session (baseline) and POST /v1/licence (1 or 2 KIDs alternately), answers checked
const sessionRequest = (_k, s) => ({ method: 'GET', path: '/v1/session', headers: { cookie: s.cookie } });
const sessionCheck = (k, r) => {
  if (r.status !== 200) return `status ${r.status}`;
  return JSON.parse(r.body.toString('utf8')).user === sessions[k % sessions.length].user ? undefined : 'wrong session';
};
const kidsOf = (k) => (k % 2 === 0 ? [KIDS[k % KIDS.length]] : [KIDS[k % KIDS.length], KIDS[(k + 1) % KIDS.length]]);
const bodies = new Map();
const bodyOf = (k) => {
  const key = `${k % 2}:${k % KIDS.length}`;
  let b = bodies.get(key);
  if (b === undefined) bodies.set(key, (b = encodeLicenceRequest(kidsOf(k))));
  return b;
};
const licenceRequest = (k, s) => ({ method: 'POST', path: '/v1/licence', body: bodyOf(k), headers: { cookie: s.cookie, 'x-csrf-token': s.csrf, 'content-type': 'application/json' } });
const licenceCheck = (k, r) => {
  if (r.status !== 200) return `status ${r.status}`;
  let got;
  try {
    got = parseLicenceResponse(r.body.toString('utf8'));
  } catch {
    return 'bad licence';
  }
  const want = kidsOf(k).map((b) => b.toString('hex'));
  if (got.size !== want.length) return 'wrong keys';
  for (const kid of want) if (got.get(kid)?.toString('hex') !== expected.get(kid)) return 'wrong keys';
  return undefined;
};

// 3. service time, one request at a time (no queueing)
console.log(`one request at a time: ${SEQUENTIAL_RUNS} of each …`);
const serviceTime = { session: await sequential(sessions, sessionRequest, sessionCheck), licence: await sequential(sessions, licenceRequest, licenceCheck) };
console.log(`  GET /v1/session median ${serviceTime.session.median} ms, p99 ${serviceTime.session.p99}; POST /v1/licence median ${serviceTime.licence.median} ms, p99 ${serviceTime.licence.p99}`);

// 4 and 5, ROUNDS times in turn (a shared VM's noise moves a single 30 s window; the medians over rounds are reported)
const rounds = [];
for (let r = 1; r <= ROUNDS; r++) {
  // 4. baseline at the rate: GET /v1/session
  console.log(`round ${r}/${ROUNDS}: baseline GET /v1/session: ${RATE}/s over ${SESSIONS} connections, ${WARMUP} s warm-up + ${SECONDS} s …`);
  const a0 = await auditSize();
  const b = await phase('GET /v1/session', sessions, kms.pid, sessionRequest, sessionCheck);
  const a1 = await auditSize();
  b.auditEntriesWritten = a1 - a0;
  b.auditEntriesExpected = 0;
  // 5. licences at the rate
  console.log(`round ${r}/${ROUNDS}: licence POST /v1/licence: ${RATE}/s over ${SESSIONS} connections, ${WARMUP} s warm-up + ${SECONDS} s …`);
  const l = await phase('POST /v1/licence', sessions, kms.pid, licenceRequest, licenceCheck);
  const a2 = await auditSize();
  l.auditEntriesWritten = a2 - a1;
  l.auditEntriesExpected = l.requests + l.warmupRequests;
  console.log(`  baseline p99 ${b.latencyMs.p99} ms (send lag p99 ${b.sendLagMs.p99}); licence p50 ${l.latencyMs.p50} ms, p99 ${l.latencyMs.p99} ms (send lag p99 ${l.sendLagMs.p99}), ${l.errors} errors`);
  rounds.push({ baseline: b, licence: l });
}
// the round whose licence p99 is the median stands for the whole in `baseline` and `licence`
const byP99 = [...rounds].sort((x, y) => x.licence.latencyMs.p99 - y.licence.latencyMs.p99);
const { baseline, licence } = byP99[Math.floor((byP99.length - 1) / 2)];
const kmsHwmMB = procHwmMB(kms.pid);

for (const s of sessions) s.agent.destroy();
admin.close();
await stopKmsProcess();

// ---- the result ---------------------------------------------------------------------------------------------------
const licenceP99 = median(rounds.map((r) => r.licence.latencyMs.p99));
const baselineP99 = median(rounds.map((r) => r.baseline.latencyMs.p99));
const met = rounds.every((r) => r.licence.errors === 0 && !r.licence.saturated) && licenceP99 <= GOAL_P99_MS;
const result = {
  benchmark: 'KMS licence latency at a steady request rate with audit writes (fsync per decision); login cost',
  method:
    `keyframe kms serve as a child process (default log level: one JSON line per licence on its stdout, drained), a fresh site and database in a temporary directory; ${SESSIONS} investigator accounts with playback of a group of 2 cameras (3 epochs: ${KIDS.length} KIDs), each logged in once on its own keep-alive TLS 1.3 connection to the browser listener. ` +
    `Open loop: one request every ${round(1000 / RATE, 3)} ms, round-robin over the connections (a request waits behind its connection's previous one); ${WARMUP} s warm-up, then ${SECONDS} s measured, per phase: baseline GET /v1/session (cookie, session and account look-ups; no key look-up, no audit write), then POST /v1/licence (ClearKey JSON request, 1 or 2 KIDs alternately, CSRF token; every answer checked: 200, exactly the keys asked, each the camera's key; each decision an audit entry committed with synchronous=FULL before the answer, signed checkpoints every 256 entries). ` +
    'latencyMs: from the request call to the end of the answer; latencyFromDueMs: from its scheduled time (adds this process\'s timer lag, sendLagMs); KMS CPU from /proc/PID/stat over the measured window; audit entries from GET /v1/admin/audit size before and after each phase (warm-up included). ' +
    `serviceTime: ${SEQUENTIAL_RUNS} requests of each kind one at a time (no queueing) before the phases. ` +
    'Login: argon2id hash/verify timed in this process (@node-rs/argon2, the KMS\'s parameters), and sequential POST /v1/login. auditAppend: one plain INSERT measured directly, beside the KMS database (the KMS commits each decision synchronously on its event loop, so 1000 / its time bounds the licences per second).',
  goal: { licenceP99Ms: `≤ ${GOAL_P99_MS} at ${RATE} requests/s with audit writes`, login: 'stated, no goal' },
  machine: {
    ...machine(),
    shared: true,
    nice: niceness(),
    loadavgStart: loadStart,
    loadavgEnd: load(),
    tmpFilesystem: fsType(parent),
    note: benchNote('the load generator (this process, TLS client) shares the cores with the KMS (child process)'),
  },
  settings: { rounds: ROUNDS, rate: RATE, warmupSeconds: WARMUP, seconds: SECONDS, sessions: SESSIONS, kids: KIDS.length, kidsPerRequest: '1 or 2, alternately', hashRuns: HASH_RUNS, loginRuns: LOGIN_RUNS, appendRuns: APPEND_RUNS },
  result: {
    licenceP99Ms: licenceP99,
    licenceP99MsByRound: rounds.map((r) => r.licence.latencyMs.p99),
    baselineP99MsByRound: rounds.map((r) => r.baseline.latencyMs.p99),
    licenceP50Ms: median(rounds.map((r) => r.licence.latencyMs.p50)),
    licenceMaxMs: licence.latencyMs.max,
    licenceErrors: licence.errors,
    licenceSaturated: licence.saturated,
    licenceAnsweredPerSecond: licence.answeredRate,
    baselineP99Ms: baselineP99,
    licenceP99VsBaselineP99: baselineP99 > 0 ? round(licenceP99 / baselineP99) : undefined,
    licenceP50MinusBaselineP50Ms: round(median(rounds.map((r) => r.licence.latencyMs.p50)) - median(rounds.map((r) => r.baseline.latencyMs.p50)), 3),
    licenceServiceMedianMs: serviceTime.licence.median,
    sessionServiceMedianMs: serviceTime.session.median,
    auditAppendMedianMs: auditAppend.median,
    licencesPerSecondBoundByAuditAppend: Math.floor(1000 / auditAppend.median),
    kmsCpuMsPerLicence: licence.kmsCpuMsPerRequest,
    kmsCpuMsPerSessionCheck: baseline.kmsCpuMsPerRequest,
    argon2idHashMedianMs: loginCost.hashMs.median,
    loginRequestMedianMs: loginCost.loginRequestMs.median,
    loginRequestP99Ms: loginCost.loginRequestMs.p99,
  },
  goalMet: { licenceP99: met },
  login: loginCost,
  auditAppend,
  serviceTime,
  baseline,
  licence,
  rounds: rounds.map((r, i) => ({ round: i + 1, baselineLatencyMs: r.baseline.latencyMs, baselineSendLagMs: r.baseline.sendLagMs, licenceLatencyMs: r.licence.latencyMs, licenceSendLagMs: r.licence.sendLagMs, licenceErrors: r.licence.errors, kmsCpuMsPerLicence: r.licence.kmsCpuMsPerRequest })),
  kms: { peakRssMB: kmsHwmMB, warnings: kms.warnings },
  elapsedSeconds: Math.round((Date.now() - started) / 1000),
};
mkdirSync(join(OUT, '..'), { recursive: true });
writeFileSync(OUT, `${JSON.stringify(result, null, 2)}\n`);

const line = (r) => `p50 ${r.latencyMs.p50} ms, p95 ${r.latencyMs.p95}, p99 ${r.latencyMs.p99}, max ${r.latencyMs.max}; ${r.ok}/${r.requests} ok, ${r.errors} errors; answered ${r.answeredRate}/s${r.saturated ? ' (SATURATED: a backlog built up)' : ''}; send lag p99 ${r.sendLagMs.p99} ms; KMS ${r.kmsCpuPercentOfCore} % of a core (${r.kmsCpuMsPerRequest} ms/request), load generator ${r.loadGenCpuPercentOfCore} %; audit +${r.auditEntriesWritten} (expected ${r.auditEntriesExpected})`;
console.log(`\nbaseline GET /v1/session: ${line(baseline)}`);
console.log(`licence  POST /v1/licence: ${line(licence)}`);
console.log(`one at a time: licence ${serviceTime.licence.median} ms median vs session ${serviceTime.session.median} ms; one audit append ${auditAppend.median} ms median (bounds licences at ~${result.result.licencesPerSecondBoundByAuditAppend}/s)`);
console.log(`licence p99 by round: ${rounds.map((r) => r.licence.latencyMs.p99).join(', ')} ms; baseline p99 by round: ${rounds.map((r) => r.baseline.latencyMs.p99).join(', ')} ms`);
console.log(`licence p99 (median of ${ROUNDS} rounds) ${licenceP99} ms vs baseline p99 ${baselineP99} ms (×${result.result.licenceP99VsBaselineP99}); goal p99 ≤ ${GOAL_P99_MS} ms at ${RATE}/s: ${met ? 'met' : 'NOT met'}`);
console.log(`login: argon2id hash ${loginCost.hashMs.median} ms median, verify ${loginCost.verifyMs.median} ms; POST /v1/login median ${loginCost.loginRequestMs.median} ms, p99 ${loginCost.loginRequestMs.p99} ms`);
console.log(`load ${load().join(' ')} (start ${loadStart.join(' ')}); wrote ${OUT}`);
cleanup();
