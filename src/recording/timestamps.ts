/**
 * Time-stamp tokens of a recording (docs/signed-video.md §4b): `timestamps.jsonl` beside `records.jsonl`, one line
 * per RFC 3161 token, in the order they were obtained:
 *
 *   { "v": 1, "record": N, "sha256": H, "token": B64 }
 *
 * `record` is the 0-based line of records.jsonl the token covers (0 = the session record), `sha256` that record's
 * hash — SHA-256 of its canonical JSON, signature included, the value its successor carries in `prev` — and `token`
 * the DER TimeStampToken (a CMS ContentInfo) whose message imprint is that hash, base64. Since every record chains
 * to the one before it, a token over record N proves that records 0…N — the session record, every fragment record up
 * to it and the bytes they sign — existed at the token's genTime. The file is not signed and needs not be: a token
 * proves itself (TSA signature, imprint), and a lost line only loses a proof.
 *
 * This module is pure: it parses and writes lines and evaluates tokens against a recording's record hashes.
 */
import { verifyTimeStampToken, type TimeStampInfo } from '../tsp/token.js';
import type { X509Certificate, X509Crl } from '../pki/x509.js';
import { canonicalJson } from './records.js';

export const TIMESTAMPS_FILE = 'timestamps.jsonl';

export interface TokenEntry {
  readonly v: 1;
  readonly record: number;
  readonly sha256: string;
  readonly token: string;
}

export function formatTokenEntry(entry: TokenEntry): string {
  return `${canonicalJson(entry)}\n`;
}

/** The lines of timestamps.jsonl (each with its 1-based line number); malformed lines are reported, not thrown. */
export function parseTokenEntries(text: string): { entries: (TokenEntry & { readonly line: number })[]; problems: { line: number; reason: string }[] } {
  const entries: (TokenEntry & { readonly line: number })[] = [];
  const problems: { line: number; reason: string }[] = [];
  text.split('\n').forEach((line, i) => {
    if (line.trim() === '') return;
    let o: unknown;
    try {
      o = JSON.parse(line);
    } catch {
      problems.push({ line: i + 1, reason: 'not valid JSON' });
      return;
    }
    const e = o as Record<string, unknown>;
    if (typeof o !== 'object' || o === null || e['v'] !== 1 || !Number.isSafeInteger(e['record']) || typeof e['sha256'] !== 'string' || !/^[0-9a-f]{64}$/.test(e['sha256']) || typeof e['token'] !== 'string') {
      problems.push({ line: i + 1, reason: 'not a time-stamp entry' });
      return;
    }
    entries.push({ ...(o as TokenEntry), line: i + 1 });
  });
  return { entries, problems };
}

/** One token of a recording, as judged. */
export interface TimeProof {
  /** Line of timestamps.jsonl (1-based). */
  readonly line: number;
  /** The record it covers: its position in records.jsonl (0 = session record), or -1 if none of this recording. */
  readonly record: number;
  /** That record in words: "the session record", "fragment 3", "the end record". */
  readonly covers?: string;
  readonly valid: boolean;
  readonly reason?: string;
  /** What the token says (when it could be read). */
  readonly genTime?: string;
  /** genTime plus accuracy: the covered records existed no later than this. */
  readonly notAfter?: string;
  readonly tsa?: string;
  readonly serialNumber?: string;
}

export interface TokenTrust {
  /** Trust anchors for TSAs; without any, no token can be verified. */
  readonly roots?: readonly X509Certificate[];
  readonly crls?: readonly X509Crl[];
  readonly now?: Date;
}

function summary(info: TimeStampInfo | undefined): Pick<TimeProof, 'genTime' | 'notAfter' | 'tsa' | 'serialNumber'> {
  if (info === undefined) return {};
  return { genTime: info.genTime, notAfter: info.notAfter, serialNumber: info.serialNumber, ...(info.tsa !== undefined ? { tsa: info.tsa.subject } : {}) };
}

/**
 * Judges every entry against the recording's record hashes (`recordHashes[i]` = hash of line i of records.jsonl):
 * the token must verify over the hash of a record of this recording, under a trusted TSA.
 */
export async function judgeTokens(
  entries: readonly (TokenEntry & { readonly line?: number })[],
  recordHashes: readonly string[],
  trust: TokenTrust,
  labels: readonly string[] = [],
): Promise<TimeProof[]> {
  const position = new Map<string, number>();
  recordHashes.forEach((h, i) => {
    if (!position.has(h)) position.set(h, i);
  });
  const out: TimeProof[] = [];
  for (const [i, e] of entries.entries()) {
    const line = e.line ?? i + 1;
    const record = position.get(e.sha256) ?? -1;
    if (record < 0) {
      out.push({ line, record, valid: false, reason: `covers ${e.sha256}, which is no record of this recording` });
      continue;
    }
    const covers = labels[record] !== undefined ? { covers: labels[record] } : {};
    if (trust.roots === undefined || trust.roots.length === 0) {
      out.push({ line, record, ...covers, valid: false, reason: 'not checked: no TSA root given (--tsa-root)' });
      continue;
    }
    const r = await verifyTimeStampToken(Buffer.from(e.token, 'base64'), {
      hash: Buffer.from(e.sha256, 'hex'),
      roots: trust.roots,
      ...(trust.crls !== undefined ? { crls: trust.crls } : {}),
      ...(trust.now !== undefined ? { now: trust.now } : {}),
    });
    out.push(r.valid ? { line, record, ...covers, valid: true, ...summary(r.info) } : { line, record, ...covers, valid: false, reason: r.reason, ...summary(r.info) });
  }
  return out;
}

/**
 * For each record position, the earliest time (epoch ms) by which it is proven to have existed: the smallest
 * notAfter of the valid tokens over it or over any later record (the chain carries the proof backwards).
 */
export function provenByPosition(proofs: readonly TimeProof[], records: number): (number | undefined)[] {
  const at: (number | undefined)[] = new Array<number | undefined>(records).fill(undefined);
  for (const p of proofs) {
    if (!p.valid || p.notAfter === undefined || p.record < 0 || p.record >= records) continue;
    const t = Date.parse(p.notAfter);
    const cur = at[p.record];
    if (cur === undefined || t < cur) at[p.record] = t;
  }
  let best: number | undefined;
  for (let i = records - 1; i >= 0; i--) {
    const t = at[i];
    if (t !== undefined && (best === undefined || t < best)) best = t;
    at[i] = best;
  }
  return at;
}
