/**
 * Evidence bundles (issue 4; the essentials of the ONVIF Export File Format): one ustar archive holding, untouched,
 * the exported fragments of a recording with every record, the init segment, the camera's chain, the session's
 * certificate SEI when the range does not start with it (each fragment carries its own signing SEIs), and a
 * manifest — who exported, when, why, what range was asked for and what was exported — listing every file by
 * SHA-256 and signed by the exporter. `keyframe verify` checks it offline.
 *
 *   manifest.json       canonical JSON (below), signed
 *   manifest.sig        the exporter's signature over manifest.json (ECDSA DER or RSA PKCS#1 v1.5, SHA-256)
 *   manifest.tst        optional: an RFC 3161 token over SHA-256(manifest.sig), the signature's proof of time
 *   exporter.pem        the exporter's certificate chain (an operator-CA exporter identity, EKU evidence-export)
 *   recording/…         chain.pem, init.mp4, records.jsonl, timestamps.jsonl, recording.json, NNNNNN.m4s, session.sei
 *
 * A range starts and ends on fragment (GOP) boundaries, because a picture cannot be decoded or verified without
 * the IDR picture before it: a requested start inside a GOP is moved back to its IDR picture, and the manifest
 * says so.
 */
import { createHash, verify as cryptoVerify } from 'node:crypto';
import { ErrorCodes, KeyframeError, MediaError } from '../errors.js';
import { splitAnnexB } from '../media/h264/index.js';
import type { OperatorIdentity } from '../pki/operator-identity.js';
import { certsToPem } from '../pki/pem.js';
import { issuerOf } from '../pki/_certs.js';
import { subjectOf } from '../pki/verify.js';
import type { Stamper } from '../tsp/stamper.js';
import { verifyTimeStampToken, type TimeStampInfo } from '../tsp/token.js';
import { bounds, futureClaim, provenBefore, revocationKnowledge, timePolicy, unprovenReason } from '../signing/time.js';
import type { KeySet } from '../packager/decrypt.js';
import { overallVerdict, sessionVerdict, type SessionReport, type Verdict, type VerificationReport } from '../signing/report.js';
import { establishSigner, type SignerIdentity, type TrustOptions } from '../signing/trust.js';
import { sha256Of, TarFiles } from './files.js';
import { CHAIN_FILE, GAP_NOTE_FILES, INFO_FILE, INIT_FILE, RECORDS_FILE } from './layout.js';
import { canonicalJson } from './records.js';
import { planExport, type ExportPlan, type RangeOptions } from './range.js';
import type { BundleReport, FragmentLayerReport } from './report.js';
import { TarWriter } from './tar.js';
import { writeWithAtomic } from '../util/fs.js';
import { TIMESTAMPS_FILE } from './timestamps.js';
import { provenByFromReport, verifyFragmentLayer, verifyVideoLayer } from './verify.js';
import { isSessionsManifest, verifySessionParts, type SessionBreak, type SessionPart, type SessionsManifest } from './sessions-bundle.js';

export const MANIFEST_FILE = 'manifest.json';
export const SIGNATURE_FILE = 'manifest.sig';
export const EXPORTER_FILE = 'exporter.pem';
export const SESSION_SEI_FILE = 'session.sei';
export const TIMESTAMP_FILE = 'manifest.tst';
const FOLDER = 'recording';

export interface BundleManifest {
  readonly v: 1;
  readonly format: 'keyframe-evidence-bundle';
  readonly created: string;
  readonly exporter: { readonly name: string; readonly subject: string; readonly issuer: string };
  readonly reason: string;
  readonly source: { readonly serial: string; readonly session: string; readonly start: string; readonly scheme: string; readonly kid: string };
  readonly requested: { readonly from?: string; readonly to?: string };
  readonly exported: { readonly from: string; readonly to: string; readonly firstSeq: number; readonly lastSeq: number; readonly note?: string };
  readonly files: readonly { readonly name: string; readonly size: number; readonly sha256: string }[];
}

/** Who exports: an operator-CA exporter identity (`keyframe ca exporter-cert`), opened and checked. */
export type Exporter = Pick<OperatorIdentity, 'chain' | 'sign'> & { readonly config: { readonly name: string } };

