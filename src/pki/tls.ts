/**
 * TLS 1.3 with mutual authentication, for every keyframe service: a context is built from an identity (a
 * certificate chain plus a key in a KeyStore) and a trust policy (pinned roots plus CRLs).
 *
 * Where the private key is:
 * - software key store: Node's TLS stack needs the key in-process; it gets the PKCS#8 encrypted under a one-time
 *   random passphrase, which OpenSSL opens inside the secure context.
 * - PKCS#11 token: the key never leaves the token. Node 20 signs the handshake through OpenSSL's pkcs11 engine
 *   (Debian libengine-pkcs11-openssl, libp11), named by its id "pkcs11", with an RFC 7512 URI for the key and the
 *   PIN read by libp11 from a 0600 file (pin-source=file:…); the module comes from PKCS11_MODULE_PATH.
 *
 * The engine is found by id: registered at start-up by keyframe's OpenSSL configuration (`pkcs11OpenSslConfig`,
 * given to node as --openssl-config), or else loaded by OpenSSL from the engine directory named in
 * $OPENSSL_ENGINES, which this module sets to Debian's. Either way it is loaded once and kept, so a process may
 * build any number of contexts. (Loading it by full path, as Node allows too, works only once per process, and
 * libp11 prints "bad engine id" on stderr while OpenSSL tries the path as an id first.) `tlsClientOptions` builds
 * one secure context per identity and trust policy, reused by every connection.
 *
 * Peers are checked in the handshake by OpenSSL: chain to a pinned root, validity, the TLS purpose (EKU),
 * and — when CRLs are given — revocation of every certificate in the chain (CRL_CHECK | CRL_CHECK_ALL), so a
 * policy with CRLs needs the CRL of every CA in the peer's chain (`keyframe ca crl` writes all of them).
 */
import { createHash, setEngine } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { createSecureContext } from 'node:tls';
import type { ConnectionOptions, PeerCertificate, SecureContext, TLSSocket, TlsOptions } from 'node:tls';
import { ErrorCodes, InputError, KeyframeError, NotFoundError, errnoCode } from '../errors.js';
import { readPin } from '../keystore/pin.js';
import { openKeyStore } from '../keystore/open.js';
import { parseKeyStoreSpec } from '../keystore/spec.js';
import type { KeyStoreSpec } from '../keystore/spec.js';
import { SoftwareKeyStore } from '../keystore/software.js';
import { certsToPem, parseCertificates, toPem } from './pem.js';
import type { X509Certificate, X509Crl } from './x509.js';

/** Who we are on a TLS connection: a certificate chain (leaf first) and where its private key lives. */
export interface TlsIdentity {
  readonly chain: readonly X509Certificate[];
  readonly keystore: KeyStoreSpec;
  readonly keyLabel: string;
}

/** Whom we accept: certificates chaining to one of `roots`, not revoked according to `crls`. */
export interface TrustPolicy {
  readonly roots: readonly X509Certificate[];
  readonly crls?: readonly X509Crl[];
}

const ENGINE_CANDIDATES = [
  '/usr/lib/x86_64-linux-gnu/engines-3/pkcs11.so',
  '/usr/lib/aarch64-linux-gnu/engines-3/pkcs11.so',
  '/usr/lib/engines-3/pkcs11.so',
];

/** The OpenSSL pkcs11 engine, by full path (Node's bundled OpenSSL does not search Debian's engine directory). */
export function pkcs11EnginePath(): string {
  const found = ENGINE_CANDIDATES.find((p) => existsSync(p));
  if (found === undefined) {
    throw new KeyframeError(ErrorCodes.TLS, 'TLS with a PKCS#11 key needs the OpenSSL pkcs11 engine: apt-get install libengine-pkcs11-openssl');
  }
  return found;
}

/**
 * An OpenSSL configuration that registers the pkcs11 engine at start-up (node --openssl-config=FILE), so that
 * it can be named by id any number of times. `module` is the PKCS#11 module libp11 loads.
 */
export function pkcs11OpenSslConfig(module: string): string {
  return [
    'nodejs_conf = keyframe_init',
    '[keyframe_init]',
    'engines = keyframe_engines',
    '[keyframe_engines]',
    'pkcs11 = keyframe_pkcs11',
    '[keyframe_pkcs11]',
    'engine_id = pkcs11',
    `dynamic_path = ${pkcs11EnginePath()}`,
    `MODULE_PATH = ${module}`,
    'init = 0',
    '',
  ].join('\n');
}

