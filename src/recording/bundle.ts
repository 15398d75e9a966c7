/**
 * Evidence bundles (issue 4; the essentials of the ONVIF Export File Format): one ustar archive holding, untouched,
 * the exported fragments of a recording with every record, the init segment, the camera's chain, the session's
 * certificate SEI when the range does not start with it (each fragment carries its own signing SEIs), and a
 * manifest — who exported, when, why, what range was asked for and what was exported — listing every file by
 * SHA-256 and signed by the exporter. `keyframe verify` checks it offline.
 *
 *   manifest.json       canonical JSON (below), signed
 *   manifest.sig        the exporter's signature over manifest.json (ECDSA DER or RSA PKCS#1 v1.5, SHA-256)
 *   exporter.pem        the exporter's certificate chain
 *   recording/…         chain.pem, init.mp4, records.jsonl, recording.json, NNNNNN.m4s, session.sei
 *
 * A range starts and ends on fragment (GOP) boundaries, because a picture cannot be decoded or verified without
 * the IDR picture before it: a requested start inside a GOP is moved back to its IDR picture, and the manifest
 * says so.
 */
import { createHash, verify as cryptoVerify } from 'node:crypto';
import { ErrorCodes, InputError, KeyframeError, MediaError } from '../errors.js';
import { splitAnnexB, writeAnnexB } from '../media/h264/index.js';
import type { NalLengthSize } from '../media/h264/index.js';
import { openMp4 } from '../media/mp4/index.js';
import type { Device } from '../pki/device.js';
import { certsToPem } from '../pki/pem.js';
import { subjectOf } from '../pki/verify.js';
import type { KeySet } from '../packager/decrypt.js';
import { overallVerdict, sessionVerdict, type SessionReport, type VerificationReport } from '../signing/report.js';
import { isSigningSei } from '../signing/sei.js';
import { establishSigner, type TrustOptions } from '../signing/trust.js';
import { concatSource, openRecordingDir, sha256Of, TarFiles, type RecordingFiles } from './files.js';
import { CHAIN_FILE, INFO_FILE, INIT_FILE, RECORDS_FILE, segmentSeq } from './layout.js';
import { canonicalJson } from './records.js';
import type { FragmentRecord, SessionRecord } from './records.js';
import type { BundleReport, FragmentLayerReport, RecordingProblem } from './report.js';
import { TarWriter } from './tar.js';
import { writeWithAtomic } from '../util/fs.js';
import { leadingSigningSeis, readRecords, segmentNames, verifyFragmentLayer, verifyVideoLayer } from './verify.js';

export const MANIFEST_FILE = 'manifest.json';
export const SIGNATURE_FILE = 'manifest.sig';
export const EXPORTER_FILE = 'exporter.pem';
export const SESSION_SEI_FILE = 'session.sei';
const FOLDER = 'recording';

export interface BundleManifest {
  readonly v: 1;
  readonly format: 'keyframe-evidence-bundle';
  readonly created: string;
  readonly exporter: { readonly serial: string; readonly subject: string };
  readonly reason: string;
  readonly source: { readonly serial: string; readonly session: string; readonly start: string; readonly scheme: string; readonly kid: string };
  readonly requested: { readonly from?: string; readonly to?: string };
  readonly exported: { readonly from: string; readonly to: string; readonly firstSeq: number; readonly lastSeq: number; readonly note?: string };
  readonly files: readonly { readonly name: string; readonly size: number; readonly sha256: string }[];
}

export interface ExportOptions {
  readonly recording: string;
  readonly out: string;
  readonly exporter: Device;
  readonly reason: string;
  readonly from?: Date;
  readonly to?: Date;
  /** Export time (default now). */
  readonly now?: Date;
}

function iso(ms: number): string {
  return new Date(ms).toISOString();
}

/** The first sample of a fragment as stored (encrypted or not), via the demuxer over init + that fragment. */
async function firstSample(files: RecordingFiles, segment: string): Promise<{ data: Uint8Array; lengthSize: NalLengthSize }> {
  const { track, samples } = await openMp4(concatSource(files, [INIT_FILE, segment]));
  for await (const s of samples()) return { data: s.data, lengthSize: track.avcC.lengthSize };
  throw new MediaError(`${segment} holds no sample`);
}

