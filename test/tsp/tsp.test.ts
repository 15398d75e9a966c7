/**
 * RFC 3161 time-stamping, both ways against OpenSSL: keyframe's TSA (key in a key store, certificate from the
 * operator CA) issues tokens and replies that `openssl ts -verify` accepts; tokens and replies made by
 * `openssl ts -reply` — live, and the fixed vectors of test/vectors/tsp-openssl.json — verify in keyframe's verifier.
 * Refused, by both where both can say: altered data (message imprint mismatch), a wrong nonce, an altered token, a
 * TSA certificate whose timeStamping EKU is not critical (OpenSSL will not even sign with it), a TSA outside the
 * trusted root, a TSA whose key was revoked as compromised; and the TSA's own refusals of bad requests.
 */
import { execFile } from 'node:child_process';
import { createHash, generateKeyPairSync, sign as cryptoSign, type KeyObject } from 'node:crypto';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { issueAllCrls, revoke } from '../../src/pki/ca.js';
import { createOperatorIdentity, openOperatorIdentity, type OperatorIdentity } from '../../src/pki/operator-identity.js';
import { EKU_TIME_STAMPING, TSA_POLICY } from '../../src/pki/oids.js';
import { certsToPem, parseCertificates, parseCrls, toPem } from '../../src/pki/pem.js';
import { names, newCertificateSerial, validity } from '../../src/pki/profile.js';
import { keyStoreCrypto, keyStoreKeyPair, webPublicKey } from '../../src/pki/signer.js';
import {
  AuthorityKeyIdentifierExtension,
  BasicConstraintsExtension,
  ExtendedKeyUsageExtension,
  KeyUsageFlags,
  KeyUsagesExtension,
  SubjectKeyIdentifierExtension,
  type X509Certificate,
  X509CertificateGenerator,
} from '../../src/pki/x509.js';
import { TimeStampAuthority } from '../../src/tsp/authority.js';
import { buildTimeStampToken } from '../../src/tsp/issue.js';
import { encodeTimeStampRequest } from '../../src/tsp/request.js';
import { httpStamper, localStamper } from '../../src/tsp/stamper.js';
import { decodeTimeStampResponse, verifyTimeStampToken } from '../../src/tsp/token.js';
import { makePki, type Pki } from '../signing/_setup.js';

const HOUR = 3_600_000;

interface Vector {
  data: string;
  root: string;
  ec: { certificate: string; request: string; reply: string; genTime: string; serial: string; nonce: string; policy: string };
  rsa: { certificate: string; request: string; reply: string; genTime: string; serial: string; policy: string };
}
const vector = JSON.parse(readFileSync(join(import.meta.dirname, '..', 'vectors', 'tsp-openssl.json'), 'utf8')) as Vector;

function openssl(args: readonly string[], cwd: string): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile('openssl', [...args], { cwd }, (err, stdout, stderr) => resolve({ code: err === null ? 0 : typeof err.code === 'number' ? err.code : 1, stdout, stderr }));
  });
}

const sha256 = (data: string | Uint8Array): Buffer => createHash('sha256').update(data).digest();

let pki: Pki;
let tsaDir: string;
let tsa: OperatorIdentity;
let authority: TimeStampAuthority;
let operatorPem: string;
const DATA = 'the head of a record chain';

beforeAll(async () => {
  // the CA and the TSA made three and two hours ago, so that a TSA clock set in the past is inside their validity
  pki = await makePki('Acme Site', undefined, new Date(Date.now() - 3 * HOUR));
  tsaDir = join(pki.work, 'tsa');
  await createOperatorIdentity({ kind: 'tsa', out: tsaDir, ca: pki.ca, caKeyStore: pki.caStore, name: 'NVR-TSA', keystore: pki.spec(join(tsaDir, 'keys')), now: new Date(Date.now() - 2 * HOUR) });
  tsa = await openOperatorIdentity(tsaDir, 'tsa');
  authority = await TimeStampAuthority.create({ store: tsa.store, label: tsa.config.keyLabel, chain: tsa.chain });
  operatorPem = join(pki.caDir, 'operator.pem');
  writeFileSync(join(pki.work, 'data.txt'), DATA);
}, 240_000);

