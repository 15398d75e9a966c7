import { X509Certificate as NodeX509 } from 'node:crypto';
import { Extension, KeyUsageFlags, X509CrlReason } from '../../src/pki/x509.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KeyframeError } from '../../src/errors.js';
import { EKU_CLIENT_AUTH, EKU_SERVER_AUTH, EKU_VIDEO_SIGNING } from '../../src/pki/oids.js';
import { type CertPurpose, fingerprintSha256, verifyCertificate } from '../../src/pki/verify.js';
import { DAY, type Issuer, issue, makeCa, makeCrl, makeDevice, makeRoot, NAMES, newKeys, buildPkiFixtures, type PkiFixtures } from '../helpers/pki-fixtures.js';

let f: PkiFixtures;
let base: Date;
beforeAll(async () => {
  f = await buildPkiFixtures();
  base = f.base;
});
afterAll(async () => {
  await f.cleanup();
});

const genuine = () => ({ roots: [f.root.cert], intermediates: [f.factory.cert] });

describe('path building', () => {
  it('validates the genuine device and returns the chain leaf first', async () => {
    const r = await verifyCertificate(f.device.cert, genuine());
    expect(r).toMatchObject({ valid: true, status: 'valid' });
    expect(r.chain.map((c) => c.subject)).toEqual([NAMES.device, NAMES.factory, NAMES.root]);
    expect(r.chain[0]?.sha256).toBe(fingerprintSha256(f.device.cert));
    expect(r.reason).toBeUndefined();
  });

  it('ignores duplicates and the leaf itself among the intermediates', async () => {
    const r = await verifyCertificate(f.device.cert, { roots: [f.root.cert], intermediates: [f.device.cert, f.factory.cert, f.factory.cert, f.root.cert] });
    expect(r.valid).toBe(true);
    expect(r.chain).toHaveLength(3);
  });

  it('is not shadowed by a look-alike CA that copies names AND the key identifier, in either order', async () => {
    for (const intermediates of [
      [f.attackerFactorySki.cert, f.factory.cert],
      [f.factory.cert, f.attackerFactorySki.cert],
    ]) {
      const r = await verifyCertificate(f.device.cert, { roots: [f.root.cert], intermediates });
      expect(r.valid).toBe(true);
    }
  });

  it('reports the furthest failure: an attacker chain ending in an untrusted self-signed root', async () => {
    const r = await verifyCertificate(f.attackerDevice, { roots: [f.root.cert], intermediates: [f.attackerFactory.cert, f.attackerRoot.cert] });
    expect(r).toMatchObject({ valid: false, status: 'invalid', code: 'UNTRUSTED_ROOT' });
    expect(r.chain).toHaveLength(3);
  });

  it('reports a missing issuer', async () => {
    const r = await verifyCertificate(f.device.cert, { roots: [f.root.cert] });
    expect(r).toMatchObject({ valid: false, code: 'NO_ISSUER', reason: `unable to find issuer "${NAMES.factory}"` });
  });

  it('a leaf misused as issuer is not a CA', async () => {
    const r = await verifyCertificate(f.misused, { roots: [f.root.cert], intermediates: [f.factory.cert, f.device.cert] });
    expect(r).toMatchObject({ valid: false, code: 'NOT_A_CA', reason: `issuer "${NAMES.device}" is not a CA` });
  });

  it('guards against loops (two CAs certifying each other) and terminates quickly', async () => {
    const a = await newKeys();
    const b = await newKeys();
    const when = { notBefore: new Date(base.getTime() - DAY), notAfter: new Date(base.getTime() + DAY) };
    const aByB = await issue({ subject: 'CN=loop A', publicKey: a.publicKey, issuer: { name: 'CN=loop B', keys: b }, ca: true, ...when });
    const bByA = await issue({ subject: 'CN=loop B', publicKey: b.publicKey, issuer: { name: 'CN=loop A', keys: a }, ca: true, ...when });
    const leaf = (await makeDevice('CN=loop leaf', { cert: aByB, keys: a }, base)).cert;
    // no wall-clock bound (flaky under load): the search is bounded in src/pki/_path.ts; a hang hits the test timeout
    const r = await verifyCertificate(leaf, { roots: [f.root.cert], intermediates: [aByB, bByA, aByB] });
    expect(r).toMatchObject({ valid: false, code: 'NO_ISSUER' });
    expect(r.chain.length).toBeLessThanOrEqual(3);
  });

  it('treats a root given as the leaf as a one-certificate path (purpose still checked)', async () => {
    expect(await verifyCertificate(f.root.cert, { roots: [f.root.cert], purpose: 'any' })).toMatchObject({ valid: true, status: 'valid' });
    expect(await verifyCertificate(f.root.cert, { roots: [f.root.cert] })).toMatchObject({ valid: false, code: 'LEAF_IS_CA' });
  });
});

