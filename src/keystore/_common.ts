/** Checks shared by both key store backends. */
import { KeyObject } from 'node:crypto';
import { ErrorCodes, KeyStoreError } from '../errors.js';
import { LABEL_PATTERN } from './types.js';

export function assertLabel(label: string): void {
  if (!LABEL_PATTERN.test(label)) {
    throw new KeyStoreError(ErrorCodes.INPUT, `bad key label "${label}": 1-64 characters of A-Z a-z 0-9 . _ -, starting with a letter or digit`);
  }
}

/** The one error for any unwrap failure: wrong key, wrong context, or tampered data are indistinguishable. */
export function unwrapFailed(): KeyStoreError {
  return new KeyStoreError(ErrorCodes.UNWRAP, 'unwrap failed: wrong key, wrong context or corrupted data');
}

export function assertP256Public(peer: KeyObject): void {
  if (!(peer instanceof KeyObject) || peer.type !== 'public' || peer.asymmetricKeyType !== 'ec' || peer.asymmetricKeyDetails?.namedCurve !== 'prime256v1') {
    throw new KeyStoreError(ErrorCodes.UNSUPPORTED, 'ECDH needs the peer\'s P-256 public key');
  }
}

export const GCM_NONCE_BYTES = 12;
export const GCM_TAG_BYTES = 16;
