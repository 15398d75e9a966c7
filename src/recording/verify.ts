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
import { isVcl, NalType, nalType, splitLengthPrefixed } from '../media/h264/index.js';
import type { NalLengthSize } from '../media/h264/index.js';
import { emptyReport, openClearSamples, type KeySet } from '../packager/decrypt.js';
import type { VerificationReport } from '../signing/report.js';
import { futureClaim, provenBefore, revocationKnowledge, timePolicy, unprovenReason } from '../signing/time.js';
import { establishSigner, type SignerIdentity, type TrustOptions } from '../signing/trust.js';
import type { X509Certificate } from '../pki/x509.js';
import { StreamVerifier, type VerifierOptions } from '../signing/verifier.js';
import { concatSource, linesOf, sha256Of, type RecordingFiles } from './files.js';
import { ABSENT_FILE, CHAIN_FILE, EXPIRED_FILE, INIT_FILE, LOST_FILE, RECORDS_FILE, segmentSeq } from './layout.js';
import type { AbsentInfo, ExpiredInfo } from './layout.js';
import { MAX_RECORD_LINE_BYTES, formatBytes } from './limits.js';
import { parseAnyRecord, recordHash, recordSignatureValid, verifyRecordChain } from './records.js';
import type { AnyRecord, EndRecord, FragmentRecord, LostRecord, SessionRecord } from './records.js';
import type { KeyObject } from 'node:crypto';
import type { FragmentLayerReport, FragmentTime, RecordingProblem, TimeRange } from './report.js';
import { judgeTokens, parseTokenEntries, provenByPosition, TIMESTAMPS_FILE, type TimeProof } from './timestamps.js';

export interface FragmentLayerOptions extends TrustOptions {
  /** For an export: whether the fragment of record `seq` is expected among the stored ones. */
  readonly expected?: (seq: number) => boolean;
  /** Trust anchors for the TSAs of the recording's time-stamp tokens (timestamps.jsonl); without, none is checked. */
  readonly tsaRoots?: readonly X509Certificate[];
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
  if (r.problems.some((p) => p.kind !== 'missing' && p.kind !== 'lost' && p.kind !== 'expired' && p.kind !== 'unproven')) return 'NOT_AUTHENTIC';
  if (r.problems.some((p) => p.kind === 'unproven')) return 'UNPROVEN_TIME';
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
  const policy = timePolicy(options);
  const futureStart = futureClaim(startMs, policy, 'the session record');
  if (futureStart !== undefined) return done({ ...r, trust: 'invalid', trustReason: futureStart });
  if (id.trust === 'invalid') return done({ ...r, trust: 'invalid', trustReason: `certificate not valid at the recording start: ${id.reason ?? 'invalid'}` });
  if (id.serial !== undefined && id.serial !== s.serial) return done({ ...r, trust: 'invalid', trustReason: `session record serial ${s.serial} is not the certificate's (${id.serial})` });
  r.trust = 'trusted';

  if (!files.has(INIT_FILE)) problems.push({ kind: 'missing', detail: `${INIT_FILE} (the init segment) is missing` });
  else if ((await sha256Of(files, INIT_FILE)) !== s.init) problems.push({ kind: 'tampered', detail: `${INIT_FILE} differs from the init segment the camera signed` });

