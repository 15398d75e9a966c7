/**
 * The KMS's signature over bundles, welcomes and challenges, behind two callbacks so that the cores need no key
 * material: the KMS core takes a `Signer` (a KeyStore can sign later; it may be asynchronous), cameras take a
 * `Verifier` holding the KMS's public key. Every signed message is signed over
 *
 *   "keyframe/v1 gkd-sig" ‖ 0x00 ‖ the message's encoded bytes up to its signature field
 *
 * and those bytes start with `version ‖ type`, so a signature for one message type never verifies as another,
 * and the prefix keeps group-key signatures apart from anything else the same key signs. Ed25519 via node:crypto
 * is provided (64-byte signatures); any scheme with signatures of 1–1024 bytes fits the wire format.
 */
import { createPrivateKey, createPublicKey, sign, verify } from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import { ErrorCodes, KeyframeError } from '../../errors.js';

export const SIGNATURE_CONTEXT = 'keyframe/v1 gkd-sig';
export const MAX_SIGNATURE_BYTES = 1024;

/** Signs the signing input of a message (as `signingInput` builds it). */
export type Signer = (message: Uint8Array) => Uint8Array | Promise<Uint8Array>;
/** Checks a signature made by the KMS over `message`. Must not throw for a bad signature: return false. */
export type Verifier = (message: Uint8Array, signature: Uint8Array) => boolean;

const contextBytes = Buffer.concat([Buffer.from(SIGNATURE_CONTEXT, 'utf8'), Buffer.of(0)]);

/** What the KMS signs for a message whose bytes before the signature are `body`. */
export function signingInput(body: Uint8Array): Uint8Array {
  return new Uint8Array(Buffer.concat([contextBytes, body]));
}

const PKCS8_ED25519_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex');

/** An Ed25519 key pair: from a 32-byte seed (deterministic, for tests and vectors) or freshly generated. */
export function ed25519KeyPair(seed: Uint8Array): { privateKey: KeyObject; publicKey: KeyObject } {
  if (seed.length !== 32) throw new KeyframeError(ErrorCodes.INTERNAL, `Ed25519 seed of ${seed.length} bytes`);
  const privateKey = createPrivateKey({ key: Buffer.concat([PKCS8_ED25519_PREFIX, seed]), format: 'der', type: 'pkcs8' });
  return { privateKey, publicKey: createPublicKey(privateKey) };
}

export function ed25519Signer(privateKey: KeyObject): Signer {
  return (message) => new Uint8Array(sign(null, message, privateKey));
}

export function ed25519Verifier(publicKey: KeyObject): Verifier {
  return (message, signature) => {
    try {
      return verify(null, message, publicKey, signature);
    } catch {
      return false;
    }
  };
}
