/**
 * The rekey bundle: one signed, epoch-numbered message per rekey (a batch of joins and leaves, a refresh, or
 * the group's genesis), published once to the whole group.
 *
 *   bundle = version u8 (1) ‖ type u8 (1) ‖ groupId id ‖ epoch u64 ‖ prevEpochHash 32 ‖ issuedAt u64 (ms)
 *          ‖ reason u8 ‖ degree u8 ‖ height u8 ‖ count u32 ‖ wrap × count ‖ sigLen u16 ‖ signature
 *   wrap   = target u32 ‖ recipient u32 ‖ nonce 12 ‖ sealed 48                    (wrap.ts; 68 bytes)
 *
 * `prevEpochHash` is SHA-256 of the complete encoded bundle of epoch − 1 (32 zero bytes for epoch 1), so
 * bundles form a hash chain. `reason` is a set of flags (join 1, leave 2, refresh 4, genesis 8). The KMS signs
 * everything before `sigLen` (signature.ts: over groupId, epoch, prevEpochHash and the wraps, and the rest of
 * the header). Decoding is strict: degree 2 or 4, 1 ≤ height ≤ the degree's limit, epoch ≥ 1, known reason
 * flags only, every wrap's target an interior node of the tree and its recipient a child of the target, wraps in
 * strictly ascending (target, recipient) order, signature 1–1024 bytes, nothing trailing. So a valid bundle has
 * exactly one encoding.
 */
import { malformed, MSG, Reader, Writer, WIRE_VERSION } from './codec.js';
import { bytesEqual, HASH_BYTES, sha256 } from './kdf.js';
import { DEGREES, inTree, isChild, levelOf, maxHeight } from './nodes.js';
import type { Degree } from './nodes.js';
import { MAX_SIGNATURE_BYTES, signingInput } from './signature.js';
import type { Verifier } from './signature.js';
import { NONCE_BYTES, SEALED_BYTES } from './wrap.js';
import type { Wrap } from './wrap.js';

export const REASON = { join: 1, leave: 2, refresh: 4, genesis: 8 } as const;
export type ReasonName = keyof typeof REASON;
const ALL_REASONS = REASON.join | REASON.leave | REASON.refresh | REASON.genesis;

/** prevEpochHash of epoch 1. */
export const GENESIS_PREV_HASH: Uint8Array = new Uint8Array(HASH_BYTES);

export interface BundleBody {
  readonly groupId: string;
  readonly epoch: number;
  readonly prevEpochHash: Uint8Array;
  /** The KMS clock when it made the bundle (ms since the Unix epoch): for logs and audit, not checked by cameras. */
  readonly issuedAt: number;
  /** Flags of REASON. */
  readonly reason: number;
  readonly degree: Degree;
  /** The tree's height in this epoch; the root is node (height, 0). */
  readonly height: number;
  readonly wraps: readonly Wrap[];
}

export interface RekeyBundle extends BundleBody {
  readonly signature: Uint8Array;
}

export function reasonNames(flags: number): ReasonName[] {
  return (Object.keys(REASON) as ReasonName[]).filter((k) => (flags & REASON[k]) !== 0);
}

function compareWraps(a: Wrap, b: Wrap): number {
  return a.target - b.target || a.recipient - b.recipient;
}

/** Sorts wraps into the canonical (target, recipient) order. */
export function sortWraps(wraps: readonly Wrap[]): Wrap[] {
  return [...wraps].sort(compareWraps);
}

function checkBody(b: BundleBody, at?: number): void {
  if (!DEGREES.includes(b.degree)) throw malformed(`bundle: degree ${b.degree} (must be 2 or 4)`, at);
  if (!Number.isInteger(b.height) || b.height < 1 || b.height > maxHeight(b.degree)) throw malformed(`bundle: height ${b.height} out of range for degree ${b.degree}`, at);
  if (b.epoch < 1) throw malformed('bundle: epoch 0', at);
  if (b.reason === 0 || (b.reason & ~ALL_REASONS) !== 0) throw malformed(`bundle: reason flags ${b.reason}`, at);
}

function checkWrap(b: BundleBody, w: Wrap, prev: Wrap | undefined, at?: number): void {
  if (!inTree(b.degree, b.height, w.target) || levelOf(w.target) < 1) throw malformed(`bundle: wrap target ${w.target} is not an interior node`, at);
  if (!isChild(b.degree, w.target, w.recipient)) throw malformed(`bundle: wrap recipient ${w.recipient} is not a child of ${w.target}`, at);
  if (prev !== undefined && compareWraps(prev, w) >= 0) throw malformed('bundle: wraps not in strictly ascending (target, recipient) order', at);
}

/** The signed part of a bundle: everything before `sigLen`. */
export function encodeBundleBody(b: BundleBody): Uint8Array {
  checkBody(b);
  const w = new Writer().u8(WIRE_VERSION).u8(MSG.bundle).id(b.groupId, 'groupId').u64(b.epoch).fixed(b.prevEpochHash, HASH_BYTES, 'prevEpochHash');
  w.u64(b.issuedAt).u8(b.reason).u8(b.degree).u8(b.height).u32(b.wraps.length);
  let prev: Wrap | undefined;
  for (const x of b.wraps) {
    checkWrap(b, x, prev);
    w.u32(x.target).u32(x.recipient).fixed(x.nonce, NONCE_BYTES, 'wrap nonce').fixed(x.sealed, SEALED_BYTES, 'wrap ciphertext');
    prev = x;
  }
  return w.bytes();
}

function signatureField(signature: Uint8Array): Uint8Array {
  if (signature.length === 0 || signature.length > MAX_SIGNATURE_BYTES) throw malformed(`signature of ${signature.length} bytes (must be 1–${MAX_SIGNATURE_BYTES})`);
  return new Writer().u16(signature.length).fixed(signature, signature.length, 'signature').bytes();
}