  const fragmentRecords: FragmentRecord[] = [];
  /** What each fragment record must chain to: the record right before it in records.jsonl (a lost record may sit between two fragments). */
  const links: string[] = [];
  const lost: LostRecord[] = [];
  let end: EndRecord | undefined;
  let endPrev: string | undefined;
  let prevCounter = s.counter;
  records.forEach((rec, i) => {
    if (i === 0) return;
    const before = recordHash(records[i - 1] as AnyRecord);
    if ('kind' in rec && rec.kind === 'session') {
      problems.push({ kind: 'tampered', detail: `a second session record (${rec.session}) inside the recording` });
    } else if ('kind' in rec && rec.kind === 'end') {
      if (end !== undefined) problems.push({ kind: 'tampered', detail: 'a second end record' });
      end = rec;
      endPrev = before;
    } else if ('kind' in rec && rec.kind === 'lost') {
      // a signed record of fragments the camera's ring buffer overwrote before they were uploaded
      const what = `the lost record of fragments ${rec.from}–${rec.to - 1}${rec.of !== s.session ? ` of session ${rec.of}` : ''}`;
      if (end !== undefined) problems.push({ kind: 'tampered', detail: `${what} comes after the end record` });
      else if (!recordSignatureValid(rec, id.key as KeyObject) || rec.session !== s.session) problems.push({ kind: 'tampered', detail: `${what} does not verify` });
      else if (rec.prev !== before) problems.push({ kind: 'chain-broken', detail: `${what} does not chain to the record before it` });
      else if (rec.counter <= prevCounter) problems.push({ kind: 'counter', detail: `${what}: counter ${rec.counter} does not increase` });
      else lost.push(rec);
      prevCounter = Math.max(prevCounter, rec.counter);
    } else if (end !== undefined) {
      problems.push({ kind: 'tampered', seq: rec.seq, detail: `fragment record ${rec.seq} after the end record` });
    } else {
      if (rec.session !== s.session) problems.push({ kind: 'tampered', seq: rec.seq, start: rec.start, end: rec.end, detail: `fragment record ${rec.seq} belongs to another session (${rec.session})` });
      fragmentRecords.push(rec);
      links.push(before);
      prevCounter = Math.max(prevCounter, rec.counter);
    }
  });
  if (files.has(LOST_FILE)) {
    // lost records about this session from a later session's chain (the ring buffer copies them here): signed by
    // the same device key, though their chain is in that other session
    const text = Buffer.from(await files.read(LOST_FILE)).toString('utf8');
    text.split('\n').forEach((line, i) => {
      if (line.trim() === '') return;
      try {
        const rec = parseAnyRecord(line, i + 1);
        if ('kind' in rec && rec.kind === 'lost' && rec.of === s.session && recordSignatureValid(rec, id.key as KeyObject)) lost.push(rec);
        else problems.push({ kind: 'tampered', detail: `${LOST_FILE} line ${i + 1} is not a signed lost record of this session` });
      } catch (e) {
        if (!(e instanceof MediaError)) throw e;
        problems.push({ kind: 'tampered', detail: `${LOST_FILE}: ${e.message}` });
      }
    });
  }
  r.records = fragmentRecords.length;
  const expected = options.expected ?? (() => true);
  r.excluded = fragmentRecords.filter((f) => !expected(f.seq)).length;
  const hashes: string[] = [];
  for (const name of segments) hashes.push(await sha256Of(files, name));
  const chain = verifyRecordChain(fragmentRecords, hashes, id.key, { genesis: recordHash(s), links, expected });
  // fragments the camera itself reported overwritten before upload: lost on the camera, not missing
  const lostOn = (seq: number): LostRecord | undefined => lost.find((l) => l.of === s.session && seq >= l.from && seq < l.to);
  const relabelled = await explainAbsent(files, await relabelExpired(files, chain.problems));
  problems.push(
    ...relabelled.map((p) => {
      const l = p.kind === 'missing' && p.seq !== undefined ? lostOn(p.seq) : undefined;
      return l === undefined ? p : { ...p, kind: 'lost', detail: `fragment ${p.seq} (${p.start ?? '?'}–${p.end ?? '?'} s) was lost on the camera (buffer full): overwritten before it was uploaded, as the camera's signed lost record says` };
    }),
  );
  r.lost = lost.map((l) => ({ of: l.of, from: l.from, to: l.to, start: l.start, end: l.end, reason: l.reason }));
  r.authentic = chain.authentic;
  r.coveredSeconds = chain.coveredSeconds;
  // fragments that verify in the chain but fail a rule below stop counting as authentic, each once
  const chainBad = new Set(chain.problems.filter((p) => p.kind !== 'unrecorded').map((p) => p.seq));
  const counted = new Set(fragmentRecords.filter((f) => expected(f.seq) && !chainBad.has(f.seq)).map((f) => f.seq));
  const demote = (seq: number): void => {
    if (counted.delete(seq)) r.authentic--;
  };
  const wallEnd = (f: FragmentRecord): number => startMs + f.end * 1000;
  if (id.validUntil !== undefined) {
    for (const f of fragmentRecords) {
      if (wallEnd(f) > id.validUntil) {
        problems.push({ kind: 'certificate', seq: f.seq, start: f.start, end: f.end, detail: `fragment ${f.seq} was signed after the certificate ceased to be valid (${new Date(id.validUntil).toISOString()})` });
        if (expected(f.seq)) demote(f.seq);
      }
    }
  }
  const future = fragmentRecords.filter((f) => expected(f.seq) && futureClaim(wallEnd(f), policy, '') !== undefined);
  for (const run of runs(future)) {
    problems.push({ kind: 'future', seq: run[0].seq, start: run[0].start, end: run[1].end, detail: futureClaim(wallEnd(run[0]), policy, `fragment${run[0] === run[1] ? ` ${run[0].seq}` : `s ${run[0].seq}–${run[1].seq}`}`) ?? '' });
  }
  future.forEach((f) => demote(f.seq));
  const last = fragmentRecords[fragmentRecords.length - 1];
  if (end === undefined) {
    r.endMissingAfter = last?.end ?? 0;
  } else if (!recordSignatureValid(end, id.key) || end.session !== s.session) {
    problems.push({ kind: 'tampered', detail: 'the end record does not verify' });
  } else if (end.prev !== endPrev || end.seq !== fragmentRecords.length) {
    problems.push({ kind: 'missing', seq: end.seq, detail: `the end record closes ${end.seq} fragments: fragments before it are missing` });
    r.endRecord = true;
  } else {
    r.endRecord = true;
  }
  r.time = await fragmentTime(files, records, fragmentRecords, end, id, options, { startMs, expected, counted, demote, problems });
  return done(r);
}

