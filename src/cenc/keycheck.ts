/**
 * Key check values. Common Encryption has no integrity: a wrong key decrypts to noise without any error. So that
 * a wrong key is detected where the format lets us, keyframe's packager adds, for every KID it uses, a key check
 * value KCV = HMAC-SHA256(key, "keyframe/v1 kcv" ‖ KID)[0..8] in a `uuid` box (inside `moov` for the KIDs of the
 * init segment, inside `traf` for a KID that starts with a fragment). Players ignore unknown `uuid` boxes. The
 * KCV reveals nothing useful about the key (it is a PRF output); the decryptor compares it in constant time.
 * Files from other packagers carry no KCV: the key cannot be checked there, and the decryptor says so.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { MediaError } from '../errors.js';

/** keyframe key-check box: uuid 6b66726d-6b63-7631-9a3e-2d1c5f0b7e44 ("kfrmkcv1" + random). */
export const KCV_BOX_UUID = Buffer.from('6b66726d6b6376319a3e2d1c5f0b7e44', 'hex');

export function keyCheckValue(key: Uint8Array, kid: Uint8Array): Buffer {
  return createHmac('sha256', key).update('keyframe/v1 kcv').update(kid).digest().subarray(0, 8);
}

export interface KeyCheck {
  readonly kid: Uint8Array;
  readonly kcv: Uint8Array;
}

/** Payload of the uuid box after its 16-byte user type: version 1, count, then (KID 16, KCV 8) entries. */
export function encodeKeyChecks(checks: readonly KeyCheck[]): Uint8Array {
  if (checks.length > 255) throw new MediaError('at most 255 key checks in one box');
  const out = Buffer.alloc(2 + checks.length * 24);
  out[0] = 1;
  out[1] = checks.length;
  checks.forEach((c, i) => {
    out.set(c.kid, 2 + i * 24);
    out.set(c.kcv, 18 + i * 24);
  });
  return out;
}

export function decodeKeyChecks(payload: Uint8Array): KeyCheck[] {
  if (payload.length < 2 || payload[0] !== 1) throw new MediaError('unsupported keyframe key-check box');
  const count = payload[1] ?? 0;
  if (payload.length !== 2 + count * 24) throw new MediaError('keyframe key-check box has the wrong size');
  const out: KeyCheck[] = [];
  for (let i = 0; i < count; i++) out.push({ kid: payload.subarray(2 + i * 24, 18 + i * 24), kcv: payload.subarray(18 + i * 24, 26 + i * 24) });
  return out;
}

/** True when `key` matches the recorded check value for `kid`. */
export function keyMatches(key: Uint8Array, check: KeyCheck): boolean {
  return timingSafeEqual(keyCheckValue(key, check.kid), Buffer.from(check.kcv));
}
