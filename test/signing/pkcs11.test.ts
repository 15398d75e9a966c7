/** Signing through a PKCS#11 token (SoftHSM): the device key never leaves it, the stream verifies AUTHENTIC. */
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { clip } from '../helpers/media.js';
import { createTestToken, type TestToken } from '../helpers/softhsm.js';
import { provisionDevice } from '../../src/pki/device.js';
import { makePki, signWith, verify, type Pki } from './_setup.js';

let pki: Pki;
let token: TestToken;

beforeAll(async () => {
  token = createTestToken();
  pki = await makePki();
});

afterAll(async () => {
  await pki.caStore.close();
  rmSync(pki.work, { recursive: true, force: true });
  token.cleanup();
});

it('a camera whose key is in a PKCS#11 token signs a stream that verifies AUTHENTIC', async () => {
  const dir = join(pki.work, 'hsm-cam');
  await provisionDevice({ ca: pki.ca, caKeyStore: pki.caStore, dir, serial: 'SN-HSM', keystore: token.spec });
  const source = readFileSync(await clip({ width: 320, height: 240, seconds: 2, gop: 30, slices: 2 }));
  const r = await verify(await signWith(dir, source), { roots: [pki.root] });
  expect(r.verdict).toBe('AUTHENTIC');
  expect(r.sessions[0]?.serial).toBe('SN-HSM');
});