export interface ExportOptions extends RangeOptions {
  readonly out: string;
  readonly exporter: Exporter;
  /** Export time (default now). */
  readonly now?: Date;
  /** Time-stamps the exporter's signature (manifest.tst): the proof that the export existed by then. */
  readonly stamper?: Stamper;
}

export interface ExportResult {
  readonly manifest: BundleManifest;
  /** The manifest signature's time-stamp, when a stamper was given. */
  readonly timestamp?: TimeStampInfo;
}

/** Exports a recording (or a time range of it) as a signed evidence bundle; returns its manifest. */
/** A file of a bundle, as its manifest lists it. */
export interface BundleFile {
  readonly name: string;
  readonly size: number;
  readonly sha256: string;
}

/** Adds `data` to the bundle under `name` (and to the manifest's file list). */
export type AddToBundle = (name: string, data: Uint8Array) => Promise<void>;

/** Adds one planned recording part under `folder`: chain, init, records, the notes it has, its fragments, its certificate SEI. */
export async function addPlannedRecording(add: AddToBundle, plan: ExportPlan, folder: string): Promise<void> {
  const optional = [TIMESTAMPS_FILE, INFO_FILE, ...GAP_NOTE_FILES].filter((n) => plan.files.has(n));
  for (const n of [CHAIN_FILE, INIT_FILE, RECORDS_FILE, ...optional, ...plan.segments]) await add(`${folder}/${n}`, await plan.files.read(n));
  if (plan.certificateSei !== undefined) await add(`${folder}/${SESSION_SEI_FILE}`, plan.certificateSei);
}

/**
 * Writes a signed evidence bundle atomically (ustar): the exporter's chain, what `fill` adds, the manifest
 * `manifestOf` makes of the list of files, the exporter's signature over it, and — with a stamper — a time-stamp
 * over that signature (CAdES-style: it proves the signed manifest existed by its genTime).
 */
export async function writeSignedBundle<M>(
  o: { readonly out: string; readonly exporter: Exporter; readonly stamper?: Stamper; readonly created: Date },
  fill: (add: AddToBundle) => Promise<void>,
  manifestOf: (files: BundleFile[]) => M,
): Promise<{ manifest: M; timestamp?: TimeStampInfo }> {
  return writeWithAtomic(o.out, async (fh) => {
    const tar = new TarWriter(fh, Math.floor(o.created.getTime() / 1000));
    const listed: BundleFile[] = [];
    const add: AddToBundle = async (name, data) => {
      await tar.add(name, data.length, [data]);
      listed.push({ name, size: data.length, sha256: createHash('sha256').update(data).digest('hex') });
    };
    await add(EXPORTER_FILE, Buffer.from(certsToPem(o.exporter.chain)));
    await fill(add);
    const manifest = manifestOf(listed);
    const manifestBytes = Buffer.from(`${canonicalJson(manifest)}\n`);
    const sig = await o.exporter.sign(manifestBytes);
    await tar.add(MANIFEST_FILE, manifestBytes.length, [manifestBytes]);
    await tar.add(SIGNATURE_FILE, sig.length, [sig]);
    let timestamp: TimeStampInfo | undefined;
    if (o.stamper !== undefined) {
      const { token, info } = await o.stamper.stamp(createHash('sha256').update(sig).digest());
      await tar.add(TIMESTAMP_FILE, token.length, [token]);
      timestamp = info;
    }
    await tar.finish();
    return { manifest, ...(timestamp !== undefined ? { timestamp } : {}) };
  });
}

