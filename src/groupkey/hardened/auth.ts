/**
 * Group authentication bound to a fresh KMS challenge (the fix of attack A5), and its four messages.
 *
 *   H(roster) = SHA-256("gkd/roster/v1" ‖ u32 count ‖ id × count)       ids in ascending UTF-8 byte order
 *   tag_i     = HMAC-SHA256(K_i^auth, "gkd/auth/v1" ‖ groupId id ‖ epoch u64 ‖ N ‖ ID_i id ‖ H(roster))[0, 16)
 *   aggregate = tag_1 ⊕ … ⊕ tag_k over the cameras that answered
 *
 *   challenge = version ‖ type 3 ‖ groupId id ‖ epoch u64 ‖ N 32 ‖ H(roster) 32 ‖ sigLen u16 ‖ signature
 *   cameraTag = version ‖ type 4 ‖ groupId id ‖ epoch u64 ‖ N 32 ‖ memberId id ‖ tag 16
 *   aggregate = version ‖ type 5 ‖ groupId id ‖ epoch u64 ‖ N 32 ‖ count u32 ≥ 1 ‖ memberId id × count ‖ agg 16
 *   tagList   = version ‖ type 6 ‖ groupId id ‖ epoch u64 ‖ N 32 ‖ count u32 ≥ 1 ‖ (memberId id ‖ tag 16) × count
 *
 * N is 32 random bytes chosen by the KMS, single-use; the challenge is KMS-signed, so cameras answer only the
 * KMS. Every tag binds the group, the epoch, N, the camera and the roster the KMS expects, so a tag or aggregate
 * from another session, epoch or roster never verifies, and XOR-ing aggregates of different sessions gives
 * nothing (A5). The leader XORs the tags and relays (aggregate), keeping each camera's tag for blame (tagList)
 * when the aggregate fails. Lists are in strictly ascending UTF-8 byte order of the ids; decoding is strict.
 */
import { attachSignature, readSignature } from './bundle.js';
import { compareIds, malformed, MSG, Reader, Writer, WIRE_VERSION } from './codec.js';
import { HASH_BYTES, hmacSha256, sha256, xorInto } from './kdf.js';
import { signingInput } from './signature.js';
import type { Verifier } from './signature.js';

export const NONCE_BYTES = 32;
export const AUTH_TAG_BYTES = 16;
export const AUTH_LABEL = 'gkd/auth/v1';
export const ROSTER_LABEL = 'gkd/roster/v1';

/** Sorts and checks a roster (no duplicates); returns the canonical order. */
export function canonicalRoster(ids: Iterable<string>): string[] {
  const sorted = [...ids].sort(compareIds);
  for (let i = 1; i < sorted.length; i++) if (sorted[i - 1] === sorted[i]) throw malformed(`roster: duplicate id ${sorted[i]}`);
  return sorted;
}

export function rosterHash(ids: Iterable<string>): Uint8Array {
  const sorted = canonicalRoster(ids);
  const w = new Writer().u32(sorted.length);
  for (const id of sorted) w.id(id, 'roster id');
  return sha256(ROSTER_LABEL, w.bytes());
}

export interface TagContext {
  readonly groupId: string;
  readonly epoch: number;
  readonly nonce: Uint8Array;
  readonly memberId: string;
  readonly rosterHash: Uint8Array;
}

/** A camera's tag for a challenge. */
export function authTag(authKey: Uint8Array, c: TagContext): Uint8Array {
  const m = new Writer().id(c.groupId, 'groupId').u64(c.epoch).fixed(c.nonce, NONCE_BYTES, 'nonce').id(c.memberId, 'memberId').fixed(c.rosterHash, HASH_BYTES, 'rosterHash').bytes();
  return hmacSha256(authKey, AUTH_LABEL, m).subarray(0, AUTH_TAG_BYTES);
}

/** XOR of tags (16 zero bytes for none). */
export function xorTags(tags: Iterable<Uint8Array>): Uint8Array {
  const acc = new Uint8Array(AUTH_TAG_BYTES);
  for (const t of tags) xorInto(acc, t);
  return acc;
}

// ── messages ─────────────────────────────────────────────────────────────────────────────────────────────────────

interface Session {
  readonly groupId: string;
  readonly epoch: number;
  readonly nonce: Uint8Array;
}

export interface ChallengeBody extends Session {
  readonly rosterHash: Uint8Array;
}

export interface Challenge extends ChallengeBody {
  readonly signature: Uint8Array;
}

export interface CameraTag extends Session {
  readonly memberId: string;
  readonly tag: Uint8Array;
}

