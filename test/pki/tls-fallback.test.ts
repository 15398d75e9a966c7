/**
 * Without keyframe's OpenSSL configuration, Node 20 loads the pkcs11 engine by path once per process: the TLS
 * helper builds one client context per identity and reuses it for every connection, and refuses a second
 * PKCS#11 identity with a clear error instead of OpenSSL's "engine routines::init failed".
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { initCa } from '../../src/pki/ca.js';
import { CaStore } from '../../src/pki/ca-store.js';
import { provisionDevice } from '../../src/pki/device.js';
import { createSite } from '../../src/pki/site.js';
import { REPO } from '../helpers/cli.js';
import { createTestToken } from '../helpers/softhsm.js';

const work = mkdtempSync(join(tmpdir(), 'kf-tls-fb-'));
const token = createTestToken();
afterAll(() => {
  token.cleanup();
  rmSync(work, { recursive: true, force: true });
});

it('one engine load by path: the client context is cached and reused; a second token identity is refused clearly', async () => {
  process.env['KF_TEST_FB_PIN'] = 'fallback passphrase';
  const spec = (d: string): string => `file:${join(work, d, 'keys')};pin-env=KF_TEST_FB_PIN`;
  await initCa({ dir: join(work, 'ca'), keystore: spec('ca') });
  const ca = await CaStore.open(join(work, 'ca'));
  const caStore = await ca.openKeyStore();
  await createSite({ out: join(work, 'nvr'), ca, caKeyStore: caStore, name: 'localhost', altNames: ['localhost', '127.0.0.1'], keystore: spec('nvr') });
  await provisionDevice({ ca, caKeyStore: caStore, dir: join(work, 'cam-hsm'), serial: 'HSM-A', keystore: token.spec, keyLabel: 'a' });
  await provisionDevice({ ca, caKeyStore: caStore, dir: join(work, 'cam-hsm2'), serial: 'HSM-B', keystore: token.spec, keyLabel: 'b' });
  await caStore.close();
  const out = await new Promise<string>((resolvePromise, reject) => {
    execFile(process.execPath, [join(REPO, 'test/fixtures/tls-fallback.mjs'), work], { env: { ...token.env, KF_TEST_FB_PIN: 'fallback passphrase' }, timeout: 30_000 }, (err, stdout, stderr) =>
      err ? reject(new Error(`${err.message}\n${stderr}`)) : resolvePromise(stdout),
    );
  });
  const result = JSON.parse(out.trim().split('\n').pop() ?? '{}') as { engine: string; answers: string[]; second: string };
  expect(result.engine).toMatch(/\/pkcs11\.so$/);
  expect(result.answers).toEqual(['hello HSM-A', 'hello HSM-A', 'hello HSM-A']);
  expect(result.second).toMatch(/^KF_ERR_TLS: .*--openssl-config/);
});
