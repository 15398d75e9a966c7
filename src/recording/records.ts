/**
 * Fragment records (docs/signed-video.md §4): for every CMAF fragment of a recording, the camera signs a record
 * over the fragment's bytes as stored — ciphertext for an encrypted recording — with its time range, its counter
 * and the hash of the previous record. A recorder or an auditor then checks integrity (the hash of the stored
 * bytes), order and completeness (sequence numbers and the hash chain) and origin (the signature) without any
 * content key.
 *
 * Records are canonical JSON (keys sorted, no spaces); `prev` is the SHA-256 of the previous record's canonical
 * JSON including its signature, all zeros for the first record of a session; `sig` signs the canonical JSON of
 * the record without `sig`.
 */
import { createHash, verify as cryptoVerify } from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import { MediaError } from '../errors.js';
import { IncrementalChainVerifier } from './chain.js';
import type { RecordVerdict } from './chain.js';
import type { LostRecord } from '../nvr/protocol.js';

export interface FragmentRecord {
  readonly v: 1;
  /** Session id, 32 hex digits. */
  readonly session: string;
  /** Fragment index in the session, from 0. */
  readonly seq: number;
  /** The camera's monotonic counter at this fragment. */
  readonly counter: number;
  /** Media time range of the fragment, seconds. */
  readonly start: number;
  readonly end: number;
  /** SHA-256 of the fragment bytes (moof + mdat), hex. */
  readonly sha256: string;
  /**
   * Content key ID of the fragment, hex (signed; optional: recordings made before issue 12 do not carry it, and a
   * clear fragment has none). A camera that follows its group's epochs names each fragment's key here.
   */
  readonly kid?: string;
  /** SHA-256 of the previous record's canonical JSON, hex (64 zeros for the first). */
  readonly prev: string;
  /** Signature (base64) over the canonical JSON of the record without `sig`. */
  readonly sig: string;
}

export type UnsignedRecord = Omit<FragmentRecord, 'sig'>;

/** The first record of a session: who recorded, when, how it is encrypted, and the init segment's hash. */
export interface SessionRecord {
  readonly v: 1;
  readonly kind: 'session';
  readonly session: string;
  readonly serial: string;
  /** Capture time of the first frame, ISO 8601. */
  readonly start: string;
  readonly scheme: 'cbcs' | 'cenc' | 'none';
  /** Content key ID, hex ('' for a clear recording). */
  readonly kid: string;
  /** SHA-256 of the init segment, hex. */
  readonly init: string;
  readonly counter: number;
  readonly prev: string;
  readonly sig: string;
}

/** The last record of a session, written at a clean shutdown: a cut end is then detectable. */
export interface EndRecord {
  readonly v: 1;
  readonly kind: 'end';
  readonly session: string;
  /** The number of fragments in the session (one past the last fragment's seq). */
  readonly seq: number;
  readonly counter: number;
  /** Media time of the end of the session, seconds. */
  readonly end: number;
  /** 0: clean shutdown. */
  readonly reason: number;
  readonly prev: string;
  readonly sig: string;
}

export type { LostRecord };

export type AnyRecord = SessionRecord | FragmentRecord | EndRecord | LostRecord;

export { GENESIS, canonicalJson } from './canonical.js';
import { GENESIS, canonicalJson } from './canonical.js';

export function sha256Hex(data: Uint8Array | string): string {
  return createHash('sha256').update(data).digest('hex');
}

export function recordHash(record: AnyRecord): string {
  return sha256Hex(canonicalJson(record));
}

/** Signs a record with `sign` (the device key in its key store; ECDSA DER or RSA PKCS#1 v1.5 over SHA-256). */
export async function signRecord<const T extends object>(record: T, sign: (data: Uint8Array) => Promise<Uint8Array>): Promise<T & { readonly sig: string }> {
  const sig = await sign(Buffer.from(canonicalJson(record)));
  return { ...record, sig: Buffer.from(sig).toString('base64') };
}

export function recordSignatureValid(record: { readonly sig: string }, publicKey: KeyObject): boolean {
  const { sig, ...unsigned } = record;
  try {
    return cryptoVerify('sha256', Buffer.from(canonicalJson(unsigned)), publicKey, Buffer.from(sig, 'base64'));
  } catch {
    return false;
  }
}

/** Parses one line of records.jsonl; MediaError for anything that is not a well-formed record. */
export function parseRecord(line: string, lineNo: number): FragmentRecord {
  let r: unknown;
  try {
    r = JSON.parse(line);
  } catch {
    throw new MediaError(`record on line ${lineNo} is not valid JSON`);
  }
  const o = r as Record<string, unknown>;
  const ok =
    typeof r === 'object' &&
    r !== null &&
    o['v'] === 1 &&
    typeof o['session'] === 'string' &&
    /^[0-9a-f]{32}$/.test(o['session']) &&
    Number.isSafeInteger(o['seq']) &&
    Number.isSafeInteger(o['counter']) &&
    typeof o['start'] === 'number' &&
    typeof o['end'] === 'number' &&
    typeof o['sha256'] === 'string' &&
    /^[0-9a-f]{64}$/.test(o['sha256']) &&
    typeof o['prev'] === 'string' &&
    /^[0-9a-f]{64}$/.test(o['prev']) &&
    (o['kid'] === undefined || (typeof o['kid'] === 'string' && /^[0-9a-f]{32}$/.test(o['kid']))) &&
    typeof o['sig'] === 'string';
  if (!ok) throw new MediaError(`record on line ${lineNo} is not a keyframe fragment record`);
  return r as FragmentRecord;
}

