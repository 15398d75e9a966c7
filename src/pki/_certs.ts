/**
 * Small, side-effect-free helpers for path validation: fingerprints, name comparison, signature checks that never
 * throw, and the failure record every check returns. Parsing is @peculiar/x509's; nothing here reads ASN.1 by hand.
 *
 * A parsed certificate does not change, so what is derived from one (its fingerprint, the text and DER of its
 * names, whether it is well formed, its public key, whether an issuer's key verifies it) is computed once per
 * object and kept in WeakMaps: trust anchors and the certificates of a session are checked again and again, and
 * @peculiar/x509 re-serialises names and keys on every access.
 */
import { createHash, createPublicKey, verify as cryptoVerify, type KeyObject } from 'node:crypto';
import { AsnEcSignatureFormatter, AuthorityKeyIdentifierExtension, Name, SubjectKeyIdentifierExtension } from './x509.js';
import type { X509Certificate, X509Crl } from './x509.js';
import { ATTR_SERIAL_NUMBER } from './oids.js';

/** Why a certificate or path is invalid: a stable machine code and a human reason. */
export interface Failure {
  readonly code: string;
  readonly reason: string;
}

const fingerprints = new WeakMap<X509Certificate, string>();

/** SHA-256 of the DER certificate, lowercase hex without colons. */
export function sha256Hex(cert: X509Certificate): string {
  let fp = fingerprints.get(cert);
  if (fp === undefined) {
    fp = createHash('sha256').update(new Uint8Array(cert.rawData)).digest('hex');
    fingerprints.set(cert, fp);
  }
  return fp;
}

/**
 * RFC 4514 text of a name. @peculiar/x509 does not know the X.520 serialNumber attribute (it prints 2.5.4.5=…),
 * which every device subject has, so it is registered for display.
 */
export function displayName(name: Name): string {
  let text = displayNames.get(name);
  if (text === undefined) {
    try {
      text = new Name(name.toArrayBuffer(), { serialNumber: ATTR_SERIAL_NUMBER }).toString();
    } catch {
      text = name.toString();
    }
    displayNames.set(name, text);
  }
  return text;
}

const displayNames = new WeakMap<Name, string>();
const nameDers = new WeakMap<Name, Buffer>();
const canonicalNames = new WeakMap<Name, string>();

/** The DER of a name (throws like Name.toArrayBuffer for a malformed one). */
function nameDer(name: Name): Buffer {
  let der = nameDers.get(name);
  if (der === undefined) {
    der = Buffer.from(name.toArrayBuffer());
    nameDers.set(name, der);
  }
  return der;
}

export const subjectOf = (cert: { readonly subjectName: Name }): string => displayName(cert.subjectName);
export const issuerOf = (obj: { readonly issuerName: Name }): string => displayName(obj.issuerName);

/** Canonical text form for loose comparison (case and runs of white space ignored, like OpenSSL's canonical names). */
function canonical(name: Name): string {
  let text = canonicalNames.get(name);
  if (text === undefined) {
    text = name.toString().toLowerCase().replace(/\s+/g, ' ').trim();
    canonicalNames.set(name, text);
  }
  return text;
}

/** Distinguished names are equal if their DER is identical or their canonical text forms are. */
export function namesEqual(a: Name, b: Name): boolean {
  try {
    if (nameDer(a).equals(nameDer(b))) return true;
    return canonical(a) === canonical(b);
  } catch {
    return false;
  }
}

/** Self-issued: subject and issuer names are equal (RFC 5280 §6.1). Says nothing about the signature. */
export function isSelfIssued(cert: X509Certificate): boolean {
  return namesEqual(cert.subjectName, cert.issuerName);
}

const publicKeys = new WeakMap<X509Certificate, KeyObject>();

/** The certificate's public key as a node:crypto KeyObject (throws if OpenSSL cannot use it). */
export function publicKeyObject(cert: X509Certificate): KeyObject {
  let key = publicKeys.get(cert);
  if (key === undefined) {
    key = createPublicKey({ key: Buffer.from(cert.publicKey.rawData), format: 'der', type: 'spki' });
    publicKeys.set(cert, key);
  }
  return key;
}

/** WebCrypto curve names and OpenSSL's, for the curves WebCrypto's ECDSA supports. */
const EC_CURVES: Readonly<Record<string, string>> = { 'P-256': 'prime256v1', 'P-384': 'secp384r1', 'P-521': 'secp521r1' };
const EC_HASHES: Readonly<Record<string, string>> = { 'SHA-1': 'sha1', 'SHA-256': 'sha256', 'SHA-384': 'sha384', 'SHA-512': 'sha512' };
const ecFormatter = new AsnEcSignatureFormatter();

