/**
 * The factory CA and device provisioning, through the library: certificate profiles read back by openssl,
 * one-time enrolment tokens (replayed, forged, wrong serial, expired), proof of possession, install-cert,
 * self-signed devices, revocation.
 */
import { Pkcs10CertificateRequest, X509Certificate } from '@peculiar/x509';
import { execFileSync } from 'node:child_process';
import { createHash, generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ENROLMENT_REFUSED_MESSAGE, EnrolmentError, ErrorCodes, KeyframeError } from '../../src/errors.js';
import type { KeyStore } from '../../src/keystore/types.js';
import { SoftwareKeyStore } from '../../src/keystore/software.js';
import { initCa, issueAllCrls, issueDeviceCertificate, issueEnrolmentToken, revoke } from '../../src/pki/ca.js';
import { CaStore } from '../../src/pki/ca-store.js';
import { createCsr } from '../../src/pki/csr.js';
import { deviceCsr, initDevice, installCertificate, openDevice, provisionDevice, selfSignDevice } from '../../src/pki/device.js';
import { formatToken } from '../../src/pki/enrol.js';
import { EKU_VIDEO_SIGNING } from '../../src/pki/oids.js';
import { names } from '../../src/pki/profile.js';
import { certsToPem, parseCrls } from '../../src/pki/pem.js';
import { verifyCertificate } from '../../src/pki/verify.js';
import { findPlaintextPrivateKeys } from '../helpers/no-plaintext-keys.js';
import { listFiles } from '../helpers/cli.js';

const PIN_ENV = 'KF_TEST_PROVISIONING_PIN';
let work: string;
let caDir: string;
let ca: CaStore;
let caStore: KeyStore;

function openssl(args: string[]): { code: number; out: string } {
  try {
    return { code: 0, out: execFileSync('openssl', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }) };
  } catch (e) {
    const err = e as { status?: number; stdout?: string; stderr?: string };
    return { code: err.status ?? 1, out: `${err.stdout ?? ''}${err.stderr ?? ''}` };
  }
}

function spec(dir: string): string {
  return `file:${dir};pin-env=${PIN_ENV}`;
}

async function refusal(p: Promise<unknown>): Promise<EnrolmentError> {
  const e = await p.then(
    () => undefined,
    (err: unknown) => err,
  );
  expect(e).toBeInstanceOf(EnrolmentError);
  const err = e as EnrolmentError;
  expect(err.code).toBe(ErrorCodes.ENROL_REFUSED);
  expect(err.message).toBe(ENROLMENT_REFUSED_MESSAGE);
  return err;
}

async function csrWithToken(serial: string, token: string): Promise<{ store: KeyStore; csr: Pkcs10CertificateRequest }> {
  const dir = mkdtempSync(join(work, 'dev-'));
  const store = await SoftwareKeyStore.open(dir, 'device-passphrase', { create: true, scrypt: { N: 1024, r: 8, p: 1 } });
  await store.generateKeyPair('device', 'ec-p256');
  const csr = await createCsr(store, 'device', { subject: names.device('keyframe', serial), challengePassword: token });
  return { store, csr };
}

function issuedCount(): number {
  return readdirSync(join(caDir, 'certs')).length;
}

beforeAll(async () => {
  process.env[PIN_ENV] = 'correct horse battery staple';
  work = mkdtempSync(join(tmpdir(), 'kf-prov-'));
  caDir = join(work, 'ca');
  await initCa({ dir: caDir, keystore: spec(join(caDir, 'keys')), org: 'Acme Cameras' });
  ca = await CaStore.open(caDir);
  caStore = await ca.openKeyStore();
});

afterAll(async () => {
  await caStore.close();
  rmSync(work, { recursive: true, force: true });
});

