/**
 * `keyframe verify` of an ONVIF export file (ONVIF Export File Format 26.06; docs/signed-video.md "ONVIF Export
 * File Format"). Three layers, the verdict the worst of them:
 *
 * - the seals: every signing instance (`sinf`) checked over the bytes it covers (the file before `meta`, then
 *   `meta` up to the end of that `sinf` with later instances removed, the sizes of `ipro` and `meta` adjusted and its
 *   own `sibo` payload zero); the first is the exporter's, trusted only under --exporter-root (an operator-CA
 *   identity for evidence export, valid at the export time the `suep` box states), with the same time rules as a
 *   bundle. Later instances (repeated signing) must verify too; their signers are reported, trusted or not;
 * - keyframe's fragment records, when the export carries keyframe's evidence boxes: the fragments (split by the
 *   sizes export.json lists) against the camera's records, as for a bundle;
 * - the signed video (the SEI layer), through the streaming verifier: over the recording's view for a keyframe
 *   export, over the file's samples for any other.
 */
import { constants, createVerify, type KeyObject, type Verify } from 'node:crypto';
import { ErrorCodes, KeyframeError, MediaError } from '../errors.js';
import { splitAnnexB } from '../media/h264/index.js';
import type { Mp4Source } from '../media/mp4/index.js';
import { msFrom1904, setMovieTimes } from '../media/mp4/movie-times.js';
import { describeAlgorithm, isoFromTicks, parseExportMeta, sealAlgorithm, sealInput, type ExportMeta, type SealInstance } from '../media/mp4/oeff.js';
import { issuerOf } from '../pki/_certs.js';
import { certsToPem, parseCertificates } from '../pki/pem.js';
import { publicKeyObject, subjectOf } from '../pki/verify.js';
import { X509Certificate } from '../pki/x509.js';
import { overallVerdict, sessionVerdict, type VerificationReport } from '../signing/report.js';
import { timePolicy, futureClaim } from '../signing/time.js';
import { establishSigner, type SignerIdentity } from '../signing/trust.js';
import { NO_EXPORTER_ROOT, excludeOutside, exportTime, type BundleVerifyOptions } from './bundle.js';
import { rangeFiles, type RangeEntry } from './files.js';
import { INIT_FILE, segmentName } from './layout.js';
import { READ_CHUNK_BYTES } from './limits.js';
import type { OnvifExportInfo } from './onvif-export.js';
import { EXPORTER_CHAIN_FILE, EXPORT_INFO_FILE, SESSION_SEI_FILE, readLayout, type ExportLayout } from './onvif-layout.js';
import type { BundleReport, FragmentLayerReport, SealReport } from './report.js';
import { provenByFromReport, verifyFragmentLayer, verifyMp4Video, verifyVideoLayer } from './verify.js';

export interface OnvifExportVerification {
  /** The export as a whole: the exporter's seal, its time, the layout; in the bundle report's shape. */
  readonly bundle: BundleReport;
  readonly seals: SealReport[];
  /** The capture's start time the export states (cstb of the exporter's seal, else the file-level one). */
  readonly startTime?: string;
  /** Who and what exported, from `suep`. */
  readonly unit?: { readonly name: string; readonly operator: string; readonly sources: readonly string[] };
  readonly fragmentLayer?: FragmentLayerReport;
  readonly video?: VerificationReport;
  readonly videoLayer: string;
  /** keyframe's export description (export-info.json), when the file carries one that parses. */
  readonly info?: OnvifExportInfo;
}

