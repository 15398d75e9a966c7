/**
 * Test PKI built with @peculiar/x509 and WebCrypto ECDSA P-256 keys, written as PEM files to a temp dir:
 *
 *   genuine:   root (pathLen 1) → factory CA (pathLen 0) → device SN1, device SN2 (revoked in crl-revoked.pem)
 *   attacker:  a self-signed "root" and a "factory CA" copying the genuine names (own keys and key identifiers),
 *              a device certificate for the GENUINE device's public key issued by that factory copy, and a
 *              factory copy that also copies the genuine factory's subject key identifier
 *   misuse:    the device key signing a certificate for another key, with the device as issuer
 *   self-signed device certificate; CRLs: revoked, empty, signed by a wrong key, expired
 *
 * Also a small in-process runner for `keyframe cert …` (commander + a CliContext writing to buffers).
 */
import { webcrypto } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import {
  AuthorityKeyIdentifierExtension,
  BasicConstraintsExtension,
  ExtendedKeyUsageExtension,
  type Extension,
  KeyUsageFlags,
  KeyUsagesExtension,
  Name,
  SubjectKeyIdentifierExtension,
  type X509Certificate,
  X509CertificateGenerator,
  type X509Crl,
  X509CrlGenerator,
  X509CrlReason,
} from '../../src/pki/x509.js';
import { main } from '../../src/cli/main.js';
import { ATTR_SERIAL_NUMBER, EKU_CLIENT_AUTH, EKU_SERVER_AUTH, EKU_VIDEO_SIGNING } from '../../src/pki/oids.js';
import { toPem } from '../../src/pki/pem.js';

export const DAY = 86_400_000;
const ALG = { name: 'ECDSA', hash: 'SHA-256' };

type CryptoKey = webcrypto.CryptoKey;
type CryptoKeyPair = webcrypto.CryptoKeyPair;

export const NAMES = {
  root: 'CN=keyframe Manufacturer Root CA, O=keyframe',
  factory: 'CN=keyframe Factory CA 1, O=keyframe',
  device: 'CN=keyframe camera SN1, serialNumber=SN1, O=keyframe',
  device2: 'CN=keyframe camera SN2, serialNumber=SN2, O=keyframe',
  selfSigned: 'CN=keyframe camera SN9, serialNumber=SN9, O=keyframe',
  rogue: 'CN=rogue camera, O=attacker',
} as const;

export async function newKeys(): Promise<CryptoKeyPair> {
  return webcrypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, true, ['sign', 'verify']);
}

/** An issuing party: its certificate (for names) and private key. */
export interface Issuer {
  readonly cert: X509Certificate;
  readonly keys: CryptoKeyPair;
}

export interface IssueParams {
  readonly subject: string;
  readonly publicKey: CryptoKey;
  /** Signing identity; omit for self-signed (then `selfKeys` signs). */
  readonly issuer?: { readonly name: string | Name; readonly keys: CryptoKeyPair };
  readonly selfKeys?: CryptoKeyPair;
  readonly ca?: boolean;
  readonly pathLength?: number;
  readonly keyUsage?: KeyUsageFlags;
  readonly eku?: readonly string[];
  readonly notBefore: Date;
  readonly notAfter: Date;
  /** Replace the subject key identifier (e.g. to copy a genuine CA's). */
  readonly ski?: string;
  readonly extra?: readonly Extension[];
  /** Skip basicConstraints entirely. */
  readonly noBasicConstraints?: boolean;
}

let serialCounter = 0x1000;

/** @peculiar/x509 2.2 does not know the `serialNumber` attribute name (it prints it as 2.5.4.5): register it here. */
export function dn(name: string | Name): Name {
  return typeof name === 'string' ? new Name(name, { serialNumber: ATTR_SERIAL_NUMBER }) : name;
}

export async function issue(p: IssueParams): Promise<X509Certificate> {
  const signer = p.issuer?.keys ?? p.selfKeys;
  if (!signer) throw new Error('issue: no signing key');
  const exts: Extension[] = [];
  if (p.noBasicConstraints !== true) exts.push(new BasicConstraintsExtension(p.ca === true, p.pathLength, true));
  if (p.keyUsage !== undefined) exts.push(new KeyUsagesExtension(p.keyUsage, true));
  if (p.eku) exts.push(new ExtendedKeyUsageExtension([...p.eku], false));
  exts.push(p.ski === undefined ? await SubjectKeyIdentifierExtension.create(p.publicKey) : new SubjectKeyIdentifierExtension(p.ski));
  exts.push(await AuthorityKeyIdentifierExtension.create(signer.publicKey));
  exts.push(...(p.extra ?? []));
  serialCounter += 1;
  return X509CertificateGenerator.create({
    serialNumber: `7f${serialCounter.toString(16).padStart(6, '0')}`,
    subject: dn(p.subject),
    issuer: dn(p.issuer?.name ?? p.subject),
    notBefore: p.notBefore,
    notAfter: p.notAfter,
    publicKey: p.publicKey,
    signingKey: signer.privateKey,
    extensions: exts,
    signingAlgorithm: ALG,
  });
}