describe('ca init', () => {
  it('writes a manufacturer root (pathLen 1), a factory CA (pathLen 0) under it, and a separate operator CA', () => {
    const text = (name: string): string => openssl(['x509', '-in', join(caDir, `${name}.pem`), '-noout', '-text']).out;
    expect(text('root')).toMatch(/CA:TRUE, pathlen:1/);
    expect(text('root')).toMatch(/Certificate Sign, CRL Sign/);
    expect(text('factory')).toMatch(/CA:TRUE, pathlen:0/);
    expect(text('operator')).toMatch(/CA:TRUE, pathlen:0/);
    const root = new X509Certificate(readFileSync(join(caDir, 'root.pem'), 'utf8'));
    const factory = new X509Certificate(readFileSync(join(caDir, 'factory.pem'), 'utf8'));
    const operator = new X509Certificate(readFileSync(join(caDir, 'operator.pem'), 'utf8'));
    expect(factory.issuer).toBe(root.subject);
    expect(operator.issuer).toBe(operator.subject);
    expect(operator.subject).not.toBe(root.subject);
    // openssl agrees: the factory CA chains to the root, the operator CA does not
    expect(openssl(['verify', '-CAfile', join(caDir, 'root.pem'), join(caDir, 'factory.pem')]).code).toBe(0);
    expect(openssl(['verify', '-CAfile', join(caDir, 'root.pem'), join(caDir, 'operator.pem')]).code).not.toBe(0);
  });

  it('refuses an existing directory and leaves it untouched', async () => {
    const before = readFileSync(join(caDir, 'root.pem'));
    await expect(initCa({ dir: caDir, keystore: spec(join(caDir, 'keys')) })).rejects.toMatchObject({ code: ErrorCodes.EXISTS });
    expect(readFileSync(join(caDir, 'root.pem')).equals(before)).toBe(true);
  });

  it('leaves nothing behind when the key store passphrase is missing', async () => {
    const dir = join(work, 'ca-nopin');
    await expect(initCa({ dir, keystore: `file:${join(dir, 'keys')};pin-env=KF_TEST_UNSET_PIN` })).rejects.toMatchObject({ code: ErrorCodes.KEYSTORE_AUTH });
    expect(readdirSync(work).filter((n) => n.includes('ca-nopin'))).toEqual([]);
  });
});

describe('device provision', () => {
  let cert: X509Certificate;
  let devDir: string;

  beforeAll(async () => {
    devDir = join(work, 'cam1');
    const r = await provisionDevice({ ca, caKeyStore: caStore, dir: devDir, serial: 'SN-0001', keystore: spec(join(devDir, 'keys')) });
    cert = r.certificate;
  });

  it('certifies the key generated in the device key store, with the device profile', async () => {
    const device = await openDevice(devDir);
    try {
      const pub = (await device.store.getPublicKey('device')).export({ format: 'der', type: 'spki' });
      expect(Buffer.from(cert.publicKey.rawData).equals(pub)).toBe(true);
    } finally {
      await device.close();
    }
    const text = openssl(['x509', '-in', join(devDir, 'device.pem'), '-noout', '-text', '-nameopt', 'RFC2253']).out;
    expect(text).toMatch(/Subject:.*serialNumber=SN-0001/);
    expect(text).toMatch(/CA:FALSE/);
    expect(text).toMatch(/Digital Signature, Key Agreement/);
    expect(text).toMatch(/TLS Web Server Authentication, TLS Web Client Authentication, 2\.25\.\d+\.1/);
    expect(text).toContain(EKU_VIDEO_SIGNING);
    const chain = readFileSync(join(devDir, 'chain.pem'), 'utf8');
    expect(chain).toBe(certsToPem([cert, ca.certs.factory]));
    expect(openssl(['verify', '-CAfile', join(caDir, 'root.pem'), '-untrusted', join(devDir, 'chain.pem'), join(devDir, 'device.pem')]).code).toBe(0);
  });

  it('writes no unencrypted private key anywhere', () => {
    expect(findPlaintextPrivateKeys([...listFiles(caDir), ...listFiles(devDir)])).toEqual([]);
  });

  it('refuses an existing device directory without spending anything', async () => {
    const before = issuedCount();
    await expect(provisionDevice({ ca, caKeyStore: caStore, dir: devDir, serial: 'SN-0001', keystore: spec(join(devDir, 'keys')) })).rejects.toMatchObject({
      code: ErrorCodes.EXISTS,
    });
    expect(issuedCount()).toBe(before);
  });
});

