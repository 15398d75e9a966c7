/**
 * The audit log as evidence (pure core, no I/O): a hash chain of canonical JSON entries with signed checkpoints.
 *
 * - An entry is canonical JSON (keys sorted, no white space) that carries its own sequence number; its leaf hash is
 *   RFC 6962's SHA-256(0x00 ‖ entry), and the chain is h_i = SHA-256(h_{i-1} ‖ leaf_i) with h_0 = 32 zero bytes.
 *   Editing, deleting or reordering an entry breaks the chain at that entry, which is named.
 * - The chain alone is not keyed: someone who can write the store could recompute it after an edit. So every N
 *   entries or T seconds the service signs a checkpoint over (origin, size, head) with its key (a key in a key
 *   store; for the KMS its identity key, certified by the operator CA). An edit before a checkpoint then no longer
 *   matches it, a truncation below a checkpoint's size is named, and the checkpoint's signature cannot be remade.
 *   Entries after the last checkpoint are protected by the chain only — a verifier says how many there are.
 *
 * The checkpoint body is text, modelled on the C2SP tlog-checkpoint (origin, size, head on their own lines); the
 * signature is ECDSA P-256 with SHA-256 (DER) over the body's bytes. The NVR's lock audit (nvr/locks.ts) uses the
 * same entry, leaf and chain rules.
 */
import { createHash, verify as verifySignature } from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import { canonicalJson } from '../recording/records.js';

/** h_0: 32 zero bytes, hex. */
export const GENESIS = '0'.repeat(64);

/** One stored entry of a chain: its canonical JSON and the hashes that link it. */
export interface ChainRow {
  readonly seq: number;
  readonly entry: string;
  readonly leaf: string;
  readonly prev: string;
  readonly hash: string;
}

/** A signed checkpoint over the first `size` entries, whose chain head is `head`. */
export interface Checkpoint {
  readonly size: number;
  readonly head: string;
  /** When it was signed (ms since the epoch, the signer's clock). */
  readonly at: number;
  /** The signed text (checkpointBody). */
  readonly body: string;
  /** ECDSA P-256 / SHA-256 over the body's UTF-8 bytes, DER, base64. */
  readonly signature: string;
}

/** RFC 6962 leaf hash of an entry: SHA-256(0x00 ‖ entry), hex. */
export function leafHash(entry: string): string {
  return createHash('sha256').update(Buffer.from([0])).update(entry, 'utf8').digest('hex');
}

/** h_i = SHA-256(h_{i-1} ‖ leaf_i), hex. */
export function chainHash(prev: string, leaf: string): string {
  return createHash('sha256').update(Buffer.from(prev, 'hex')).update(Buffer.from(leaf, 'hex')).digest('hex');
}

/**
 * The next row of a chain whose last row is `last` (undefined: the first). `fields` must not hold `seq`: it is the
 * row's own sequence number, put into the entry so that an entry cannot be moved.
 */
export function nextRow(last: { readonly seq: number; readonly hash: string } | undefined, fields: Readonly<Record<string, unknown>>): ChainRow {
  const seq = (last?.seq ?? 0) + 1;
  const entry = canonicalJson({ ...fields, seq });
  const leaf = leafHash(entry);
  const prev = last?.hash ?? GENESIS;
  return { seq, entry, leaf, prev, hash: chainHash(prev, leaf) };
}

export type ChainCheck = { ok: true; head: string; entries: number } | { ok: false; seq: number; problem: string };

/** Checks every leaf, link and sequence number; names the first broken entry. */
export function verifyChain(rows: readonly ChainRow[], start: { readonly seq: number; readonly hash: string } = { seq: 0, hash: GENESIS }): ChainCheck {
  let prev = start.hash;
  for (const [i, r] of rows.entries()) {
    const want = start.seq + i + 1;
    if (r.seq !== want) return { ok: false, seq: r.seq, problem: `found where entry ${want} belongs: an entry was removed, inserted or moved` };
    let parsed: { seq?: unknown };
    try {
      parsed = JSON.parse(r.entry) as { seq?: unknown };
    } catch {
      return { ok: false, seq: r.seq, problem: 'the entry is not JSON' };
    }
    if (typeof parsed !== 'object' || parsed === null || parsed.seq !== r.seq || canonicalJson(parsed) !== r.entry) return { ok: false, seq: r.seq, problem: 'the entry is not the canonical JSON of its sequence number (edited or moved)' };
    if (leafHash(r.entry) !== r.leaf) return { ok: false, seq: r.seq, problem: 'the entry does not hash to its leaf (edited)' };
    if (r.prev !== prev || chainHash(prev, r.leaf) !== r.hash) return { ok: false, seq: r.seq, problem: 'the entry does not chain to the one before it (an entry was edited, removed or inserted)' };
    prev = r.hash;
  }
  return { ok: true, head: prev, entries: start.seq + rows.length };
}

const BODY_HEADER = 'keyframe audit checkpoint v1';

