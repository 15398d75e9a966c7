/**
 * The `keyframe` binary end to end, in child processes: the factory flow, the external-CA flow, self-signed
 * devices, revocation — and every error path: one line on stderr, a non-zero exit, and no partial output.
 */
import { execFileSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findPlaintextPrivateKeys } from '../helpers/no-plaintext-keys.js';
import { listFiles, runCli, snapshot, expectOneLineError } from '../helpers/cli.js';
import { SOFTHSM_MODULE, createTestToken } from '../helpers/softhsm.js';
import type { CliResult } from '../helpers/cli.js';

const PASS = 'cli test passphrase';
let work: string;
const env = (): NodeJS.ProcessEnv => ({ KEYFRAME_KEYSTORE_PIN: PASS });
const kf = (...args: string[]): Promise<CliResult> => runCli(args, env(), work);


function opensslVerify(...args: string[]): number {
  try {
    execFileSync('openssl', ['verify', ...args], { stdio: 'pipe' });
    return 0;
  } catch (e) {
    return (e as { status?: number }).status ?? 1;
  }
}

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'kf-cli-'));
  const init = await kf('ca', 'init', '--dir', 'ca', '--org', 'Acme');
  expect(init.code, init.stderr).toBe(0);
}, 240_000);

afterAll(() => rmSync(work, { recursive: true, force: true }));

