/**
 * Verification of a recording (a directory, or the `recording/` folder of a bundle):
 *
 * - the fragment layer, without any key: the session record (signer at the recording start, init segment hash),
 *   every fragment record against the stored bytes (integrity, order, completeness, per-record certificate
 *   validity), and the end record (a cut end is reported, not passed);
 * - the SEI layer, when the video can be read (a clear recording, or the content key given): the fragments are
 *   demuxed, decrypted and fed to the streaming verifier as NAL units.
 */
import { MediaError } from '../errors.js';
import { NalType, nalType, splitLengthPrefixed } from '../media/h264/index.js';
import type { NalLengthSize } from '../media/h264/index.js';
import { emptyReport, openClearSamples, type KeySet } from '../packager/decrypt.js';
import type { VerificationReport } from '../signing/report.js';
import { establishSigner, type TrustOptions } from '../signing/trust.js';
import { StreamVerifier, type VerifierOptions } from '../signing/verifier.js';
import { concatSource, linesOf, sha256Of, type RecordingFiles } from './files.js';
import { CHAIN_FILE, INIT_FILE, RECORDS_FILE, segmentSeq } from './layout.js';
import { MAX_RECORD_LINE_BYTES, formatBytes } from './limits.js';
import { parseAnyRecord, recordHash, recordSignatureValid, verifyRecordChain } from './records.js';
import type { AnyRecord, EndRecord, FragmentRecord, SessionRecord } from './records.js';
import type { FragmentLayerReport, RecordingProblem } from './report.js';

export interface FragmentLayerOptions extends TrustOptions {
  /** For an export: whether the fragment of record `seq` is expected among the stored ones. */
  readonly expected?: (seq: number) => boolean;
}

/** The segment files of a recording in sequence-number order. */
export function segmentNames(files: RecordingFiles): string[] {
  return files
    .names()
    .filter((n) => segmentSeq(n) !== undefined)
    .sort((a, b) => (segmentSeq(a) as number) - (segmentSeq(b) as number));
}

/** The records of records.jsonl, read line by line (a line longer than MAX_RECORD_LINE_BYTES is not a record). */
export async function readRecords(files: RecordingFiles, problems: RecordingProblem[]): Promise<AnyRecord[]> {
  const out: AnyRecord[] = [];
  for await (const line of linesOf(files, RECORDS_FILE, MAX_RECORD_LINE_BYTES)) {
    if ('tooLong' in line) {
      problems.push({ kind: 'tampered', detail: `record on line ${line.lineNo} is ${formatBytes(line.tooLong)} long: longer than the ${formatBytes(MAX_RECORD_LINE_BYTES)} a record may be` });
      continue;
    }
    if (line.text.trim() === '') continue;
    try {
      out.push(parseAnyRecord(line.text, line.lineNo));
    } catch (e) {
      if (!(e instanceof MediaError)) throw e;
      problems.push({ kind: 'tampered', detail: e.message });
    }
  }
  return out;
}

function verdictOf(r: Omit<FragmentLayerReport, 'verdict'>): FragmentLayerReport['verdict'] {
  if (r.trust === 'none') return 'UNSIGNED';
  if (r.trust === 'untrusted') return 'UNTRUSTED_SIGNER';
  if (r.trust === 'invalid') return 'NOT_AUTHENTIC';
  if (r.problems.some((p) => p.kind !== 'missing')) return 'NOT_AUTHENTIC';
  if (r.problems.length > 0 || !r.endRecord) return 'AUTHENTIC_WITH_GAPS';
  return r.authentic > 0 ? 'AUTHENTIC' : 'NOT_AUTHENTIC';
}

