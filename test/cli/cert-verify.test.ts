import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fingerprintSha256 } from '../../src/pki/verify.js';
import { buildPkiFixtures, DAY, NAMES, type PkiFixtures, runCertCli } from '../helpers/pki-fixtures.js';
import { fixtureFile } from '../helpers/pki-fixtures.js';

let f: PkiFixtures;
beforeAll(async () => {
  f = await buildPkiFixtures();
});
afterAll(async () => {
  await f.cleanup();
});

const file = (name: string): string => fixtureFile(f, name);
const genuineArgs = (): string[] => ['cert', 'verify', file('device'), '--root', file('root'), '--chain', file('factory')];

/** Exactly one line on stderr, `keyframe: …`, nothing on stdout, exit 2. */
function expectOneLineError(run: { code: number; stdout: string; stderr: string }, pattern: RegExp): void {
  expect(run.code).toBe(2);
  expect(run.stdout).toBe('');
  expect(run.stderr.endsWith('\n')).toBe(true);
  expect(run.stderr.trimEnd().split('\n')).toHaveLength(1);
  expect(run.stderr).toMatch(/^keyframe: /);
  expect(run.stderr).toMatch(pattern);
}

describe('keyframe cert verify: exit codes and output', () => {
  it('exit 0 and an OK line with the chain for the genuine device', async () => {
    const run = await runCertCli(genuineArgs());
    expect(run.code).toBe(0);
    expect(run.stderr).toBe('');
    const [first, ...rest] = run.stdout.split('\n');
    expect(first).toBe(`OK: ${NAMES.device} (chain: keyframe camera SN1 ← keyframe Factory CA 1 ← keyframe Manufacturer Root CA)`);
    expect(rest.join('\n')).toContain(fingerprintSha256(f.device.cert));
  });

  it('takes the chain from the CERT file too, and DER input', async () => {
    const bundle = join(f.dir, 'bundle.pem');
    await writeFile(bundle, `${f.device.cert.toString('pem')}\n${f.factory.cert.toString('pem')}\n`);
    expect((await runCertCli(['cert', 'verify', bundle, '--root', file('root')])).code).toBe(0);
    const der = join(f.dir, 'device.der');
    await writeFile(der, new Uint8Array(f.device.cert.rawData));
    expect((await runCertCli(['cert', 'verify', der, '--root', file('root'), '--chain', file('factory')])).code).toBe(0);
  });

  it('exit 1 and an INVALID line for a certificate from a look-alike CA', async () => {
    const run = await runCertCli(['cert', 'verify', file('attacker-device'), '--root', file('root'), '--chain', file('attacker-factory')]);
    expect(run.code).toBe(1);
    expect(run.stderr).toBe('');
    expect(run.stdout.split('\n')[0]).toMatch(/^INVALID: signature of ".*" does not verify with issuer ".*"$/);
    expect(run.stdout).toContain('code: BAD_SIGNATURE');
  });

  it('exit 1 after expiry with --at, exit 0 within validity', async () => {
    const late = new Date(f.device.cert.notAfter.getTime() + DAY).toISOString();
    const run = await runCertCli([...genuineArgs(), '--at', late]);
    expect(run.code).toBe(1);
    expect(run.stdout).toMatch(/^INVALID: certificate ".*" expired at /);
    const mid = new Date(f.base.getTime() + 100 * DAY).toISOString().replace('Z', '+00:00');
    expect((await runCertCli([...genuineArgs(), '--at', mid])).code).toBe(0);
  });

  it('--json prints {valid,status,reason,code,chain,at,revokedLater}', async () => {
    const ok = await runCertCli([...genuineArgs(), '--json']);
    expect(ok.code).toBe(0);
    const json = JSON.parse(ok.stdout) as Record<string, unknown>;
    expect(Object.keys(json)).toEqual(['valid', 'status', 'reason', 'code', 'chain', 'at', 'revokedLater']);
    expect(json).toMatchObject({ valid: true, status: 'valid', reason: null, code: null, revokedLater: null });
    expect(json['chain']).toHaveLength(3);
    expect(Object.keys((json['chain'] as object[])[0] ?? {})).toEqual(['subject', 'issuer', 'serialNumber', 'notBefore', 'notAfter', 'sha256']);
    expect(Number.isNaN(Date.parse(String(json['at'])))).toBe(false);

    const at = new Date(f.revokedAt.getTime() - 60_000).toISOString();
    const later = await runCertCli(['cert', 'verify', file('revoked-device'), '--root', file('root'), '--chain', file('factory'), '--crl', file('crl-revoked'), '--at', at, '--json']);
    expect(later.code).toBe(0);
    expect(JSON.parse(later.stdout)).toMatchObject({ valid: true, at, revokedLater: f.revokedAt.toISOString() });

    const bad = await runCertCli(['cert', 'verify', file('revoked-device'), '--root', file('root'), '--chain', file('factory'), '--crl', file('crl-revoked'), '--json']);
    expect(bad.code).toBe(1);
    expect(JSON.parse(bad.stdout)).toMatchObject({ valid: false, status: 'invalid', code: 'REVOKED', revokedLater: null });
  });

  it('pins: no --root needed, colons and case ignored; a self-signed cert without pin is invalid', async () => {
    const fp = fingerprintSha256(f.selfSigned.cert);
    const pin = (fp.toUpperCase().match(/../g) ?? []).join(':');
    const run = await runCertCli(['cert', 'verify', file('self-signed'), '--pin', pin]);
    expect(run.code).toBe(0);
    expect(run.stdout.split('\n')[0]).toBe(`OK: ${NAMES.selfSigned} (pinned sha256 ${fp})`);
    const unpinned = await runCertCli(['cert', 'verify', file('self-signed'), '--root', file('root')]);
    expect(unpinned.code).toBe(1);
    expect(unpinned.stdout.split('\n')[0]).toBe('INVALID: self-signed: identity not established');
  });

  it('--purpose selects the check', async () => {
    expect((await runCertCli([...genuineArgs(), '--purpose', 'video-signing'])).code).toBe(0);
    expect((await runCertCli([...genuineArgs(), '--purpose', 'tls-server'])).code).toBe(0);
    expect((await runCertCli(['cert', 'verify', file('misused'), '--root', file('root'), '--chain', file('factory-and-device'), '--purpose', 'any'])).code).toBe(1);
  });
});