afterAll(async () => {
  await tsa.close();
  await pki.caStore.close();
  rmSync(pki.work, { recursive: true, force: true });
});

describe("keyframe's TSA, checked by OpenSSL", () => {
  it('a token over the data passes openssl ts -verify with -data and with -digest; keyframe reads the same genTime', async () => {
    const token = await authority.timestamp(sha256(DATA));
    const file = join(pki.work, 'ours.tst');
    writeFileSync(file, token);
    const common = ['ts', '-verify', '-token_in', '-in', file, '-CAfile', operatorPem, '-untrusted', join(tsaDir, 'cert.pem')];
    const withData = await openssl([...common, '-data', 'data.txt'], pki.work);
    expect(withData.stdout + withData.stderr).toContain('Verification: OK');
    expect(withData.code).toBe(0);
    const withDigest = await openssl([...common, '-digest', sha256(DATA).toString('hex')], pki.work);
    expect(withDigest.stdout).toContain('Verification: OK');
    const text = (await openssl(['ts', '-reply', '-token_in', '-in', file, '-text'], pki.work)).stdout;
    expect(text).toContain(`Policy OID: ${TSA_POLICY}`);
    expect(text).toContain('TSA: DirName:/CN=NVR-TSA/O=Acme Site');
    const ours = await verifyTimeStampToken(token, { hash: sha256(DATA), roots: [pki.ca.certs.operator] });
    expect(ours.valid).toBe(true);
    if (!ours.valid) return;
    const openSslTime = /Time stamp: (.*)/.exec(text)?.[1] ?? '';
    expect(new Date(openSslTime).toISOString()).toBe(ours.info.genTime);
    expect(ours.info).toMatchObject({ policy: TSA_POLICY, accuracyMs: 1000, hashAlgorithm: 'sha256', tsa: { subject: 'CN=NVR-TSA, O=Acme Site' } });
    // genTime is the issue time rounded up to the second: the hash existed no later than it
    expect(Date.parse(ours.info.genTime)).toBeGreaterThan(Date.now() - 5000);
    expect(Date.parse(ours.info.genTime) % 1000).toBe(0);
  });

  it('answers an openssl ts -query with a reply that openssl ts -verify -queryfile accepts (nonce echoed)', async () => {
    await openssl(['ts', '-query', '-data', 'data.txt', '-sha256', '-cert', '-out', 'q.tsq'], pki.work);
    const reply = await authority.respond(readFileSync(join(pki.work, 'q.tsq')));
    writeFileSync(join(pki.work, 'q.tsr'), reply);
    const v = await openssl(['ts', '-verify', '-in', 'q.tsr', '-queryfile', 'q.tsq', '-CAfile', operatorPem], pki.work);
    expect(v.stdout).toContain('Verification: OK');
    const decoded = decodeTimeStampResponse(reply);
    expect(decoded.status).toBe(0);
    const nonce = BigInt(/Nonce: (0x[0-9A-F]+)/.exec((await openssl(['ts', '-query', '-in', 'q.tsq', '-text'], pki.work)).stdout)?.[1] ?? '0');
    expect(nonce).toBeGreaterThan(0n);
    const r = await verifyTimeStampToken(decoded.token ?? Buffer.alloc(0), { hash: sha256(DATA), nonce, roots: [pki.ca.certs.operator] });
    expect(r.valid).toBe(true);
    expect((await verifyTimeStampToken(decoded.token ?? Buffer.alloc(0), { hash: sha256(DATA), nonce: nonce + 1n, roots: [pki.ca.certs.operator] })).valid).toBe(false);
  });

  it('altered data: openssl says message imprint mismatch, keyframe IMPRINT_MISMATCH', async () => {
    const token = await authority.timestamp(sha256(DATA));
    writeFileSync(join(pki.work, 'other.txt'), `${DATA}!`);
    writeFileSync(join(pki.work, 'ours2.tst'), token);
    const v = await openssl(['ts', '-verify', '-token_in', '-in', 'ours2.tst', '-data', 'other.txt', '-CAfile', operatorPem, '-untrusted', join(tsaDir, 'cert.pem')], pki.work);
    expect(v.code).not.toBe(0);
    expect(v.stdout + v.stderr).toMatch(/message imprint mismatch/);
    const r = await verifyTimeStampToken(token, { hash: sha256(`${DATA}!`), roots: [pki.ca.certs.operator] });
    expect(r).toMatchObject({ valid: false, code: 'IMPRINT_MISMATCH' });
  });

  it('an altered token (one byte of the TSTInfo, or of the signature) is refused by both', async () => {
    const token = await authority.timestamp(sha256(DATA));
    const at = token.indexOf(Buffer.from(sha256(DATA))) + 40; // inside the TSTInfo, after the imprint: the serial number
    const inTst = Buffer.from(token);
    inTst[at] = (inTst[at] ?? 0) ^ 0x01;
    const r1 = await verifyTimeStampToken(inTst, { hash: sha256(DATA), roots: [pki.ca.certs.operator] });
    expect(r1).toMatchObject({ valid: false, code: 'MESSAGE_DIGEST' });
    const inSig = Buffer.from(token);
    inSig[inSig.length - 5] = (inSig[inSig.length - 5] ?? 0) ^ 0x01;
    const r2 = await verifyTimeStampToken(inSig, { hash: sha256(DATA), roots: [pki.ca.certs.operator] });
    expect(r2).toMatchObject({ valid: false, code: 'BAD_SIGNATURE' });
    for (const [name, bytes] of [['tst.tst', inTst], ['sig.tst', inSig]] as const) {
      writeFileSync(join(pki.work, name), bytes);
      const v = await openssl(['ts', '-verify', '-token_in', '-in', name, '-data', 'data.txt', '-CAfile', operatorPem, '-untrusted', join(tsaDir, 'cert.pem')], pki.work);
      expect(v.code).not.toBe(0);
    }
  });

  it('refuses bad requests with the RFC failure bits: SHA-1 (badAlg), an unknown policy (unacceptedPolicy), garbage (badDataFormat)', async () => {
    await openssl(['ts', '-query', '-data', 'data.txt', '-sha1', '-out', 'sha1.tsq'], pki.work);
    const sha1 = decodeTimeStampResponse(await authority.respond(readFileSync(join(pki.work, 'sha1.tsq'))));
    expect(sha1).toMatchObject({ status: 2, failInfo: ['badAlg'] });
    expect(sha1.token).toBeUndefined();
    const policy = decodeTimeStampResponse(await authority.respond(encodeTimeStampRequest({ hashAlgorithm: 'sha256', hashedMessage: sha256(DATA), certReq: true, policy: '1.2.3.4.99' })));
    expect(policy).toMatchObject({ status: 2, failInfo: ['unacceptedPolicy'] });
    const ours = decodeTimeStampResponse(await authority.respond(encodeTimeStampRequest({ hashAlgorithm: 'sha256', hashedMessage: sha256(DATA), certReq: true, policy: TSA_POLICY })));
    expect(ours.status).toBe(0);
    expect(decodeTimeStampResponse(await authority.respond(Buffer.from('not a request')))).toMatchObject({ status: 2, failInfo: ['badDataFormat'] });
    // openssl reads our rejection as one
    writeFileSync(join(pki.work, 'sha1.tsr'), await authority.respond(readFileSync(join(pki.work, 'sha1.tsq'))));
    expect((await openssl(['ts', '-reply', '-in', 'sha1.tsr', '-text'], pki.work)).stdout).toMatch(/Status: Rejected[\s\S]*unrecognized or unsupported algorithm identifier/);
  });
});

