/**
 * The bridge between @peculiar/x509 and the KeyStore: x509 signs through `crypto.subtle.sign(alg, key, data)`;
 * this module hands it a WebCrypto-shaped `Crypto` whose `sign` sends keys that stand for a KeyStore label to
 * the KeyStore (secure element) and everything else to Node's WebCrypto. The stand-in private key holds no key
 * material, only the store and the label.
 */
import { webcrypto } from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import { ErrorCodes, KeyStoreError } from '../errors.js';
import type { KeyPairAlgorithm, KeyStore } from '../keystore/types.js';

const STORE_REF = Symbol('keyframe.keystore-ref');

interface StoreRef {
  readonly store: KeyStore;
  readonly label: string;
}

type WebCryptoKey = webcrypto.CryptoKey;

export interface KeyStoreKeyPair {
  /** A stand-in: signing with it goes to the KeyStore. */
  readonly privateKey: WebCryptoKey;
  /** A real WebCrypto public key. */
  readonly publicKey: WebCryptoKey;
  readonly algorithm: KeyPairAlgorithm;
  /** x509's signingAlgorithm for this key. */
  readonly signingAlgorithm: Algorithm | EcdsaParams;
}

type Algorithm = { name: string };
type EcdsaParams = { name: 'ECDSA'; hash: string };

function webAlgorithm(algorithm: KeyPairAlgorithm): { import: RsaHashedImportParams | EcKeyImportParams; signing: Algorithm | EcdsaParams } {
  if (algorithm === 'ec-p256') return { import: { name: 'ECDSA', namedCurve: 'P-256' }, signing: { name: 'ECDSA', hash: 'SHA-256' } };
  return { import: { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' }, signing: { name: 'RSASSA-PKCS1-v1_5' } };
}

interface RsaHashedImportParams {
  name: 'RSASSA-PKCS1-v1_5';
  hash: string;
}
interface EcKeyImportParams {
  name: 'ECDSA';
  namedCurve: 'P-256';
}

export function keyPairAlgorithmOf(publicKey: KeyObject): KeyPairAlgorithm {
  if (publicKey.asymmetricKeyType === 'ec' && publicKey.asymmetricKeyDetails?.namedCurve === 'prime256v1') return 'ec-p256';
  if (publicKey.asymmetricKeyType === 'rsa' && publicKey.asymmetricKeyDetails?.modulusLength === 2048) return 'rsa-2048';
  throw new KeyStoreError(ErrorCodes.UNSUPPORTED, `unsupported public key: ${publicKey.asymmetricKeyType ?? '?'} (keyframe uses EC P-256 or RSA-2048)`);
}

/** A WebCrypto public key for a Node public KeyObject (EC P-256 or RSA-2048). */
export async function webPublicKey(publicKey: KeyObject): Promise<WebCryptoKey> {
  const algorithm = keyPairAlgorithmOf(publicKey);
  const spki = publicKey.export({ format: 'der', type: 'spki' });
  return webcrypto.subtle.importKey('spki', spki, webAlgorithm(algorithm).import, true, ['verify']);
}

/** The key pair at `label`, usable by @peculiar/x509 with `keyStoreCrypto` as its crypto provider. */
export async function keyStoreKeyPair(store: KeyStore, label: string): Promise<KeyStoreKeyPair> {
  const publicKeyObject = await store.getPublicKey(label);
  const algorithm = keyPairAlgorithmOf(publicKeyObject);
  const publicKey = await webPublicKey(publicKeyObject);
  const ref: StoreRef = { store, label };
  const privateKey = {
    type: 'private',
    extractable: false,
    algorithm: publicKey.algorithm,
    usages: ['sign'],
    [STORE_REF]: ref,
  } as unknown as WebCryptoKey;
  return { privateKey, publicKey, algorithm, signingAlgorithm: webAlgorithm(algorithm).signing };
}

function storeRefOf(key: unknown): StoreRef | undefined {
  if (typeof key === 'object' && key !== null && STORE_REF in key) return (key as { [STORE_REF]: StoreRef })[STORE_REF];
  return undefined;
}

const subtle = webcrypto.subtle;

/**
 * A `Crypto` for @peculiar/x509: WebCrypto, except that `subtle.sign` with a KeyStore stand-in key signs in the
 * KeyStore (ECDSA in IEEE P1363 form, as WebCrypto returns it; RSA PKCS#1 v1.5). Only SHA-256 is offered.
 */
export const keyStoreCrypto: webcrypto.Crypto = {
  getRandomValues: <T extends ArrayBufferView | null>(array: T): T => webcrypto.getRandomValues(array as never),
  randomUUID: () => webcrypto.randomUUID(),
  subtle: new Proxy(subtle, {
    get(target, prop, receiver) {
      if (prop === 'sign') {
        return async (algorithm: unknown, key: unknown, data: webcrypto.BufferSource): Promise<ArrayBuffer> => {
          const ref = storeRefOf(key);
          if (ref === undefined) return target.sign(algorithm as never, key as never, data);
          const hash = (algorithm as { hash?: unknown }).hash;
          const hashName = typeof hash === 'string' ? hash : (hash as { name?: string } | undefined)?.name;
          if (hashName !== undefined && hashName.toUpperCase() !== 'SHA-256') {
            throw new KeyStoreError(ErrorCodes.UNSUPPORTED, `key store signing supports SHA-256 only, not ${hashName}`);
          }
          const bytes = ArrayBuffer.isView(data) ? new Uint8Array(data.buffer, data.byteOffset, data.byteLength) : new Uint8Array(data);
          const sig = await ref.store.sign(ref.label, bytes, { dsaEncoding: 'ieee-p1363' });
          return sig.buffer.slice(sig.byteOffset, sig.byteOffset + sig.byteLength) as ArrayBuffer;
        };
      }
      const value: unknown = Reflect.get(target, prop, receiver);
      return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
    },
  }),
} as unknown as webcrypto.Crypto;
