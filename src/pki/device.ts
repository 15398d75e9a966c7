/**
 * A device (camera) directory and the ways a device gets its certificate (white paper §2.4–2.6, §3):
 *
 *   provision     factory: key generated in the device's secure element, CSR signed by it, factory CA issues
 *                 on a one-time token bound to the serial
 *   csr           for an external CA; `install-cert` then installs what it returns (only if it matches the key)
 *   self-sign     no third party: "identity not established" unless the verifier pins the fingerprint
 *
 * Layout of DEV:
 *   device.json   { version, serial, keystore spec (no secret), keyLabel, algorithm, createdAt }
 *   device.pem    the device certificate
 *   chain.pem     device certificate followed by the issuing CA(s), not the root
 *   keys/         the default software key store (file:DEV/keys)
 */
import { X509CertificateGenerator } from './x509.js';
import type { Name, Pkcs10CertificateRequest, X509Certificate } from './x509.js';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { ErrorCodes, InputError, NotFoundError, PkiError, errnoCode } from '../errors.js';
import { openKeyStore } from '../keystore/open.js';
import { formatKeyStoreSpec, parseKeyStoreSpec } from '../keystore/spec.js';
import type { KeyStoreSpec } from '../keystore/spec.js';
import type { KeyPairAlgorithm, KeyStore } from '../keystore/types.js';
import { withDirLock, writeFileAtomic } from '../util/fs.js';
import { buildKeyedDir } from './_keyed-dir.js';
import { displayName, sha256Hex } from './_certs.js';
import { alreadyCertified, issueDeviceCertificate, issueEnrolmentToken, validDeviceCertificates } from './ca.js';
import type { CaStore } from './ca-store.js';
import { createCsr } from './csr.js';
import { certsToPem, parseCertificates, toPem } from './pem.js';
import { VALIDITY_DAYS, assertDeviceSerial, deviceExtensions, names, newCertificateSerial, validity } from './profile.js';
import { keyStoreCrypto, keyStoreKeyPair } from './signer.js';

export const DEFAULT_DEVICE_KEY_LABEL = 'device';
export const DEFAULT_DEVICE_ORG = 'keyframe';

export interface DeviceConfig {
  readonly version: 1;
  readonly serial: string;
  readonly org: string;
  readonly keystore: string;
  readonly keyLabel: string;
  readonly algorithm: KeyPairAlgorithm;
  readonly createdAt: string;
}

export interface DeviceSetupOptions {
  readonly dir: string;
  readonly serial: string;
  /** Key store spec; default `file:DEV/keys` (passphrase from $KEYFRAME_KEYSTORE_PIN). */
  readonly keystore?: string;
  readonly algorithm?: KeyPairAlgorithm;
  readonly keyLabel?: string;
  /** Organisation in the subject of a CSR or self-signed certificate (a factory CA puts its own). */
  readonly org?: string;
  readonly now?: Date;
  /** Replace an existing device directory at `dir` (checked by the caller). */
  readonly replace?: boolean;
}

/** An opened device: its configuration, key store, and certificate chain if it has one. */
export interface Device {
  readonly dir: string;
  readonly config: DeviceConfig;
  readonly store: KeyStore;
  readonly spec: KeyStoreSpec;
  readonly certificate: X509Certificate | undefined;
  readonly chain: readonly X509Certificate[];
  close(): Promise<void>;
}

function deviceSubject(config: DeviceConfig): Name {
  return names.device(config.org, config.serial);
}

/**
 * Builds a device directory atomically: the key is generated in the key store first, then `finish` runs
 * (obtaining a certificate), and the directory is renamed into place only when everything succeeded. A key made
 * in an external store (PKCS#11) is destroyed again on failure.
 */
