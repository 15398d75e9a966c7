/**
 * `npm start` runs `keyframe demo`: a CA, one provisioned camera, its certificate verified; a recording signed
 * and encrypted under the camera's group content key from a KMS, verified without and with the key, the KID
 * resolved by the KMS, exported as a bundle that verifies; re-runs reuse (the group is refreshed).
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
    expect(first.stdout).toMatch(/5\. group keys: KMS at https:\/\/127\.0\.0\.1:\d+/);
    expect(first.stdout).toMatch(/CAM-0001 enrolled \(key generation 1\)/);
    expect(first.stdout).toMatch(/group demo created, epoch 1/);
    const kid = /content key of epoch 1: KID ([0-9a-f]{32})/.exec(first.stdout)?.[1];
    expect(kid).toBeDefined();
    expect(first.stdout).toMatch(new RegExp(`6\\. recorded 5 s, signed in the camera, encrypted \\(cbcs, KID ${kid ?? ''}`));
    expect(first.stdout).toMatch(new RegExp(`KID ${kid ?? ''}: the KMS names camera CAM-0001, epoch 1; key matches`));
    expect(first.stdout).toMatch(/without the key \(fragment records\): AUTHENTIC; with the key \(signed video, 125 frames\): AUTHENTIC/);
    // the site's TSA time-stamps every record (session, 5 fragments, end); the exporter is an operator-CA identity
    expect(first.stdout).toMatch(/created the TSA NVR-TSA\s+\$ keyframe ca tsa-cert/);
    expect(first.stdout).toMatch(/created an evidence exporter\s+\$ keyframe ca exporter-cert/);
    expect(first.stdout).toMatch(/7 records time-stamped as they were written by TSA NVR-TSA \(RFC 3161\)/);
    expect(first.stdout).toMatch(/proven time: the whole recording existed by \d{4}-\d\d-\d\dT/);
    expect(first.stdout).toMatch(/8\. exported an evidence bundle[^\n]*--tsa [^\n]*\n[^\n]*signed by CN=keyframe demo operator, O=keyframe \(issuer CN=keyframe Operator CA, O=keyframe\), signature time-stamped; verify: AUTHENTIC/);
    // the content key stays in memory: the secrets folder holds only the demo passphrase
    expect(readdirSync(join(work, 'data', 'secrets'))).toEqual(['keystore.pin']);
    const second = await runCli(['demo', '--data', join(work, 'data')], env, work);
    expect(second.code, second.stderr).toBe(0);
    expect(second.stdout).toMatch(/1\. CA exists/);
    expect(second.stdout).toMatch(/2\. camera exists/);
    expect(second.stdout).toMatch(/group demo refreshed, epoch 2/);
    expect(second.stdout).toMatch(/KMS names camera CAM-0001, epoch 2; key matches/);
    expect(second.stdout).toMatch(/8\. exported an evidence bundle/);
    // what the demo made is what openssl accepts
    const ca = join(work, 'data', 'ca');
    const cam = join(work, 'data', 'cameras', 'CAM-0001');
    const out = execFileSync('openssl', ['verify', '-CAfile', join(ca, 'root.pem'), '-untrusted', join(cam, 'chain.pem'), '-crl_check', '-CRLfile', join(ca, 'crl.pem'), join(cam, 'device.pem')], { encoding: 'utf8' });
    expect(out.trim()).toBe(`${join(cam, 'device.pem')}: OK`);
  }, 180_000); // two whole demos: ~8 s idle, ~15 s with busy CPUs; headroom for a loaded CI machine
});
