/**
 * Revocation checking against CRLs, for a path whose signatures already verify.
 *
 * - The leaf needs a CRL from its issuer (like `openssl verify -crl_check`); certificates higher up are checked
 *   when a CRL from their issuer is present (like `-crl_check_all`, but without requiring one).
 * - "From its issuer" means: the CRL's issuer name matches AND its signature verifies with the issuer's key. A
 *   CRL with the right name and another key is never used.
 * - A usable CRL must be current at `now`: thisUpdate ≤ now ≤ nextUpdate (fail closed).
 * - Time semantics (deliberate): a certificate revoked at R is invalid for validation times `at` ≥ R, and still
 *   valid for `at` < R, so recordings signed before a revocation keep verifying; the caller is told `revokedLater`.
 *   If the CRL entry carries an invalidityDate earlier than R (the key is suspected compromised since then), that
 *   earlier time counts instead.
 * - A later revocation for a reason that says the key may be in other hands — keyCompromise, cACompromise,
 *   aACompromise, unspecified or no reason — is reported apart (`compromise`): whoever holds the key can sign
 *   material claiming any earlier time, so material before it counts only with a proof of existence before it (an
 *   RFC 3161 time-stamp). Other reasons (superseded, cessationOfOperation, affiliationChanged, privilegeWithdrawn,
 *   certificateHold) keep "valid before R".
 */
import { X509CrlReason } from './x509.js';
import type { X509Certificate, X509Crl, X509CrlEntry } from './x509.js';
import { crlSignatureVerifies, type Failure, iso, issuerOf, namesEqual, subjectOf } from './_certs.js';
import { mayIssueCrls } from './_checks.js';

/** CRL extensions we understand; a CRL with any other critical extension (delta CRL, partitioned CRL) is unusable. */
const KNOWN_CRL_EXTENSIONS: ReadonlySet<string> = new Set(['2.5.29.20' /* cRLNumber */, '2.5.29.35' /* authorityKeyIdentifier */]);

/** A later revocation that puts the key's signatures in doubt (see the module comment). */
export interface Compromise {
  readonly time: Date;
  /** CRL reason name, e.g. keyCompromise or unspecified. */
  readonly reason: string;
  /** The revoked certificate's subject (the leaf, or a CA of the path). */
  readonly subject: string;
}

export interface RevocationOutcome {
  readonly failure?: Failure;
  /** Earliest revocation time after `at` anywhere in the path. */
  readonly revokedLater?: Date;
  /** Reason of that revocation (CRL reason name). */
  readonly revokedLaterReason?: string;
  /** Earliest revocation after `at` whose reason says the key may be compromised. */
  readonly compromise?: Compromise;
  /** thisUpdate of the newest usable CRL from the leaf's issuer: revocation is known up to then. */
  readonly leafCrlThisUpdate?: Date;
}

/** CRL reasons that say a key may be in other hands: no reason, unspecified, keyCompromise, cACompromise, aACompromise. */
export function isCompromiseReason(reason: X509CrlReason | undefined): boolean {
  return (
    reason === undefined ||
    reason === X509CrlReason.unspecified ||
    reason === X509CrlReason.keyCompromise ||
    reason === X509CrlReason.cACompromise ||
    reason === X509CrlReason.aACompromise
  );
}

function hasUnknownCriticalExtension(crl: X509Crl): boolean {
  try {
    return crl.extensions.some((e) => e.critical && !KNOWN_CRL_EXTENSIONS.has(e.type));
  } catch {
    return true;
  }
}

function isCurrent(crl: X509Crl, now: Date): boolean {
  const t = now.getTime();
  const next = crl.nextUpdate;
  return crl.thisUpdate.getTime() <= t && (next === undefined || next.getTime() >= t);
}

function staleReason(crl: X509Crl, now: Date): string {
  if (crl.thisUpdate.getTime() > now.getTime()) return `CRL from "${issuerOf(crl)}" is not yet valid (thisUpdate ${iso(crl.thisUpdate)})`;
  return `CRL from "${issuerOf(crl)}" expired at ${iso(crl.nextUpdate ?? crl.thisUpdate)}`;
}

function reasonName(entry: X509CrlEntry): string {
  const r = entry.reason;
  return r === undefined ? 'unspecified' : (X509CrlReason[r] ?? `reason ${r}`);
}

/** When the entry makes the certificate invalid: the revocation date, or an earlier invalidity date. */
function effectiveTime(entry: X509CrlEntry): Date {
  const inv = entry.invalidity;
  return inv !== undefined && inv.getTime() < entry.revocationDate.getTime() ? inv : entry.revocationDate;
}

