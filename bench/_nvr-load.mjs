// Shared by the NVR benchmarks (nvr-ingest-bench.mjs, nvr-backfill-bench.mjs): a cached site (CA, the NVR's TLS
// identity, N cameras provisioned with software key stores, CRLs), a genuine 1080p25 4 Mbit/s recording made once
// by the camera pipeline (recordSession, 1 s GOPs: real CMAF fragments of ~500 kB), an NVR run as a separate
// process (`keyframe nvr serve`, so its CPU is its own: /proc/PID/stat), and simulated cameras: each its own device
// certificate and keep-alive mutual-TLS connection, records pre-signed with its own device key before the timed part.
//
// What the NVR checks of a segment: its SHA-256 against the signed fragment record (it never parses the media).
// The segments sent are the real fragments of the template recording, cycled; each camera signs its own session
// record (its serial, its session, the template's init hash) and a chained fragment record per segment.
import { spawn, execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { Agent, request } from 'node:https';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';

const dist = new URL('../dist/', import.meta.url);
const imp = (p) => import(new URL(p, dist).href);
const { initCa, issueAllCrls } = await imp('pki/ca.js');
const { CaStore } = await imp('pki/ca-store.js');
const { openDevice, provisionDevice } = await imp('pki/device.js');
const { createSite } = await imp('pki/site.js');
const { loadTlsIdentity, tlsClientOptions } = await imp('pki/tls.js');
const { parseCertificates } = await imp('pki/pem.js');
const { recordSession } = await imp('camera/record.js');
const { CHAIN_FILE, INIT_FILE, RECORDS_FILE, segmentSeq } = await imp('recording/layout.js');
const { canonicalJson, recordHash, signRecord, GENESIS } = await imp('recording/records.js');
const { ingestPath } = await imp('nvr/protocol.js');
const { NvrIndex } = await imp('nvr/db.js');
const { SegmentStore } = await imp('nvr/store.js');
const { checkStore } = await imp('nvr/check.js');

export const ROOT = process.env.KF_BENCH_NVR_DIR ?? join(tmpdir(), 'keyframe-bench-nvr');
const PIN_ENV = 'KF_BENCH_NVR_PIN';
process.env[PIN_ENV] ??= 'bench passphrase';
const spec = (dir) => `file:${dir};pin-env=${PIN_ENV}`;
const SITE = join(ROOT, 'site');
export const siteDir = SITE;
export const serialOf = (i) => `CAM-${String(i + 1).padStart(4, '0')}`;
const camDir = (serial) => join(SITE, 'cams', serial);
export const camDirOf = camDir;
export const clipPath = join(ROOT, '1080p25-4M-10s.h264');
const BIN = new URL('../bin/keyframe.js', import.meta.url).pathname;
const CLK_TCK = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;

export const load = () => loadavg().map((x) => +x.toFixed(2));
export const cpuMs = (c) => (c.user + c.system) / 1000;

/** The site, with at least `n` cameras (provisioned once, cached under ROOT). */
export async function site(n) {
  mkdirSync(SITE, { recursive: true });
  const caDir = join(SITE, 'ca');
  if (!existsSync(join(caDir, 'root.pem'))) {
    rmSync(caDir, { recursive: true, force: true });
    rmSync(join(SITE, 'nvr'), { recursive: true, force: true });
    await initCa({ dir: caDir, keystore: spec(join(caDir, 'keys')) });
  }
  const ca = await CaStore.open(caDir);
  const caStore = await ca.openKeyStore();
  if (!existsSync(join(SITE, 'nvr', 'site.json'))) {
    await createSite({ out: join(SITE, 'nvr'), ca, caKeyStore: caStore, name: 'localhost', altNames: ['localhost', '127.0.0.1'], keystore: spec(join(SITE, 'nvr', 'keys')) });
  }
  let added = 0;
  for (let i = 0; i < n; i++) {
    const s = serialOf(i);
    if (existsSync(join(camDir(s), 'chain.pem'))) continue;
    rmSync(camDir(s), { recursive: true, force: true });
    await provisionDevice({ ca, caKeyStore: caStore, dir: camDir(s), serial: s, keystore: spec(join(camDir(s), 'keys')) });
    added++;
  }
  if (added > 0 || !existsSync(join(caDir, 'crl.pem'))) {
    writeFileSync(join(caDir, 'crl.pem.new'), await issueAllCrls(ca, caStore, { days: 30 }));
    renameSync(join(caDir, 'crl.pem.new'), join(caDir, 'crl.pem'));
  }
  await caStore.close?.();
  return SITE;
}

/** A genuine 1080p25 4 Mbit/s recording (x264, 1 s GOP, 10 s) by camera CAM-0001: its init and fragments. */
export async function template() {
  const dir = join(ROOT, 'template-1080p25-4M');
  if (!existsSync(join(dir, RECORDS_FILE)) || !existsSync(join(dir, 'done'))) {
    if (!existsSync(clipPath)) {
      execFileSync('ffmpeg', ['-hide_banner', '-loglevel', 'error', '-y', '-f', 'lavfi', '-i', 'testsrc2=size=1920x1080:rate=25', '-t', '10',
        '-c:v', 'libx264', '-preset', 'ultrafast', '-tune', 'zerolatency', '-bf', '0', '-b:v', '4M', '-maxrate', '4M', '-bufsize', '8M',
        '-g', '25', '-keyint_min', '25', '-sc_threshold', '0', '-pix_fmt', 'yuv420p', '-f', 'h264', `${clipPath}.tmp`]);
      renameSync(`${clipPath}.tmp`, clipPath);
    }
    rmSync(dir, { recursive: true, force: true });
    const device = await openDevice(camDir(serialOf(0)));
    try {
      await recordSession({ device, source: clipPath, seconds: 10, out: dir, realTime: false });
    } finally {
      await device.close();
    }
    writeFileSync(join(dir, 'done'), '');
  }
  const segs = readdirSync(dir)
    .filter((n) => segmentSeq(n) !== undefined)
    .sort((a, b) => segmentSeq(a) - segmentSeq(b))
    .map((n) => readFileSync(join(dir, n)));
  const records = readFileSync(join(dir, RECORDS_FILE), 'utf8').split('\n').filter((l) => l !== '').map((l) => JSON.parse(l));
  const frags = records.filter((r) => r.kind === undefined);
  return { init: readFileSync(join(dir, INIT_FILE)), segs, durations: frags.map((f) => f.end - f.start) };
}

/**
 * A camera's session, pre-signed with its own device key: the session record (start `startMs`), then for seq
 * 0…count-1 a fragment record over template segment seq % 10, chained; the end record.
 */
const devices = new Map();
export async function presign(serial, tpl, count, startMs, counter0 = 1) {
  let device = devices.get(serial);
  if (device === undefined) {
    device = await openDevice(camDir(serial));
    devices.set(serial, device);
  }
  {
    const sign = (d) => device.store.sign(device.config.keyLabel, d);
    const session = randomBytes(16).toString('hex');
    const records = [];
    let prev = GENESIS;
    let counter = counter0;
    const add = async (r) => {
      const signed = await signRecord({ ...r, counter: counter++, prev }, sign);
      prev = recordHash(signed);
      records.push(canonicalJson(signed));
    };
    await add({ v: 1, kind: 'session', session, serial, start: new Date(startMs).toISOString(), scheme: 'none', kid: '', init: createHash('sha256').update(tpl.init).digest('hex') });
    const segs = [];
    const hashes = tpl.segs.map((s) => createHash('sha256').update(s).digest('hex'));
    let t = 0;
    for (let seq = 0; seq < count; seq++) {
      const k = seq % tpl.segs.length;
      const d = tpl.durations[k] ?? 1;
      await add({ v: 1, session, seq, start: +t.toFixed(6), end: +(t + d).toFixed(6), sha256: hashes[k] });
      segs.push(tpl.segs[k]);
      t += d;
    }
    await add({ v: 1, kind: 'end', session, seq: count, end: +t.toFixed(6), reason: 0 });
    return { serial, session, chain: readFileSync(join(camDir(serial), CHAIN_FILE)), init: tpl.init, segs, records };
  }
}

/** Closes the device key stores presign opened. */
export async function closeDevices() {
  for (const d of devices.values()) await d.close();
  devices.clear();
}

/** PUTs sent again after a connection reset (counted for the results). */
export const retried = { count: 0 };

/** A simulated camera's mutual-TLS client (its own certificate and key), keep-alive connections. */
export async function cameraClient(serial, url, sockets = 2) {
  const roots = parseCertificates(readFileSync(join(SITE, 'ca', 'operator.pem')), 'operator.pem');
  const tls = await tlsClientOptions(loadTlsIdentity(camDir(serial)), { roots }, 'localhost');
  const u = new URL(url);
  const agent = new Agent({ keepAlive: true, maxSockets: sockets });
  const send = (path, body) =>
    new Promise((resolve, reject) => {
      const req = request(
        { ...tls, host: u.hostname, port: u.port, method: 'PUT', path, agent, headers: { 'content-type': 'application/octet-stream', 'content-length': String(body.length) } },
        (res) => {
          res.resume();
          res.on('end', () => resolve(res.statusCode ?? 0));
          res.on('error', reject);
        },
      );
      req.on('error', reject);
      req.end(body);
    });
  // a keep-alive connection the NVR closed while idle (its keep-alive timeout, 5 s) is reset when reused: the
  // object was not acknowledged, so it is sent again (PUTs are idempotent), as the agent's uploader retries
  const sendRetrying = async (path, body) => {
    for (let attempt = 0; ; attempt++) {
      try {
        return await send(path, body);
      } catch (e) {
        if (attempt >= 3 || !['ECONNRESET', 'EPIPE'].includes(e?.code)) throw e;
        retried.count++;
      }
    }
  };
  return {
    put: (s, kind, body, index) => sendRetrying(kind === 'seg' || kind === 'rec' ? ingestPath({ kind, serial, session: s, index }) : ingestPath({ kind, serial, session: s }), typeof body === 'string' ? Buffer.from(body) : body),
    close: () => agent.destroy(),
  };
}

/** CPU ms (user + system) of process `pid` so far, from /proc/PID/stat. */
export function procCpuMs(pid) {
  const { user, system } = procCpuSplitMs(pid);
  return user + system;
}

/** User and system CPU time of `pid`, ms. */
export function procCpuSplitMs(pid) {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return { user: (Number(f[11]) * 1000) / CLK_TCK, system: (Number(f[12]) * 1000) / CLK_TCK };
}

/** Peak RSS (VmHWM) of `pid`, kB. */
export function procHwmKb(pid) {
  const m = /VmHWM:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) : undefined;
}

