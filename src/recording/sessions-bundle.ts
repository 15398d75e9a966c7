/**
 * Evidence bundles of several sessions of one camera (issue 12: an export from the NVR's store of a camera and a
 * time range, across sessions). The single-session bundle (bundle.ts, manifest v 1, one `recording/` folder) is
 * unchanged and still written when a range falls in one session; a range across sessions is manifest v 2:
 *
 *   exporter.pem, manifest.json, manifest.sig, manifest.tst   as in v 1
 *   session-01/…, session-02/…   one folder per session, in start order, each exactly what `recording/` holds in v 1
 *                                (chain.pem, init.mp4, records.jsonl, timestamps.jsonl, NNNNNN.m4s, session.sei)
 *
 *   manifest.json   v 2, format "keyframe-evidence-bundle", created, exporter, reason, camera, requested,
 *                   exported {from, to}, sessions [{folder, source {serial, session, start, scheme, kid},
 *                   exported {from, to, firstSeq, lastSeq, note?}}], files (every file of every folder)
 *
 * Verification checks the exporter, the signature and the files as for v 1, then each session as v 1 checks its
 * recording (fragment records without a key, tokens, the video layer with a key), and names the time between one
 * session's last exported fragment and the next one's first as a session break: the camera was not recording
 * (restarted, powered off), which no record of either session covers — it is reported, not counted as missing.
 */
import { ErrorCodes, InputError, KeyframeError } from '../errors.js';
import { splitAnnexB } from '../media/h264/index.js';
import { issuerOf } from '../pki/_certs.js';
import { subjectOf } from '../pki/verify.js';
import { overallVerdict, sessionVerdict, type Verdict, type VerificationReport } from '../signing/report.js';
import type { TimeStampInfo } from '../tsp/token.js';
import { SESSION_SEI_FILE, addPlannedRecording, excludeOutside, writeSignedBundle, type BundleVerifyOptions, type ExportOptions } from './bundle.js';
import type { RecordingFiles } from './files.js';
import { planExport, type ExportPlan, type ExportedRange } from './range.js';
import { worst, type BundleReport, type FragmentLayerReport } from './report.js';
import { provenByFromReport, verifyFragmentLayer, verifyVideoLayer } from './verify.js';

export interface SessionSource {
  readonly serial: string;
  readonly session: string;
  readonly start: string;
  readonly scheme: string;
  readonly kid: string;
}

export interface SessionsManifest {
  readonly v: 2;
  readonly format: 'keyframe-evidence-bundle';
  readonly created: string;
  readonly exporter: { readonly name: string; readonly subject: string; readonly issuer: string };
  readonly reason: string;
  readonly camera: string;
  readonly requested: { readonly from?: string; readonly to?: string };
  readonly exported: { readonly from: string; readonly to: string };
  readonly sessions: readonly { readonly folder: string; readonly source: SessionSource; readonly exported: ExportedRange }[];
  readonly files: readonly { readonly name: string; readonly size: number; readonly sha256: string }[];
}

export const sessionFolder = (i: number): string => `session-${String(i + 1).padStart(2, '0')}`;

export interface SessionsExportOptions extends Omit<ExportOptions, 'recording'> {
  /** Recording directories of one camera's sessions, in start order. */
  readonly recordings: readonly string[];
}

