/**
 * What the NVR does with each ingest object (src/nvr/protocol.ts), apart from HTTP: the decision (stored,
 * duplicate, conflict, quarantined, too early), the durable write (store.ts) and the index row (db.ts), in that
 * order, one object of a session at a time. Keyless: every check is on signatures, hashes and certificates.
 *
 * - chain: parsed, its leaf must be the TLS client certificate and carry the path's serial, its path valid now
 *   under the manufacturer root (revocation by the current CRLs); else quarantined.
 * - init: stored; checked against the session record's `init` hash once both are held.
 * - rec/0: the session record: its session and serial those of the path, the chain valid at its claimed start,
 *   its signature by the chain's leaf; else quarantined. The receipt skew (receipt − claimed start) is kept.
 * - rec/n: a fragment, lost or end record: signed by the session's signer for this session, chained to its
 *   neighbours when they are held (IncrementalChainVerifier, shared with the offline verifier's link rule); else
 *   quarantined. A fragment record settles its segment: verified, or moved to quarantine if the bytes differ.
 * - seg/n: stored as pending-record until its record arrives, verified when it matches, quarantined when not.
 */
import { LiveFeed } from './live.js';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { MediaError, errnoCode } from '../errors.js';
import { parseCertificates } from '../pki/pem.js';
import { fingerprintSha256, publicKeyObject } from '../pki/verify.js';
import type { X509Certificate, X509Crl } from '../pki/x509.js';
import { IncrementalChainVerifier, chainRecordKind, parseChainRecord, verdictFails } from '../recording/chain.js';
import type { ChainRecord } from '../recording/chain.js';
import { canonicalJson, recordHash, recordSignatureValid, sha256Hex } from '../recording/records.js';
import type { EndRecord, FragmentRecord, SessionRecord } from '../recording/records.js';
import type { Logger } from '../server/log.js';
import { certSerial, establishSigner } from '../signing/trust.js';
import type { NvrIndex, SegmentRow } from './db.js';
import type { HaveAnswer, LostRecord, SeqRanges, SessionsAnswer } from './protocol.js';
import { BodyTooLarge, objectName } from './store.js';
import type { ReceivedBytes, ReceivedFile, SegmentStore } from './store.js';

/** A body as received: segments, init and chain in a temporary file, records in memory. */
type Body = ReceivedFile | ReceivedBytes;

/** The largest body of each object kind, in bytes. */
export interface ObjectLimits {
  readonly chain: number;
  readonly init: number;
  readonly seg: number;
  readonly rec: number;
}

/** A session start claimed this far ahead of its receipt raises a skew alarm (the verifier's default skew). */
const SKEW_ALARM_MS = 5 * 60_000;

/** Sessions whose verifier is kept in memory (one or two per camera are open at a time). */
const MAX_OPEN_VERIFIERS = 512;

export const DEFAULT_OBJECT_LIMITS: ObjectLimits = { chain: 64 * 1024, init: 1024 * 1024, seg: 64 * 1024 * 1024, rec: 64 * 1024 };

export interface IngestOptions {
  /** Keep each camera's segment in progress for live viewers who join mid-segment (live.ts; on with a viewers' listener). */
  readonly keepLiveSegment?: boolean;
  readonly index: NvrIndex;
  readonly store: SegmentStore;
  /** The manufacturer root(s) device chains must lead to. */
  readonly roots: readonly X509Certificate[];
  /** The CRLs in force now (the CRL watcher's current set). */
  readonly crls: () => readonly X509Crl[] | undefined;
  readonly limits?: ObjectLimits;
  /** Below this many free bytes on the store's file system, ingest answers 507. */
  readonly freeSpaceFloor?: number;
  readonly log: Logger;
  readonly now?: () => number;
}

export interface IngestResult {
  readonly status: number;
  readonly body: Record<string, unknown>;
}

/** An object a camera PUTs (`index` for seg and rec). */
export interface PutObject {
  readonly kind: 'chain' | 'init' | 'seg' | 'rec';
  readonly serial: string;
  readonly session: string;
  readonly index?: number;
}

const ok201 = (what: string): IngestResult => ({ status: 201, body: { stored: what } });
const ok200 = (what: string): IngestResult => ({ status: 200, body: { held: what } });

/** ENOSPC or EDQUOT, raw or as ioError made it (its cause). */
function diskFull(e: unknown): boolean {
  const codes = [errnoCode(e), errnoCode((e as { cause?: unknown } | undefined)?.cause)];
  return codes.includes('ENOSPC') || codes.includes('EDQUOT');
}

