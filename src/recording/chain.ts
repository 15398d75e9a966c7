/**
 * The record chain of one session, verified incrementally and without any key (issue 12): records and segment
 * hashes are fed in any order — a camera backfilling after an outage sends live first — and every record gets its
 * verdict as soon as what it depends on is known:
 *
 * - signature: valid under the session's signer key (checked when the record is fed);
 * - chained: its `prev` is the hash of record index − 1 (known once that record is held);
 * - counter increasing: its counter is above record index − 1's;
 * - segment (fragment records): the SHA-256 of the held segment `seq` equals the signed one.
 *
 * Pure: no I/O, no clock. The NVR keeps one per open session (src/nvr/ingest.ts); the link rule itself is
 * records.ts `recordLink`, shared with the offline verifier (`verifyRecordChain`).
 */
import type { KeyObject } from 'node:crypto';
import { MediaError } from '../errors.js';
import type { LostRecord } from '../nvr/protocol.js';
import { GENESIS, parseAnyRecord, recordHash, recordLink, recordSignatureValid } from './records.js';
import type { AnyRecord, EndRecord, FragmentRecord, SessionRecord } from './records.js';

export type ChainRecord = AnyRecord | LostRecord;
export type ChainRecordKind = 'session' | 'fragment' | 'lost' | 'end';

export function chainRecordKind(r: ChainRecord): ChainRecordKind {
  return 'kind' in r ? r.kind : 'fragment';
}

const HEX64 = /^[0-9a-f]{64}$/;
const SESSION_ID = /^[0-9a-f]{32}$/;

/** Parses one record of a chain: a session, fragment, end or lost record; MediaError for anything else. */
export function parseChainRecord(text: string, lineNo = 1): ChainRecord {
  let o: unknown;
  try {
    o = JSON.parse(text);
  } catch {
    throw new MediaError(`record on line ${lineNo} is not valid JSON`);
  }
  if (typeof o === 'object' && o !== null && (o as { kind?: unknown }).kind === 'lost') {
    const r = o as Record<string, unknown>;
    const int = (k: string): boolean => Number.isSafeInteger(r[k]) && (r[k] as number) >= 0;
    const ok =
      r['v'] === 1 &&
      typeof r['session'] === 'string' &&
      SESSION_ID.test(r['session']) &&
      typeof r['of'] === 'string' &&
      SESSION_ID.test(r['of']) &&
      int('from') &&
      int('to') &&
      (r['to'] as number) >= (r['from'] as number) &&
      typeof r['start'] === 'number' &&
      typeof r['end'] === 'number' &&
      r['reason'] === 'buffer-full' &&
      int('counter') &&
      typeof r['prev'] === 'string' &&
      HEX64.test(r['prev']) &&
      typeof r['sig'] === 'string';
    if (!ok) throw new MediaError(`record on line ${lineNo} is not a well-formed keyframe lost record`);
    return o as LostRecord;
  }
  return parseAnyRecord(text, lineNo);
}

export interface RecordVerdict {
  readonly index: number;
  readonly kind: ChainRecordKind;
  /** Signed by the session's signer, for this session. */
  readonly signature: boolean;
  /** Chained to record index − 1; undefined while that record is not held. */
  readonly chained?: boolean;
  /** Counter above record index − 1's; undefined while that record is not held. */
  readonly counterIncreases?: boolean;
  /** Fragment records: whether the held segment's bytes are the signed ones; undefined while it is not held. */
  readonly segment?: boolean;
}

interface Held {
  readonly record: ChainRecord;
  readonly hash: string;
  readonly signature: boolean;
}

export class IncrementalChainVerifier {
  private readonly records = new Map<number, Held>();
  /** Fragment seq → record index. */
  private readonly bySeq = new Map<number, number>();
  private readonly segments = new Map<number, string>();

  /** What record 1 must follow: the session record's hash and counter (or a genesis: 64 zeros, −1). */
  private readonly anchor: { readonly hash: string; readonly counter: number };
  /** The session id every record must carry (undefined: not checked — verifyRecordChain checks it elsewhere). */
  private readonly sessionId: string | undefined;

