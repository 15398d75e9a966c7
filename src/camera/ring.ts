/**
 * The camera's ring buffer — its "SD card" (issue 12): a directory of sessions, each in the recording layout
 * (src/recording/layout.ts), under a byte cap. It is the pipeline's ObjectSink and the uploader's queue.
 *
 *   RING/000001-<session>/   chain.pem, init.mp4, 000000.m4s …, records.jsonl (as `keyframe record` writes them)
 *                            uploaded.log  what the NVR acknowledged (one object a line: chain, init, seg N, rec N)
 *                            lost.jsonl    signed lost records about this session written by a later session
 *
 * Room is made fragment by fragment, oldest first: fragments the NVR acknowledged go first; when only
 * unacknowledged ones are left, the oldest of those are deleted and reported to the pipeline, which appends a
 * signed lost record to the current session's chain (and the ring copies it into the victim session's lost.jsonl,
 * so that session verifies offline with the loss named). Records, init segments and chains are small and are
 * deleted only with their session, once it is closed, empty and all uploaded.
 *
 * Crash safety: objects are written by SessionDirWriter (temporary name, fsync, rename; records fdatasync'd); on
 * open, leftover temporary files are removed and every session found is closed (a new one starts for new video);
 * an acknowledgement lost in a crash only means one idempotent resend. Memory: per stored fragment about 100
 * bytes and per record 16 bytes — bounded by the cap.
 */