/** The text a checkpoint signs. */
export function checkpointBody(origin: string, size: number, head: string, at: number): string {
  if (/[\n\r]/.test(origin) || origin === '') throw new RangeError('a checkpoint origin is one non-empty line');
  if (!Number.isSafeInteger(size) || size < 1) throw new RangeError('a checkpoint covers at least one entry');
  if (!/^[0-9a-f]{64}$/.test(head)) throw new RangeError('a chain head is 64 lower-case hex digits');
  return `${BODY_HEADER}\norigin ${origin}\nsize ${size}\nhead ${head}\ntime ${new Date(at).toISOString()}\n`;
}

/** Parses a checkpoint body; undefined when it is not one. */
export function parseCheckpointBody(body: string): { origin: string; size: number; head: string; at: number } | undefined {
  const m = /^keyframe audit checkpoint v1\norigin ([^\n\r]+)\nsize ([1-9][0-9]{0,15})\nhead ([0-9a-f]{64})\ntime ([0-9T:.Z-]+)\n$/.exec(body);
  if (m === null) return undefined;
  const size = Number(m[2]);
  const at = Date.parse(m[4] as string);
  if (!Number.isSafeInteger(size) || !Number.isFinite(at) || new Date(at).toISOString() !== m[4]) return undefined;
  return { origin: m[1] as string, size, head: m[3] as string, at };
}

/** What is wrong with a checkpoint by itself (body, origin, signature), or undefined when it is sound. */
export function checkpointProblem(c: Checkpoint, publicKey: KeyObject, origin: string): string | undefined {
  const parsed = parseCheckpointBody(c.body);
  if (parsed === undefined) return `checkpoint at entry ${c.size}: its body is not a checkpoint`;
  if (parsed.size !== c.size || parsed.head !== c.head || parsed.at !== c.at) return `checkpoint at entry ${c.size}: its fields differ from its signed body`;
  if (parsed.origin !== origin) return `checkpoint at entry ${c.size}: signed for ${JSON.stringify(parsed.origin)}, not ${JSON.stringify(origin)}`;
  let valid: boolean;
  try {
    valid = verifySignature('sha256', Buffer.from(c.body, 'utf8'), publicKey, Buffer.from(c.signature, 'base64'));
  } catch {
    valid = false;
  }
  return valid ? undefined : `checkpoint at entry ${c.size}: the signature does not verify with the signer's key`;
}

export interface LogCheck {
  readonly ok: boolean;
  /** Entries in the log. */
  readonly entries: number;
  readonly head: string;
  readonly checkpoints: number;
  /** The largest size a valid checkpoint vouches for. */
  readonly covered: number;
  /** Entries after the last checkpoint: protected by the chain alone. */
  readonly uncovered: number;
  /** The first problem, naming the entry (or the checkpoint) where the log stops being trustworthy. */
  readonly problem?: { readonly seq?: number; readonly checkpoint?: number; readonly message: string };
}

/**
 * Verifies a whole log: the chain, then every checkpoint (body, origin, signature with `publicKey`, head at its
 * size). `origin` is the signer's name the checkpoints must carry.
 */
export function verifyLog(rows: readonly ChainRow[], checkpoints: readonly Checkpoint[], publicKey: KeyObject, origin: string): LogCheck {
  const chain = verifyChain(rows);
  const sorted = [...checkpoints].sort((a, b) => a.size - b.size);
  const base = { entries: rows.length, head: chain.ok ? chain.head : '', checkpoints: checkpoints.length };
  // a checkpoint beyond the end: entries were cut off (named once the chain itself is whole)
  const beyond = sorted.filter((c) => c.size > rows.length).at(-1);
  let covered = 0;
  for (const c of sorted) {
    const problem = checkpointProblem(c, publicKey, origin);
    if (problem !== undefined) return { ok: false, ...base, covered, uncovered: rows.length - covered, problem: { checkpoint: c.size, message: problem } };
  }
  if (!chain.ok) return { ok: false, ...base, covered, uncovered: 0, problem: { seq: chain.seq, message: `entry ${chain.seq}: ${chain.problem}` } };
  if (beyond !== undefined) {
    return { ok: false, ...base, covered, uncovered: 0, problem: { seq: rows.length + 1, checkpoint: beyond.size, message: `the log ends at entry ${rows.length}, but a signed checkpoint covers ${beyond.size} entries: entries ${rows.length + 1}…${beyond.size} were removed` } };
  }
  let previous = 0;
  for (const c of sorted) {
    const row = rows[c.size - 1] as ChainRow;
    if (row.hash !== c.head) {
      return {
        ok: false,
        ...base,
        covered,
        uncovered: rows.length - covered,
        problem: { seq: previous + 1, checkpoint: c.size, message: `entries ${previous + 1}…${c.size} do not match the signed checkpoint at entry ${c.size}: one of them was altered and the chain recomputed` },
      };
    }
    previous = c.size;
    covered = c.size;
  }
  return { ok: true, ...base, covered, uncovered: rows.length - covered };
}