let enginePreloaded: boolean | undefined;

/**
 * What to pass as privateKeyEngine: the engine's id. When it was not registered at start-up, OpenSSL finds it in
 * $OPENSSL_ENGINES (read when the engine is first asked for, not at start-up), set here to its directory.
 */
export function pkcs11EngineForTls(): string {
  if (enginePreloaded === undefined) {
    try {
      setEngine('pkcs11', 0); // flags 0: only looks the engine up, changes no default
      enginePreloaded = true;
    } catch {
      enginePreloaded = false;
    }
  }
  if (!enginePreloaded) process.env['OPENSSL_ENGINES'] = dirname(pkcs11EnginePath());
  return 'pkcs11';
}

/** Whether the engine was registered at start-up (--openssl-config) rather than found in $OPENSSL_ENGINES. */
export function pkcs11EnginePreloaded(): boolean {
  pkcs11EngineForTls();
  return enginePreloaded === true;
}

function pct(value: string): string {
  return encodeURIComponent(value).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

/**
 * A private directory (0700) holding PIN files handed to libp11. It lives as long as the process: libp11 may
 * log in again when it opens a new session, so the file must stay readable while contexts exist; it is removed
 * at exit. A PIN from a file source is used in place and never copied.
 */
let pinDir: string | undefined;
function pinFileFor(spec: KeyStoreSpec): string {
  if ('file' in spec.pin) return spec.pin.file;
  const pin = readPin(spec.pin);
  if (pinDir === undefined) {
    pinDir = mkdtempSync(join(tmpdir(), 'keyframe-pin-'));
    const dir = pinDir;
    process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
  }
  const file = join(pinDir, `${pct(spec.kind === 'pkcs11' ? spec.token : 'file')}.pin`);
  writeFileSync(file, pin, { mode: 0o600 });
  return file;
}

async function keyOptions(identity: TlsIdentity): Promise<Pick<TlsOptions, 'key' | 'passphrase' | 'privateKeyEngine' | 'privateKeyIdentifier'>> {
  const spec = identity.keystore;
  if (spec.kind === 'file') {
    const store = await openKeyStore(spec);
    try {
      if (!(store instanceof SoftwareKeyStore)) throw new KeyframeError(ErrorCodes.INTERNAL, 'file: spec did not open a software key store');
      const { pem, passphrase } = await store.exportForTls(identity.keyLabel);
      return { key: pem, passphrase };
    } finally {
      await store.close();
    }
  }
  // the key must exist and the PIN must be right before OpenSSL is asked: its errors are far less clear
  const store = await openKeyStore(spec);
  try {
    await store.getPublicKey(identity.keyLabel);
  } finally {
    await store.close();
  }
  const engine = pkcs11EngineForTls();
  if (!pkcs11EnginePreloaded()) {
    // libp11 reads the module once, when the engine is loaded: one module per process
    const current = process.env['PKCS11_MODULE_PATH'];
    if (current !== undefined && current !== spec.module) {
      throw new KeyframeError(ErrorCodes.TLS, `one PKCS#11 module per process for TLS: already using ${current}, asked for ${spec.module}`);
    }
    process.env['PKCS11_MODULE_PATH'] = spec.module;
  }
  return {
    privateKeyEngine: engine,
    privateKeyIdentifier: `pkcs11:token=${pct(spec.token)};object=${pct(identity.keyLabel)};type=private;pin-source=file:${pinFileFor(spec)}`,
  };
}

function trustOptions(trust: TrustPolicy): Pick<TlsOptions, 'ca' | 'crl'> {
  if (trust.roots.length === 0) throw new InputError('a TLS trust policy needs at least one root certificate');
  return {
    ca: trust.roots.map((c) => toPem(c.rawData, 'CERTIFICATE')),
    ...(trust.crls !== undefined && trust.crls.length > 0 ? { crl: trust.crls.map((c) => toPem(c.rawData, 'X509 CRL')) } : {}),
  };
}

/** Options for `tls.createServer` / `https.createServer`: TLS 1.3 only, client certificate required. */
export async function tlsServerOptions(identity: TlsIdentity, trust: TrustPolicy): Promise<TlsOptions> {
  return {
    minVersion: 'TLSv1.3',
    maxVersion: 'TLSv1.3',
    cert: certsToPem(identity.chain),
    ...(await keyOptions(identity)),
    ...trustOptions(trust),
    requestCert: true,
    rejectUnauthorized: true,
  };
}

/**
 * Options for a browser-facing listener: TLS 1.3 only, the server's certificate, no client certificate asked for
 * (the people using it authenticate with accounts, above TLS).
 */
export async function tlsBrowserServerOptions(identity: TlsIdentity): Promise<TlsOptions> {
  return {
    minVersion: 'TLSv1.3',
    maxVersion: 'TLSv1.3',
    cert: certsToPem(identity.chain),
    ...(await keyOptions(identity)),
    requestCert: false,
  };
}

const clientContexts = new Map<string, Promise<SecureContext>>();

function contextKey(identity: TlsIdentity, trust: TrustPolicy): string {
  const h = createHash('sha256');
  h.update(JSON.stringify([identity.keystore, identity.keyLabel]));
  for (const c of [...identity.chain, ...trust.roots, ...(trust.crls ?? [])]) h.update(new Uint8Array(c.rawData));
  return h.digest('hex');
}

/**
 * Options for `tls.connect` / `https.request`: TLS 1.3 only, our certificate presented, the server's verified.
 * The secure context (certificate, key, roots, CRLs) is built once per identity and trust policy and shared by
 * every connection; the key store is opened only then.
 */
export async function tlsClientOptions(identity: TlsIdentity, trust: TrustPolicy, servername?: string): Promise<ConnectionOptions> {
  const key = contextKey(identity, trust);
  let context = clientContexts.get(key);
  if (context === undefined) {
    context = (async () =>
      createSecureContext({
        minVersion: 'TLSv1.3',
        maxVersion: 'TLSv1.3',
        cert: certsToPem(identity.chain),
        ...(await keyOptions(identity)),
        ...trustOptions(trust),
      }))();
    clientContexts.set(key, context);
    context.catch(() => clientContexts.delete(key));
  }
  return {
    secureContext: await context,
    minVersion: 'TLSv1.3',
    maxVersion: 'TLSv1.3',
    rejectUnauthorized: true,
    ...(servername !== undefined ? { servername } : {}),
  };
}

/**
 * Loads the TLS identity of a device directory (device.json + chain.pem) or a site directory (site.json +
 * chain.pem). `keystore` overrides the recorded key store spec.
 */
export function loadTlsIdentity(dir: string, keystore?: string): TlsIdentity {
  const configPath = ['device.json', 'site.json'].map((n) => join(dir, n)).find((p) => existsSync(p));
  if (configPath === undefined) {
    throw new NotFoundError(existsSync(dir) ? `${dir} holds no device.json or site.json` : `identity directory not found: ${dir}`);
  }
  let config: { keystore?: unknown; keyLabel?: unknown };
  try {
    config = JSON.parse(readFileSync(configPath, 'utf8')) as { keystore?: unknown; keyLabel?: unknown };
  } catch {
    throw new InputError(`${configPath} is not valid JSON`);
  }
  if (typeof config.keystore !== 'string' || typeof config.keyLabel !== 'string') throw new InputError(`${configPath} names no key store and key label`);
  const chainPath = join(dir, 'chain.pem');
  let chainPem: Buffer;
  try {
    chainPem = readFileSync(chainPath);
  } catch (e) {
    if (errnoCode(e) === 'ENOENT') throw new NotFoundError(`${dir} has no certificate yet (${chainPath} missing)`);
    throw e;
  }
  return { chain: parseCertificates(chainPem, chainPath), keystore: keystore !== undefined ? parseKeyStoreSpec(keystore) : parseKeyStoreSpec(config.keystore, resolve(dir)), keyLabel: config.keyLabel };
}

/** The X.520 serialNumber (device serial) of the authenticated peer, or undefined for a non-device peer. */
export function peerDeviceSerial(socket: TLSSocket): string | undefined {
  if (!socket.authorized) return undefined;
  const cert: PeerCertificate = socket.getPeerCertificate();
  const subject = cert.subject as unknown as Record<string, string | string[] | undefined> | undefined;
  const serial = subject?.['serialNumber'];
  return typeof serial === 'string' ? serial : undefined;
}
