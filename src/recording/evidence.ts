/**
 * `keyframe verify` over any evidence: the kind is recognised from the path (a recording directory, a ustar
 * evidence bundle, an MP4, an Annex-B stream), every layer that applies is checked, and the verdict is the worst
 * of them. Streaming with bounded memory: NAL units and samples are read one at a time; fragments one at a time.
 */
import { createReadStream } from 'node:fs';
import { open, readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { ErrorCodes, KeyframeError, MediaError, errnoCode } from '../errors.js';
import { AnnexBSplitter } from '../media/h264/index.js';
import { fileSource } from '../media/mp4/index.js';
import type { KeySet } from '../packager/decrypt.js';
import { StreamVerifier, type VerifierOptions } from '../signing/verifier.js';
import type { VerificationReport } from '../signing/report.js';
import { readFailure } from '../util/fs.js';
import { verifyBundle } from './bundle.js';
import { isOnvifExport } from './onvif-layout.js';
import { verifyOnvifExport } from './onvif-verify.js';
import { openRecordingDir } from './files.js';
import { RECORDS_FILE } from './layout.js';
import { worst, type EvidenceKind, type EvidenceReport } from './report.js';
import { sessionBreaks, type SessionPart } from './sessions-bundle.js';
import type { Verdict } from '../signing/report.js';
import { provenByFromReport, verifyFragmentLayer, verifyMp4Video, verifyVideoLayer } from './verify.js';

export interface EvidenceOptions extends VerifierOptions {
  /** Content keys, for the SEI layer of encrypted video. */
  readonly keys?: KeySet;
  /**
   * Trust anchors for a bundle's exporter: the operator CA that certifies exporters. No default: without it no
   * exporter is trusted (exporters are operator-CA identities, never certified by the manufacturer root).
   */
  readonly exporterRoots?: VerifierOptions['roots'];
  /** Trust anchors for the TSAs of time-stamp tokens (default: `exporterRoots`, the operator CA whose NVR is the TSA). */
  readonly tsaRoots?: VerifierOptions['roots'];
}

/** The TSA roots in effect. */
export function tsaRootsOf(options: EvidenceOptions): VerifierOptions['roots'] | undefined {
  return options.tsaRoots ?? options.exporterRoots;
}

const ONVIF_PART = /^session-(\d{2,})\.mp4$/;

/** The ONVIF export files of an export of several sessions in `dir` (session-01.mp4 …), in order. */
async function onvifSetFiles(dir: string): Promise<string[]> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (e) {
    throw readFailure(e, dir, 'evidence');
  }
  return names.filter((n) => ONVIF_PART.test(n)).sort((a, b) => Number(ONVIF_PART.exec(a)?.[1]) - Number(ONVIF_PART.exec(b)?.[1]));
}

/**
 * A directory of ONVIF export files, one per session (`keyframe nvr export --format onvif` over several sessions):
 * each file verified on its own (seal, records, video), reported as the parts of one export with the breaks between
 * its sessions, and the set checked against what each sealed file says it belongs to (every session it names is
 * there, in order, nothing else) — a file removed, added or renamed is NOT_AUTHENTIC.
 */