/** The verify call on `verifier`'s final digest, with the padding the seal's algorithm needs. */
function checkSignature(v: Verify, key: KeyObject, seal: SealInstance, signature: Uint8Array, problems: string[]): { valid: boolean; algorithm: string } {
  const a = sealAlgorithm(seal.algorithm);
  if ('unsupported' in a) {
    problems.push(a.unsupported);
    return { valid: false, algorithm: 'unsupported' };
  }
  const algorithm = describeAlgorithm(a);
  const type = key.asymmetricKeyType;
  if ((a.kind === 'ecdsa') !== (type === 'ec')) {
    problems.push(`the certificate holds a ${type ?? '?'} key, but the seal's algorithm is ${algorithm}${seal.algorithm === undefined ? ' (no sigC: the default)' : ''}`);
    return { valid: false, algorithm };
  }
  try {
    const valid =
      a.kind === 'ecdsa'
        ? v.verify({ key, dsaEncoding: 'der' }, signature)
        : a.kind === 'rsassa-pss'
          ? v.verify({ key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: a.saltLength }, signature)
          : v.verify({ key, padding: constants.RSA_PKCS1_PADDING }, signature);
    return { valid, algorithm };
  } catch {
    return { valid: false, algorithm };
  }
}

async function readChain(source: Mp4Source, layout: ExportLayout, leaf: X509Certificate, problems: string[]): Promise<string> {
  const e = layout.evidence.find((x) => x.name === EXPORTER_CHAIN_FILE);
  if (e === undefined) return certsToPem([leaf]);
  try {
    const chain = parseCertificates(await source.read(e.offset, e.size), EXPORTER_CHAIN_FILE);
    const first = chain[0];
    if (first === undefined || !Buffer.from(first.rawData).equals(Buffer.from(leaf.rawData))) {
      problems.push(`${EXPORTER_CHAIN_FILE} does not start with the certificate of the exporter's seal ('cert')`);
      return certsToPem([leaf]);
    }
    return certsToPem(chain);
  } catch (e2) {
    if (!(e2 instanceof KeyframeError)) throw e2;
    problems.push(`${EXPORTER_CHAIN_FILE}: ${e2.message}`);
    return certsToPem([leaf]);
  }
}

/** Feeds the file before `meta` to every verifier, one chunk at a time. */
async function hashPrefix(source: Mp4Source, end: number, verifiers: readonly Verify[]): Promise<void> {
  for (let at = 0; at < end; at += READ_CHUNK_BYTES) {
    const chunk = await source.read(at, Math.min(READ_CHUNK_BYTES, end - at));
    for (const v of verifiers) v.update(chunk);
  }
}

async function checkSeals(
  source: Mp4Source,
  layout: ExportLayout,
  meta: Uint8Array,
  parsed: ExportMeta,
  options: BundleVerifyOptions,
  problems: string[],
): Promise<{ seals: SealReport[]; exporter?: SignerIdentity; exporterSignature?: Uint8Array }> {
  const metaBox = layout.meta;
  if (metaBox === undefined) return { seals: [] };
  const verifiers = parsed.seals.map(() => createVerify('sha256'));
  await hashPrefix(source, metaBox.offset, verifiers);
  const seals: SealReport[] = [];
  const createdMs = parsed.surveillance !== undefined ? msFrom1904(parsed.surveillance.exportTime) : timePolicy(options).now;
  let exporter: SignerIdentity | undefined;
  let exporterSignature: Uint8Array | undefined;
  for (const [i, seal] of parsed.seals.entries()) {
    const own: string[] = [...seal.problems];
    const report: SealReport = { index: i + 1, algorithm: '?', signatureValid: false, trust: 'none', problems: own };
    seals.push(report);
    if (seal.userInformation !== undefined) report.userInformation = seal.userInformation;
    const st = seal.startTimes?.[0];
    if (st !== undefined) report.startTime = isoFromTicks(st.startTime);
    if (seal.signature === undefined || seal.certificate === undefined) continue;
    const signature = meta.subarray(seal.signature.offset, seal.signature.offset + seal.signature.length);
    let leaf: X509Certificate;
    let key: KeyObject;
    try {
      leaf = new X509Certificate(seal.certificate);
      key = publicKeyObject(leaf);
    } catch {
      own.push("the certificate box ('cert') does not hold a usable DER certificate");
      continue;
    }
    report.subject = subjectOf(leaf);
    report.issuer = issuerOf(leaf);
    (verifiers[i] as Verify).update(sealInput(meta, parsed, i));
    const checked = checkSignature(verifiers[i] as Verify, key, seal, signature, own);
    report.algorithm = checked.algorithm;
    report.signatureValid = checked.valid;
    // the exporter (first instance) is judged at the export time it states; later signers when they are checked
    const chainPem = i === 0 ? await readChain(source, layout, leaf, own) : certsToPem([leaf]);
    const at = i === 0 ? new Date(createdMs) : new Date(timePolicy(options).now);
    const id = await establishSigner(chainPem, at, { ...options, roots: options.exporterRoots ?? [] }, 'evidence-export', i === 0 ? 'the exporter certificate' : `the certificate of seal ${i + 1}`);
    report.trust = id.trust;
    if (options.exporterRoots === undefined) report.trustReason = NO_EXPORTER_ROOT;
    else if (id.reason !== undefined) report.trustReason = id.reason;
    if (i === 0) {
      exporter = id;
      exporterSignature = signature;
    }
  }
  for (const s of seals) {
    const who = s.index === 1 ? "the exporter's seal" : `seal ${s.index} (repeated signing${s.subject !== undefined ? ` by ${s.subject}` : ''})`;
    if (!s.signatureValid && s.algorithm !== '?' && s.algorithm !== 'unsupported') problems.push(`${who} does not match the file: the file was altered after it was sealed, or the seal is forged`);
    for (const p of s.problems) problems.push(`${who}: ${p}`);
  }
  return { seals, ...(exporter !== undefined ? { exporter } : {}), ...(exporterSignature !== undefined ? { exporterSignature } : {}) };
}

