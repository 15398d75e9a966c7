/**
 * The ONVIF export file (ONVIF Export File Format 26.06; docs/signed-video.md §4c): one fragmented MP4 that
 * ordinary players play, sealed by the exporter:
 *
 *   ftyp, moov      the recording's init segment, byte for byte, except the creation and modification times of
 *                   mvhd, tkhd and mdhd (zero in a recording): the recording's start and the export time, so that
 *                   players show the absolute time (ffprobe's creation_time)
 *   uuid …          keyframe's evidence (KEYFRAME_EVIDENCE_UUID, one box per file): the camera's chain.pem, every
 *                   record (records.jsonl), the recording's time-stamp tokens and recording.json, the certificate
 *                   SEI of a range that does not start with it (session.sei), the exporter's chain (exporter.pem:
 *                   the `cert` box holds only the leaf) and export.json (source, requested and exported range, the
 *                   size of every exported fragment) — what the specification has no box for; players skip
 *                   unknown uuid boxes
 *   moof, mdat …    the exported fragments (whole GOPs), byte for byte as stored: ciphertext with its CENC boxes
 *                   when the recording is encrypted, the signing SEIs untouched
 *   meta            hdlr, suep (exporting unit, export time, operator, the camera), ipro{ sinf{ cstb (the start
 *                   of the media timeline: the recording's start), schm 'oeff' v1, schi{ auib (the reason),
 *                   sigC (ECDSA exporters), cert (the exporter's certificate), sibo (the seal) } } }
 *
 * The seal is the exporter's signature over every byte of the file with the `sibo` payload zero: RSASSA-PSS
 * (SHA-256, MGF1-SHA-256, salt 20, the specification's default, no sigC) for an RSA exporter, ECDSA with SHA-256
 * (DER, sigC ecdsa-with-SHA256) for a P-256 one. The file is streamed through the exporter's key store as it is
 * written: memory holds one fragment's chunk and the small evidence files (records.jsonl within its bound in
 * limits.ts), never the whole export.
 */
import { subjectOf } from '../pki/verify.js';
import { issuerOf } from '../pki/_certs.js';
import { certsToPem } from '../pki/pem.js';
import { readMovieTimes, readTrackIds, seconds1904, setMovieTimes } from '../media/mp4/movie-times.js';
import { buildExportMeta, ticksFromMs, type SurveillanceExport } from '../media/mp4/oeff.js';
import { ErrorCodes, KeyframeError, MediaError } from '../errors.js';
import { writeWithAtomic } from '../util/fs.js';
import { sealScheme, writeSealed, type Sealer } from './onvif-seal.js';
import { EXPORTER_CHAIN_FILE, EXPORT_INFO_FILE, SESSION_SEI_FILE, evidenceBox } from './onvif-layout.js';
import { CHAIN_FILE, GAP_NOTE_FILES, INFO_FILE, INIT_FILE, RECORDS_FILE } from './layout.js';
import { planExport, type ExportedRange, type RangeOptions } from './range.js';
import { canonicalJson } from './records.js';
import { TIMESTAMPS_FILE } from './timestamps.js';

export interface OnvifExportInfo {
  readonly v: 1;
  readonly format: 'keyframe-onvif-export';
  readonly source: { readonly serial: string; readonly session: string; readonly start: string; readonly scheme: string; readonly kid: string };
  readonly requested: { readonly from?: string; readonly to?: string };
  readonly exported: ExportedRange;
  /** Bytes of each exported fragment file, in order: where one ends and the next begins in the export. */
  readonly segments: readonly number[];
  /** The fragment number of each, when they are not exported.firstSeq, firstSeq + 1, … (a recorder's export with gaps). */
  readonly seqs?: readonly number[];
  /** 'set': the export wrote the times of mvhd, tkhd and mdhd, which the recorded init segment had zero. */
  readonly movieTimes: 'set' | 'kept';
  /**
   * One file of an export of several sessions (one ONVIF export file each, `session-01.mp4` …): which part this
   * is (from 1) and every session of the export in order — sealed in each file, so that a file removed from the
   * set, or one from another export put in, is noticed.
   */
  readonly set?: OnvifExportSet;
}

export interface OnvifExportSet {
  readonly part: number;
  readonly sessions: readonly string[];
}

/** Who seals: an operator-CA exporter identity (`keyframe ca exporter-cert`), opened and checked. */
export type OnvifExporter = Sealer;