describe('OpenSSL TSA tokens, checked by keyframe', () => {
  it('a live openssl ts -reply token (EC, ESS signing-certificate-v2, nonce) verifies, with openssl genTime and serial', async () => {
    const w = pki.work;
    writeFileSync(
      join(w, 'tsa.cnf'),
      ['[req]', 'distinguished_name=dn', '[dn]', '[v3_tsa]', 'basicConstraints=critical,CA:FALSE', 'keyUsage=critical,digitalSignature', 'extendedKeyUsage=critical,timeStamping',
        '[tsa]', 'default_tsa=t', '[t]', 'serial=./tsaserial', 'signer_digest=sha256', 'default_policy=1.2.3.4.1', 'digests=sha256', 'ess_cert_id_alg=sha256', ''].join('\n'),
    );
    writeFileSync(join(w, 'tsaserial'), '2A\n');
    await openssl(['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', 'r.key'], w);
    await openssl(['req', '-new', '-x509', '-key', 'r.key', '-subj', '/CN=Live TSA Root', '-days', '30', '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign', '-out', 'r.pem'], w);
    await openssl(['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', 't.key'], w);
    await openssl(['req', '-new', '-key', 't.key', '-subj', '/CN=Live openssl TSA', '-config', 'tsa.cnf', '-out', 't.csr'], w);
    await openssl(['x509', '-req', '-in', 't.csr', '-CA', 'r.pem', '-CAkey', 'r.key', '-CAcreateserial', '-days', '30', '-extfile', 'tsa.cnf', '-extensions', 'v3_tsa', '-out', 't.pem'], w);
    await openssl(['ts', '-query', '-data', 'data.txt', '-sha256', '-cert', '-out', 'live.tsq'], w);
    const made = await openssl(['ts', '-reply', '-queryfile', 'live.tsq', '-inkey', 't.key', '-signer', 't.pem', '-config', 'tsa.cnf', '-out', 'live.tsr'], w);
    expect(made.stderr).toContain('Response has been generated');
    const text = (await openssl(['ts', '-reply', '-in', 'live.tsr', '-text'], w)).stdout;
    const reply = decodeTimeStampResponse(readFileSync(join(w, 'live.tsr')));
    const nonce = BigInt(/Nonce: (0x[0-9A-F]+)/.exec(text)?.[1] ?? '0');
    const roots = parseCertificates(readFileSync(join(w, 'r.pem')), 'r.pem');
    const r = await verifyTimeStampToken(reply.token ?? Buffer.alloc(0), { hash: sha256(DATA), nonce, roots, policies: ['1.2.3.4.1'] });
    expect(r.valid).toBe(true);
    const serial = BigInt(/Serial number: (0x[0-9A-F]+)/.exec(text)?.[1] ?? '-1').toString(16);
    expect(r.info).toMatchObject({ serialNumber: serial, policy: '1.2.3.4.1', genTime: new Date(/Time stamp: (.*)/.exec(text)?.[1] ?? '').toISOString() });
    expect(await verifyTimeStampToken(reply.token ?? Buffer.alloc(0), { hash: sha256('other'), roots })).toMatchObject({ valid: false, code: 'IMPRINT_MISMATCH' });
    // and not under keyframe's operator root
    expect(await verifyTimeStampToken(reply.token ?? Buffer.alloc(0), { hash: sha256(DATA), roots: [pki.ca.certs.operator] })).toMatchObject({ valid: false, code: 'TSA_CERTIFICATE' });
  });

  it('the fixed vectors: EC with ESS-v2 and a nonce; RSA with the SHA-1 ESS attribute and no certificate in the token', async () => {
    const roots = parseCertificates(vector.root, 'vector root');
    const hash = sha256(vector.data);
    const ec = decodeTimeStampResponse(Buffer.from(vector.ec.reply, 'base64'));
    const ecResult = await verifyTimeStampToken(ec.token ?? Buffer.alloc(0), { hash, nonce: BigInt(vector.ec.nonce), roots, policies: [vector.ec.policy] });
    expect(ecResult).toMatchObject({ valid: true, info: { genTime: vector.ec.genTime, serialNumber: BigInt(vector.ec.serial).toString(16), accuracyMs: 1500, tsa: { subject: 'CN=openssl EC TSA, O=openssl' } } });
    expect(ecResult.info?.notAfter).toBe(new Date(Date.parse(vector.ec.genTime) + 1500).toISOString());
    expect(await verifyTimeStampToken(ec.token ?? Buffer.alloc(0), { hash, nonce: BigInt(vector.ec.nonce) + 1n, roots })).toMatchObject({ valid: false, code: 'NONCE_MISMATCH' });
    expect(await verifyTimeStampToken(ec.token ?? Buffer.alloc(0), { hash, roots, policies: ['1.2.3.4.9'] })).toMatchObject({ valid: false, code: 'POLICY' });
    expect(await verifyTimeStampToken(ec.token ?? Buffer.alloc(0), { hash: sha256(`${vector.data}.`), roots })).toMatchObject({ valid: false, code: 'IMPRINT_MISMATCH' });
    const rsa = decodeTimeStampResponse(Buffer.from(vector.rsa.reply, 'base64'));
    expect(await verifyTimeStampToken(rsa.token ?? Buffer.alloc(0), { hash, roots })).toMatchObject({ valid: false, code: 'NO_SIGNER_CERTIFICATE' });
    const rsaCert = parseCertificates(vector.rsa.certificate, 'vector rsa');
    expect(await verifyTimeStampToken(rsa.token ?? Buffer.alloc(0), { hash, roots, intermediates: rsaCert })).toMatchObject({ valid: true, info: { genTime: vector.rsa.genTime, policy: vector.rsa.policy, accuracyMs: 2000 } });
  });
});

