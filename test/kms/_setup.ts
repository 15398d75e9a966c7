/**
 * A site for the KMS suites: a CA (manufacturer root, factory CA, operator CA), the KMS's TLS identity (operator
 * CA, localhost / 127.0.0.1), an administrator identity (operator CA, client auth, CN "ops"), cameras
 * provisioned with software key stores, and a KMS config file. All real: files, key stores, certificates.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { initCa } from '../../src/pki/ca.js';
import { CaStore } from '../../src/pki/ca-store.js';
import { provisionDevice } from '../../src/pki/device.js';
import { createSite } from '../../src/pki/site.js';
import { openCameraAgent } from '../../src/camera/kms-agent.js';
import { openAdminClient } from '../../src/kms/open.js';
import type { GroupKeyCamera } from '../../src/camera/group-key.js';
import type { KmsClient } from '../../src/kms/client.js';
import { stablePort } from '../helpers/ports.js';

export const PIN_ENV = 'KF_TEST_KMS_PIN';

export interface KmsSite {
  readonly work: string;
  readonly caDir: string;
  readonly ca: CaStore;
  readonly configPath: string;
  readonly adminDir: string;
  readonly cameraDirs: Map<string, string>;
  spec(dir: string): string;
  /** A port for this site's KMS, kept across its restarts (test/helpers/ports.ts). */
  readonly port: number;
  /** Writes the config with `port` (0: any) and extra settings; returns its path. */
  writeConfig(port: number, extra?: Record<string, unknown>): string;
  provision(serial: string, keystore?: string): Promise<string>;
  /** Another KMS identity (operator CA, localhost / 127.0.0.1) under WORK/name, its key in `keystore`. */
  kmsIdentity(name: string, keystore: string, keyLabel?: string): Promise<string>;
  admin(url: string): Promise<KmsClient>;
  camera(url: string, serial: string): Promise<{ camera: GroupKeyCamera; close(): Promise<void> }>;
}

export async function makeKmsSite(serials: readonly string[], work = mkdtempSync(join(tmpdir(), 'kf-kms-'))): Promise<KmsSite> {
  process.env[PIN_ENV] ??= 'kms test passphrase';
  const spec = (dir: string): string => `file:${dir};pin-env=${PIN_ENV}`;
  const caDir = join(work, 'ca');
  await initCa({ dir: caDir, keystore: spec(join(caDir, 'keys')) });
  const ca = await CaStore.open(caDir);
  const caStore = await ca.openKeyStore();
  await createSite({ out: join(work, 'kms'), ca, caKeyStore: caStore, name: 'localhost', altNames: ['localhost', '127.0.0.1'], keystore: spec(join(work, 'kms', 'keys')) });
  const adminDir = join(work, 'admin');
  await createSite({ out: adminDir, ca, caKeyStore: caStore, name: 'ops', altNames: ['localhost'], clientAuth: true, keystore: spec(join(adminDir, 'keys')) });
  const cameraDirs = new Map<string, string>();
  const provision = async (serial: string, keystore?: string): Promise<string> => {
    const dir = join(work, 'cams', serial);
    await provisionDevice({ ca, caKeyStore: caStore, dir, serial, keystore: keystore ?? spec(join(dir, 'keys')) });
    cameraDirs.set(serial, dir);
    return dir;
  };
  for (const s of serials) await provision(s);
  const configPath = join(work, 'kms.json');
  const writeConfig = (port: number, extra: Record<string, unknown> = {}): string => {
    writeFileSync(
      configPath,
      JSON.stringify({ listen: { host: '127.0.0.1', port }, identity: 'kms', trust: { root: 'ca/root.pem', factory: 'ca/factory.pem', operator: 'ca/operator.pem' }, database: 'kms.sqlite', admins: ['ops'], ...extra }, null, 2),
    );
    return configPath;
  };
  const port = await stablePort();
  writeConfig(port);
  return {
    port,
    work,
    caDir,
    ca,
    configPath,
    adminDir,
    cameraDirs,
    spec,
    writeConfig,
    provision,
    kmsIdentity: async (name, keystore, keyLabel) => {
      await createSite({ out: join(work, name), ca, caKeyStore: caStore, name: 'localhost', altNames: ['localhost', '127.0.0.1'], keystore, ...(keyLabel !== undefined ? { keyLabel } : {}) });
      return join(work, name);
    },
    admin: (url) => openAdminClient(url, adminDir),
    camera: (url, serial) => openCameraAgent({ url, deviceDir: cameraDirs.get(serial) as string, stateDir: join(work, 'state', serial), kmsRoots: [ca.certs.operator] }),
  };
}