/**
 * A recorder's export says which fragments its retention deleted (expired.json, unsigned): those reported missing
 * are reported as expired by retention instead — still absent, never authentic; the claim is the recorder's.
 */
async function relabelExpired(files: RecordingFiles, problems: readonly RecordingProblem[]): Promise<RecordingProblem[]> {
  if (!files.has(EXPIRED_FILE)) return [...problems];
  let info: ExpiredInfo | undefined;
  try {
    const v = JSON.parse(Buffer.from(await files.read(EXPIRED_FILE)).toString('utf8')) as { v?: unknown; ranges?: unknown };
    const ranges: unknown[] = Array.isArray(v.ranges) ? (v.ranges as unknown[]) : [];
    const ok = (x: unknown): boolean => {
      const e = x as Record<string, unknown> | null;
      return typeof e === 'object' && e !== null && Number.isSafeInteger(e['from']) && Number.isSafeInteger(e['to']) && typeof e['at'] === 'string' && typeof e['reason'] === 'string';
    };
    if (v.v === 1 && Array.isArray(v.ranges) && ranges.every(ok)) info = v as ExpiredInfo;
  } catch {
    info = undefined;
  }
  if (info === undefined) return [...problems, { kind: 'missing', detail: `${EXPIRED_FILE} is not a list of expired ranges: ignored` }];
  const ranges = info.ranges;
  return problems.map((p) => {
    if (p.kind !== 'missing' || p.seq === undefined) return p;
    const seq = p.seq;
    const x = ranges.find((e) => e.from <= seq && seq < e.to);
    return x === undefined ? p : { ...p, kind: 'expired', detail: `fragment ${seq}${p.start !== undefined ? ` (${p.start}–${p.end ?? p.start} s)` : ''} expired by retention on the recorder at ${x.at} (${x.reason}; the recorder's claim, unsigned)` };
  });
}

/**
 * A recorder's export says why it holds no verified copy of some fragments (absent.json, unsigned): a fragment
 * reported missing stays missing — the explanation is the recorder's claim — but the report says it.
 */