describe('keyframe cert verify: one-line errors, exit 2', () => {
  it('missing CERT file', async () => {
    expectOneLineError(await runCertCli(['cert', 'verify', join(f.dir, 'nope.pem'), '--root', file('root')]), /not found: .*nope\.pem/);
  });

  it('missing root file', async () => {
    expectOneLineError(await runCertCli(['cert', 'verify', file('device'), '--root', join(f.dir, 'no-root.pem')]), /not found/);
  });

  it('garbage PEM', async () => {
    expectOneLineError(await runCertCli(['cert', 'verify', file('garbage'), '--root', file('root')]), /garbage\.pem/);
  });

  it('a file without any certificate', async () => {
    expectOneLineError(await runCertCli(['cert', 'verify', file('crl-empty'), '--root', file('root')]), /no certificate found/);
  });

  it('bad --at', async () => {
    for (const at of ['yesterday', '2030-13-45', '2030-01-01T00:00:00', '1700000000']) {
      expectOneLineError(await runCertCli([...genuineArgs(), '--at', at]), /--at/);
    }
  });

  it('no --root and no --pin', async () => {
    expectOneLineError(await runCertCli(['cert', 'verify', file('device')]), /--root/);
  });

  it('bad --pin and bad --purpose', async () => {
    expectOneLineError(await runCertCli([...genuineArgs(), '--pin', 'zz']), /--pin/);
    expectOneLineError(await runCertCli([...genuineArgs(), '--purpose', 'toaster']), /--purpose/);
  });

  it('missing CERT argument and unknown option (commander)', async () => {
    expectOneLineError(await runCertCli(['cert', 'verify', '--root', file('root')]), /argument/);
    expectOneLineError(await runCertCli([...genuineArgs(), '--bogus']), /unknown option/);
  });
});

describe('keyframe cert verify through src/cli/main.ts', () => {
  it('is registered in the real program: exit 0, exit 1, and one-line errors', async () => {
    const { main } = await import('../../src/cli/main.js');
    const { Writable } = await import('node:stream');
    const sink = () => {
      const s = Object.assign(new Writable({ write: (c: Buffer, _e, done) => ((s.text += c.toString()), done()) }), { text: '' });
      return s;
    };
    const ok = { stdout: sink(), stderr: sink() };
    expect(await main(genuineArgs(), ok)).toBe(0);
    expect(ok.stdout.text).toMatch(/^OK: /);
    const bad = { stdout: sink(), stderr: sink() };
    expect(await main(['cert', 'verify', file('attacker-device'), '--root', file('root'), '--chain', file('attacker-factory')], bad)).toBe(1);
    expect(bad.stdout.text).toMatch(/^INVALID: /);
    const err = { stdout: sink(), stderr: sink() };
    expect(await main([...genuineArgs(), '--at', 'soon'], err)).toBe(2);
    expect(err.stdout.text).toBe('');
    expect(err.stderr.text.trimEnd().split('\n')).toHaveLength(1);
  });
});