/** Exports a recording (or a time range of it) as a signed evidence bundle; returns its manifest. */
export async function exportBundle(options: ExportOptions): Promise<BundleManifest> {
  if (options.reason.trim() === '') throw new InputError('an export needs a reason (--reason)');
  if (options.from !== undefined && options.to !== undefined && options.to.getTime() <= options.from.getTime()) throw new InputError('--to must be after --from');
  const exporterLeaf = options.exporter.chain[0];
  if (exporterLeaf === undefined) throw new KeyframeError(ErrorCodes.NOT_FOUND, `exporter ${options.exporter.config.serial} has no certificate (chain.pem)`);
  const files = await openRecordingDir(options.recording);
  for (const f of [RECORDS_FILE, INIT_FILE, CHAIN_FILE]) if (!files.has(f)) throw new MediaError(`${options.recording} is not a keyframe recording: ${f} is missing`);
  const problems: RecordingProblem[] = [];
  const records = await readRecords(files, problems);
  if (problems.length > 0) throw new MediaError(`${options.recording}: ${problems[0]?.detail ?? 'bad records'}; verify it before exporting`);
  const session = records[0] as SessionRecord | undefined;
  if (session?.kind !== 'session') throw new MediaError(`${options.recording}: records.jsonl does not start with a session record`);
  const startMs = Date.parse(session.start);
  const fragments = records.filter((r): r is FragmentRecord => !('kind' in r));
  const stored = new Map(segmentNames(files).map((n) => [segmentSeq(n) as number, n]));
  const wall = (f: FragmentRecord): [number, number] => [startMs + f.start * 1000, startMs + f.end * 1000];
  const from = options.from?.getTime() ?? -Infinity;
  const to = options.to?.getTime() ?? Infinity;
  const chosen = fragments.filter((f) => {
    const [a, b] = wall(f);
    return b > from && a < to;
  });
  const first = chosen[0];
  const last = chosen[chosen.length - 1];
  if (first === undefined || last === undefined) {
    throw new InputError(`no recorded video between ${options.from?.toISOString() ?? 'the start'} and ${options.to?.toISOString() ?? 'the end'} (recording ${session.start} + ${fragments[fragments.length - 1]?.end ?? 0} s)`);
  }
  for (const f of chosen) if (!stored.has(f.seq)) throw new MediaError(`fragment ${f.seq} of the range is not in ${options.recording}: verify the recording`);
  const notes: string[] = [];
  if (options.from !== undefined && wall(first)[0] < from) {
    notes.push(`the requested start is ${((from - wall(first)[0]) / 1000).toFixed(3)} s into a GOP: the export starts at the IDR picture before it (${iso(wall(first)[0])}), since earlier pictures of the GOP cannot be decoded or verified without it`);
  }
  if (options.to !== undefined && wall(last)[1] > to) notes.push(`the requested end is inside a GOP: the export ends with that GOP (${iso(wall(last)[1])})`);
  if (options.from !== undefined && from < startMs) notes.push(`the recording starts at ${session.start}, after the requested start`);

  // the certificate SEI, from the session's first fragment, for a range that does not start with it
  const extra = new Map<string, Uint8Array>();
  const firstName = stored.get(0);
  if (first.seq > 0 && firstName !== undefined) {
    const { data, lengthSize } = await firstSample(files, firstName);
    const certSeis = leadingSigningSeis(data, lengthSize, isSigningSei);
    if (certSeis.length > 0) extra.set(SESSION_SEI_FILE, writeAnnexB(certSeis));
  }

  const names = [CHAIN_FILE, INIT_FILE, RECORDS_FILE, ...(files.has(INFO_FILE) ? [INFO_FILE] : []), ...chosen.map((f) => stored.get(f.seq) as string)];
  const created = options.now ?? new Date();
  return writeWithAtomic(options.out, async (fh) => {
    const tar = new TarWriter(fh, Math.floor(created.getTime() / 1000));
    const listed: { name: string; size: number; sha256: string }[] = [];
    const add = async (name: string, data: Uint8Array): Promise<void> => {
      await tar.add(name, data.length, [data]);
      listed.push({ name, size: data.length, sha256: createHash('sha256').update(data).digest('hex') });
    };
    await add(EXPORTER_FILE, Buffer.from(certsToPem(options.exporter.chain)));
    for (const n of names) await add(`${FOLDER}/${n}`, await files.read(n));
    for (const [n, data] of extra) await add(`${FOLDER}/${n}`, data);
    const manifest: BundleManifest = {
      v: 1,
      format: 'keyframe-evidence-bundle',
      created: created.toISOString(),
      exporter: { serial: options.exporter.config.serial, subject: subjectOf(exporterLeaf) },
      reason: options.reason,
      source: { serial: session.serial, session: session.session, start: session.start, scheme: session.scheme, kid: session.kid },
      requested: { ...(options.from !== undefined ? { from: options.from.toISOString() } : {}), ...(options.to !== undefined ? { to: options.to.toISOString() } : {}) },
      exported: { from: iso(wall(first)[0]), to: iso(wall(last)[1]), firstSeq: first.seq, lastSeq: last.seq, ...(notes.length > 0 ? { note: notes.join('; ') } : {}) },
      files: listed,
    };
    const manifestBytes = Buffer.from(`${canonicalJson(manifest)}\n`);
    const sig = await options.exporter.store.sign(options.exporter.config.keyLabel, manifestBytes);
    await tar.add(MANIFEST_FILE, manifestBytes.length, [manifestBytes]);
    await tar.add(SIGNATURE_FILE, sig.length, [sig]);
    await tar.finish();
    return manifest;
  });
}