describe('constraints', () => {
  it('rejects an extra CA below a pathLen 0 CA', async () => {
    const sub = await makeCa('CN=keyframe Sub CA, O=keyframe', f.factory, base, undefined);
    const leaf = (await makeDevice('CN=keyframe camera SN7, O=keyframe', sub, base)).cert;
    const r = await verifyCertificate(leaf, { roots: [f.root.cert], intermediates: [f.factory.cert, sub.cert] });
    expect(r).toMatchObject({ valid: false, code: 'PATH_LENGTH' });
    expect(r.reason).toContain(`path length constraint of "${NAMES.factory}" exceeded`);
  });

  it('honours the root pathLen too', async () => {
    const root0 = await makeRoot('CN=pathlen 0 root', base, 0);
    const ca = await makeCa('CN=pathlen CA', root0, base, undefined);
    const leaf = (await makeDevice('CN=pathlen leaf', ca, base)).cert;
    // root0 (pathLen 0) → CA → leaf: one intermediate below the root
    expect(await verifyCertificate(leaf, { roots: [root0.cert], intermediates: [ca.cert] })).toMatchObject({ code: 'PATH_LENGTH' });
    const root1 = await makeRoot('CN=pathlen 1 root', base, 1);
    const ca1 = await makeCa('CN=pathlen1 CA', root1, base, undefined);
    const sub1 = await makeCa('CN=pathlen1 sub', ca1, base, undefined);
    const ok = (await makeDevice('CN=pathlen1 leaf', ca1, base)).cert;
    const tooDeep = (await makeDevice('CN=pathlen1 deep', sub1, base)).cert;
    expect(await verifyCertificate(ok, { roots: [root1.cert], intermediates: [ca1.cert] })).toMatchObject({ valid: true });
    expect(await verifyCertificate(tooDeep, { roots: [root1.cert], intermediates: [ca1.cert, sub1.cert] })).toMatchObject({ code: 'PATH_LENGTH' });
  });

  it('rejects an unknown critical extension, accepts it non-critical', async () => {
    const der = new Uint8Array([0x05, 0x00]);
    const crit = (await makeDevice(NAMES.device, f.factory, base, undefined, { extra: [new Extension('1.3.6.1.4.1.99999.1', true, der)] })).cert;
    const nonCrit = (await makeDevice(NAMES.device, f.factory, base, undefined, { extra: [new Extension('1.3.6.1.4.1.99999.1', false, der)] })).cert;
    const r = await verifyCertificate(crit, genuine());
    expect(r).toMatchObject({ valid: false, code: 'UNKNOWN_CRITICAL_EXTENSION' });
    expect(r.reason).toContain('1.3.6.1.4.1.99999.1');
    expect(await verifyCertificate(nonCrit, genuine())).toMatchObject({ valid: true });
  });

  it('rejects an unsupported critical nameConstraints on a CA (fail closed)', async () => {
    const ncDer = new Uint8Array([0x30, 0x00]);
    const keys = await newKeys();
    const ca = await issue({
      subject: 'CN=constrained CA',
      publicKey: keys.publicKey,
      issuer: { name: f.root.cert.subjectName, keys: f.root.keys },
      ca: true,
      keyUsage: KeyUsageFlags.keyCertSign,
      notBefore: new Date(base.getTime() - DAY),
      notAfter: new Date(base.getTime() + DAY),
      extra: [new Extension('2.5.29.30', true, ncDer)],
    });
    const leaf = (await makeDevice('CN=nc leaf', { cert: ca, keys }, base)).cert;
    expect(await verifyCertificate(leaf, { roots: [f.root.cert], intermediates: [ca] })).toMatchObject({ code: 'UNKNOWN_CRITICAL_EXTENSION' });
  });

  it('checks validity of every certificate in the path at `at`', async () => {
    const after = new Date(f.factory.cert.notAfter.getTime() + DAY);
    const r = await verifyCertificate(f.device.cert, { ...genuine(), at: after });
    expect(r).toMatchObject({ valid: false, code: 'EXPIRED' });
    expect(r.reason).toContain('expired at');
    const shortCaKeys = await newKeys();
    const shortCa: Issuer = {
      keys: shortCaKeys,
      cert: await issue({
        subject: 'CN=short CA',
        publicKey: shortCaKeys.publicKey,
        issuer: { name: f.root.cert.subjectName, keys: f.root.keys },
        ca: true,
        keyUsage: KeyUsageFlags.keyCertSign,
        notBefore: new Date(base.getTime() - 2 * DAY),
        notAfter: new Date(base.getTime() - DAY),
      }),
    };
    const leaf = (await makeDevice('CN=under expired CA', shortCa, base)).cert;
    const r2 = await verifyCertificate(leaf, { roots: [f.root.cert], intermediates: [shortCa.cert] });
    expect(r2).toMatchObject({ valid: false, code: 'EXPIRED' });
    expect(r2.reason).toContain('CN=short CA');
  });

  it('requires keyCertSign on issuers that carry keyUsage', async () => {
    const keys = await newKeys();
    const ca = await issue({
      subject: 'CN=no certsign CA',
      publicKey: keys.publicKey,
      issuer: { name: f.root.cert.subjectName, keys: f.root.keys },
      ca: true,
      keyUsage: KeyUsageFlags.cRLSign,
      notBefore: new Date(base.getTime() - DAY),
      notAfter: new Date(base.getTime() + DAY),
    });
    const leaf = (await makeDevice('CN=ku leaf', { cert: ca, keys }, base)).cert;
    expect(await verifyCertificate(leaf, { roots: [f.root.cert], intermediates: [ca] })).toMatchObject({ code: 'KEY_USAGE' });
  });
});