export interface Aggregate extends Session {
  /** The cameras whose tags are in `aggregate`, in canonical order. */
  readonly members: readonly string[];
  readonly aggregate: Uint8Array;
}

export interface TagList extends Session {
  readonly tags: readonly { readonly memberId: string; readonly tag: Uint8Array }[];
}

function session(w: Writer, type: number, s: Session): Writer {
  return w.u8(WIRE_VERSION).u8(type).id(s.groupId, 'groupId').u64(s.epoch).fixed(s.nonce, NONCE_BYTES, 'nonce');
}

function readSession(r: Reader, type: number, what: string): Session {
  r.header(type, what);
  return { groupId: r.id(`${what} groupId`), epoch: r.u64(`${what} epoch`), nonce: r.fixed(NONCE_BYTES, `${what} nonce`) };
}

function checkAscending(ids: readonly string[], what: string, at?: number): void {
  if (ids.length === 0) throw malformed(`${what}: empty list`, at);
  for (let i = 1; i < ids.length; i++) if (compareIds(ids[i - 1] as string, ids[i] as string) >= 0) throw malformed(`${what}: ids not in strictly ascending order`, at);
}

export function encodeChallengeBody(c: ChallengeBody): Uint8Array {
  return session(new Writer(), MSG.challenge, c).fixed(c.rosterHash, HASH_BYTES, 'rosterHash').bytes();
}

export function encodeChallenge(c: Challenge): Uint8Array {
  return attachSignature(encodeChallengeBody(c), c.signature);
}

export function decodeChallenge(data: Uint8Array): { challenge: Challenge; body: Uint8Array } {
  const r = new Reader(data);
  const s = readSession(r, MSG.challenge, 'challenge');
  const rosterHash = r.fixed(HASH_BYTES, 'challenge rosterHash');
  const body = Uint8Array.from(data.subarray(0, r.p));
  return { challenge: { ...s, rosterHash, signature: readSignature(r, 'challenge') }, body };
}

export function challengeSignatureValid(d: { challenge: Challenge; body: Uint8Array }, verify: Verifier): boolean {
  return verify(signingInput(d.body), d.challenge.signature);
}

export function encodeCameraTag(t: CameraTag): Uint8Array {
  return session(new Writer(), MSG.cameraTag, t).id(t.memberId, 'memberId').fixed(t.tag, AUTH_TAG_BYTES, 'tag').bytes();
}

export function decodeCameraTag(data: Uint8Array): CameraTag {
  const r = new Reader(data);
  const s = readSession(r, MSG.cameraTag, 'cameraTag');
  const t = { ...s, memberId: r.id('cameraTag memberId'), tag: r.fixed(AUTH_TAG_BYTES, 'cameraTag tag') };
  r.end('cameraTag');
  return t;
}

export function encodeAggregate(a: Aggregate): Uint8Array {
  checkAscending(a.members, 'aggregate members');
  const w = session(new Writer(), MSG.aggregate, a).u32(a.members.length);
  for (const m of a.members) w.id(m, 'memberId');
  return w.fixed(a.aggregate, AUTH_TAG_BYTES, 'aggregate').bytes();
}

export function decodeAggregate(data: Uint8Array): Aggregate {
  const r = new Reader(data);
  const s = readSession(r, MSG.aggregate, 'aggregate');
  const at = r.p;
  const n = r.u32('aggregate count');
  const members: string[] = [];
  for (let i = 0; i < n; i++) members.push(r.id('aggregate memberId'));
  checkAscending(members, 'aggregate members', at);
  const a = { ...s, members, aggregate: r.fixed(AUTH_TAG_BYTES, 'aggregate tag') };
  r.end('aggregate');
  return a;
}

export function encodeTagList(t: TagList): Uint8Array {
  checkAscending(
    t.tags.map((x) => x.memberId),
    'tagList',
  );
  const w = session(new Writer(), MSG.tagList, t).u32(t.tags.length);
  for (const x of t.tags) w.id(x.memberId, 'memberId').fixed(x.tag, AUTH_TAG_BYTES, 'tag');
  return w.bytes();
}

export function decodeTagList(data: Uint8Array): TagList {
  const r = new Reader(data);
  const s = readSession(r, MSG.tagList, 'tagList');
  const at = r.p;
  const n = r.u32('tagList count');
  const tags: { memberId: string; tag: Uint8Array }[] = [];
  for (let i = 0; i < n; i++) tags.push({ memberId: r.id('tagList memberId'), tag: r.fixed(AUTH_TAG_BYTES, 'tagList tag') });
  checkAscending(
    tags.map((x) => x.memberId),
    'tagList',
    at,
  );
  r.end('tagList');
  return { ...s, tags };
}