function parseInfo(bytes: Uint8Array): OnvifExportInfo {
  let m: unknown;
  try {
    m = JSON.parse(Buffer.from(bytes).toString('utf8'));
  } catch {
    throw new MediaError(`${EXPORT_INFO_FILE} is not valid JSON`);
  }
  const o = m as Partial<OnvifExportInfo>;
  const ok =
    typeof m === 'object' &&
    m !== null &&
    o.v === 1 &&
    o.format === 'keyframe-onvif-export' &&
    typeof o.exported === 'object' &&
    typeof o.exported.from === 'string' &&
    typeof o.exported.to === 'string' &&
    Number.isSafeInteger(o.exported.firstSeq) &&
    Number.isSafeInteger(o.exported.lastSeq) &&
    typeof o.source === 'object' &&
    typeof o.source.start === 'string' &&
    Array.isArray(o.segments) &&
    o.segments.every((n) => Number.isSafeInteger(n) && n > 0) &&
    (o.seqs === undefined
      ? o.segments.length === o.exported.lastSeq - o.exported.firstSeq + 1
      : Array.isArray(o.seqs) && o.seqs.length === o.segments.length && o.seqs.every((q, i, all) => Number.isSafeInteger(q) && q >= (o.exported?.firstSeq ?? 0) && q <= (o.exported?.lastSeq ?? -1) && (i === 0 || q > (all[i - 1] as number)))) &&
    (o.movieTimes === 'set' || o.movieTimes === 'kept') &&
    (o.set === undefined ||
      (typeof o.set === 'object' &&
        o.set !== null &&
        Array.isArray(o.set.sessions) &&
        o.set.sessions.every((x) => typeof x === 'string') &&
        Number.isSafeInteger(o.set.part) &&
        o.set.part >= 1 &&
        o.set.part <= o.set.sessions.length));
  if (!ok) throw new MediaError(`${EXPORT_INFO_FILE} is not a keyframe ONVIF export description`);
  return m as OnvifExportInfo;
}

