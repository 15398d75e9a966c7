/**
 * What a later revocation means for material claiming an earlier time (issue 10): a key revoked as compromised
 * (keyCompromise, cACompromise, unspecified or no reason) may be in other hands, who can sign anything with any
 * claimed time — `verifyCertificate` says so (`compromise`) while the certificate stays valid at that earlier time;
 * other reasons (superseded, cessationOfOperation, affiliationChanged) keep "valid before R" alone. With CRLs, the
 * result also says up to when revocation is known (`crlThisUpdate`).
 */
import { X509CrlReason } from '../../src/pki/x509.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { verifyCertificate } from '../../src/pki/verify.js';
import { DAY, makeCrl, NAMES, buildPkiFixtures, type PkiFixtures } from '../helpers/pki-fixtures.js';

let f: PkiFixtures;
beforeAll(async () => {
  f = await buildPkiFixtures();
});
afterAll(async () => {
  await f.cleanup();
});

const R = (): Date => new Date(Math.floor(f.base.getTime() / 1000) * 1000 - DAY);
const crlWith = async (reason: X509CrlReason | undefined) =>
  makeCrl(NAMES.factory, f.factory.keys, new Date(f.base.getTime() - 3_600_000), new Date(f.base.getTime() + DAY), [
    { serialNumber: f.device.cert.serialNumber, revocationDate: R(), ...(reason !== undefined ? { reason } : {}) },
  ]);
const before = (): Date => new Date(R().getTime() - 3_600_000);

describe('later revocations by reason', () => {
  it('keyCompromise, unspecified and no reason: valid at an earlier time, but reported as a compromise', async () => {
    for (const [reason, name] of [
      [X509CrlReason.keyCompromise, 'keyCompromise'],
      [X509CrlReason.unspecified, 'unspecified'],
      [undefined, 'unspecified'],
    ] as const) {
      const crl = await crlWith(reason);
      const r = await verifyCertificate(f.device.cert, { roots: [f.root.cert], intermediates: [f.factory.cert], crls: [crl], at: before() });
      expect(r, name).toMatchObject({ valid: true, revokedLater: R().toISOString(), revokedLaterReason: name, compromise: { time: R().toISOString(), reason: name, subject: NAMES.device } });
    }
  });

  it('superseded, cessationOfOperation, affiliationChanged: valid before R, no compromise', async () => {
    for (const reason of [X509CrlReason.superseded, X509CrlReason.cessationOfOperation, X509CrlReason.affiliationChanged]) {
      const r = await verifyCertificate(f.device.cert, { roots: [f.root.cert], intermediates: [f.factory.cert], crls: [await crlWith(reason)], at: before() });
      expect(r).toMatchObject({ valid: true, revokedLater: R().toISOString() });
      expect(r.compromise).toBeUndefined();
    }
  });

  it('a CA of the path revoked for cACompromise later: a compromise of everything it certified', async () => {
    const rootCrl = await makeCrl(NAMES.root, f.root.keys, new Date(f.base.getTime() - 3_600_000), new Date(f.base.getTime() + DAY), [
      { serialNumber: f.factory.cert.serialNumber, revocationDate: R(), reason: X509CrlReason.cACompromise },
    ]);
    const r = await verifyCertificate(f.device.cert, { roots: [f.root.cert], intermediates: [f.factory.cert], crls: [f.crlEmpty, rootCrl], at: before() });
    expect(r).toMatchObject({ valid: true, compromise: { reason: 'cACompromise', subject: NAMES.factory } });
  });

  it('tells up to when revocation is known: thisUpdate of the newest CRL used for the leaf', async () => {
    const older = await makeCrl(NAMES.factory, f.factory.keys, new Date(f.base.getTime() - 2 * DAY), new Date(f.base.getTime() + DAY));
    const r = await verifyCertificate(f.device.cert, { roots: [f.root.cert], intermediates: [f.factory.cert], crls: [older, f.crlEmpty] });
    expect(r).toMatchObject({ valid: true, crlThisUpdate: f.crlEmpty.thisUpdate.toISOString() });
    expect((await verifyCertificate(f.device.cert, { roots: [f.root.cert], intermediates: [f.factory.cert] })).crlThisUpdate).toBeUndefined();
  });
});
