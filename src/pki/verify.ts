/**
 * X.509 certification path validation (RFC 5280 §6) for keyframe's device PKI.
 *
 * Parsing is @peculiar/x509's and signatures are checked with WebCrypto; the work is split into path building
 * (_path.ts: every candidate issuer is tried, so look-alike CAs cannot shadow real ones), per-path checks
 * (_checks.ts: critical extensions, validity, CA constraints, path length, purpose) and revocation
 * (_revocation.ts: CRLs, with "valid until revoked" time semantics).
 *
 * An invalid certificate is a result, never an exception; only unusable input (wrong types, malformed roots or
 * CRLs, bad pins, an invalid date) throws an InputError.
 */
import { X509Certificate, X509Crl } from './x509.js';
import { InputError } from '../errors.js';
import { type Failure, isSelfIssued, issuerOf, isWellFormed, iso, sha256Hex, subjectOf } from './_certs.js';
import { CERT_PURPOSES, type CertPurpose, checkExtensions, checkPath, checkPurpose, checkValidity } from './_checks.js';
import { PathBuilder } from './_path.js';
import { checkRevocation } from './_revocation.js';

export type { CertPurpose } from './_checks.js';
export { CERT_PURPOSES } from './_checks.js';
export { displayName, publicKeyObject, subjectOf } from './_certs.js';

export interface VerifyOptions {
  /** Trust anchors (self-signed CA certificates). */
  readonly roots: readonly X509Certificate[];
  /** Untrusted chain candidates (may include the leaf itself; duplicates are ignored). */
  readonly intermediates?: readonly X509Certificate[];
  /** When given (even empty), revocation is checked and the leaf needs a CRL from its issuer. */
  readonly crls?: readonly X509Crl[];
  /** Validation time for certificate validity and revocation; default now. */
  readonly at?: Date;
  /** Time for CRL freshness; default now. */
  readonly now?: Date;
  /** SHA-256 fingerprints of trusted self-signed end-entity certificates (hex; colons and case ignored). */
  readonly pins?: readonly string[];
  /** Default 'device'. */
  readonly purpose?: CertPurpose;
}

export interface CertSummary {
  subject: string;
  issuer: string;
  serialNumber: string;
  notBefore: string;
  notAfter: string;
  sha256: string;
}

export interface VerifyResult {
  readonly valid: boolean;
  /** 'self-signed' = a self-signed leaf that is not pinned (invalid). */
  readonly status: 'valid' | 'pinned' | 'self-signed' | 'invalid';
  /** Human reason when invalid. */
  readonly reason?: string;
  /** Stable machine code for the reason. */
  readonly code?: string;
  /** Leaf first, up to the anchor (as far as validation got). */
  readonly chain: readonly CertSummary[];
  /** Valid at `at` but revoked afterwards: ISO time (informational). */
  readonly revokedLater?: string;
  /** The CRL reason of that revocation. */
  readonly revokedLaterReason?: string;
  /**
   * Valid at `at` but revoked afterwards for a reason that puts the key's signatures in doubt (keyCompromise,
   * cACompromise, aACompromise, unspecified, none): material claiming a time before it needs a proof of existence.
   */
  readonly compromise?: { readonly time: string; readonly reason: string; readonly subject: string };
  /** With CRLs: thisUpdate of the newest CRL used for the leaf (revocation is known up to that time). */
  readonly crlThisUpdate?: string;
}

export const SELF_SIGNED_REASON = 'self-signed: identity not established';

/** SHA-256 fingerprint of the DER certificate: lowercase hex, no colons. */
export function fingerprintSha256(cert: X509Certificate): string {
  if (!(cert instanceof X509Certificate)) throw new InputError('not an X.509 certificate');
  return sha256Hex(cert);
}

/** Normalises a pinned fingerprint: colons and white space removed, lowercase; anything but 64 hex digits throws. */
export function normalisePin(pin: string): string {
  const hex = pin.replace(/[:\s]/g, '').toLowerCase();
  if (!/^[0-9a-f]{64}$/.test(hex)) throw new InputError(`bad pin "${pin}": expected a SHA-256 fingerprint (64 hex digits, colons allowed)`);
  return hex;
}

const summaries = new WeakMap<X509Certificate, CertSummary>();

export function summarize(cert: X509Certificate): CertSummary {
  let s = summaries.get(cert);
  if (s === undefined) {
    s = {
      subject: subjectOf(cert),
      issuer: issuerOf(cert),
      serialNumber: cert.serialNumber,
      notBefore: iso(cert.notBefore),
      notAfter: iso(cert.notAfter),
      sha256: sha256Hex(cert),
    };
    summaries.set(cert, s);
  }
  // a copy: callers own their summaries
  return { ...s };
}

interface Inputs {
  readonly roots: readonly X509Certificate[];
  readonly intermediates: readonly X509Certificate[];
  readonly crls: readonly X509Crl[] | undefined;
  readonly at: Date;
  readonly now: Date;
  readonly pins: ReadonlySet<string>;
  readonly purpose: CertPurpose;
}