interface Revocation {
  readonly time: Date;
  readonly entry: X509CrlEntry;
}

/** The earliest revocation of `cert` in the usable CRLs. A hold counts only in the newest CRL. */
function findRevocation(cert: X509Certificate, crls: readonly X509Crl[]): Revocation | undefined {
  const newest = crls.reduce((a, b) => (b.thisUpdate.getTime() > a.thisUpdate.getTime() ? b : a));
  let found: Revocation | undefined;
  for (const crl of crls) {
    const entry = crl.findRevoked(cert);
    if (entry === null || entry.reason === X509CrlReason.removeFromCRL) continue;
    if (entry.reason === X509CrlReason.certificateHold && crl !== newest) continue;
    const time = effectiveTime(entry);
    if (found === undefined || time.getTime() < found.time.getTime()) found = { time, entry };
  }
  return found;
}

async function crlsFrom(issuer: X509Certificate, crls: readonly X509Crl[]): Promise<{ named: X509Crl[]; verified: X509Crl[] }> {
  const named = crls.filter((c) => namesEqual(c.issuerName, issuer.subjectName));
  const verified: X509Crl[] = [];
  for (const c of named) if (await crlSignatureVerifies(c, issuer)) verified.push(c);
  return { named, verified };
}

/** Checks every certificate of the path below the anchor. */
export async function checkRevocation(chain: readonly X509Certificate[], crls: readonly X509Crl[], at: Date, now: Date): Promise<RevocationOutcome> {
  let revokedLater: Date | undefined;
  let revokedLaterReason: string | undefined;
  let compromise: Compromise | undefined;
  let leafCrlThisUpdate: Date | undefined;
  for (let i = 0; i + 1 < chain.length; i++) {
    const cert = chain[i] as X509Certificate;
    const issuer = chain[i + 1] as X509Certificate;
    const required = i === 0;
    const { named, verified } = await crlsFrom(issuer, crls);
    if (verified.length === 0) {
      // for certificates above the leaf a CRL is optional, and one signed by another key is no CRL at all
      if (!required) continue;
      if (named.length === 0) return { failure: { code: 'CRL_MISSING', reason: `no CRL from issuer "${subjectOf(issuer)}"` } };
      return { failure: { code: 'CRL_BAD_SIGNATURE', reason: `CRL signature does not verify with the key of issuer "${subjectOf(issuer)}"` } };
    }
    if (!mayIssueCrls(issuer)) return { failure: { code: 'KEY_USAGE', reason: `issuer "${subjectOf(issuer)}" lacks keyUsage cRLSign` } };
    const usable = verified.filter((c) => !hasUnknownCriticalExtension(c));
    if (usable.length === 0) {
      return { failure: { code: 'UNKNOWN_CRITICAL_EXTENSION', reason: `CRL from "${subjectOf(issuer)}" has an unsupported critical extension` } };
    }
    if (!usable.some((c) => isCurrent(c, now))) {
      const latest = usable.reduce((a, b) => (b.thisUpdate.getTime() > a.thisUpdate.getTime() ? b : a));
      return { failure: { code: 'CRL_EXPIRED', reason: staleReason(latest, now) } };
    }
    if (required) leafCrlThisUpdate = usable.reduce((a, b) => (b.thisUpdate.getTime() > a.thisUpdate.getTime() ? b : a)).thisUpdate;
    const revoked = findRevocation(cert, usable);
    if (revoked === undefined) continue;
    if (at.getTime() >= revoked.time.getTime()) {
      const since = revoked.time.getTime() === revoked.entry.revocationDate.getTime() ? '' : `, invalid since ${iso(revoked.time)}`;
      return {
        failure: {
          code: 'REVOKED',
          reason: `certificate "${subjectOf(cert)}" revoked at ${iso(revoked.entry.revocationDate)} (${reasonName(revoked.entry)}${since})`,
        },
      };
    }
    if (revokedLater === undefined || revoked.time.getTime() < revokedLater.getTime()) {
      revokedLater = revoked.time;
      revokedLaterReason = reasonName(revoked.entry);
    }
    if (isCompromiseReason(revoked.entry.reason) && (compromise === undefined || revoked.time.getTime() < compromise.time.getTime())) {
      compromise = { time: revoked.time, reason: reasonName(revoked.entry), subject: subjectOf(cert) };
    }
  }
  return {
    ...(revokedLater !== undefined ? { revokedLater } : {}),
    ...(revokedLaterReason !== undefined ? { revokedLaterReason } : {}),
    ...(compromise !== undefined ? { compromise } : {}),
    ...(leafCrlThisUpdate !== undefined ? { leafCrlThisUpdate } : {}),
  };
}
