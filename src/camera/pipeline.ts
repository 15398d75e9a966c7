/**
 * The camera pipeline's pure core (issue 12): source events → signer (ONVIF Media Signing and keyframe SEIs, the
 * device key in its key store behind a callback) → CENC ('cbcs' default, 'cenc') under the key provider's current
 * key → one CMAF fragment per GOP (a new KID starts with the next fragment) → signed, hash-chained records over
 * the bytes as stored (session record, one fragment record per fragment with its KID, lost records, end record).
 *
 * It does no I/O of its own: what it produces goes to an ObjectSink (a recording directory, the camera's ring
 * buffer), in an order that keeps a crash harmless — each fragment is durable in the sink before its record is
 * appended. A source 'lost' event ends the session cleanly (end record, the signer's end marker); the next frame
 * starts a new session. When the sink had to drop fragments not yet uploaded to make room, it says so and the
 * pipeline signs a lost record for them into the current session's chain.
 *
 * Memory: one GOP (packager) plus the signer's open units and the timing of the frames inside the signer.
 */
import { createHash } from 'node:crypto';
import { MediaError } from '../errors.js';
import { AccessUnitAssembler, isVcl, NalType, nalType, parseSps, writeLengthPrefixed } from '../media/h264/index.js';
import type { AccessUnit } from '../media/h264/index.js';
import { avcConfigFrom } from '../packager/input.js';
import type { InputSample } from '../packager/input.js';
import { CmafPackager, emptyStats } from '../packager/package.js';
import type { ContentKey, PackageStats } from '../packager/package.js';
import { GENESIS, canonicalJson, recordHash, signRecord } from '../recording/records.js';
import type { AnyRecord } from '../recording/records.js';
import { isUnitSigningSei } from '../signing/sei.js';
import type { StreamSigner } from '../signing/signer.js';
import type { KeyProvider } from './keys.js';
import { SOURCE_TIMESCALE, type SourceEvent, type SourceFrame } from './source.js';

/** End record reasons. */
export const END_CLEAN = 0;
/** The source stopped delivering ('lost' event): the session was closed, a new one starts with the next frame. */
export const END_SOURCE_LOST = 1;

/** Fragments a sink dropped, not yet uploaded, to make room. */
export interface LostRange {
  /** Session of the dropped fragments. */
  readonly of: string;
  /** Fragments from … to - 1. */
  readonly from: number;
  readonly to: number;
  /** Their media time range, seconds from that session's start. */
  readonly start: number;
  readonly end: number;
}

export interface SessionStart {
  readonly session: string;
  readonly serial: string;
  readonly start: Date;
  readonly chainPem: string;
}

export interface FragmentMeta {
  readonly start: number;
  readonly end: number;
  /** Content key ID, hex ('' when clear). */
  readonly kid: string;
}

/** Where the pipeline's objects go. Calls come in order; each resolves when its object is durable. */
export interface ObjectSink {
  beginSession(s: SessionStart): Promise<void>;
  init(session: string, data: Uint8Array): Promise<void>;
  /**
   * A CMAF chunk of segment `seq` (its `index`-th, from 0) the moment it is produced, before the segment is complete
   * — for a sink that streams live (the ring hands it to the uploader). Not durable: the whole segment follows in
   * `segment`. Called only with `chunkMs`.
   */
  chunk?(session: string, seq: number, index: number, data: readonly Uint8Array[]): void;
  /** A segment (its chunks: moof + mdat each, as buffers); returns fragments not yet uploaded that had to go to make room. */
  segment(session: string, seq: number, chunks: readonly Uint8Array[], meta: FragmentMeta): Promise<readonly LostRange[]>;
  /** Record `n` of the session's chain (canonical JSON, no newline). */
  record(session: string, n: number, line: string, record: AnyRecord): Promise<void>;
  endSession(session: string, summary: SessionSummary): Promise<void>;
}