export async function exportBundle(options: ExportOptions): Promise<ExportResult> {
  const exporterLeaf = options.exporter.chain[0];
  if (exporterLeaf === undefined) throw new KeyframeError(ErrorCodes.NOT_FOUND, `exporter ${options.exporter.config.name} has no certificate (chain.pem)`);
  const plan = await planExport(options);
  const { session } = plan;
  const created = options.now ?? new Date();
  return writeSignedBundle(
    { out: options.out, exporter: options.exporter, created, ...(options.stamper !== undefined ? { stamper: options.stamper } : {}) },
    (add) => addPlannedRecording(add, plan, FOLDER),
    (files): BundleManifest => ({
      v: 1,
      format: 'keyframe-evidence-bundle',
      created: created.toISOString(),
      exporter: { name: options.exporter.config.name, subject: subjectOf(exporterLeaf), issuer: issuerOf(exporterLeaf) },
      reason: options.reason,
      source: { serial: session.serial, session: session.session, start: session.start, scheme: session.scheme, kid: session.kid },
      requested: plan.requested,
      exported: plan.exported,
      files,
    }),
  );
}

function parseManifest(bytes: Uint8Array): BundleManifest | SessionsManifest {
  let m: unknown;
  try {
    m = JSON.parse(Buffer.from(bytes).toString('utf8'));
  } catch {
    throw new MediaError(`${MANIFEST_FILE} is not valid JSON`);
  }
  // v 2: several sessions of one camera (sessions-bundle.ts)
  if (isSessionsManifest(m)) return m;
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
  /**
   * Trust anchors for the exporter's certificate: the operator CA that certifies exporters. No default: exporters
   * are operator-CA identities, never certified by the manufacturer root that `roots` holds for cameras.
   */
  readonly exporterRoots?: TrustOptions['roots'];
  /** Trust anchors for TSAs (manifest.tst, recording/timestamps.jsonl); default `exporterRoots`. */
  readonly tsaRoots?: TrustOptions['roots'];
  readonly keys?: KeySet;
}

export interface BundleVerification {
  readonly bundle: BundleReport;
  readonly fragmentLayer?: FragmentLayerReport;
  readonly video?: VerificationReport;
  readonly videoLayer: string;
  /** A bundle of several sessions (manifest v 2): each session as verified, and the breaks between them. */
  readonly parts?: readonly SessionPart[];
  readonly breaks?: readonly SessionBreak[];
  /** The worst verdict of the parts' layers. */
  readonly partsVerdict?: Verdict;
}

export const NO_EXPORTER_ROOT = 'no exporter root given (--exporter-root): an exporter is trusted only under the operator CA that certified it';

