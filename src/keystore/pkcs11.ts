/**
 * The PKCS#11 key store: keys are generated inside a token (a secure element, an HSM, or SoftHSM2 in tests) and
 * used there; private and secret keys are CKA_SENSITIVE and not CKA_EXTRACTABLE, so nothing — not this process,
 * not anyone holding the PIN — can read them out. Semantics and error codes mirror the software backend exactly.
 *
 *   key pair   CKO_PRIVATE_KEY + CKO_PUBLIC_KEY, token objects sharing CKA_LABEL and a random CKA_ID
 *   aes-256    CKO_SECRET_KEY, CKK_AES, 32 bytes
 *
 * Mechanisms, chosen for what SoftHSM 2.6 offers (see docs in interop notes §5):
 *   sign       EC: SHA-256 on the host, CKM_ECDSA on the digest (raw r‖s, converted to DER unless P1363 asked for)
 *              RSA: CKM_SHA256_RSA_PKCS; RSA-PSS, and any streamed input (signStream): SHA-256 on the host, then
 *              CKM_RSA_PKCS_PSS, or CKM_RSA_PKCS over the DigestInfo (the same PKCS#1 v1.5 signature)
 *   deriveKey  CKM_ECDH1_DERIVE (CKD_NULL) to a session key Z, then CKM_AES_CBC_ENCRYPT_DATA over kdfInput(context):
 *              exactly kdf.ts's K, and neither Z nor K ever leaves the token
 *   wrap       AES: CKM_AES_GCM, 12-byte random nonce, output nonce ‖ ciphertext ‖ tag
 *              RSA: RSA-OAEP with SHA-1 / MGF1-SHA-1 (the only OAEP parameters SoftHSM 2.6 accepts); encryption
 *              with the public key on the host, decryption CKM_RSA_PKCS_OAEP in the token
 *
 * All calls are synchronous pkcs11js calls on this store's one session, so two concurrent operations on the same
 * store never interleave inside a PKCS#11 operation (C_SignInit … C_Sign).
 */
import { constants as cryptoConstants, createHash, createPublicKey, publicEncrypt, randomBytes } from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import { endianness } from 'node:os';
import { ErrorCodes, KeyStoreError, KeyframeError } from '../errors.js';
import { GCM_NONCE_BYTES, GCM_TAG_BYTES, assertLabel, assertP256Public, unwrapFailed } from './_common.js';
import { p1363ToDer } from './_ecdsa.js';
import { checkLoggedInPin, ckrName, loadModule, p11Error, pkcs11js, rememberPin } from './_pkcs11-module.js';
import type { Handle, LoadedModule, Pkcs11 } from './_pkcs11-module.js';
import { kdfInput } from './kdf.js';
import type { KeyAlgorithm, KeyInfo, KeyPairAlgorithm, KeyStore, SignOptions } from './types.js';
import { LABEL_PATTERN, pssSaltLength } from './types.js';

const {
  CKA_CLASS,
  CKA_DECRYPT,
  CKA_DERIVE,
  CKA_EC_PARAMS,
  CKA_EC_POINT,
  CKA_ENCRYPT,
  CKA_EXTRACTABLE,
  CKA_ID,
  CKA_KEY_TYPE,
  CKA_LABEL,
  CKA_MODULUS,
  CKA_MODULUS_BITS,
  CKA_PRIVATE,
  CKA_PUBLIC_EXPONENT,
  CKA_SENSITIVE,
  CKA_SIGN,
  CKA_TOKEN,
  CKA_UNWRAP,
  CKA_VALUE_LEN,
  CKA_VERIFY,
  CKA_WRAP,
  CKD_NULL,
  CKF_RW_SESSION,
  CKF_SERIAL_SESSION,
  CKF_TOKEN_INITIALIZED,
  CKG_MGF1_SHA1,
  CKG_MGF1_SHA256,
  CKK_AES,
  CKK_EC,
  CKK_RSA,
  CKM_AES_CBC_ENCRYPT_DATA,
  CKM_AES_GCM,
  CKM_AES_KEY_GEN,
  CKM_ECDH1_DERIVE,
  CKM_ECDSA,
  CKM_EC_KEY_PAIR_GEN,
  CKM_RSA_PKCS,
  CKM_RSA_PKCS_KEY_PAIR_GEN,
  CKM_RSA_PKCS_OAEP,
  CKM_RSA_PKCS_PSS,
  CKM_SHA256,
  CKM_SHA256_RSA_PKCS,
  CKM_SHA_1,
  CKO_PRIVATE_KEY,
  CKO_PUBLIC_KEY,
  CKO_SECRET_KEY,
  CKU_USER,
  CK_PARAMS_AES_CBC,
  CK_PARAMS_AES_GCM,
  CK_PARAMS_EC_DH,
  CK_PARAMS_RSA_OAEP,
  CK_PARAMS_RSA_PSS,
} = pkcs11js;