function parseManifest(bytes: Uint8Array): BundleManifest {
  let m: unknown;
  try {
    m = JSON.parse(Buffer.from(bytes).toString('utf8'));
  } catch {
    throw new MediaError(`${MANIFEST_FILE} is not valid JSON`);
  }
  const o = m as Partial<BundleManifest>;
  const ok =
    typeof m === 'object' &&
    m !== null &&
    o.v === 1 &&
    o.format === 'keyframe-evidence-bundle' &&
    typeof o.created === 'string' &&
    typeof o.reason === 'string' &&
    typeof o.exported === 'object' &&
    typeof o.exported.from === 'string' &&
    typeof o.exported.to === 'string' &&
    Number.isSafeInteger(o.exported.firstSeq) &&
    Number.isSafeInteger(o.exported.lastSeq) &&
    typeof o.source === 'object' &&
    typeof o.source.start === 'string' &&
    Array.isArray(o.files) &&
    (o.files as unknown[]).every((f) => {
      const x = f as Record<string, unknown>;
      return typeof f === 'object' && f !== null && typeof x['name'] === 'string' && Number.isSafeInteger(x['size']) && typeof x['sha256'] === 'string';
    });
  if (!ok) throw new MediaError(`${MANIFEST_FILE} is not a keyframe evidence bundle manifest`);
  return m as BundleManifest;
}

export interface BundleVerifyOptions extends TrustOptions {
  /** Trust anchors for the exporter's certificate (default: `roots`). */
  readonly exporterRoots?: TrustOptions['roots'];
  readonly keys?: KeySet;
}

export interface BundleVerification {
  readonly bundle: BundleReport;
  readonly fragmentLayer?: FragmentLayerReport;
  readonly video?: VerificationReport;
  readonly videoLayer: string;
}

/** Relabels what a range export deliberately left out, so that it is not reported as missing. */
function excludeOutside(s: SessionReport, fromSec: number, toSec: number, endExported: boolean): void {
  const eps = 1e-6;
  for (const r of s.ranges) {
    if (r.status === 'missing' && (r.end <= fromSec + eps || r.start >= toSec - eps)) {
      r.status = 'excluded';
      r.reason = 'not in the export';
    }
  }
  if (!endExported && !s.endMarker) {
    s.endExcluded = true;
    delete s.endMissingAfter;
  }
}

