/**
 * The keyframe ECDH key-derivation function, chosen so that a PKCS#11 token computes it without the shared
 * secret ever leaving the token, and a peer without a token computes the same key in software.
 *
 *   Z = ECDH(P-256) shared secret: the x-coordinate, 32 bytes (PKCS#11 CKM_ECDH1_DERIVE with CKD_NULL)
 *   D = SHA-256("keyframe/v1 ecdh-kdf" ‖ 0x00 ‖ context)                                  (32 bytes, 2 blocks)
 *   K = AES-256-CBC(key = Z, iv = 0^16, D)      (PKCS#11 CKM_AES_CBC_ENCRYPT_DATA, no padding; 32 bytes)
 *
 * Why not HKDF: SoftHSM 2.6 accepts only CKD_NULL in CKM_ECDH1_DERIVE and has no CKM_HKDF_DERIVE, and any
 * HMAC it computes returns the output to the host. AES-CBC-ENCRYPT-DATA is the only derivation it offers whose
 * result stays in the token. K is AES under the (near-uniform, 255-bit-entropy) secret Z applied to a
 * context-specific input, i.e. a PRF output; distinct contexts give independent keys.
 */
import { createCipheriv, createHash } from 'node:crypto';

export const KDF_LABEL = 'keyframe/v1 ecdh-kdf';

/** D: the 32-byte KDF input for a context. */
export function kdfInput(context: Uint8Array): Buffer {
  return createHash('sha256').update(KDF_LABEL).update(Buffer.of(0)).update(context).digest();
}

/** K from Z, in software (peers without a token, and the software keystore). */
export function deriveFromSharedSecret(sharedSecret: Uint8Array, context: Uint8Array): Buffer {
  if (sharedSecret.length !== 32) throw new RangeError(`ECDH shared secret must be 32 bytes, got ${sharedSecret.length}`);
  const cipher = createCipheriv('aes-256-cbc', sharedSecret, Buffer.alloc(16));
  cipher.setAutoPadding(false);
  return Buffer.concat([cipher.update(kdfInput(context)), cipher.final()]);
}