describe('factory flow', () => {
  it('ca init → device provision → cert verify, agreeing with openssl', async () => {
    const p = await kf('device', 'provision', '--ca', 'ca', '--serial', 'CAM-1', '--out', 'cam1');
    expect(p.code, p.stderr).toBe(0);
    expect(p.stdout).toMatch(/provisioned CAM-1/);
    const v = await kf('cert', 'verify', 'cam1/device.pem', '--root', 'ca/root.pem', '--chain', 'cam1/chain.pem');
    expect(v.code, v.stderr).toBe(0);
    expect(v.stdout).toMatch(/^OK: /);
    expect(opensslVerify('-CAfile', join(work, 'ca/root.pem'), '-untrusted', join(work, 'cam1/chain.pem'), join(work, 'cam1/device.pem'))).toBe(0);
    const show = await kf('device', 'show', '--device', 'cam1');
    expect(show.stdout).toMatch(/serial +CAM-1/);
  });

  it('split factory line: ca token → device init → device csr --token-file → ca issue → device install-cert', async () => {
    expect((await kf('ca', 'token', '--ca', 'ca', '--serial', 'CAM-2', '--out', 'cam2.token')).code).toBe(0);
    expect(readFileSync(join(work, 'cam2.token'), 'utf8')).toMatch(/^kfe1\./);
    expect((await kf('device', 'init', '--device', 'cam2', '--serial', 'CAM-2')).code).toBe(0);
    expect((await kf('device', 'csr', '--device', 'cam2', '--token-file', 'cam2.token', '--out', 'cam2.csr')).code).toBe(0);
    // openssl reads our CSR and checks its self-signature (proof of possession)
    expect(execFileSync('openssl', ['req', '-in', join(work, 'cam2.csr'), '-noout', '-verify'], { stdio: 'pipe' }).length).toBeGreaterThanOrEqual(0);
    const issue = await kf('ca', 'issue', '--ca', 'ca', '--csr', 'cam2.csr', '--out', 'cam2.pem');
    expect(issue.code, issue.stderr).toBe(0);
    const inst = await kf('device', 'install-cert', '--device', 'cam2', 'cam2.pem');
    expect(inst.code, inst.stderr).toBe(0);
    expect((await kf('cert', 'verify', 'cam2/device.pem', '--root', 'ca/root.pem', '--chain', 'cam2/chain.pem')).code).toBe(0);
  });

  it('a replayed token is refused by ca issue, with one line and no output file', async () => {
    expect((await kf('device', 'init', '--device', 'cam2b', '--serial', 'CAM-2')).code).toBe(0);
    expect((await kf('device', 'csr', '--device', 'cam2b', '--token-file', 'cam2.token', '--out', 'cam2b.csr')).code).toBe(0);
    const r = await kf('ca', 'issue', '--ca', 'ca', '--csr', 'cam2b.csr', '--out', 'cam2b.pem');
    expectOneLineError(r, 1, /enrolment refused: the request is not authorised/);
    expect(snapshot(work).has('cam2b.pem')).toBe(false);
  });

  it('a CSR without a token (for an external CA) is refused by the factory CA', async () => {
    expect((await kf('device', 'csr', '--device', 'cam2b', '--out', 'plain.csr')).code).toBe(0);
    expectOneLineError(await kf('ca', 'issue', '--ca', 'ca', '--csr', 'plain.csr', '--out', 'plain.pem'), 1, /enrolment refused/);
  });

  it('self-signed: verification says identity not established unless pinned', async () => {
    expect((await kf('device', 'init', '--device', 'cam3', '--serial', 'CAM-3')).code).toBe(0);
    const s = await kf('device', 'self-sign', '--device', 'cam3');
    expect(s.code, s.stderr).toBe(0);
    const fp = /SHA-256 ([0-9a-f]{64})/.exec(s.stdout)?.[1] ?? '';
    const v = await kf('cert', 'verify', 'cam3/device.pem', '--root', 'ca/root.pem');
    expect(v.code).toBe(1);
    expect(v.stdout).toMatch(/self-signed: identity not established/);
    expect((await kf('cert', 'verify', 'cam3/device.pem', '--root', 'ca/root.pem', '--pin', fp)).code).toBe(0);
  });

  it('revoke + crl: the revoked device fails with the CRL, here and in openssl -crl_check', async () => {
    expect((await kf('device', 'provision', '--ca', 'ca', '--serial', 'CAM-4', '--out', 'cam4')).code).toBe(0);
    const rv = await kf('ca', 'revoke', '--ca', 'ca', '--serial', 'CAM-4', '--reason', 'keyCompromise');
    expect(rv.code, rv.stderr).toBe(0);
    expect((await kf('ca', 'crl', '--ca', 'ca', '--out', 'crl.pem')).code).toBe(0);
    const v = await kf('cert', 'verify', 'cam4/device.pem', '--root', 'ca/root.pem', '--chain', 'cam4/chain.pem', '--crl', 'crl.pem', '--json');
    expect(v.code).toBe(1);
    expect(JSON.parse(v.stdout)).toMatchObject({ valid: false, code: 'REVOKED' });
    expect(opensslVerify('-CAfile', join(work, 'ca/root.pem'), '-untrusted', join(work, 'cam4/chain.pem'), '-crl_check', '-CRLfile', join(work, 'crl.pem'), join(work, 'cam4/device.pem'))).not.toBe(0);
    // the other devices stay valid with the same CRL
    expect((await kf('cert', 'verify', 'cam1/device.pem', '--root', 'ca/root.pem', '--chain', 'cam1/chain.pem', '--crl', 'crl.pem')).code).toBe(0);
    const list = await kf('ca', 'list', '--ca', 'ca');
    expect(list.stdout).toMatch(/REVOKED .*CAM-4/);
  });

  it('device provision into a PKCS#11 token: the key is made in the token, sensitive and never extractable', async () => {
    const token = createTestToken();
    try {
      const p = await runCli(['device', 'provision', '--ca', 'ca', '--serial', 'CAM-HSM', '--out', 'cam-hsm', '--keystore', token.spec], { ...env(), ...token.env }, work);
      expect(p.code, p.stderr).toBe(0);
      expect(readFileSync(join(work, 'cam-hsm', 'device.json'), 'utf8')).toContain(`pkcs11:module=${SOFTHSM_MODULE};token=${token.label}`);
      expect(snapshot(join(work, 'cam-hsm')).has('keys/keystore.json')).toBe(false);
      const objects = execFileSync('pkcs11-tool', ['--module', SOFTHSM_MODULE, '--token-label', token.label, '--login', '--pin', token.pin, '--list-objects'], { env: token.env, encoding: 'utf8' });
      const priv = objects.split(/\n(?=\S)/).find((o) => o.startsWith('Private Key Object') && o.includes('label:      device'));
      expect(priv).toMatch(/Access:\s+sensitive, always sensitive, never extractable/);
      expect((await kf('cert', 'verify', 'cam-hsm/device.pem', '--root', 'ca/root.pem', '--chain', 'cam-hsm/chain.pem')).code).toBe(0);
    } finally {
      token.cleanup();
    }
  });

  it('site-cert: an operator-CA TLS identity', async () => {
    const r = await kf('ca', 'site-cert', '--ca', 'ca', '--name', 'nvr.local', '--dns', 'nvr.local', '--ip', '127.0.0.1', '--out', 'nvr');
    expect(r.code, r.stderr).toBe(0);
    expect(opensslVerify('-CAfile', join(work, 'ca/operator.pem'), '-purpose', 'sslserver', join(work, 'nvr/cert.pem'))).toBe(0);
  });

  it('no directory the CLI wrote holds an unencrypted private key', () => {
    expect(findPlaintextPrivateKeys(listFiles(work))).toEqual([]);
  });
});