/** The fragment layer (docs/signed-video.md §4), checked without any content key. */
export async function verifyFragmentLayer(files: RecordingFiles, options: FragmentLayerOptions): Promise<FragmentLayerReport> {
  const problems: RecordingProblem[] = [];
  const segments = segmentNames(files);
  const base: Omit<FragmentLayerReport, 'verdict'> = { trust: 'none', chain: [], fragments: segments.length, records: 0, authentic: 0, excluded: 0, coveredSeconds: 0, endRecord: false, problems };
  const done = (r: Omit<FragmentLayerReport, 'verdict'>): FragmentLayerReport => ({ verdict: verdictOf(r), ...r });
  if (!files.has(RECORDS_FILE)) {
    if (segments.length > 0) problems.push({ kind: 'unrecorded', detail: `${RECORDS_FILE} is missing: no fragment is signed` });
    return done(base);
  }
  const records = await readRecords(files, problems);
  const session = records[0];
  if (session === undefined || !('kind' in session) || session.kind !== 'session') {
    problems.push({ kind: 'tampered', detail: 'the first record is not a session record: the start of the recording is missing' });
    return done({ ...base, trust: 'invalid', trustReason: 'no session record' });
  }
  const s = session;
  const r: Omit<FragmentLayerReport, 'verdict'> = { ...base, session: s.session, serial: s.serial, start: s.start, scheme: s.scheme, kid: s.kid };
  if (!files.has(CHAIN_FILE)) return done({ ...r, trust: 'untrusted', trustReason: `${CHAIN_FILE} is missing: the signer is unknown` });
  const startMs = Date.parse(s.start);
  const id = await establishSigner(await files.read(CHAIN_FILE), new Date(startMs), options);
  r.chain = id.chain;
  if (id.trust === 'untrusted' || id.key === undefined) return done({ ...r, trust: 'untrusted', trustReason: id.reason ?? 'signer unknown' });
  if (!recordSignatureValid(s, id.key)) return done({ ...r, trust: 'invalid', trustReason: 'the session record signature does not verify with the certificate in chain.pem' });
  if (id.trust === 'invalid') return done({ ...r, trust: 'invalid', trustReason: `certificate not valid at the recording start: ${id.reason ?? 'invalid'}` });
  if (id.serial !== undefined && id.serial !== s.serial) return done({ ...r, trust: 'invalid', trustReason: `session record serial ${s.serial} is not the certificate's (${id.serial})` });
  r.trust = 'trusted';

  if (!files.has(INIT_FILE)) problems.push({ kind: 'missing', detail: `${INIT_FILE} (the init segment) is missing` });
  else if ((await sha256Of(files, INIT_FILE)) !== s.init) problems.push({ kind: 'tampered', detail: `${INIT_FILE} differs from the init segment the camera signed` });

  const fragmentRecords: FragmentRecord[] = [];
  let end: EndRecord | undefined;
  for (const rec of records.slice(1)) {
    if ('kind' in rec && rec.kind === 'session') {
      problems.push({ kind: 'tampered', detail: `a second session record (${rec.session}) inside the recording` });
    } else if ('kind' in rec && rec.kind === 'end') {
      if (end !== undefined) problems.push({ kind: 'tampered', detail: 'a second end record' });
      end = rec;
    } else if (end !== undefined) {
      problems.push({ kind: 'tampered', seq: (rec).seq, detail: `fragment record ${(rec).seq} after the end record` });
    } else {
      const f = rec;
      if (f.session !== s.session) problems.push({ kind: 'tampered', seq: f.seq, start: f.start, end: f.end, detail: `fragment record ${f.seq} belongs to another session (${f.session})` });
      fragmentRecords.push(f);
    }
  }
  r.records = fragmentRecords.length;
  const expected = options.expected ?? (() => true);
  r.excluded = fragmentRecords.filter((f) => !expected(f.seq)).length;
  const hashes: string[] = [];
  for (const name of segments) hashes.push(await sha256Of(files, name));
  const chain = verifyRecordChain(fragmentRecords, hashes, id.key, { genesis: recordHash(s), expected });
  problems.push(...chain.problems);
  r.authentic = chain.authentic;
  r.coveredSeconds = chain.coveredSeconds;
  if (id.validUntil !== undefined) {
    for (const f of fragmentRecords) {
      if (startMs + f.end * 1000 > id.validUntil) {
        problems.push({ kind: 'certificate', seq: f.seq, start: f.start, end: f.end, detail: `fragment ${f.seq} was signed after the certificate ceased to be valid (${new Date(id.validUntil).toISOString()})` });
        if (expected(f.seq)) r.authentic--;
      }
    }
  }
  const last = fragmentRecords[fragmentRecords.length - 1];
  if (end === undefined) {
    r.endMissingAfter = last?.end ?? 0;
  } else if (!recordSignatureValid(end, id.key) || end.session !== s.session) {
    problems.push({ kind: 'tampered', detail: 'the end record does not verify' });
  } else if (end.prev !== (last !== undefined ? recordHash(last) : recordHash(s)) || end.seq !== fragmentRecords.length) {
    problems.push({ kind: 'missing', seq: end.seq, detail: `the end record closes ${end.seq} fragments: fragments before it are missing` });
    r.endRecord = true;
  } else {
    r.endRecord = true;
  }
  return done(r);
}

export interface VideoLayerOptions extends VerifierOptions {
  readonly keys?: KeySet;
  /** NAL units fed before the fragments (a range export's certificate SEI). */
  readonly before?: readonly Uint8Array[];
}

/** The SEI layer over init + fragments (decrypted with `keys` when encrypted). */
export async function verifyVideoLayer(files: RecordingFiles, options: VideoLayerOptions): Promise<VerificationReport> {
  const source = concatSource(files, [INIT_FILE, ...segmentNames(files)]);
  return verifyMp4Video(source, options);
}

/** The SEI layer over any MP4 (ordinary or fragmented), decrypted with `keys` when it is encrypted. */
export async function verifyMp4Video(source: Parameters<typeof openClearSamples>[0], options: VideoLayerOptions): Promise<VerificationReport> {
  const { track, samples } = await openClearSamples(source, options.keys, emptyReport());
  const verifier = new StreamVerifier(options);
  for (const nal of options.before ?? []) await verifier.push(nal);
  const lengthSize = track.avcC.lengthSize;
  for await (const s of samples()) for (const nal of splitLengthPrefixed(s.data, lengthSize)) await verifier.push(nal);
  return verifier.finish();
}

/** The signing SEI NAL units at the start of a fragment's first sample (clear even in an encrypted fragment). */
export function leadingSigningSeis(fragmentSample: Uint8Array, lengthSize: NalLengthSize, isSigning: (nal: Uint8Array) => boolean): Uint8Array[] {
  const out: Uint8Array[] = [];
  let pos = 0;
  while (pos + lengthSize <= fragmentSample.length) {
    let len = 0;
    for (let i = 0; i < lengthSize; i++) len = len * 256 + (fragmentSample[pos + i] ?? 0);
    const nal = fragmentSample.subarray(pos + lengthSize, pos + lengthSize + len);
    if (nal.length !== len) break;
    const t = nalType(nal);
    if (t === NalType.SEI && isSigning(nal)) out.push(Uint8Array.from(nal));
    else if (t !== NalType.AUD && t !== NalType.SEI) break;
    pos += lengthSize + len;
  }
  return out;
}

export type { SessionRecord };
