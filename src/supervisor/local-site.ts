/**
 * The whole system on one machine, on embedded defaults (issue 12 §3, `npm start`): a CA, a KMS, an NVR and N
 * camera agents recording a test pattern, the cameras enrolled in one group. `provisionLocalSite` makes whatever
 * is missing under DATA and leaves what exists alone, so a rerun resumes; `localSiteChildren` describes the
 * processes for the supervisor.
 *
 *   DATA/secrets/keystore.pin    the software key stores' passphrase (0600; $KEYFRAME_KEYSTORE_PIN wins)
 *   DATA/ca/                     manufacturer root, factory CA, operator CA, CRLs
 *   DATA/kms/kms.json            the KMS (identity, administrator identity, database; its browser listener for
 *                                logins and licences, which the NVR's viewer page may call)
 *   DATA/nvr/nvr.json            the NVR (identity, TSA, index, store; the viewers' listener serving the web app,
 *                                taking the KMS's access tokens; the exporter identity signing exports)
 *   DATA/cameras/CAM-000N/       each camera: device identity (key in its key store), camera.json, ring buffer
 *   DATA/logs/NAME.log           each process's log (pino JSON)
 */
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DEFAULT_PIN_ENV } from '../keystore/spec.js';
import { initCa, issueAllCrls } from '../pki/ca.js';
import { requireCaDir } from '../pki/ca-store.js';
import { provisionDevice } from '../pki/device.js';
import { IDENTITY_FILE, createOperatorIdentity } from '../pki/operator-identity.js';
import { initKms } from '../kms/init.js';
import { initNvr } from '../nvr/init.js';
import { loadKmsConfig } from '../kms/config.js';
import { loadNvrConfig } from '../nvr/config.js';
import { writeFileAtomic } from '../util/fs.js';
import type { ChildSpec } from './supervisor.js';

export interface LocalSiteOptions {
  readonly data: string;
  /** Number of cameras (default 2). */
  readonly cameras?: number;
  readonly kmsPort?: number;
  readonly nvrPort?: number;
  /** The KMS's browser listener (default 8445) and the NVR's viewers' listener (default 8446). */
  readonly kmsBrowserPort?: number;
  readonly viewerPort?: number;
  /** The cameras' test pattern (a source spec: src/camera/sources/spec.ts). */
  readonly pattern?: string;
  /** Ring buffer bytes per camera (default 1 GiB). */
  readonly ringBytes?: number;
  /** Called with one line per step taken. */
  readonly say?: (line: string) => void;
}

export interface LocalSite {
  readonly data: string;
  readonly pin: string;
  readonly ca: string;
  readonly kmsConfig: string;
  readonly kmsAdmin: string;
  readonly kmsUrl: string;
  readonly nvrConfig: string;
  readonly nvrUrl: string;
  /** The viewer web app (the NVR's viewers' listener) and the KMS's browser listener. */
  readonly viewerUrl: string;
  readonly kmsBrowserUrl: string;
  readonly group: string;
  readonly cameras: readonly { readonly serial: string; readonly dir: string; readonly config: string; readonly kmsState: string }[];
  readonly logs: string;
}

export const LOCAL_GROUP = 'site';
/** The NVR's name at the KMS: the audience of the access tokens viewers get for it. */
export const LOCAL_NVR_NAME = 'nvr';

/**
 * Adds to a service's JSON config the settings `add` names that it lacks (a site made by an older keyframe gets
 * the viewer's listeners on its next start); settings already there are left as they are. Written atomically, 0600.
 */
async function upgradeConfig(file: string, add: Record<string, unknown>, say: (line: string) => void): Promise<void> {
  const config = JSON.parse(await readFile(file, 'utf8')) as Record<string, unknown>;
  const missing = Object.keys(add).filter((k) => config[k] === undefined);
  if (missing.length === 0) return;
  for (const k of missing) config[k] = add[k];
  await writeFileAtomic(file, `${JSON.stringify(config, null, 2)}\n`, { mode: 0o600 });
  say(`${file}: added ${missing.join(', ')}`);
}
export const DEFAULT_PATTERN = 'pattern:width=640,height=360,fps=25,gop=25,bitrate=800000,clock=true';