/** A certificate from the operator CA's key (in its key store), made the way the CA makes them but with `eku` as given. */
async function operatorIssued(publicKey: KeyObject, name: string, eku: ExtendedKeyUsageExtension): Promise<X509Certificate> {
  const caKeys = await keyStoreKeyPair(pki.caStore, pki.ca.config.labels.operator);
  const subjectKey = await webPublicKey(publicKey);
  return X509CertificateGenerator.create(
    {
      serialNumber: newCertificateSerial(),
      subject: names.site(pki.ca.config.org, name),
      issuer: pki.ca.certs.operator.subjectName,
      ...validity(30, new Date(Date.now() - HOUR)),
      publicKey: publicKey.export({ format: 'der', type: 'spki' }),
      signingKey: caKeys.privateKey as never,
      signingAlgorithm: caKeys.signingAlgorithm as never,
      extensions: [
        new BasicConstraintsExtension(false, undefined, true),
        new KeyUsagesExtension(KeyUsageFlags.digitalSignature, true),
        eku,
        await SubjectKeyIdentifierExtension.create(subjectKey),
        new AuthorityKeyIdentifierExtension(pki.ca.certs.operator.getExtension(SubjectKeyIdentifierExtension)?.keyId ?? ''),
      ],
    },
    keyStoreCrypto,
  );
}