async function explainAbsent(files: RecordingFiles, problems: readonly RecordingProblem[]): Promise<RecordingProblem[]> {
  if (!files.has(ABSENT_FILE)) return [...problems];
  let info: AbsentInfo | undefined;
  try {
    const v = JSON.parse(Buffer.from(await files.read(ABSENT_FILE)).toString('utf8')) as { v?: unknown; fragments?: unknown };
    const ok = (x: unknown): boolean => {
      const e = x as Record<string, unknown> | null;
      return typeof e === 'object' && e !== null && Number.isSafeInteger(e['seq']) && typeof e['why'] === 'string';
    };
    if (v.v === 1 && Array.isArray(v.fragments) && (v.fragments as unknown[]).every(ok)) info = v as AbsentInfo;
  } catch {
    info = undefined;
  }
  if (info === undefined) return [...problems, { kind: 'missing', detail: `${ABSENT_FILE} is not a list of absent fragments: ignored` }];
  const why = new Map(info.fragments.map((f) => [f.seq, f.why]));
  return problems.map((p) => {
    const w = p.kind === 'missing' && p.seq !== undefined ? why.get(p.seq) : undefined;
    return w === undefined ? p : { ...p, detail: `${p.detail}: ${w} (the recorder's claim, unsigned)` };
  });
}

/** Consecutive runs (by sequence number) of fragment records, as [first, last]. */
function runs(list: readonly FragmentRecord[]): [FragmentRecord, FragmentRecord][] {
  const out: [FragmentRecord, FragmentRecord][] = [];
  for (const f of list) {
    const cur = out[out.length - 1];
    if (cur !== undefined && f.seq === cur[1].seq + 1) cur[1] = f;
    else out.push([f, f]);
  }
  return out;
}

interface TimeContext {
  readonly startMs: number;
  readonly expected: (seq: number) => boolean;
  /** Fragments still counted authentic. */
  readonly counted: ReadonlySet<number>;
  readonly demote: (seq: number) => void;
  readonly problems: RecordingProblem[];
}

/**
 * The time rules over the records (docs/signed-video.md §6): the tokens of timestamps.jsonl judged against the
 * record hashes, the proven bounds of every run of fragments, revocation knowledge for the claimed time, and — when
 * the signer was revoked as compromised — an 'unproven' problem for everything no token proves older than that.
 */
