/**
 * A new NVR in one directory (`keyframe nvr init`), as `kms init` makes a KMS: its TLS server identity from the
 * operator CA, the CA's CRLs wired in (issued when the CA has published none yet), nvr.json, the index and the
 * store — so that `nvr serve` only ever opens existing state.
 *
 *   DIR/            mode 0700
 *     nvr/          the NVR's TLS identity (site directory; its key store inside unless another is named)
 *     tsa/          the NVR's time-stamping authority (operator CA, EKU timeStamping; tsa.ts), "tsa" in nvr.json
 *     nvr.json      mode 0600
 *     nvr.sqlite    mode 0600 (the index; -wal beside it while running)
 *     store/        mode 0700 (segment files)
 *
 * With `force`, an existing identity and config are replaced; an existing index and store are kept as they are
 * (they hold recordings).
 */
import { trustSetting } from '../server/service-config.js';
import { existsSync } from 'node:fs';
import { chmod, mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { ErrorCodes, KeyframeError } from '../errors.js';
import type { KeyStore } from '../keystore/types.js';
import { issueAllCrls } from '../pki/ca.js';
import type { CaStore } from '../pki/ca-store.js';
import { IDENTITY_FILE } from '../pki/operator-identity.js';
import { createSite } from '../pki/site.js';
import type { X509Certificate } from '../pki/x509.js';
import { writeFileAtomic } from '../util/fs.js';
import { NVR_DEFAULTS } from './config.js';
import { NvrIndex } from './db.js';
import { DEFAULT_STAMP_INTERVAL_MS } from './stamping.js';
import { SegmentStore } from './store.js';
import { NVR_TSA_DIR, createNvrTsa } from './tsa.js';

export interface InitNvrOptions {
  readonly dir: string;
  readonly ca: CaStore;
  readonly caKeyStore: KeyStore;
  readonly name: string;
  readonly ips: readonly string[];
  readonly port: number;
  /** The manufacturer root cameras chain to (default CADIR/root.pem). */
  readonly factoryRoot?: string;
  readonly keystore?: string;
  /** Key store of the NVR's TSA key (default file:DIR/tsa/keys). */
  readonly tsaKeystore?: string;
  readonly crlFile?: string;
  readonly crlDays?: number;
  readonly freeSpaceFloor?: number;
  readonly force?: boolean;
}

export interface InitNvrResult {
  readonly nvr: X509Certificate;
  /** The NVR's TSA certificate. */
  readonly tsa: X509Certificate;
  readonly tsaDir: string;
  readonly configPath: string;
  readonly database: string;
  readonly store: string;
  readonly crlFile: string;
  readonly crlIssued: boolean;
  /** Whether an existing index was kept (--force over an NVR that holds recordings). */
  readonly keptIndex: boolean;
}

export async function initNvr(o: InitNvrOptions): Promise<InitNvrResult> {
  const configPath = join(o.dir, 'nvr.json');
  const idDir = join(o.dir, 'nvr');
  const tsaDir = join(o.dir, NVR_TSA_DIR);
  const database = join(o.dir, 'nvr.sqlite');
  const storeDir = join(o.dir, 'store');
  if (o.force !== true) {
    for (const p of [idDir, tsaDir, configPath]) {
      if (existsSync(p)) throw new KeyframeError(ErrorCodes.EXISTS, `${p} exists already: nvr init makes a new NVR (serve the existing one, or --force to replace its identity and config)`);
    }
  }
  await mkdir(o.dir, { recursive: true, mode: 0o700 });
  await chmod(o.dir, 0o700);
  if (o.force === true && existsSync(idDir) && !existsSync(join(idDir, 'site.json'))) {
    throw new KeyframeError(ErrorCodes.EXISTS, `${idDir} exists and is not a site identity: not replaced`);
  }
  if (o.force === true && existsSync(tsaDir) && !existsSync(join(tsaDir, IDENTITY_FILE))) {
    throw new KeyframeError(ErrorCodes.EXISTS, `${tsaDir} exists and is not a TSA identity: not replaced`);
  }
  const site = await createSite({ out: idDir, ca: o.ca, caKeyStore: o.caKeyStore, name: o.name, altNames: [o.name, ...o.ips], replace: o.force === true && existsSync(idDir), ...(o.keystore !== undefined ? { keystore: o.keystore } : {}) });
  if (o.force === true) await rm(tsaDir, { recursive: true, force: true });
  const tsa = await createNvrTsa({ out: tsaDir, ca: o.ca, caKeyStore: o.caKeyStore, name: `${o.name} TSA`, ...(o.tsaKeystore !== undefined ? { keystore: o.tsaKeystore } : {}) });
  const crlFile = o.crlFile ?? join(o.ca.dir, 'crl.pem');
  const crlIssued = !existsSync(crlFile);
  if (crlIssued) await writeFileAtomic(crlFile, await issueAllCrls(o.ca, o.caKeyStore, { days: o.crlDays ?? 7 }));
  const config = {
    listen: { host: o.ips[0] ?? NVR_DEFAULTS.host, port: o.port },
    identity: 'nvr',
    trust: trustSetting(o.dir, o.ca.dir, crlFile, o.factoryRoot),
    store: 'store',
    database: 'nvr.sqlite',
    freeSpaceFloor: o.freeSpaceFloor ?? NVR_DEFAULTS.freeSpaceFloor,
    crlCheck: `${NVR_DEFAULTS.crlCheckMs / 1000}s`,
    tsa: NVR_TSA_DIR,
    ...(o.tsaKeystore !== undefined ? { tsaKeystore: o.tsaKeystore } : {}),
    stampInterval: `${DEFAULT_STAMP_INTERVAL_MS / 1000}s`,
  };
  const keptIndex = existsSync(database);
  NvrIndex.open(database, { create: true }).close();
  await new SegmentStore(storeDir).prepare();
  if (o.force === true) await rm(configPath, { force: true });
  await writeFileAtomic(configPath, JSON.stringify(config, null, 2) + '\n', { mode: 0o600, exclusive: true });
  return { nvr: site.certificate, tsa, tsaDir, configPath, database, store: storeDir, crlFile, crlIssued, keptIndex };
}