async function buildDevice<T>(options: DeviceSetupOptions, finish: (device: Device, tmp: string) => Promise<T>): Promise<T> {
  assertDeviceSerial(options.serial);
  const algorithm = options.algorithm ?? 'ec-p256';
  const keyLabel = options.keyLabel ?? DEFAULT_DEVICE_KEY_LABEL;
  const now = options.now ?? new Date();
  return buildKeyedDir(options.dir, options.keystore, keyLabel, algorithm, async ({ tmp, store, finalSpec, workSpec }) => {
    const config: DeviceConfig = {
      version: 1,
      serial: options.serial,
      org: options.org ?? DEFAULT_DEVICE_ORG,
      keystore: formatKeyStoreSpec(finalSpec, resolve(options.dir)),
      keyLabel,
      algorithm,
      createdAt: now.toISOString(),
    };
    await writeFileAtomic(join(tmp, 'device.json'), JSON.stringify(config, null, 2) + '\n');
    const device: Device = { dir: tmp, config, store, spec: workSpec, certificate: undefined, chain: [], close: async () => undefined };
    return finish(device, tmp);
  }, { replace: options.replace === true });
}

async function writeChain(dir: string, chain: readonly X509Certificate[]): Promise<void> {
  const [leaf] = chain;
  if (leaf === undefined) throw new PkiError(ErrorCodes.INTERNAL, 'empty chain');
  await writeFileAtomic(join(dir, 'device.pem'), certsToPem([leaf]));
  await writeFileAtomic(join(dir, 'chain.pem'), certsToPem(chain));
}

/** Creates DEV with a key pair and no certificate yet (for `device csr` / `device self-sign`). */
export async function initDevice(options: DeviceSetupOptions): Promise<DeviceConfig> {
  return buildDevice(options, async (device) => device.config);
}

export interface ProvisionOptions extends DeviceSetupOptions {
  readonly ca: CaStore;
  /** Opened CA key store (holds the factory CA key). */
  readonly caKeyStore: KeyStore;
  readonly days?: number;
  /** Issue even if the serial holds a valid certificate, revoking the old one (see IssueDeviceOptions.reissue). */
  readonly reissue?: boolean;
}

export interface ProvisionResult {
  readonly config: DeviceConfig;
  readonly certificate: X509Certificate;
  readonly chain: readonly X509Certificate[];
}

/**
 * Factory provisioning: the CA issues a one-time token for the serial; the device generates its key inside its
 * key store and sends a CSR signed by that key carrying the token; the CA checks proof of possession, the token
 * and the serial, and issues. Output DEV/device.pem and DEV/chain.pem (device + factory).
 */
export async function provisionDevice(options: ProvisionOptions): Promise<ProvisionResult> {
  assertDeviceSerial(options.serial);
  // refused early, before a key is made; the CA checks again under its lock when it issues
  const valid = validDeviceCertificates(await options.ca.readDb(), options.serial, options.now ?? new Date());
  if (valid.length > 0 && options.reissue !== true) throw alreadyCertified(options.serial, valid);
  const token = await issueEnrolmentToken(options.ca, options.serial, options.now ? { now: options.now } : {});
  return buildDevice({ ...options, org: options.ca.config.org }, async (device, tmp) => {
    const csr = await createCsr(device.store, device.config.keyLabel, { subject: deviceSubject(device.config), challengePassword: token });
    const certificate = await issueDeviceCertificate(options.ca, options.caKeyStore, csr, {
      ...(options.days !== undefined ? { days: options.days } : {}),
      ...(options.now !== undefined ? { now: options.now } : {}),
      reissue: options.reissue === true,
    });
    const chain = [certificate, options.ca.certs.factory];
    await writeChain(tmp, chain);
    return { config: device.config, certificate, chain };
  });
}

async function readDeviceConfig(dir: string): Promise<DeviceConfig> {
  let text: string;
  try {
    text = await readFile(join(dir, 'device.json'), 'utf8');
  } catch (e) {
    if (errnoCode(e) === 'ENOENT') {
      throw new NotFoundError(existsSync(dir) ? `${dir} is not a device directory (no device.json)` : `device directory not found: ${dir}`);
    }
    throw e;
  }
  let config: DeviceConfig;
  try {
    config = JSON.parse(text) as DeviceConfig;
  } catch {
    throw new InputError(`${join(dir, 'device.json')} is not valid JSON`);
  }
  if (config.version !== 1 || typeof config.serial !== 'string' || typeof config.keystore !== 'string' || typeof config.keyLabel !== 'string') {
    throw new InputError(`${join(dir, 'device.json')} is not a keyframe device configuration`);
  }
  return config;
}