/** Half-open ranges of the sorted numbers `ns`. */
export function toRanges(ns: readonly number[]): SeqRanges {
  const out: [number, number][] = [];
  for (const n of ns) {
    const last = out[out.length - 1];
    if (last !== undefined && last[1] === n) last[1] = n + 1;
    else out.push([n, n + 1]);
  }
  return out;
}

export class IngestService {
  private readonly limits: ObjectLimits;
  private readonly queues = new Map<string, Promise<unknown>>();
  private readonly verifiers = new Map<string, IncrementalChainVerifier>();
  private readonly now: () => number;
  private inFlight = 0;
  private idle: (() => void) | undefined;
  /** Segments as their bytes arrive, before they are complete or verified: what live view reads (live.ts). */
  readonly live: LiveFeed;
  /** Objects refused for different bytes under a used name since start (the index keeps them all as alarms). */
  conflicts = 0;

  constructor(private readonly o: IngestOptions) {
    this.live = new LiveFeed(o.keepLiveSegment === true);
    this.limits = o.limits ?? DEFAULT_OBJECT_LIMITS;
    this.now = o.now ?? Date.now;
  }

  limitFor(kind: keyof ObjectLimits): number {
    return this.limits[kind];
  }

  /** Resolves when no PUT is being processed (for a clean shutdown). */
  async drained(): Promise<void> {
    if (this.inFlight === 0) return;
    await new Promise<void>((done) => (this.idle = done));
  }

  /** One PUT: `peer` is the TLS client certificate (already matched to the path's serial by the caller). */
  async put(obj: PutObject, peer: X509Certificate, body: Readable | AsyncIterable<Uint8Array>, contentLength: number | undefined): Promise<IngestResult> {
    this.inFlight++;
    try {
      return await this.putInner(obj, peer, body, contentLength);
    } finally {
      if (--this.inFlight === 0) this.idle?.();
    }
  }

  private async putInner(obj: PutObject, peer: X509Certificate, body: Readable | AsyncIterable<Uint8Array>, contentLength: number | undefined): Promise<IngestResult> {
    const limit = this.limits[obj.kind];
    if (contentLength !== undefined && contentLength > limit) return { status: 413, body: { error: `a ${obj.kind} object is at most ${limit} bytes` } };
    const floor = this.o.freeSpaceFloor ?? 0;
    if (floor > 0) {
      const free = await this.o.store.freeBytes();
      if (free - (contentLength ?? 0) < floor) {
        this.o.log.warn({ event: 'storage-full', free, floor, serial: obj.serial }, 'storage full: ingest answers 507');
        return { status: 507, body: { error: 'insufficient storage' } };
      }
    }
    let got: Body;
    const live = obj.kind === 'seg' && this.live.wanted(obj.serial) ? { serial: obj.serial, session: obj.session, seq: obj.index ?? 0 } : undefined;
    try {
      // records live in the index: no file of their own unless quarantined
      got =
        obj.kind === 'rec'
          ? await this.o.store.receiveBytes(body, limit)
          : await this.o.store.receive(body, limit, live !== undefined ? (data, offset) => this.live.emit({ kind: 'data', ...live, offset, data }) : undefined);
    } catch (e) {
      if (live !== undefined) this.live.emit({ kind: 'end', ...live, size: 0, status: 0 });
      if (e instanceof BodyTooLarge) return { status: 413, body: { error: `a ${obj.kind} object is at most ${limit} bytes` } };
      if (diskFull(e)) {
        this.o.log.warn({ event: 'storage-full', serial: obj.serial, error: (e as Error).message }, 'storage full while receiving: ingest answers 507');
        return { status: 507, body: { error: 'insufficient storage' } };
      }
      throw e;
    }
    const received = this.now();
    return this.serially(`${obj.serial}/${obj.session}`, async () => {
      try {
        const r = await this.decide(obj, peer, got, received);
        if (r.status >= 200 && r.status < 300) this.o.index.seen(obj.serial, received);
        // the answer (and the next object of this session) waits until the index rows are on disk
        await this.o.index.durable();
        if (live !== undefined) this.live.emit({ kind: 'end', ...live, size: got.size, status: r.status });
        return r;
      } finally {
        if ('tmp' in got) await this.o.store.discard(got.tmp);
      }
    });
  }

