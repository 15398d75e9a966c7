/**
 * `npm start` runs `keyframe demo`: a CA, one provisioned camera, its certificate verified; a recording signed
 * and encrypted, verified without and with the key, exported as a bundle that verifies; re-runs reuse.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.js';

const work = mkdtempSync(join(tmpdir(), 'kf-demo-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

describe('keyframe demo', () => {
  it('creates a CA and a camera, verifies it, and reuses them on a second run', async () => {
    const env = { KEYFRAME_KEYSTORE_PIN: '' };
    const first = await runCli(['demo', '--data', join(work, 'data')], env, work);
    expect(first.code, first.stderr).toBe(0);
    expect(first.stdout).toMatch(/1\. created the CA/);
    expect(first.stdout).toMatch(/2\. provisioned camera CAM-0001/);
    expect(first.stdout).toMatch(/OK: CN=keyframe camera CAM-0001, serialNumber=CAM-0001/);
    expect(statSync(join(work, 'data', 'secrets', 'keystore.pin')).mode & 0o777).toBe(0o600);
    expect(first.stdout).toMatch(/5\. recorded 5 s, signed in the camera, encrypted \(cbcs/);
    expect(first.stdout).toMatch(/without the key \(fragment records\): AUTHENTIC; with the key \(signed video, 125 frames\): AUTHENTIC/);
    expect(first.stdout).toMatch(/7\. exported an evidence bundle[^\n]*\n[^\n]*signed by CN=keyframe camera NVR-0001[^\n]*; verify: AUTHENTIC/);
    // the content key stays in memory: the secrets folder holds only the demo passphrase
    expect(readdirSync(join(work, 'data', 'secrets'))).toEqual(['keystore.pin']);
    const second = await runCli(['demo', '--data', join(work, 'data')], env, work);
    expect(second.code, second.stderr).toBe(0);
    expect(second.stdout).toMatch(/1\. CA exists/);
    expect(second.stdout).toMatch(/2\. camera exists/);
    expect(second.stdout).toMatch(/7\. exported an evidence bundle/);
    // what the demo made is what openssl accepts
    const ca = join(work, 'data', 'ca');
    const cam = join(work, 'data', 'cameras', 'CAM-0001');
    const out = execFileSync('openssl', ['verify', '-CAfile', join(ca, 'root.pem'), '-untrusted', join(cam, 'chain.pem'), '-crl_check', '-CRLfile', join(ca, 'crl.pem'), join(cam, 'device.pem')], { encoding: 'utf8' });
    expect(out.trim()).toBe(`${join(cam, 'device.pem')}: OK`);
  });
});