async function verifyOnvifSet(path: string, options: EvidenceOptions): Promise<EvidenceReport> {
  const names = await onvifSetFiles(path);
  const problems: string[] = [];
  const parts: SessionPart[] = [];
  let verdict: Verdict = 'AUTHENTIC';
  let sets: (readonly string[])[] = [];
  let frames = 0;
  for (const [i, name] of names.entries()) {
    const source = await fileSource(join(path, name));
    try {
      if (!(await isOnvifExport(source))) {
        problems.push(`${name} is not an ONVIF export file`);
        continue;
      }
      const o = await verifyOnvifExport(source, options);
      const f = o.fragmentLayer;
      verdict = worst(verdict, o.bundle.verdict, ...(f !== undefined ? [f.verdict] : []), ...(o.video !== undefined ? [o.video.verdict] : []));
      frames += o.video?.frames ?? 0;
      const set = o.info?.set;
      if (o.info === undefined || f === undefined || o.bundle.exported === undefined) {
        problems.push(`${name} is not one of keyframe's exports (no export description): it cannot be placed in the set`);
        continue;
      }
      if (set === undefined) problems.push(`${name} is a single-session export, not a part of this set`);
      else {
        sets = [...sets, set.sessions];
        if (set.part !== i + 1) problems.push(`${name} says it is part ${set.part} of ${set.sessions.length}, but it is file ${i + 1} of the set`);
        if (set.sessions[set.part - 1] !== o.info.source.session) problems.push(`${name} holds session ${o.info.source.session}, not the one its set lists as part ${set.part}`);
      }
      const ranges = f.time?.ranges ?? [];
      const proven = ranges.length > 0 && ranges.every((r) => r.notAfter !== null) ? ranges.map((r) => r.notAfter as string).sort().at(-1) : undefined;
      parts.push({ folder: name, session: o.info.source.session, exported: o.bundle.exported, fragmentLayer: f, videoLayer: o.videoLayer, ...(o.video !== undefined ? { video: o.video } : {}), ...(proven !== undefined ? { existedBy: proven } : {}), seal: o.bundle });
    } finally {
      await source.close();
    }
  }
  const listed = sets[0] ?? [];
  if (sets.some((x) => x.join() !== listed.join())) problems.push('the files name different sets of sessions: they are not parts of one export');
  else if (listed.length !== names.length) problems.push(`the set names ${listed.length} sessions, but the directory holds ${names.length} of its files${listed.length > names.length ? `: ${listed.filter((_, k) => names[k] === undefined).length} missing` : ''}`);
  if (new Set(parts.map((p) => p.fragmentLayer.serial)).size > 1) problems.push('the files are exports of several cameras');
  const breaks = sessionBreaks(parts, problems);
  if (problems.length > 0) verdict = 'NOT_AUTHENTIC';
  return { input: 'onvif-set', verdict, videoLayer: parts.every((p) => p.videoLayer === 'checked') ? 'checked' : (parts.find((p) => p.videoLayer !== 'checked')?.videoLayer ?? 'checked'), frames, sessions: [], parts, breaks, onvifSet: { files: names, sessions: [...listed], problems } };
}

/** What `path` holds. */
export async function evidenceKind(path: string): Promise<EvidenceKind> {
  let st;
  try {
    st = await stat(path);
  } catch (e) {
    throw readFailure(e, path, 'evidence');
  }
  if (st.isDirectory()) {
    try {
      await stat(join(path, RECORDS_FILE));
    } catch (e) {
      const code = errnoCode(e);
      if (code === 'ENOENT' || code === 'ENOTDIR') {
        if ((await onvifSetFiles(path)).length > 0) return 'onvif-set';
        throw new MediaError(`${path} is a directory without ${RECORDS_FILE} or ONVIF export files (session-01.mp4 …): not a keyframe recording or export`);
      }
      throw readFailure(e, join(path, RECORDS_FILE), 'records');
    }
    return 'recording';
  }
  if (!st.isFile()) throw new MediaError(`${path} is neither a file nor a directory`);
  const head = Buffer.alloc(512);
  let n: number;
  try {
    const fh = await open(path, 'r');
    try {
      n = (await fh.read(head, 0, 512, 0)).bytesRead;
    } finally {
      await fh.close();
    }
  } catch (e) {
    throw readFailure(e, path, 'evidence');
  }
  if (n === 512 && head.toString('latin1', 257, 262) === 'ustar') return 'bundle';
  if (n >= 4 && head[0] === 0 && head[1] === 0 && (head[2] === 1 || (head[2] === 0 && head[3] === 1))) return 'annexb';
  if (n >= 8 && ['ftyp', 'styp', 'moov', 'moof', 'free', 'mdat'].includes(head.toString('latin1', 4, 8))) return 'mp4';
  throw new MediaError(`${path} is not an Annex-B stream, an MP4, a recording or an evidence bundle`);
}

function videoReport(r: VerificationReport | undefined): Pick<EvidenceReport, 'frames' | 'sessions' | 'videoVerdict'> {
  return { frames: r?.frames ?? 0, sessions: r?.sessions ?? [], ...(r !== undefined ? { videoVerdict: r.verdict } : {}) };
}

async function annexB(path: string, options: VerifierOptions): Promise<VerificationReport> {
  const verifier = new StreamVerifier(options);
  const splitter = new AnnexBSplitter();
  for await (const chunk of createReadStream(path, { highWaterMark: 1 << 20 })) for (const nal of splitter.push(chunk as Buffer)) await verifier.push(nal);
  for (const nal of splitter.flush()) await verifier.push(nal);
  return verifier.finish();
}

