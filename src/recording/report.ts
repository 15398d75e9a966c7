/**
 * The report of `keyframe verify` over any evidence: an Annex-B stream, an MP4, a recording directory or an
 * evidence bundle. It holds the SEI layer's report (sessions, ranges to the frame) when the video could be read,
 * the fragment layer's (records over the stored bytes, checked without any key) for recordings and bundles, and
 * the bundle's own checks (exporter signature, manifest). The verdict is the worst of the layers.
 */
import { formatBounds, formatReport, VERDICT_RANK, type Trust, type Verdict, type VerificationReport } from '../signing/report.js';
import type { RevocationKnowledge } from '../signing/time.js';
import type { SessionBreak, SessionPart } from './sessions-bundle.js';
import type { TimeProof } from './timestamps.js';

export type EvidenceKind = 'annexb' | 'mp4' | 'recording' | 'bundle' | 'onvif-export' | 'onvif-set';

export interface RecordingProblem {
  readonly kind: string;
  readonly seq?: number;
  readonly start?: number;
  readonly end?: number;
  readonly detail: string;
}

/** A run of fragments with the same proven time bounds. */
export interface TimeRange {
  firstSeq: number;
  lastSeq: number;
  /** Media time, seconds from the session start. */
  start: number;
  end: number;
  /** What the camera claims (session start + media time). */
  claimedFrom: string;
  claimedTo: string;
  /** The signing certificate's notBefore. */
  notBefore: string;
  /** genTime plus accuracy of the earliest valid RFC 3161 token covering the run; null: only the claimed time. */
  notAfter: string | null;
  /** What notAfter rests on. */
  proof: string;
}

/** The fragment layer's times: what is claimed, what is proven, and what revocation was known. */
export interface FragmentTime {
  verifiedAt: string;
  maxSkewSeconds: number;
  claimed: { from: string; to: string };
  notBefore: string;
  /** A later revocation of the signer as compromised (material needs a token from before it). */
  compromise?: { time: string; reason: string; subject: string };
  revocation: RevocationKnowledge;
  /** Every line of timestamps.jsonl, judged. */
  tokens: TimeProof[];
  ranges: TimeRange[];
}

export interface FragmentLayerReport {
  verdict: Verdict;
  trust: Trust;
  trustReason?: string;
  serial?: string;
  session?: string;
  start?: string;
  scheme?: string;
  kid?: string;
  chain: string[];
  /** Fragments stored (or exported). */
  fragments: number;
  /** Fragment records. */
  records: number;
  authentic: number;
  /** Records whose fragments were deliberately not exported (a range export). */
  excluded: number;
  coveredSeconds: number;
  endRecord: boolean;
  endMissingAfter?: number;
  /** The camera's signed lost records: fragments its ring buffer overwrote before the NVR had them. */
  lost?: { of: string; from: number; to: number; start: number; end: number; reason: string }[];
  problems: RecordingProblem[];
  time?: FragmentTime;
}

export interface BundleReport {
  verdict: Verdict;
  /** Who exported: the certificate's subject and issuer, and whether it is trusted (under --exporter-root). */
  exporter: { trust: Trust; trustReason?: string; chain: string[]; subject?: string; issuer?: string };
  signatureValid: boolean;
  created?: string;
  reason?: string;
  requested?: { from?: string; to?: string };
  exported?: { from: string; to: string; firstSeq: number; lastSeq: number; note?: string };
  problems: string[];
  /** The export's own time: claimed (manifest.created) and proven (manifest.tst, the tokens it lists). */
  time?: {
    claimed: string;
    verifiedAt: string;
    notBefore: string;
    notAfter: string | null;
    proof: string;
    token?: { valid: boolean; reason?: string; genTime?: string; notAfter?: string; tsa?: string };
    compromise?: { time: string; reason: string; subject: string };
    revocation: RevocationKnowledge;
    /** Why the exporter's signature does not count (its key revoked as compromised, no earlier proof). */
    unproven?: string;
  };
}

export interface EvidenceReport extends VerificationReport {
  input: EvidenceKind;
  /** 'checked', or why the SEI layer could not be checked (an encrypted recording without its key). */
  videoLayer: string;
  /** The SEI layer's own verdict, when it was checked (`verdict` is the worst of all layers). */
  videoVerdict?: Verdict;
  fragmentLayer?: FragmentLayerReport;
  bundle?: BundleReport;
  /** An ONVIF export file: every signing instance (the exporter's first), the stated start, the exporting unit. */
  onvif?: OnvifReport;
  /** A bundle of several sessions of one camera (manifest v 2): each session's layers, and the breaks between them. */
  parts?: SessionPart[];
  breaks?: SessionBreak[];
  /** A directory of ONVIF export files, one per session: its files, the sessions they say the set holds, what is wrong with the set. */
  onvifSet?: { files: string[]; sessions: string[]; problems: string[] };
}