/** A fresh NVR (empty store and index) in `dir`, run as `keyframe nvr serve` (niced like the bench itself). */
export async function startNvrProcess(dir) {
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  const config = join(dir, 'nvr.json');
  writeFileSync(
    config,
    JSON.stringify({
      listen: { host: '127.0.0.1', port: 0 },
      identity: join(SITE, 'nvr'),
      trust: { root: join(SITE, 'ca/root.pem'), factory: join(SITE, 'ca/factory.pem'), operator: join(SITE, 'ca/operator.pem'), crls: [join(SITE, 'ca/crl.pem')] },
      store: join(dir, 'store'),
      database: join(dir, 'nvr.sqlite'),
      freeSpaceFloor: 0,
    }),
  );
  NvrIndex.open(join(dir, 'nvr.sqlite'), { create: true }).close();
  const prof = process.env.NVR_PROF !== undefined ? ['--cpu-prof', `--cpu-prof-dir=${process.env.NVR_PROF}`] : [];
  const child = spawn(process.execPath, [...prof, BIN, 'nvr', 'serve', '--config', config], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, KEYFRAME_KEYSTORE_PIN: process.env[PIN_ENV] } });
  let errText = '';
  child.stderr.on('data', (d) => (errText += d));
  const logLines = [];
  const url = await new Promise((resolve, reject) => {
    let buf = '';
    child.stdout.on('data', (d) => {
      buf += d;
      let nl;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        try {
          const j = JSON.parse(line);
          if (j.event === 'listening') resolve(j.url);
          else if (j.level >= 40) logLines.push(line);
        } catch {
          /* not JSON */
        }
      }
    });
    child.on('exit', (code) => reject(new Error(`nvr serve exited ${code}: ${errText}`)));
  });
  return {
    url,
    pid: child.pid,
    warnings: logLines,
    cpuMs: () => procCpuMs(child.pid),
    hwmKb: () => procHwmKb(child.pid),
    stop: () => new Promise((resolve) => {
      child.once('exit', () => resolve());
      child.kill('SIGTERM');
    }),
    store: join(dir, 'store'),
    database: join(dir, 'nvr.sqlite'),
  };
}

/** After the NVR stopped: checkStore (index against files), and the index's segment states and record count. */
export async function checkNvr(nvr) {
  const index = NvrIndex.open(nvr.database);
  try {
    const report = await checkStore(index, new SegmentStore(nvr.store));
    const db = index.db ?? index['db'];
    const states = Object.fromEntries(db.prepare('SELECT state, count(*) AS n FROM segments GROUP BY state').all().map((r) => [r.state, r.n]));
    const records = db.prepare("SELECT count(*) AS n FROM records WHERE state = 'ok' AND verified = 1").get().n;
    const quarantined = db.prepare('SELECT count(*) AS n FROM quarantine').get().n;
    const alarms = db.prepare('SELECT count(*) AS n FROM alarms').get().n;
    return { problems: report.problems.length, checked: report.checked, segmentStates: states, verifiedRecords: records, quarantined, alarms };
  } finally {
    index.close();
  }
}

/** The machine's load and the NVR's environment, for the JSON. */
export function nice() {
  try {
    return Number(readFileSync('/proc/self/stat', 'utf8').split(') ')[1].split(' ')[16]);
  } catch {
    return undefined;
  }
}

export function percentile(values, p) {
  if (values.length === 0) return undefined;
  const s = [...values].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))];
}