const CA_USAGE = KeyUsageFlags.keyCertSign | KeyUsageFlags.cRLSign;
const DEVICE_USAGE = KeyUsageFlags.digitalSignature | KeyUsageFlags.keyAgreement;
export const DEVICE_EKU = [EKU_SERVER_AUTH, EKU_CLIENT_AUTH, EKU_VIDEO_SIGNING] as const;

export async function makeRoot(name: string, base: Date, pathLength = 1): Promise<Issuer> {
  const keys = await newKeys();
  const cert = await issue({
    subject: name,
    publicKey: keys.publicKey,
    selfKeys: keys,
    ca: true,
    pathLength,
    keyUsage: CA_USAGE,
    notBefore: new Date(base.getTime() - 365 * DAY),
    notAfter: new Date(base.getTime() + 20 * 365 * DAY),
  });
  return { cert, keys };
}

export async function makeCa(name: string, parent: Issuer, base: Date, pathLength: number | undefined = 0, ski?: string): Promise<Issuer> {
  const keys = await newKeys();
  const cert = await issue({
    subject: name,
    publicKey: keys.publicKey,
    issuer: { name: parent.cert.subjectName, keys: parent.keys },
    ca: true,
    pathLength,
    keyUsage: CA_USAGE,
    notBefore: new Date(base.getTime() - 300 * DAY),
    notAfter: new Date(base.getTime() + 10 * 365 * DAY),
    ...(ski === undefined ? {} : { ski }),
  });
  return { cert, keys };
}

/** A device certificate: valid from base − 30 days to base + 2 years. */
export async function makeDevice(name: string, parent: Issuer, base: Date, keys?: CryptoKeyPair, extra: Partial<IssueParams> = {}): Promise<Issuer> {
  const k = keys ?? (await newKeys());
  const cert = await issue({
    subject: name,
    publicKey: k.publicKey,
    issuer: { name: parent.cert.subjectName, keys: parent.keys },
    ca: false,
    keyUsage: DEVICE_USAGE,
    eku: DEVICE_EKU,
    notBefore: new Date(base.getTime() - 30 * DAY),
    notAfter: new Date(base.getTime() + 2 * 365 * DAY),
    ...extra,
  });
  return { cert, keys: k };
}

export async function makeCrl(
  issuerName: string,
  keys: CryptoKeyPair,
  thisUpdate: Date,
  nextUpdate: Date | undefined,
  revoked: readonly { serialNumber: string; revocationDate: Date; reason?: X509CrlReason; invalidity?: Date }[] = [],
  extensions: Extension[] = [],
): Promise<X509Crl> {
  return X509CrlGenerator.create({
    issuer: dn(issuerName),
    thisUpdate,
    ...(nextUpdate === undefined ? {} : { nextUpdate }),
    entries: revoked.map((r) => ({ ...r })),
    extensions,
    signingKey: keys.privateKey,
    signingAlgorithm: ALG,
  });
}

export interface PkiFixtures {
  readonly dir: string;
  readonly base: Date;
  readonly root: Issuer;
  readonly factory: Issuer;
  readonly device: Issuer;
  readonly revokedDevice: Issuer;
  readonly revokedAt: Date;
  readonly attackerRoot: Issuer;
  readonly attackerFactory: Issuer;
  /** Copies the genuine factory's subject key identifier too. */
  readonly attackerFactorySki: Issuer;
  /** The genuine device's public key, certified by the attacker's factory copy. */
  readonly attackerDevice: X509Certificate;
  /** Issued by the device key, device as issuer. */
  readonly misused: X509Certificate;
  readonly selfSigned: Issuer;
  readonly crlRevoked: X509Crl;
  readonly crlEmpty: X509Crl;
  readonly crlWrongKey: X509Crl;
  readonly crlExpired: X509Crl;
  /** PEM file paths by name (root, factory, device, …). */
  readonly files: Readonly<Record<string, string>>;
  cleanup(): Promise<void>;
}