describe('purpose', () => {
  async function leafWith(eku: readonly string[] | undefined, keyUsage: KeyUsageFlags | undefined = KeyUsageFlags.digitalSignature) {
    const keys = await newKeys();
    return issue({
      subject: 'CN=purpose leaf',
      publicKey: keys.publicKey,
      issuer: { name: f.factory.cert.subjectName, keys: f.factory.keys },
      ca: false,
      ...(keyUsage === undefined ? {} : { keyUsage }),
      ...(eku === undefined ? {} : { eku }),
      notBefore: new Date(base.getTime() - DAY),
      notAfter: new Date(base.getTime() + DAY),
    });
  }
  const verdicts = async (leaf: Awaited<ReturnType<typeof leafWith>>) => {
    const out: Record<string, string> = {};
    for (const purpose of ['device', 'tls-server', 'tls-client', 'video-signing', 'any'] as CertPurpose[]) {
      const r = await verifyCertificate(leaf, { ...genuine(), purpose });
      out[purpose] = r.valid ? 'ok' : (r.code ?? '?');
    }
    return out;
  };

  it('serverAuth only', async () => {
    expect(await verdicts(await leafWith([EKU_SERVER_AUTH]))).toEqual({
      device: 'ok',
      'tls-server': 'ok',
      'tls-client': 'EXT_KEY_USAGE',
      'video-signing': 'EXT_KEY_USAGE',
      any: 'ok',
    });
  });

  it('video-signing only', async () => {
    expect(await verdicts(await leafWith([EKU_VIDEO_SIGNING]))).toEqual({
      device: 'ok',
      'tls-server': 'EXT_KEY_USAGE',
      'tls-client': 'EXT_KEY_USAGE',
      'video-signing': 'ok',
      any: 'ok',
    });
  });

  it('clientAuth only, and an unrelated EKU', async () => {
    expect((await verdicts(await leafWith([EKU_CLIENT_AUTH])))['tls-client']).toBe('ok');
    expect(await verdicts(await leafWith(['1.3.6.1.5.5.7.3.3']))).toEqual({
      device: 'EXT_KEY_USAGE',
      'tls-server': 'EXT_KEY_USAGE',
      'tls-client': 'EXT_KEY_USAGE',
      'video-signing': 'EXT_KEY_USAGE',
      any: 'ok',
    });
  });

  it('no EKU extension is unrestricted; keyUsage without digitalSignature is not', async () => {
    const all = { device: 'ok', 'tls-server': 'ok', 'tls-client': 'ok', 'video-signing': 'ok', any: 'ok' };
    expect(await verdicts(await leafWith(undefined))).toEqual(all);
    expect(await verdicts(await leafWith(undefined, undefined))).toEqual(all);
    expect(await verdicts(await leafWith([EKU_VIDEO_SIGNING], KeyUsageFlags.keyAgreement))).toEqual({
      device: 'KEY_USAGE',
      'tls-server': 'KEY_USAGE',
      'tls-client': 'KEY_USAGE',
      'video-signing': 'KEY_USAGE',
      any: 'ok',
    });
    const r = await verifyCertificate(await leafWith(undefined, KeyUsageFlags.keyAgreement), genuine());
    expect(r.reason).toBe('missing keyUsage digitalSignature');
  });

  it('a CA certificate as leaf only for purpose any', async () => {
    const r = await verifyCertificate(f.factory.cert, { roots: [f.root.cert] });
    expect(r).toMatchObject({ valid: false, code: 'LEAF_IS_CA' });
    expect(await verifyCertificate(f.factory.cert, { roots: [f.root.cert], purpose: 'any' })).toMatchObject({ valid: true });
  });
});

