/**
 * Operator-CA identities with one purpose each, made by the CLI: `keyframe ca tsa-cert` (RFC 3161 TSA: EKU
 * timeStamping only, critical — what `openssl verify -purpose timestampsign` demands) and `keyframe ca
 * exporter-cert` (evidence exporter: keyframe's evidence-export EKU only, critical). `keyframe cert verify
 * --purpose` tells them apart from each other and from cameras and site identities.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EKU_EVIDENCE_EXPORT } from '../../src/pki/oids.js';
import { runCli } from '../helpers/cli.js';

const work = mkdtempSync(join(tmpdir(), 'kf-ids-'));
const env = { KEYFRAME_KEYSTORE_PIN: 'identities test passphrase' };
const ca = join(work, 'ca');
const operator = join(ca, 'operator.pem');

function opensslVerify(args: readonly string[]): { ok: boolean; out: string } {
  try {
    return { ok: true, out: execFileSync('openssl', ['verify', ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }) };
  } catch (e) {
    const err = e as { stdout?: string; stderr?: string };
    return { ok: false, out: `${err.stdout ?? ''}${err.stderr ?? ''}` };
  }
}

beforeAll(async () => {
  expect((await runCli(['ca', 'init', '--dir', ca], env)).code).toBe(0);
}, 240_000);

afterAll(() => rmSync(work, { recursive: true, force: true }));

describe('keyframe ca tsa-cert / exporter-cert', () => {
  it('a TSA identity: critical timeStamping EKU only; openssl accepts it for timestampsign, keyframe for timestamping', async () => {
    const r = await runCli(['ca', 'tsa-cert', '--ca', ca, '--name', 'NVR-TSA', '--out', join(work, 'tsa')], env);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^created time-stamping authority \(EKU timeStamping, critical\) CN=NVR-TSA, O=keyframe in .*tsa \(serial [0-9a-f]+, SHA-256 [0-9a-f]{64}\)\n$/);
    const text = execFileSync('openssl', ['x509', '-in', join(work, 'tsa', 'cert.pem'), '-noout', '-text'], { encoding: 'utf8' });
    expect(text).toMatch(/X509v3 Extended Key Usage: critical\n\s+Time Stamping\n/);
    expect(text).toMatch(/Issuer: CN = keyframe Operator CA/);
    expect(opensslVerify(['-purpose', 'timestampsign', '-CAfile', operator, join(work, 'tsa', 'cert.pem')]).ok).toBe(true);
    expect(JSON.parse(readFileSync(join(work, 'tsa', 'identity.json'), 'utf8'))).toMatchObject({ version: 1, kind: 'tsa', name: 'NVR-TSA', keyLabel: 'tsa', algorithm: 'ec-p256' });
    const v = await runCli(['cert', 'verify', join(work, 'tsa', 'cert.pem'), '--root', operator, '--purpose', 'timestamping']);
    expect(v.code).toBe(0);
    expect((await runCli(['cert', 'verify', join(work, 'tsa', 'cert.pem'), '--root', operator, '--purpose', 'evidence-export'])).code).toBe(1);
  });

  it('an exporter identity: the evidence-export EKU only, critical; not a TSA for either tool, not a TLS server', async () => {
    const r = await runCli(['ca', 'exporter-cert', '--ca', ca, '--name', 'J. Smith', '--out', join(work, 'smith')], env);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('created evidence exporter (EKU keyframe evidence-export, critical) CN=J. Smith, O=keyframe');
    const text = execFileSync('openssl', ['x509', '-in', join(work, 'smith', 'cert.pem'), '-noout', '-text'], { encoding: 'utf8' });
    expect(text).toContain(`X509v3 Extended Key Usage: critical\n                ${EKU_EVIDENCE_EXPORT}\n`);
    expect(opensslVerify(['-purpose', 'timestampsign', '-CAfile', operator, join(work, 'smith', 'cert.pem')])).toMatchObject({ ok: false, out: expect.stringContaining('unsuitable certificate purpose') as string });
    expect(opensslVerify(['-CAfile', operator, join(work, 'smith', 'cert.pem')]).ok).toBe(true);
    const ok = await runCli(['cert', 'verify', join(work, 'smith', 'cert.pem'), '--root', operator, '--purpose', 'evidence-export', '--json']);
    expect(ok.code).toBe(0);
    expect(JSON.parse(ok.stdout)).toMatchObject({ valid: true, chain: [{ subject: 'CN=J. Smith, O=keyframe' }, { subject: 'CN=keyframe Operator CA, O=keyframe' }] });
    for (const purpose of ['timestamping', 'tls-server', 'video-signing', 'device']) {
      const bad = await runCli(['cert', 'verify', join(work, 'smith', 'cert.pem'), '--root', operator, '--purpose', purpose]);
      expect(bad.code, purpose).toBe(1);
      expect(bad.stdout).toMatch(/code: (EXT_KEY_USAGE)/);
    }
  });

  it('cameras and site identities are not exporters or TSAs', async () => {
    expect((await runCli(['device', 'provision', '--ca', ca, '--serial', 'CAM-9', '--out', join(work, 'cam')], env)).code).toBe(0);
    expect((await runCli(['ca', 'site-cert', '--ca', ca, '--name', 'nvr.example.org', '--dns', 'nvr.example.org', '--out', join(work, 'site')], env)).code).toBe(0);
    const cam = await runCli(['cert', 'verify', join(work, 'cam', 'device.pem'), '--root', join(ca, 'root.pem'), '--chain', join(work, 'cam', 'chain.pem'), '--purpose', 'evidence-export']);
    expect(cam.code).toBe(1);
    expect(cam.stdout).toContain('missing extended key usage evidence-export');
    const site = await runCli(['cert', 'verify', join(work, 'site', 'cert.pem'), '--root', operator, '--purpose', 'timestamping']);
    expect(site.code).toBe(1);
    expect(site.stdout).toContain('missing extended key usage timeStamping');
  });

  it('usage errors exit 2 with one line, and nothing is created', async () => {
    const noName = await runCli(['ca', 'exporter-cert', '--ca', ca, '--out', join(work, 'x')], env);
    expect(noName.code).toBe(2);
    expect(noName.stderr).toMatch(/^keyframe: required option '--name <NAME>' not specified\n$/);
    const exists = await runCli(['ca', 'tsa-cert', '--ca', ca, '--name', 'again', '--out', join(work, 'tsa')], env);
    expect(exists.code).toBe(1);
    expect(exists.stderr).toMatch(/^keyframe: refusing to overwrite .*tsa: it exists already\n$/);
  });
});
