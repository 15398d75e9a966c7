/**
 * Identity directories (CA, device, site) can be moved or restored elsewhere as a whole: the key store inside
 * one is recorded by a path relative to it. Reading a key store never creates one: a command pointed at a store
 * that is not there fails with one line naming it, and leaves nothing behind.
 */
import { existsSync, mkdtempSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli, snapshot } from '../helpers/cli.js';
import type { CliResult } from '../helpers/cli.js';

const PASS = 'identity dirs passphrase';
let work: string;
const kf = (...args: string[]): Promise<CliResult> => runCli(args, { KEYFRAME_KEYSTORE_PIN: PASS }, work);

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'kf-ids-'));
  expect((await kf('ca', 'init', '--dir', 'ca')).code).toBe(0);
  expect((await kf('device', 'provision', '--ca', 'ca', '--serial', 'CAM-9', '--out', 'cam9')).code).toBe(0);
  expect((await kf('ca', 'site-cert', '--ca', 'ca', '--name', 'nvr', '--out', 'nvr')).code).toBe(0);
}, 240_000);

afterAll(() => rmSync(work, { recursive: true, force: true }));

describe('identity directories', () => {
  it('record their own key store relatively, and keep working once moved (CA, device, site)', async () => {
    expect(JSON.parse(readFileSync(join(work, 'cam9', 'device.json'), 'utf8'))).toMatchObject({ keystore: 'file:keys;pin-env=KEYFRAME_KEYSTORE_PIN' });
    expect(JSON.parse(readFileSync(join(work, 'nvr', 'site.json'), 'utf8'))).toMatchObject({ keystore: 'file:keys;pin-env=KEYFRAME_KEYSTORE_PIN' });
    expect(JSON.parse(readFileSync(join(work, 'ca', 'ca.json'), 'utf8'))).toMatchObject({ keystore: 'file:keys;pin-env=KEYFRAME_KEYSTORE_PIN' });
    renameSync(join(work, 'ca'), join(work, 'ca-moved'));
    renameSync(join(work, 'cam9'), join(work, 'cam9-moved'));
    const before = snapshot(work);
    // the moved CA signs (a CRL), the moved device signs a CSR
    expect((await kf('ca', 'crl', '--ca', 'ca-moved', '--out', 'crl.pem')).code).toBe(0);
    const csr = await kf('device', 'csr', '--device', 'cam9-moved', '--out', 'cam9.csr');
    expect(csr.stderr).toBe('');
    expect(csr.code).toBe(0);
    expect(existsSync(join(work, 'ca'))).toBe(false);
    expect(existsSync(join(work, 'cam9'))).toBe(false);
    expect([...snapshot(work).keys()].filter((k) => !before.has(k)).sort()).toEqual(['cam9.csr', 'crl.pem']);
  });

  it('a --keystore naming a missing store fails with one line and creates nothing', async () => {
    const before = snapshot(work);
    const r = await kf('device', 'csr', '--device', 'cam9-moved', '--keystore', 'file:nowhere', '--out', 'x.csr');
    expect(r.code).toBe(2);
    expect(r.stderr).toBe(`keyframe: key store directory not found: ${join(work, 'nowhere')}\n`);
    expect(existsSync(join(work, 'nowhere'))).toBe(false);
    expect(snapshot(work)).toEqual(before);
  });
});
