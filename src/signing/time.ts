/**
 * The time rules of verification (issue 10; docs/signed-video.md §6). A camera's clock is not evidence: the times
 * signed material claims are checked against what can be proven. Pure: times in, reasons out.
 *
 * - A claimed time after the verification time plus a stated skew (default 5 minutes) is false: not AUTHENTIC.
 * - A certificate must be valid at the claimed time (path validation at that time, elsewhere).
 * - A key revoked at R for a reason that means it may be in other hands (keyCompromise, cACompromise, aACompromise,
 *   unspecified or no reason) signs nothing trustworthy by itself, whatever time it claims: material is accepted
 *   only with a proof of existence before R — an RFC 3161 time-stamp token over it (or over a record chain that
 *   covers it) whose genTime plus accuracy is before R. Without one the verdict is UNPROVEN_TIME.
 * - Other revocation reasons keep "valid before R".
 *
 * Proven bounds of a range: "not before" is the signing certificate's notBefore (nothing signed can predate the
 * certificate that makes the signature mean anything, and nothing here proves a later start); "not after" is the
 * earliest token covering it, or none.
 */

/** Default tolerance for claimed times ahead of the verifier's clock. */
export const DEFAULT_MAX_SKEW_MS = 5 * 60_000;

export interface TimePolicy {
  /** The verification time, epoch ms. */
  readonly now: number;
  /** Accepted lead of a claimed time over `now`. */
  readonly maxSkewMs: number;
}

export function timePolicy(options: { readonly now?: Date; readonly maxSkewMs?: number }): TimePolicy {
  return { now: (options.now ?? new Date()).getTime(), maxSkewMs: options.maxSkewMs ?? DEFAULT_MAX_SKEW_MS };
}

function iso(ms: number): string {
  return new Date(ms).toISOString();
}

/** Why `claimedMs` is not acceptable (after the verification time plus the skew), or undefined. */
export function futureClaim(claimedMs: number, p: TimePolicy, what: string): string | undefined {
  if (claimedMs <= p.now + p.maxSkewMs) return undefined;
  return `${what} claims ${iso(claimedMs)}, after the verification time ${iso(p.now)} plus the allowed skew of ${p.maxSkewMs / 1000} s: a time that has not come cannot have been recorded`;
}

/** A revocation that puts a key's signatures in doubt, as established for a signer. */
export interface Compromise {
  /** Epoch ms. */
  readonly time: number;
  /** CRL reason name. */
  readonly reason: string;
  /** The revoked certificate's subject. */
  readonly subject: string;
}

/** Is material whose existence is proven by `provenBy` (epoch ms; undefined: no proof) safe from `c`? */
export function provenBefore(c: Compromise, provenBy: number | undefined): boolean {
  return provenBy !== undefined && provenBy < c.time;
}

/** Why `what` is not proven to predate the compromise. */
export function unprovenReason(c: Compromise, provenBy: number | undefined, what: string): string {
  const revoked = `"${c.subject}" was revoked at ${iso(c.time)} (${c.reason}), so its key may have signed this afterwards with any claimed time`;
  return provenBy === undefined
    ? `${revoked}; no RFC 3161 time-stamp proves ${what} existed before the revocation`
    : `${revoked}; the earliest RFC 3161 time-stamp over ${what} (existed by ${iso(provenBy)}) is not before the revocation`;
}

export interface RevocationKnowledge {
  /** Whether CRLs were given at all. */
  readonly checked: boolean;
  /** A CRL issued after the claimed time was used: a revocation before that time would be in it. */
  readonly known: boolean;
  /** thisUpdate of the newest CRL used for the signer. */
  readonly crlThisUpdate?: string;
  readonly note: string;
}

/** Whether revocation was known for the claimed time `claimedMs` (a CRL issued after it). */
export function revocationKnowledge(crlsGiven: boolean, crlThisUpdate: number | undefined, claimedMs: number): RevocationKnowledge {
  if (!crlsGiven) return { checked: false, known: false, note: 'not checked: no CRL given (--crl)' };
  if (crlThisUpdate === undefined) return { checked: true, known: false, note: 'no usable CRL for the signer' };
  const base = { checked: true, crlThisUpdate: iso(crlThisUpdate) };
  return crlThisUpdate > claimedMs
    ? { ...base, known: true, note: `known: the CRL of ${iso(crlThisUpdate)} was issued after the claimed time ${iso(claimedMs)}` }
    : { ...base, known: false, note: `not known for the claimed time ${iso(claimedMs)}: the newest CRL was issued before it (${iso(crlThisUpdate)})` };
}

/** Proven time bounds of a range: ISO times; notAfter null when nothing proves it. */
export interface TimeBounds {
  readonly notBefore: string;
  readonly notAfter: string | null;
}

export function bounds(notBeforeMs: number, provenBy: number | undefined): TimeBounds {
  return { notBefore: iso(notBeforeMs), notAfter: provenBy !== undefined ? iso(provenBy) : null };
}