describe('TSA certificates refused', () => {
  it('EKU timeStamping not critical: openssl ts -reply will not sign, our TSA will not start, our verifier refuses a token made anyway', async () => {
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
    const cert = await operatorIssued(publicKey, 'Lax TSA', new ExtendedKeyUsageExtension([EKU_TIME_STAMPING], false));
    writeFileSync(join(pki.work, 'lax.pem'), certsToPem([cert]));
    writeFileSync(join(pki.work, 'lax.key'), privateKey.export({ format: 'pem', type: 'pkcs8' }));
    writeFileSync(join(pki.work, 'lax.cnf'), ['[tsa]', 'default_tsa=t', '[t]', 'serial=./laxserial', 'signer_digest=sha256', 'default_policy=1.2.3.4.1', 'digests=sha256', ''].join('\n'));
    writeFileSync(join(pki.work, 'laxserial'), '01\n');
    await openssl(['ts', '-query', '-data', 'data.txt', '-sha256', '-cert', '-out', 'lax.tsq'], pki.work);
    const refused = await openssl(['ts', '-reply', '-queryfile', 'lax.tsq', '-inkey', 'lax.key', '-signer', 'lax.pem', '-config', 'lax.cnf', '-out', 'lax.tsr'], pki.work);
    expect(refused.stderr).toMatch(/invalid signer certificate purpose/);
    // the same check in keyframe's TSA (the key in a key store here, as always)
    const store = tsa.store;
    await store.generateKeyPair('lax', 'ec-p256');
    const laxStoreCert = await operatorIssued(await store.getPublicKey('lax'), 'Lax TSA 2', new ExtendedKeyUsageExtension([EKU_TIME_STAMPING], false));
    await expect(TimeStampAuthority.create({ store, label: 'lax', chain: [laxStoreCert, pki.ca.certs.operator] })).rejects.toThrow(/invalid signer certificate purpose: the extended key usage of a time-stamping certificate must be critical/);
    // a token built around that certificate all the same (the token builder does not judge its signer)
    const token = await buildTimeStampToken({
      certificate: cert,
      chain: [cert],
      rsa: false,
      sign: async (data) => cryptoSign('sha256', data, { key: privateKey, dsaEncoding: 'der' }),
      hashAlgorithm: 'sha256',
      hash: sha256(DATA),
      policy: '1.2.3.4.1',
      genTime: new Date(Math.ceil(Date.now() / 1000) * 1000),
    });
    const r = await verifyTimeStampToken(token, { hash: sha256(DATA), roots: [pki.ca.certs.operator] });
    expect(r).toMatchObject({ valid: false, code: 'TSA_CERTIFICATE', reason: expect.stringContaining('must be critical') as string });
    writeFileSync(join(pki.work, 'lax.tst'), token);
    const v = await openssl(['ts', '-verify', '-token_in', '-in', 'lax.tst', '-data', 'data.txt', '-CAfile', operatorPem], pki.work);
    expect(v.code).not.toBe(0);
    // with the EKU critical, the same builder and key make a token both verifiers accept: the EKU is what failed
    const strict = await operatorIssued(publicKey, 'Strict TSA', new ExtendedKeyUsageExtension([EKU_TIME_STAMPING], true));
    const good = await buildTimeStampToken({ certificate: strict, chain: [strict], rsa: false, sign: async (data) => cryptoSign('sha256', data, { key: privateKey, dsaEncoding: 'der' }), hashAlgorithm: 'sha256', hash: sha256(DATA), policy: '1.2.3.4.1', genTime: new Date(Math.ceil(Date.now() / 1000) * 1000) });
    expect((await verifyTimeStampToken(good, { hash: sha256(DATA), roots: [pki.ca.certs.operator] })).valid).toBe(true);
    writeFileSync(join(pki.work, 'strict.tst'), good);
    expect((await openssl(['ts', '-verify', '-token_in', '-in', 'strict.tst', '-data', 'data.txt', '-CAfile', operatorPem], pki.work)).stdout).toContain('Verification: OK');
  });

  it('a TSA under another root (the manufacturer root, or another operator CA with the same names) is refused', async () => {
    const token = await authority.timestamp(sha256(DATA));
    const wrongRoot = await verifyTimeStampToken(token, { hash: sha256(DATA), roots: [pki.root] });
    expect(wrongRoot).toMatchObject({ valid: false, code: 'TSA_CERTIFICATE' });
    const other = await makePki('Acme Site', pki.work);
    try {
      expect(other.ca.certs.operator.subject).toBe(pki.ca.certs.operator.subject);
      expect(await verifyTimeStampToken(token, { hash: sha256(DATA), roots: [other.ca.certs.operator] })).toMatchObject({ valid: false, code: 'TSA_CERTIFICATE', reason: expect.stringMatching(/does not verify|not a trusted root|unable to find issuer/) as string });
    } finally {
      await other.caStore.close();
    }
  });

  it('a TSA revoked for keyCompromise: its tokens prove nothing, even those dated before the revocation; superseded later: still valid', async () => {
    const make = async (name: string): Promise<{ dir: string; id: OperatorIdentity; tsa: TimeStampAuthority }> => {
      const dir = join(pki.work, name);
      await createOperatorIdentity({ kind: 'tsa', out: dir, ca: pki.ca, caKeyStore: pki.caStore, name, keystore: pki.spec(join(dir, 'keys')), now: new Date(Date.now() - 2 * HOUR) });
      const id = await openOperatorIdentity(dir, 'tsa');
      // the TSA's clock 90 minutes back: a token dated before the revocation below
      return { dir, id, tsa: await TimeStampAuthority.create({ store: id.store, label: id.config.keyLabel, chain: id.chain, clock: () => new Date(Date.now() - 1.5 * HOUR) }) };
    };
    const compromised = await make('TSA-C');
    const retired = await make('TSA-R');
    try {
      const t1 = await compromised.tsa.timestamp(sha256(DATA));
      const t2 = await retired.tsa.timestamp(sha256(DATA));
      await revoke(pki.ca, { certSerial: compromised.id.certificate.serialNumber, reason: 'keyCompromise', time: new Date(Date.now() - HOUR) });
      await revoke(pki.ca, { certSerial: retired.id.certificate.serialNumber, reason: 'superseded', time: new Date(Date.now() - HOUR) });
      const crls = parseCrls(await issueAllCrls(pki.ca, pki.caStore), 'crl');
      expect(await verifyTimeStampToken(t1, { hash: sha256(DATA), roots: [pki.ca.certs.operator] })).toMatchObject({ valid: true });
      expect(await verifyTimeStampToken(t1, { hash: sha256(DATA), roots: [pki.ca.certs.operator], crls })).toMatchObject({ valid: false, code: 'TSA_COMPROMISED' });
      expect(await verifyTimeStampToken(t2, { hash: sha256(DATA), roots: [pki.ca.certs.operator], crls })).toMatchObject({ valid: true });
      // openssl checks revocation at the current time (no "valid until revoked"): with the CRL it rejects both; the
      // superseded TSA's token is where keyframe deliberately differs
      writeFileSync(join(pki.work, 'ca+crl.pem'), readFileSync(operatorPem, 'utf8') + crls.map((c) => toPem(c.rawData, 'X509 CRL')).join(''));
      for (const [name, t, dir] of [['t1.tst', t1, compromised.dir], ['t2.tst', t2, retired.dir]] as const) {
        writeFileSync(join(pki.work, name), t);
        const args = ['ts', '-verify', '-token_in', '-in', name, '-data', 'data.txt', '-CAfile', 'ca+crl.pem', '-untrusted', join(dir, 'cert.pem')];
        expect((await openssl(args, pki.work)).stdout).toContain('Verification: OK');
        const withCrl = await openssl([...args, '-crl_check'], pki.work);
        expect(withCrl.stdout + withCrl.stderr).toMatch(/certificate revoked/);
      }
    } finally {
      await compromised.id.close();
      await retired.id.close();
    }
  });
});

