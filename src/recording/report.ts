/**
 * The report of `keyframe verify` over any evidence: an Annex-B stream, an MP4, a recording directory or an
 * evidence bundle. It holds the SEI layer's report (sessions, ranges to the frame) when the video could be read,
 * the fragment layer's (records over the stored bytes, checked without any key) for recordings and bundles, and
 * the bundle's own checks (exporter signature, manifest). The verdict is the worst of the layers.
 */
import { formatReport, type Trust, type Verdict, type VerificationReport } from '../signing/report.js';

export type EvidenceKind = 'annexb' | 'mp4' | 'recording' | 'bundle';

export interface RecordingProblem {
  readonly kind: string;
  readonly seq?: number;
  readonly start?: number;
  readonly end?: number;
  readonly detail: string;
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
  problems: RecordingProblem[];
}

export interface BundleReport {
  verdict: Verdict;
  exporter: { trust: Trust; trustReason?: string; chain: string[] };
  signatureValid: boolean;
  created?: string;
  reason?: string;
  requested?: { from?: string; to?: string };
  exported?: { from: string; to: string; firstSeq: number; lastSeq: number; note?: string };
  problems: string[];
}

export interface EvidenceReport extends VerificationReport {
  input: EvidenceKind;
  /** 'checked', or why the SEI layer could not be checked (an encrypted recording without its key). */
  videoLayer: string;
  /** The SEI layer's own verdict, when it was checked (`verdict` is the worst of all layers). */
  videoVerdict?: Verdict;
  fragmentLayer?: FragmentLayerReport;
  bundle?: BundleReport;
}

const RANK: Record<Verdict, number> = { AUTHENTIC: 0, AUTHENTIC_WITH_GAPS: 1, NOT_AUTHENTIC: 2, UNTRUSTED_SIGNER: 3, UNSIGNED: 4 };

export function worst(...verdicts: readonly Verdict[]): Verdict {
  return verdicts.reduce<Verdict>((w, v) => (RANK[v] > RANK[w] ? v : w), 'AUTHENTIC');
}

function sec(x: number): string {
  return `${x.toFixed(3)} s`;
}

export function formatEvidence(r: EvidenceReport): string {
  const lines: string[] = [`verdict: ${r.verdict}`, `input: ${r.input}`];
  const b = r.bundle;
  if (b !== undefined) {
    lines.push('', `evidence bundle: ${b.verdict}`);
    lines.push(`  exporter: ${b.exporter.trust}${b.exporter.trustReason !== undefined ? ` (${b.exporter.trustReason})` : ''}`);
    b.exporter.chain.forEach((c, k) => lines.push(`  ${k === 0 ? 'chain:' : '      '} ${c}`));
    lines.push(`  exporter signature: ${b.signatureValid ? 'valid' : 'INVALID'}`);
    if (b.created !== undefined) lines.push(`  exported at: ${b.created}`);
    if (b.reason !== undefined) lines.push(`  reason: ${b.reason}`);
    if (b.requested !== undefined) lines.push(`  requested: ${b.requested.from ?? 'start'} – ${b.requested.to ?? 'end'}`);
    if (b.exported !== undefined) {
      lines.push(`  exported: ${b.exported.from} – ${b.exported.to} (fragments ${b.exported.firstSeq}–${b.exported.lastSeq})`);
      if (b.exported.note !== undefined) lines.push(`  note: ${b.exported.note}`);
    }
    for (const p of b.problems) lines.push(`  problem: ${p}`);
  }
  const f = r.fragmentLayer;
  if (f !== undefined) {
    lines.push('', `fragment records (checked without any key): ${f.verdict}`);
    if (f.session !== undefined) lines.push(`  session: ${f.session}`);
    if (f.serial !== undefined) lines.push(`  camera serial: ${f.serial}`);
    if (f.start !== undefined) lines.push(`  recording start: ${f.start}`);
    if (f.scheme !== undefined) lines.push(`  encryption: ${f.scheme}${f.kid !== undefined && f.kid !== '' ? `, KID ${f.kid}` : ''}`);
    lines.push(`  signer: ${f.trust}${f.trustReason !== undefined ? ` (${f.trustReason})` : ''}`);
    f.chain.forEach((c, k) => lines.push(`  ${k === 0 ? 'chain:' : '      '} ${c}`));
    lines.push(`  ${f.fragments} fragments stored, ${f.records} records, ${f.authentic} authentic (${sec(f.coveredSeconds)})${f.excluded > 0 ? `, ${f.excluded} not exported` : ''}${f.endRecord ? ', signed end record' : ''}`);
    if (f.endMissingAfter !== undefined) lines.push(`  end missing after ${sec(f.endMissingAfter)}`);
    for (const p of f.problems) lines.push(`  ${p.kind.padEnd(12)} ${p.start !== undefined ? `${sec(p.start)} – ${sec(p.end ?? p.start)}  ` : ''}${p.detail}`);
  }
  if (r.videoLayer === 'checked') {
    // the SEI layer's own verdict on the heading line, then its report without its first line (the verdict)
    lines.push('', `video (signed SEIs): ${r.videoVerdict ?? r.verdict}`);
    lines.push(...formatReport(r).trimEnd().split('\n').slice(1).map((l) => (l === '' ? '' : `  ${l}`)));
  } else {
    lines.push('', `video (signed SEIs): ${r.videoLayer}`);
  }
  return `${lines.join('\n')}\n`;
}