/** DER OBJECT IDENTIFIER prime256v1, the CKA_EC_PARAMS of a P-256 key. */
const P256_PARAMS = Buffer.from('06082a8648ce3d030107', 'hex');
/** SubjectPublicKeyInfo prefix for an uncompressed P-256 point (04 ‖ X ‖ Y follows). */
const P256_SPKI_PREFIX = Buffer.from('3059301306072a8648ce3d020106082a8648ce3d030107034200', 'hex');
const RSA_BYTES = 256;
/** DER DigestInfo prefix for SHA-256 (RFC 8017 §9.2 note 1): CKM_RSA_PKCS signs DigestInfo ‖ digest. */
const SHA256_DIGEST_INFO = Buffer.from('3031300d060960864801650304020105000420', 'hex');
/** RSA-OAEP with SHA-1 on a 2048-bit key carries at most 256 - 2·20 - 2 bytes. */
const RSA_OAEP_MAX = RSA_BYTES - 2 * 20 - 2;
/** `source: 1` is CKZ_DATA_SPECIFIED (an empty label). */
const OAEP_PARAMS: pkcs11js.RsaOAEP = { type: CK_PARAMS_RSA_OAEP, hashAlg: CKM_SHA_1, mgf: CKG_MGF1_SHA1, source: 1 };
const HANDLE_INVALID = new Set(['CKR_OBJECT_HANDLE_INVALID', 'CKR_KEY_HANDLE_INVALID']);
const BAD_PIN = new Set(['CKR_PIN_INCORRECT', 'CKR_PIN_INVALID', 'CKR_PIN_LEN_RANGE']);

export interface Pkcs11OpenOptions {
  /** Path of the PKCS#11 module (shared library), e.g. /usr/lib/softhsm/libsofthsm2.so. */
  readonly module: string;
  /** The token's label (CKA_LABEL of the token, as set at C_InitToken). */
  readonly token: string;
  /** The user PIN. */
  readonly pin: string;
}

interface Entry {
  readonly algorithm: KeyAlgorithm;
  readonly privateKey?: Handle;
  readonly publicKey?: Handle;
  readonly secretKey?: Handle;
}

const ULONG_LE = endianness() === 'LE';

function readUlong(buf: Buffer): number {
  if (buf.length === 8) return Number(ULONG_LE ? buf.readBigUInt64LE() : buf.readBigUInt64BE());
  if (buf.length === 4) return ULONG_LE ? buf.readUInt32LE() : buf.readUInt32BE();
  throw new KeyStoreError(ErrorCodes.KEYSTORE, `PKCS#11 module returned a ${buf.length}-byte CK_ULONG`);
}

/** Token labels are padded to 32 bytes with blanks (or, from some tools, NULs). */
function tokenLabel(raw: string): string {
  return raw.replace(/[\s\0]+$/, '');
}

function toBuffer(data: Uint8Array): Buffer {
  return Buffer.isBuffer(data) ? data : Buffer.from(data.buffer, data.byteOffset, data.byteLength);
}

/** The last 65 bytes of CKA_EC_POINT (a DER OCTET STRING around 04 ‖ X ‖ Y, or the bare point). */
function ecPublicKey(point: Buffer): KeyObject {
  const raw = point.subarray(point.length - 65);
  if (point.length < 65 || raw[0] !== 0x04) throw new KeyStoreError(ErrorCodes.KEYSTORE, 'PKCS#11 token returned an EC point that is not an uncompressed P-256 point');
  return createPublicKey({ key: Buffer.concat([P256_SPKI_PREFIX, raw]), format: 'der', type: 'spki' });
}

/** A big-endian unsigned integer without leading zero bytes. */
function unsigned(buf: Buffer): Buffer {
  let i = 0;
  while (i < buf.length - 1 && buf[i] === 0) i++;
  return buf.subarray(i);
}

/** 04 ‖ X ‖ Y of a P-256 public KeyObject. */
function uncompressedPoint(key: KeyObject): Buffer {
  const jwk = key.export({ format: 'jwk' });
  if (jwk.x === undefined || jwk.y === undefined) throw new KeyStoreError(ErrorCodes.UNSUPPORTED, "ECDH needs the peer's P-256 public key");
  return Buffer.concat([Buffer.of(0x04), Buffer.from(jwk.x, 'base64url'), Buffer.from(jwk.y, 'base64url')]);
}

/**
 * An RFC 7512 PKCS#11 URI naming the private key `label` in `spec.token`, for the OpenSSL pkcs11 engine (TLS).
 * It never contains a PIN: give the engine the PIN through its own control or a pin-source file.
 */