/** Opens DEV: configuration, key store (`keystore` overrides the recorded spec), and certificate chain if any. */
export async function openDevice(dir: string, keystore?: string): Promise<Device> {
  const config = await readDeviceConfig(dir);
  // an override comes from the command line (relative to the current directory); the recorded spec is relative
  // to the device directory
  const spec = keystore !== undefined ? parseKeyStoreSpec(keystore) : parseKeyStoreSpec(config.keystore, resolve(dir));
  let chain: X509Certificate[] = [];
  const chainPath = join(dir, 'chain.pem');
  if (existsSync(chainPath)) chain = parseCertificates(await readFile(chainPath), chainPath);
  const store = await openKeyStore(spec);
  return { dir, config, store, spec, certificate: chain[0], chain, close: () => store.close() };
}

/** A CSR signed by the device key, for an external CA (optionally carrying an enrolment token). */
export async function deviceCsr(device: Device, options: { challengePassword?: string } = {}): Promise<Pkcs10CertificateRequest> {
  return createCsr(device.store, device.config.keyLabel, {
    subject: deviceSubject(device.config),
    ...(options.challengePassword !== undefined ? { challengePassword: options.challengePassword } : {}),
  });
}

/**
 * Installs a certificate (and the CA certificates after it in `certs`) as the device's chain — only if the
 * certificate's public key is the device key's.
 */
export async function installCertificate(device: Device, certs: readonly X509Certificate[], options: { force?: boolean } = {}): Promise<X509Certificate> {
  const [leaf] = certs;
  if (leaf === undefined) throw new InputError('no certificate to install');
  const devicePub = (await device.store.getPublicKey(device.config.keyLabel)).export({ format: 'der', type: 'spki' });
  if (!Buffer.from(leaf.publicKey.rawData).equals(devicePub)) {
    throw new PkiError(ErrorCodes.CERT_MISMATCH, `certificate ${leaf.subject} does not match the device key: refused`);
  }
  const current = device.certificate;
  if (current !== undefined && options.force !== true && !Buffer.from(current.rawData).equals(Buffer.from(leaf.rawData))) {
    throw new PkiError(ErrorCodes.EXISTS, `refusing to overwrite the certificate of ${device.dir} (${displayName(current.subjectName)}, serial ${current.serialNumber}): it has one already (--force replaces it)`);
  }
  await withDirLock(device.dir, () => writeChain(device.dir, certs));
  return leaf;
}

/** A self-signed device certificate: encryption works, identity is not established (white paper §2.5). */
export async function selfSignDevice(device: Device, options: { days?: number; now?: Date } = {}): Promise<X509Certificate> {
  const keys = await keyStoreKeyPair(device.store, device.config.keyLabel);
  const cert = await X509CertificateGenerator.createSelfSigned(
    {
      serialNumber: newCertificateSerial(),
      name: deviceSubject(device.config),
      ...validity(options.days ?? VALIDITY_DAYS.device, options.now),
      keys: { privateKey: keys.privateKey, publicKey: keys.publicKey } as never,
      signingAlgorithm: keys.signingAlgorithm as never,
      extensions: await deviceExtensions(keys.publicKey, keys.algorithm),
    },
    keyStoreCrypto,
  );
  await withDirLock(device.dir, () => writeChain(device.dir, [cert]));
  return cert;
}

export function csrToPem(csr: Pkcs10CertificateRequest): string {
  return toPem(csr.rawData, 'CERTIFICATE REQUEST');
}

export function describeCertificate(cert: X509Certificate): string {
  return `${displayName(cert.subjectName)} (serial ${cert.serialNumber}, SHA-256 ${sha256Hex(cert)})`;
}