/** Writes a v 2 bundle of the sessions' parts in [from, to). */
export async function exportSessionsBundle(options: SessionsExportOptions): Promise<{ manifest: SessionsManifest; timestamp?: TimeStampInfo }> {
  const exporterLeaf = options.exporter.chain[0];
  if (exporterLeaf === undefined) throw new KeyframeError(ErrorCodes.NOT_FOUND, `exporter ${options.exporter.config.name} has no certificate (chain.pem)`);
  if (options.recordings.length < 2) throw new InputError('a bundle of several sessions needs at least two');
  const plans: ExportPlan[] = [];
  try {
    // the range's start bounds the first session only, its end the last one: a session in between is exported whole
    const n = options.recordings.length;
    for (const [i, recording] of options.recordings.entries()) {
      const { from, to, ...rest } = options;
      plans.push(await planExport({ ...rest, recording, ...(i === 0 && from !== undefined ? { from } : {}), ...(i === n - 1 && to !== undefined ? { to } : {}) }));
    }
    const serials = new Set(plans.map((p) => p.session.serial));
    if (serials.size !== 1) throw new InputError(`the sessions are of several cameras (${[...serials].join(', ')}): a bundle holds one camera`);
    const created = options.now ?? new Date();
    const first = plans[0] as ExportPlan;
    const last = plans[plans.length - 1] as ExportPlan;
    return await writeSignedBundle(
      { out: options.out, exporter: options.exporter, created, ...(options.stamper !== undefined ? { stamper: options.stamper } : {}) },
      async (add) => {
        for (const [i, plan] of plans.entries()) await addPlannedRecording(add, plan, sessionFolder(i));
      },
      (files): SessionsManifest => ({
        v: 2,
        format: 'keyframe-evidence-bundle',
        created: created.toISOString(),
        exporter: { name: options.exporter.config.name, subject: subjectOf(exporterLeaf), issuer: issuerOf(exporterLeaf) },
        reason: options.reason,
        camera: first.session.serial,
        requested: { ...(options.from !== undefined ? { from: options.from.toISOString() } : {}), ...(options.to !== undefined ? { to: options.to.toISOString() } : {}) },
        exported: { from: first.exported.from, to: last.exported.to },
        sessions: plans.map((p, i) => ({ folder: sessionFolder(i), source: { serial: p.session.serial, session: p.session.session, start: p.session.start, scheme: p.session.scheme, kid: p.session.kid }, exported: p.exported })),
        files,
      }),
    );
  } finally {
    for (const p of plans) await p.files.close();
  }
}

/** Whether a parsed manifest is a well-formed v 2 one (what verifyBundle checks before trusting its fields). */
export function isSessionsManifest(m: unknown): m is SessionsManifest {
  const o = m as Partial<SessionsManifest>;
  const range = (x: unknown): boolean => {
    const r = x as Partial<ExportedRange>;
    return typeof x === 'object' && x !== null && typeof r.from === 'string' && typeof r.to === 'string' && Number.isSafeInteger(r.firstSeq) && Number.isSafeInteger(r.lastSeq);
  };
  return (
    typeof m === 'object' &&
    m !== null &&
    o.v === 2 &&
    o.format === 'keyframe-evidence-bundle' &&
    typeof o.created === 'string' &&
    typeof o.reason === 'string' &&
    typeof o.camera === 'string' &&
    typeof o.exported === 'object' &&
    Array.isArray(o.sessions) &&
    o.sessions.length > 0 &&
    (o.sessions as unknown[]).every((x) => {
      const s = x as Partial<SessionsManifest['sessions'][number]>;
      return typeof x === 'object' && x !== null && typeof s.folder === 'string' && /^session-\d{2,}$/.test(s.folder) && typeof s.source === 'object' && typeof s.source.start === 'string' && typeof s.source.session === 'string' && range(s.exported);
    }) &&
    Array.isArray(o.files) &&
    (o.files as unknown[]).every((f) => {
      const x = f as Record<string, unknown>;
      return typeof f === 'object' && f !== null && typeof x['name'] === 'string' && Number.isSafeInteger(x['size']) && typeof x['sha256'] === 'string';
    })
  );
}

/** One session of a v 2 bundle, as verified. */
export interface SessionPart {
  readonly folder: string;
  readonly session: string;
  readonly exported: ExportedRange;
  readonly fragmentLayer: FragmentLayerReport;
  readonly videoLayer: string;
  readonly video?: VerificationReport;
  /** The latest "not after" of the exported fragments: all of them existed by then (undefined: some unproven). */
  readonly existedBy?: string;
  /** A part that is an ONVIF export file of its own (a directory of them): its seal, as checked. */
  readonly seal?: BundleReport;
}

export interface SessionBreak {
  readonly after: string;
  readonly before: string;
  readonly from: string;
  readonly to: string;
  readonly seconds: number;
  readonly text: string;
}