/** The key stores' passphrase source: $KEYFRAME_KEYSTORE_PIN, or DATA/secrets/keystore.pin (made 0600 on first run). */
export async function localPinSpec(data: string): Promise<string> {
  if (process.env[DEFAULT_PIN_ENV] !== undefined && process.env[DEFAULT_PIN_ENV] !== '') return `pin-env=${DEFAULT_PIN_ENV}`;
  const pinFile = join(data, 'secrets', 'keystore.pin');
  if (!existsSync(pinFile)) {
    await mkdir(join(data, 'secrets'), { recursive: true, mode: 0o700 });
    await writeFileAtomic(pinFile, `${randomBytes(24).toString('base64url')}\n`, { mode: 0o600, exclusive: true });
  }
  return `pin-file=${pinFile}`;
}

export function cameraSerial(i: number): string {
  return `CAM-${String(i + 1).padStart(4, '0')}`;
}

/** Makes what is missing of the local site; what exists is kept (a rerun resumes with the same CA, KMS and NVR). */
export async function provisionLocalSite(o: LocalSiteOptions): Promise<LocalSite> {
  const data = o.data;
  const say = o.say ?? ((): void => undefined);
  const count = o.cameras ?? 2;
  const kmsPort = o.kmsPort ?? 8443;
  const nvrPort = o.nvrPort ?? 8444;
  await mkdir(data, { recursive: true, mode: 0o700 });
  const pin = await localPinSpec(data);
  const caDir = join(data, 'ca');
  if (!existsSync(caDir)) {
    await initCa({ dir: caDir, keystore: `file:${join(caDir, 'keys')};${pin}` });
    say(`created the CA (manufacturer root, factory CA, operator CA) in ${caDir}`);
  }
  const ca = await requireCaDir(caDir);
  const caStore = await ca.openKeyStore();
  const cameras: LocalSite['cameras'][number][] = [];
  try {
    for (let i = 0; i < count; i++) {
      const serial = cameraSerial(i);
      const dir = join(data, 'cameras', serial);
      const device = join(dir, 'device');
      if (!existsSync(device)) {
        await provisionDevice({ ca, caKeyStore: caStore, dir: device, serial, keystore: `file:${join(device, 'keys')};${pin}` });
        say(`provisioned camera ${serial} (key made in its key store, certified by the factory CA)`);
      }
      cameras.push({ serial, dir, config: join(dir, 'camera.json'), kmsState: join(dir, 'kms') });
    }
    // fresh CRLs at every start (they are valid 7 days; the KMS and the NVR reload them)
    await writeFileAtomic(join(caDir, 'crl.pem'), await issueAllCrls(ca, caStore));
    const kmsDir = join(data, 'kms');
    if (!existsSync(join(kmsDir, 'kms.json'))) {
      await initKms({ dir: kmsDir, ca, caKeyStore: caStore, name: 'localhost', ips: ['127.0.0.1'], port: kmsPort, admin: 'admin', keystore: `file:${join(kmsDir, 'kms', 'keys')};${pin}`, adminKeystore: `file:${join(kmsDir, 'admin', 'keys')};${pin}` });
      say(`created the KMS in ${kmsDir} (port ${kmsPort})`);
    }
    const nvrDir = join(data, 'nvr');
    if (!existsSync(join(nvrDir, 'nvr.json'))) {
      // an init cut short (no nvr.json yet) is redone over what it left
      await initNvr({ dir: nvrDir, ca, caKeyStore: caStore, name: 'localhost', ips: ['127.0.0.1'], port: nvrPort, keystore: `file:${join(nvrDir, 'nvr', 'keys')};${pin}`, tsaKeystore: `file:${join(nvrDir, 'tsa', 'keys')};${pin}`, force: existsSync(nvrDir) });
      say(`created the NVR in ${nvrDir} (port ${nvrPort})`);
    }
    const exporter = join(nvrDir, 'exporter');
    if (!existsSync(join(exporter, IDENTITY_FILE))) {
      await createOperatorIdentity({ kind: 'exporter', out: exporter, ca, caKeyStore: caStore, name: 'keyframe NVR exporter', keystore: `file:${join(exporter, 'keys')};${pin}` });
      say(`created the NVR's exporter identity in ${exporter} (it signs the evidence bundles viewers export)`);
    }
  } finally {
    await caStore.close();
  }
  // the viewer: the KMS's browser listener and the NVR's viewers' listener (added to a site made without them)
  const kmsBrowserPort = o.kmsBrowserPort ?? 8445;
  const viewerPort = o.viewerPort ?? 8446;
  await upgradeConfig(join(data, 'kms', 'kms.json'), { browser: { host: '127.0.0.1', port: kmsBrowserPort }, viewerOrigins: [`https://127.0.0.1:${viewerPort}`, `https://localhost:${viewerPort}`], nvrs: [LOCAL_NVR_NAME] }, say);
  const kmsBrowser = loadKmsConfig(join(data, 'kms', 'kms.json')).browser;
  const kmsBrowserUrl = `https://127.0.0.1:${kmsBrowser?.port ?? kmsBrowserPort}`;
  await upgradeConfig(join(data, 'nvr', 'nvr.json'), { viewer: { host: '127.0.0.1', port: viewerPort }, kms: { chain: join('..', 'kms', 'kms', 'chain.pem'), name: LOCAL_NVR_NAME, licence: `${kmsBrowserUrl}/v1/licence` }, exporter: 'exporter' }, say);
  // a rerun keeps the ports the site was made with (the cameras' configurations name them)
  const kmsListen = loadKmsConfig(join(data, 'kms', 'kms.json')).listen;
  const nvrListen = loadNvrConfig(join(data, 'nvr', 'nvr.json')).listen;
  if (kmsListen.port !== kmsPort || nvrListen.port !== nvrPort) say(`the site was made with the KMS on port ${kmsListen.port} and the NVR on ${nvrListen.port}: those are used`);
  const kmsUrl = `https://${kmsListen.host}:${kmsListen.port}`;
  const nvrUrl = `https://${nvrListen.host}:${nvrListen.port}`;
  const viewer = loadNvrConfig(join(data, 'nvr', 'nvr.json')).viewer;
  const viewerUrl = `https://${viewer?.host ?? '127.0.0.1'}:${viewer?.port ?? viewerPort}/`;
  for (const cam of cameras) {
    if (existsSync(cam.config)) continue;
    const config = {
      device: 'device',
      source: o.pattern ?? DEFAULT_PATTERN,
      kms: { url: kmsUrl, root: join('..', '..', 'ca', 'operator.pem'), group: LOCAL_GROUP, state: 'kms', alarmAfter: '60s' },
      nvr: { url: nvrUrl, root: join('..', '..', 'ca', 'operator.pem') },
      ring: { dir: 'ring', cap: o.ringBytes ?? 1 << 30 },
      scheme: 'cbcs',
      backfillRate: 4_000_000,
      logLevel: 'info',
    };
    await writeFileAtomic(cam.config, `${JSON.stringify(config, null, 2)}\n`, { mode: 0o600, exclusive: true });
    say(`wrote ${cam.config}`);
  }
  return { data, pin, ca: caDir, kmsConfig: join(data, 'kms', 'kms.json'), kmsAdmin: join(data, 'kms', 'admin'), kmsUrl, nvrConfig: join(data, 'nvr', 'nvr.json'), nvrUrl, viewerUrl, kmsBrowserUrl, group: LOCAL_GROUP, cameras, logs: join(data, 'logs') };
}

const BIN = fileURLToPath(new URL('../../bin/keyframe.js', import.meta.url));

/** The site's processes, in the order they depend on each other; `enrol` runs before the first camera starts. */
export function localSiteChildren(site: LocalSite, enrol: () => Promise<void>): ChildSpec[] {
  const keyframe = (...args: string[]): Pick<ChildSpec, 'command' | 'args'> => ({ command: process.execPath, args: [BIN, ...args] });
  const listening = /"event":"listening"/;
  return [
    { name: 'kms', ...keyframe('kms', 'serve', '--config', site.kmsConfig), ready: listening },
    { name: 'nvr', ...keyframe('nvr', 'serve', '--config', site.nvrConfig), ready: listening },
    ...site.cameras.map((cam, i) => ({
      name: cam.serial,
      ...keyframe('camera', 'run', '--config', cam.config),
      ready: /"event":"started"/,
      after: ['kms', 'nvr'],
      ...(i === 0 ? { prepare: enrol } : {}),
    })),
  ];
}
