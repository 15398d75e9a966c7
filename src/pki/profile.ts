/**
 * Certificate profiles: names, validity and extensions of every certificate keyframe issues.
 *
 *   manufacturer root   CA, pathLen 1, keyCertSign+cRLSign                     (offline; signs factory CAs only)
 *   factory CA          CA, pathLen 0, keyCertSign+cRLSign                     (signs device certificates)
 *   operator CA         CA, pathLen 0, keyCertSign+cRLSign, separate root      (signs site TLS certificates)
 *   device              CA:FALSE, digitalSignature+keyAgreement (EC) or +keyEncipherment (RSA),
 *                       EKU serverAuth, clientAuth, video signing; serial in subject serialNumber
 *   site                CA:FALSE, digitalSignature, EKU serverAuth (+clientAuth), SAN DNS/IP
 *   tsa                 CA:FALSE, digitalSignature, EKU timeStamping only, critical (RFC 3161 §2.3)     (operator CA)
 *   exporter            CA:FALSE, digitalSignature, EKU keyframe evidence-export only, critical        (operator CA)
 */
import {
  AuthorityKeyIdentifierExtension,
  BasicConstraintsExtension,
  ExtendedKeyUsageExtension,
  KeyUsageFlags,
  KeyUsagesExtension,
  SubjectAlternativeNameExtension,
  Name,
  SubjectKeyIdentifierExtension,
} from './x509.js';
import type { Extension, JsonGeneralName, X509Certificate } from './x509.js';
import { randomBytes, webcrypto } from 'node:crypto';
import { isIP } from 'node:net';
import { InputError } from '../errors.js';
import type { KeyPairAlgorithm } from '../keystore/types.js';
import { ATTR_SERIAL_NUMBER, EKU_CLIENT_AUTH, EKU_EVIDENCE_EXPORT, EKU_SERVER_AUTH, EKU_TIME_STAMPING, EKU_VIDEO_SIGNING } from './oids.js';

const DAY_MS = 86_400_000;

export const VALIDITY_DAYS = {
  root: 25 * 365,
  factory: 15 * 365,
  operator: 10 * 365,
  device: 15 * 365,
  site: 825,
  /** A TSA signs tokens that must verify at their genTime for as long as evidence is kept: the operator CA's span. */
  tsa: 5 * 365,
  /** A person or a recorder exporting evidence: like a site identity. */
  exporter: 825,
} as const;

/** Issued certificates start a few minutes in the past, so a camera whose clock is slightly behind accepts them. */
export const BACKDATE_MS = 5 * 60_000;

/** A positive 127-bit random serial number, hex (RFC 5280: ≤ 20 octets, positive). */
export function newCertificateSerial(): string {
  const bytes = randomBytes(16);
  bytes[0] = ((bytes[0] ?? 0) & 0x7f) | 0x01;
  return bytes.toString('hex');
}

export function validity(days: number, now = new Date()): { notBefore: Date; notAfter: Date } {
  if (!Number.isFinite(days) || days <= 0 || days > 100 * 365) throw new InputError(`validity of ${days} days is out of range (1 … 36500)`);
  const notBefore = new Date(Math.floor((now.getTime() - BACKDATE_MS) / 1000) * 1000);
  return { notBefore, notAfter: new Date(notBefore.getTime() + days * DAY_MS) };
}