  /**
   * `start`: the session record (index 0), already checked against the signer's chain; or, for a chain judged
   * without its session record (records.ts verifyRecordChain), the hash and counter record 1 must follow.
   * `key`: the signer's key.
   */
  constructor(
    readonly key: KeyObject,
    start: SessionRecord | { readonly hash: string; readonly counter: number },
  ) {
    if ('sig' in start) {
      this.session = start;
      this.sessionId = start.session;
      this.anchor = { hash: recordHash(start), counter: start.counter };
      this.records.set(0, { record: start, hash: this.anchor.hash, signature: recordSignatureValid(start, key) });
    } else {
      this.sessionId = undefined;
      this.anchor = start;
    }
  }

  /** The session record, when the chain was started from it. */
  readonly session: SessionRecord | undefined;

  has(index: number): boolean {
    return this.records.has(index);
  }

  /** The record at `index`, if held. */
  record(index: number): ChainRecord | undefined {
    return this.records.get(index)?.record;
  }

  /** The fragment record of segment `seq`, if held. */
  fragmentRecord(seq: number): FragmentRecord | undefined {
    const i = this.bySeq.get(seq);
    return i === undefined ? undefined : (this.records.get(i)?.record as FragmentRecord | undefined);
  }

  /**
   * Feeds record `index` (> 0). `signature` may be passed when it was checked before (a restart re-reading its
   * index); otherwise it is checked now. Returns the verdicts that changed: this record's and its successor's.
   */
  addRecord(index: number, record: ChainRecord, signature?: boolean): RecordVerdict[] {
    if (index <= 0 || !Number.isSafeInteger(index)) throw new MediaError(`record index ${index}: only records after the session record are fed`);
    const sig = (signature ?? recordSignatureValid(record, this.key)) && (this.sessionId === undefined || record.session === this.sessionId);
    this.records.set(index, { record, hash: recordHash(record), signature: sig });
    if (chainRecordKind(record) === 'fragment' && sig) this.bySeq.set((record as FragmentRecord).seq, index);
    const out = [this.verdict(index)];
    if (this.records.has(index + 1)) out.push(this.verdict(index + 1));
    return out;
  }

  /** Takes back record `index` (the NVR quarantined it: it does not stand in the chain). */
  removeRecord(index: number): void {
    const held = this.records.get(index);
    if (held === undefined || index === 0) return;
    this.records.delete(index);
    if (chainRecordKind(held.record) === 'fragment' && this.bySeq.get((held.record as FragmentRecord).seq) === index) this.bySeq.delete((held.record as FragmentRecord).seq);
  }

  /** Feeds the SHA-256 of held segment `seq`; returns whether it matches its signed record (undefined: no record yet). */
  addSegment(seq: number, sha256: string): boolean | undefined {
    this.segments.set(seq, sha256);
    return this.segmentMatches(seq);
  }

  /** Forgets a held segment (it was quarantined). */
  dropSegment(seq: number): void {
    this.segments.delete(seq);
  }

  segmentMatches(seq: number): boolean | undefined {
    const r = this.fragmentRecord(seq);
    const h = this.segments.get(seq);
    return r === undefined || h === undefined ? undefined : r.sha256 === h;
  }

  /** The verdict of record `index` as far as it can be judged now. */
  verdict(index: number): RecordVerdict {
    const held = this.records.get(index);
    if (held === undefined) throw new MediaError(`record ${index} is not held`);
    const kind = chainRecordKind(held.record);
    const prev = index === 0 ? { hash: GENESIS, counter: -1 } : index === 1 ? this.anchor : this.records.get(index - 1);
    const before = prev === undefined ? undefined : 'record' in prev ? { hash: prev.hash, counter: prev.record.counter } : prev;
    const link = before === undefined ? undefined : recordLink(held.record, before.hash, before.counter);
    const seg = kind === 'fragment' ? this.segmentMatches((held.record as FragmentRecord).seq) : undefined;
    return {
      index,
      kind,
      signature: held.signature,
      ...(link !== undefined ? { chained: link.chained, counterIncreases: link.counterIncreases } : {}),
      ...(seg !== undefined ? { segment: seg } : {}),
    };
  }

  /** The end record, when held and signed. */
  get end(): EndRecord | undefined {
    for (const h of this.records.values()) if (h.signature && chainRecordKind(h.record) === 'end') return h.record as EndRecord;
    return undefined;
  }
}

/** A verdict that condemns its record: a bad signature, or a known predecessor it does not follow. */
export function verdictFails(v: RecordVerdict): boolean {
  return !v.signature || v.chained === false || v.counterIncreases === false;
}
