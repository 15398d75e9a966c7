/**
 * Secrets at rest: the KMS seals every secret it stores (sub-keys, group cores, epoch secrets) with AES-256-GCM
 * under a key that lives in its key store (label `kms-state`, made on first start), with associated data naming
 * what the blob is, so that a blob moved to another row or column does not open. In a PKCS#11 token the key
 * never leaves the token.
 */
import { ErrorCodes, KeyframeError } from '../errors.js';
import type { KeyStore } from '../keystore/types.js';

export const STATE_KEY_LABEL = 'kms-state';

export class Sealer {
  private constructor(
    private readonly store: KeyStore,
    private readonly label: string,
  ) {}

  /** The sealer over `label` in `store`; the key is made only with `create` (a new KMS), never found missing and replaced. */
  static async open(store: KeyStore, options: { readonly label?: string; readonly create?: boolean } = {}): Promise<Sealer> {
    const label = options.label ?? STATE_KEY_LABEL;
    const info = await store.info(label);
    if (info === undefined) {
      if (options.create !== true) throw new KeyframeError(ErrorCodes.KEY_NOT_FOUND, `the key store ${store.description} holds no '${label}' key`);
      await store.generateSecretKey(label);
    } else if (info.algorithm !== 'aes-256') throw new KeyframeError(ErrorCodes.KEYSTORE, `key store label ${label} is not an AES-256 key`);
    return new Sealer(store, label);
  }

  private static aad(kind: string, id: string): Buffer {
    return Buffer.from(`keyframe/v1 kms-seal\0${kind}\0${id}`, 'utf8');
  }

  seal(kind: string, id: string, plaintext: Uint8Array): Promise<Buffer> {
    return this.store.wrap(this.label, plaintext, Sealer.aad(kind, id));
  }

  /** Any failure is KF_ERR_UNWRAP: the database was altered, or belongs to another KMS key. */
  open(kind: string, id: string, sealed: Uint8Array): Promise<Buffer> {
    return this.store.unwrap(this.label, sealed, Sealer.aad(kind, id));
  }

  async sealJson(kind: string, id: string, value: unknown): Promise<Buffer> {
    return this.seal(kind, id, Buffer.from(JSON.stringify(value), 'utf8'));
  }

  async openJson<T>(kind: string, id: string, sealed: Uint8Array): Promise<T> {
    return JSON.parse((await this.open(kind, id, sealed)).toString('utf8')) as T;
  }
}
