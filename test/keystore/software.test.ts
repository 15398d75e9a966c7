/**
 * The software key store at rest: what is on disk, who may read it, and how it fails when it is tampered with.
 */
import { createPrivateKey, diffieHellman, generateKeyPairSync, sign as cryptoSign, verify as cryptoVerify } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ErrorCodes } from '../../src/errors.js';
import { deriveFromSharedSecret } from '../../src/keystore/kdf.js';
import { SoftwareKeyStore } from '../../src/keystore/software.js';

const PASSPHRASE = 'correct horse battery';
const SCRYPT_FAST = { N: 1024, r: 8, p: 1 };

let tmp: string;
let dir: string;

beforeEach(() => {
  tmp = mkdtempSync(join(tmpdir(), 'kf-sw-'));
  dir = join(tmp, 'keystore');
});
afterEach(() => {
  rmSync(tmp, { recursive: true, force: true });
});

function open(passphrase = PASSPHRASE): Promise<SoftwareKeyStore> {
  return SoftwareKeyStore.open(dir, passphrase, { create: true, scrypt: SCRYPT_FAST });
}

async function rejection(promise: Promise<unknown>): Promise<Error & { code?: string }> {
  return promise.then(
    () => {
      throw new Error('expected a rejection');
    },
    (e: unknown) => e as Error & { code?: string },
  );
}

/** Every string anywhere in a JSON value. */
function strings(value: unknown): string[] {
  if (typeof value === 'string') return [value];
  if (Array.isArray(value)) return value.flatMap(strings);
  if (typeof value === 'object' && value !== null) return Object.values(value).flatMap(strings);
  return [];
}

function parsesAsPrivateKey(bytes: Buffer): boolean {
  for (const attempt of [
    () => createPrivateKey({ key: bytes, format: 'der', type: 'pkcs8' }),
    () => createPrivateKey({ key: bytes, format: 'der', type: 'sec1' }),
    () => createPrivateKey({ key: bytes, format: 'der', type: 'pkcs1' }),
    () => createPrivateKey(bytes.toString('utf8')),
  ]) {
    try {
      attempt();
      return true;
    } catch {
      // not a key: good
    }
  }
  return false;
}