/** Relabels what a range export deliberately left out, so that it is not reported as missing. */
export function excludeOutside(s: SessionReport, fromSec: number, toSec: number, endExported: boolean): void {
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
    const signature = await tar.read(SIGNATURE_FILE);
    let manifest: BundleManifest | SessionsManifest | undefined;
    try {
      manifest = parseManifest(manifestBytes);
    } catch (e) {
      if (!(e instanceof MediaError)) throw e;
      problems.push(e.message);
    }
    const policy = timePolicy(options);
    const createdMs = manifest !== undefined && Number.isFinite(Date.parse(manifest.created)) ? Date.parse(manifest.created) : policy.now;
    // the exporter: an operator-CA identity for evidence export, valid when it claims to have signed
    const exporterRoots = options.exporterRoots ?? [];
    const id = await establishSigner(await tar.read(EXPORTER_FILE), new Date(createdMs), { ...options, roots: exporterRoots }, 'evidence-export', EXPORTER_FILE);
    const leaf = id.leaf;
    bundle.exporter = {
      trust: id.trust,
      chain: id.chain,
      ...(leaf !== undefined ? { subject: subjectOf(leaf), issuer: issuerOf(leaf) } : {}),
      ...(options.exporterRoots === undefined ? { trustReason: NO_EXPORTER_ROOT } : id.reason !== undefined ? { trustReason: id.reason } : {}),
    };
    if (id.key !== undefined) {
      try {
        bundle.signatureValid = cryptoVerify('sha256', manifestBytes, id.key, signature);
      } catch {
        bundle.signatureValid = false;
      }
    }
    if (!bundle.signatureValid) problems.push('the exporter signature does not match the manifest: the bundle was altered after export, or the signature is forged');
    if (manifest === undefined) return { bundle, videoLayer: 'not checked: no usable manifest' };
    bundle.created = manifest.created;
    bundle.reason = manifest.reason;
    bundle.requested = manifest.requested;
    if (manifest.v === 1) bundle.exported = manifest.exported;
    const future = futureClaim(createdMs, policy, 'the manifest (export time)');
    if (future !== undefined) problems.push(future);
    const listed = new Set<string>();
    for (const f of manifest.files) {
      listed.add(f.name);
      if (!tar.has(f.name)) {
        problems.push(`${f.name} is listed in the manifest but not in the bundle`);
        continue;
      }
      if (tar.size(f.name) !== f.size || (await sha256Of(tar, f.name)) !== f.sha256) problems.push(`${f.name} differs from the file the exporter signed`);
    }
    const unsigned = new Set([MANIFEST_FILE, SIGNATURE_FILE, TIMESTAMP_FILE]);
    for (const n of tar.names()) if (!unsigned.has(n) && !listed.has(n)) problems.push(`${n} is in the bundle but not in the manifest`);
    const folders = manifest.v === 2 ? manifest.sessions.map((x) => x.folder) : [FOLDER];
    for (const d of folders) for (const n of tar.sub(d).names()) if (!listed.has(`${d}/${n}`)) problems.push(`${d}/${n} is in the bundle but not in the manifest`);
    if (manifest.v === 2) {
      const tsaRoots2 = options.tsaRoots ?? options.exporterRoots;
      const { parts, breaks, verdict } = await verifySessionParts(tar, manifest, options, problems);
      const allTokens = parts.flatMap((p) => p.fragmentLayer.time?.tokens ?? []);
      const firstTime = parts[0]?.fragmentLayer.time;
      bundle.time = await exportTime(tar.has(TIMESTAMP_FILE) ? await tar.read(TIMESTAMP_FILE) : undefined, signature, createdMs, id, firstTime !== undefined ? { time: { ...firstTime, tokens: allTokens } } : {}, { ...options, ...(tsaRoots2 !== undefined ? { tsaRoots: tsaRoots2 } : {}) }, problems);
      bundle.verdict =
        problems.length > 0 ? 'NOT_AUTHENTIC' : id.trust === 'untrusted' ? 'UNTRUSTED_SIGNER' : id.trust !== 'trusted' ? 'NOT_AUTHENTIC' : bundle.time.unproven !== undefined ? 'UNPROVEN_TIME' : 'AUTHENTIC';
      const unread = parts.find((p) => p.videoLayer !== 'checked');
      return { bundle, parts, breaks, partsVerdict: verdict, videoLayer: unread !== undefined ? unread.videoLayer : 'checked' };
    }

    const { firstSeq, lastSeq } = manifest.exported;
    const files = tar.sub(FOLDER);
    const tsaRoots = options.tsaRoots ?? options.exporterRoots;
    const fragmentLayer = await verifyFragmentLayer(files, { ...options, expected: (seq) => seq >= firstSeq && seq <= lastSeq, ...(tsaRoots !== undefined ? { tsaRoots } : {}) });
    bundle.time = await exportTime(tar.has(TIMESTAMP_FILE) ? await tar.read(TIMESTAMP_FILE) : undefined, signature, createdMs, id, fragmentLayer, { ...options, ...(tsaRoots !== undefined ? { tsaRoots } : {}) }, problems);
    bundle.verdict =
      problems.length > 0 ? 'NOT_AUTHENTIC' : id.trust === 'untrusted' ? 'UNTRUSTED_SIGNER' : id.trust !== 'trusted' ? 'NOT_AUTHENTIC' : bundle.time.unproven !== undefined ? 'UNPROVEN_TIME' : 'AUTHENTIC';
    const exportedAll = fragmentLayer.excluded === 0;
    const readable = fragmentLayer.scheme === 'none' || options.keys !== undefined;
    if (!readable) return { bundle, fragmentLayer, videoLayer: 'not checked: the video is encrypted and no key was given (--key)' };
    const sei = async (name: string): Promise<Uint8Array[]> => (files.has(name) ? splitAnnexB(await files.read(name)) : []);
    const provenBy = provenByFromReport(fragmentLayer);
    const video = await verifyVideoLayer(files, {
      ...options,
      ...(options.keys !== undefined ? { keys: options.keys } : {}),
      ...(provenBy !== undefined ? { provenBy } : {}),
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

/**
 * The export's times (docs/signed-video.md §6): the manifest's claimed export time against its proofs. Not after:
 * manifest.tst, a token over the exporter's signature. Not before: the exporter certificate's notBefore, or later,
 * the newest time-stamp token the signed manifest lists (a manifest cannot list a token issued after it was signed,
 * so one that does is backdated: a problem). An exporter revoked as compromised needs manifest.tst from before it.
 */
export async function exportTime(
  token: Uint8Array | undefined,
  signature: Uint8Array,
  createdMs: number,
  id: SignerIdentity,
  fragmentLayer: Pick<FragmentLayerReport, 'time'>,
  options: BundleVerifyOptions,
  problems: string[],
  claim = 'the manifest',
): Promise<NonNullable<BundleReport['time']>> {
  const policy = timePolicy(options);
  const iso = (ms: number): string => new Date(ms).toISOString();
  let provenBy: number | undefined;
  let tokenReport: NonNullable<BundleReport['time']>['token'];
  if (token !== undefined) {
    const roots = options.tsaRoots ?? [];
    if (roots.length === 0) {
      tokenReport = { valid: false, reason: 'not checked: no TSA root given (--tsa-root)' };
    } else {
      const r = await verifyTimeStampToken(token, {
        hash: createHash('sha256').update(signature).digest(),
        roots,
        ...(options.crls !== undefined ? { crls: options.crls } : {}),
        ...(options.now !== undefined ? { now: options.now } : {}),
      });
      const info = r.info;
      const said = info !== undefined ? { genTime: info.genTime, notAfter: info.notAfter, ...(info.tsa !== undefined ? { tsa: info.tsa.subject } : {}) } : {};
      tokenReport = r.valid ? { valid: true, ...said } : { valid: false, reason: r.reason, ...said };
      if (r.valid) provenBy = Date.parse(r.info.notAfter);
    }
  }
  // tokens listed in the signed manifest were issued before it was signed
  let notBefore = id.notBefore ?? createdMs;
  for (const p of fragmentLayer.time?.tokens ?? []) {
    if (!p.valid || p.genTime === undefined || p.notAfter === undefined) continue;
    const issuedFrom = 2 * Date.parse(p.genTime) - Date.parse(p.notAfter);
    if (issuedFrom > notBefore) notBefore = issuedFrom;
    if (issuedFrom > createdMs) problems.push(`${claim} claims it was made at ${iso(createdMs)}, but it lists a time-stamp (line ${p.line} of ${TIMESTAMPS_FILE}) issued at ${p.genTime}, after that: the export time is backdated`);
  }
  if (provenBy !== undefined && futureClaim(createdMs, { now: provenBy, maxSkewMs: policy.maxSkewMs }, '') !== undefined) {
    problems.push(`${claim} claims it was made at ${iso(createdMs)}, but ${TIMESTAMP_FILE} proves the signature existed by ${iso(provenBy)} (skew allowed ${policy.maxSkewMs / 1000} s): the export time is false`);
  }
  const c = id.compromise;
  const unproven = c !== undefined && !provenBefore(c, provenBy) ? unprovenReason(c, provenBy, "the exporter's signature") : undefined;
  return {
    claimed: iso(createdMs),
    verifiedAt: iso(policy.now),
    ...bounds(notBefore, provenBy),
    proof: tokenReport?.valid === true ? `${TIMESTAMP_FILE} by ${tokenReport.tsa ?? 'a TSA'}, genTime ${tokenReport.genTime ?? '?'}` : token === undefined && claim !== 'the manifest' ? 'no time-stamp: only the claimed export time' : `no valid ${TIMESTAMP_FILE}: only the claimed export time`,
    ...(tokenReport !== undefined ? { token: tokenReport } : {}),
    ...(c !== undefined ? { compromise: { time: iso(c.time), reason: c.reason, subject: c.subject } } : {}),
    revocation: revocationKnowledge(options.crls !== undefined, id.crlThisUpdate, createdMs),
    ...(unproven !== undefined ? { unproven } : {}),
  };
}
