/**
 * Key store signing benchmark: P-256 ECDSA sign and verify per second, and CPU time per operation, for
 *   - raw node:crypto (the baseline, same process),
 *   - the software key store,
 *   - the PKCS#11 key store on SoftHSM2 (in-process, so its CPU time is counted too).
 * Three runs of each, interleaved; medians reported, with ratios against node:crypto.
 *
 * Plain ESM over the compiled code: `npm run build && node bench/keystore-bench.mjs`.
 * Environment: BENCH_MS (minimum milliseconds per measurement, default 1000), BENCH_RUNS (default 3).
 * Writes bench/results/keystore-sign.json.
 */
import { execFileSync } from 'node:child_process';
import { createHash, generateKeyPairSync, randomBytes, sign as cryptoSign, verify as cryptoVerify } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { machine, median } from './_machine.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const dist = join(root, 'dist', 'keystore');
if (!existsSync(join(dist, 'pkcs11.js'))) {
  console.error('keystore-bench: dist/keystore/pkcs11.js is missing: run `npm run build` first');
  process.exit(1);
}
const SOFTHSM_MODULE = '/usr/lib/softhsm/libsofthsm2.so';
const MIN_MS = Number(process.env['BENCH_MS'] ?? 1000);
const RUNS = Number(process.env['BENCH_RUNS'] ?? 3);
const BATCH = 25;

// ---- a throwaway SoftHSM token, configured before the module is loaded ----------------------------------------
const tmp = mkdtempSync(join(os.tmpdir(), 'kf-bench-'));
mkdirSync(join(tmp, 'tokens'));
const conf = join(tmp, 'softhsm2.conf');
writeFileSync(conf, `directories.tokendir = ${join(tmp, 'tokens')}\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n`);
process.env['SOFTHSM2_CONF'] = conf;
const TOKEN = 'bench';
const PIN = randomBytes(6).toString('hex');
execFileSync('softhsm2-util', ['--init-token', '--free', '--label', TOKEN, '--so-pin', randomBytes(6).toString('hex'), '--pin', PIN], { stdio: 'pipe' });

const { SoftwareKeyStore } = await import(join(dist, 'software.js'));
const { Pkcs11KeyStore } = await import(join(dist, 'pkcs11.js'));
const { loadModule, pkcs11js } = await import(join(dist, '_pkcs11-module.js'));

// ---- measurement ------------------------------------------------------------------------------------------------
/** Runs `op` in batches until MIN_MS have passed; wall and CPU time (user + system) for the whole process. */
async function measure(op) {
  for (let i = 0; i < BATCH * 2; i++) {
    const r = op(i);
    if (r instanceof Promise) await r;
  }
  const cpu0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  let n = 0;
  let wallMs;
  do {
    for (let k = 0; k < BATCH; k++) {
      const r = op(n++);
      if (r instanceof Promise) await r;
    }
    wallMs = Number(process.hrtime.bigint() - t0) / 1e6;
  } while (wallMs < MIN_MS);
  const cpu = process.cpuUsage(cpu0);
  const cpuMs = (cpu.user + cpu.system) / 1000;
  return { ops: n, wallMs: round(wallMs), cpuMs: round(cpuMs), opsPerSec: round(n / (wallMs / 1000)), cpuUsPerOp: round((cpuMs * 1000) / n) };
}

function round(x) {
  return Math.round(x * 100) / 100;
}

// ---- subjects ---------------------------------------------------------------------------------------------------
const messages = Array.from({ length: 256 }, () => randomBytes(256));
const msg = (i) => messages[i % messages.length];

const node = generateKeyPairSync('ec', { namedCurve: 'P-256' });

const swDir = join(tmp, 'software');
const software = await SoftwareKeyStore.open(swDir, 'bench-passphrase', { create: true, scrypt: { N: 1024, r: 8, p: 1 } });
const swPub = await software.generateKeyPair('bench', 'ec-p256');

const hsm = await Pkcs11KeyStore.open({ module: SOFTHSM_MODULE, token: TOKEN, pin: PIN });
const hsmPub = await hsm.generateKeyPair('bench', 'ec-p256');

// C_Verify in the token, on a session of our own (the store's login covers it)
const { p11 } = loadModule(SOFTHSM_MODULE);
const slot = p11.C_GetSlotList(true).find((s) => p11.C_GetTokenInfo(s).label.trim() === TOKEN);
const session = p11.C_OpenSession(slot, pkcs11js.CKF_SERIAL_SESSION);
p11.C_FindObjectsInit(session, [
  { type: pkcs11js.CKA_LABEL, value: 'bench' },
  { type: pkcs11js.CKA_CLASS, value: pkcs11js.CKO_PUBLIC_KEY },
]);
const [hsmPubHandle] = p11.C_FindObjects(session, 1);
p11.C_FindObjectsFinal(session);

const nodeSigs = messages.map((m) => cryptoSign('sha256', m, node.privateKey));
const swSigs = await Promise.all(messages.map((m) => software.sign('bench', m)));
const hsmSigs = await Promise.all(messages.map((m) => hsm.sign('bench', m)));
const hsmRawSigs = await Promise.all(messages.map((m) => hsm.sign('bench', m, { dsaEncoding: 'ieee-p1363' })));