/** One signing instance (`sinf`) of an ONVIF export file, as checked. */
export interface SealReport {
  /** 1 for the exporter's seal, 2… for later signing instances (repeated signing). */
  index: number;
  algorithm: string;
  signatureValid: boolean;
  trust: Trust;
  trustReason?: string;
  subject?: string;
  issuer?: string;
  userInformation?: string;
  /** A (corrected) start time (`cstb`) this instance states. */
  startTime?: string;
  problems: string[];
}

export interface OnvifReport {
  seals: SealReport[];
  /** The capture's start the export states (cstb). */
  startTime?: string;
  /** The exporting unit, its operator and the sources (suep). */
  unit?: { name: string; operator: string; sources: string[] };
}

export function worst(...verdicts: readonly Verdict[]): Verdict {
  return verdicts.reduce<Verdict>((w, v) => (VERDICT_RANK[v] > VERDICT_RANK[w] ? v : w), 'AUTHENTIC');
}

function sec(x: number): string {
  return `${x.toFixed(3)} s`;
}

function formatFragmentLayer(f: FragmentLayerReport, lines: string[]): void {
    lines.push('', `fragment records (checked without any key): ${f.verdict}`);
    if (f.session !== undefined) lines.push(`  session: ${f.session}`);
    if (f.serial !== undefined) lines.push(`  camera serial: ${f.serial}`);
    if (f.start !== undefined) lines.push(`  recording start: ${f.start}`);
    if (f.scheme !== undefined) lines.push(`  encryption: ${f.scheme}${f.kid !== undefined && f.kid !== '' ? `, KID ${f.kid}` : ''}`);
    lines.push(`  signer: ${f.trust}${f.trustReason !== undefined ? ` (${f.trustReason})` : ''}`);
    f.chain.forEach((c, k) => lines.push(`  ${k === 0 ? 'chain:' : '      '} ${c}`));
    lines.push(`  ${f.fragments} fragments stored, ${f.records} records, ${f.authentic} authentic (${sec(f.coveredSeconds)})${f.excluded > 0 ? `, ${f.excluded} not exported` : ''}${f.endRecord ? ', signed end record' : ''}`);
    if (f.endMissingAfter !== undefined) lines.push(`  end missing after ${sec(f.endMissingAfter)}`);
    for (const l of f.lost ?? []) {
      lines.push(`  lost on the camera (buffer full): fragments ${l.from}–${l.to - 1} (${sec(l.start)} – ${sec(l.end)})${l.of !== f.session ? ` of session ${l.of}` : ''}, signed by the camera`);
    }
    const t = f.time;
    if (t !== undefined) {
      lines.push(`  claimed time: ${t.claimed.from} – ${t.claimed.to} (verified at ${t.verifiedAt}, skew allowed ${t.maxSkewSeconds} s)`);
      lines.push(`  revocation for the claimed time: ${t.revocation.note}`);
      if (t.compromise !== undefined) lines.push(`  signer revoked as compromised: "${t.compromise.subject}" at ${t.compromise.time} (${t.compromise.reason}): only what a time-stamp proves older counts`);
      for (const p of t.tokens) {
        const what = p.record < 0 ? 'no record of this recording' : (p.covers ?? `record ${p.record}`);
        lines.push(`  time-stamp ${p.line}: ${p.valid ? 'valid' : 'NOT VALID'}, over ${what}${p.genTime !== undefined ? `, genTime ${p.genTime}` : ''}${p.tsa !== undefined ? `, TSA ${p.tsa}` : ''}${p.reason !== undefined ? `: ${p.reason}` : ''}`);
      }
      for (const g of t.ranges) {
        lines.push(`  time ${sec(g.start)} – ${sec(g.end)} (fragments ${g.firstSeq}–${g.lastSeq}, claimed ${g.claimedFrom} – ${g.claimedTo}): ${formatBounds(g)}${g.notAfter !== null ? ` (${g.proof})` : ''}`);
      }
    }
    for (const p of f.problems) lines.push(`  ${p.kind.padEnd(12)} ${p.start !== undefined ? `${sec(p.start)} – ${sec(p.end ?? p.start)}  ` : ''}${p.detail}`);
  }

function formatVideo(videoLayer: string, verdict: Verdict, report: VerificationReport, lines: string[]): void {
  if (videoLayer === 'checked') {
    // the SEI layer's own verdict on the heading line, then its report without its first line (the verdict)
    lines.push('', `video (signed SEIs): ${verdict}`);
    lines.push(...formatReport(report).trimEnd().split('\n').slice(1).map((l) => (l === '' ? '' : `  ${l}`)));
  } else {
    lines.push('', `video (signed SEIs): ${videoLayer}`);
  }
}