  private async serially<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const before = this.queues.get(key) ?? Promise.resolve();
    const run = before.then(fn, fn);
    const tail = run.catch(() => undefined);
    this.queues.set(key, tail);
    try {
      return await run;
    } finally {
      if (this.queues.get(key) === tail) this.queues.delete(key);
    }
  }

  private conflict(obj: PutObject, name: string, held: string, got: string): IngestResult {
    this.conflicts++;
    const detail = `${name}: different bytes under a used name (held SHA-256 ${held}, received ${got})`;
    this.o.index.alarm({ at: this.now(), serial: obj.serial, session: obj.session, kind: 'conflict', detail });
    this.o.log.warn({ event: 'alarm', alarm: 'conflict', serial: obj.serial, session: obj.session, object: name, held, received: got }, `ALARM: ${obj.serial} sent different bytes for ${obj.session}/${name}`);
    return { status: 409, body: { error: 'conflict: different bytes under a name already used' } };
  }

  private async quarantine(obj: PutObject, got: Body, received: number, reason: string): Promise<IngestResult> {
    const { sha256, size } = got;
    const name = objectName(obj.kind, obj.index);
    const tmp = 'tmp' in got ? got.tmp : await this.o.store.writeTemp(got.bytes);
    const path = await this.o.store.quarantine(tmp, obj.serial, obj.session, name, sha256);
    this.o.index.putQuarantine({ serial: obj.serial, session: obj.session, kind: obj.kind, idx: obj.index ?? null, sha256, size, path, reason, received });
    this.o.log.warn({ event: 'quarantined', serial: obj.serial, session: obj.session, object: name, reason }, `quarantined ${obj.serial}/${obj.session}/${name}: ${reason}`);
    return { status: 422, body: { error: 'quarantined', reason } };
  }

  /** Records arrive in memory (putInner receives them so), everything else in a temporary file. */
  private async decide(obj: PutObject, peer: X509Certificate, got: Body, received: number): Promise<IngestResult> {
    if ('bytes' in got) return this.putRecord(obj as PutObject & { index: number }, got, received);
    switch (obj.kind) {
      case 'chain':
        return this.putChain(obj, peer, got, received);
      case 'init':
        return this.putInit(obj, got, received);
      default:
        return this.putSegment(obj as PutObject & { index: number }, got, received);
    }
  }

  private async putChain(obj: PutObject, peer: X509Certificate, got: ReceivedFile, received: number): Promise<IngestResult> {
    const { index, store } = this.o;
    const { tmp, sha256 } = got;
    const held = index.session(obj.serial, obj.session);
    if (held?.chain_sha256 !== undefined && held.chain_sha256 !== null) return held.chain_sha256 === sha256 ? ok200('chain') : this.conflict(obj, 'chain', held.chain_sha256, sha256);
    const pem = await readFile(tmp);
    let certs: X509Certificate[];
    try {
      certs = parseCertificates(pem, 'chain');
    } catch {
      return this.quarantine(obj, got, received, 'the chain does not parse');
    }
    const leaf = certs[0];
    if (leaf === undefined) return this.quarantine(obj, got, received, 'the chain holds no certificate');
    if (!Buffer.from(leaf.rawData).equals(Buffer.from(peer.rawData))) return this.quarantine(obj, got, received, "the chain's certificate is not the TLS client certificate");
    if (certSerial(leaf) !== obj.serial) return this.quarantine(obj, got, received, `the chain's certificate is not for serial ${obj.serial}`);
    const id = await establishSigner(pem, new Date(received), this.trust());
    if (id.trust !== 'trusted') return this.quarantine(obj, got, received, `the chain is not valid now: ${id.reason ?? id.trust}`);
    await store.commit(tmp, store.path(obj.serial, obj.session, 'chain'));
    index.tx(() => {
      index.ensureSession(obj.serial, obj.session, received);
      index.setChain(obj.serial, obj.session, sha256, fingerprintSha256(leaf));
    });
    return ok201('chain');
  }

  private async putInit(obj: PutObject, got: ReceivedFile, received: number): Promise<IngestResult> {
    const { index, store } = this.o;
    const { tmp, sha256, size } = got;
    const held = index.session(obj.serial, obj.session);
    if (held?.init_sha256 !== undefined && held.init_sha256 !== null) return held.init_sha256 === sha256 ? ok200('init') : this.conflict(obj, 'init', held.init_sha256, sha256);
    if (held?.verified === 1) {
      const s = JSON.parse((index.record(obj.serial, obj.session, 0) as { json: string }).json) as SessionRecord;
      if (s.init !== sha256) return this.quarantine(obj, got, received, 'the init segment is not the one the session record signs');
    }
    await store.commit(tmp, store.path(obj.serial, obj.session, 'init'));
    index.tx(() => {
      index.ensureSession(obj.serial, obj.session, received);
      index.setInit(obj.serial, obj.session, sha256, size);
    });
    return ok201('init');
  }

  private trust(): { roots: readonly X509Certificate[]; crls?: readonly X509Crl[]; now: Date } {
    const crls = this.o.crls();
    return { roots: this.o.roots, ...(crls !== undefined ? { crls } : {}), now: new Date(this.now()) };
  }

  private parseBody(text: string): ChainRecord | IngestResult {
    let rec: ChainRecord;
    try {
      rec = parseChainRecord(text);
    } catch (e) {
      if (e instanceof MediaError) return { status: 400, body: { error: 'not a keyframe record' } };
      throw e;
    }
    if (canonicalJson(JSON.parse(text)) !== text) return { status: 400, body: { error: 'a record is sent as its canonical JSON' } };
    return rec;
  }

  private async putRecord(obj: PutObject & { index: number }, got: ReceivedBytes, received: number): Promise<IngestResult> {
    const { index } = this.o;
    const held = index.record(obj.serial, obj.session, obj.index);
    const text = got.bytes.toString('utf8');
    if (held !== undefined) {
      const got = sha256Hex(text);
      if (held.hash !== got) return this.conflict(obj, `rec/${obj.index}`, held.hash, got);
      // a retry after a crash between the record's commit and its segment's settling: settle now
      if (held.kind === 'fragment' && held.state === 'ok' && held.verified === 1) await this.settleIfPending(obj.serial, obj.session, JSON.parse(text) as FragmentRecord);
      return ok200(`rec/${obj.index}`);
    }
    const session = index.session(obj.serial, obj.session);
    if (obj.index === 0) {
      if (session?.chain_sha256 === undefined || session.chain_sha256 === null) return { status: 412, body: { error: 'the session record needs the chain first' } };
    } else if (session?.verified !== 1) {
      return { status: 412, body: { error: 'no verified session record for this session yet' } };
    }
    const parsed = this.parseBody(text);
    if ('status' in parsed) return parsed;
    const rec = parsed;
    const hash = recordHash(rec);
    const quarantineRecord = async (reason: string, verified: boolean): Promise<IngestResult> => {
      const r = await this.quarantine(obj, got, received, reason);
      index.putRecord({ serial: obj.serial, session: obj.session, idx: obj.index, kind: chainRecordKind(rec), json: text, hash, verified: verified ? 1 : 0, chain_linked: null, received, state: 'quarantined' });
      return r;
    };
    if (obj.index === 0) return this.putSessionRecord(obj, rec, text, hash, received, quarantineRecord);

    const verifier = await this.verifier(obj.serial, obj.session);
    if (chainRecordKind(rec) === 'session') return quarantineRecord('a second session record inside the session', recordSignatureValid(rec, verifier.key));
    const verdicts = verifier.addRecord(obj.index, rec);
    const own = verdicts[0];
    const next = verdicts[1];
    if (own === undefined || verdictFails(own) || (next !== undefined && next.chained === false)) {
      verifier.removeRecord(obj.index);
      const why = own?.signature !== true ? 'its signature does not verify for this session' : own.chained === false ? 'it does not chain to the record before it' : own.counterIncreases === false ? 'its counter does not increase' : 'the record after it does not chain to it';
      return quarantineRecord(`record ${obj.index}: ${why}`, own?.signature === true);
    }
    const startMs = session.start_ms ?? 0;
    // a fragment record settles its held segment: in the same commit when the bytes match (the usual case)
    const f = own.kind === 'fragment' ? (rec as FragmentRecord) : undefined;
    const seg = f !== undefined ? index.segment(obj.serial, obj.session, f.seq) : undefined;
    const settles = f !== undefined && seg !== undefined && seg.state !== 'quarantined';
    index.tx(() => {
      index.putRecord({ serial: obj.serial, session: obj.session, idx: obj.index, kind: own.kind, json: text, hash, verified: 1, chain_linked: own.chained === undefined ? null : 1, received });
      if (settles && seg.sha256 === f.sha256) index.setSegmentState(obj.serial, obj.session, f.seq, 'verified', this.segmentTimes(f, startMs, seg.received, session.kid));
      if (next !== undefined) index.setRecordLink(obj.serial, obj.session, obj.index + 1, next.chained === true && next.counterIncreases === true);
      if (own.kind === 'end') index.setEnded(obj.serial, obj.session);
      if (own.kind === 'lost') {
        const l = rec as LostRecord;
        index.putLost({ serial: obj.serial, session: obj.session, record_idx: obj.index, of_session: l.of, from_seq: l.from, to_seq: l.to, media_start: l.start, media_end: l.end });
      }
    });
    if (settles && seg.sha256 !== f.sha256) await this.settleSegment(obj.serial, obj.session, f, startMs, verifier);
    return ok201(`rec/${obj.index}`);
  }

  private async putSessionRecord(obj: PutObject & { index: number }, rec: ChainRecord, text: string, hash: string, received: number, quarantineRecord: (reason: string, verified: boolean) => Promise<IngestResult>): Promise<IngestResult> {
    const { index, store } = this.o;
    if (chainRecordKind(rec) !== 'session') return quarantineRecord('record 0 is not a session record', false);
    const s = rec as SessionRecord;
    if (s.session !== obj.session) return quarantineRecord(`the session record is for session ${s.session}`, false);
    if (s.serial !== obj.serial) return quarantineRecord(`the session record is for serial ${s.serial}`, false);
    const chainPem = await readFile(store.path(obj.serial, obj.session, 'chain'));
    const startMs = Date.parse(s.start);
    const id = await establishSigner(chainPem, new Date(startMs), this.trust());
    if (id.key === undefined || id.trust !== 'trusted') return quarantineRecord(`the chain is not valid at the claimed start ${s.start}: ${id.reason ?? id.trust}`, false);
    if (!recordSignatureValid(s, id.key)) return quarantineRecord('the session record signature does not verify with the chain', false);
    const session = index.session(obj.serial, obj.session);
    let initBad: string | undefined;
    if (session?.init_sha256 !== undefined && session.init_sha256 !== null && session.init_sha256 !== s.init) initBad = session.init_sha256;
    const skewMs = received - startMs;
    if (initBad !== undefined) {
      // the init held is not the one signed: it goes to quarantine, the session record stands
      const rel = await store.quarantineStored(store.path(obj.serial, obj.session, 'init'), obj.serial, obj.session, objectName('init'), initBad);
      index.tx(() => {
        index.putQuarantine({ serial: obj.serial, session: obj.session, kind: 'init', idx: null, sha256: initBad, size: session?.init_size ?? 0, path: rel, reason: 'the init segment is not the one the session record signs', received });
        index.setInit(obj.serial, obj.session, null, null);
      });
    }
    index.tx(() => {
      index.putRecord({ serial: obj.serial, session: obj.session, idx: 0, kind: 'session', json: text, hash, verified: 1, chain_linked: 1, received });
      index.setSessionRecord(obj.serial, obj.session, { start: s.start, startMs, scheme: s.scheme, kid: s.kid, skewMs });
    });
    this.keep(`${obj.serial}/${obj.session}`, new IncrementalChainVerifier(id.key, s));
    // a start claimed in the future, or long before the session record arrived: the camera's clock is off
    // (a backfilled session legitimately arrives late: only a claim ahead of the receipt time is flagged)
    if (skewMs < -SKEW_ALARM_MS) {
      const detail = `session start claimed ${s.start}, ${Math.round(-skewMs / 1000)} s after it was received (${new Date(received).toISOString()}): the camera's clock is ahead`;
      index.alarm({ at: received, serial: obj.serial, session: obj.session, kind: 'skew', detail });
      this.o.log.warn({ event: 'alarm', alarm: 'skew', serial: obj.serial, session: obj.session, skewMs }, `ALARM: ${obj.serial}: ${detail}`);
    }
    return ok201('rec/0');
  }

  private segmentTimes(f: FragmentRecord, startMs: number, received: number, sessionKid: string | null): { media_start: number; media_end: number; wall_start: number; wall_end: number; kid: string | null; skew_ms: number } {
    const wallEnd = Math.round(startMs + f.end * 1000);
    return { media_start: f.start, media_end: f.end, wall_start: Math.round(startMs + f.start * 1000), wall_end: wallEnd, kid: f.kid ?? sessionKid, skew_ms: received - wallEnd };
  }

  /** Settles a held segment still waiting for its record when the record is held and verified (crash recovery). */
  /**
   * At start: segments still awaiting a record that the index holds (the NVR was killed between committing the
   * record and settling its segment) are settled now — verified, or quarantined — instead of waiting for a retry
   * the camera may never send. Returns how many were settled.
   */
  async settlePending(): Promise<number> {
    const rows = this.o.index.sql
      .prepare<[], { serial: string; session: string; seq: number }>("SELECT g.serial, g.session, g.seq FROM segments g JOIN sessions s ON s.serial = g.serial AND s.session = g.session WHERE g.state = 'pending-record' AND s.verified = 1 ORDER BY g.serial, g.session, g.seq")
      .all();
    let settled = 0;
    for (const r of rows) {
      await this.serially(`${r.serial}/${r.session}`, async () => {
        const record = (await this.verifier(r.serial, r.session)).fragmentRecord(r.seq);
        if (record === undefined) return;
        await this.settleIfPending(r.serial, r.session, record);
        settled++;
      });
    }
    if (settled > 0) this.o.log.info({ event: 'settled-pending', count: settled }, `settled ${settled} segments whose records were committed before a crash`);
    return settled;
  }

  private async settleIfPending(serial: string, session: string, f: FragmentRecord): Promise<void> {
    if (this.o.index.segment(serial, session, f.seq)?.state !== 'pending-record') return;
    const s = this.o.index.session(serial, session);
    if (s?.verified !== 1) return;
    await this.settleSegment(serial, session, f, s.start_ms ?? 0, await this.verifier(serial, session));
  }

  /** A fragment record arrived: its held segment (if any) becomes verified, or goes to quarantine. */
  private async settleSegment(serial: string, session: string, f: FragmentRecord, startMs: number, verifier: IncrementalChainVerifier): Promise<void> {
    const { index, store } = this.o;
    const seg = index.segment(serial, session, f.seq);
    if (seg === undefined || seg.state === 'quarantined') return;
    const s = index.session(serial, session);
    if (seg.sha256 === f.sha256) {
      index.setSegmentState(serial, session, f.seq, 'verified', this.segmentTimes(f, startMs, seg.received, s?.kid ?? null));
      return;
    }
    verifier.dropSegment(f.seq);
    const rel = await store.quarantineStored(store.path(serial, session, 'seg', f.seq), serial, session, objectName('seg', f.seq), seg.sha256);
    index.tx(() => {
      index.putQuarantine({ serial, session, kind: 'seg', idx: f.seq, sha256: seg.sha256, size: seg.size, path: rel, reason: `segment ${f.seq} differs from its signed record`, received: seg.received });
      index.setSegmentState(serial, session, f.seq, 'quarantined');
    });
    this.o.log.warn({ event: 'quarantined', serial, session, object: objectName('seg', f.seq), reason: 'differs from its signed record' }, `quarantined ${serial}/${session}/${objectName('seg', f.seq)}: differs from its signed record`);
  }

  private async putSegment(obj: PutObject & { index: number }, got: ReceivedFile, received: number): Promise<IngestResult> {
    const { index, store } = this.o;
    const { tmp, sha256, size } = got;
    const name = `seg/${obj.index}`;
    const session = index.session(obj.serial, obj.session);
    const held = index.segment(obj.serial, obj.session, obj.index);
    if (held !== undefined && held.sha256 === sha256) {
      if (held.state === 'pending-record') {
        const record = session?.verified === 1 ? (await this.verifier(obj.serial, obj.session)).fragmentRecord(obj.index) : undefined;
        if (record !== undefined) await this.settleIfPending(obj.serial, obj.session, record);
      }
      return ok200(name);
    }
    if (session?.verified !== 1) {
      if (held !== undefined) return this.conflict(obj, name, held.sha256, sha256);
      return { status: 412, body: { error: 'no verified session record for this session yet' } };
    }
    const verifier = await this.verifier(obj.serial, obj.session);
    const record = verifier.fragmentRecord(obj.index);
    if (held !== undefined) {
      // a quarantined segment may be replaced by the bytes its record signs; anything else is a conflict
      if (!(held.state === 'quarantined' && record?.sha256 === sha256)) return this.conflict(obj, name, held.sha256, sha256);
    }
    const startMs = session.start_ms ?? 0;
    if (record !== undefined && record.sha256 !== sha256) {
      const r = await this.quarantine(obj, got, received, `segment ${obj.index} differs from its signed record`);
      if (held === undefined) index.putSegment({ serial: obj.serial, session: obj.session, seq: obj.index, size, sha256, state: 'quarantined', media_start: null, media_end: null, wall_start: null, wall_end: null, kid: null, received, skew_ms: null });
      return r;
    }
    await store.commit(tmp, store.path(obj.serial, obj.session, 'seg', obj.index));
    verifier.addSegment(obj.index, sha256);
    const row: SegmentRow =
      record === undefined
        ? { serial: obj.serial, session: obj.session, seq: obj.index, size, sha256, state: 'pending-record', media_start: null, media_end: null, wall_start: null, wall_end: null, kid: null, received, skew_ms: null }
        : { serial: obj.serial, session: obj.session, seq: obj.index, size, sha256, state: 'verified', ...this.segmentTimes(record, startMs, received, session.kid), received };
    index.putSegment(row);
    return ok201(name);
  }

  /** Keeps a session's verifier; memory stays bounded: the least recently opened ones go (the index rebuilds them). */
  private keep(key: string, v: IncrementalChainVerifier): void {
    this.verifiers.delete(key);
    this.verifiers.set(key, v);
    while (this.verifiers.size > MAX_OPEN_VERIFIERS) this.verifiers.delete(this.verifiers.keys().next().value as string);
  }

  /** The session's verifier, rebuilt from the index after a restart. */
  private async verifier(serial: string, session: string): Promise<IncrementalChainVerifier> {
    const key = `${serial}/${session}`;
    let v = this.verifiers.get(key);
    if (v === undefined) {
      const { index, store } = this.o;
      const rows = index.records(serial, session);
      const s = JSON.parse((rows[0] as { json: string }).json) as SessionRecord;
      const leaf = parseCertificates(await readFile(store.path(serial, session, 'chain')), 'chain')[0] as X509Certificate;
      v = new IncrementalChainVerifier(publicKeyObject(leaf), s);
      for (const r of rows) if (r.idx > 0 && r.state === 'ok') v.addRecord(r.idx, parseChainRecord(r.json), r.verified === 1);
      for (const g of index.segments(serial, session)) if (g.state !== 'quarantined') v.addSegment(g.seq, g.sha256);
    }
    this.keep(key, v);
    return v;
  }

  /** GET …/have. */
  have(serial: string, session: string): HaveAnswer | undefined {
    const { index } = this.o;
    const s = index.session(serial, session);
    if (s === undefined) return undefined;
    return {
      session,
      chain: s.chain_sha256 !== null,
      init: s.init_sha256 !== null,
      segments: toRanges(index.segments(serial, session).map((g) => g.seq)),
      records: toRanges(index.records(serial, session).map((r) => r.idx)),
      ended: s.ended === 1,
    };
  }

  /** GET …/sessions. */
  sessions(serial: string, before: string | undefined, limit: number): SessionsAnswer {
    const rows = this.o.index.sessions(serial, before, limit + 1);
    return { sessions: rows.slice(0, limit).map((r) => ({ session: r.session, start: r.start ?? '', ended: r.ended === 1 })), more: rows.length > limit };
  }
}

/** The records of a session in chain order, one canonical JSON line each: records.jsonl for an export. */
export function materialiseRecords(index: NvrIndex, serial: string, session: string): string {
  return index
    .records(serial, session)
    .filter((r) => r.state === 'ok')
    .map((r) => `${r.json}\n`)
    .join('');
}

/** The session directory as a recording an offline verifier reads: its files plus records.jsonl, in `out`. */
export async function exportSession(index: NvrIndex, store: SegmentStore, serial: string, session: string, out: string): Promise<void> {
  const { cp, mkdir, writeFile } = await import('node:fs/promises');
  await mkdir(out, { recursive: true });
  await cp(store.sessionDir(serial, session), out, { recursive: true });
  await writeFile(join(out, 'records.jsonl'), materialiseRecords(index, serial, session));
  // what retention deleted is reported "expired by retention", not "missing" (recording/layout.ts, expired.json)
  const expired = (await import('./retention-service.js')).expiredInfo(index, serial, session);
  if (expired !== undefined) await writeFile(join(out, 'expired.json'), `${JSON.stringify(expired)}\n`);
}

export type { EndRecord };