function tokenVerify(i) {
  const digest = createHash('sha256').update(msg(i)).digest();
  p11.C_VerifyInit(session, { mechanism: pkcs11js.CKM_ECDSA }, hsmPubHandle);
  if (!p11.C_Verify(session, digest, hsmRawSigs[i % messages.length])) throw new Error('C_Verify failed');
}

function check(ok) {
  if (!ok) throw new Error('verification failed');
}

const subjects = {
  sign: {
    'node:crypto': (i) => cryptoSign('sha256', msg(i), node.privateKey),
    software: (i) => software.sign('bench', msg(i)),
    'pkcs11 (SoftHSM), DER': (i) => hsm.sign('bench', msg(i)),
    'pkcs11 (SoftHSM), P1363': (i) => hsm.sign('bench', msg(i), { dsaEncoding: 'ieee-p1363' }),
  },
  verify: {
    'node:crypto': (i) => check(cryptoVerify('sha256', msg(i), node.publicKey, nodeSigs[i % messages.length])),
    'software (node:crypto, store public key)': (i) => check(cryptoVerify('sha256', msg(i), swPub, swSigs[i % messages.length])),
    'pkcs11 (node:crypto, token public key)': (i) => check(cryptoVerify('sha256', msg(i), hsmPub, hsmSigs[i % messages.length])),
    'pkcs11 (C_Verify in SoftHSM)': tokenVerify,
  },
};

// sanity: every subject's signatures verify before anything is timed
for (const [name, op] of Object.entries(subjects.verify)) {
  for (let i = 0; i < messages.length; i++) op(i);
  process.stdout.write(`checked ${name}\n`);
}

const raw = { sign: {}, verify: {} };
for (let run = 0; run < RUNS; run++) {
  for (const kind of ['sign', 'verify']) {
    for (const [name, op] of Object.entries(subjects[kind])) {
      const m = await measure(op);
      (raw[kind][name] ??= []).push(m);
      process.stdout.write(`run ${run + 1}/${RUNS} ${kind.padEnd(6)} ${name.padEnd(42)} ${String(m.opsPerSec).padStart(10)} ops/s  ${String(m.cpuUsPerOp).padStart(8)} µs CPU/op\n`);
    }
  }
}

const results = { sign: {}, verify: {} };
for (const kind of ['sign', 'verify']) {
  const base = median(raw[kind]['node:crypto'].map((m) => m.opsPerSec));
  const baseCpu = median(raw[kind]['node:crypto'].map((m) => m.cpuUsPerOp));
  for (const [name, runs] of Object.entries(raw[kind])) {
    const opsPerSec = median(runs.map((m) => m.opsPerSec));
    const cpuUsPerOp = median(runs.map((m) => m.cpuUsPerOp));
    results[kind][name] = {
      opsPerSec: round(opsPerSec),
      cpuUsPerOp: round(cpuUsPerOp),
      wallUsPerOp: round(1e6 / opsPerSec),
      throughputVsNode: round(opsPerSec / base),
      cpuVsNode: round(cpuUsPerOp / baseCpu),
      runs,
    };
  }
}

const pkcs11jsVersion = JSON.parse(readFileSync(join(root, 'node_modules', 'pkcs11js', 'package.json'), 'utf8')).version;
const { date, ...machineDetails } = machine();
const report = {
  benchmark: 'keystore P-256 ECDSA sign/verify (SHA-256, 256-byte messages)',
  date,
  // loadavg: other work on the machine shows in wall time; CPU time per operation is the steadier figure
  machine: { ...machineDetails, arch: os.arch(), loadavg: os.loadavg().map(round), pkcs11js: pkcs11jsVersion },
  method: {
    runs: RUNS,
    minMsPerMeasurement: MIN_MS,
    statistic: 'median of runs',
    cpu: 'process.cpuUsage() user+system over the measurement; SoftHSM runs in-process, so it is included',
    notes: [
      'store sign() calls are awaited one at a time (the API is async); node:crypto is called synchronously',
      'pkcs11 sign: SHA-256 on the host, CKM_ECDSA in SoftHSM, DER conversion on the host unless P1363',
      'verify needs no secret: the stores hand out the public key and node:crypto verifies; C_Verify shown for comparison',
    ],
  },
  results,
};

mkdirSync(join(root, 'bench', 'results'), { recursive: true });
const out = join(root, 'bench', 'results', 'keystore-sign.json');
writeFileSync(out, JSON.stringify(report, null, 2) + '\n');

console.log('\nmedians:');
for (const kind of ['sign', 'verify']) {
  for (const [name, r] of Object.entries(results[kind])) {
    console.log(`${kind.padEnd(6)} ${name.padEnd(42)} ${String(r.opsPerSec).padStart(10)} ops/s  ${String(r.cpuUsPerOp).padStart(8)} µs CPU/op  ×${r.throughputVsNode} throughput, ×${r.cpuVsNode} CPU vs node:crypto`);
  }
}
console.log(`\nwrote ${out}`);

p11.C_CloseSession(session);
await hsm.close();
await software.close();
rmSync(tmp, { recursive: true, force: true });