export function pkcs11Uri(spec: { readonly token: string }, label: string): string {
  return `pkcs11:token=${pctEncode(spec.token)};object=${pctEncode(label)};type=private`;
}

/** Percent-encodes everything but RFC 3986 unreserved characters (always valid in a pk11-path attribute value). */
function pctEncode(text: string): string {
  let out = '';
  for (const byte of Buffer.from(text, 'utf8')) {
    const c = String.fromCharCode(byte);
    out += /[A-Za-z0-9\-._~]/.test(c) ? c : `%${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}

export class Pkcs11KeyStore implements KeyStore {
  readonly backend = 'pkcs11' as const;
  readonly description: string;
  readonly #p11: Pkcs11;
  readonly #slot: Handle;
  #session: Handle | undefined;
  readonly #cache = new Map<string, Entry>();

  private constructor(p11: Pkcs11, slot: Handle, session: Handle, description: string) {
    this.#p11 = p11;
    this.#slot = slot;
    this.#session = session;
    this.description = description;
  }

  /**
   * Loads the module (once per process), finds the token by label, opens a read/write session and logs in.
   * A wrong PIN is one generic KF_ERR_KEYSTORE_AUTH; an unknown token is KF_ERR_KEYSTORE naming the label.
   */
  static async open({ module, token, pin }: Pkcs11OpenOptions): Promise<Pkcs11KeyStore> {
    const description = `pkcs11:module=${module};token=${token}`;
    const loaded = loadModule(module);
    const { p11 } = loaded;
    const slot = findSlot(loaded, token);
    let session: Handle;
    try {
      session = p11.C_OpenSession(slot, CKF_SERIAL_SESSION | CKF_RW_SESSION);
    } catch (e) {
      throw p11Error(e, `opening a session on token "${token}"`);
    }
    try {
      login(loaded, slot, session, pin, description);
    } catch (e) {
      try {
        p11.C_CloseSession(session);
      } catch {
        // the session is useless either way
      }
      throw e;
    }
    return new Pkcs11KeyStore(p11, slot, session, description);
  }

  get #s(): Handle {
    if (this.#session === undefined) throw new KeyStoreError(ErrorCodes.KEYSTORE, 'key store is closed');
    return this.#session;
  }

  // ---- object lookup ------------------------------------------------------------------------------------------

  #find(template: pkcs11js.Template): Handle[] {
    const p11 = this.#p11;
    const s = this.#s;
    p11.C_FindObjectsInit(s, template);
    const out: Handle[] = [];
    try {
      for (;;) {
        const batch = p11.C_FindObjects(s, 64);
        out.push(...batch);
        if (batch.length < 64) break;
      }
    } finally {
      p11.C_FindObjectsFinal(s);
    }
    return out;
  }

  #attr(handle: Handle, type: number): Buffer {
    const [result] = this.#p11.C_GetAttributeValue(this.#s, handle, [{ type }]);
    if (result === undefined) throw new KeyStoreError(ErrorCodes.KEYSTORE, 'PKCS#11 module returned no attribute');
    return result.value;
  }

  /** The key objects (private, public, secret) labelled `label`: certificates and data objects are ignored. */
  #keyObjects(label: string): { cls: number; handle: Handle }[] {
    const out: { cls: number; handle: Handle }[] = [];
    for (const handle of this.#find([{ type: CKA_LABEL, value: label }])) {
      const cls = readUlong(this.#attr(handle, CKA_CLASS));
      if (cls === CKO_PRIVATE_KEY || cls === CKO_PUBLIC_KEY || cls === CKO_SECRET_KEY) out.push({ cls, handle });
    }
    return out;
  }

  /** What is under `label`, straight from the token; undefined if there is no key. */
  #classify(label: string): Entry | undefined {
    const objects = this.#keyObjects(label);
    if (objects.length === 0) return undefined;
    const of = (cls: number): Handle | undefined => {
      const matching = objects.filter((o) => o.cls === cls);
      if (matching.length > 1) throw new KeyStoreError(ErrorCodes.KEYSTORE, `several keys are labelled "${label}" in ${this.description}: remove the extra ones`);
      return matching[0]?.handle;
    };
    const privateKey = of(CKO_PRIVATE_KEY);
    const publicKey = of(CKO_PUBLIC_KEY);
    const secretKey = of(CKO_SECRET_KEY);
    const unsupported = (): KeyStoreError =>
      new KeyStoreError(ErrorCodes.UNSUPPORTED, `key "${label}" in ${this.description} is not an ec-p256, rsa-2048 or aes-256 key`);
    if (secretKey !== undefined) {
      if (privateKey !== undefined || publicKey !== undefined) {
        throw new KeyStoreError(ErrorCodes.KEYSTORE, `several keys are labelled "${label}" in ${this.description}: remove the extra ones`);
      }
      const aes = readUlong(this.#attr(secretKey, CKA_KEY_TYPE)) === CKK_AES && readUlong(this.#attr(secretKey, CKA_VALUE_LEN)) === 32;
      if (!aes) throw unsupported();
      return { algorithm: 'aes-256', secretKey };
    }
    const any = (privateKey ?? publicKey) as Handle;
    const keyType = readUlong(this.#attr(any, CKA_KEY_TYPE));
    let algorithm: KeyPairAlgorithm;
    if (keyType === CKK_EC && this.#attr(any, CKA_EC_PARAMS).equals(P256_PARAMS)) algorithm = 'ec-p256';
    else if (keyType === CKK_RSA && unsigned(this.#attr(any, CKA_MODULUS)).length === RSA_BYTES) algorithm = 'rsa-2048';
    else throw unsupported();
    return { algorithm, ...(privateKey !== undefined ? { privateKey } : {}), ...(publicKey !== undefined ? { publicKey } : {}) };
  }

  #entry(label: string): Entry {
    assertLabel(label);
    const cached = this.#cache.get(label);
    if (cached !== undefined) return cached;
    const entry = this.#classify(label);
    if (entry === undefined) throw new KeyStoreError(ErrorCodes.KEY_NOT_FOUND, `no key "${label}" in ${this.description}`);
    this.#cache.set(label, entry);
    return entry;
  }

  /**
   * Runs `fn` on the key under `label`. Handles are cached; if another store or process replaced the key, the
   * stale handle is dropped and the lookup done once more.
   */
  #withKey<T>(label: string, fn: (entry: Entry) => T): T {
    const entry = this.#entry(label);
    try {
      return fn(entry);
    } catch (e) {
      if (e instanceof KeyframeError) throw e;
      this.#resetSession();
      if (!HANDLE_INVALID.has(ckrName(e) ?? '')) throw e;
      this.#cache.delete(label);
      return fn(this.#entry(label));
    }
  }

  /**
   * Replaces the session after a failed operation. A module may leave an operation active when a call fails
   * (SoftHSM does on CKR_ARGUMENTS_BAD), and PKCS#11 2.40 has no way to cancel one: every later C_*Init on the
   * session would fail with CKR_OPERATION_ACTIVE. The new session is opened before the old one is closed, so
   * the token stays logged in (login state ends with the application's last session).
   */
  #resetSession(): void {
    const old = this.#session;
    if (old === undefined) return;
    try {
      this.#session = this.#p11.C_OpenSession(this.#slot, CKF_SERIAL_SESSION | CKF_RW_SESSION);
    } catch {
      return; // keep the old one: better a possibly stuck session than none
    }
    try {
      this.#p11.C_CloseSession(old);
    } catch {
      // gone already
    }
  }

  /** C_Decrypt after C_DecryptInit; any failure of the decryption itself is the one uninformative unwrap error. */
  #decryptOrFail(input: Buffer, outLength: number): Buffer {
    try {
      return Buffer.from(this.#p11.C_Decrypt(this.#s, input, Buffer.alloc(outLength)));
    } catch (e) {
      if (e instanceof KeyframeError || HANDLE_INVALID.has(ckrName(e) ?? '')) throw e;
      this.#resetSession();
      throw unwrapFailed();
    }
  }

  #refuseExisting(label: string): void {
    assertLabel(label);
    if (this.#keyObjects(label).length > 0) throw new KeyStoreError(ErrorCodes.KEY_EXISTS, `a key "${label}" exists already in ${this.description}`);
    this.#cache.delete(label);
  }

  #publicKeyObject(entry: Entry, label: string): KeyObject {
    if (entry.publicKey === undefined) throw new KeyStoreError(ErrorCodes.KEYSTORE, `key "${label}" has no public key object in ${this.description}`);
    if (entry.algorithm === 'ec-p256') return ecPublicKey(this.#attr(entry.publicKey, CKA_EC_POINT));
    const n = unsigned(this.#attr(entry.publicKey, CKA_MODULUS)).toString('base64url');
    const e = unsigned(this.#attr(entry.publicKey, CKA_PUBLIC_EXPONENT)).toString('base64url');
    return createPublicKey({ key: { kty: 'RSA', n, e }, format: 'jwk' });
  }

  #private(entry: Entry, label: string, what: string): Handle {
    if (entry.algorithm === 'aes-256') throw new KeyStoreError(ErrorCodes.UNSUPPORTED, `key "${label}" is a secret key: it cannot ${what}`);
    if (entry.privateKey === undefined) throw new KeyStoreError(ErrorCodes.KEYSTORE, `key "${label}" has no private key object in ${this.description}`);
    return entry.privateKey;
  }

  // ---- KeyStore -----------------------------------------------------------------------------------------------

  async generateKeyPair(label: string, algorithm: KeyPairAlgorithm): Promise<KeyObject> {
    assertLabel(label);
    if (algorithm !== 'ec-p256' && algorithm !== 'rsa-2048') throw new KeyStoreError(ErrorCodes.UNSUPPORTED, `unsupported key pair algorithm ${String(algorithm)}`);
    try {
      this.#refuseExisting(label);
      const id = randomBytes(16);
      const common = [
        { type: CKA_TOKEN, value: true },
        { type: CKA_LABEL, value: label },
        { type: CKA_ID, value: id },
      ];
      const publicTemplate: pkcs11js.Template = [...common, { type: CKA_CLASS, value: CKO_PUBLIC_KEY }, { type: CKA_PRIVATE, value: false }, { type: CKA_VERIFY, value: true }];
      const privateTemplate: pkcs11js.Template = [
        ...common,
        { type: CKA_CLASS, value: CKO_PRIVATE_KEY },
        { type: CKA_PRIVATE, value: true },
        { type: CKA_SENSITIVE, value: true },
        { type: CKA_EXTRACTABLE, value: false },
        { type: CKA_SIGN, value: true },
      ];
      let mechanism: number;
      if (algorithm === 'ec-p256') {
        mechanism = CKM_EC_KEY_PAIR_GEN;
        publicTemplate.push({ type: CKA_KEY_TYPE, value: CKK_EC }, { type: CKA_EC_PARAMS, value: P256_PARAMS });
        privateTemplate.push({ type: CKA_KEY_TYPE, value: CKK_EC }, { type: CKA_DERIVE, value: true });
      } else {
        mechanism = CKM_RSA_PKCS_KEY_PAIR_GEN;
        publicTemplate.push(
          { type: CKA_KEY_TYPE, value: CKK_RSA },
          { type: CKA_MODULUS_BITS, value: RSA_BYTES * 8 },
          { type: CKA_PUBLIC_EXPONENT, value: Buffer.from([1, 0, 1]) },
          { type: CKA_ENCRYPT, value: true },
          { type: CKA_WRAP, value: false },
        );
        privateTemplate.push({ type: CKA_KEY_TYPE, value: CKK_RSA }, { type: CKA_DECRYPT, value: true }, { type: CKA_UNWRAP, value: false });
      }
      const pair = this.#p11.C_GenerateKeyPair(this.#s, { mechanism }, publicTemplate, privateTemplate);
      const entry: Entry = { algorithm, privateKey: pair.privateKey, publicKey: pair.publicKey };
      this.#cache.set(label, entry);
      return this.#publicKeyObject(entry, label);
    } catch (e) {
      throw p11Error(e, `generating ${algorithm} key pair "${label}"`);
    }
  }

  async generateSecretKey(label: string): Promise<KeyInfo> {
    assertLabel(label);
    try {
      this.#refuseExisting(label);
      const secretKey = this.#p11.C_GenerateKey(this.#s, { mechanism: CKM_AES_KEY_GEN }, this.#secretTemplate(label));
      this.#cache.set(label, { algorithm: 'aes-256', secretKey });
      return { label, algorithm: 'aes-256' };
    } catch (e) {
      throw p11Error(e, `generating secret key "${label}"`);
    }
  }

  /** A token AES-256 key: sensitive, never extractable, for AES-GCM encryption and decryption only. */
  #secretTemplate(label: string): pkcs11js.Template {
    return [
      { type: CKA_CLASS, value: CKO_SECRET_KEY },
      { type: CKA_KEY_TYPE, value: CKK_AES },
      { type: CKA_VALUE_LEN, value: 32 },
      { type: CKA_TOKEN, value: true },
      { type: CKA_PRIVATE, value: true },
      { type: CKA_SENSITIVE, value: true },
      { type: CKA_EXTRACTABLE, value: false },
      { type: CKA_ENCRYPT, value: true },
      { type: CKA_DECRYPT, value: true },
      { type: CKA_WRAP, value: false },
      { type: CKA_UNWRAP, value: false },
      { type: CKA_DERIVE, value: false },
      { type: CKA_LABEL, value: label },
      { type: CKA_ID, value: randomBytes(16) },
    ];
  }

  async getPublicKey(label: string): Promise<KeyObject> {
    try {
      return this.#withKey(label, (entry) => {
        if (entry.algorithm === 'aes-256') throw new KeyStoreError(ErrorCodes.UNSUPPORTED, `key "${label}" is a secret key: it has no public key`);
        return this.#publicKeyObject(entry, label);
      });
    } catch (e) {
      throw p11Error(e, `reading the public key "${label}"`);
    }
  }

  async info(label: string): Promise<KeyInfo | undefined> {
    assertLabel(label);
    try {
      const entry = this.#classify(label);
      if (entry === undefined) {
        this.#cache.delete(label);
        return undefined;
      }
      this.#cache.set(label, entry);
      return { label, algorithm: entry.algorithm };
    } catch (e) {
      throw p11Error(e, `looking up key "${label}"`);
    }
  }

  async list(): Promise<KeyInfo[]> {
    const labels = new Set<string>();
    try {
      for (const cls of [CKO_PRIVATE_KEY, CKO_PUBLIC_KEY, CKO_SECRET_KEY]) {
        for (const handle of this.#find([{ type: CKA_CLASS, value: cls }])) {
          let label: string;
          try {
            label = this.#attr(handle, CKA_LABEL).toString('utf8');
          } catch {
            continue;
          }
          if (LABEL_PATTERN.test(label)) labels.add(label);
        }
      }
    } catch (e) {
      throw p11Error(e, 'listing keys');
    }
    const out: KeyInfo[] = [];
    for (const label of [...labels].sort()) {
      const info = await this.info(label).catch(() => undefined);
      if (info !== undefined) out.push(info);
    }
    return out;
  }

  async deleteKey(label: string): Promise<void> {
    assertLabel(label);
    try {
      this.#cache.delete(label);
      const objects = this.#keyObjects(label);
      if (objects.length === 0) throw new KeyStoreError(ErrorCodes.KEY_NOT_FOUND, `no key "${label}" in ${this.description}`);
      for (const { handle } of objects) this.#p11.C_DestroyObject(this.#s, handle);
    } catch (e) {
      throw p11Error(e, `deleting key "${label}"`);
    }
  }

  async sign(label: string, data: Uint8Array, options: SignOptions = {}): Promise<Buffer> {
    try {
      return this.#withKey(label, (entry) => {
        const key = this.#private(entry, label, 'sign');
        if (entry.algorithm === 'rsa-2048' && options.rsaPadding !== 'pss') {
          this.#p11.C_SignInit(this.#s, { mechanism: CKM_SHA256_RSA_PKCS }, key);
          return Buffer.from(this.#p11.C_Sign(this.#s, toBuffer(data), Buffer.alloc(RSA_BYTES * 2)));
        }
        return this.#signDigest(entry.algorithm, key, createHash('sha256').update(data).digest(), options);
      });
    } catch (e) {
      throw p11Error(e, `signing with key "${label}"`);
    }
  }

  async signStream(label: string, chunks: AsyncIterable<Uint8Array>, options: SignOptions = {}): Promise<Buffer> {
    try {
      // the key is looked up first: a wrong label or a secret key fails before the input is read
      this.#withKey(label, (entry) => this.#private(entry, label, 'sign'));
    } catch (e) {
      throw p11Error(e, `signing with key "${label}"`);
    }
    const hash = createHash('sha256');
    for await (const c of chunks) hash.update(c);
    const digest = hash.digest();
    try {
      return this.#withKey(label, (entry) => this.#signDigest(entry.algorithm, this.#private(entry, label, 'sign'), digest, options));
    } catch (e) {
      throw p11Error(e, `signing with key "${label}"`);
    }
  }

  /**
   * Signs a SHA-256 digest in the token: EC with CKM_ECDSA (raw r‖s, DER unless P1363 is asked for); RSA-PSS with
   * CKM_RSA_PKCS_PSS (SHA-256, MGF1-SHA-256); RSA PKCS#1 v1.5 with CKM_RSA_PKCS over the DigestInfo — the same
   * signature CKM_SHA256_RSA_PKCS gives over the data.
   */
  #signDigest(algorithm: KeyAlgorithm, key: Handle, digest: Buffer, options: SignOptions): Buffer {
    const p11 = this.#p11;
    const s = this.#s;
    if (algorithm === 'ec-p256') {
      p11.C_SignInit(s, { mechanism: CKM_ECDSA }, key);
      const raw = p11.C_Sign(s, digest, Buffer.alloc(132));
      if (raw.length !== 64) throw new KeyStoreError(ErrorCodes.KEYSTORE, `PKCS#11 token returned a ${raw.length}-byte P-256 signature`);
      return (options.dsaEncoding ?? 'der') === 'der' ? p1363ToDer(raw) : Buffer.from(raw);
    }
    if (options.rsaPadding === 'pss') {
      const parameter: pkcs11js.RsaPSS = { type: CK_PARAMS_RSA_PSS, hashAlg: CKM_SHA256, mgf: CKG_MGF1_SHA256, saltLen: pssSaltLength(options) };
      p11.C_SignInit(s, { mechanism: CKM_RSA_PKCS_PSS, parameter }, key);
      return Buffer.from(p11.C_Sign(s, digest, Buffer.alloc(RSA_BYTES * 2)));
    }
    p11.C_SignInit(s, { mechanism: CKM_RSA_PKCS }, key);
    return Buffer.from(p11.C_Sign(s, Buffer.concat([SHA256_DIGEST_INFO, digest]), Buffer.alloc(RSA_BYTES * 2)));
  }

  async deriveKey(privateLabel: string, peerPublicKey: KeyObject, newLabel: string, context: Uint8Array): Promise<KeyInfo> {
    assertLabel(newLabel);
    assertP256Public(peerPublicKey);
    const publicData = uncompressedPoint(peerPublicKey);
    try {
      return this.#withKey(privateLabel, (entry) => {
        if (entry.algorithm !== 'ec-p256') {
          throw new KeyStoreError(ErrorCodes.UNSUPPORTED, `key "${privateLabel}" is not a P-256 key pair: it cannot do ECDH`);
        }
        const key = this.#private(entry, privateLabel, 'do ECDH');
        this.#refuseExisting(newLabel);
        const p11 = this.#p11;
        const s = this.#s;
        // Z: the x-coordinate of the shared point, as a session-only, sensitive AES key (it only feeds the KDF)
        const ecdh: pkcs11js.ECDH1 = { type: CK_PARAMS_EC_DH, kdf: CKD_NULL, publicData };
        const z = p11.C_DeriveKey(s, { mechanism: CKM_ECDH1_DERIVE, parameter: ecdh }, key, [
          { type: CKA_CLASS, value: CKO_SECRET_KEY },
          { type: CKA_KEY_TYPE, value: CKK_AES },
          { type: CKA_VALUE_LEN, value: 32 },
          { type: CKA_TOKEN, value: false },
          { type: CKA_SENSITIVE, value: true },
          { type: CKA_EXTRACTABLE, value: false },
          { type: CKA_DERIVE, value: true },
        ]);
        try {
          // K = AES-256-CBC(Z, iv 0, kdfInput(context)): kdf.ts, computed inside the token
          const cbc: pkcs11js.AesCBC = { type: CK_PARAMS_AES_CBC, iv: Buffer.alloc(16), data: kdfInput(context) };
          const secretKey = p11.C_DeriveKey(s, { mechanism: CKM_AES_CBC_ENCRYPT_DATA, parameter: cbc }, z, this.#secretTemplate(newLabel));
          this.#cache.set(newLabel, { algorithm: 'aes-256', secretKey });
        } finally {
          try {
            p11.C_DestroyObject(s, z);
          } catch {
            // a session object: it goes with the session anyway
          }
        }
        return { label: newLabel, algorithm: 'aes-256' as const };
      });
    } catch (e) {
      throw p11Error(e, `deriving key "${newLabel}" from "${privateLabel}"`);
    }
  }

  async wrap(label: string, plaintext: Uint8Array, aad: Uint8Array = new Uint8Array()): Promise<Buffer> {
    try {
      return this.#withKey(label, (entry) => {
        const p11 = this.#p11;
        const s = this.#s;
        if (entry.algorithm === 'aes-256' && entry.secretKey !== undefined) {
          const nonce = randomBytes(GCM_NONCE_BYTES);
          p11.C_EncryptInit(s, gcm(nonce, aad), entry.secretKey);
          // SoftHSM refuses C_Encrypt of nothing (CKR_ARGUMENTS_BAD): the tag alone comes from C_EncryptFinal
          const body =
            plaintext.length === 0
              ? p11.C_EncryptFinal(s, Buffer.alloc(GCM_TAG_BYTES + 16))
              : p11.C_Encrypt(s, toBuffer(plaintext), Buffer.alloc(plaintext.length + GCM_TAG_BYTES + 16));
          return Buffer.concat([nonce, body]);
        }
        if (entry.algorithm === 'rsa-2048') {
          if (aad.length > 0) throw new KeyStoreError(ErrorCodes.UNSUPPORTED, 'RSA-OAEP wrapping takes no associated data');
          if (plaintext.length > RSA_OAEP_MAX) throw new KeyStoreError(ErrorCodes.UNSUPPORTED, `RSA-OAEP wraps at most ${RSA_OAEP_MAX} bytes, got ${plaintext.length}`);
          // a public-key operation: done on the host with the token's public key, exactly as the software store
          // does (SoftHSM's C_Encrypt also refuses an empty plaintext, which OAEP allows)
          const publicKey = this.#publicKeyObject(entry, label);
          return publicEncrypt({ key: publicKey, padding: cryptoConstants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha1' }, plaintext);
        }
        throw new KeyStoreError(ErrorCodes.UNSUPPORTED, `key "${label}" (${entry.algorithm}) cannot wrap: use an aes-256 or rsa-2048 key`);
      });
    } catch (e) {
      throw p11Error(e, `wrapping with key "${label}"`);
    }
  }

  async unwrap(label: string, wrapped: Uint8Array, aad: Uint8Array = new Uint8Array()): Promise<Buffer> {
    const buf = toBuffer(wrapped);
    try {
      return this.#withKey(label, (entry) => {
        const p11 = this.#p11;
        const s = this.#s;
        if (entry.algorithm === 'aes-256' && entry.secretKey !== undefined) {
          if (buf.length < GCM_NONCE_BYTES + GCM_TAG_BYTES) throw unwrapFailed();
          p11.C_DecryptInit(s, gcm(buf.subarray(0, GCM_NONCE_BYTES), aad), entry.secretKey);
          return this.#decryptOrFail(buf.subarray(GCM_NONCE_BYTES), buf.length);
        }
        if (entry.algorithm === 'rsa-2048') {
          if (aad.length > 0) throw new KeyStoreError(ErrorCodes.UNSUPPORTED, 'RSA-OAEP wrapping takes no associated data');
          const key = this.#private(entry, label, 'unwrap');
          p11.C_DecryptInit(s, { mechanism: CKM_RSA_PKCS_OAEP, parameter: OAEP_PARAMS }, key);
          return this.#decryptOrFail(buf, RSA_BYTES);
        }
        throw new KeyStoreError(ErrorCodes.UNSUPPORTED, `key "${label}" (${entry.algorithm}) cannot unwrap: use an aes-256 or rsa-2048 key`);
      });
    } catch (e) {
      throw p11Error(e, `unwrapping with key "${label}"`);
    }
  }

  async close(): Promise<void> {
    const session = this.#session;
    this.#session = undefined;
    this.#cache.clear();
    if (session === undefined) return;
    try {
      // the session only: C_Logout would log out every other store on this token, and C_Finalize the engine
      this.#p11.C_CloseSession(session);
    } catch {
      // already gone (token removed): nothing left to release
    }
  }
}