describe('software key store on disk', () => {
  it('keeps the directory 0700 and every file 0600', async () => {
    const store = await open();
    await store.generateKeyPair('dev', 'ec-p256');
    await store.generateKeyPair('rsa', 'rsa-2048');
    await store.generateSecretKey('sek');
    await store.close();
    expect(statSync(dir).mode & 0o777).toBe(0o700);
    const files = readdirSync(dir).sort();
    expect(files).toEqual(['dev.key.json', 'keystore.json', 'rsa.key.json', 'sek.key.json']);
    for (const name of files) expect(statSync(join(dir, name)).mode & 0o777, name).toBe(0o600);
  });

  it('stores no private or secret key in the clear', async () => {
    const store = await open();
    const pub = await store.generateKeyPair('dev', 'ec-p256');
    await store.generateKeyPair('rsa', 'rsa-2048');
    await store.generateSecretKey('sek');
    // a derived key is one whose value the test knows: it must not be on disk in any encoding
    const peer = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    await store.deriveKey('dev', peer.publicKey, 'derived', Buffer.from('ctx'));
    const k = deriveFromSharedSecret(diffieHellman({ privateKey: peer.privateKey, publicKey: pub }), Buffer.from('ctx'));
    await store.close();

    for (const name of readdirSync(dir)) {
      const bytes = readFileSync(join(dir, name));
      const text = bytes.toString('utf8');
      expect(text, name).not.toContain('PRIVATE KEY');
      expect(parsesAsPrivateKey(bytes), name).toBe(false);
      for (const encoding of ['hex', 'base64', 'base64url'] as const) expect(text).not.toContain(k.toString(encoding));
      for (const field of strings(JSON.parse(text))) {
        expect(parsesAsPrivateKey(Buffer.from(field, 'base64')), `${name}: ${field.slice(0, 20)}…`).toBe(false);
        expect(field).not.toContain('PRIVATE KEY');
      }
    }
  });

  it('never creates a store as a side effect of opening one: a missing directory or keystore.json is named, nothing is written', async () => {
    const missing = await rejection(SoftwareKeyStore.open(dir, PASSPHRASE));
    expect(missing).toMatchObject({ code: ErrorCodes.NOT_FOUND, message: `key store directory not found: ${dir}` });
    expect(existsSync(dir)).toBe(false);
    mkdirSync(dir, { mode: 0o700 });
    const empty = await rejection(SoftwareKeyStore.open(dir, PASSPHRASE));
    expect(empty).toMatchObject({ code: ErrorCodes.NOT_FOUND, message: `no key store in ${dir} (keystore.json is missing)` });
    expect(readdirSync(dir)).toEqual([]);
  });

  it('refuses a store other users can read or write (directory or file), naming the chmod that fixes it', async () => {
    const s = await open();
    await s.generateKeyPair('k', 'ec-p256');
    await s.close();
    chmodSync(dir, 0o755);
    expect(await rejection(open())).toMatchObject({ code: ErrorCodes.KEYSTORE, message: `key store directory ${dir} is accessible by other users (mode 0755): run chmod 700 ${dir}` });
    chmodSync(dir, 0o700);
    chmodSync(join(dir, 'keystore.json'), 0o644);
    expect(await rejection(open())).toMatchObject({ message: expect.stringContaining('chmod 600') as unknown });
    chmodSync(join(dir, 'keystore.json'), 0o600);
    chmodSync(join(dir, 'k.key.json'), 0o666);
    const reopened = await open();
    expect(await rejection(reopened.sign('k', Buffer.from('x')))).toMatchObject({ code: ErrorCodes.KEYSTORE, message: expect.stringContaining('k.key.json is accessible by other users (mode 0666)') as unknown });
    await reopened.close();
  });

  it('refuses a wrong passphrase with one generic KF_ERR_KEYSTORE_AUTH', async () => {
    const store = await open();
    await store.generateKeyPair('dev', 'ec-p256');
    await store.close();
    const err = await rejection(open('wrong passphrase!'));
    expect(err).toMatchObject({ name: 'KeyStoreError', code: ErrorCodes.KEYSTORE_AUTH });
    expect(err.message).toBe(`key store authentication failed for ${dir}`);
    expect(err.message).not.toContain('wrong passphrase!');
  });

  it('refuses to create a store with a short passphrase, and creates nothing', async () => {
    const err = await rejection(open('Xq7!zz'));
    expect(err).toMatchObject({ code: ErrorCodes.KEYSTORE_AUTH });
    expect(err.message).toContain('at least 8 characters');
    expect(err.message).not.toContain('Xq7!zz');
    expect(existsSync(dir)).toBe(false);
  });

  it('will not open a key file renamed to another label', async () => {
    const store = await open();
    await store.generateKeyPair('dev', 'ec-p256');
    await store.generateKeyPair('other', 'ec-p256');
    await store.close();
    // swap the files: each names the other's label inside
    renameSync(join(dir, 'dev.key.json'), join(dir, 'tmp.key.json'));
    renameSync(join(dir, 'other.key.json'), join(dir, 'dev.key.json'));
    renameSync(join(dir, 'tmp.key.json'), join(dir, 'other.key.json'));
    let reopened = await open();
    expect(await rejection(reopened.sign('dev', Buffer.from('x')))).toMatchObject({ code: ErrorCodes.KEYSTORE });
    expect(await rejection(reopened.info('other'))).toMatchObject({ code: ErrorCodes.KEYSTORE });
    await reopened.close();
    // and rewriting the label inside too does not help: the label is bound into the seal
    const file = JSON.parse(readFileSync(join(dir, 'dev.key.json'), 'utf8')) as { label: string };
    file.label = 'dev';
    writeFileSync(join(dir, 'dev.key.json'), JSON.stringify(file), { mode: 0o600 });
    reopened = await open();
    const err = await rejection(reopened.sign('dev', Buffer.from('x')));
    expect(err).toMatchObject({ name: 'KeyStoreError', code: ErrorCodes.KEYSTORE });
    expect(err.message).toContain('altered or belongs to another store');
    await reopened.close();
  });

  it('reports truncated or garbled key files as KF_ERR_KEYSTORE without crashing', async () => {
    const store = await open();
    await store.generateKeyPair('trunc', 'ec-p256');
    await store.generateKeyPair('garbled', 'ec-p256');
    await store.generateSecretKey('flipped');
    await store.generateKeyPair('fine', 'ec-p256');
    await store.close();
    const path = (label: string): string => join(dir, `${label}.key.json`);
    const text = readFileSync(path('trunc'), 'utf8');
    writeFileSync(path('trunc'), text.slice(0, text.length / 2));
    writeFileSync(path('garbled'), Buffer.from([0xff, 0x00, 0x7b, 0x22]));
    const flipped = JSON.parse(readFileSync(path('flipped'), 'utf8')) as { ciphertext: string };
    const ct = Buffer.from(flipped.ciphertext, 'base64');
    ct[0] = (ct[0] ?? 0) ^ 1;
    flipped.ciphertext = ct.toString('base64');
    writeFileSync(path('flipped'), JSON.stringify(flipped));

    const reopened = await open();
    for (const label of ['trunc', 'garbled']) {
      expect(await rejection(reopened.info(label))).toMatchObject({ name: 'KeyStoreError', code: ErrorCodes.KEYSTORE });
      expect(await rejection(reopened.sign(label, Buffer.from('x')))).toMatchObject({ name: 'KeyStoreError', code: ErrorCodes.KEYSTORE });
    }
    expect(await rejection(reopened.wrap('flipped', Buffer.from('x')))).toMatchObject({ name: 'KeyStoreError', code: ErrorCodes.KEYSTORE });
    // the damaged keys are left out of the list; the good one still works
    expect(await reopened.list()).toEqual([
      { label: 'fine', algorithm: 'ec-p256' },
      { label: 'flipped', algorithm: 'aes-256' },
    ]);
    const pub = await reopened.getPublicKey('fine');
    expect(cryptoVerify('sha256', Buffer.from('x'), pub, await reopened.sign('fine', Buffer.from('x')))).toBe(true);
    await reopened.close();
  });

  it('reports a damaged keystore.json as KF_ERR_INPUT', async () => {
    await (await open()).close();
    writeFileSync(join(dir, 'keystore.json'), '{"version": 1, "kdf": ');
    expect(await rejection(open())).toMatchObject({ code: ErrorCodes.INPUT });
    writeFileSync(join(dir, 'keystore.json'), JSON.stringify({ version: 1, kdf: { name: 'scrypt', N: 2 ** 30, r: 8, p: 1, salt: 'AAAA' } }));
    expect(await rejection(open())).toMatchObject({ code: ErrorCodes.INPUT });
  });

  it('exports a key for TLS only as an encrypted PKCS#8 with a one-time passphrase', async () => {
    const store = await open();
    const pub = await store.generateKeyPair('dev', 'ec-p256');
    await store.generateSecretKey('sek');
    const { pem, passphrase } = await store.exportForTls('dev');
    expect(pem).toContain('-----BEGIN ENCRYPTED PRIVATE KEY-----');
    expect(() => createPrivateKey(pem)).toThrow();
    const key = createPrivateKey({ key: pem, passphrase });
    expect(cryptoVerify('sha256', Buffer.from('x'), pub, cryptoSign('sha256', Buffer.from('x'), key))).toBe(true);
    expect((await store.exportForTls('dev')).passphrase).not.toBe(passphrase);
    expect(await rejection(store.exportForTls('sek'))).toMatchObject({ code: ErrorCodes.UNSUPPORTED });
    await store.close();
  });
});