function date(d: Date | undefined, what: string, fallback: Date): Date {
  if (d === undefined) return fallback;
  if (!(d instanceof Date) || Number.isNaN(d.getTime())) throw new InputError(`${what} is not a valid date`);
  return d;
}

const crlsWellFormed = new WeakMap<X509Crl, boolean>();

function crlWellFormed(crl: X509Crl): boolean {
  let ok = crlsWellFormed.get(crl);
  if (ok === undefined) {
    ok = touchCrl(crl);
    crlsWellFormed.set(crl, ok);
  }
  return ok;
}

function touchCrl(crl: X509Crl): boolean {
  try {
    crl.issuerName.toArrayBuffer();
    if (Number.isNaN(crl.thisUpdate.getTime())) return false;
    void crl.nextUpdate;
    void crl.entries;
    void crl.signatureAlgorithm;
    return true;
  } catch {
    return false;
  }
}

function readInputs(leaf: X509Certificate, options: VerifyOptions): Inputs {
  if (!(leaf instanceof X509Certificate) || !isWellFormed(leaf)) throw new InputError('the certificate to verify is malformed');
  if (typeof options !== 'object' || options === null || !Array.isArray(options.roots)) throw new InputError('roots must be a list of certificates');
  options.roots.forEach((r, i) => {
    if (!(r instanceof X509Certificate) || !isWellFormed(r)) throw new InputError(`root certificate #${i + 1} is malformed`);
  });
  // untrusted candidates are attacker-controlled: a malformed one is dropped, not an error
  const intermediates = (options.intermediates ?? []).filter((c) => c instanceof X509Certificate && isWellFormed(c));
  options.crls?.forEach((c, i) => {
    if (!(c instanceof X509Crl) || !crlWellFormed(c)) throw new InputError(`CRL #${i + 1} is malformed`);
  });
  const purpose = options.purpose ?? 'device';
  if (!CERT_PURPOSES.includes(purpose)) throw new InputError(`unknown purpose "${String(purpose)}"`);
  const current = new Date();
  return {
    roots: options.roots,
    intermediates,
    crls: options.crls,
    at: date(options.at, 'the validation time', current),
    now: date(options.now, 'the CRL time', current),
    pins: new Set((options.pins ?? []).map(normalisePin)),
    purpose,
  };
}

function invalid(failure: Failure, chain: readonly X509Certificate[], status: VerifyResult['status'] = 'invalid'): VerifyResult {
  return { valid: false, status, reason: failure.reason, code: failure.code, chain: chain.map(summarize) };
}

/** A self-signed leaf that is not a root: trusted only if pinned, and then still checked for dates and purpose. */
function selfSignedLeaf(leaf: X509Certificate, input: Inputs): VerifyResult {
  if (!input.pins.has(sha256Hex(leaf))) return invalid({ code: 'SELF_SIGNED', reason: SELF_SIGNED_REASON }, [leaf], 'self-signed');
  const failure = checkExtensions(leaf) ?? checkValidity(leaf, input.at) ?? checkPurpose(leaf, input.purpose);
  if (failure) return invalid(failure, [leaf]);
  return { valid: true, status: 'pinned', chain: [summarize(leaf)] };
}

/** Validates `leaf` for `options.purpose` at `options.at`. Never throws for an invalid certificate. */
export async function verifyCertificate(leaf: X509Certificate, options: VerifyOptions): Promise<VerifyResult> {
  const input = readInputs(leaf, options);
  const builder = new PathBuilder(input.roots, [...input.roots, ...input.intermediates]);
  if (!builder.isRoot(leaf) && isSelfIssued(leaf) && (await builder.isSelfSigned(leaf))) return selfSignedLeaf(leaf, input);

  const search = await builder.build(leaf);
  let first: { failure: Failure; chain: readonly X509Certificate[] } | undefined;
  for (const chain of search.complete) {
    const failure = checkPath(chain, input.at, input.purpose);
    if (failure) {
      first ??= { failure, chain };
      continue;
    }
    if (input.crls === undefined) return { valid: true, status: 'valid', chain: chain.map(summarize) };
    const revocation = await checkRevocation(chain, input.crls, input.at, input.now);
    if (revocation.failure) {
      first ??= { failure: revocation.failure, chain };
      continue;
    }
    const c = revocation.compromise;
    return {
      valid: true,
      status: 'valid',
      chain: chain.map(summarize),
      ...(revocation.revokedLater !== undefined ? { revokedLater: iso(revocation.revokedLater) } : {}),
      ...(revocation.revokedLaterReason !== undefined ? { revokedLaterReason: revocation.revokedLaterReason } : {}),
      ...(c !== undefined ? { compromise: { time: iso(c.time), reason: c.reason, subject: c.subject } } : {}),
      ...(revocation.leafCrlThisUpdate !== undefined ? { crlThisUpdate: iso(revocation.leafCrlThisUpdate) } : {}),
    };
  }
  if (first) return invalid(first.failure, first.chain);
  return invalid(search.failure ?? { code: 'NO_ISSUER', reason: `unable to find issuer "${issuerOf(leaf)}"` }, search.partial.length > 0 ? search.partial : [leaf]);
}
