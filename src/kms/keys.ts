/** Keys the KMS and a camera derive alike from the enrolled sub-keys. */
import { hkdfExpand, KEY_BYTES } from '../groupkey/hardened/kdf.js';
import type { Subkeys } from '../groupkey/hardened/kdf.js';

/**
 * The paper's K_IC for a camera in a Scheme 1 / Scheme 2 group: the paper assumes a key shared in advance; here it
 * is HKDF-Expand(K_i^wrap, "keyframe/v1 paper K_IC"), so it is bound to the camera's enrolment and a paper group
 * never uses the hardened sub-keys themselves.
 */
export function paperKey(subkeys: Subkeys): Uint8Array {
  return hkdfExpand(subkeys.wrap, 'keyframe/v1 paper K_IC', KEY_BYTES);
}
