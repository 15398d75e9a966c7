/**
 * Per-camera CENC content keys and KIDs from the group's epoch secret (shared/ARCHITECTURE.md, Keys table; the
 * fix of attack A7: no two cameras, and no two epochs, share a content key).
 *
 *   key = HKDF-SHA256(IKM = epoch secret, salt = "", info = "keyframe/v1 cenc" ‖ cameraId id ‖ epoch u64, 16)
 *   KID = SHA-256("keyframe/v1 kid" ‖ groupId id ‖ cameraId id)[0, 8) ‖ epoch u32
 *         ‖ HMAC-SHA256(key, "keyframe/v1 kid-binding" ‖ groupId id ‖ cameraId id ‖ epoch u64)[0, 4)      (16 bytes)
 *
 * The key is AES-128 (CENC allows only 128-bit keys). The KID is public (it travels in the init segment and in
 * licence requests) and carries no key material: 8 bytes name the (group, camera) pair — the KMS keeps a table
 * from them to the pair, filled when a camera joins — 4 bytes the epoch, so the KMS maps a KID back to (group,
 * camera, epoch) with one look-up and re-derives the key from the epoch secret it keeps, and 4 bytes bind the KID
 * to that key: a KMS whose state was rolled back or forked (another secret for the same epoch) finds that its key
 * does not match the KID and refuses, so a KID never names two keys. Anyone who knows a camera's identifier can
 * recognise its KIDs; identifiers are not secret (they are in device certificates, and the NVR knows which camera
 * uploads what). Epochs above 2^32 − 1 have no KID (at one rekey a second, 136 years).
 */
import { createHmac, hkdfSync, timingSafeEqual } from 'node:crypto';
import { ErrorCodes, KeyframeError } from '../../errors.js';
import { Writer } from './codec.js';
import { checkKey, sha256 } from './kdf.js';

export const CENC_LABEL = 'keyframe/v1 cenc';
export const KID_LABEL = 'keyframe/v1 kid';
export const KID_BINDING_LABEL = 'keyframe/v1 kid-binding';
export const CONTENT_KEY_BYTES = 16;
export const KID_BYTES = 16;
export const KID_CAMERA_BYTES = 8;
export const KID_BINDING_BYTES = 4;
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

/** The 4 bytes that bind a KID to its content key. */
export function kidBinding(key: Uint8Array, groupId: string, cameraId: string, epoch: number): Uint8Array {
  const info = new Writer().id(groupId, 'groupId').id(cameraId, 'cameraId').u64(epoch).bytes();
  return new Uint8Array(createHmac('sha256', key).update(KID_BINDING_LABEL).update(info).digest().subarray(0, KID_BINDING_BYTES));
}

/** The KID of `cameraId`'s content `key` in `epoch`. */
export function contentKid(groupId: string, cameraId: string, epoch: number, key: Uint8Array): Uint8Array {
  if (!Number.isInteger(epoch) || epoch < 0 || epoch > MAX_KID_EPOCH) throw new KeyframeError(ErrorCodes.INTERNAL, `epoch ${epoch} has no KID`);
  const kid = new Uint8Array(KID_BYTES);
  kid.set(kidCameraPart(groupId, cameraId));
  new DataView(kid.buffer).setUint32(KID_CAMERA_BYTES, epoch, false);
  kid.set(kidBinding(key, groupId, cameraId, epoch), KID_CAMERA_BYTES + 4);
  return kid;
}

/** Splits a KID into its (group, camera) part, epoch and key binding. */
export function parseKid(kid: Uint8Array): { cameraPart: Uint8Array; epoch: number; binding: Uint8Array } | undefined {
  if (kid.length !== KID_BYTES) return undefined;
  return {
    cameraPart: kid.subarray(0, KID_CAMERA_BYTES),
    epoch: new DataView(kid.buffer, kid.byteOffset, KID_BYTES).getUint32(KID_CAMERA_BYTES, false),
    binding: kid.subarray(KID_CAMERA_BYTES + 4),
  };
}

/** Does `key` belong to `kid` (its binding bytes)? Constant time. */
export function kidMatchesKey(kid: Uint8Array, key: Uint8Array, groupId: string, cameraId: string): boolean {
  const p = parseKid(kid);
  if (p === undefined) return false;
  return timingSafeEqual(kidBinding(key, groupId, cameraId, p.epoch), p.binding);
}

export function epochContentKey(epochSecret: Uint8Array, groupId: string, cameraId: string, epoch: number): EpochContentKey {
  const key = contentKey(epochSecret, cameraId, epoch);
  return { kid: contentKid(groupId, cameraId, epoch, key), key, epoch };
}
