/**
 * The software key store, keyframe's embedded default. Layout of DIR (mode 0700):
 *
 *   keystore.json      { version, kdf: scrypt parameters and salt, check }   — one scrypt per open
 *   <label>.key.json   { version, label, algorithm, publicKey?, nonce, ciphertext, tag }   mode 0600
 *
 * Private keys are PKCS#8 DER, secret keys 32 raw bytes, each sealed with AES-256-GCM under the key-encryption
 * key KEK = scrypt(passphrase, salt); the AAD binds version, label and algorithm, so a file renamed to another
 * label or algorithm fails to open. `check` is a GCM seal of a fixed string: a wrong passphrase is reported as
 * one generic authentication failure before any key is touched.
 */
import type { KeyObject, SignKeyObjectInput } from 'node:crypto';
import {
  createCipheriv,
  createDecipheriv,
  createPrivateKey,
  createPublicKey,
  createSign,
  diffieHellman,
  generateKeyPairSync,
  privateDecrypt,
  publicEncrypt,
  randomBytes,
  scrypt as scryptCb,
  sign as cryptoSign,
  constants as cryptoConstants,
  timingSafeEqual,
} from 'node:crypto';
import { existsSync } from 'node:fs';
import { chmod, mkdir, readFile, readdir, stat, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { ErrorCodes, InputError, KeyStoreError, NotFoundError, errnoCode } from '../errors.js';
import { writeFileAtomic } from '../util/fs.js';
import { GCM_NONCE_BYTES, GCM_TAG_BYTES, assertLabel, assertP256Public, unwrapFailed } from './_common.js';
import { deriveFromSharedSecret } from './kdf.js';
import { pssSaltLength, type KeyAlgorithm, type KeyInfo, type KeyPairAlgorithm, type KeyStore, type SignOptions } from './types.js';

const VERSION = 1;
const CHECK_PLAINTEXT = Buffer.from('keyframe software keystore v1');
const MIN_PASSPHRASE = 8;
/** RSA-2048 OAEP with SHA-1: 256 − 2·20 − 2 bytes. */
const RSA_OAEP_SHA1_MAX = 214;

export interface ScryptParams {
  readonly N: number;
  readonly r: number;
  readonly p: number;
}

/** 32 MiB, about 0.1 s on one core: the cost of opening a store, paid once per process. */
export const DEFAULT_SCRYPT: ScryptParams = { N: 2 ** 15, r: 8, p: 1 };

interface StoreHeader {
  version: number;
  kdf: { name: 'scrypt'; N: number; r: number; p: number; salt: string };
  check: { nonce: string; ciphertext: string; tag: string };
}

interface KeyFile {
  version: number;
  label: string;
  algorithm: KeyAlgorithm;
  publicKey?: string;
  nonce: string;
  ciphertext: string;
  tag: string;
}

function scrypt(passphrase: string, salt: Buffer, params: ScryptParams): Promise<Buffer> {
  return new Promise((resolvePromise, reject) => {
    scryptCb(passphrase, salt, 32, { ...params, maxmem: 256 * params.N * params.r + 1024 * 1024 }, (err, key) => {
      if (err) reject(err);
      else resolvePromise(key);
    });
  });
}

function seal(kek: Buffer, plaintext: Uint8Array, aad: Buffer): { nonce: string; ciphertext: string; tag: string } {
  const nonce = randomBytes(GCM_NONCE_BYTES);
  const cipher = createCipheriv('aes-256-gcm', kek, nonce);
  cipher.setAAD(aad);
  const ciphertext = Buffer.concat([cipher.update(plaintext), cipher.final()]);
  return { nonce: nonce.toString('base64'), ciphertext: ciphertext.toString('base64'), tag: cipher.getAuthTag().toString('base64') };
}

function open(kek: Buffer, sealed: { nonce: string; ciphertext: string; tag: string }, aad: Buffer): Buffer | undefined {
  try {
    const decipher = createDecipheriv('aes-256-gcm', kek, Buffer.from(sealed.nonce, 'base64'));
    decipher.setAAD(aad);
    decipher.setAuthTag(Buffer.from(sealed.tag, 'base64'));
    return Buffer.concat([decipher.update(Buffer.from(sealed.ciphertext, 'base64')), decipher.final()]);
  } catch {
    return undefined;
  }
}

function keyAad(label: string, algorithm: KeyAlgorithm): Buffer {
  return Buffer.from(`keyframe/v1 keystore key|${VERSION}|${label}|${algorithm}`);
}

function isAlgorithm(v: unknown): v is KeyAlgorithm {
  return v === 'ec-p256' || v === 'rsa-2048' || v === 'aes-256';
}

export interface SoftwareKeyStoreOptions {
  /** Create the store when DIR holds none (only commands that make a new identity do); default: refuse. */
  readonly create?: boolean;
  /** scrypt cost for a store created by this call (an existing store keeps its own). */
  readonly scrypt?: ScryptParams;
}

/** A store other users can read or write is refused, as ssh refuses such keys: name the fix. */
async function checkPrivate(path: string, what: string): Promise<void> {
  const st = await stat(path);
  if ((st.mode & 0o077) !== 0) {
    const mode = (st.mode & 0o777).toString(8).padStart(4, '0');
    throw new KeyStoreError(ErrorCodes.KEYSTORE, `key store ${what} ${path} is accessible by other users (mode ${mode}): run chmod ${st.isDirectory() ? '700' : '600'} ${path}`);
  }
}

export class SoftwareKeyStore implements KeyStore {
  readonly backend = 'software' as const;
  readonly description: string;
  readonly #dir: string;
  #kek: Buffer | undefined;
  readonly #cache = new Map<string, { algorithm: KeyAlgorithm; key: KeyObject | Buffer }>();

  private constructor(dir: string, kek: Buffer) {
    this.#dir = dir;
    this.#kek = kek;
    this.description = `file:${dir}`;
  }

  /**
   * Opens the store in DIR; creates it only with `create` (never as a side effect of reading). A wrong passphrase
   * is one KF_ERR_KEYSTORE_AUTH; a store readable or writable by other users is refused.
   */
  static async open(dir: string, passphrase: string, options: SoftwareKeyStoreOptions = {}): Promise<SoftwareKeyStore> {
    const headerPath = join(dir, 'keystore.json');
    if (!existsSync(headerPath)) {
      if (options.create !== true) {
        throw new NotFoundError(existsSync(dir) ? `no key store in ${dir} (keystore.json is missing)` : `key store directory not found: ${dir}`);
      }
      if (passphrase.length < MIN_PASSPHRASE) {
        throw new KeyStoreError(ErrorCodes.KEYSTORE_AUTH, `a new key store needs a passphrase of at least ${MIN_PASSPHRASE} characters`);
      }
      await mkdir(dir, { recursive: true, mode: 0o700 });
      await chmod(dir, 0o700);
      const params = options.scrypt ?? DEFAULT_SCRYPT;
      const salt = randomBytes(16);
      const kek = await scrypt(passphrase, salt, params);
      const header: StoreHeader = {
        version: VERSION,
        kdf: { name: 'scrypt', N: params.N, r: params.r, p: params.p, salt: salt.toString('base64') },
        check: seal(kek, CHECK_PLAINTEXT, Buffer.from('keyframe/v1 keystore check')),
      };
      // exclusive: two processes creating the same store at once must not end with two different salts
      await writeFileAtomic(headerPath, JSON.stringify(header, null, 2) + '\n', { mode: 0o600, exclusive: true });
      return new SoftwareKeyStore(dir, kek);
    }
    await checkPrivate(dir, 'directory');
    await checkPrivate(headerPath, 'file');
    let header: StoreHeader;
    try {
      header = JSON.parse(await readFile(headerPath, 'utf8')) as StoreHeader;
    } catch (e) {
      throw new InputError(`key store ${dir} is damaged: keystore.json is not valid JSON`, { cause: e });
    }
    if (header.version !== VERSION || header.kdf?.name !== 'scrypt' || typeof header.kdf.salt !== 'string') {
      throw new InputError(`key store ${dir}: unsupported keystore.json (version ${String(header.version)})`);
    }
    const { N, r, p } = header.kdf;
    if (![N, r, p].every((x) => Number.isInteger(x) && x > 0) || N > 2 ** 20 || r > 32 || p > 16) {
      throw new InputError(`key store ${dir}: scrypt parameters out of range`);
    }
    const kek = await scrypt(passphrase, Buffer.from(header.kdf.salt, 'base64'), { N, r, p });
    const check = open(kek, header.check, Buffer.from('keyframe/v1 keystore check'));
    if (check === undefined || check.length !== CHECK_PLAINTEXT.length || !timingSafeEqual(check, CHECK_PLAINTEXT)) {
      throw new KeyStoreError(ErrorCodes.KEYSTORE_AUTH, `key store authentication failed for ${dir}`);
    }
    return new SoftwareKeyStore(dir, kek);
  }

  #kekOrThrow(): Buffer {
    if (this.#kek === undefined) throw new KeyStoreError(ErrorCodes.KEYSTORE, 'key store is closed');
    return this.#kek;
  }

  #path(label: string): string {
    return join(this.#dir, `${label}.key.json`);
  }

  async #readKeyFile(label: string): Promise<KeyFile | undefined> {
    let text: string;
    try {
      text = await readFile(this.#path(label), 'utf8');
    } catch (e) {
      if (errnoCode(e) === 'ENOENT') return undefined;
      throw new KeyStoreError(ErrorCodes.KEYSTORE, `cannot read key "${label}": ${(e as Error).message}`);
    }
    await checkPrivate(this.#path(label), 'file');
    let file: KeyFile;
    try {
      file = JSON.parse(text) as KeyFile;
    } catch {
      throw new KeyStoreError(ErrorCodes.KEYSTORE, `key file for "${label}" is damaged`);
    }
    if (file.version !== VERSION || file.label !== label || !isAlgorithm(file.algorithm)) {
      throw new KeyStoreError(ErrorCodes.KEYSTORE, `key file for "${label}" is damaged or not for this label`);
    }
    return file;
  }

  async #load(label: string): Promise<{ algorithm: KeyAlgorithm; key: KeyObject | Buffer }> {
    assertLabel(label);
    const cached = this.#cache.get(label);
    if (cached !== undefined) return cached;
    const file = await this.#readKeyFile(label);
    if (file === undefined) throw new KeyStoreError(ErrorCodes.KEY_NOT_FOUND, `no key "${label}" in ${this.description}`);
    const plain = open(this.#kekOrThrow(), file, keyAad(label, file.algorithm));
    if (plain === undefined) throw new KeyStoreError(ErrorCodes.KEYSTORE, `key "${label}" cannot be opened: the file was altered or belongs to another store`);
    const key = file.algorithm === 'aes-256' ? plain : createPrivateKey({ key: plain, format: 'der', type: 'pkcs8' });
    if (file.algorithm !== 'aes-256') plain.fill(0);
    const entry = { algorithm: file.algorithm, key };
    this.#cache.set(label, entry);
    return entry;
  }

  async #store(label: string, algorithm: KeyAlgorithm, secret: Buffer, publicKey?: KeyObject): Promise<void> {
    assertLabel(label);
    if (existsSync(this.#path(label))) throw new KeyStoreError(ErrorCodes.KEY_EXISTS, `a key "${label}" exists already in ${this.description}`);
    const sealed = seal(this.#kekOrThrow(), secret, keyAad(label, algorithm));
    const file: KeyFile = {
      version: VERSION,
      label,
      algorithm,
      ...(publicKey ? { publicKey: publicKey.export({ format: 'der', type: 'spki' }).toString('base64') } : {}),
      ...sealed,
    };
    await writeFileAtomic(this.#path(label), JSON.stringify(file, null, 2) + '\n', { mode: 0o600, exclusive: true });
  }

  async generateKeyPair(label: string, algorithm: KeyPairAlgorithm): Promise<KeyObject> {
    assertLabel(label);
    const pair =
      algorithm === 'ec-p256'
        ? generateKeyPairSync('ec', { namedCurve: 'P-256' })
        : algorithm === 'rsa-2048'
          ? generateKeyPairSync('rsa', { modulusLength: 2048, publicExponent: 0x10001 })
          : undefined;
    if (pair === undefined) throw new KeyStoreError(ErrorCodes.UNSUPPORTED, `unsupported key pair algorithm ${String(algorithm)}`);
    const der = pair.privateKey.export({ format: 'der', type: 'pkcs8' });
    try {
      await this.#store(label, algorithm, der, pair.publicKey);
    } finally {
      der.fill(0);
    }
    this.#cache.set(label, { algorithm, key: pair.privateKey });
    return pair.publicKey;
  }

  async generateSecretKey(label: string): Promise<KeyInfo> {
    const secret = randomBytes(32);
    await this.#store(label, 'aes-256', secret);
    this.#cache.set(label, { algorithm: 'aes-256', key: secret });
    return { label, algorithm: 'aes-256' };
  }

  async getPublicKey(label: string): Promise<KeyObject> {
    assertLabel(label);
    const file = await this.#readKeyFile(label);
    if (file === undefined) throw new KeyStoreError(ErrorCodes.KEY_NOT_FOUND, `no key "${label}" in ${this.description}`);
    if (file.publicKey === undefined) throw new KeyStoreError(ErrorCodes.UNSUPPORTED, `key "${label}" is a secret key: it has no public key`);
    return createPublicKey({ key: Buffer.from(file.publicKey, 'base64'), format: 'der', type: 'spki' });
  }

  async info(label: string): Promise<KeyInfo | undefined> {
    assertLabel(label);
    const file = await this.#readKeyFile(label);
    return file === undefined ? undefined : { label, algorithm: file.algorithm };
  }

  async list(): Promise<KeyInfo[]> {
    const names = await readdir(this.#dir).catch(() => [] as string[]);
    const out: KeyInfo[] = [];
    for (const name of names) {
      if (!name.endsWith('.key.json')) continue;
      const info = await this.info(name.slice(0, -'.key.json'.length)).catch(() => undefined);
      if (info !== undefined) out.push(info);
    }
    return out.sort((a, b) => (a.label < b.label ? -1 : a.label > b.label ? 1 : 0));
  }

  async deleteKey(label: string): Promise<void> {
    assertLabel(label);
    try {
      await unlink(this.#path(label));
    } catch (e) {
      if (errnoCode(e) === 'ENOENT') throw new KeyStoreError(ErrorCodes.KEY_NOT_FOUND, `no key "${label}" in ${this.description}`);
      throw e;
    }
    const cached = this.#cache.get(label);
    if (cached !== undefined && Buffer.isBuffer(cached.key)) cached.key.fill(0);
    this.#cache.delete(label);
  }

  /** Node's signing input for the key pair at `label` (a secret key cannot sign). */
  async #signingKey(label: string, options: SignOptions): Promise<SignKeyObjectInput> {
    const { algorithm, key } = await this.#load(label);
    if (algorithm === 'aes-256' || Buffer.isBuffer(key)) throw new KeyStoreError(ErrorCodes.UNSUPPORTED, `key "${label}" is a secret key: it cannot sign`);
    if (algorithm === 'ec-p256') return { key, dsaEncoding: options.dsaEncoding ?? 'der' };
    if (options.rsaPadding === 'pss') return { key, padding: cryptoConstants.RSA_PKCS1_PSS_PADDING, saltLength: pssSaltLength(options) };
    return { key, padding: cryptoConstants.RSA_PKCS1_PADDING };
  }

  async sign(label: string, data: Uint8Array, options: SignOptions = {}): Promise<Buffer> {
    return cryptoSign('sha256', data, await this.#signingKey(label, options));
  }

  async signStream(label: string, chunks: AsyncIterable<Uint8Array>, options: SignOptions = {}): Promise<Buffer> {
    // the key is looked up first: a wrong label or a secret key fails before the input is read
    const key = await this.#signingKey(label, options);
    const signer = createSign('sha256');
    for await (const c of chunks) signer.update(c);
    return signer.sign(key);
  }

  async deriveKey(privateLabel: string, peerPublicKey: KeyObject, newLabel: string, context: Uint8Array): Promise<KeyInfo> {
    assertLabel(newLabel);
    assertP256Public(peerPublicKey);
    const { algorithm, key } = await this.#load(privateLabel);
    if (algorithm !== 'ec-p256' || Buffer.isBuffer(key)) throw new KeyStoreError(ErrorCodes.UNSUPPORTED, `key "${privateLabel}" is not a P-256 key pair: it cannot do ECDH`);
    const z = diffieHellman({ privateKey: key, publicKey: peerPublicKey });
    const derived = deriveFromSharedSecret(z, context);
    z.fill(0);
    await this.#store(newLabel, 'aes-256', derived);
    this.#cache.set(newLabel, { algorithm: 'aes-256', key: derived });
    return { label: newLabel, algorithm: 'aes-256' };
  }

  async wrap(label: string, plaintext: Uint8Array, aad: Uint8Array = new Uint8Array()): Promise<Buffer> {
    const { algorithm, key } = await this.#load(label);
    if (algorithm === 'aes-256' && Buffer.isBuffer(key)) {
      const nonce = randomBytes(GCM_NONCE_BYTES);
      const cipher = createCipheriv('aes-256-gcm', key, nonce);
      cipher.setAAD(aad);
      const body = cipher.update(plaintext);
      const final = cipher.final();
      return Buffer.concat([nonce, body, final, cipher.getAuthTag()]);
    }
    if (algorithm === 'rsa-2048' && !Buffer.isBuffer(key)) {
      if (aad.length > 0) throw new KeyStoreError(ErrorCodes.UNSUPPORTED, 'RSA-OAEP wrapping takes no associated data');
      if (plaintext.length > RSA_OAEP_SHA1_MAX) throw new KeyStoreError(ErrorCodes.UNSUPPORTED, `RSA-2048 OAEP wraps at most ${RSA_OAEP_SHA1_MAX} bytes`);
      return publicEncrypt({ key: createPublicKey(key), padding: cryptoConstants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha1' }, plaintext);
    }
    throw new KeyStoreError(ErrorCodes.UNSUPPORTED, `key "${label}" (${algorithm}) cannot wrap: use an aes-256 or rsa-2048 key`);
  }

  async unwrap(label: string, wrapped: Uint8Array, aad: Uint8Array = new Uint8Array()): Promise<Buffer> {
    const { algorithm, key } = await this.#load(label);
    if (algorithm === 'aes-256' && Buffer.isBuffer(key)) {
      if (wrapped.length < GCM_NONCE_BYTES + GCM_TAG_BYTES) throw unwrapFailed();
      const buf = Buffer.from(wrapped.buffer, wrapped.byteOffset, wrapped.byteLength);
      try {
        const decipher = createDecipheriv('aes-256-gcm', key, buf.subarray(0, GCM_NONCE_BYTES));
        decipher.setAAD(aad);
        decipher.setAuthTag(buf.subarray(buf.length - GCM_TAG_BYTES));
        return Buffer.concat([decipher.update(buf.subarray(GCM_NONCE_BYTES, buf.length - GCM_TAG_BYTES)), decipher.final()]);
      } catch {
        throw unwrapFailed();
      }
    }
    if (algorithm === 'rsa-2048' && !Buffer.isBuffer(key)) {
      if (aad.length > 0) throw new KeyStoreError(ErrorCodes.UNSUPPORTED, 'RSA-OAEP wrapping takes no associated data');
      try {
        return privateDecrypt({ key, padding: cryptoConstants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha1' }, wrapped);
      } catch {
        throw unwrapFailed();
      }
    }
    throw new KeyStoreError(ErrorCodes.UNSUPPORTED, `key "${label}" (${algorithm}) cannot unwrap: use an aes-256 or rsa-2048 key`);
  }

  async close(): Promise<void> {
    for (const { key } of this.#cache.values()) if (Buffer.isBuffer(key)) key.fill(0);
    this.#cache.clear();
    this.#kek?.fill(0);
    this.#kek = undefined;
  }

  /**
   * For TLS only: Node's TLS stack needs the private key in-process. Returns the PKCS#8 PEM encrypted under a
   * fresh random passphrase (PBES2, AES-256-CBC) together with that passphrase, so that no unencrypted PEM string
   * exists in the JavaScript heap; OpenSSL decrypts it inside the secure context.
   */
  async exportForTls(label: string): Promise<{ pem: string; passphrase: string }> {
    const { algorithm, key } = await this.#load(label);
    if (algorithm === 'aes-256' || Buffer.isBuffer(key)) throw new KeyStoreError(ErrorCodes.UNSUPPORTED, `key "${label}" is a secret key: TLS needs a key pair`);
    const passphrase = randomBytes(24).toString('base64url');
    const pem = key.export({ format: 'pem', type: 'pkcs8', cipher: 'aes-256-cbc', passphrase });
    return { pem: typeof pem === 'string' ? pem : pem.toString('utf8'), passphrase };
  }
}
