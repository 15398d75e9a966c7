/**
 * Checks on a path whose signatures already verify (leaf first, anchor last): critical extensions, validity
 * dates, CA constraints and path length (RFC 5280 §6.1.3–6.1.4), and the purpose of the leaf.
 */
import { BasicConstraintsExtension, ExtendedKeyUsageExtension, KeyUsageFlags, KeyUsagesExtension } from './x509.js';
import type { X509Certificate } from './x509.js';
import { EKU_CLIENT_AUTH, EKU_EVIDENCE_EXPORT, EKU_SERVER_AUTH, EKU_TIME_STAMPING, EKU_VIDEO_SIGNING } from './oids.js';
import { type Failure, isSelfIssued, iso, subjectOf } from './_certs.js';

/**
 * What a certificate is checked for. `timestamping` (an RFC 3161 TSA) and `evidence-export` (who signs an evidence
 * bundle) need their extended key usage to be present: a certificate without the extension is not unrestricted for
 * them, and a TSA certificate must carry id-kp-timeStamping as its only usage, critical (RFC 3161 §2.3).
 */
export type CertPurpose = 'device' | 'tls-server' | 'tls-client' | 'video-signing' | 'timestamping' | 'evidence-export' | 'any';

export const CERT_PURPOSES: readonly CertPurpose[] = ['device', 'tls-server', 'tls-client', 'video-signing', 'timestamping', 'evidence-export', 'any'];

/**
 * Extensions we process, or that need no processing to validate a path (so they may be critical). Anything else
 * that is critical makes the certificate invalid. Name constraints, policy constraints, policy mappings and
 * inhibitAnyPolicy are NOT implemented and therefore rejected when critical (fail closed).
 */
const KNOWN_EXTENSIONS: ReadonlySet<string> = new Set([
  '2.5.29.14', // subjectKeyIdentifier
  '2.5.29.15', // keyUsage
  '2.5.29.17', // subjectAltName
  '2.5.29.18', // issuerAltName
  '2.5.29.19', // basicConstraints
  '2.5.29.31', // cRLDistributionPoints
  '2.5.29.32', // certificatePolicies (any policy is accepted: no explicit policy is required)
  '2.5.29.35', // authorityKeyIdentifier
  '2.5.29.37', // extKeyUsage
  '1.3.6.1.5.5.7.1.1', // authorityInfoAccess
]);

const EKU_NAMES: Readonly<Record<string, string>> = {
  [EKU_SERVER_AUTH]: 'serverAuth',
  [EKU_CLIENT_AUTH]: 'clientAuth',
  [EKU_VIDEO_SIGNING]: `video-signing (${EKU_VIDEO_SIGNING})`,
  [EKU_EVIDENCE_EXPORT]: `evidence-export (${EKU_EVIDENCE_EXPORT})`,
  [EKU_TIME_STAMPING]: 'timeStamping',
};

/** Extended key usages that satisfy each purpose (any one of them). */
const PURPOSE_EKUS: Readonly<Record<Exclude<CertPurpose, 'any'>, readonly string[]>> = {
  device: [EKU_CLIENT_AUTH, EKU_SERVER_AUTH, EKU_VIDEO_SIGNING],
  'tls-server': [EKU_SERVER_AUTH],
  'tls-client': [EKU_CLIENT_AUTH],
  'video-signing': [EKU_VIDEO_SIGNING],
  timestamping: [EKU_TIME_STAMPING],
  'evidence-export': [EKU_EVIDENCE_EXPORT],
};

/** Purposes whose extended key usage must be present (no extension is not "unrestricted" for them). */
const EKU_REQUIRED: ReadonlySet<CertPurpose> = new Set<CertPurpose>(['timestamping', 'evidence-export']);

/**
 * The OID as @peculiar/x509 reports it after decoding. asn1js prints arcs above 2^53 as `{hex}` instead of decimal,
 * so our UUID-arc EKU (2.25.<128-bit>.1) decodes as `2.25.{…}.1`: compare against the library's own round trip
 * of the expected OID, never against the literal.
 */
const decodedOids = new Map<string, string>();
export function asDecoded(oid: string): string {
  let d = decodedOids.get(oid);
  if (d === undefined) {
    d = String(new ExtendedKeyUsageExtension(new ExtendedKeyUsageExtension([oid]).rawData).usages[0] ?? oid);
    decodedOids.set(oid, d);
  }
  return d;
}

function fail(code: string, reason: string): Failure {
  return { code, reason };
}

export function checkExtensions(cert: X509Certificate): Failure | undefined {
  const seen = new Set<string>();
  for (const ext of cert.extensions) {
    if (seen.has(ext.type)) return fail('INVALID_EXTENSION', `certificate "${subjectOf(cert)}" has the extension ${ext.type} twice`);
    seen.add(ext.type);
    if (ext.critical && !KNOWN_EXTENSIONS.has(ext.type)) {
      return fail('UNKNOWN_CRITICAL_EXTENSION', `certificate "${subjectOf(cert)}" has an unsupported critical extension ${ext.type}`);
    }
  }
  return undefined;
}

