// Time to provision one device end to end (token, key generation in the device key store, CSR signed by it,
// factory CA check and issuance, files written atomically), with the device key in the software key store and
// in SoftHSM2. CPU time (process.cpuUsage) and wall time, median of RUNS; results in bench/results/provision.json.
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { machine, median } from './_machine.mjs';

const RUNS = Number(process.env.RUNS ?? 15);
const work = mkdtempSync(join(tmpdir(), 'kf-bench-prov-'));
mkdirSync(join(work, 'tokens'));
const conf = join(work, 'softhsm2.conf');
writeFileSync(conf, `directories.tokendir = ${join(work, 'tokens')}\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n`);
process.env.SOFTHSM2_CONF = conf;
process.env.KF_BENCH_PIN = 'benchmark passphrase';
const pinFile = join(work, 'token.pin');
writeFileSync(pinFile, '987654', { mode: 0o600 });
execFileSync('softhsm2-util', ['--init-token', '--free', '--label', 'bench', '--so-pin', '12345678', '--pin', '987654'], { stdio: 'pipe' });

await import('reflect-metadata');
const { initCa } = await import('../dist/pki/ca.js');
const { CaStore } = await import('../dist/pki/ca-store.js');
const { provisionDevice } = await import('../dist/pki/device.js');

await initCa({ dir: join(work, 'ca'), keystore: `file:${join(work, 'ca', 'keys')};pin-env=KF_BENCH_PIN` });
const ca = await CaStore.open(join(work, 'ca'));
const caStore = await ca.openKeyStore();

async function measure(name, keystoreFor) {
  const cpu = [];
  const wall = [];
  for (let i = 0; i < RUNS; i++) {
    const serial = `${name}-${i}`;
    const dir = join(work, serial);
    const c0 = process.cpuUsage();
    const t0 = process.hrtime.bigint();
    await provisionDevice({ ca, caKeyStore: caStore, dir, serial, keystore: keystoreFor(dir, i), keyLabel: `device-${i}` });
    const t1 = process.hrtime.bigint();
    const c1 = process.cpuUsage(c0);
    wall.push(Number(t1 - t0) / 1e6);
    cpu.push((c1.user + c1.system) / 1000);
  }
  return { runs: RUNS, cpuMsMedian: +median(cpu).toFixed(2), wallMsMedian: +median(wall).toFixed(2), cpuMsMin: +Math.min(...cpu).toFixed(2), cpuMsMax: +Math.max(...cpu).toFixed(2) };
}

// the software store pays one scrypt (N=2^15) to create each device's key store: part of real provisioning
const software = await measure('SOFT', (dir) => `file:${join(dir, 'keys')};pin-env=KF_BENCH_PIN`);
const pkcs11 = await measure('HSM', () => `pkcs11:module=/usr/lib/softhsm/libsofthsm2.so;token=bench;pin-file=${pinFile}`);
// (the SoftHSM runs share one token, so every device key gets its own label)
await caStore.close();
rmSync(work, { recursive: true, force: true });

const result = {
  benchmark: 'device provisioning, end to end (library, in process)',
  method: 'median of RUNS provisions; CPU = process.cpuUsage user+system; CA keys in the software key store',
  machine: machine(),
  deviceKeyInSoftwareKeyStore: software,
  deviceKeyInSoftHSM: pkcs11,
};
mkdirSync(new URL('./results/', import.meta.url), { recursive: true });
writeFileSync(new URL('./results/provision.json', import.meta.url), JSON.stringify(result, null, 2) + '\n');
console.log(JSON.stringify(result, null, 2));