function gcm(nonce: Buffer, aad: Uint8Array): pkcs11js.Mechanism {
  const parameter: pkcs11js.GcmParams = { type: CK_PARAMS_AES_GCM, iv: nonce, ivBits: GCM_NONCE_BYTES * 8, aad: toBuffer(aad), tagBits: GCM_TAG_BYTES * 8 };
  return { mechanism: CKM_AES_GCM, parameter };
}

function findSlot(loaded: LoadedModule, token: string): Handle {
  const { p11, path } = loaded;
  const found: Handle[] = [];
  const seen: string[] = [];
  try {
    for (const slot of p11.C_GetSlotList(true)) {
      const info = p11.C_GetTokenInfo(slot);
      if ((info.flags & CKF_TOKEN_INITIALIZED) === 0) continue;
      const label = tokenLabel(info.label);
      seen.push(label);
      if (label === token) found.push(slot);
    }
  } catch (e) {
    throw p11Error(e, `listing the tokens of ${path}`);
  }
  const [slot, ...more] = found;
  if (slot === undefined) {
    const known = seen.length > 0 ? `; tokens present: ${seen.map((l) => `"${l}"`).join(', ')}` : '; no initialized token present';
    throw new KeyStoreError(ErrorCodes.KEYSTORE, `no PKCS#11 token labelled "${token}" in ${path}${known}`);
  }
  if (more.length > 0) throw new KeyStoreError(ErrorCodes.KEYSTORE, `several PKCS#11 tokens are labelled "${token}" in ${path}: relabel one`);
  return slot;
}

function login(loaded: LoadedModule, slot: Handle, session: Handle, pin: string, description: string): void {
  const authFailed = (): KeyStoreError => new KeyStoreError(ErrorCodes.KEYSTORE_AUTH, `key store authentication failed for ${description}`);
  try {
    loaded.p11.C_Login(session, CKU_USER, pin);
    rememberPin(loaded, slot, pin);
  } catch (e) {
    const ckr = ckrName(e);
    if (ckr === 'CKR_USER_ALREADY_LOGGED_IN') {
      if (!checkLoggedInPin(loaded, slot, pin)) throw authFailed();
      return;
    }
    if (ckr !== undefined && BAD_PIN.has(ckr)) throw authFailed();
    if (ckr === 'CKR_PIN_LOCKED') throw new KeyStoreError(ErrorCodes.KEYSTORE_AUTH, `key store authentication failed for ${description}: the user PIN is locked`);
    throw p11Error(e, `login to ${description}`);
  }
}
