/** Keys the KMS and a camera use alike: derived from the enrolled sub-keys, or the KMS's signature key. */
import { createPublicKey, verify as cryptoVerify } from 'node:crypto';
import { hkdfExpand, KEY_BYTES } from '../groupkey/hardened/kdf.js';
import type { Subkeys } from '../groupkey/hardened/kdf.js';
import type { Verifier } from '../groupkey/hardened/signature.js';
import type { X509Certificate } from '../pki/x509.js';

/** ECDSA P-256 / SHA-256 (raw r‖s) by the KMS certificate's key: how the KMS signs bundles, welcomes, challenges. */
export function kmsVerifier(kmsCertificate: X509Certificate): Verifier {
  const key = createPublicKey({ key: Buffer.from(kmsCertificate.publicKey.rawData), format: 'der', type: 'spki' });
  return (message, signature) => {
    try {
      return cryptoVerify('sha256', message, { key, dsaEncoding: 'ieee-p1363' }, signature);
    } catch {
      return false;
    }
  };
}

/**
 * The paper's K_IC for a camera in a Scheme 1 / Scheme 2 group: the paper assumes a key shared in advance; here it
 * is HKDF-Expand(K_i^wrap, "keyframe/v1 paper K_IC"), so it is bound to the camera's enrolment and a paper group
 * never uses the hardened sub-keys themselves.
 */
export function paperKey(subkeys: Subkeys): Uint8Array {
  return hkdfExpand(subkeys.wrap, 'keyframe/v1 paper K_IC', KEY_BYTES);
}