/** The recording inside a keyframe export, as the fragment layer reads a directory. */
async function recordingView(source: Mp4Source, layout: ExportLayout, info: OnvifExportInfo, problems: string[]): Promise<ReturnType<typeof rangeFiles>> {
  const entries = new Map<string, RangeEntry>();
  for (const e of layout.evidence) if (e.name !== EXPORT_INFO_FILE && e.name !== EXPORTER_CHAIN_FILE) entries.set(e.name, { offset: e.offset, size: e.size });
  const init = await source.read(0, layout.initEnd);
  // the export wrote the movie's times; the camera signed its init segment with them zero
  entries.set(INIT_FILE, { data: info.movieTimes === 'set' ? setMovieTimes(Uint8Array.from(init), { creation: 0, modification: 0 }) : Uint8Array.from(init) });
  let at = layout.media.start;
  for (const [k, size] of info.segments.entries()) {
    if (at + size > layout.media.end) break;
    entries.set(segmentName(info.seqs?.[k] ?? info.exported.firstSeq + k), { offset: at, size });
    at += size;
  }
  const listed = info.segments.reduce((a, b) => a + b, 0);
  if (listed !== layout.media.end - layout.media.start) {
    problems.push(`the fragments take ${layout.media.end - layout.media.start} bytes, but ${EXPORT_INFO_FILE} lists ${info.segments.length} fragments of ${listed} bytes`);
  }
  return rangeFiles(`${source.size}-byte export`, source, entries);
}