/** Verifies every session folder of a v 2 bundle; the caller has checked the exporter, signature and files. */
export async function verifySessionParts(tar: { sub(folder: string): RecordingFiles }, manifest: SessionsManifest, options: BundleVerifyOptions, problems: string[]): Promise<{ parts: SessionPart[]; breaks: SessionBreak[]; verdict: Verdict }> {
  const parts: SessionPart[] = [];
  const tsaRoots = options.tsaRoots ?? options.exporterRoots;
  let verdict: Verdict = 'AUTHENTIC';
  const worse = (v: Verdict): void => {
    verdict = worst(verdict, v);
  };
  for (const s of manifest.sessions) {
    const files = tar.sub(s.folder);
    const { firstSeq, lastSeq } = s.exported;
    const fragmentLayer = await verifyFragmentLayer(files, { ...options, expected: (seq) => seq >= firstSeq && seq <= lastSeq, ...(tsaRoots !== undefined ? { tsaRoots } : {}) });
    worse(fragmentLayer.verdict);
    if (fragmentLayer.serial !== undefined && fragmentLayer.serial !== manifest.camera) problems.push(`${s.folder} is a session of ${fragmentLayer.serial}, not of the camera the manifest names (${manifest.camera})`);
    if (fragmentLayer.session !== undefined && fragmentLayer.session !== s.source.session) problems.push(`${s.folder} holds session ${fragmentLayer.session}, not ${s.source.session} as the manifest says`);
    const ranges = fragmentLayer.time?.ranges ?? [];
    const proven = ranges.length > 0 && ranges.every((r) => r.notAfter !== null) ? ranges.map((r) => r.notAfter as string).sort().at(-1) : undefined;
    const readable = fragmentLayer.scheme === 'none' || options.keys !== undefined;
    let video: VerificationReport | undefined;
    if (readable) {
      const provenBy = provenByFromReport(fragmentLayer);
      video = await verifyVideoLayer(files, {
        ...options,
        ...(options.keys !== undefined ? { keys: options.keys } : {}),
        ...(provenBy !== undefined ? { provenBy } : {}),
        before: files.has(SESSION_SEI_FILE) ? splitAnnexB(await files.read(SESSION_SEI_FILE)) : [],
      });
      if (fragmentLayer.excluded > 0) {
        const startMs = Date.parse(fragmentLayer.start ?? s.source.start);
        const endExported = fragmentLayer.endRecord && lastSeq === fragmentLayer.records - 1;
        for (const vs of video.sessions) {
          excludeOutside(vs, (Date.parse(s.exported.from) - startMs) / 1000, (Date.parse(s.exported.to) - startMs) / 1000, endExported);
          vs.verdict = sessionVerdict(vs);
        }
        video.verdict = overallVerdict(video.sessions);
      }
      worse(video.verdict);
    }
    parts.push({
      folder: s.folder,
      session: s.source.session,
      exported: s.exported,
      fragmentLayer,
      videoLayer: readable ? 'checked' : 'not checked: the video is encrypted and no key was given (--key)',
      ...(video !== undefined ? { video } : {}),
      ...(proven !== undefined ? { existedBy: proven } : {}),
    });
  }
  return { parts, breaks: sessionBreaks(parts, problems), verdict };
}

/**
 * The breaks between consecutive exported sessions of one camera (the camera was not recording: no record covers
 * the time between); an overlap of two sessions is a problem.
 */
export function sessionBreaks(parts: readonly SessionPart[], problems: string[]): SessionBreak[] {
  const breaks: SessionBreak[] = [];
  for (let i = 1; i < parts.length; i++) {
    const a = parts[i - 1] as SessionPart;
    const b = parts[i] as SessionPart;
    const seconds = (Date.parse(b.exported.from) - Date.parse(a.exported.to)) / 1000;
    const ended = a.fragmentLayer.endRecord && a.exported.lastSeq === a.fragmentLayer.records - 1;
    if (seconds < 0) problems.push(`session ${b.session} (${b.folder}) claims to start at ${b.exported.from}, before session ${a.session} ends (${a.exported.to}): two sessions of one camera overlap`);
    breaks.push({
      after: a.session,
      before: b.session,
      from: a.exported.to,
      to: b.exported.from,
      seconds,
      text: `session break ${a.exported.to} – ${b.exported.from} (${seconds.toFixed(3)} s, claimed times): session ${a.session} ${ended ? 'ended (signed end record)' : 'has no end record in the export'}, session ${b.session} started; no record covers the time between`,
    });
  }
  return breaks;
}
