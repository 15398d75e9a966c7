/** The verification report (docs/signed-video.md §2): types, verdict rules and the human-readable form. */

/**
 * AUTHENTIC: everything present is as signed, by a trusted signer, at a time that holds. AUTHENTIC_WITH_GAPS: the
 * same, with signed material missing. UNPROVEN_TIME: the signatures verify, but the signer's key was revoked as
 * compromised and nothing proves the material existed before that (no RFC 3161 time-stamp from before the
 * revocation): it may have been signed afterwards with a false time. NOT_AUTHENTIC: altered, forged, not covered by
 * a valid signature, or claiming an impossible time. UNTRUSTED_SIGNER: the signer is not established. UNSIGNED.
 */
export type Verdict = 'AUTHENTIC' | 'AUTHENTIC_WITH_GAPS' | 'UNPROVEN_TIME' | 'NOT_AUTHENTIC' | 'UNSIGNED' | 'UNTRUSTED_SIGNER';

/**
 * authentic: present and as signed; missing: signed but absent; tampered: present but not as signed (modified,
 * inserted, reordered, replayed, spliced); unverified: present but covered by no valid signature (signature
 * SEI missing, stream cut, certificate not valid at recording time, a claimed time in the future); unproven: as
 * signed, but by a key revoked as compromised and not proven to predate the revocation.
 */
export type RangeStatus = 'authentic' | 'missing' | 'tampered' | 'unverified' | 'unproven' | 'excluded';

export interface ReportRange {
  status: RangeStatus;
  /** Seconds since the session start (signed times; estimated for frames no signature covers). */
  start: number;
  end: number;
  /** Frame indexes in the session (inclusive). */
  firstFrame: number;
  lastFrame: number;
  /** Frame positions in the input stream (inclusive), for frames that are present. */
  inputFirst?: number;
  inputLast?: number;
  reason?: string;
  /** Proven time bounds (when the verifier was given the recording's time proofs): certificate notBefore … */
  notBefore?: string;
  /** … and the earliest RFC 3161 time-stamp covering the range, or null. */
  notAfter?: string | null;
}

/** What the session's times rest on. */
export interface SessionTime {
  /** Claimed by the camera: the session start and the end of the last signed unit. */
  claimedFrom: string;
  claimedTo?: string;
  /** The signing certificate's notBefore: the earliest provable time. */
  notBefore: string;
  /** A later revocation of the signer as compromised: material needs a proof of existence before it. */
  compromise?: { time: string; reason: string; subject: string };
  /** Whether revocation was known for the claimed time (a CRL issued after it). */
  revocation: { checked: boolean; known: boolean; crlThisUpdate?: string; note: string };
}

export type Trust = 'trusted' | 'untrusted' | 'invalid' | 'none';

/**
 * What a session's signing covers: 'keyframe' — ONVIF Media Signing plus keyframe's extension SEI (session manifest,
 * counter, end marker, parameter sets, per-frame hashes); 'onvif' — ONVIF Media Signing alone (any conformant signer).
 */
export type SigningFormat = 'keyframe' | 'onvif';

/** The guarantees a session signed with ONVIF Media Signing alone does not give (docs/signed-video.md §2). */
export const ONVIF_ONLY_MISSING: readonly string[] = [
  'cut end not detectable (no signed end marker: frames after the last signature are a dangling end)',
  'parameter-set swap not detectable (ONVIF does not hash SPS/PPS)',
  'other SEIs not covered (ONVIF hashes slices only)',
  'no session manifest: replay across sessions and a cut start not detectable',
  'no persisted counter across sessions',
];

export interface SessionReport {
  verdict: Verdict;
  /** What the signing covers; absent for a session without any signature. */
  format?: SigningFormat;
  /** Guarantees this session's signing does not give (an ONVIF-only session; localisation only to the GOP in low-bitrate mode). */
  missingGuarantees?: string[];
  /** The ONVIF layer's own check in a keyframe session: what an ONVIF validator would find. */
  onvif?: { gops: number; valid: number; invalid: number; problems: string[] };
  /** trusted: chain valid to a given root; untrusted: identity not established; invalid: certificate not valid when recorded or manifest bad; none: no signature. */
  trust: Trust;
  trustReason?: string;
  session?: string;
  serial?: string;
  /** Subjects, leaf first. */
  chain: string[];
  start?: string;
  counterStart?: number;
  units: number;
  frames: number;
  endMarker: boolean;
  /** Seconds: the end of the last authenticated unit when the session has no signed end marker. */
  endMissingAfter?: number;
  /** A range export that ends before the session did: the end marker is outside the export, not missing. */
  endExcluded?: boolean;
  /** For a session with a certificate: claimed times, proven bounds and revocation knowledge. */
  time?: SessionTime;
  ranges: ReportRange[];
}

export interface VerificationReport {
  verdict: Verdict;
  /** Frames (access units with picture data) in the input. */
  frames: number;
  sessions: SessionReport[];
}

/** Verdicts from best to worst. */
export const VERDICT_RANK: Readonly<Record<Verdict, number>> = { AUTHENTIC: 0, AUTHENTIC_WITH_GAPS: 1, UNPROVEN_TIME: 2, NOT_AUTHENTIC: 3, UNTRUSTED_SIGNER: 4, UNSIGNED: 5 };

