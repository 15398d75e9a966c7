/**
 * Without keyframe's OpenSSL configuration (node started plainly, as bin/keyframe.js is), the TLS helper has
 * OpenSSL find the pkcs11 engine by id in $OPENSSL_ENGINES: two PKCS#11 identities both connect, and nothing is
 * printed on stderr (loaded by path, libp11 printed "bad engine id" and Node allowed it once per process).
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
  let stderrText = '';
  const out = await new Promise<string>((resolvePromise, reject) => {
    execFile(process.execPath, [join(REPO, 'test/fixtures/tls-fallback.mjs'), work], { env: { ...token.env, KF_TEST_FB_PIN: 'fallback passphrase' }, timeout: 120_000 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${err.message}\n${stderr}`));
      else {
        stderrText = stderr;
        resolvePromise(stdout);
      }
    });
  });
  const result = JSON.parse(out.trim().split('\n').pop() ?? '{}') as { engine: string; answers: string[]; second: string };
  expect(result.engine).toBe('pkcs11');
  expect(result.answers).toEqual(['hello HSM-A', 'hello HSM-A', 'hello HSM-A']);
  expect(result.second).toBe('hello HSM-B');
  expect(stderrText).not.toMatch(/bad engine id/);
});