const HEX64 = /^[0-9a-f]{64}$/;
const SESSION_ID = /^[0-9a-f]{32}$/;

/** Parses one line of records.jsonl as any record kind (session, fragment, lost, end); MediaError otherwise. */
export function parseAnyRecord(line: string, lineNo: number): AnyRecord {
  let r: unknown;
  try {
    r = JSON.parse(line);
  } catch {
    throw new MediaError(`record on line ${lineNo} is not valid JSON`);
  }
  if (typeof r !== 'object' || r === null) throw new MediaError(`record on line ${lineNo} is not a keyframe record`);
  const o = r as Record<string, unknown>;
  if (o['kind'] === undefined) return parseRecord(line, lineNo);
  const common = o['v'] === 1 && typeof o['session'] === 'string' && SESSION_ID.test(o['session']) && Number.isSafeInteger(o['counter']) && typeof o['prev'] === 'string' && HEX64.test(o['prev']) && typeof o['sig'] === 'string';
  if (common && o['kind'] === 'session') {
    const ok =
      typeof o['serial'] === 'string' &&
      typeof o['start'] === 'string' &&
      Number.isFinite(Date.parse(o['start'])) &&
      (o['scheme'] === 'cbcs' || o['scheme'] === 'cenc' || o['scheme'] === 'none') &&
      typeof o['kid'] === 'string' &&
      /^(?:[0-9a-f]{32})?$/.test(o['kid']) &&
      typeof o['init'] === 'string' &&
      HEX64.test(o['init']);
    if (ok) return r as SessionRecord;
  }
  if (common && o['kind'] === 'lost') {
    const from = o['from'];
    const to = o['to'];
    const ok =
      typeof o['of'] === 'string' &&
      SESSION_ID.test(o['of']) &&
      Number.isSafeInteger(from) &&
      Number.isSafeInteger(to) &&
      (from as number) >= 0 &&
      (to as number) > (from as number) &&
      typeof o['start'] === 'number' &&
      typeof o['end'] === 'number' &&
      o['reason'] === 'buffer-full';
    if (ok) return r as LostRecord;
  }
  if (common && o['kind'] === 'end') {
    if (Number.isSafeInteger(o['seq']) && typeof o['end'] === 'number' && Number.isInteger(o['reason'])) return r as EndRecord;
  }
  throw new MediaError(`record on line ${lineNo} is not a well-formed keyframe ${typeof o['kind'] === 'string' ? `${o['kind']} ` : ''}record`);
}

export type FragmentProblemKind = 'tampered' | 'missing' | 'unrecorded' | 'out-of-order' | 'bad-signature' | 'chain-broken' | 'counter';

export interface FragmentProblem {
  readonly kind: FragmentProblemKind;
  /** Record sequence number concerned (or fragment position for unrecorded fragments). */
  readonly seq: number;
  readonly start?: number;
  readonly end?: number;
  readonly detail: string;
}

export interface RecordChainReport {
  /** Records that verified: signature, chain, and the bytes of their fragment. */
  readonly authentic: number;
  readonly problems: readonly FragmentProblem[];
  /** Media time covered by authentic fragments, seconds. */
  readonly coveredSeconds: number;
}

/**
 * Checks a session's records against the stored fragments (SHA-256 of each stored moof+mdat, in file order),
 * without any content key: every record signed by `publicKey`, chained to its predecessor, counters increasing,
 * sequence numbers without gaps; and every record's fragment present, unaltered and in order. Records are matched
 * to stored fragments by hash, so one deleted fragment is reported as missing alone, a changed fragment as
 * tampered at its place, and a moved one as out of order.
 */
export interface ChainOptions {
  /** What the first record's `prev` must be (default 64 zeros; the session record's hash in a recording). */
  readonly genesis?: string;
  /** Whether a record's fragment is expected among the stored ones (default all: an export holds a range). */
  readonly expected?: (seq: number) => boolean;
  /**
   * What each record's `prev` must be, by position (default: the hash of the record before it, the first `genesis`):
   * a recording's chain may hold other records (lost records) between two fragment records.
   */
  readonly links?: readonly string[];
}

/** How a record links to the one before it in its chain (the checks the NVR and the offline verifier share). */
export interface RecordLink {
  /** Its `prev` is the hash of the record before it. */
  readonly chained: boolean;
  /** Its counter is above the one before it. */
  readonly counterIncreases: boolean;
}

