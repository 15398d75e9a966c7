/**
 * One suite, both key store backends, identical assertions: whatever the software store does, the PKCS#11 store
 * does too, with the same error codes and messages.
 */
import {
  constants as cryptoConstants,
  createCipheriv,
  createDecipheriv,
  diffieHellman,
  generateKeyPairSync,
  publicEncrypt,
  randomBytes,
  sign as cryptoSign,
  verify as cryptoVerify,
} from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ErrorCodes } from '../../src/errors.js';
import { unwrapFailed } from '../../src/keystore/_common.js';
import { derToP1363, p1363ToDer } from '../../src/keystore/_ecdsa.js';
import { deriveFromSharedSecret } from '../../src/keystore/kdf.js';
import { Pkcs11KeyStore } from '../../src/keystore/pkcs11.js';
import { SoftwareKeyStore } from '../../src/keystore/software.js';
import type { KeyStore } from '../../src/keystore/types.js';
import { SOFTHSM_MODULE, createTokenPool } from '../helpers/softhsm.js';
import type { TestToken } from '../helpers/softhsm.js';

interface Fixture {
  readonly store: KeyStore;
  /** The secret that opens the store (passphrase or PIN): it must never appear in `description`. */
  readonly secret: string;
  /** Closes the store and opens the same one again. */
  reopen(): Promise<KeyStore>;
  cleanup(): Promise<void>;
}

interface Backend {
  readonly name: 'software' | 'pkcs11';
  /** fast-check runs: PKCS#11 round trips are slower. */
  readonly numRuns: number;
  make(): Promise<Fixture>;
}

/** One fresh SoftHSM token per test, all made before the first open (see createTokenPool). */
const tokens = createTokenPool(40);
const takeToken = (): TestToken => tokens.take();
afterAll(() => tokens.cleanup());

const SCRYPT_FAST = { N: 1024, r: 8, p: 1 };

const backends: Backend[] = [
  {
    name: 'software',
    numRuns: 100,
    async make() {
      const tmp = mkdtempSync(join(tmpdir(), 'kf-ks-'));
      const dir = join(tmp, 'keystore');
      const secret = 'passphrase-123';
      let store: KeyStore = await SoftwareKeyStore.open(dir, secret, { create: true, scrypt: SCRYPT_FAST });
      return {
        store,
        secret,
        async reopen() {
          await store.close();
          store = await SoftwareKeyStore.open(dir, secret);
          return store;
        },
        async cleanup() {
          await store.close();
          rmSync(tmp, { recursive: true, force: true });
        },
      };
    },
  },
  {
    name: 'pkcs11',
    numRuns: 50,
    async make() {
      const token = takeToken();
      const open = (): Promise<Pkcs11KeyStore> => Pkcs11KeyStore.open({ module: SOFTHSM_MODULE, token: token.label, pin: token.pin });
      let store: KeyStore = await open();
      return {
        store,
        secret: token.pin,
        async reopen() {
          await store.close();
          store = await open();
          return store;
        },
        async cleanup() {
          await store.close();
        },
      };
    },
  },
];

/** The methods a key store may have. None returns key material. */
const INTERFACE_METHODS = [
  'close',
  'constructor',
  'deleteKey',
  'deriveKey',
  'generateKeyPair',
  'generateSecretKey',
  'getPublicKey',
  'info',
  'list',
  'sign',
  'signStream',
  'unwrap',
  'wrap',
];
/**
 * The one documented exception: the software store's `exportForTls`, because Node's TLS stack needs the private
 * key in-process (it returns the PKCS#8 encrypted under a one-time passphrase). The PKCS#11 store has no
 * counterpart: TLS reaches the token key through the OpenSSL pkcs11 engine and `pkcs11Uri`.
 */
const EXTRA_METHODS: Record<Backend['name'], string[]> = { software: ['exportForTls'], pkcs11: [] };

async function expectCode(promise: Promise<unknown>, code: string): Promise<Error> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error, `expected a rejection with ${code}`).toBeInstanceOf(Error);
  expect(error).toMatchObject({ name: 'KeyStoreError', code });
  return error as Error;
}