describe('getting tokens: locally and over HTTP (RFC 3161 §3.4)', () => {
  let server: Server;
  let url: string;
  let mode: 'ok' | 'html' | 'reject' = 'ok';
  beforeAll(async () => {
    server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        void (async () => {
          if (mode === 'html') {
            res.writeHead(200, { 'content-type': 'text/html' }).end('<html>');
            return;
          }
          const body = mode === 'reject' ? Buffer.from('garbage') : Buffer.concat(chunks);
          res.writeHead(200, { 'content-type': 'application/timestamp-reply' }).end(await authority.respond(body));
        })();
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/tsa`;
  });
  afterAll(async () => {
    await new Promise<void>((r) => server.close(() => r()));
  });

  it('a stamper verifies every token before handing it out; a TSA outside the roots, a refusal or a non-TSP answer is an error', async () => {
    const local = await localStamper(tsaDir);
    try {
      const { info } = await local.stamp(sha256(DATA));
      expect(info.tsa?.subject).toBe('CN=NVR-TSA, O=Acme Site');
    } finally {
      await local.close();
    }
    const remote = httpStamper(url, { roots: [pki.ca.certs.operator] });
    const { token, info } = await remote.stamp(sha256(DATA));
    expect(info.policy).toBe(TSA_POLICY);
    expect((await verifyTimeStampToken(token, { hash: sha256(DATA), roots: [pki.ca.certs.operator] })).valid).toBe(true);
    await expect(httpStamper(url, { roots: [pki.root] }).stamp(sha256(DATA))).rejects.toThrow(/does not verify: TSA certificate not valid/);
    mode = 'reject';
    await expect(remote.stamp(sha256(DATA))).rejects.toThrow(/refused: rejection, badDataFormat/);
    mode = 'html';
    await expect(remote.stamp(sha256(DATA))).rejects.toThrow(/answered text\/html, not application\/timestamp-reply/);
    mode = 'ok';
    await expect(httpStamper('http://127.0.0.1:9/tsa', { roots: [pki.ca.certs.operator] }).stamp(sha256(DATA))).rejects.toMatchObject({ code: 'KF_ERR_UNAVAILABLE' });
  });
});
