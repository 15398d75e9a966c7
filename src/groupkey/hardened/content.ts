/**
 * Per-camera CENC content keys and KIDs from the group's epoch secret (shared/ARCHITECTURE.md, Keys table; the
 * fix of attack A7: no two cameras, and no two epochs, share a content key).
 *
 *   key = HKDF-SHA256(IKM = epoch secret, salt = "", info = "keyframe/v1 cenc" ‖ cameraId id ‖ epoch u64, 16)
 *   KID = SHA-256("keyframe/v1 kid" ‖ groupId id ‖ cameraId id)[0, 12) ‖ epoch u32        (16 bytes)
 *
 * The key is AES-128 (CENC allows only 128-bit keys). The KID is public (it travels in the init segment and in
 * licence requests) and carries no key material: 12 bytes name the (group, camera) pair — the KMS keeps a
 * table from them to the pair, filled when a camera joins — and 4 bytes the epoch, so the KMS maps a KID back to
 * (group, camera, epoch) with one look-up and re-derives the key from the epoch secret it keeps. Anyone who knows
 * a camera's identifier can recognise its KIDs; identifiers are not secret (they are in device certificates, and
 * the NVR knows which camera uploads what). Epochs above 2^32 − 1 have no KID (at one rekey a second, 136 years).
 */
import { hkdfSync } from 'node:crypto';
import { ErrorCodes, KeyframeError } from '../../errors.js';
import { Writer } from './codec.js';
import { checkKey, sha256 } from './kdf.js';

export const CENC_LABEL = 'keyframe/v1 cenc';
export const KID_LABEL = 'keyframe/v1 kid';
export const CONTENT_KEY_BYTES = 16;
export const KID_BYTES = 16;
export const KID_CAMERA_BYTES = 12;
export const MAX_KID_EPOCH = 0xffffffff;

/** What the encrypted-video code needs (src/packager ContentKey), with the epoch it belongs to. */
export interface EpochContentKey {
  readonly kid: Uint8Array;
  readonly key: Uint8Array;
  readonly epoch: number;
}

/** The AES-128 content key of `cameraId` in `epoch`. */
export function contentKey(epochSecret: Uint8Array, cameraId: string, epoch: number): Uint8Array {
  checkKey(epochSecret, 'epoch secret');
  const info = new Writer().id(cameraId, 'cameraId').u64(epoch).bytes();
  return new Uint8Array(hkdfSync('sha256', epochSecret, new Uint8Array(0), Buffer.concat([Buffer.from(CENC_LABEL, 'utf8'), info]), CONTENT_KEY_BYTES));
}

/** The 12 bytes of a KID that name (group, camera). */
export function kidCameraPart(groupId: string, cameraId: string): Uint8Array {
  return sha256(KID_LABEL, new Writer().id(groupId, 'groupId').id(cameraId, 'cameraId').bytes()).subarray(0, KID_CAMERA_BYTES);
}

export function contentKid(groupId: string, cameraId: string, epoch: number): Uint8Array {
  if (!Number.isInteger(epoch) || epoch < 0 || epoch > MAX_KID_EPOCH) throw new KeyframeError(ErrorCodes.INTERNAL, `epoch ${epoch} has no KID`);
  const kid = new Uint8Array(KID_BYTES);
  kid.set(kidCameraPart(groupId, cameraId));
  new DataView(kid.buffer).setUint32(KID_CAMERA_BYTES, epoch, false);
  return kid;
}

/** Splits a KID into its (group, camera) part and epoch. */
export function parseKid(kid: Uint8Array): { cameraPart: Uint8Array; epoch: number } | undefined {
  if (kid.length !== KID_BYTES) return undefined;
  return { cameraPart: kid.subarray(0, KID_CAMERA_BYTES), epoch: new DataView(kid.buffer, kid.byteOffset, KID_BYTES).getUint32(KID_CAMERA_BYTES, false) };
}

export function epochContentKey(epochSecret: Uint8Array, groupId: string, cameraId: string, epoch: number): EpochContentKey {
  return { kid: contentKid(groupId, cameraId, epoch), key: contentKey(epochSecret, cameraId, epoch), epoch };
}
