/**
 * The secure element, as keyframe sees it: keys live behind a label and are used, never read. Nothing in this
 * interface returns private or secret key material; the PKCS#11 backend keeps keys CKA_SENSITIVE and not
 * CKA_EXTRACTABLE, the software backend keeps them encrypted at rest under a passphrase-derived key.
 */
import type { KeyObject } from 'node:crypto';

/** Key pair algorithms a device identity may use. */
export type KeyPairAlgorithm = 'ec-p256' | 'rsa-2048';
/** All key algorithms: key pairs, and 256-bit AES secret keys. */
export type KeyAlgorithm = KeyPairAlgorithm | 'aes-256';

export const KEY_PAIR_ALGORITHMS: readonly KeyPairAlgorithm[] = ['ec-p256', 'rsa-2048'];

export interface KeyInfo {
  readonly label: string;
  readonly algorithm: KeyAlgorithm;
}

export interface SignOptions {
  /**
   * ECDSA signature encoding: 'der' (X.509, CMS; the default) or 'ieee-p1363' (raw r‖s, WebCrypto, JOSE).
   * Ignored for RSA.
   */
  readonly dsaEncoding?: 'der' | 'ieee-p1363';
  /**
   * RSA signature scheme: 'pkcs1' (RSASSA-PKCS1-v1_5, the default) or 'pss' (RSASSA-PSS with SHA-256 and
   * MGF1-SHA-256, salt of `pssSaltLength` bytes). Ignored for EC keys.
   */
  readonly rsaPadding?: 'pkcs1' | 'pss';
  /** RSASSA-PSS salt length in bytes (default 32, the hash length); the ONVIF Export File Format uses 20. */
  readonly pssSaltLength?: number;
}

/** The PSS salt length `options` ask for (default: the SHA-256 length), checked. */
export function pssSaltLength(options: SignOptions): number {
  const n = options.pssSaltLength ?? 32;
  if (!Number.isInteger(n) || n < 0 || n > 64) throw new RangeError(`RSASSA-PSS salt length ${n}: must be 0..64 bytes`);
  return n;
}

export type KeyStoreBackend = 'software' | 'pkcs11';

export interface KeyStore {
  readonly backend: KeyStoreBackend;
  /** A description safe to print and log: never contains a PIN or passphrase. */
  readonly description: string;

  /** Generates a key pair inside the store; returns its public key. Refuses an existing label. */
  generateKeyPair(label: string, algorithm: KeyPairAlgorithm): Promise<KeyObject>;
  /** Generates a 256-bit AES secret key inside the store. Refuses an existing label. */
  generateSecretKey(label: string): Promise<KeyInfo>;
  /** The public key of a key pair. */
  getPublicKey(label: string): Promise<KeyObject>;
  /** What is stored under a label, or undefined. */
  info(label: string): Promise<KeyInfo | undefined>;
  /** Every key in the store. */
  list(): Promise<KeyInfo[]>;
  /** Destroys a key (both halves of a pair). */
  deleteKey(label: string): Promise<void>;

  /**
   * Signs SHA-256(data): ECDSA P-256 for EC keys, RSASSA-PKCS1-v1_5 with SHA-256 for RSA keys.
   * Hashing happens before the key is touched, so tokens without CKM_ECDSA_SHA256 (SoftHSM) work.
   */
  sign(label: string, data: Uint8Array, options?: SignOptions): Promise<Buffer>;

  /**
   * Signs SHA-256 of the concatenated `chunks`, exactly as `sign` over their concatenation would, reading them one
   * at a time: for inputs too large to hold in memory (an export file). The key is used once, after the last chunk.
   */
  signStream(label: string, chunks: AsyncIterable<Uint8Array>, options?: SignOptions): Promise<Buffer>;

  /**
   * ECDH key agreement with `privateLabel`'s P-256 key and a peer's P-256 public key, followed by the
   * keyframe KDF (see `kdf.ts`) over `context`; the result is a new 256-bit AES secret key stored under
   * `newLabel`. The shared secret never leaves the store, and neither does the derived key.
   */
  deriveKey(privateLabel: string, peerPublicKey: KeyObject, newLabel: string, context: Uint8Array): Promise<KeyInfo>;

  /**
   * Protects `plaintext` (typically a key) under the key at `label`:
   * - aes-256 secret key: AES-256-GCM, 12-byte random nonce, `aad` authenticated; output nonce ‖ ciphertext ‖ tag.
   * - rsa-2048 key pair: RSA-OAEP (SHA-1, MGF1-SHA-1: the only OAEP hash SoftHSM 2.6 offers); `aad` must be empty.
   */
  wrap(label: string, plaintext: Uint8Array, aad?: Uint8Array): Promise<Buffer>;
  /** Reverses `wrap` inside the store. Any failure (wrong key, wrong aad, tampering) is one KF_ERR_UNWRAP. */
  unwrap(label: string, wrapped: Uint8Array, aad?: Uint8Array): Promise<Buffer>;

  /** Releases sessions and handles. The store is unusable afterwards. */
  close(): Promise<void>;
}

/** Labels are short printable names: they become file names and PKCS#11 CKA_LABEL values. */
export const LABEL_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
