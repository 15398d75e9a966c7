/**
 * The welcome: what a joining camera needs besides the broadcast bundle, sent to it alone (over its mutual-TLS
 * session with the KMS). It carries no key material — the joiner's keys are wraps in the bundle, under its own
 * K_i^wrap — only where to look and which bundle to accept, signed by the KMS:
 *
 *   welcome = version u8 (1) ‖ type u8 (2) ‖ groupId id ‖ memberId id ‖ slot u32 ‖ degree u8 ‖ epoch u64
 *           ‖ bundleHash 32 ‖ sigLen u16 ‖ signature
 *
 * The joiner accepts exactly the bundle of `epoch` whose SHA-256 is `bundleHash` as its first, then follows the
 * chain from there. Strict decoding as for bundles (slot below 2^24, degree 2 or 4, epoch ≥ 1).
 */
import { attachSignature, readSignature } from './bundle.js';
import { malformed, MSG, Reader, Writer, WIRE_VERSION } from './codec.js';
import { HASH_BYTES } from './kdf.js';
import { DEGREES, INDEX_LIMIT } from './nodes.js';
import type { Degree } from './nodes.js';
import { signingInput } from './signature.js';
import type { Verifier } from './signature.js';

export interface WelcomeBody {
  readonly groupId: string;
  readonly memberId: string;
  /** The camera's leaf slot: its leaf node is (0, slot). */
  readonly slot: number;
  readonly degree: Degree;
  /** The epoch of the bundle that brings the joiner in. */
  readonly epoch: number;
  readonly bundleHash: Uint8Array;
}

export interface Welcome extends WelcomeBody {
  readonly signature: Uint8Array;
}

function check(w: WelcomeBody, at?: number): void {
  if (!Number.isInteger(w.slot) || w.slot < 0 || w.slot >= INDEX_LIMIT) throw malformed(`welcome: slot ${w.slot} out of range`, at);
  if (!DEGREES.includes(w.degree)) throw malformed(`welcome: degree ${w.degree}`, at);
  if (w.epoch < 1) throw malformed('welcome: epoch 0', at);
}

export function encodeWelcomeBody(w: WelcomeBody): Uint8Array {
  check(w);
  return new Writer()
    .u8(WIRE_VERSION)
    .u8(MSG.welcome)
    .id(w.groupId, 'groupId')
    .id(w.memberId, 'memberId')
    .u32(w.slot)
    .u8(w.degree)
    .u64(w.epoch)
    .fixed(w.bundleHash, HASH_BYTES, 'bundleHash')
    .bytes();
}

export function encodeWelcome(w: Welcome): Uint8Array {
  return attachSignature(encodeWelcomeBody(w), w.signature);
}

export interface DecodedWelcome {
  readonly welcome: Welcome;
  readonly body: Uint8Array;
}

export function decodeWelcome(data: Uint8Array): DecodedWelcome {
  const r = new Reader(data);
  r.header(MSG.welcome, 'welcome');
  const groupId = r.id('welcome groupId');
  const memberId = r.id('welcome memberId');
  const at = r.p;
  const slot = r.u32('welcome slot');
  const degree = r.u8('welcome degree') as Degree;
  const epoch = r.u64('welcome epoch');
  const bundleHash = r.fixed(HASH_BYTES, 'welcome bundleHash');
  const body = { groupId, memberId, slot, degree, epoch, bundleHash };
  check(body, at);
  const bodyBytes = Uint8Array.from(data.subarray(0, r.p));
  return { welcome: { ...body, signature: readSignature(r, 'welcome') }, body: bodyBytes };
}

export function welcomeSignatureValid(d: DecodedWelcome, verify: Verifier): boolean {
  return verify(signingInput(d.body), d.welcome.signature);
}