import { closeSync, openSync, writeSync } from 'node:fs';
import { appendFile, mkdir, open, readdir, readFile, rm, stat, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { InputError } from '../errors.js';
import { CHAIN_FILE, INIT_FILE, LOST_FILE, RECORDS_FILE, segmentName, segmentSeq } from '../recording/layout.js';
import type { AnyRecord } from '../recording/records.js';
import type { FragmentMeta, LostRange, ObjectSink, SessionStart, SessionSummary } from './pipeline.js';
import { SessionDirWriter } from './session-dir.js';

export const UPLOADED_FILE = 'uploaded.log';
const SESSION_DIR = /^(\d{6,})-([0-9a-f]{32})$/;

export type RingObject =
  | { readonly session: string; readonly kind: 'chain' }
  | { readonly session: string; readonly kind: 'init' }
  | { readonly session: string; readonly kind: 'seg'; readonly index: number }
  | { readonly session: string; readonly kind: 'rec'; readonly index: number };

interface Segment {
  bytes: number;
  start: number;
  end: number;
  created: number;
  acked: boolean;
}

/** Unacknowledged record lines kept in memory per session (about 350 B each); older ones are read from the file. */
const RECENT_RECORDS = 1024;

class RingSession {
  readonly segments = new Map<number, Segment>();
  /** Byte offset and length of each record line in records.jsonl, and when it was written. */
  readonly recordOffsets: number[] = [];
  readonly recordLengths: number[] = [];
  readonly recordCreated: number[] = [];
  readonly recordsAcked = new Set<number>();
  /** Record lines written by this process and not yet acknowledged (the uploader reads them from here, not the file). */
  readonly recentRecords = new Map<number, string>();
  recordsBytes = 0;
  chain = false;
  init = false;
  initBytes = 0;
  chainBytes = 0;
  chainAcked = false;
  initAcked = false;
  ended = false;
  created = Date.now();
  writer: SessionDirWriter | undefined;
  constructor(
    readonly ordinal: number,
    readonly id: string,
    readonly dir: string,
  ) {}

  /**
   * uploaded.log, open for appending while the session is in the ring (one line per acknowledgement). Appended
   * synchronously and never flushed: a line is a few bytes in the page cache, and one lost in a crash only means
   * an idempotent resend.
   */
  private acks: number | undefined;

  appendAck(line: string): void {
    try {
      this.acks ??= openSync(join(this.dir, UPLOADED_FILE), 'a');
      writeSync(this.acks, line);
    } catch {
      this.closeAcks(); // reopened by the next acknowledgement
    }
  }

  closeAcks(): void {
    const fd = this.acks;
    this.acks = undefined;
    if (fd !== undefined) {
      try {
        closeSync(fd);
      } catch {
        // already gone
      }
    }
  }

  get bytes(): number {
    let n = this.recordsBytes + this.initBytes + this.chainBytes;
    for (const s of this.segments.values()) n += s.bytes;
    return n;
  }

  /** Everything acknowledged (and the session closed): nothing left to upload. */
  get settled(): boolean {
    if (!this.ended || (this.chain && !this.chainAcked) || (this.init && !this.initAcked)) return false;
    if (this.recordsAcked.size < this.recordOffsets.length) return false;
    for (const s of this.segments.values()) if (!s.acked) return false;
    return true;
  }
}

/**
 * A segment as the pipeline produces it (live): each CMAF chunk the moment it exists, then `complete` once the whole
 * segment is durable in the ring (and pending upload). Not durable before that: the live streamer's business only.
 */
export type LiveSegmentEvent =
  | { readonly kind: 'chunk'; readonly session: string; readonly seq: number; readonly index: number; readonly data: readonly Uint8Array[] }
  | { readonly kind: 'complete'; readonly session: string; readonly seq: number };

export interface RingUsage {
  readonly bytes: number;
  readonly cap: number;
  readonly sessions: number;
  readonly fragments: number;
  readonly pending: number;
  /** Age of the oldest object not yet acknowledged, ms (0 when none). */
  readonly lagMs: number;
  /** Fragments deleted before upload since the ring was opened. */
  readonly lostFragments: number;
}

export class Ring implements ObjectSink {
  private readonly sessions = new Map<string, RingSession>();
  private nextOrdinal = 1;
  private current: RingSession | undefined;
  private lostFragments = 0;
  private readonly listeners = new Set<() => void>();
  private readonly liveListeners = new Set<(e: LiveSegmentEvent) => void>();

  private constructor(
    readonly dir: string,
    readonly cap: number,
  ) {}

  /** Opens (or creates) a ring: leftover temporary files go, every session found is closed and queued for upload. */
  static async open(dir: string, cap: number): Promise<Ring> {
    if (!Number.isSafeInteger(cap) || cap < 64 << 10) throw new InputError(`ring cap ${cap} bytes is too small (at least 64 KiB)`);
    await mkdir(dir, { recursive: true, mode: 0o700 });
    const ring = new Ring(dir, cap);
    const names = (await readdir(dir)).sort();
    for (const name of names) {
      const m = SESSION_DIR.exec(name);
      if (m === null) continue;
      const s = new RingSession(Number(m[1]), m[2] as string, join(dir, name));
      await ring.load(s);
      ring.sessions.set(s.id, s);
      ring.nextOrdinal = Math.max(ring.nextOrdinal, s.ordinal + 1);
    }
    return ring;
  }

  private async load(s: RingSession): Promise<void> {
    s.ended = true; // a session found on open is over: a new one starts for new video
    for (const name of await readdir(s.dir)) {
      if (name.startsWith('.') && name.endsWith('.tmp')) {
        await unlink(join(s.dir, name)); // a write cut by a crash: never a fragment
        continue;
      }
      const st = await stat(join(s.dir, name));
      if (name === CHAIN_FILE) {
        s.chain = true;
        s.chainBytes = st.size;
      } else if (name === INIT_FILE) {
        s.init = true;
        s.initBytes = st.size;
      } else {
        const seq = segmentSeq(name);
        if (seq !== undefined) s.segments.set(seq, { bytes: st.size, start: Number.NaN, end: Number.NaN, created: st.mtimeMs, acked: false });
      }
    }
    s.created = (await stat(s.dir)).mtimeMs;
    const text = await readFile(join(s.dir, RECORDS_FILE), 'utf8').catch(() => '');
    let offset = 0;
    for (const line of text.split('\n')) {
      const len = Buffer.byteLength(line);
      if (offset + len >= Buffer.byteLength(text)) break; // no newline: a line cut by a crash is not a record
      s.recordOffsets.push(offset);
      s.recordLengths.push(len);
      s.recordCreated.push(s.created);
      try {
        const r = JSON.parse(line) as { kind?: string; seq?: number; start?: number; end?: number };
        const seg = r.kind === undefined && r.seq !== undefined ? s.segments.get(r.seq) : undefined;
        if (seg !== undefined) {
          seg.start = r.start ?? Number.NaN;
          seg.end = r.end ?? Number.NaN;
        }
      } catch {
        // not ours to judge: the NVR and verify will
      }
      offset += len + 1;
    }
    s.recordsBytes = offset;
    const acked = await readFile(join(s.dir, UPLOADED_FILE), 'utf8').catch(() => '');
    for (const line of acked.split('\n')) this.applyAck(s, line.trim());
  }

  private applyAck(s: RingSession, line: string): void {
    const [kind, n] = line.split(' ');
    if (kind === 'chain') s.chainAcked = true;
    else if (kind === 'init') s.initAcked = true;
    else if (kind === 'seg' && n !== undefined) {
      const seg = s.segments.get(Number(n));
      if (seg !== undefined) seg.acked = true;
    } else if (kind === 'rec' && n !== undefined) {
      s.recordsAcked.add(Number(n));
      s.recentRecords.delete(Number(n));
    }
  }

  /** Called whenever there is something new to upload. */
  onChange(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private changed(): void {
    for (const l of this.listeners) l();
  }

  /** Segments as they are produced (chunks, then completion): the live streamer's feed. */
  onLive(listener: (e: LiveSegmentEvent) => void): () => void {
    this.liveListeners.add(listener);
    return () => this.liveListeners.delete(listener);
  }

  private live(e: LiveSegmentEvent): void {
    for (const l of this.liveListeners) l(e);
  }

  /** Whether the NVR acknowledged a session's start (chain, init segment, session record): it takes segments then. */
  startAcknowledged(session: string): boolean {
    const s = this.sessions.get(session);
    return s !== undefined && s.chainAcked && s.initAcked && s.recordsAcked.has(0);
  }

  // ── ObjectSink ────────────────────────────────────────────────────────────────────────────────────────────

  async beginSession(start: SessionStart): Promise<void> {
    const ordinal = this.nextOrdinal++;
    const dir = join(this.dir, `${ordinal.toString().padStart(6, '0')}-${start.session}`);
    await mkdir(dir, { mode: 0o700 });
    const s = new RingSession(ordinal, start.session, dir);
    s.writer = new SessionDirWriter(dir);
    this.sessions.set(s.id, s);
    this.current = s;
    await s.writer.chain(start.chainPem);
    s.chain = true;
    s.chainBytes = Buffer.byteLength(start.chainPem);
    this.changed();
  }

  async init(session: string, data: Uint8Array): Promise<void> {
    const s = this.recording(session);
    await s.writer?.init(data);
    s.init = true;
    s.initBytes = data.length;
    this.changed();
  }

  chunk(session: string, seq: number, index: number, data: readonly Uint8Array[]): void {
    if (this.liveListeners.size > 0) this.live({ kind: 'chunk', session, seq, index, data });
  }

  async segment(session: string, seq: number, chunks: readonly Uint8Array[], meta: FragmentMeta): Promise<readonly LostRange[]> {
    const s = this.recording(session);
    const need = chunks.reduce((n, c) => n + c.length, 0);
    const lost = await this.makeRoom(need);
    const bytes = (await s.writer?.segment(seq, chunks)) ?? need;
    s.segments.set(seq, { bytes, start: meta.start, end: meta.end, created: Date.now(), acked: false });
    if (this.liveListeners.size > 0) this.live({ kind: 'complete', session, seq });
    this.changed();
    return lost;
  }

  async record(session: string, _n: number, line: string, record: AnyRecord): Promise<void> {
    const s = this.recording(session);
    await s.writer?.record(line);
    if (s.recentRecords.size < RECENT_RECORDS) s.recentRecords.set(s.recordOffsets.length, line);
    s.recordOffsets.push(s.recordsBytes);
    s.recordLengths.push(Buffer.byteLength(line));
    s.recordCreated.push(Date.now());
    s.recordsBytes += Buffer.byteLength(line) + 1;
    if ('kind' in record && record.kind === 'lost' && record.of !== session) {
      const victim = this.sessions.get(record.of);
      if (victim !== undefined) await appendFile(join(victim.dir, LOST_FILE), `${line}\n`);
    }
    this.changed();
  }

  async endSession(session: string, _summary: SessionSummary): Promise<void> {
    const s = this.recording(session);
    s.ended = true;
    await s.writer?.close();
    s.writer = undefined;
    if (this.current === s) this.current = undefined;
    this.changed();
  }

  private recording(session: string): RingSession {
    const s = this.sessions.get(session);
    if (s === undefined || s.writer === undefined) throw new Error(`ring: session ${session} is not being recorded`);
    return s;
  }

  /** Frees `need` bytes: acknowledged fragments first, oldest first; then unacknowledged ones, reported as lost. */
  private async makeRoom(need: number): Promise<LostRange[]> {
    let total = this.bytesUsed();
    if (total + need <= this.cap) return [];
    const ordered = [...this.sessions.values()].sort((a, b) => a.ordinal - b.ordinal);
    // settled sessions go whole
    for (const s of ordered) {
      if (total + need <= this.cap) return [];
      if (s !== this.current && s.settled) {
        total -= s.bytes;
        await this.removeSession(s);
      }
    }
    for (const s of ordered) {
      for (const [seq, seg] of [...s.segments].sort((a, b) => a[0] - b[0])) {
        if (total + need <= this.cap) return [];
        if (!seg.acked) continue;
        await unlink(join(s.dir, segmentName(seq))).catch(() => undefined);
        s.segments.delete(seq);
        total -= seg.bytes;
      }
    }
    const lost: { s: RingSession; seq: number; seg: Segment }[] = [];
    for (const s of ordered) {
      for (const [seq, seg] of [...s.segments].sort((a, b) => a[0] - b[0])) {
        if (total + need <= this.cap) break;
        await unlink(join(s.dir, segmentName(seq))).catch(() => undefined);
        s.segments.delete(seq);
        total -= seg.bytes;
        lost.push({ s, seq, seg });
      }
      if (total + need <= this.cap) break;
    }
    this.lostFragments += lost.length;
    // consecutive fragments of one session make one range
    const ranges: LostRange[] = [];
    let cur: { of: string; from: number; to: number; start: number; end: number } | undefined;
    for (const { s, seq, seg } of lost) {
      if (cur !== undefined && cur.of === s.id && cur.to === seq) {
        cur.to = seq + 1;
        if (Number.isFinite(seg.end)) cur.end = seg.end;
        continue;
      }
      if (cur !== undefined) ranges.push(cur);
      cur = { of: s.id, from: seq, to: seq + 1, start: Number.isFinite(seg.start) ? seg.start : 0, end: Number.isFinite(seg.end) ? seg.end : Number.isFinite(seg.start) ? seg.start : 0 };
    }
    if (cur !== undefined) ranges.push(cur);
    return ranges;
  }

  private async removeSession(s: RingSession): Promise<void> {
    s.closeAcks();
    await rm(s.dir, { recursive: true, force: true });
    this.sessions.delete(s.id);
  }

  bytesUsed(): number {
    let n = 0;
    for (const s of this.sessions.values()) n += s.bytes;
    return n;
  }

  // ── the uploader's side ───────────────────────────────────────────────────────────────────────────────────

  /** Session ids, oldest first. */
  sessionIds(): string[] {
    return [...this.sessions.values()].sort((a, b) => a.ordinal - b.ordinal).map((s) => s.id);
  }

  currentSession(): string | undefined {
    return this.current?.id;
  }

  /**
   * The objects of a session not yet acknowledged, in upload order: chain, init, record 0 (the NVR needs them
   * first), then fragments and records in the order they were made (each fragment before its record).
   */
  pending(session: string): RingObject[] {
    const s = this.sessions.get(session);
    if (s === undefined) return [];
    const out: RingObject[] = [];
    if (s.chain && !s.chainAcked) out.push({ session, kind: 'chain' });
    if (s.init && !s.initAcked) out.push({ session, kind: 'init' });
    const segs = [...s.segments].filter(([, g]) => !g.acked).sort((a, b) => a[0] - b[0]);
    const recs: number[] = [];
    for (let i = 0; i < s.recordOffsets.length; i++) if (!s.recordsAcked.has(i)) recs.push(i);
    if (recs[0] === 0) out.push({ session, kind: 'rec', index: recs.shift() as number });
    // interleave: fragment k, then the records written after it (record k + 1 is fragment k's in a chain without lost records)
    let r = 0;
    for (const [seq] of segs) {
      out.push({ session, kind: 'seg', index: seq });
      while (r < recs.length && (recs[r] as number) <= seq + 1) out.push({ session, kind: 'rec', index: recs[r++] as number });
    }
    while (r < recs.length) out.push({ session, kind: 'rec', index: recs[r++] as number });
    return out;
  }

  /** The bytes of an object (a record without its newline); undefined when it is gone. */
  async read(o: RingObject): Promise<Buffer | undefined> {
    const s = this.sessions.get(o.session);
    if (s === undefined) return undefined;
    try {
      if (o.kind === 'chain') return await readFile(join(s.dir, CHAIN_FILE));
      if (o.kind === 'init') return await readFile(join(s.dir, INIT_FILE));
      if (o.kind === 'seg') return s.segments.has(o.index) ? await readFile(join(s.dir, segmentName(o.index))) : undefined;
      const recent = s.recentRecords.get(o.index);
      if (recent !== undefined) return Buffer.from(recent, 'utf8');
      const off = s.recordOffsets[o.index];
      const len = s.recordLengths[o.index];
      if (off === undefined || len === undefined) return undefined;
      const fh = await open(join(s.dir, RECORDS_FILE), 'r');
      try {
        const buf = Buffer.alloc(len);
        await fh.read(buf, 0, len, off);
        return buf;
      } finally {
        await fh.close();
      }
    } catch {
      return undefined;
    }
  }

  /** Records an acknowledgement (2xx, or the NVR's `have` answer). */
  async markUploaded(o: RingObject): Promise<void> {
    const s = this.sessions.get(o.session);
    if (s === undefined) return;
    const line = o.kind === 'chain' || o.kind === 'init' ? o.kind : `${o.kind} ${o.index}`;
    this.applyAck(s, line);
    s.appendAck(`${line}\n`);
  }

  /** When an object was made (ms since the epoch), for the upload lag. */
  createdAt(o: RingObject): number {
    const s = this.sessions.get(o.session);
    if (s === undefined) return Date.now();
    if (o.kind === 'seg') return s.segments.get(o.index)?.created ?? s.created;
    if (o.kind === 'rec') return s.recordCreated[o.index] ?? s.created;
    return s.created;
  }

  usage(now = Date.now()): RingUsage {
    let fragments = 0;
    let pending = 0;
    let oldest = now;
    for (const s of this.sessions.values()) {
      fragments += s.segments.size;
      for (const o of this.pending(s.id)) {
        pending++;
        oldest = Math.min(oldest, this.createdAt(o));
      }
    }
    return { bytes: this.bytesUsed(), cap: this.cap, sessions: this.sessions.size, fragments, pending, lagMs: pending > 0 ? now - oldest : 0, lostFragments: this.lostFragments };
  }

  /** Closes the current session's files (after a crash of the pipeline: the session stays open-ended). */
  async close(): Promise<void> {
    for (const s of this.sessions.values()) {
      s.closeAcks();
      await s.writer?.close();
      s.writer = undefined;
    }
  }
}