export interface PipelineOptions {
  readonly serial: string;
  /** The device chain, PEM (device certificate, then its CA). */
  readonly chainPem: string;
  /** A fresh signer for a session whose first frame was captured at `start`. */
  readonly newSigner: (start: Date) => Promise<StreamSigner>;
  /** Signs a record (the device key: ECDSA DER or RSA PKCS#1 v1.5 over SHA-256). */
  readonly sign: (data: Uint8Array) => Promise<Uint8Array>;
  /** The camera's monotonic counter (the same one the signer uses). */
  readonly counter: { reserve(): Promise<bigint> };
  /** Content keys; without, the recording is clear (signed, not encrypted). */
  readonly keys?: KeyProvider;
  readonly scheme?: 'cbcs' | 'cenc';
  /** Frame rate for a last frame's duration when the source gives no later time (default 25). */
  readonly fps?: number;
  /**
   * CMAF chunks: each segment (GOP) is produced as chunks of at least this much media (ms; a chunk per frame when
   * smaller than a frame), each handed to the sink's `chunk` as soon as it is complete, so live video need not wait
   * for the GOP to close. The segment's bytes are its chunks in order; the record signs them whole. Without it a
   * segment is one chunk (moof + mdat).
   */
  readonly chunkMs?: number;
  readonly onFragment?: (f: { session: string; seq: number; seconds: number; bytes: number; kid: string }) => void;
  readonly onSession?: (s: SessionStart) => void;
}

export interface SessionSummary {
  readonly session: string;
  readonly start: string;
  readonly scheme: 'cbcs' | 'cenc' | 'none';
  /** KID of the first fragment (hex), when encrypted. */
  readonly kid?: string;
  readonly kids: readonly string[];
  readonly frames: number;
  readonly fragments: number;
  readonly seconds: number;
  readonly bytes: number;
  readonly seiBytes: number;
  readonly endReason: number;
}

export function hasPicture(au: AccessUnit): boolean {
  return au.nals.some((n) => isVcl(nalType(n)));
}

/**
 * Each fragment carries the signature of its own pictures: the signing SEIs the signer puts before the first slice
 * of a GOP's first access unit (they sign the GOP before) move to the end of that previous GOP's last access unit,
 * and picture-less access units (the signer's closing SEI) join the picture before them. A deleted fragment then
 * takes its pictures and their signature with it, and is reported missing rather than leaving the GOP before it
 * unsigned; a range export needs no SEI from outside the range but the certificate SEI.
 */
export function* withOwnSignatures(aus: Iterable<AccessUnit>, held: { au?: AccessUnit }): Generator<AccessUnit> {
  for (const au of aus) {
    if (held.au !== undefined && !hasPicture(au)) {
      held.au.nals.push(...au.nals);
      continue;
    }
    if (held.au !== undefined && au.isIdr) {
      const moved: Uint8Array[] = [];
      for (let i = 0; i < au.nals.length && !isVcl(nalType(au.nals[i] as Uint8Array)); ) {
        if (isUnitSigningSei(au.nals[i] as Uint8Array)) moved.push(...au.nals.splice(i, 1));
        else i++;
      }
      held.au.nals.push(...moved);
    }
    if (held.au !== undefined) yield held.au;
    held.au = au;
  }
}

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

/** Pulls source events one at a time, shared by the sessions a run makes. */
class EventReader {
  done = false;
  private readonly it: AsyncIterator<SourceEvent>;
  constructor(events: AsyncIterable<SourceEvent>) {
    this.it = events[Symbol.asyncIterator]();
  }
  async next(): Promise<SourceEvent | undefined> {
    if (this.done) return undefined;
    const r = await this.it.next();
    if (r.done === true) {
      this.done = true;
      return undefined;
    }
    return r.value;
  }
  async close(): Promise<void> {
    await this.it.return?.();
  }
}

/** Runs sessions until the source ends (its signal aborted); returns one summary per session. */
export async function runPipeline(events: AsyncIterable<SourceEvent>, sink: ObjectSink, options: PipelineOptions): Promise<SessionSummary[]> {
  const reader = new EventReader(events);
  const out: SessionSummary[] = [];
  try {
    while (!reader.done) {
      // a session starts at the first IDR picture after the start or a loss
      let first: SourceFrame | undefined;
      for (;;) {
        const e = await reader.next();
        if (e === undefined) break;
        if (e.type === 'frame' && e.frame.au.isIdr) {
          first = e.frame;
          break;
        }
      }
      if (first === undefined) break;
      out.push(await runSession(first, reader, sink, options));
    }
  } finally {
    await reader.close();
  }
  return out;
}

