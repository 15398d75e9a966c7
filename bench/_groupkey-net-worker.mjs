// A worker of the network benchmark: a share of the simulated cameras, each with its own identity (a key in the
// shared fleet key store, its certificate, its TLS context, its state directory) and its own KMS connection.
import { performance } from 'node:perf_hooks';
import { createSecureContext } from 'node:tls';
import { join } from 'node:path';
import { parentPort, workerData } from 'node:worker_threads';

const dist = new URL('../dist/', import.meta.url);
const imp = (p) => import(new URL(p, dist).href);
const { SoftwareKeyStore } = await imp('keystore/software.js');
const { GroupKeyCamera } = await imp('camera/group-key.js');
const { parseCertificates } = await imp('pki/pem.js');

const { url, fleetDir, pin, operatorPem, cams, stateRoot } = workerData;
const fleet = await SoftwareKeyStore.open(fleetDir, pin);
const operator = parseCertificates(operatorPem, 'operator')[0];
const byId = new Map();
for (const c of cams) {
  const chain = parseCertificates(c.chainPem, c.serial);
  const { pem, passphrase } = await fleet.exportForTls(c.label);
  const secureContext = createSecureContext({ minVersion: 'TLSv1.3', maxVersion: 'TLSv1.3', cert: c.chainPem, key: pem, passphrase, ca: operatorPem });
  byId.set(c.serial, new GroupKeyCamera({ url, stateDir: join(stateRoot, c.serial), store: fleet, deviceKeyLabel: c.label, chain, tls: { secureContext, minVersion: 'TLSv1.3', rejectUnauthorized: true }, kmsRoots: [operator], pairKeyLabel: `gk-${c.serial}` }));
}
const now = () => performance.timeOrigin + performance.now();

async function inBatches(list, size, fn) {
  for (let i = 0; i < list.length; i += size) await Promise.all(list.slice(i, i + size).map(fn));
}

parentPort.on('message', async (m) => {
  try {
    if (m.kind === 'enrol') {
      await inBatches([...byId.values()], 50, (c) => c.enrol());
      parentPort.postMessage({ id: m.id, ok: true });
    } else if (m.kind === 'sync') {
      const epochs = {};
      await inBatches(m.serials, 100, async (s) => (epochs[s] = (await byId.get(s).sync(m.group)).epoch));
      parentPort.postMessage({ id: m.id, ok: true, epochs });
    } else if (m.kind === 'poll') {
      // every camera holds a long poll; report when each has applied (and persisted) the next epoch
      const results = await Promise.all(
        m.serials.map(async (s) => {
          const r = await byId.get(s).sync(m.group, { waitMs: 60_000 });
          return { serial: s, epoch: r.epoch, status: r.status, at: now() };
        }),
      );
      parentPort.postMessage({ id: m.id, ok: true, results });
    } else if (m.kind === 'close') {
      for (const c of byId.values()) c.close();
      await fleet.close();
      parentPort.postMessage({ id: m.id, ok: true });
    }
  } catch (e) {
    parentPort.postMessage({ id: m.id, ok: false, error: String(e?.stack ?? e) });
  }
});
parentPort.postMessage({ ready: true });