export async function verifyBundle(path: string, options: BundleVerifyOptions): Promise<BundleVerification> {
  const tar = await TarFiles.open(path);
  try {
    const problems: string[] = [];
    const bundle: BundleReport = { verdict: 'NOT_AUTHENTIC', exporter: { trust: 'none', chain: [] }, signatureValid: false, problems };
    for (const f of [MANIFEST_FILE, SIGNATURE_FILE, EXPORTER_FILE]) if (!tar.has(f)) problems.push(`${f} is missing`);
    const incomplete = problems.length > 0;
    problems.push(...tar.problems);
    if (incomplete) return { bundle, videoLayer: 'not checked: the bundle is incomplete' };
    const manifestBytes = await tar.read(MANIFEST_FILE);
    let manifest: BundleManifest | undefined;
    try {
      manifest = parseManifest(manifestBytes);
    } catch (e) {
      if (!(e instanceof MediaError)) throw e;
      problems.push(e.message);
    }
    const created = manifest !== undefined && Number.isFinite(Date.parse(manifest.created)) ? new Date(manifest.created) : new Date();
    const id = await establishSigner(await tar.read(EXPORTER_FILE), created, { ...options, roots: options.exporterRoots ?? options.roots }, 'any');
    bundle.exporter = { trust: id.trust, chain: id.chain, ...(id.reason !== undefined ? { trustReason: id.reason } : {}) };
    if (id.key !== undefined) {
      try {
        bundle.signatureValid = cryptoVerify('sha256', manifestBytes, id.key, await tar.read(SIGNATURE_FILE));
      } catch {
        bundle.signatureValid = false;
      }
    }
    if (!bundle.signatureValid) problems.push('the exporter signature does not match the manifest: the bundle was altered after export, or the signature is forged');
    if (manifest === undefined) return { bundle, videoLayer: 'not checked: no usable manifest' };
    bundle.created = manifest.created;
    bundle.reason = manifest.reason;
    bundle.requested = manifest.requested;
    bundle.exported = manifest.exported;
    const listed = new Set<string>();
    for (const f of manifest.files) {
      listed.add(f.name);
      if (!tar.has(f.name)) {
        problems.push(`${f.name} is listed in the manifest but not in the bundle`);
        continue;
      }
      if (tar.size(f.name) !== f.size || (await sha256Of(tar, f.name)) !== f.sha256) problems.push(`${f.name} differs from the file the exporter signed`);
    }
    for (const n of tar.names()) if (n !== MANIFEST_FILE && n !== SIGNATURE_FILE && !listed.has(n)) problems.push(`${n} is in the bundle but not in the manifest`);
    for (const n of tar.sub(FOLDER).names()) if (!listed.has(`${FOLDER}/${n}`)) problems.push(`${FOLDER}/${n} is in the bundle but not in the manifest`);

    const { firstSeq, lastSeq } = manifest.exported;
    const files = tar.sub(FOLDER);
    const fragmentLayer = await verifyFragmentLayer(files, { ...options, expected: (seq) => seq >= firstSeq && seq <= lastSeq });
    const exportedAll = fragmentLayer.excluded === 0;
    bundle.verdict = problems.length > 0 ? 'NOT_AUTHENTIC' : id.trust === 'trusted' ? 'AUTHENTIC' : id.trust === 'untrusted' ? 'UNTRUSTED_SIGNER' : 'NOT_AUTHENTIC';
    const readable = fragmentLayer.scheme === 'none' || options.keys !== undefined;
    if (!readable) return { bundle, fragmentLayer, videoLayer: 'not checked: the video is encrypted and no key was given (--key)' };
    const sei = async (name: string): Promise<Uint8Array[]> => (files.has(name) ? splitAnnexB(await files.read(name)) : []);
    const video = await verifyVideoLayer(files, {
      ...options,
      ...(options.keys !== undefined ? { keys: options.keys } : {}),
      before: await sei(SESSION_SEI_FILE),
    });
    if (!exportedAll) {
      const startMs = fragmentLayer.start !== undefined ? Date.parse(fragmentLayer.start) : Date.parse(manifest.source.start);
      const fromSec = (Date.parse(manifest.exported.from) - startMs) / 1000;
      const toSec = (Date.parse(manifest.exported.to) - startMs) / 1000;
      const endExported = fragmentLayer.endRecord && lastSeq === fragmentLayer.records - 1;
      for (const s of video.sessions) {
        excludeOutside(s, fromSec, toSec, endExported);
        s.verdict = sessionVerdict(s);
      }
      video.verdict = overallVerdict(video.sessions);
    }
    return { bundle, fragmentLayer, video, videoLayer: 'checked' };
  } finally {
    await tar.close();
  }
}
