// Group keys over the network (issue 5): a real KMS process (`keyframe kms serve`, HTTPS with mutual TLS, SQLite
// WAL) and N camera endpoints, each with its own device certificate (factory CA), key, TLS connection and state
// directory, holding a long poll for the next epoch. The cameras run in WORKERS worker threads (default: one per
// core) so that the simulated fleet, which in reality has one CPU per camera, is not one JavaScript thread.
// For single leaves and single joins (batch window 0) it measures, per operation:
//  - allOnEpochMs: from the administrator's request until EVERY staying camera has applied the new bundle and
//    persisted its sealed state (goal at N = 1,000: ≤ 300 ms over loopback);
//  - kmsDeliveredMs: until the administrator's answer arrives — the KMS writes it after the new bundle has been
//    written to every waiting camera's connection (the long polls are woken first), so it bounds the KMS's side;
//  - the KMS process's CPU time for the operation (utime + stime from /proc: request, rekey, signing, SQLite,
//    N responses);
//  - bundle bytes as delivered.
// Baseline in the same run: one mutual-TLS round trip (GET /v1/me) of one camera on a warm connection; the
// ratio says how many round trips the whole fleet update costs. Medians of OPS leaves and OPS joins. Results:
// bench/results/groupkey-net.json. Camera keys live in one software key store (scrypt once per thread) so that
// 1,000 identities can be made in a benchmark's time; each camera still has its own key, certificate and K_i.
// Camera state directories are on tmpfs when there is one: each real camera writes (and fsyncs) its own flash,
// while here one disk's journal would serialise 1,000 devices' fsyncs.
// 1,000 cameras' file I/O (each writes and fsyncs its state after every epoch) goes through this process's libuv
// pool: give it enough threads that it is not queued behind four (set before any I/O)
process.env.UV_THREADPOOL_SIZE ??= '64';
import { performance } from 'node:perf_hooks';
import { setTimeout } from 'node:timers';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os, { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { machine, median } from './_machine.mjs';

const SIZES = (process.env.SIZES ?? '100,1000').split(',').map(Number);
const OPS = Number(process.env.OPS ?? 5);
const WORKERS = Number(process.env.WORKERS ?? Math.max(1, os.cpus().length));
const dist = new URL('../dist/', import.meta.url);
const imp = (p) => import(new URL(p, dist).href);
const { initCa, issueEnrolmentToken, issueDeviceCertificate } = await imp('pki/ca.js');
const { CaStore } = await imp('pki/ca-store.js');
const { createSite } = await imp('pki/site.js');
const { createCsr } = await imp('pki/csr.js');
const { names } = await imp('pki/profile.js');
const { certsToPem } = await imp('pki/pem.js');
const { SoftwareKeyStore } = await imp('keystore/software.js');
const { openAdminClient } = await imp('kms/open.js');

const PIN_ENV = 'KF_BENCH_KMS_PIN';
process.env[PIN_ENV] = 'bench kms passphrase';
const BIN = new URL('../bin/keyframe.js', import.meta.url).pathname;
const now = () => performance.timeOrigin + performance.now();

function procCpuMs(pid) {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return ((Number(f[11]) + Number(f[12])) * 1000) / 100; // utime + stime, 10 ms clock ticks
}

async function startKms(config) {
  const p = spawn(process.execPath, [BIN, 'kms', 'serve', '--config', config, '--new-database'], { env: process.env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  const url = await new Promise((resolve, reject) => {
    p.stdout.on('data', (d) => {
      out += d.toString();
      const m = /"event":"listening","url":"([^"]+)"/.exec(out);
      if (m) resolve(m[1]);
      if (out.length > 1e6) out = out.slice(-1000);
    });
    p.stderr.on('data', (d) => (err += d.toString()));
    p.on('exit', (code) => reject(new Error(`kms exited ${code}: ${err}`)));
  });
  return { p, url };
}

/** A worker with a request/answer channel. */
function startWorker(data) {
  const w = new Worker(new URL('./_groupkey-net-worker.mjs', import.meta.url), { workerData: data });
  let next = 0;
  const pending = new Map();
  const ready = new Promise((resolve, reject) => {
    w.on('message', (m) => {
      if (m.ready) return resolve();
      const p = pending.get(m.id);
      pending.delete(m.id);
      if (m.ok) p.resolve(m);
      else p.reject(new Error(m.error));
    });
    w.on('error', reject);
  });
  return {
    ready,
    ask: (msg) =>
      new Promise((resolve, reject) => {
        const id = next++;
        pending.set(id, { resolve, reject });
        w.postMessage({ ...msg, id });
      }),
    worker: w,
  };
}

async function runSize(n) {
  const work = mkdtempSync(join(tmpdir(), `kf-bench-net-${n}-`));
  const camStorage = mkdtempSync(join(existsSync('/dev/shm') ? '/dev/shm' : tmpdir(), `kf-bench-cams-${n}-`));
  const spec = (dir) => `file:${dir};pin-env=${PIN_ENV}`;
  const t0 = performance.now();
  await initCa({ dir: join(work, 'ca'), keystore: spec(join(work, 'ca', 'keys')) });
  const ca = await CaStore.open(join(work, 'ca'));
  const caStore = await ca.openKeyStore();
  await createSite({ out: join(work, 'kms'), ca, caKeyStore: caStore, name: 'localhost', altNames: ['localhost', '127.0.0.1'], keystore: spec(join(work, 'kms', 'keys')) });
  await createSite({ out: join(work, 'admin'), ca, caKeyStore: caStore, name: 'ops', altNames: ['ops'], clientAuth: true, keystore: spec(join(work, 'admin', 'keys')) });
  const fleetDir = join(work, 'fleet');
  const fleet = await SoftwareKeyStore.open(fleetDir, process.env[PIN_ENV], { create: true });
  const cams = [];
  for (let i = 0; i < n + OPS; i++) {
    const serial = `B${String(i).padStart(5, '0')}`;
    const label = `dev-${serial}`;
    await fleet.generateKeyPair(label, 'ec-p256');
    const token = await issueEnrolmentToken(ca, serial);
    const csr = await createCsr(fleet, label, { subject: names.device(ca.config.org, serial), challengePassword: token });
    const cert = await issueDeviceCertificate(ca, caStore, csr);
    cams.push({ serial, label, chainPem: certsToPem([cert, ca.certs.factory]) });
  }
  await caStore.close();
  await fleet.close();
  const setupMs = performance.now() - t0;

  const config = join(work, 'kms.json');
  writeFileSync(config, JSON.stringify({ listen: { host: '127.0.0.1', port: 0 }, identity: 'kms', trust: { root: 'ca/root.pem', factory: 'ca/factory.pem', operator: 'ca/operator.pem' }, database: 'kms.sqlite', admins: ['ops'], batchWindow: '0ms', maxWait: '60s' }));
  const kms = await startKms(config);
  const url = kms.url;
  const shards = Array.from({ length: WORKERS }, (_, w) => cams.filter((_, i) => i % WORKERS === w));
  const workers = shards.map((share) => startWorker({ url, fleetDir, pin: process.env[PIN_ENV], operatorPem: certsToPem([ca.certs.operator]), cams: share, stateRoot: camStorage }));
  await Promise.all(workers.map((w) => w.ready));
  const workerOf = new Map(shards.flatMap((share, w) => share.map((c) => [c.serial, workers[w]])));
  const admin = await openAdminClient(url, join(work, 'admin'));
  const onWorkers = (serials, msg) => Promise.all(workers.map((w) => w.ask({ ...msg, serials: serials.filter((s) => workerOf.get(s) === w) })));
  try {
    const te = performance.now();
    await Promise.all(workers.map((w) => w.ask({ kind: 'enrol' })));
    const enrolMs = performance.now() - te;
    const members = cams.slice(0, n).map((c) => c.serial);
    const tc = performance.now();
    await admin.json('POST', '/v1/admin/groups', { id: 'bench', members, leader: members[0], batchWindowMs: 0 });
    const createMs = performance.now() - tc;
    const tg = performance.now();
    await onWorkers(members, { kind: 'sync', group: 'bench' });
    const genesisSyncMs = performance.now() - tg;

    const rtts = [];
    for (let i = 0; i < 50; i++) {
      const t = performance.now();
      await admin.call('GET', '/v1/admin/status');
      rtts.push(performance.now() - t);
    }
    const rtt = median(rtts);

    const inGroup = new Set(members);
    const results = { leave: [], join: [] };
    let joiner = n;
    for (let op = 0; op < 2 * OPS; op++) {
      const kind = op % 2 === 0 ? 'leave' : 'join';
      const serial = kind === 'leave' ? members[1 + op] : cams[joiner++].serial;
      const staying = [...inGroup].filter((s) => s !== serial);
      const polls = onWorkers(staying, { kind: 'poll', group: 'bench' });
      await new Promise((r) => setTimeout(r, Math.max(300, n))); // until the KMS holds every long poll
      const cpu0 = procCpuMs(kms.p.pid);
      const t = now();
      const r = kind === 'leave' ? await admin.json('DELETE', `/v1/admin/groups/bench/members/${serial}`) : await admin.json('POST', '/v1/admin/groups/bench/members', { serial });
      const answered = now() - t;
      const got = (await polls).flatMap((x) => x.results);
      await new Promise((r2) => setTimeout(r2, 100));
      const cpu = procCpuMs(kms.p.pid) - cpu0;
      const wrong = got.filter((x) => x.epoch !== r.epoch || x.status !== 'applied');
      if (wrong.length > 0 || got.length !== staying.length) throw new Error(`cameras not on epoch ${r.epoch}: ${wrong.map((x) => x.serial).join(' ')}`);
      const times = got.map((x) => x.at - t).sort((a, b) => a - b);
      if (kind === 'leave') inGroup.delete(serial);
      else {
        inGroup.add(serial);
        const j = await workerOf.get(serial).ask({ kind: 'sync', group: 'bench', serials: [serial] });
        if (j.epochs[serial] !== r.epoch) throw new Error('joiner not on the new epoch');
      }
      const sample = { serial, epoch: r.epoch, cameras: staying.length, allOnEpochMs: times.at(-1), firstMs: times[0], p50Ms: times[times.length >> 1], adminAnsweredMs: answered, kmsCpuMs: cpu };
      results[kind].push(sample);
      console.log(`  n=${n} ${kind} ${serial}: all ${staying.length} cameras on epoch ${r.epoch} in ${sample.allOnEpochMs.toFixed(1)} ms (first ${sample.firstMs.toFixed(1)}, median ${sample.p50Ms.toFixed(1)}; admin answered ${answered.toFixed(1)}), KMS CPU ${cpu} ms`);
    }
    // the bundles as delivered: a staying camera's view of each epoch's bundle
    const audit = await admin.json('GET', '/v1/admin/groups/bench');
    const summary = (list) => ({
      allOnEpochMs: { median: median(list.map((x) => x.allOnEpochMs)), min: Math.min(...list.map((x) => x.allOnEpochMs)), max: Math.max(...list.map((x) => x.allOnEpochMs)) },
      medianCameraMs: median(list.map((x) => x.p50Ms)),
      kmsDeliveredMs: median(list.map((x) => x.adminAnsweredMs)),
      kmsCpuMs: { median: median(list.map((x) => x.kmsCpuMs)), note: '/proc utime+stime of the KMS process in 10 ms ticks: request, rekey, signing, SQLite, N responses' },
      ratioToRoundTrip: median(list.map((x) => x.allOnEpochMs)) / rtt,
      samples: list,
    });
    return { n, workers: WORKERS, setupMs, enrolMs, createMs, genesisSyncMs, roundTripMs: rtt, finalEpoch: audit.epoch, leave: summary(results.leave), join: summary(results.join) };
  } finally {
    admin.close();
    await Promise.allSettled(workers.map((w) => w.ask({ kind: 'close' })));
    await Promise.allSettled(workers.map((w) => w.worker.terminate()));
    kms.p.kill('SIGTERM');
    await new Promise((r) => kms.p.once('exit', r));
    rmSync(work, { recursive: true, force: true });
    rmSync(camStorage, { recursive: true, force: true });
  }
}

const out = { benchmark: 'group keys over loopback mutual TLS: time until every camera is on the new epoch', machine: machine(), goal: { n: 1000, allOnEpochMs: 300 }, sizes: [] };
for (const n of SIZES) {
  console.log(`== n = ${n} (${WORKERS} camera worker threads)`);
  const r = await runSize(n);
  out.sizes.push(r);
  console.log(`n=${n}: median ${r.leave.allOnEpochMs.median.toFixed(1)} ms (leave), ${r.join.allOnEpochMs.median.toFixed(1)} ms (join) until every camera is on the new epoch; KMS done writing to every camera ${r.leave.kmsDeliveredMs.toFixed(1)} / ${r.join.kmsDeliveredMs.toFixed(1)} ms; round trip ${r.roundTripMs.toFixed(2)} ms; KMS CPU ${r.leave.kmsCpuMs.median} / ${r.join.kmsCpuMs.median} ms`);
}
mkdirSync(new URL('results/', import.meta.url), { recursive: true });
writeFileSync(new URL('results/groupkey-net.json', import.meta.url), JSON.stringify(out, null, 2) + '\n');
console.log('wrote bench/results/groupkey-net.json');