export interface OnvifExportOptions extends RangeOptions {
  readonly out: string;
  readonly exporter: OnvifExporter;
  /** Export time (default now); the file holds it in whole seconds. */
  readonly now?: Date;
  /** The exporting unit (suep ExportUnitName; default "keyframe"). */
  readonly unitName?: string;
  /** This file is one part of an export of several sessions (OnvifExportInfo.set). */
  readonly set?: OnvifExportSet;
}

export interface OnvifExportResult {
  readonly info: OnvifExportInfo;
  readonly exporter: { readonly subject: string; readonly issuer: string };
  /** The seal's algorithm, in words. */
  readonly algorithm: string;
  /** The start time the file states (cstb, mvhd creation time to the second). */
  readonly startTime: string;
  readonly created: string;
  readonly bytes: number;
}

/** Exports a recording (or a time range of it) as one sealed ONVIF export file. */
export async function exportOnvif(options: OnvifExportOptions): Promise<OnvifExportResult> {
  const scheme = sealScheme(options.exporter);
  const leaf = options.exporter.chain[0];
  if (leaf === undefined) throw new KeyframeError(ErrorCodes.NOT_FOUND, `exporter ${options.exporter.config.name} has no certificate (chain.pem)`);
  const plan = await planExport(options);
  const { files, session } = plan;
  const startMs = Date.parse(session.start);
  const createdMs = Math.floor((options.now ?? new Date()).getTime() / 1000) * 1000;

  const recordedInit = await files.read(INIT_FILE);
  const trackIds = readTrackIds(recordedInit);
  const trackId = trackIds[0];
  if (trackId === undefined) throw new MediaError(`${options.recording}: ${INIT_FILE} has no track`);
  // a keyframe init segment leaves the times zero; one that does not is kept as recorded
  const zeroTimes = readMovieTimes(recordedInit).every((t) => t.creation === 0 && t.modification === 0);
  const init = zeroTimes ? setMovieTimes(recordedInit, { creation: seconds1904(startMs), modification: seconds1904(createdMs) }) : recordedInit;

  const info: OnvifExportInfo = {
    v: 1,
    format: 'keyframe-onvif-export',
    source: { serial: session.serial, session: session.session, start: session.start, scheme: session.scheme, kid: session.kid },
    requested: plan.requested,
    exported: plan.exported,
    segments: plan.segments.map((n) => files.size(n)),
    ...(plan.absent.length > 0 ? { seqs: plan.seqs } : {}),
    ...(options.set !== undefined ? { set: options.set } : {}),
    movieTimes: zeroTimes ? 'set' : 'kept',
  };
  const evidence: [string, Uint8Array][] = [];
  for (const n of [CHAIN_FILE, RECORDS_FILE, TIMESTAMPS_FILE, INFO_FILE, ...GAP_NOTE_FILES]) if (files.has(n)) evidence.push([n, await files.read(n)]);
  if (plan.certificateSei !== undefined) evidence.push([SESSION_SEI_FILE, plan.certificateSei]);
  evidence.push([EXPORTER_CHAIN_FILE, Buffer.from(certsToPem(options.exporter.chain))]);
  evidence.push([EXPORT_INFO_FILE, Buffer.from(`${canonicalJson(info)}\n`)]);

  const surveillance: SurveillanceExport = {
    unitName: options.unitName ?? 'keyframe',
    unitUrl: '',
    unitMac: '',
    exportTime: seconds1904(createdMs),
    operator: options.exporter.config.name,
    sources: [{ trackId, name: session.serial, url: '', mac: '', line: '' }],
  };
  const metaFor = (signatureLength: number): ReturnType<typeof buildExportMeta> =>
    buildExportMeta(surveillance, {
      certificate: new Uint8Array(leaf.rawData),
      ...(scheme.algorithm !== undefined ? { algorithm: scheme.algorithm } : {}),
      userInformation: options.reason,
      startTimes: [{ trackId, startTime: ticksFromMs(startMs) }],
      signatureLength,
    });

  try {
    async function* prefix(): AsyncGenerator<Uint8Array> {
      yield init;
      for (const [name, data] of evidence) yield evidenceBox(name, data);
      for (const s of plan.segments) yield* files.chunks(s);
    }
    const bytes = await writeWithAtomic(options.out, (fh) => writeSealed(fh, prefix, metaFor, options.exporter, scheme));
    return {
      info,
      exporter: { subject: subjectOf(leaf), issuer: issuerOf(leaf) },
      algorithm: scheme.describe,
      startTime: session.start,
      created: new Date(createdMs).toISOString(),
      bytes,
    };
  } finally {
    await files.close();
  }
}