async function runSession(first: SourceFrame, reader: EventReader, sink: ObjectSink, o: PipelineOptions): Promise<SessionSummary> {
  const start = new Date(first.captured);
  const signer = await o.newSigner(start);
  const session = hex(signer.sessionId);
  const scheme = o.keys === undefined ? 'none' : (o.scheme ?? 'cbcs');
  const frameTicks = Math.round(SOURCE_TIMESCALE / (o.fps ?? 25));
  const t0 = first.dts;
  let endReason = END_CLEAN;
  const begin: SessionStart = { session, serial: o.serial, start, chainPem: o.chainPem };
  await sink.beginSession(begin);
  o.onSession?.(begin);

  // the frames of this session, until the source ends or is lost
  const frames = async function* (): AsyncGenerator<SourceFrame> {
    yield first;
    for (;;) {
      const e = await reader.next();
      if (e === undefined) return;
      if (e.type === 'lost') {
        endReason = END_SOURCE_LOST;
        return;
      }
      yield e.frame;
    }
  };

  // signer → access units with their own signatures, each picture with the times of the source frame it came from
  const timing = new WeakMap<AccessUnit, SourceFrame>();
  const pending: SourceFrame[] = [];
  const assembler = new AccessUnitAssembler();
  const held: { au?: AccessUnit } = {};
  const timed = (aus: Iterable<AccessUnit>): Iterable<AccessUnit> => {
    const list = [...aus];
    for (const au of list) {
      if (!hasPicture(au)) continue;
      const f = pending.shift();
      if (f !== undefined) timing.set(au, f);
    }
    return list;
  };
  const signedAus = async function* (): AsyncGenerator<AccessUnit> {
    for await (const f of frames()) {
      if (hasPicture(f.au)) pending.push(f);
      for (const nal of f.au.nals) for (const n of await signer.push(nal)) yield* withOwnSignatures(timed(assembler.push(n)), held);
    }
    for (const n of await signer.finish()) yield* withOwnSignatures(timed(assembler.push(n)), held);
    yield* withOwnSignatures(timed(assembler.flush()), held);
    if (held.au !== undefined) yield held.au;
  };
  const aus = signedAus();
  const firstOut = await aus.next();
  if (firstOut.done === true) throw new MediaError('the source delivered no picture');
  const firstAu = firstOut.value;
  const sps = firstAu.nals.filter((n) => nalType(n) === NalType.SPS);
  const pps = firstAu.nals.filter((n) => nalType(n) === NalType.PPS);
  const spsInfo = sps[0] !== undefined ? parseSps(sps[0]) : undefined;
  if (spsInfo === undefined || pps.length === 0) throw new MediaError('the first picture of the session carries no SPS/PPS');

  const track = { timescale: SOURCE_TIMESCALE, width: spsInfo.width, height: spsInfo.height, avcC: avcConfigFrom(sps, pps) };

  // the record chain
  let prev = GENESIS;
  let n = 0;
  const append = async (fields: Record<string, unknown>): Promise<void> => {
    const signed = (await signRecord({ ...fields, prev }, o.sign)) as unknown as AnyRecord;
    const line = canonicalJson(signed);
    await sink.record(session, n, line, signed);
    prev = recordHash(signed);
    n++;
  };
  const counter = async (): Promise<number> => Number(await o.counter.reserve());

  const kids: string[] = [];
  const keyFor = (): ContentKey => {
    const k = (o.keys as KeyProvider).current();
    const h = hex(k.kid);
    if (!kids.includes(h)) kids.push(h);
    return k;
  };
  const stats: PackageStats = emptyStats();
  const packager = new CmafPackager(track, { scheme, ...(o.keys !== undefined ? { keyFor } : {}) }, stats);
  await sink.init(session, packager.init);
  await append({ v: 1, kind: 'session', session, serial: o.serial, start: start.toISOString(), scheme, kid: kids[0] ?? '', init: createHash('sha256').update(packager.init).digest('hex'), counter: await counter() });

  // segments (one per GOP, begun at each IDR picture) of chunks; a picture's duration is known when the next arrives
  const chunkTicks = o.chunkMs !== undefined ? Math.max(1, Math.round((o.chunkMs * SOURCE_TIMESCALE) / 1000)) : undefined;
  const dtsOf = (au: AccessUnit): number | undefined => {
    const f = timing.get(au);
    return f !== undefined ? f.dts - t0 : undefined;
  };
  let dts = dtsOf(firstAu) ?? 0;
  let lastDuration = frameTicks;
  let fragments = 0;
  let seconds = 0;
  let open: { seq: number; base: number; kid: string; parts: Uint8Array[]; chunks: number; samples: InputSample[]; ticks: number } | undefined;
  const flushChunk = (): void => {
    if (open === undefined || open.samples.length === 0) return;
    const data = packager.chunk(open.samples);
    open.parts.push(...data);
    if (chunkTicks !== undefined) sink.chunk?.(session, open.seq, open.chunks, data);
    open.chunks++;
    open.samples = [];
    open.ticks = 0;
  };
  const endSegment = async (): Promise<void> => {
    if (open === undefined) return;
    flushChunk();
    const seg = open;
    open = undefined;
    const { baseDecodeTime, duration } = packager.endSegment();
    const h = createHash('sha256');
    for (const c of seg.parts) h.update(c);
    const from = baseDecodeTime / SOURCE_TIMESCALE;
    const to = (baseDecodeTime + duration) / SOURCE_TIMESCALE;
    const lost = await sink.segment(session, seg.seq, seg.parts, { start: from, end: to, kid: seg.kid });
    await append({ v: 1, session, seq: seg.seq, counter: await counter(), start: from, end: to, sha256: h.digest('hex'), ...(seg.kid !== '' ? { kid: seg.kid } : {}) });
    for (const l of lost) await append({ v: 1, kind: 'lost', session, of: l.of, from: l.from, to: l.to, start: l.start, end: l.end, reason: 'buffer-full', counter: await counter() });
    fragments = seg.seq + 1;
    seconds = to;
    o.onFragment?.({ session, seq: seg.seq, seconds: to, bytes: stats.outputBytes, kid: seg.kid });
  };
  /** The access unit before `next` (undefined: the session's last), now that its duration is known. */
  const place = (au: AccessUnit, next: AccessUnit | undefined): void => {
    const nextDts = next !== undefined ? dtsOf(next) : undefined;
    const duration = nextDts !== undefined && nextDts > dts ? nextDts - dts : lastDuration;
    lastDuration = duration;
    const seg = open as NonNullable<typeof open>;
    seg.samples.push({ data: writeLengthPrefixed(au.nals, 4), duration, isSync: au.isIdr, compositionOffset: timing.get(au)?.cto ?? 0 });
    seg.ticks += duration;
    dts += duration;
    if (chunkTicks !== undefined && seg.ticks >= chunkTicks) flushChunk();
  };
  let waiting: AccessUnit | undefined;
  const take = async (au: AccessUnit): Promise<void> => {
    if (waiting !== undefined) place(waiting, au);
    if (au.isIdr || open === undefined) {
      await endSegment();
      const seq = fragments;
      const kid = packager.beginSegment(seq, dts);
      open = { seq, base: dts, kid, parts: [], chunks: 0, samples: [], ticks: 0 };
    }
    waiting = au;
  };
  await take(firstAu);
  for await (const au of aus) await take(au);
  if (waiting !== undefined) place(waiting, undefined);
  await endSegment();
  await append({ v: 1, kind: 'end', session, seq: fragments, counter: await counter(), end: seconds, reason: endReason });
  const summary: SessionSummary = {
    session,
    start: start.toISOString(),
    scheme,
    ...(kids[0] !== undefined ? { kid: kids[0] } : {}),
    kids,
    frames: signer.stats.frames,
    fragments,
    seconds,
    bytes: stats.outputBytes,
    seiBytes: signer.stats.seiBytes,
    endReason,
  };
  await sink.endSession(session, summary);
  return summary;
}
