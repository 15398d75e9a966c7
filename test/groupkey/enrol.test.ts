/**
 * Pairwise key enrolment camera ↔ KMS: authenticated ECDH inside each side's key store (the camera's in a real
 * SoftHSM2 token), sub-keys delivered under K_i. Both sides end with the same sub-keys; a foreign KMS, a revoked or
 * untrusted camera, a tampered blob, a wrong generation and a replayed old blob are refused; K_i never leaves the
 * token.
 */
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ErrorCodes } from '../../src/errors.js';
import { confirmationsMatch, derivePairwiseKey, issueSubkeys, openSubkeys, pairLabel, subkeyConfirmation, type PairIdentity } from '../../src/groupkey/enrol.js';
import { openKeyStore } from '../../src/keystore/open.js';
import type { KeyStore } from '../../src/keystore/types.js';
import { issueAllCrls, revoke } from '../../src/pki/ca.js';
import { openDevice, provisionDevice, type Device } from '../../src/pki/device.js';
import { parseCrls } from '../../src/pki/pem.js';
import { createSite } from '../../src/pki/site.js';
import type { X509Certificate } from '../../src/pki/x509.js';
import { createTestToken, type TestToken } from '../helpers/softhsm.js';
import { makePki, type Pki } from '../signing/_setup.js';

let pki: Pki;
let other: Pki;
let token: TestToken;
let kmsStore: KeyStore;
let kmsCert: X509Certificate;
let foreignKmsStore: KeyStore;
let foreignKmsCert: X509Certificate;
let hsmCam: Device;
let softCam: Device;

async function site(p: Pki, name: string): Promise<{ store: KeyStore; cert: X509Certificate }> {
  const out = join(p.work, `site-${name}-${Math.random().toString(36).slice(2, 8)}`);
  const { certificate } = await createSite({ out, ca: p.ca, caKeyStore: p.caStore, name, altNames: [name], keystore: p.spec(join(out, 'keys')) });
  return { store: await openKeyStore(p.spec(join(out, 'keys'))), cert: certificate };
}

beforeAll(async () => {
  token = createTestToken();
  pki = await makePki();
  other = await makePki('Other Org', pki.work);
  ({ store: kmsStore, cert: kmsCert } = await site(pki, 'kms.example.org'));
  ({ store: foreignKmsStore, cert: foreignKmsCert } = await site(other, 'kms.example.org'));
  const hsmDir = join(pki.work, 'cam-hsm');
  await provisionDevice({ ca: pki.ca, caKeyStore: pki.caStore, dir: hsmDir, serial: 'SN-GK-HSM', keystore: token.spec });
  hsmCam = await openDevice(hsmDir);
  softCam = await openDevice(await pki.provision('SN-GK-SOFT'));
}, 240_000);

afterAll(async () => {
  await hsmCam.close();
  await softCam.close();
  await kmsStore.close();
  await foreignKmsStore.close();
  await pki.caStore.close();
  await other.caStore.close();
  token.cleanup();
});

const cameraTrust = (): { roots: X509Certificate[] } => ({ roots: [pki.ca.certs.operator] });
const kmsTrust = (): { roots: X509Certificate[]; intermediates: X509Certificate[] } => ({ roots: [pki.root], intermediates: [pki.ca.certs.factory] });

async function enrol(cam: Device, generation = 1): Promise<{ pair: PairIdentity; kmsLabel: string; camLabel: string; blob: Buffer; kmsConfirm: Buffer }> {
  const pair = { kms: kmsCert, camera: cam.chain[0] as X509Certificate };
  const kmsLabel = await derivePairwiseKey(kmsStore, 'tls', pair, 'kms', kmsTrust(), { replace: true });
  const camLabel = await derivePairwiseKey(cam.store, cam.config.keyLabel, pair, 'camera', cameraTrust(), { replace: true });
  const { subkeys, blob } = await issueSubkeys(kmsStore, kmsLabel, pair, generation);
  return { pair, kmsLabel, camLabel, blob, kmsConfirm: subkeyConfirmation(subkeys, pair) };
}