/** Escapes a value for an RFC 4514 string DN. */
function rdn(value: string): string {
  return value.replace(/([,+"\\<>;=])/g, '\\$1').replace(/^([ #])/, '\\$1').replace(/ $/, '\\ ');
}

export function assertPrintable(value: string, what: string): void {
  if (value.length === 0 || value.length > 64 || [...value].some((c) => c.charCodeAt(0) < 0x20 || c.charCodeAt(0) === 0x7f)) {
    throw new InputError(`${what} must be 1-64 printable characters`);
  }
}

/** Device serials: letters, digits, dot, dash, underscore; they appear in file names and the subject. */
export const DEVICE_SERIAL = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

export function assertDeviceSerial(serial: string): void {
  if (!DEVICE_SERIAL.test(serial)) throw new InputError(`bad device serial "${serial}": 1-64 characters of A-Z a-z 0-9 . _ -, starting with a letter or digit`);
}

/** @peculiar/x509 knows no short name for X.520 serialNumber: names are built with it registered. */
const EXTRA_NAMES = { serialNumber: ATTR_SERIAL_NUMBER };

function dn(text: string): Name {
  return new Name(text, EXTRA_NAMES);
}

export const names = {
  root: (org: string): Name => dn(`CN=${rdn(`${org} Manufacturer Root CA`)}, O=${rdn(org)}`),
  factory: (org: string): Name => dn(`CN=${rdn(`${org} Factory CA 1`)}, O=${rdn(org)}`),
  operator: (org: string): Name => dn(`CN=${rdn(`${org} Operator CA`)}, O=${rdn(org)}`),
  device: (org: string, serial: string): Name => dn(`CN=${rdn(`${org} camera ${serial}`)}, serialNumber=${rdn(serial)}, O=${rdn(org)}`),
  site: (org: string, name: string): Name => dn(`CN=${rdn(name)}, O=${rdn(org)}`),
};

async function ski(publicKey: webcrypto.CryptoKey): Promise<SubjectKeyIdentifierExtension> {
  return SubjectKeyIdentifierExtension.create(publicKey, false, webcrypto);
}

export function akiFrom(issuer: X509Certificate): AuthorityKeyIdentifierExtension {
  const ext = issuer.getExtension(SubjectKeyIdentifierExtension);
  if (ext === null) throw new InputError(`issuer ${issuer.subject} has no subject key identifier`);
  return new AuthorityKeyIdentifierExtension(ext.keyId);
}

export async function caExtensions(publicKey: webcrypto.CryptoKey, pathLength: number, issuer?: X509Certificate): Promise<Extension[]> {
  const exts: Extension[] = [
    new BasicConstraintsExtension(true, pathLength, true),
    new KeyUsagesExtension(KeyUsageFlags.keyCertSign | KeyUsageFlags.cRLSign, true),
    await ski(publicKey),
  ];
  if (issuer !== undefined) exts.push(akiFrom(issuer));
  return exts;
}

export async function deviceExtensions(publicKey: webcrypto.CryptoKey, algorithm: KeyPairAlgorithm, issuer?: X509Certificate): Promise<Extension[]> {
  const usage = KeyUsageFlags.digitalSignature | (algorithm === 'ec-p256' ? KeyUsageFlags.keyAgreement : KeyUsageFlags.keyEncipherment);
  const exts: Extension[] = [
    new BasicConstraintsExtension(false, undefined, true),
    new KeyUsagesExtension(usage, true),
    new ExtendedKeyUsageExtension([EKU_SERVER_AUTH, EKU_CLIENT_AUTH, EKU_VIDEO_SIGNING], false),
    await ski(publicKey),
  ];
  if (issuer !== undefined) exts.push(akiFrom(issuer));
  return exts;
}

export async function siteExtensions(
  publicKey: webcrypto.CryptoKey,
  issuer: X509Certificate,
  altNames: readonly string[],
  clientAuth: boolean,
): Promise<Extension[]> {
  const general: JsonGeneralName[] = altNames.map((n) => (isIP(n) !== 0 ? { type: 'ip', value: n } : { type: 'dns', value: n }));
  const exts: Extension[] = [
    new BasicConstraintsExtension(false, undefined, true),
    new KeyUsagesExtension(KeyUsageFlags.digitalSignature, true),
    new ExtendedKeyUsageExtension(clientAuth ? [EKU_SERVER_AUTH, EKU_CLIENT_AUTH] : [EKU_SERVER_AUTH], false),
    await ski(publicKey),
    akiFrom(issuer),
  ];
  if (general.length > 0) exts.push(new SubjectAlternativeNameExtension(general, false));
  return exts;
}

/** An operator-CA identity with a single, critical extended key usage: a TSA (timeStamping) or an evidence exporter. */
async function singlePurposeExtensions(publicKey: webcrypto.CryptoKey, issuer: X509Certificate, eku: string): Promise<Extension[]> {
  return [
    new BasicConstraintsExtension(false, undefined, true),
    new KeyUsagesExtension(KeyUsageFlags.digitalSignature, true),
    new ExtendedKeyUsageExtension([eku], true),
    await ski(publicKey),
    akiFrom(issuer),
  ];
}

export function tsaExtensions(publicKey: webcrypto.CryptoKey, issuer: X509Certificate): Promise<Extension[]> {
  return singlePurposeExtensions(publicKey, issuer, EKU_TIME_STAMPING);
}

export function exporterExtensions(publicKey: webcrypto.CryptoKey, issuer: X509Certificate): Promise<Extension[]> {
  return singlePurposeExtensions(publicKey, issuer, EKU_EVIDENCE_EXPORT);
}

/** Host names and IP addresses allowed in a site certificate. */
export function assertAltName(name: string): void {
  if (isIP(name) !== 0) return;
  if (!/^(?=.{1,253}$)([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/.test(name)) {
    throw new InputError(`bad host name "${name}"`);
  }
}