/**
 * The link checks of one record against its predecessor (`prevHash`: the predecessor's record hash, or the genesis;
 * `prevCounter`: the predecessor's counter, −1 before the first). Pure; used record by record by
 * src/recording/chain.ts (the NVR's incremental verifier) and by verifyRecordChain below.
 */
export function recordLink(record: { readonly prev: string; readonly counter: number }, prevHash: string, prevCounter: number): RecordLink {
  return { chained: record.prev === prevHash, counterIncreases: record.counter > prevCounter };
}

export function verifyRecordChain(records: readonly FragmentRecord[], fragmentHashes: readonly string[], publicKey: KeyObject, options: ChainOptions = {}): RecordChainReport {
  const expected = options.expected ?? (() => true);
  const problems: FragmentProblem[] = [];
  const bad = new Set<number>();
  const flag = (i: number, p: FragmentProblem): void => {
    problems.push(p);
    bad.add(i);
  };
  // 1. the records themselves: signatures through the incremental verifier the NVR uses (chain.ts); sequence; the
  // chain link by the shared recordLink against what precedes each record in the recording's chain (`links`: a lost
  // record may sit between two fragment records); the counter held to the highest one before it (a stricter reading
  // than the verifier's "above its predecessor": one record cannot excuse the next)
  const chain = new IncrementalChainVerifier(publicKey, { hash: options.genesis ?? GENESIS, counter: -1 });
  let prevHash = options.genesis ?? GENESIS;
  let prevCounter = -1;
  records.forEach((r, i) => {
    const range = { start: r.start, end: r.end };
    const v = chain.addRecord(i + 1, r)[0] as RecordVerdict;
    if (!v.signature) flag(i, { kind: 'bad-signature', seq: r.seq, ...range, detail: `record ${r.seq}: signature does not verify` });
    if (r.seq !== i) flag(i, { kind: r.seq > i ? 'missing' : 'out-of-order', seq: r.seq, ...range, detail: `record at position ${i} has sequence number ${r.seq}: records ${i}…${r.seq - 1} are missing or out of order` });
    const link = recordLink(r, options.links?.[i] ?? prevHash, prevCounter);
    if (!link.chained) flag(i, { kind: 'chain-broken', seq: r.seq, ...range, detail: `record ${r.seq} does not chain to the record before it` });
    if (!link.counterIncreases) flag(i, { kind: 'counter', seq: r.seq, ...range, detail: `record ${r.seq}: counter ${r.counter} does not increase (previous ${prevCounter})` });
    prevHash = recordHash(r);
    prevCounter = Math.max(prevCounter, r.counter);
  });
  // 2. the stored fragments, matched by hash
  const positions = new Map<string, number[]>();
  fragmentHashes.forEach((h, i) => positions.set(h, [...(positions.get(h) ?? []), i]));
  const used = new Set<number>();
  const matched: (number | undefined)[] = records.map((r) => {
    if (!expected(r.seq)) return undefined;
    const pos = (positions.get(r.sha256) ?? []).find((p) => !used.has(p));
    if (pos !== undefined) used.add(pos);
    return pos;
  });
  let last = -1;
  records.forEach((r, i) => {
    const pos = matched[i];
    if (pos === undefined) return;
    if (pos < last) flag(i, { kind: 'out-of-order', seq: r.seq, start: r.start, end: r.end, detail: `fragment ${r.seq} (${r.start}–${r.end} s) is stored out of order (at position ${pos})` });
    last = Math.max(last, pos);
  });
  records.forEach((r, i) => {
    if (matched[i] !== undefined || !expected(r.seq)) return;
    const before = Math.max(-1, ...matched.slice(0, i).filter((p): p is number => p !== undefined));
    const afterCandidates = matched.slice(i + 1).filter((p): p is number => p !== undefined);
    const after = afterCandidates.length > 0 ? Math.min(...afterCandidates) : fragmentHashes.length;
    let slot: number | undefined;
    for (let p = before + 1; p < after; p++) {
      if (!used.has(p)) {
        slot = p;
        break;
      }
    }
    if (slot !== undefined) {
      used.add(slot);
      flag(i, { kind: 'tampered', seq: r.seq, start: r.start, end: r.end, detail: `fragment ${r.seq} (${r.start}–${r.end} s): stored bytes differ from what the camera signed` });
    } else {
      flag(i, { kind: 'missing', seq: r.seq, start: r.start, end: r.end, detail: `fragment ${r.seq} (${r.start}–${r.end} s) is not in the recording` });
    }
  });
  for (let p = 0; p < fragmentHashes.length; p++) {
    if (!used.has(p)) problems.push({ kind: 'unrecorded', seq: p, detail: `stored fragment at position ${p} has no signed record` });
  }
  let authentic = 0;
  let covered = 0;
  records.forEach((r, i) => {
    if (!bad.has(i) && expected(r.seq)) {
      authentic++;
      covered += r.end - r.start;
    }
  });
  return { authentic, problems, coveredSeconds: covered };
}