/** Appends `sigLen ‖ signature` to a signed part. */
export function attachSignature(body: Uint8Array, signature: Uint8Array): Uint8Array {
  return new Uint8Array(Buffer.concat([body, signatureField(signature)]));
}

export function encodeBundle(b: RekeyBundle): Uint8Array {
  return attachSignature(encodeBundleBody(b), b.signature);
}

/** Reads `sigLen ‖ signature` at the end of a message. */
export function readSignature(r: Reader, what: string): Uint8Array {
  const at = r.p;
  const n = r.u16(`${what} signature length`);
  if (n === 0 || n > MAX_SIGNATURE_BYTES) throw malformed(`${what}: signature of ${n} bytes (must be 1–${MAX_SIGNATURE_BYTES})`, at);
  const s = r.fixed(n, `${what} signature`);
  r.end(what);
  return s;
}

export interface DecodedBundle {
  readonly bundle: RekeyBundle;
  /** The signed bytes (everything before the signature field). */
  readonly body: Uint8Array;
  /** SHA-256 of the whole encoding: the next bundle's prevEpochHash. */
  readonly hash: Uint8Array;
}

/** Decodes exactly one bundle filling `data`; GroupKeyError (KF_ERR_GROUPKEY_MESSAGE) for anything else. */
export function decodeBundle(data: Uint8Array): DecodedBundle {
  const r = new Reader(data);
  r.header(MSG.bundle, 'bundle');
  const groupId = r.id('bundle groupId');
  const epoch = r.u64('bundle epoch');
  const prevEpochHash = r.fixed(HASH_BYTES, 'bundle prevEpochHash');
  const issuedAt = r.u64('bundle issuedAt');
  const at = r.p;
  const reason = r.u8('bundle reason');
  const degree = r.u8('bundle degree') as Degree;
  const height = r.u8('bundle height');
  const head = { groupId, epoch, prevEpochHash, issuedAt, reason, degree, height, wraps: [] };
  checkBody(head, at);
  const count = r.u32('bundle wrap count');
  const wraps: Wrap[] = [];
  for (let i = 0; i < count; i++) {
    const wat = r.p;
    const target = r.u32('wrap target');
    const recipient = r.u32('wrap recipient');
    const w: Wrap = { target, recipient, nonce: r.fixed(NONCE_BYTES, 'wrap nonce'), sealed: r.fixed(SEALED_BYTES, 'wrap ciphertext') };
    checkWrap(head, w, wraps.at(-1), wat);
    wraps.push(w);
  }
  const body = data.subarray(0, r.p);
  const signature = readSignature(r, 'bundle');
  return { bundle: { ...head, wraps, signature }, body: Uint8Array.from(body), hash: sha256(data) };
}

/** SHA-256 of an encoded bundle. */
export function bundleHash(data: Uint8Array): Uint8Array {
  return sha256(data);
}

/** Does the KMS's signature on a decoded bundle verify? */
export function bundleSignatureValid(d: DecodedBundle, verify: Verifier): boolean {
  return verify(signingInput(d.body), d.bundle.signature);
}

/**
 * Checks a stored chain of bundles (a KMS's history, oldest first): each decodes, names `groupId` and its epoch,
 * the epochs follow each other, each bundle's prevEpochHash is the SHA-256 of the one before (the genesis bundle's
 * is zeros), and the last one's signature verifies — which, through the hashes, covers every bundle before it.
 * A genesis bundle after others starts a new chain (a rebase: a KMS that lost epochs starts a new history above
 * them); the last bundle of every chain must then be signed. Returns the first problem found, in words, or
 * undefined when the chain is whole.
 */
export function chainProblem(groupId: string, bundles: readonly { readonly epoch: number; readonly bytes: Uint8Array }[], verify: Verifier): string | undefined {
  let last: DecodedBundle | undefined;
  for (const b of bundles) {
    let d: DecodedBundle;
    try {
      d = decodeBundle(b.bytes);
    } catch (e) {
      return `the bundle of epoch ${b.epoch} does not decode (${(e as Error).message})`;
    }
    if (d.bundle.groupId !== groupId || d.bundle.epoch !== b.epoch) return `the row of epoch ${b.epoch} holds a bundle of ${d.bundle.groupId} epoch ${d.bundle.epoch}`;
    const restart = last !== undefined && (d.bundle.reason & REASON.genesis) !== 0;
    if (restart && last !== undefined) {
      if (b.epoch <= last.bundle.epoch || !bytesEqual(d.bundle.prevEpochHash, GENESIS_PREV_HASH)) return `the bundle of epoch ${b.epoch} starts a new history but does not follow epoch ${last.bundle.epoch}`;
      if (!bundleSignatureValid(last, verify)) return `the bundle of epoch ${last.bundle.epoch} was altered: its signature does not verify with the KMS's key`;
    } else if (last === undefined) {
      if (b.epoch === 1 && !bytesEqual(d.bundle.prevEpochHash, GENESIS_PREV_HASH)) return 'the genesis bundle (epoch 1) names a previous bundle';
    } else {
      if (b.epoch !== last.bundle.epoch + 1) return `the bundles of epochs ${last.bundle.epoch + 1}–${b.epoch - 1} are missing`;
      if (!bytesEqual(d.bundle.prevEpochHash, last.hash)) return `the bundle of epoch ${last.bundle.epoch} was altered: epoch ${b.epoch} names another hash for it`;
    }
    last = d;
  }
  if (last !== undefined && !bundleSignatureValid(last, verify)) return `the bundle of epoch ${last.bundle.epoch} was altered: its signature does not verify with the KMS's key`;
  return undefined;
}