describe('self-signed and pins', () => {
  it('a self-signed leaf is not trusted by default', async () => {
    const r = await verifyCertificate(f.selfSigned.cert, { roots: [f.root.cert] });
    expect(r).toEqual({
      valid: false,
      status: 'self-signed',
      code: 'SELF_SIGNED',
      reason: 'self-signed: identity not established',
      chain: [expect.objectContaining({ sha256: fingerprintSha256(f.selfSigned.cert) })],
    });
  });

  it('is pinned by SHA-256 fingerprint, with or without colons, in any case', async () => {
    const fp = fingerprintSha256(f.selfSigned.cert);
    const colons = (fp.toUpperCase().match(/../g) ?? []).join(':');
    for (const pin of [fp, fp.toUpperCase(), colons]) {
      expect(await verifyCertificate(f.selfSigned.cert, { roots: [], pins: [pin] })).toMatchObject({ valid: true, status: 'pinned' });
    }
    const other = fingerprintSha256(f.device.cert);
    expect(await verifyCertificate(f.selfSigned.cert, { roots: [], pins: [other] })).toMatchObject({ valid: false, status: 'self-signed' });
  });

  it('a pinned certificate is still checked for dates and purpose', async () => {
    const fp = fingerprintSha256(f.selfSigned.cert);
    const late = new Date(f.selfSigned.cert.notAfter.getTime() + DAY);
    expect(await verifyCertificate(f.selfSigned.cert, { roots: [], pins: [fp], at: late })).toMatchObject({ valid: false, status: 'invalid', code: 'EXPIRED' });
    const keys = await newKeys();
    const serverOnly = await issue({
      subject: 'CN=self server',
      publicKey: keys.publicKey,
      selfKeys: keys,
      keyUsage: KeyUsageFlags.digitalSignature,
      eku: [EKU_SERVER_AUTH],
      notBefore: new Date(base.getTime() - DAY),
      notAfter: new Date(base.getTime() + DAY),
    });
    const pins = [fingerprintSha256(serverOnly)];
    expect(await verifyCertificate(serverOnly, { roots: [], pins, purpose: 'tls-server' })).toMatchObject({ status: 'pinned' });
    expect(await verifyCertificate(serverOnly, { roots: [], pins, purpose: 'video-signing' })).toMatchObject({ code: 'EXT_KEY_USAGE' });
  });

  it('a malformed pin is an input error', async () => {
    await expect(verifyCertificate(f.selfSigned.cert, { roots: [], pins: ['abc'] })).rejects.toBeInstanceOf(KeyframeError);
  });

  it('fingerprintSha256 matches node:crypto', () => {
    const node = new NodeX509(Buffer.from(f.device.cert.rawData));
    expect(fingerprintSha256(f.device.cert)).toBe(node.fingerprint256.replace(/:/g, '').toLowerCase());
  });
});