/** Verifies the ONVIF export file open as `source`. */
export async function verifyOnvifExport(source: Mp4Source, options: BundleVerifyOptions): Promise<OnvifExportVerification> {
  const layout = await readLayout(source);
  const problems = [...layout.problems];
  const bundle: BundleReport = { verdict: 'NOT_AUTHENTIC', exporter: { trust: 'none', chain: [] }, signatureValid: false, problems };
  if (layout.meta === undefined) {
    problems.push("no file-level 'meta' box: the file carries no SurveillanceExportBox and no seal");
    return { bundle, seals: [], videoLayer: 'not checked: not an ONVIF export' };
  }
  const meta = Uint8Array.from(await source.read(layout.meta.offset, layout.meta.size));
  const parsed = parseExportMeta(meta);
  problems.push(...parsed.problems);
  for (const u of parsed.unsealed) problems.push(`${u}: no seal covers it`);
  for (const b of layout.after) {
    // the specification exempts the movie fragment random access box at the end of the file from the seal
    if (b.type !== 'mfra') problems.push(`box '${b.type}' after the file-level 'meta' at ${b.offset}: no seal covers it`);
  }
  const { seals, exporter, exporterSignature } = await checkSeals(source, layout, meta, parsed, options, problems);
  const first = seals[0];
  bundle.signatureValid = first?.signatureValid === true;
  if (exporter !== undefined) {
    bundle.exporter = {
      trust: exporter.trust,
      chain: exporter.chain,
      ...(first?.subject !== undefined ? { subject: first.subject } : {}),
      ...(first?.issuer !== undefined ? { issuer: first.issuer } : {}),
      ...(first?.trustReason !== undefined ? { trustReason: first.trustReason } : {}),
    };
  }
  const suep = parsed.surveillance;
  const policy = timePolicy(options);
  const createdMs = suep !== undefined ? msFrom1904(suep.exportTime) : policy.now;
  if (suep !== undefined) {
    bundle.created = new Date(createdMs).toISOString();
    const future = futureClaim(createdMs, policy, 'the export (suep ExportUnitTime)');
    if (future !== undefined) problems.push(future);
  }
  if (first?.userInformation !== undefined) bundle.reason = first.userInformation;
  const startTicks = parsed.seals[0]?.startTimes?.[0]?.startTime ?? parsed.startTimes?.[0]?.startTime;
  const startTime = startTicks !== undefined ? isoFromTicks(startTicks) : undefined;
  const unit = suep !== undefined ? { name: suep.unitName, operator: suep.operator, sources: suep.sources.map((s) => `track ${s.trackId}: ${s.name}${s.url !== '' ? ` (${s.url})` : ''}`) } : undefined;
  const base = { seals, ...(startTime !== undefined ? { startTime } : {}), ...(unit !== undefined ? { unit } : {}) };
  const judge = (fragmentTime: Pick<FragmentLayerReport, 'time'>): Promise<void> =>
    exporter !== undefined && exporterSignature !== undefined
      ? exportTime(undefined, exporterSignature, createdMs, exporter, fragmentTime, options, problems, 'the export (suep ExportUnitTime)').then((t) => {
          bundle.time = t;
        })
      : Promise.resolve();
  const decide = (): void => {
    const trust = exporter?.trust ?? 'none';
    bundle.verdict = problems.length > 0 ? 'NOT_AUTHENTIC' : trust === 'untrusted' ? 'UNTRUSTED_SIGNER' : trust !== 'trusted' ? 'NOT_AUTHENTIC' : bundle.time?.unproven !== undefined ? 'UNPROVEN_TIME' : 'AUTHENTIC';
  };

  const infoEntry = layout.evidence.find((e) => e.name === EXPORT_INFO_FILE);
  if (infoEntry === undefined) {
    // another exporter's file: the seal, and the signed SEIs in its samples
    await judge({});
    decide();
    const video = await readVideo(() => verifyMp4Video(source, options), options);
    return { bundle, ...base, ...video };
  }
  let info: OnvifExportInfo;
  try {
    info = parseInfo(await source.read(infoEntry.offset, infoEntry.size));
  } catch (e) {
    if (!(e instanceof MediaError)) throw e;
    problems.push(e.message);
    await judge({});
    decide();
    return { bundle, ...base, videoLayer: 'not checked: no usable export description' };
  }
  bundle.requested = info.requested;
  bundle.exported = info.exported;
  const files = await recordingView(source, layout, info, problems);
  const { firstSeq, lastSeq } = info.exported;
  const tsaRoots = options.tsaRoots ?? options.exporterRoots;
  const fragmentLayer = await verifyFragmentLayer(files, { ...options, expected: (seq) => seq >= firstSeq && seq <= lastSeq, ...(tsaRoots !== undefined ? { tsaRoots } : {}) });
  if (startTime !== undefined && fragmentLayer.start !== undefined && Date.parse(startTime) !== Date.parse(fragmentLayer.start)) {
    problems.push(`the export states the capture started at ${startTime} (cstb), but the camera's session record says ${fragmentLayer.start}`);
  }
  await judge(fragmentLayer);
  decide();
  const readable = fragmentLayer.scheme === 'none' || options.keys !== undefined;
  if (!readable) return { bundle, ...base, info, fragmentLayer, videoLayer: 'not checked: the video is encrypted and no key was given (--key)' };
  const provenBy = provenByFromReport(fragmentLayer);
  const video = await verifyVideoLayer(files, {
    ...options,
    ...(provenBy !== undefined ? { provenBy } : {}),
    before: files.has(SESSION_SEI_FILE) ? splitAnnexB(await files.read(SESSION_SEI_FILE)) : [],
  });
  if (fragmentLayer.excluded > 0) {
    const startMs = fragmentLayer.start !== undefined ? Date.parse(fragmentLayer.start) : Date.parse(info.source.start);
    const fromSec = (Date.parse(info.exported.from) - startMs) / 1000;
    const toSec = (Date.parse(info.exported.to) - startMs) / 1000;
    const endExported = fragmentLayer.endRecord && lastSeq === fragmentLayer.records - 1;
    for (const s of video.sessions) {
      excludeOutside(s, fromSec, toSec, endExported);
      s.verdict = sessionVerdict(s);
    }
    video.verdict = overallVerdict(video.sessions);
  }
  return { bundle, ...base, info, fragmentLayer, video, videoLayer: 'checked' };
}

async function readVideo(run: () => Promise<VerificationReport>, options: BundleVerifyOptions): Promise<{ video?: VerificationReport; videoLayer: string }> {
  try {
    return { video: await run(), videoLayer: 'checked' };
  } catch (e) {
    if (e instanceof KeyframeError && e.code === ErrorCodes.DECRYPT && options.keys === undefined) return { videoLayer: 'not checked: the video is encrypted and no key was given (--key)' };
    throw e;
  }
}