describe('enrolment tokens', () => {
  it('a token is spent by its first use: a replay is refused', async () => {
    const token = await issueEnrolmentToken(ca, 'SN-T1');
    const a = await csrWithToken('SN-T1', token);
    await issueDeviceCertificate(ca, caStore, a.csr);
    const before = issuedCount();
    const b = await csrWithToken('SN-T1', token);
    const err = await refusal(issueDeviceCertificate(ca, caStore, b.csr));
    expect(err.auditReason).toMatch(/reused/);
    expect(issuedCount()).toBe(before);
  });

  it('a forged token (unknown id, or known id with a wrong secret, or garbage) is refused', async () => {
    const real = await issueEnrolmentToken(ca, 'SN-T2');
    const [, id = ''] = real.split('.');
    const forgedSecret = formatToken(Buffer.from(id, 'base64url'), Buffer.alloc(32, 7));
    const unknownId = formatToken(Buffer.alloc(12, 1), Buffer.alloc(32, 2));
    const before = issuedCount();
    for (const token of [forgedSecret, unknownId, 'kfe1.garbage', '']) {
      const { csr } = await csrWithToken('SN-T2', token);
      const err = await refusal(issueDeviceCertificate(ca, caStore, csr, { token }));
      expect(err.auditReason).toMatch(/forged|malformed/);
    }
    expect(issuedCount()).toBe(before);
    // the real token still works after the forgeries
    const { csr } = await csrWithToken('SN-T2', real);
    await expect(issueDeviceCertificate(ca, caStore, csr)).resolves.toBeInstanceOf(X509Certificate);
  });

  it('a token bound to another serial is refused, and spent', async () => {
    const token = await issueEnrolmentToken(ca, 'SN-T3');
    const before = issuedCount();
    const wrong = await csrWithToken('SN-OTHER', token);
    const err = await refusal(issueDeviceCertificate(ca, caStore, wrong.csr));
    expect(err.auditReason).toMatch(/is for serial SN-T3/);
    const right = await csrWithToken('SN-T3', token);
    await refusal(issueDeviceCertificate(ca, caStore, right.csr));
    expect(issuedCount()).toBe(before);
  });

  it('an expired token is refused', async () => {
    const token = await issueEnrolmentToken(ca, 'SN-T4', { ttlMs: 1000, now: new Date(Date.now() - 60_000) });
    const { csr } = await csrWithToken('SN-T4', token);
    const err = await refusal(issueDeviceCertificate(ca, caStore, csr));
    expect(err.auditReason).toMatch(/expired/);
  });

  it('the audit log records why, but never a token secret', async () => {
    const audit = readFileSync(join(caDir, 'audit.log'), 'utf8');
    expect(audit).toMatch(/"event":"enrol-refused","reason":"token .* reused/);
    const db = JSON.parse(readFileSync(join(caDir, 'db.json'), 'utf8')) as { tokens: { id: string }[] };
    expect(db.tokens.length).toBeGreaterThan(0);
    expect(audit).not.toMatch(/kfe1\.[A-Za-z0-9_-]{16}\.[A-Za-z0-9_-]{43}/);
  });
});

describe('proof of possession', () => {
  it('no certificate without a CSR signed by the key it certifies', async () => {
    const token = await issueEnrolmentToken(ca, 'SN-P1');
    const { csr } = await csrWithToken('SN-P1', token);
    // splice another public key into the request: its signature no longer verifies
    const other = generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ format: 'der', type: 'spki' });
    const raw = Buffer.from(csr.rawData);
    const mine = Buffer.from(csr.publicKey.rawData);
    const at = raw.indexOf(mine);
    expect(at).toBeGreaterThan(0);
    const tampered = Buffer.concat([raw.subarray(0, at), other, raw.subarray(at + mine.length)]);
    const before = issuedCount();
    const err = await refusal(issueDeviceCertificate(ca, caStore, new Pkcs10CertificateRequest(tampered)));
    expect(err.auditReason).toMatch(/signature/);
    expect(issuedCount()).toBe(before);
    // the token was not spent by a request that failed proof of possession
    await expect(issueDeviceCertificate(ca, caStore, csr)).resolves.toBeInstanceOf(X509Certificate);
  });
});