async function fragmentTime(
  files: RecordingFiles,
  records: readonly AnyRecord[],
  fragments: readonly FragmentRecord[],
  end: EndRecord | undefined,
  id: SignerIdentity,
  options: FragmentLayerOptions,
  ctx: TimeContext,
): Promise<FragmentTime> {
  const policy = timePolicy(options);
  const iso = (ms: number): string => new Date(ms).toISOString();
  let tokens: TimeProof[] = [];
  if (files.has(TIMESTAMPS_FILE)) {
    const { entries, problems } = parseTokenEntries(Buffer.from(await files.read(TIMESTAMPS_FILE)).toString('utf8'));
    const labels = records.map((rec) => ('kind' in rec ? `the ${rec.kind} record` : `fragment ${rec.seq}`));
    tokens = await judgeTokens(
      entries,
      records.map(recordHash),
      {
        ...(options.tsaRoots !== undefined ? { roots: options.tsaRoots } : {}),
        ...(options.crls !== undefined ? { crls: options.crls } : {}),
        ...(options.now !== undefined ? { now: options.now } : {}),
      },
      labels,
    );
    tokens.push(...problems.map((p) => ({ line: p.line, record: -1, valid: false, reason: p.reason })));
    tokens.sort((a, b) => a.line - b.line);
  }
  const proven = provenByPosition(tokens, records.length);
  const position = new Map<AnyRecord, number>(records.map((rec, i) => [rec, i]));
  const provenAt = (rec: AnyRecord): number | undefined => proven[position.get(rec) ?? records.length];
  const notBefore = id.notBefore ?? ctx.startMs;
  const shown = fragments.filter((f) => ctx.expected(f.seq));
  const lastEnd = fragments.reduce((m, f) => Math.max(m, f.end), 0);
  // a time-stamp bounds the claims too: material cannot claim a time after the time it is proven to have existed
  const early = shown.filter((f) => {
    const t = provenAt(f);
    return ctx.counted.has(f.seq) && t !== undefined && futureClaim(ctx.startMs + f.end * 1000, { now: t, maxSkewMs: policy.maxSkewMs }, '') !== undefined;
  });
  for (const [a, b] of runs(early)) {
    const t = provenAt(a) as number;
    ctx.problems.push({ kind: 'future', seq: a.seq, start: a.start, end: b.end, detail: `${a === b ? `fragment ${a.seq}` : `fragments ${a.seq}–${b.seq}`} claims ${iso(ctx.startMs + a.end * 1000)}, but an RFC 3161 time-stamp proves it existed by ${iso(t)} (skew allowed ${policy.maxSkewMs / 1000} s): the claimed time is false` });
  }
  early.forEach((f) => ctx.demote(f.seq));
  const c = id.compromise;
  if (c !== undefined) {
    const unproven = shown.filter((f) => ctx.counted.has(f.seq) && !provenBefore(c, provenAt(f)));
    for (const [a, b] of runs(unproven)) {
      ctx.problems.push({ kind: 'unproven', seq: a.seq, start: a.start, end: b.end, detail: unprovenReason(c, provenAt(a), a === b ? `fragment ${a.seq}` : `fragments ${a.seq}–${b.seq}`) });
    }
    unproven.forEach((f) => ctx.demote(f.seq));
    if (end !== undefined && !provenBefore(c, provenAt(end))) ctx.problems.push({ kind: 'unproven', seq: end.seq, detail: unprovenReason(c, provenAt(end), 'the end record') });
    if (shown.length === 0 && !provenBefore(c, proven[0])) ctx.problems.push({ kind: 'unproven', detail: unprovenReason(c, proven[0], 'the session record') });
  }
  const ranges: TimeRange[] = [];
  for (const f of shown) {
    const t = provenAt(f);
    const last = ranges[ranges.length - 1];
    const notAfter = t !== undefined ? iso(t) : null;
    if (last !== undefined && last.lastSeq + 1 === f.seq && last.notAfter === notAfter) {
      last.lastSeq = f.seq;
      last.end = f.end;
      last.claimedTo = iso(ctx.startMs + f.end * 1000);
      continue;
    }
    const by = t !== undefined ? tokens.find((p) => p.valid && p.notAfter !== undefined && Date.parse(p.notAfter) === t && p.record >= (position.get(f) ?? 0)) : undefined;
    ranges.push({
      firstSeq: f.seq,
      lastSeq: f.seq,
      start: f.start,
      end: f.end,
      claimedFrom: iso(ctx.startMs + f.start * 1000),
      claimedTo: iso(ctx.startMs + f.end * 1000),
      notBefore: iso(notBefore),
      notAfter,
      proof: by !== undefined ? `time-stamp ${by.line} over ${by.covers ?? `record ${by.record}`} by ${by.tsa ?? 'a TSA'}, genTime ${by.genTime ?? '?'}` : "no time-stamp: only the camera's claimed time",
    });
  }
  const claimedTo = ctx.startMs + lastEnd * 1000;
  return {
    verifiedAt: iso(policy.now),
    maxSkewSeconds: policy.maxSkewMs / 1000,
    claimed: { from: iso(ctx.startMs), to: iso(claimedTo) },
    notBefore: iso(notBefore),
    ...(c !== undefined ? { compromise: { time: iso(c.time), reason: c.reason, subject: c.subject } } : {}),
    revocation: revocationKnowledge(options.crls !== undefined, id.crlThisUpdate, claimedTo),
    tokens,
    ranges,
  };
}

/** The SEI verifier's view of the fragment layer's proofs: session second → the earliest proof of its fragment. */
export function provenByFromReport(report: FragmentLayerReport): ((session: string, sec: number) => number | undefined) | undefined {
  const ranges = report.time?.ranges;
  if (ranges === undefined) return undefined;
  return (session, sec) => {
    if (session !== report.session) return undefined;
    const eps = 1e-6;
    const range = ranges.find((g) => sec >= g.start - eps && sec < g.end - eps);
    return range?.notAfter !== undefined && range.notAfter !== null ? Date.parse(range.notAfter) : undefined;
  };
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
  // an MP4 may carry its parameter sets only in avcC (GStreamer's mp4mux does): the slices need them to be read
  verifier.codecConfig([...track.avcC.sps, ...track.avcC.pps]);
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
    // the signer puts them right before the first slice: after AUD, parameter sets and other SEIs
    if (isVcl(t)) break;
    if (t === NalType.SEI && isSigning(nal)) out.push(Uint8Array.from(nal));
    pos += lengthSize + len;
  }
  return out;
}

export type { SessionRecord };
