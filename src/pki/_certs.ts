/**
 * Small, side-effect-free helpers for path validation: fingerprints, name comparison, signature checks that never
 * throw, and the failure record every check returns. Parsing is @peculiar/x509's; nothing here reads ASN.1 by hand.
 */
import { createHash } from 'node:crypto';
import { AuthorityKeyIdentifierExtension, Name, SubjectKeyIdentifierExtension } from './x509.js';
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
  try {
    return new Name(name.toArrayBuffer(), { serialNumber: ATTR_SERIAL_NUMBER }).toString();
  } catch {
    return name.toString();
  }
}

export const subjectOf = (cert: { readonly subjectName: Name }): string => displayName(cert.subjectName);
export const issuerOf = (obj: { readonly issuerName: Name }): string => displayName(obj.issuerName);

/** Canonical text form for loose comparison (case and runs of white space ignored, like OpenSSL's canonical names). */
function canonical(name: Name): string {
  return name.toString().toLowerCase().replace(/\s+/g, ' ').trim();
}

/** Distinguished names are equal if their DER is identical or their canonical text forms are. */
export function namesEqual(a: Name, b: Name): boolean {
  try {
    if (Buffer.from(a.toArrayBuffer()).equals(Buffer.from(b.toArrayBuffer()))) return true;
    return canonical(a) === canonical(b);
  } catch {
    return false;
  }
}

/** Self-issued: subject and issuer names are equal (RFC 5280 §6.1). Says nothing about the signature. */
export function isSelfIssued(cert: X509Certificate): boolean {
  return namesEqual(cert.subjectName, cert.issuerName);
}

/** Does `issuer`'s public key verify `cert`'s signature? Never throws: anything unusable is `false`. */
export async function signatureVerifies(cert: X509Certificate, issuer: X509Certificate): Promise<boolean> {
  try {
    return await cert.verify({ publicKey: issuer.publicKey, signatureOnly: true });
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