function gcmSeal(key: Buffer, plaintext: Uint8Array, aad: Uint8Array): Buffer {
  const nonce = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', key, nonce);
  cipher.setAAD(aad);
  return Buffer.concat([nonce, cipher.update(plaintext), cipher.final(), cipher.getAuthTag()]);
}

function gcmOpen(key: Buffer, blob: Buffer, aad: Uint8Array): Buffer {
  const decipher = createDecipheriv('aes-256-gcm', key, blob.subarray(0, 12));
  decipher.setAAD(aad);
  decipher.setAuthTag(blob.subarray(blob.length - 16));
  return Buffer.concat([decipher.update(blob.subarray(12, blob.length - 16)), decipher.final()]);
}

function spki(key: KeyObject): string {
  return key.export({ format: 'der', type: 'spki' }).toString('hex');
}

describe.each(backends)('$name key store', (backend) => {
  const { name, numRuns } = backend;
  let f: Fixture;
  let store: KeyStore;

  beforeEach(async () => {
    f = await backend.make();
    store = f.store;
  });
  afterEach(async () => {
    await f.cleanup();
  });

  it('reports its backend and a description without the secret', () => {
    expect(store.backend).toBe(name);
    expect(store.description).not.toContain(f.secret);
  });

  it('has no method that returns key material', () => {
    const names = Object.getOwnPropertyNames(Object.getPrototypeOf(store)).sort();
    expect(names).toEqual([...INTERFACE_METHODS, ...EXTRA_METHODS[name]].sort());
  });

  it('generates a P-256 key pair whose signatures verify in node:crypto, DER and P1363', async () => {
    const pub = await store.generateKeyPair('dev', 'ec-p256');
    expect(pub.asymmetricKeyType).toBe('ec');
    expect(pub.asymmetricKeyDetails?.namedCurve).toBe('prime256v1');
    expect(spki(await store.getPublicKey('dev'))).toBe(spki(pub));
    expect(await store.info('dev')).toEqual({ label: 'dev', algorithm: 'ec-p256' });
    // 24 messages: r or s with the top bit set (DER needs a 0x00) turns up in most of them
    for (let i = 0; i < 24; i++) {
      const data = randomBytes(1 + i * 7);
      const der = await store.sign('dev', data);
      expect(der[0]).toBe(0x30);
      expect(cryptoVerify('sha256', data, pub, der)).toBe(true);
      expect(cryptoVerify('sha256', data, { key: pub, dsaEncoding: 'der' }, await store.sign('dev', data, { dsaEncoding: 'der' }))).toBe(true);
      const raw = await store.sign('dev', data, { dsaEncoding: 'ieee-p1363' });
      expect(raw).toHaveLength(64);
      expect(cryptoVerify('sha256', data, { key: pub, dsaEncoding: 'ieee-p1363' }, raw)).toBe(true);
      expect(cryptoVerify('sha256', Buffer.concat([data, Buffer.of(0)]), { key: pub, dsaEncoding: 'ieee-p1363' }, raw)).toBe(false);
    }
  });

  it('generates an RSA-2048 key pair that signs PKCS#1 v1.5 SHA-256', async () => {
    const pub = await store.generateKeyPair('rsa', 'rsa-2048');
    expect(pub.asymmetricKeyType).toBe('rsa');
    expect(pub.asymmetricKeyDetails?.modulusLength).toBe(2048);
    expect(pub.asymmetricKeyDetails?.publicExponent).toBe(65537n);
    expect(spki(await store.getPublicKey('rsa'))).toBe(spki(pub));
    const data = Buffer.from('keyframe rsa');
    const sig = await store.sign('rsa', data, { dsaEncoding: 'ieee-p1363' }); // ignored for RSA
    expect(sig).toHaveLength(256);
    expect(cryptoVerify('sha256', data, { key: pub, padding: cryptoConstants.RSA_PKCS1_PADDING }, sig)).toBe(true);
    expect(await store.info('rsa')).toEqual({ label: 'rsa', algorithm: 'rsa-2048' });
  });

  it('signs RSASSA-PSS (SHA-256, MGF1-SHA-256) with the salt length asked for', async () => {
    const pub = await store.generateKeyPair('rsa', 'rsa-2048');
    const data = Buffer.from('keyframe rsa-pss');
    for (const saltLength of [20, 32]) {
      const sig = await store.sign('rsa', data, { rsaPadding: 'pss', pssSaltLength: saltLength });
      expect(sig).toHaveLength(256);
      const pss = { key: pub, padding: cryptoConstants.RSA_PKCS1_PSS_PADDING };
      expect(cryptoVerify('sha256', data, { ...pss, saltLength }, sig)).toBe(true);
      // the salt length is part of the signature: another one does not verify
      expect(cryptoVerify('sha256', data, { ...pss, saltLength: saltLength === 20 ? 32 : 20 }, sig)).toBe(false);
      expect(cryptoVerify('sha256', data, { key: pub, padding: cryptoConstants.RSA_PKCS1_PADDING }, sig)).toBe(false);
    }
  });

  it('signs a stream of chunks as sign() signs their concatenation, for every scheme', async () => {
    const ec = await store.generateKeyPair('dev', 'ec-p256');
    const rsa = await store.generateKeyPair('rsa', 'rsa-2048');
    const parts = [randomBytes(3), Buffer.alloc(0), randomBytes(70_000), randomBytes(1)];
    const whole = Buffer.concat(parts);
    async function* chunks(): AsyncGenerator<Uint8Array> {
      for (const p of parts) yield p;
    }
    expect(cryptoVerify('sha256', whole, ec, await store.signStream('dev', chunks()))).toBe(true);
    const raw = await store.signStream('dev', chunks(), { dsaEncoding: 'ieee-p1363' });
    expect(raw).toHaveLength(64);
    expect(cryptoVerify('sha256', whole, { key: ec, dsaEncoding: 'ieee-p1363' }, raw)).toBe(true);
    // PKCS#1 v1.5 is deterministic: the streamed signature is byte for byte the one-shot one
    expect((await store.signStream('rsa', chunks())).equals(await store.sign('rsa', whole))).toBe(true);
    const pss = await store.signStream('rsa', chunks(), { rsaPadding: 'pss', pssSaltLength: 20 });
    expect(cryptoVerify('sha256', whole, { key: rsa, padding: cryptoConstants.RSA_PKCS1_PSS_PADDING, saltLength: 20 }, pss)).toBe(true);
    expect(cryptoVerify('sha256', whole.subarray(1), ec, await store.signStream('dev', chunks()))).toBe(false);
  });

  it('signStream refuses an unknown label or a secret key before reading its input', async () => {
    await store.generateSecretKey('sek');
    let read = 0;
    async function* chunks(): AsyncGenerator<Uint8Array> {
      read++;
      yield Buffer.from('x');
    }
    await expectCode(store.signStream('nope', chunks()), ErrorCodes.KEY_NOT_FOUND);
    await expectCode(store.signStream('sek', chunks()), ErrorCodes.UNSUPPORTED);
    expect(read).toBe(0);
  });

  it('signs concurrently without mixing up operations', async () => {
    const pub = await store.generateKeyPair('dev', 'ec-p256');
    const messages = Array.from({ length: 32 }, (_, i) => Buffer.from(`frame ${i}`));
    const sigs = await Promise.all(messages.map((m) => store.sign('dev', m)));
    sigs.forEach((sig, i) => expect(cryptoVerify('sha256', messages[i] as Buffer, pub, sig)).toBe(true));
  });

  it('refuses an existing label, whatever the kind of key', async () => {
    await store.generateKeyPair('dev', 'ec-p256');
    await store.generateSecretKey('sek');
    await expectCode(store.generateKeyPair('dev', 'ec-p256'), ErrorCodes.KEY_EXISTS);
    await expectCode(store.generateKeyPair('sek', 'ec-p256'), ErrorCodes.KEY_EXISTS);
    await expectCode(store.generateSecretKey('dev'), ErrorCodes.KEY_EXISTS);
    await expectCode(store.generateSecretKey('sek'), ErrorCodes.KEY_EXISTS);
    const peer = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    await expectCode(store.deriveKey('dev', peer.publicKey, 'sek', Buffer.from('ctx')), ErrorCodes.KEY_EXISTS);
    expect(await store.info('dev')).toEqual({ label: 'dev', algorithm: 'ec-p256' });
  });

  it('reports an unknown label as KF_ERR_KEY_NOT_FOUND and a bad label as KF_ERR_INPUT', async () => {
    expect(await store.info('nope')).toBeUndefined();
    await expectCode(store.sign('nope', Buffer.from('x')), ErrorCodes.KEY_NOT_FOUND);
    await expectCode(store.getPublicKey('nope'), ErrorCodes.KEY_NOT_FOUND);
    await expectCode(store.wrap('nope', Buffer.from('x')), ErrorCodes.KEY_NOT_FOUND);
    await expectCode(store.unwrap('nope', randomBytes(40)), ErrorCodes.KEY_NOT_FOUND);
    await expectCode(store.deleteKey('nope'), ErrorCodes.KEY_NOT_FOUND);
    const peer = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    await expectCode(store.deriveKey('nope', peer.publicKey, 'new', Buffer.from('ctx')), ErrorCodes.KEY_NOT_FOUND);
    await expectCode(store.generateKeyPair('../evil', 'ec-p256'), ErrorCodes.INPUT);
    await expectCode(store.info('a b'), ErrorCodes.INPUT);
    await expectCode(store.generateKeyPair('dev', 'ed25519' as never), ErrorCodes.UNSUPPORTED);
  });

  it('refuses operations a key cannot do with KF_ERR_UNSUPPORTED', async () => {
    await store.generateSecretKey('sek');
    await store.generateKeyPair('dev', 'ec-p256');
    await store.generateKeyPair('rsa', 'rsa-2048');
    const peer = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    await expectCode(store.getPublicKey('sek'), ErrorCodes.UNSUPPORTED);
    await expectCode(store.sign('sek', Buffer.from('x')), ErrorCodes.UNSUPPORTED);
    await expectCode(store.wrap('dev', Buffer.from('x')), ErrorCodes.UNSUPPORTED);
    await expectCode(store.unwrap('dev', randomBytes(40)), ErrorCodes.UNSUPPORTED);
    await expectCode(store.deriveKey('rsa', peer.publicKey, 'k', Buffer.from('ctx')), ErrorCodes.UNSUPPORTED);
    await expectCode(store.deriveKey('sek', peer.publicKey, 'k', Buffer.from('ctx')), ErrorCodes.UNSUPPORTED);
    const p384 = generateKeyPairSync('ec', { namedCurve: 'P-384' });
    await expectCode(store.deriveKey('dev', p384.publicKey, 'k', Buffer.from('ctx')), ErrorCodes.UNSUPPORTED);
    await expectCode(store.deriveKey('dev', peer.privateKey, 'k', Buffer.from('ctx')), ErrorCodes.UNSUPPORTED);
    expect(await store.info('k')).toBeUndefined();
  });

  it('derives the same key as a software peer (ECDH + keyframe KDF)', async () => {
    const devPub = await store.generateKeyPair('dev', 'ec-p256');
    const peer = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const context = Buffer.from('keyframe/v1 test stream 42');
    expect(await store.deriveKey('dev', peer.publicKey, 'stream', context)).toEqual({ label: 'stream', algorithm: 'aes-256' });
    expect(await store.info('stream')).toEqual({ label: 'stream', algorithm: 'aes-256' });
    const k = deriveFromSharedSecret(diffieHellman({ privateKey: peer.privateKey, publicKey: devPub }), context);
    const aad = Buffer.from('header');
    const secret = randomBytes(32);
    // the peer seals, the store opens
    expect(await store.unwrap('stream', gcmSeal(k, secret, aad), aad)).toEqual(secret);
    // the store seals, the peer opens
    expect(gcmOpen(k, await store.wrap('stream', secret, aad), aad)).toEqual(secret);
    expect(gcmOpen(k, await store.wrap('stream', Buffer.alloc(0), aad), aad)).toEqual(Buffer.alloc(0));
    expect(await store.unwrap('stream', gcmSeal(k, Buffer.alloc(0), Buffer.alloc(0)))).toEqual(Buffer.alloc(0));
    // another context is another key
    await store.deriveKey('dev', peer.publicKey, 'stream2', Buffer.from('keyframe/v1 test stream 43'));
    const err = await expectCode(store.unwrap('stream2', gcmSeal(k, secret, aad), aad), ErrorCodes.UNWRAP);
    expect(err.message).toBe(unwrapFailed().message);
    // and the derived key survives a reopen
    store = await f.reopen();
    expect(await store.unwrap('stream', gcmSeal(k, secret, aad), aad)).toEqual(secret);
  });

  it('wraps and unwraps with AES-256-GCM: nonce ‖ ciphertext ‖ tag, aad bound', async () => {
    await store.generateSecretKey('sek');
    expect(await store.info('sek')).toEqual({ label: 'sek', algorithm: 'aes-256' });
    const plaintext = randomBytes(32);
    const aad = Buffer.from('camera-7|2024-05-01');
    const blob = await store.wrap('sek', plaintext, aad);
    expect(blob).toHaveLength(12 + 32 + 16);
    expect(await store.wrap('sek', plaintext, aad)).not.toEqual(blob);
    expect(await store.unwrap('sek', blob, aad)).toEqual(plaintext);
    expect(await store.unwrap('sek', new Uint8Array(blob), new Uint8Array(aad))).toEqual(plaintext);
    // no aad and empty aad are the same thing
    expect(await store.unwrap('sek', await store.wrap('sek', plaintext), new Uint8Array())).toEqual(plaintext);
    expect(await store.unwrap('sek', await store.wrap('sek', Buffer.alloc(0)))).toEqual(Buffer.alloc(0));

    const failures: (() => Promise<unknown>)[] = [
      () => store.unwrap('sek', blob, Buffer.from('camera-8|2024-05-01')),
      () => store.unwrap('sek', blob),
      () => store.unwrap('sek', blob.subarray(0, blob.length - 1), aad),
      () => store.unwrap('sek', blob.subarray(0, 27), aad),
      () => store.unwrap('sek', Buffer.alloc(0), aad),
    ];
    for (const i of [0, 11, 12, 12 + 31, blob.length - 16, blob.length - 1]) {
      const flipped = Buffer.from(blob);
      flipped[i] = (flipped[i] ?? 0) ^ 0x01;
      failures.push(() => store.unwrap('sek', flipped, aad));
    }
    await store.generateSecretKey('other');
    failures.push(() => store.unwrap('other', blob, aad));
    for (const failure of failures) {
      const err = await expectCode(failure(), ErrorCodes.UNWRAP);
      expect(err.message).toBe(unwrapFailed().message);
    }
  });

  it('wraps and unwraps with RSA-OAEP (SHA-1), interoperable with node:crypto', async () => {
    const pub = await store.generateKeyPair('rsa', 'rsa-2048');
    const key = randomBytes(32);
    const blob = await store.wrap('rsa', key);
    expect(blob).toHaveLength(256);
    expect(await store.unwrap('rsa', blob)).toEqual(key);
    const fromNode = publicEncrypt({ key: pub, padding: cryptoConstants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha1' }, key);
    expect(await store.unwrap('rsa', fromNode)).toEqual(key);
    expect(await store.unwrap('rsa', await store.wrap('rsa', Buffer.alloc(0)))).toEqual(Buffer.alloc(0));
    const largest = randomBytes(214); // 256 - 2·20 - 2
    expect(await store.unwrap('rsa', await store.wrap('rsa', largest))).toEqual(largest);
    await expectCode(store.wrap('rsa', key, Buffer.from('aad')), ErrorCodes.UNSUPPORTED);
    await expectCode(store.unwrap('rsa', blob, Buffer.from('aad')), ErrorCodes.UNSUPPORTED);
    const tampered = Buffer.from(blob);
    tampered[100] = (tampered[100] ?? 0) ^ 0x80;
    // Not blob.subarray(1): when the ciphertext starts with 0x00 (1 in 256) that is the same integer and decrypts.
    // Dropping the last byte always changes the integer; one byte more than the modulus is refused by length.
    const truncated = blob.subarray(0, blob.length - 1);
    const overlong = Buffer.concat([blob, Buffer.of(0)]);
    for (const bad of [tampered, truncated, overlong, Buffer.alloc(256), randomBytes(10)]) {
      const err = await expectCode(store.unwrap('rsa', bad), ErrorCodes.UNWRAP);
      expect(err.message).toBe(unwrapFailed().message);
    }
  });

  it('wrap → unwrap is the identity (property)', async () => {
    await store.generateSecretKey('sek');
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ minLength: 0, maxLength: 512 }), fc.uint8Array({ minLength: 0, maxLength: 64 }), async (plaintext, aad) => {
        const blob = await store.wrap('sek', plaintext, aad);
        expect(blob).toHaveLength(plaintext.length + 28);
        expect(await store.unwrap('sek', blob, aad)).toEqual(Buffer.from(plaintext));
      }),
      { numRuns },
    );
  });

  it('deletes both halves of a pair, and the label can be used again', async () => {
    await store.generateKeyPair('dev', 'ec-p256');
    await store.generateSecretKey('sek');
    await store.sign('dev', Buffer.from('warm the cache'));
    await store.deleteKey('dev');
    expect(await store.info('dev')).toBeUndefined();
    await expectCode(store.getPublicKey('dev'), ErrorCodes.KEY_NOT_FOUND);
    await expectCode(store.sign('dev', Buffer.from('x')), ErrorCodes.KEY_NOT_FOUND);
    await expectCode(store.deleteKey('dev'), ErrorCodes.KEY_NOT_FOUND);
    await store.deleteKey('sek');
    expect(await store.info('sek')).toBeUndefined();
    const again = await store.generateKeyPair('dev', 'ec-p256');
    expect(cryptoVerify('sha256', Buffer.from('y'), again, await store.sign('dev', Buffer.from('y')))).toBe(true);
    expect(await store.list()).toEqual([{ label: 'dev', algorithm: 'ec-p256' }]);
  });

  it('lists every key, sorted by label', async () => {
    expect(await store.list()).toEqual([]);
    await store.generateSecretKey('c-sek');
    await store.generateKeyPair('a-dev', 'ec-p256');
    await store.generateKeyPair('b-rsa', 'rsa-2048');
    const expected = [
      { label: 'a-dev', algorithm: 'ec-p256' },
      { label: 'b-rsa', algorithm: 'rsa-2048' },
      { label: 'c-sek', algorithm: 'aes-256' },
    ];
    expect(await store.list()).toEqual(expected);
    store = await f.reopen();
    expect(await store.list()).toEqual(expected);
  });

  it('keeps keys across close and reopen; a closed store refuses to work', async () => {
    const pub = await store.generateKeyPair('dev', 'ec-p256');
    const old = store;
    store = await f.reopen();
    await expectCode(old.sign('dev', Buffer.from('x')), ErrorCodes.KEYSTORE);
    await old.close(); // twice is fine
    expect(spki(await store.getPublicKey('dev'))).toBe(spki(pub));
    expect(cryptoVerify('sha256', Buffer.from('x'), pub, await store.sign('dev', Buffer.from('x')))).toBe(true);
  });
});

describe('ECDSA signature encodings', () => {
  it('P1363 ⇄ DER agrees with node:crypto (property)', () => {
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), (data) => {
        const raw = cryptoSign('sha256', data, { key: privateKey, dsaEncoding: 'ieee-p1363' });
        const der = p1363ToDer(raw);
        expect(cryptoVerify('sha256', data, publicKey, der)).toBe(true);
        expect(derToP1363(der)).toEqual(raw);
        const nodeDer = cryptoSign('sha256', data, privateKey);
        expect(p1363ToDer(derToP1363(nodeDer))).toEqual(nodeDer);
      }),
      { numRuns: 200 },
    );
  });

  it('encodes small and high-bit integers canonically', () => {
    const raw = Buffer.alloc(64);
    raw[31] = 0x01; // r = 1
    raw[32] = 0x80; // s has its top bit set
    expect(p1363ToDer(raw).toString('hex')).toBe('3026' + '020101' + '022100' + '80' + '00'.repeat(31));
    expect(derToP1363(p1363ToDer(raw))).toEqual(raw);
    expect(() => p1363ToDer(Buffer.alloc(63))).toThrow(RangeError);
  });
});