/** RFC 5280: valid from notBefore to notAfter inclusive. */
export function checkValidity(cert: X509Certificate, at: Date): Failure | undefined {
  const t = at.getTime();
  if (t < cert.notBefore.getTime()) return fail('NOT_YET_VALID', `certificate "${subjectOf(cert)}" is not valid before ${iso(cert.notBefore)}`);
  if (t > cert.notAfter.getTime()) return fail('EXPIRED', `certificate "${subjectOf(cert)}" expired at ${iso(cert.notAfter)}`);
  return undefined;
}

function isCa(cert: X509Certificate): boolean {
  return cert.getExtension(BasicConstraintsExtension)?.ca === true;
}

function hasKeyUsage(cert: X509Certificate, flag: KeyUsageFlags): boolean {
  const ku = cert.getExtension(KeyUsagesExtension);
  return ku === null || (ku.usages & flag) !== 0;
}

/** May `cert` sign CRLs? (keyUsage absent = unrestricted.) */
export function mayIssueCrls(cert: X509Certificate): boolean {
  return hasKeyUsage(cert, KeyUsageFlags.cRLSign);
}

/** Every issuer (index ≥ 1) must be a CA allowed to sign certificates, within its path length constraint. */
export function checkIssuers(chain: readonly X509Certificate[]): Failure | undefined {
  for (let i = 1; i < chain.length; i++) {
    const ca = chain[i] as X509Certificate;
    if (!isCa(ca)) return fail('NOT_A_CA', `issuer "${subjectOf(ca)}" is not a CA`);
    if (!hasKeyUsage(ca, KeyUsageFlags.keyCertSign)) return fail('KEY_USAGE', `issuer "${subjectOf(ca)}" lacks keyUsage keyCertSign`);
    const pathLen = ca.getExtension(BasicConstraintsExtension)?.pathLength;
    if (pathLen !== undefined) {
      // non-self-issued intermediates between this CA and the leaf (RFC 5280 §6.1.4 (l), (m))
      const below = chain.slice(1, i).filter((c) => !isSelfIssued(c)).length;
      if (below > pathLen) return fail('PATH_LENGTH', `path length constraint of "${subjectOf(ca)}" exceeded (${below} > ${pathLen})`);
    }
  }
  return undefined;
}

/** The leaf's key usage, extended key usage and CA flag against the purpose. */
export function checkPurpose(leaf: X509Certificate, purpose: CertPurpose): Failure | undefined {
  if (purpose === 'any') return undefined;
  if (isCa(leaf)) return fail('LEAF_IS_CA', `certificate "${subjectOf(leaf)}" is a CA certificate, not an end entity (purpose ${purpose})`);
  if (!hasKeyUsage(leaf, KeyUsageFlags.digitalSignature)) return fail('KEY_USAGE', 'missing keyUsage digitalSignature');
  const eku = leaf.getExtension(ExtendedKeyUsageExtension);
  const wanted = PURPOSE_EKUS[purpose];
  const named = wanted.map((o) => EKU_NAMES[o] ?? o).join(' or ');
  if (eku === null) {
    // no EKU extension: unrestricted (RFC 5280 §4.2.1.12), except for the purposes that name theirs
    return EKU_REQUIRED.has(purpose) ? fail('EXT_KEY_USAGE', `missing extended key usage ${named} (purpose ${purpose}: the extension is required)`) : undefined;
  }
  const have = new Set(eku.usages.map(String));
  if (!wanted.some((oid) => have.has(oid) || have.has(asDecoded(oid)))) {
    return fail('EXT_KEY_USAGE', `missing extended key usage ${named} (purpose ${purpose})`);
  }
  if (purpose === 'timestamping') {
    if (!eku.critical) return fail('EXT_KEY_USAGE', 'the extended key usage of a time-stamping certificate must be critical (RFC 3161 §2.3)');
    if (eku.usages.length !== 1) return fail('EXT_KEY_USAGE', 'a time-stamping certificate must have timeStamping as its only extended key usage (RFC 3161 §2.3)');
  }
  return undefined;
}

/** All non-cryptographic checks of a path, in a fixed order: extensions, dates, issuers, purpose. */
export function checkPath(chain: readonly X509Certificate[], at: Date, purpose: CertPurpose): Failure | undefined {
  for (const c of chain) {
    const f = checkExtensions(c);
    if (f) return f;
  }
  for (const c of chain) {
    const f = checkValidity(c, at);
    if (f) return f;
  }
  return checkIssuers(chain) ?? checkPurpose(chain[0] as X509Certificate, purpose);
}