export function formatEvidence(r: EvidenceReport): string {
  const lines: string[] = [`verdict: ${r.verdict}`, `input: ${r.input}`];
  const b = r.bundle;
  if (b !== undefined) {
    lines.push('', r.input === 'onvif-export' ? `ONVIF export file (sealed MP4): ${b.verdict}` : `evidence bundle: ${b.verdict}`);
    const o = r.onvif;
    if (o !== undefined) {
      if (o.unit !== undefined) lines.push(`  exporting unit: ${o.unit.name}, operator ${o.unit.operator === '' ? '(none)' : o.unit.operator}${o.unit.sources.length > 0 ? `; ${o.unit.sources.join('; ')}` : ''}`);
      if (o.startTime !== undefined) lines.push(`  capture start (cstb): ${o.startTime}`);
      for (const s of o.seals) {
        lines.push(`  seal ${s.index}${s.index === 1 ? " (the exporter's)" : ' (repeated signing)'}: ${s.signatureValid ? 'valid' : 'INVALID'}, ${s.algorithm}, by ${s.subject ?? '?'}: ${s.trust}${s.index > 1 && s.trustReason !== undefined ? ` (${s.trustReason})` : ''}`);
        if (s.userInformation !== undefined) lines.push(`    user information: ${s.userInformation}`);
        if (s.index > 1 && s.startTime !== undefined) lines.push(`    corrected start time: ${s.startTime}`);
      }
    }
    lines.push(`  exporter: ${b.exporter.subject ?? '?'} (issuer ${b.exporter.issuer ?? '?'}): ${b.exporter.trust}${b.exporter.trustReason !== undefined ? ` (${b.exporter.trustReason})` : ''}`);
    b.exporter.chain.forEach((c, k) => lines.push(`  ${k === 0 ? 'chain:' : '      '} ${c}`));
    lines.push(`  exporter signature${r.input === 'onvif-export' ? ' (seal 1)' : ''}: ${b.signatureValid ? 'valid' : 'INVALID'}`);
    if (b.created !== undefined) lines.push(`  exported at: ${b.created} (claimed)`);
    const bt = b.time;
    if (bt !== undefined) {
      lines.push(`  export time ${formatBounds(bt)}${bt.notAfter !== null ? ` (${bt.proof})` : ''}`);
      if (bt.token !== undefined && !bt.token.valid) lines.push(`  manifest time-stamp NOT VALID: ${bt.token.reason ?? '?'}`);
      lines.push(`  revocation of the exporter for the export time: ${bt.revocation.note}`);
      if (bt.unproven !== undefined) lines.push(`  UNPROVEN: ${bt.unproven}`);
    }
    if (b.reason !== undefined) lines.push(`  reason: ${b.reason}`);
    if (b.requested !== undefined) lines.push(`  requested: ${b.requested.from ?? 'start'} – ${b.requested.to ?? 'end'}`);
    if (b.exported !== undefined) {
      lines.push(`  exported: ${b.exported.from} – ${b.exported.to} (fragments ${b.exported.firstSeq}–${b.exported.lastSeq})`);
      if (b.exported.note !== undefined) lines.push(`  note: ${b.exported.note}`);
    }
    for (const p of b.problems) lines.push(`  problem: ${p}`);
  }
  const f = r.fragmentLayer;
  if (f !== undefined) formatFragmentLayer(f, lines);
  const set = r.onvifSet;
  if (set !== undefined) {
    lines.push('', `ONVIF export of ${set.sessions.length} sessions, one file each: ${set.files.join(', ')}`);
    for (const p of set.problems) lines.push(`  problem: ${p}`);
  }
  if (r.parts !== undefined) {
    lines.push('', `${r.parts.length} sessions of camera ${r.parts[0]?.fragmentLayer.serial ?? '?'}:`);
    const breaks = r.breaks ?? [];
    for (const [k, p] of r.parts.entries()) {
      lines.push('', `session ${k + 1} of ${r.parts.length} (${p.folder}): ${p.session}, exported ${p.exported.from} – ${p.exported.to} (fragments ${p.exported.firstSeq}–${p.exported.lastSeq})`);
      lines.push(`  ${p.existedBy !== undefined ? `existed by ${p.existedBy}: every exported fragment, proven by RFC 3161 time-stamps` : 'existed by: not proven for every exported fragment (only the claimed time where no time-stamp covers it)'}`);
      if (p.exported.note !== undefined) lines.push(`  note: ${p.exported.note}`);
      const seal = p.seal;
      if (seal !== undefined) {
        lines.push(`  ONVIF export file: ${seal.verdict}; sealed by ${seal.exporter.subject ?? '?'} (issuer ${seal.exporter.issuer ?? '?'}): ${seal.exporter.trust}, signature ${seal.signatureValid ? 'valid' : 'INVALID'}${seal.reason !== undefined ? `; reason: ${seal.reason}` : ''}`);
        for (const x of seal.problems) lines.push(`  problem: ${x}`);
      }
      formatFragmentLayer(p.fragmentLayer, lines);
      formatVideo(p.videoLayer, p.video?.verdict ?? p.fragmentLayer.verdict, p.video ?? { verdict: p.fragmentLayer.verdict, frames: 0, sessions: [] }, lines);
      const br = breaks[k];
      if (br !== undefined) lines.push('', br.text);
    }
  } else formatVideo(r.videoLayer, r.videoVerdict ?? r.verdict, r, lines);
  return `${lines.join('\n')}\n`;
}
