/**
 * Pairwise key enrolment between a camera and the KMS (issue 5; ARCHITECTURE.md, "camera ↔ KMS pairwise K_i"):
 *
 * 1. Authenticated ECDH: each side checks the other's certificate chain (the camera's against the manufacturer
 *    root, the KMS's against the operator root), then derives K_i inside its own key store from its identity key
 *    and the peer's certified public key (`KeyStore.deriveKey`: ECDH + the keyframe KDF, see keystore/kdf.ts). The
 *    KDF context binds both certificates and the protocol, so K_i belongs to exactly this (KMS, camera) pair. In a
 *    PKCS#11 token K_i is a sensitive, non-extractable secret object: it never leaves the secure element.
 * 2. Sub-keys per purpose: the KMS draws fresh 256-bit `wrap` and `auth` keys and sends them AES-256-GCM-wrapped
 *    under K_i, with associated data naming the protocol, the pair and the key generation. The camera keeps the
 *    blob and opens it inside its store when it starts; the sub-keys then live in camera memory, like the group
 *    epoch keys. A re-enrolment (new generation) replaces them: a camera recovered after a compromise gets keys
 *    the thief never saw.
 *
 * A token cannot HMAC or run HKDF in SoftHSM 2.6, which is why the sub-keys are delivered under K_i rather than
 * derived from it; their secrecy rests on K_i, which rests on the two identity keys.
 */
import { createHash, createPublicKey, randomBytes, timingSafeEqual } from 'node:crypto';
import { ErrorCodes, GroupKeyError, KeyframeError } from '../errors.js';
import type { KeyStore } from '../keystore/types.js';
import { fingerprintSha256, verifyCertificate } from '../pki/verify.js';
import type { X509Certificate, X509Crl } from '../pki/x509.js';

export const SUBKEY_BYTES = 32;
const PROTOCOL = 'keyframe/v1 gk-enrol';

export interface Subkeys {
  /** Unwraps the camera's leaf of rekey bundles. */
  readonly wrap: Uint8Array;
  /** Group-authentication tags. */
  readonly auth: Uint8Array;
}

export interface PairIdentity {
  /** The KMS's certificate (leaf). */
  readonly kms: X509Certificate;
  /** The camera's device certificate (leaf). */
  readonly camera: X509Certificate;
}

function u16(n: number): Buffer {
  const b = Buffer.alloc(2);
  b.writeUInt16BE(n);
  return b;
}

function field(value: string): Buffer {
  const b = Buffer.from(value, 'utf8');
  return Buffer.concat([u16(b.length), b]);
}

/** The KDF context for K_i: the protocol and both certificates' SHA-256 fingerprints, length-prefixed. */
export function pairContext(pair: PairIdentity): Uint8Array {
  return Buffer.concat([field(PROTOCOL), field(fingerprintSha256(pair.kms)), field(fingerprintSha256(pair.camera))]);
}

/** The key store label of K_i on either side, from the peer's fingerprint. */
export function pairLabel(peer: X509Certificate): string {
  return `gk-${fingerprintSha256(peer).replace(/:/g, '').toLowerCase().slice(0, 24)}`;
}

function subkeyAad(pair: PairIdentity, generation: number): Buffer {
  if (!Number.isSafeInteger(generation) || generation < 0) throw new KeyframeError(ErrorCodes.INPUT, 'key generation must be a non-negative integer');
  const g = Buffer.alloc(8);
  g.writeBigUInt64BE(BigInt(generation));
  return Buffer.concat([field(`${PROTOCOL} subkeys`), Buffer.from(pairContext(pair)), g]);
}

export interface PeerTrust {
  readonly roots: readonly X509Certificate[];
  readonly intermediates?: readonly X509Certificate[];
  readonly crls?: readonly X509Crl[];
  readonly now?: Date;
}

/** Checks the peer's chain now; refuses (one generic reason, the details in `cause`) if it is not valid. */
async function checkPeer(peer: X509Certificate, trust: PeerTrust, purpose: 'device' | 'tls-server'): Promise<void> {
  const r = await verifyCertificate(peer, { roots: trust.roots, intermediates: trust.intermediates ?? [], ...(trust.crls !== undefined ? { crls: trust.crls } : {}), ...(trust.now !== undefined ? { at: trust.now } : {}), purpose });
  if (!r.valid) throw new GroupKeyError(ErrorCodes.GROUPKEY_REFUSED, `enrolment refused: the peer certificate is not valid (${r.reason ?? r.code ?? 'invalid'})`);
}

/**
 * Derives K_i in `store` (under `options.label`, default `pairLabel(peer)`) from `identityLabel` (this side's P-256 identity key) and the peer's certified key, after
 * checking the peer's chain. `side` says which certificate is the peer's. Returns the label of K_i.
 */
export async function derivePairwiseKey(store: KeyStore, identityLabel: string, pair: PairIdentity, side: 'kms' | 'camera', trust: PeerTrust, options: { replace?: boolean; label?: string } = {}): Promise<string> {
  const peer = side === 'kms' ? pair.camera : pair.kms;
  await checkPeer(peer, trust, side === 'kms' ? 'device' : 'tls-server');
  const label = options.label ?? pairLabel(peer);
  if (options.replace === true && (await store.info(label)) !== undefined) await store.deleteKey(label);
  const peerKey = createPublicKey({ key: Buffer.from(peer.publicKey.rawData), format: 'der', type: 'spki' });
  await store.deriveKey(identityLabel, peerKey, label, pairContext(pair));
  return label;
}

/** KMS side: fresh sub-keys, and the blob that carries them to the camera under K_i. */
export async function issueSubkeys(kmsStore: KeyStore, pairKeyLabel: string, pair: PairIdentity, generation: number): Promise<{ subkeys: Subkeys; blob: Buffer }> {
  const wrap = randomBytes(SUBKEY_BYTES);
  const auth = randomBytes(SUBKEY_BYTES);
  const blob = await kmsStore.wrap(pairKeyLabel, Buffer.concat([wrap, auth]), subkeyAad(pair, generation));
  return { subkeys: { wrap, auth }, blob };
}

/** Camera side: opens the blob inside the store. Any failure (wrong pair, generation, tampering) is one error. */
export async function openSubkeys(cameraStore: KeyStore, pairKeyLabel: string, pair: PairIdentity, generation: number, blob: Uint8Array): Promise<Subkeys> {
  let plain: Buffer;
  try {
    plain = await cameraStore.unwrap(pairKeyLabel, blob, subkeyAad(pair, generation));
  } catch {
    throw new GroupKeyError(ErrorCodes.GROUPKEY_REFUSED, 'enrolment refused: the sub-key blob does not open');
  }
  if (plain.length !== 2 * SUBKEY_BYTES) throw new GroupKeyError(ErrorCodes.GROUPKEY_REFUSED, 'enrolment refused: the sub-key blob does not open');
  return { wrap: plain.subarray(0, SUBKEY_BYTES), auth: plain.subarray(SUBKEY_BYTES) };
}

/** A key confirmation value both sides can compare (constant time) without revealing the sub-keys. */
export function subkeyConfirmation(subkeys: Subkeys, pair: PairIdentity): Buffer {
  return createHash('sha256').update(field(`${PROTOCOL} confirm`)).update(pairContext(pair)).update(subkeys.wrap).update(subkeys.auth).digest();
}

export function confirmationsMatch(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}