describe('error paths: one line, non-zero exit, no partial output', () => {
  it('ca init into an existing directory', async () => {
    const before = snapshot(join(work, 'ca'));
    expectOneLineError(await kf('ca', 'init', '--dir', 'ca'), 1, /exists already/);
    expect(snapshot(join(work, 'ca'))).toEqual(before);
  });

  it('ca init without a passphrase leaves no directory', async () => {
    expectOneLineError(await runCli(['ca', 'init', '--dir', 'ca-nopass'], { KEYFRAME_KEYSTORE_PIN: '' }, work), 1, /KEYFRAME_KEYSTORE_PIN/);
    expect(snapshot(work).has('ca-nopass/ca.json')).toBe(false);
    expect([...snapshot(work).keys()].some((p) => p.startsWith('ca-nopass') || p.startsWith('.ca-nopass'))).toBe(false);
  });

  it('a key store spec carrying a secret is refused and not echoed', async () => {
    const r = await kf('ca', 'init', '--dir', 'ca-x', '--keystore', 'file:k;pin=hunter22');
    expectOneLineError(r, 2, /pin-env=VAR or pin-file=PATH/);
    expect(r.stderr).not.toContain('hunter22');
  });

  it('a pkcs11: key store without a PIN source is refused before the token is touched', async () => {
    const r = await kf('device', 'provision', '--ca', 'ca', '--serial', 'X-PIN', '--out', 'x-pin', '--keystore', `pkcs11:module=${SOFTHSM_MODULE};token=no-such-token`);
    expectOneLineError(r, 2, /a pkcs11: spec needs its PIN source, ;pin-env=VAR or ;pin-file=PATH/);
    expect(snapshot(work).has('x-pin/device.json')).toBe(false);
  });

  it('a PIN file readable by others is refused', async () => {
    writeFileSync(join(work, 'loose.pin'), PASS);
    chmodSync(join(work, 'loose.pin'), 0o644);
    expectOneLineError(await kf('ca', 'init', '--dir', 'ca-y', '--keystore', `file:${join(work, 'ky')};pin-file=${join(work, 'loose.pin')}`), 1, /readable by others/);
  });

  it('device provision: missing CA, wrong CA passphrase, bad serial, existing output', async () => {
    const before = snapshot(work);
    expectOneLineError(await kf('device', 'provision', '--ca', 'no-such-ca', '--serial', 'X-1', '--out', 'x1'), 2, /CA directory not found/);
    expectOneLineError(await runCli(['device', 'provision', '--ca', 'ca', '--serial', 'X-1', '--out', 'x1'], { KEYFRAME_KEYSTORE_PIN: 'wrong passphrase' }, work), 1, /authentication failed/);
    expectOneLineError(await kf('device', 'provision', '--ca', 'ca', '--serial', 'bad serial!', '--out', 'x1'), 2, /bad device serial/);
    expectOneLineError(await kf('device', 'provision', '--ca', 'ca', '--serial', 'X-1', '--out', 'cam1'), 1, /exists already/);
    const after = snapshot(work);
    // nothing written but the CA's own bookkeeping (audit log, token records)
    const changed = [...after.keys()].filter((k) => after.get(k) !== before.get(k));
    expect(changed.filter((k) => !['ca/audit.log', 'ca/db.json'].includes(k))).toEqual([]);
  });

  it('device install-cert of a certificate for another key', async () => {
    const before = snapshot(join(work, 'cam2'));
    expectOneLineError(await kf('device', 'install-cert', '--device', 'cam2', 'cam1/device.pem'), 1, /does not match the device key/);
    expect(snapshot(join(work, 'cam2'))).toEqual(before);
  });

  it('device install-cert of garbage, and of a missing file', async () => {
    writeFileSync(join(work, 'garbage.pem'), '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n');
    expectOneLineError(await kf('device', 'install-cert', '--device', 'cam2', 'garbage.pem'), 2, /malformed/);
    expectOneLineError(await kf('device', 'install-cert', '--device', 'cam2', 'missing.pem'), 2, /not found/);
  });

  it('ca revoke of an unknown serial, and with both selectors', async () => {
    expectOneLineError(await kf('ca', 'revoke', '--ca', 'ca', '--serial', 'NOPE'), 2, /no certificate issued to device NOPE/);
    expectOneLineError(await kf('ca', 'revoke', '--ca', 'ca', '--serial', 'A', '--cert-serial', '01'), 2, /exactly one of/);
    expectOneLineError(await kf('ca', 'revoke', '--ca', 'ca', '--serial', 'CAM-1', '--reason', 'because'), 2, /unknown revocation reason/);
  });

  it('ca crl with a wrong passphrase writes nothing', async () => {
    expectOneLineError(await runCli(['ca', 'crl', '--ca', 'ca', '--out', 'crl2.pem'], { KEYFRAME_KEYSTORE_PIN: 'wrong passphrase' }, work), 1, /authentication failed/);
    expect(snapshot(work).has('crl2.pem')).toBe(false);
  });

  it('usage errors: unknown command, unknown option, missing option, bad number', async () => {
    expectOneLineError(await kf('bogus'), 2, /unknown command/);
    expectOneLineError(await kf('ca', 'init', '--dir', 'z', '--nope'), 2, /unknown option/);
    expectOneLineError(await kf('device', 'provision', '--ca', 'ca'), 2, /required option/);
    expectOneLineError(await kf('ca', 'crl', '--ca', 'ca', '--out', 'c.pem', '--days', 'ten'), 2, /--days/);
    expectOneLineError(await kf('ca', 'revoke', '--ca', 'ca', '--serial', 'CAM-1', '--time', 'yesterday'), 2, /ISO 8601/);
  });

  it('--help and --version exit 0', async () => {
    expect((await kf('--help')).code).toBe(0);
    expect((await kf('--version')).stdout).toMatch(/^\d+\.\d+\.\d+/);
  });
});