/**
 * Verifies the evidence at `path`. Unusable input is a KeyframeError whose one line names the path (a MediaError
 * from deep in a parser gets the path in front).
 */
export async function verifyEvidence(path: string, options: EvidenceOptions): Promise<EvidenceReport> {
  try {
    return await verifyAny(path, options);
  } catch (e) {
    if (e instanceof MediaError && !e.message.includes(path)) throw new MediaError(`${path}: ${e.message}`);
    throw readFailure(e, path, 'evidence');
  }
}

async function verifyAny(path: string, options: EvidenceOptions): Promise<EvidenceReport> {
  const input = await evidenceKind(path);
  if (input === 'onvif-set') return verifyOnvifSet(path, options);
  if (input === 'annexb') {
    const video = await annexB(path, options);
    if (video.frames === 0) throw new MediaError(`${path}: no pictures in the input`);
    return { input, videoLayer: 'checked', videoVerdict: video.verdict, ...video };
  }
  if (input === 'mp4') {
    const source = await fileSource(path);
    try {
      if (await isOnvifExport(source)) {
        const o = await verifyOnvifExport(source, options);
        const verdicts = [o.bundle.verdict, ...(o.fragmentLayer !== undefined ? [o.fragmentLayer.verdict] : []), ...(o.video !== undefined ? [o.video.verdict] : [])];
        return {
          input: 'onvif-export',
          verdict: worst(...verdicts),
          videoLayer: o.videoLayer,
          bundle: o.bundle,
          onvif: { seals: o.seals, ...(o.startTime !== undefined ? { startTime: o.startTime } : {}), ...(o.unit !== undefined ? { unit: { ...o.unit, sources: [...o.unit.sources] } } : {}) },
          ...(o.fragmentLayer !== undefined ? { fragmentLayer: o.fragmentLayer } : {}),
          ...videoReport(o.video),
        };
      }
      const video = await verifyMp4Video(source, options);
      return { input, videoLayer: 'checked', videoVerdict: video.verdict, ...video };
    } catch (e) {
      if (e instanceof KeyframeError && e.code === ErrorCodes.DECRYPT && options.keys === undefined) {
        throw new KeyframeError(ErrorCodes.DECRYPT, `${path} is encrypted: give its key (--key) to verify the signed video, or verify the recording directory, whose records need no key`);
      }
      throw e;
    } finally {
      await source.close();
    }
  }
  if (input === 'recording') {
    const files = await openRecordingDir(path);
    const tsaRoots = tsaRootsOf(options);
    const fragmentLayer = await verifyFragmentLayer(files, { ...options, ...(tsaRoots !== undefined ? { tsaRoots } : {}) });
    const readable = fragmentLayer.scheme === 'none' || options.keys !== undefined;
    if (!readable) return { input, verdict: fragmentLayer.verdict, videoLayer: 'not checked: the video is encrypted and no key was given (--key)', fragmentLayer, ...videoReport(undefined) };
    const provenBy = provenByFromReport(fragmentLayer);
    const video = await verifyVideoLayer(files, { ...options, ...(provenBy !== undefined ? { provenBy } : {}) });
    return { input, verdict: worst(fragmentLayer.verdict, video.verdict), videoLayer: 'checked', fragmentLayer, ...videoReport(video) };
  }
  const b = await verifyBundle(path, options);
  if (b.parts !== undefined) {
    // several sessions (manifest v 2): each reported on its own, the breaks between them named
    return {
      input,
      verdict: worst(b.bundle.verdict, b.partsVerdict ?? 'AUTHENTIC'),
      videoLayer: b.videoLayer,
      bundle: b.bundle,
      frames: b.parts.reduce((n, p) => n + (p.video?.frames ?? 0), 0),
      sessions: [],
      parts: [...b.parts],
      breaks: [...(b.breaks ?? [])],
    };
  }
  const verdicts = [b.bundle.verdict, ...(b.fragmentLayer !== undefined ? [b.fragmentLayer.verdict] : []), ...(b.video !== undefined ? [b.video.verdict] : [])];
  return {
    input,
    verdict: worst(...verdicts),
    videoLayer: b.videoLayer,
    bundle: b.bundle,
    ...(b.fragmentLayer !== undefined ? { fragmentLayer: b.fragmentLayer } : {}),
    ...videoReport(b.video),
  };
}
