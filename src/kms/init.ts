/**
 * A new KMS in one directory (`keyframe kms init`, and the demo): its TLS/signing identity and an administrator
 * identity from the operator CA, the CA's CRL wired in (issued when the CA has published none yet), kms.json, and
 * the database with its sealing key — so that `kms serve` only ever opens existing state.
 *
 *   DIR/            mode 0700
 *     kms/          the KMS identity (site directory; its key store inside unless another is named)
 *     admin/        the administrator identity (TLS client)
 *     kms.json      mode 0600
 *     kms.sqlite    mode 0600 (with -wal beside it while running)
 */
import { trustSetting } from '../server/service-config.js';
import { existsSync } from 'node:fs';
import { chmod, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { ErrorCodes, KeyframeError } from '../errors.js';
import { openKeyStore } from '../keystore/open.js';
import type { KeyStore } from '../keystore/types.js';
import { issueAllCrls } from '../pki/ca.js';
import type { CaStore } from '../pki/ca-store.js';
import { createSite } from '../pki/site.js';
import type { X509Certificate } from '../pki/x509.js';
import { loadTlsIdentity } from '../pki/tls.js';
import { writeFileAtomic } from '../util/fs.js';
import { KMS_DEFAULTS } from './config.js';
import { openKmsState } from './state.js';

export interface InitKmsOptions {
  readonly dir: string;
  readonly ca: CaStore;
  readonly caKeyStore: KeyStore;
  readonly name: string;
  readonly ips: readonly string[];
  readonly port: number;
  readonly admin: string;
  /** Key store for the KMS key (default file:DIR/kms/keys). */
  readonly keystore?: string;
  /** Key store for the administrator's key (default file:DIR/admin/keys). */
  readonly adminKeystore?: string;
  /** The CRL file the KMS checks every peer against (default CADIR/crl.pem, issued now when missing). */
  readonly crlFile?: string;
  /** Days a CRL issued here is valid. */
  readonly crlDays?: number;
}

export interface InitKmsResult {
  readonly kms: X509Certificate;
  readonly admin: X509Certificate;
  readonly configPath: string;
  readonly crlFile: string;
  /** Whether the CRL was issued now. */
  readonly crlIssued: boolean;
}

export async function initKms(o: InitKmsOptions): Promise<InitKmsResult> {
  const configPath = join(o.dir, 'kms.json');
  for (const p of [join(o.dir, 'kms'), join(o.dir, 'admin'), configPath, join(o.dir, 'kms.sqlite')]) {
    if (existsSync(p)) throw new KeyframeError(ErrorCodes.EXISTS, `${p} exists already: kms init makes a new KMS (remove it, or serve the existing one)`);
  }
  await mkdir(o.dir, { recursive: true, mode: 0o700 });
  await chmod(o.dir, 0o700);
  const k = await createSite({ out: join(o.dir, 'kms'), ca: o.ca, caKeyStore: o.caKeyStore, name: o.name, altNames: [o.name, ...o.ips], ...(o.keystore !== undefined ? { keystore: o.keystore } : {}) });
  const a = await createSite({ out: join(o.dir, 'admin'), ca: o.ca, caKeyStore: o.caKeyStore, name: o.admin, altNames: [o.admin], clientAuth: true, ...(o.adminKeystore !== undefined ? { keystore: o.adminKeystore } : {}) });
  const crlFile = o.crlFile ?? join(o.ca.dir, 'crl.pem');
  const crlIssued = !existsSync(crlFile);
  if (crlIssued) await writeFileAtomic(crlFile, await issueAllCrls(o.ca, o.caKeyStore, { days: o.crlDays ?? 7 }));
  const config = {
    listen: { host: o.ips[0] ?? KMS_DEFAULTS.host, port: o.port },
    identity: 'kms',
    trust: trustSetting(o.dir, o.ca.dir, crlFile),
    database: 'kms.sqlite',
    admins: [o.admin],
    refreshPeriod: '1h',
    batchWindow: `${KMS_DEFAULTS.batchWindowMs}ms`,
  };
  // the database and its sealing key, in the KMS identity's key store
  const identity = loadTlsIdentity(join(o.dir, 'kms'));
  const store = await openKeyStore(identity.keystore);
  try {
    const state = await openKmsState({ database: join(o.dir, 'kms.sqlite'), store, create: true });
    state.db.close();
  } finally {
    await store.close();
  }
  await writeFileAtomic(configPath, JSON.stringify(config, null, 2) + '\n', { mode: 0o600, exclusive: true });
  return { kms: k.certificate, admin: a.certificate, configPath, crlFile, crlIssued };
}