/**
 * A session's verdict, from what its ranges say. UNSIGNED only when nothing in it is signed nor claims to be: a
 * session without a certificate SEI or any unit SEI whose ranges are all unverified. Signing SEIs that are there
 * but malformed are tampered ranges: the stream claims to be signed and is not verifiable, so NOT_AUTHENTIC.
 */
export function sessionVerdict(s: Omit<SessionReport, 'verdict'>): Verdict {
  if (s.trust === 'none' && s.units > 0) return 'UNTRUSTED_SIGNER';
  if (s.trust === 'none') return s.ranges.every((r) => r.status === 'unverified' || r.status === 'excluded') ? 'UNSIGNED' : 'NOT_AUTHENTIC';
  if (s.trust === 'untrusted') return 'UNTRUSTED_SIGNER';
  if (s.trust === 'invalid') return 'NOT_AUTHENTIC';
  if (s.ranges.some((r) => r.status === 'tampered' || r.status === 'unverified')) return 'NOT_AUTHENTIC';
  if (s.ranges.some((r) => r.status === 'unproven')) return 'UNPROVEN_TIME';
  if (s.ranges.some((r) => r.status === 'missing') || (!s.endMarker && s.endExcluded !== true && s.format !== 'onvif')) return 'AUTHENTIC_WITH_GAPS';
  return s.ranges.some((r) => r.status === 'authentic') ? 'AUTHENTIC' : 'NOT_AUTHENTIC';
}

/** "not before X, not after Y" (or "no proof"). */
export function formatBounds(b: { readonly notBefore?: string; readonly notAfter?: string | null }): string {
  return `proven: not before ${b.notBefore ?? '?'}, not after ${b.notAfter ?? 'unproven (no RFC 3161 time-stamp: only the claimed time)'}`;
}

/**
 * The stream's verdict: UNSIGNED when no session is signed; otherwise the worst session, where unsigned frames
 * next to signed sessions make it NOT_AUTHENTIC.
 */
export function overallVerdict(sessions: readonly SessionReport[]): Verdict {
  if (sessions.length === 0 || sessions.every((s) => s.verdict === 'UNSIGNED')) return 'UNSIGNED';
  let worst: Verdict = 'AUTHENTIC';
  for (const s of sessions) {
    const v = s.verdict === 'UNSIGNED' ? 'NOT_AUTHENTIC' : s.verdict;
    if (VERDICT_RANK[v] > VERDICT_RANK[worst]) worst = v;
  }
  return worst;
}

function sec(x: number): string {
  return `${x.toFixed(3)} s`;
}

export function formatReport(r: VerificationReport): string {
  const lines: string[] = [`verdict: ${r.verdict}`, `frames in the input: ${r.frames}`];
  r.sessions.forEach((s, i) => {
    lines.push('');
    lines.push(`session ${i + 1}${s.session !== undefined ? ` ${s.session}` : s.format === 'onvif' ? ' (ONVIF)' : ' (no certificate SEI)'}: ${s.verdict}`);
    if (s.serial !== undefined) lines.push(`  camera serial: ${s.serial}`);
    if (s.start !== undefined) lines.push(`  recording start: ${s.start}${s.counterStart !== undefined ? `, counter from ${s.counterStart}` : ''}`);
    lines.push(`  signer: ${s.trust}${s.trustReason !== undefined ? ` (${s.trustReason})` : ''}`);
    if (s.format !== undefined) lines.push(`  format: ${s.format === 'keyframe' ? 'ONVIF Media Signing + keyframe extension' : 'ONVIF Media Signing only'}`);
    for (const m of s.missingGuarantees ?? []) lines.push(`  not guaranteed: ${m}`);
    if (s.onvif !== undefined) {
      lines.push(`  ONVIF layer: ${s.onvif.valid} of ${s.onvif.gops} signed GOPs complete and valid${s.onvif.invalid > 0 ? `, ${s.onvif.invalid} not` : ''}`);
      for (const p of s.onvif.problems) lines.push(`    ${p}`);
    }
    s.chain.forEach((c, k) => lines.push(`  ${k === 0 ? 'chain:' : '      '} ${c}`));
    lines.push(`  ${s.units} signed units, ${s.frames} frames${s.endMarker ? ', signed end marker' : ''}`);
    const t = s.time;
    if (t !== undefined) {
      lines.push(`  claimed time: ${t.claimedFrom} – ${t.claimedTo ?? '?'}; signing certificate valid from ${t.notBefore}`);
      lines.push(`  revocation for the claimed time: ${t.revocation.note}`);
      if (t.compromise !== undefined) lines.push(`  signer revoked as compromised: "${t.compromise.subject}" at ${t.compromise.time} (${t.compromise.reason})`);
    }
    if (s.endExcluded === true) lines.push(`  the export ends before the session did (end marker not exported)`);
    else if (s.endMissingAfter !== undefined) lines.push(`  end missing after ${sec(s.endMissingAfter)}`);
    for (const g of s.ranges) {
      const input = g.inputFirst !== undefined ? `, input frames ${g.inputFirst}–${g.inputLast ?? g.inputFirst}` : '';
      lines.push(
        `  ${g.status.padEnd(10)} ${sec(g.start)} – ${sec(g.end)}  frames ${g.firstFrame}–${g.lastFrame}${input}${g.reason !== undefined ? `: ${g.reason}` : ''}`,
      );
      if (g.notBefore !== undefined) lines.push(`             ${formatBounds(g)}`);
    }
  });
  return `${lines.join('\n')}\n`;
}