/**
 * ECDSA certificate signatures checked with node:crypto on a cached key, with the same outcome as @peculiar/x509's
 * WebCrypto path (same algorithm merge, curve check and signature conversion) at a fraction of its cost; undefined
 * for anything else, which goes the library's way.
 */
function ecdsaVerifies(cert: X509Certificate, issuer: X509Certificate): boolean | undefined {
  const keyAlg = issuer.publicKey.algorithm as { name?: string; namedCurve?: string };
  const sigAlg = cert.signatureAlgorithm as { name?: string; hash?: { name?: string } };
  if (keyAlg.name !== 'ECDSA' || sigAlg.name !== 'ECDSA') return undefined;
  const curve = EC_CURVES[keyAlg.namedCurve ?? ''];
  const hash = EC_HASHES[sigAlg.hash?.name ?? ''];
  if (curve === undefined || hash === undefined) return undefined;
  const key = publicKeyObject(issuer);
  if (key.asymmetricKeyType !== 'ec' || key.asymmetricKeyDetails?.namedCurve !== curve) return false;
  const signature = ecFormatter.toWebSignature({ ...keyAlg, ...sigAlg } as Parameters<AsnEcSignatureFormatter['toWebSignature']>[0], cert.signature);
  if (signature === null) return false;
  // the bytes @peculiar/x509 verifies: its (typed private) tbs, the TBSCertificate as received or re-encoded
  const { tbs } = cert as unknown as { readonly tbs: ArrayBuffer };
  return cryptoVerify(hash, new Uint8Array(tbs), { key, dsaEncoding: 'ieee-p1363' }, new Uint8Array(signature));
}

const signatureChecks = new WeakMap<X509Certificate, WeakMap<X509Certificate, Promise<boolean>>>();

/** Does `issuer`'s public key verify `cert`'s signature? Never throws: anything unusable is `false`. Memoised. */
export function signatureVerifies(cert: X509Certificate, issuer: X509Certificate): Promise<boolean> {
  let byIssuer = signatureChecks.get(cert);
  if (byIssuer === undefined) {
    byIssuer = new WeakMap();
    signatureChecks.set(cert, byIssuer);
  }
  let result = byIssuer.get(issuer);
  if (result === undefined) {
    result = checkSignature(cert, issuer);
    byIssuer.set(issuer, result);
  }
  return result;
}

async function checkSignature(cert: X509Certificate, issuer: X509Certificate): Promise<boolean> {
  try {
    return ecdsaVerifies(cert, issuer) ?? (await cert.verify({ publicKey: issuer.publicKey, signatureOnly: true }));
  } catch {
    return false;
  }
}

/** Does `issuer`'s public key verify the CRL's signature? Never throws. */
export async function crlSignatureVerifies(crl: X509Crl, issuer: X509Certificate): Promise<boolean> {
  try {
    // pass the PublicKey, not the certificate: with a certificate the library takes the hash from the
    // certificate's own signature algorithm instead of the CRL's
    return await crl.verify({ publicKey: issuer.publicKey });
  } catch {
    return false;
  }
}

export function subjectKeyId(cert: X509Certificate): string | undefined {
  return cert.getExtension(SubjectKeyIdentifierExtension)?.keyId?.toLowerCase();
}

export function authorityKeyId(cert: X509Certificate): string | undefined {
  return cert.getExtension(AuthorityKeyIdentifierExtension)?.keyId?.toLowerCase();
}

/**
 * Touches everything validation reads, so a malformed certificate fails here and not halfway through a check.
 * Returns false instead of throwing.
 */
export function isWellFormed(cert: X509Certificate): boolean {
  let ok = wellFormed.get(cert);
  if (ok === undefined) {
    ok = touchAll(cert);
    wellFormed.set(cert, ok);
  }
  return ok;
}

const wellFormed = new WeakMap<X509Certificate, boolean>();

function touchAll(cert: X509Certificate): boolean {
  try {
    void cert.subject;
    void cert.issuer;
    void cert.serialNumber;
    if (Number.isNaN(cert.notBefore.getTime()) || Number.isNaN(cert.notAfter.getTime())) return false;
    void cert.publicKey.algorithm;
    void cert.signatureAlgorithm;
    void cert.extensions;
    cert.subjectName.toArrayBuffer();
    cert.issuerName.toArrayBuffer();
    return true;
  } catch {
    return false;
  }
}

export function iso(d: Date): string {
  return d.toISOString();
}

/** A subject as text with `2.5.4.5=` (how @peculiar/x509 writes serialNumber) named `serialNumber=`, as displayName does. */
export function displaySubjectText(text: string): string {
  return text.replace(/(^|,\s*|\+\s*)2\.5\.4\.5=/g, '$1serialNumber=');
}