describe('CSR, install-cert and self-signed devices', () => {
  it('an external-CA flow: csr with token → ca issue → install-cert; a foreign certificate is refused', async () => {
    const dir = join(work, 'cam-ext');
    await initDevice({ dir, serial: 'SN-E1', keystore: spec(join(dir, 'keys')) });
    const device = await openDevice(dir);
    try {
      const token = await issueEnrolmentToken(ca, 'SN-E1');
      const csr = await deviceCsr(device, { challengePassword: token });
      const cert = await issueDeviceCertificate(ca, caStore, csr);
      // a certificate for another key is refused, and nothing is written
      const foreign = await provisionDevice({ ca, caKeyStore: caStore, dir: join(work, 'cam-foreign'), serial: 'SN-E2', keystore: spec(join(work, 'cam-foreign', 'keys')) });
      await expect(installCertificate(device, [foreign.certificate])).rejects.toMatchObject({ code: ErrorCodes.CERT_MISMATCH });
      expect(readdirSync(dir).sort()).toEqual(['device.json', 'keys']);
      await installCertificate(device, [cert, ca.certs.factory]);
      expect(readFileSync(join(dir, 'chain.pem'), 'utf8')).toBe(certsToPem([cert, ca.certs.factory]));
    } finally {
      await device.close();
    }
  });

  it('a self-signed device is "identity not established" unless its fingerprint is pinned', async () => {
    const dir = join(work, 'cam-self');
    await initDevice({ dir, serial: 'SN-S1', keystore: spec(join(dir, 'keys')) });
    const device = await openDevice(dir);
    try {
      const cert = await selfSignDevice(device);
      const unpinned = await verifyCertificate(cert, { roots: [ca.certs.root] });
      expect(unpinned.valid).toBe(false);
      expect(unpinned.reason).toBe('self-signed: identity not established');
      const fp = createHash('sha256').update(new Uint8Array(cert.rawData)).digest('hex');
      const pinned = await verifyCertificate(cert, { roots: [ca.certs.root], pins: [fp] });
      expect(pinned.valid).toBe(true);
      // openssl gives the same verdict without a pin
      expect(openssl(['verify', '-CAfile', join(caDir, 'root.pem'), join(dir, 'device.pem')]).code).not.toBe(0);
    } finally {
      await device.close();
    }
  });
});

describe('revocation', () => {
  it('a revoked device fails verification with the CRL, here and in openssl -crl_check', async () => {
    const dir = join(work, 'cam-rev');
    const r = await provisionDevice({ ca, caKeyStore: caStore, dir, serial: 'SN-R1', keystore: spec(join(dir, 'keys')) });
    const crlPath = join(work, 'crl-before.pem');
    writeFileSync(crlPath, await issueAllCrls(ca, caStore));
    const ok = await verifyCertificate(r.certificate, { roots: [ca.certs.root], intermediates: r.chain, crls: parseCrls(readFileSync(crlPath), crlPath) });
    expect(ok.valid).toBe(true);
    const verifyArgs = ['verify', '-CAfile', join(caDir, 'root.pem'), '-untrusted', join(dir, 'chain.pem'), '-crl_check', '-CRLfile', crlPath, join(dir, 'device.pem')];
    expect(openssl(verifyArgs).code).toBe(0);

    const revoked = await revoke(ca, { deviceSerial: 'SN-R1', reason: 'keyCompromise' });
    expect(revoked.map((c) => c.serialNumber)).toEqual([r.certificate.serialNumber]);
    writeFileSync(crlPath, await issueAllCrls(ca, caStore));
    const bad = await verifyCertificate(r.certificate, { roots: [ca.certs.root], intermediates: r.chain, crls: parseCrls(readFileSync(crlPath), crlPath) });
    expect(bad.valid).toBe(false);
    expect(bad.reason).toMatch(/revoked/);
    const o = openssl(verifyArgs);
    expect(o.code).not.toBe(0);
    expect(o.out).toMatch(/certificate revoked/);
    // revoking again is an error, not a silent success
    await expect(revoke(ca, { deviceSerial: 'SN-R1' })).rejects.toBeInstanceOf(KeyframeError);
    await expect(revoke(ca, { deviceSerial: 'SN-NONE' })).rejects.toMatchObject({ code: ErrorCodes.NOT_FOUND });
  });
});