describe('revocation', () => {
  it('needs a CRL from the leaf issuer once CRLs are given', async () => {
    expect(await verifyCertificate(f.device.cert, { ...genuine(), crls: [] })).toMatchObject({ valid: false, code: 'CRL_MISSING' });
    const rootCrl = await makeCrl(NAMES.root, f.root.keys, new Date(base.getTime() - DAY), new Date(base.getTime() + DAY));
    const r = await verifyCertificate(f.device.cert, { ...genuine(), crls: [rootCrl] });
    expect(r).toMatchObject({ valid: false, code: 'CRL_MISSING', reason: `no CRL from issuer "${NAMES.factory}"` });
  });

  it('ignores a CRL with the right issuer name but another key', async () => {
    const r = await verifyCertificate(f.device.cert, { ...genuine(), crls: [f.crlWrongKey] });
    expect(r).toMatchObject({ valid: false, code: 'CRL_BAD_SIGNATURE' });
    expect(r.reason).toContain('CRL signature does not verify');
    // a forged CRL that "un-revokes" nothing and a genuine one: the genuine one decides
    expect(await verifyCertificate(f.device.cert, { ...genuine(), crls: [f.crlWrongKey, f.crlEmpty] })).toMatchObject({ valid: true });
    expect(await verifyCertificate(f.revokedDevice.cert, { ...genuine(), crls: [f.crlWrongKey, f.crlRevoked] })).toMatchObject({ code: 'REVOKED' });
  });

  it('fails closed on an expired or not yet valid CRL (freshness at `now`)', async () => {
    const r = await verifyCertificate(f.device.cert, { ...genuine(), crls: [f.crlExpired] });
    expect(r).toMatchObject({ valid: false, code: 'CRL_EXPIRED' });
    expect(r.reason).toContain('expired at');
    const within = new Date(f.crlExpired.thisUpdate.getTime() + DAY);
    expect(await verifyCertificate(f.device.cert, { ...genuine(), crls: [f.crlExpired], now: within })).toMatchObject({ valid: true });
    expect(await verifyCertificate(f.device.cert, { ...genuine(), crls: [f.crlExpired, f.crlEmpty] })).toMatchObject({ valid: true });
    const future = await makeCrl(NAMES.factory, f.factory.keys, new Date(base.getTime() + DAY), new Date(base.getTime() + 9 * DAY));
    const r2 = await verifyCertificate(f.device.cert, { ...genuine(), crls: [future] });
    expect(r2).toMatchObject({ code: 'CRL_EXPIRED' });
    expect(r2.reason).toContain('not yet valid');
  });

  it('revocation time semantics: valid before R (revokedLater), invalid from R on', async () => {
    const R = f.revokedAt;
    const before = await verifyCertificate(f.revokedDevice.cert, { ...genuine(), crls: [f.crlRevoked], at: new Date(R.getTime() - 3_600_000) });
    expect(before).toMatchObject({ valid: true, status: 'valid', revokedLater: R.toISOString() });
    for (const at of [R, new Date(R.getTime() + 1000), base]) {
      const r = await verifyCertificate(f.revokedDevice.cert, { ...genuine(), crls: [f.crlRevoked], at });
      expect(r).toMatchObject({ valid: false, code: 'REVOKED' });
      expect(r.reason).toContain(`revoked at ${R.toISOString()} (keyCompromise)`);
      expect(r.revokedLater).toBeUndefined();
    }
  });

  it('an earlier invalidityDate moves the revocation time back', async () => {
    const R = new Date(base.getTime() - DAY);
    const invalidSince = new Date(base.getTime() - 10 * DAY);
    const crl = await makeCrl(NAMES.factory, f.factory.keys, new Date(base.getTime() - 3_600_000), new Date(base.getTime() + DAY), [
      { serialNumber: f.device.cert.serialNumber, revocationDate: R, reason: X509CrlReason.keyCompromise, invalidity: invalidSince },
    ]);
    const r = await verifyCertificate(f.device.cert, { ...genuine(), crls: [crl], at: new Date(base.getTime() - 5 * DAY) });
    expect(r).toMatchObject({ valid: false, code: 'REVOKED' });
    expect(r.reason).toContain(`invalid since ${invalidSince.toISOString()}`);
    const early = await verifyCertificate(f.device.cert, { ...genuine(), crls: [crl], at: new Date(base.getTime() - 11 * DAY) });
    expect(early).toMatchObject({ valid: true, revokedLater: invalidSince.toISOString() });
  });

  it('checks intermediates when a CRL from their issuer is present', async () => {
    const rootCrl = await makeCrl(NAMES.root, f.root.keys, new Date(base.getTime() - 3_600_000), new Date(base.getTime() + DAY), [
      { serialNumber: f.factory.cert.serialNumber, revocationDate: new Date(base.getTime() - 7_200_000), reason: X509CrlReason.cACompromise },
    ]);
    expect(await verifyCertificate(f.device.cert, { ...genuine(), crls: [f.crlEmpty] })).toMatchObject({ valid: true });
    const r = await verifyCertificate(f.device.cert, { ...genuine(), crls: [f.crlEmpty, rootCrl] });
    expect(r).toMatchObject({ valid: false, code: 'REVOKED' });
    expect(r.reason).toContain(NAMES.factory);
    expect(r.reason).toContain('cACompromise');
  });

  it('a CRL with an unsupported critical extension is not used', async () => {
    const idp = new Extension('2.5.29.28', true, new Uint8Array([0x30, 0x03, 0x81, 0x01, 0xff]));
    const crl = await makeCrl(NAMES.factory, f.factory.keys, new Date(base.getTime() - 3_600_000), new Date(base.getTime() + DAY), [], [idp]);
    expect(await verifyCertificate(f.device.cert, { ...genuine(), crls: [crl] })).toMatchObject({ valid: false, code: 'UNKNOWN_CRITICAL_EXTENSION' });
  });
});

describe('input', () => {
  it('throws an INPUT error for unusable input, never for an invalid certificate', async () => {
    await expect(verifyCertificate(f.device.cert, { ...genuine(), at: new Date('nope') })).rejects.toMatchObject({ code: 'KF_ERR_INPUT' });
    await expect(verifyCertificate(f.device.cert, { roots: 'x' as never })).rejects.toMatchObject({ code: 'KF_ERR_INPUT' });
    await expect(verifyCertificate({} as never, genuine())).rejects.toMatchObject({ code: 'KF_ERR_INPUT' });
    await expect(verifyCertificate(f.device.cert, { ...genuine(), purpose: 'nope' as never })).rejects.toMatchObject({ code: 'KF_ERR_INPUT' });
    // an attacker's junk among the untrusted candidates is just ignored
    expect(await verifyCertificate(f.device.cert, { roots: [f.root.cert], intermediates: [{} as never, f.factory.cert] })).toMatchObject({ valid: true });
  });
});