describe('pairwise enrolment', () => {
  it.each([
    ['a camera whose key is in a SoftHSM token', () => hsmCam],
    ['a camera with a software key store', () => softCam],
  ])('%s: both sides hold the same sub-keys; K_i stays a sensitive secret in the store', async (_name, cam) => {
    const { pair, camLabel, blob, kmsConfirm } = await enrol(cam());
    const subkeys = await openSubkeys(cam().store, camLabel, pair, 1, blob);
    expect(subkeys.wrap).toHaveLength(32);
    expect(Buffer.from(subkeys.wrap).equals(Buffer.from(subkeys.auth))).toBe(false);
    expect(confirmationsMatch(subkeyConfirmation(subkeys, pair), kmsConfirm)).toBe(true);
    expect(await cam().store.info(camLabel)).toMatchObject({ label: camLabel, algorithm: 'aes-256' });
    expect(camLabel).toBe(pairLabel(kmsCert));
  });

  it('every re-enrolment brings fresh sub-keys; an old blob does not open as the new generation', async () => {
    const first = await enrol(softCam, 1);
    const a = await openSubkeys(softCam.store, first.camLabel, first.pair, 1, first.blob);
    const second = await enrol(softCam, 2);
    const b = await openSubkeys(softCam.store, second.camLabel, second.pair, 2, second.blob);
    expect(Buffer.from(a.wrap).equals(Buffer.from(b.wrap))).toBe(false);
    await expect(openSubkeys(softCam.store, second.camLabel, second.pair, 2, first.blob)).rejects.toMatchObject({ code: ErrorCodes.GROUPKEY_REFUSED });
  });

  it('a tampered blob or a wrong generation is refused with one generic error', async () => {
    const { pair, camLabel, blob } = await enrol(softCam, 5);
    const bad = Buffer.from(blob);
    bad[bad.length - 1] = (bad[bad.length - 1] ?? 0) ^ 1;
    const errors = await Promise.all([openSubkeys(softCam.store, camLabel, pair, 5, bad).catch((e: Error) => e.message), openSubkeys(softCam.store, camLabel, pair, 6, blob).catch((e: Error) => e.message)]);
    expect(new Set(errors)).toEqual(new Set(['enrolment refused: the sub-key blob does not open']));
  });

  it('a blob from a KMS of another organisation (same names) does not open: the pair binds both certificates', async () => {
    const pair = { kms: foreignKmsCert, camera: softCam.chain[0] as X509Certificate };
    const foreignLabel = await derivePairwiseKey(foreignKmsStore, 'tls', pair, 'kms', { roots: [pki.root], intermediates: [pki.ca.certs.factory] }, { replace: true });
    const { blob } = await issueSubkeys(foreignKmsStore, foreignLabel, pair, 1);
    // the camera refuses to enrol with a KMS its operator root does not certify
    await expect(derivePairwiseKey(softCam.store, softCam.config.keyLabel, pair, 'camera', cameraTrust())).rejects.toMatchObject({ code: ErrorCodes.GROUPKEY_REFUSED });
    // and its key with the real KMS does not open the foreign blob
    const real = await enrol(softCam, 1);
    await expect(openSubkeys(softCam.store, real.camLabel, real.pair, 1, blob)).rejects.toMatchObject({ code: ErrorCodes.GROUPKEY_REFUSED });
  });

  it('the KMS refuses a revoked camera and an untrusted one', async () => {
    const dir = await pki.provision('SN-GK-REV');
    const cam = await openDevice(dir);
    try {
      await revoke(pki.ca, { deviceSerial: 'SN-GK-REV', reason: 'keyCompromise' });
      const crls = parseCrls(await issueAllCrls(pki.ca, pki.caStore), 'crl');
      const pair = { kms: kmsCert, camera: cam.chain[0] as X509Certificate };
      await expect(derivePairwiseKey(kmsStore, 'tls', pair, 'kms', { ...kmsTrust(), crls })).rejects.toThrow(/revoked/);
      await expect(derivePairwiseKey(kmsStore, 'tls', pair, 'kms', { roots: [other.root] })).rejects.toMatchObject({ code: ErrorCodes.GROUPKEY_REFUSED });
      expect(await kmsStore.info(pairLabel(cam.chain[0] as X509Certificate))).toBeUndefined();
    } finally {
      await cam.close();
    }
  });
});