export async function buildPkiFixtures(base = new Date()): Promise<PkiFixtures> {
  const root = await makeRoot(NAMES.root, base);
  const factory = await makeCa(NAMES.factory, root, base, 0);
  const device = await makeDevice(NAMES.device, factory, base);
  const revokedDevice = await makeDevice(NAMES.device2, factory, base);

  const attackerRoot = await makeRoot(NAMES.root, base);
  const attackerFactory = await makeCa(NAMES.factory, attackerRoot, base, 0);
  const genuineSki = factory.cert.getExtension(SubjectKeyIdentifierExtension)?.keyId ?? '';
  const attackerFactorySki = await makeCa(NAMES.factory, attackerRoot, base, 0, genuineSki);
  const attackerDevice = (await makeDevice(NAMES.device, attackerFactory, base, device.keys)).cert;

  const rogueKeys = await newKeys();
  const misused = await issue({
    subject: NAMES.rogue,
    publicKey: rogueKeys.publicKey,
    issuer: { name: device.cert.subjectName, keys: device.keys },
    ca: false,
    keyUsage: KeyUsageFlags.digitalSignature,
    eku: [EKU_CLIENT_AUTH],
    notBefore: new Date(base.getTime() - DAY),
    notAfter: new Date(base.getTime() + 365 * DAY),
  });

  const ssKeys = await newKeys();
  const selfSigned: Issuer = {
    keys: ssKeys,
    cert: await issue({
      subject: NAMES.selfSigned,
      publicKey: ssKeys.publicKey,
      selfKeys: ssKeys,
      ca: false,
      keyUsage: DEVICE_USAGE,
      eku: DEVICE_EKU,
      notBefore: new Date(base.getTime() - DAY),
      notAfter: new Date(base.getTime() + 365 * DAY),
    }),
  };

  const revokedAt = new Date(Math.floor(base.getTime() / 1000) * 1000 - 2 * DAY); // CRL times have whole seconds
  const thisUpdate = new Date(base.getTime() - 3_600_000);
  const nextUpdate = new Date(base.getTime() + 7 * DAY);
  const crlRevoked = await makeCrl(NAMES.factory, factory.keys, thisUpdate, nextUpdate, [
    { serialNumber: revokedDevice.cert.serialNumber, revocationDate: revokedAt, reason: X509CrlReason.keyCompromise },
  ]);
  const crlEmpty = await makeCrl(NAMES.factory, factory.keys, thisUpdate, nextUpdate);
  const crlWrongKey = await makeCrl(NAMES.factory, attackerFactory.keys, thisUpdate, nextUpdate);
  const crlExpired = await makeCrl(NAMES.factory, factory.keys, new Date(base.getTime() - 10 * DAY), new Date(base.getTime() - 3 * DAY));

  const dir = await mkdtemp(join(tmpdir(), 'keyframe-pki-'));
  const certPem = (c: X509Certificate): string => toPem(c.rawData, 'CERTIFICATE');
  const crlPem = (c: X509Crl): string => toPem(c.rawData, 'X509 CRL');
  const contents: Record<string, string> = {
    root: certPem(root.cert),
    factory: certPem(factory.cert),
    device: certPem(device.cert),
    'revoked-device': certPem(revokedDevice.cert),
    'attacker-root': certPem(attackerRoot.cert),
    'attacker-factory': certPem(attackerFactory.cert),
    'attacker-device': certPem(attackerDevice),
    'factory-and-attacker': certPem(attackerFactory.cert) + certPem(factory.cert),
    'factory-and-device': certPem(factory.cert) + certPem(device.cert),
    misused: certPem(misused),
    'self-signed': certPem(selfSigned.cert),
    'crl-revoked': crlPem(crlRevoked),
    'crl-empty': crlPem(crlEmpty),
    'crl-wrong-key': crlPem(crlWrongKey),
    'crl-expired': crlPem(crlExpired),
    garbage: '-----BEGIN CERTIFICATE-----\nnot base64 at all!\n-----END CERTIFICATE-----\n',
  };
  const files: Record<string, string> = {};
  for (const [name, text] of Object.entries(contents)) {
    files[name] = join(dir, `${name}.pem`);
    await writeFile(files[name], text);
  }
  return {
    dir,
    base,
    root,
    factory,
    device,
    revokedDevice,
    revokedAt,
    attackerRoot,
    attackerFactory,
    attackerFactorySki,
    attackerDevice,
    misused,
    selfSigned,
    crlRevoked,
    crlEmpty,
    crlWrongKey,
    crlExpired,
    files,
    cleanup: () => rm(dir, { recursive: true, force: true }),
  };
}

class Buffered extends Writable {
  text = '';
  override _write(chunk: Buffer | string, _enc: BufferEncoding, done: (error?: Error | null) => void): void {
    this.text += chunk.toString();
    done();
  }
}

export interface CliRun {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs `keyframe <args>` in-process through the CLI's own entry (src/cli/main.ts), output captured. */
export async function runCertCli(args: readonly string[]): Promise<CliRun> {
  const stdout = new Buffered();
  const stderr = new Buffered();
  const code = await main([...args], { stdout, stderr });
  return { code, stdout: stdout.text, stderr: stderr.text };
}

/** The path of a fixture file, or a clear failure naming the missing one. */
export function fixtureFile(f: PkiFixtures, name: string): string {
  const path = f.files[name];
  if (path === undefined) throw new Error(`no fixture file ${name}`);
  return path;
}
