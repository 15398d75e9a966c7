/**
 * Acceptance: `openssl verify`, verifyCertificate() and `keyframe cert verify` reach the same verdict on every
 * scenario, and that verdict is the expected one (asserted explicitly, so agreement cannot be vacuous).
 */
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseCertificates, parseCrls } from '../../src/pki/pem.js';
import { fingerprintSha256, verifyCertificate } from '../../src/pki/verify.js';
import { buildPkiFixtures, DAY, type PkiFixtures, runCertCli } from '../helpers/pki-fixtures.js';
import { fixtureFile } from '../helpers/pki-fixtures.js';

interface Scenario {
  readonly name: string;
  readonly cert: string;
  readonly root?: string;
  readonly chain?: string;
  readonly crl?: string;
  readonly at?: (f: PkiFixtures) => Date;
  /** Pin the certificate itself (ours) / use it as the CA file (openssl). */
  readonly pinSelf?: boolean;
  readonly valid: boolean;
  readonly code?: string;
  readonly status?: string;
}

const SCENARIOS: readonly Scenario[] = [
  { name: 'genuine device', cert: 'device', root: 'root', chain: 'factory', valid: true, status: 'valid' },
  { name: 'genuine device, attacker factory copy listed first', cert: 'device', root: 'root', chain: 'factory-and-attacker', valid: true },
  { name: 'device key certified by attacker factory copy, copy as untrusted', cert: 'attacker-device', root: 'root', chain: 'attacker-factory', valid: false, code: 'BAD_SIGNATURE' },
  { name: 'device key certified by attacker factory copy, genuine chain only', cert: 'attacker-device', root: 'root', chain: 'factory', valid: false, code: 'BAD_SIGNATURE' },
  { name: 'attacker chain against the attacker root as anchor', cert: 'attacker-device', root: 'attacker-root', chain: 'attacker-factory', valid: true },
  { name: 'genuine device against the attacker root as anchor', cert: 'device', root: 'attacker-root', chain: 'factory', valid: false, code: 'BAD_SIGNATURE' },
  { name: 'leaf misused as issuer', cert: 'misused', root: 'root', chain: 'factory-and-device', valid: false, code: 'NOT_A_CA' },
  { name: 'after expiry', cert: 'device', root: 'root', chain: 'factory', at: (f) => new Date(f.device.cert.notAfter.getTime() + DAY), valid: false, code: 'EXPIRED' },
  { name: 'before issue', cert: 'device', root: 'root', chain: 'factory', at: (f) => new Date(f.device.cert.notBefore.getTime() - DAY), valid: false, code: 'NOT_YET_VALID' },
  { name: 'within validity (explicit time)', cert: 'device', root: 'root', chain: 'factory', at: (f) => new Date(f.base.getTime() + 100 * DAY), valid: true },
  { name: 'revoked device with CRL', cert: 'revoked-device', root: 'root', chain: 'factory', crl: 'crl-revoked', valid: false, code: 'REVOKED' },
  { name: 'non-revoked device with CRL', cert: 'device', root: 'root', chain: 'factory', crl: 'crl-revoked', valid: true },
  { name: 'device with empty CRL', cert: 'device', root: 'root', chain: 'factory', crl: 'crl-empty', valid: true },
  { name: 'CRL signed by a wrong key with the same issuer name', cert: 'device', root: 'root', chain: 'factory', crl: 'crl-wrong-key', valid: false, code: 'CRL_BAD_SIGNATURE' },
  { name: 'expired CRL', cert: 'device', root: 'root', chain: 'factory', crl: 'crl-expired', valid: false, code: 'CRL_EXPIRED' },
  { name: 'self-signed device, not pinned', cert: 'self-signed', root: 'root', valid: false, code: 'SELF_SIGNED', status: 'self-signed' },
  { name: 'self-signed device, pinned (openssl: as its own CA file)', cert: 'self-signed', pinSelf: true, valid: true, status: 'pinned' },
];

interface OpensslRun {
  readonly ok: boolean;
  readonly output: string;
}

function runOpenssl(args: readonly string[]): Promise<OpensslRun> {
  return new Promise((resolve, reject) => {
    execFile('openssl', ['verify', ...args], (error, stdout, stderr) => {
      const output = `${stdout}${stderr}`;
      if (error === null) resolve({ ok: true, output });
      else if (typeof error.code === 'number') resolve({ ok: false, output });
      else reject(new Error(`openssl did not run: ${error.message}`, { cause: error }));
    });
  });
}

const seconds = (d: Date): string => String(Math.floor(d.getTime() / 1000));

describe('cert verify agrees with openssl verify', () => {
  let f: PkiFixtures;
  beforeAll(async () => {
    f = await buildPkiFixtures();
  });
  afterAll(async () => {
    await f.cleanup();
  });

  const file = (name: string): string => fixtureFile(f, name);

  it.each(SCENARIOS)('$name', async (s) => {
    const at = s.at?.(f);
    const certFile = file(s.cert);

    // openssl
    const args: string[] = [];
    if (s.pinSelf === true) args.push('-CAfile', certFile);
    if (s.root !== undefined) args.push('-CAfile', file(s.root));
    if (s.chain !== undefined) args.push('-untrusted', file(s.chain));
    if (s.crl !== undefined) args.push('-crl_check', '-CRLfile', file(s.crl));
    if (at !== undefined) args.push('-attime', seconds(at));
    const ossl = await runOpenssl([...args, certFile]);

    // library
    const leaf = parseCertificates(await readFile(certFile), certFile)[0];
    if (leaf === undefined) throw new Error('no leaf');
    const load = async (name: string | undefined) => (name === undefined ? [] : parseCertificates(await readFile(file(name)), name));
    const result = await verifyCertificate(leaf, {
      roots: await load(s.root),
      intermediates: await load(s.chain),
      ...(s.crl === undefined ? {} : { crls: parseCrls(await readFile(file(s.crl)), s.crl) }),
      ...(at === undefined ? {} : { at }),
      ...(s.pinSelf === true ? { pins: [fingerprintSha256(leaf)] } : {}),
    });

    // CLI
    const cli = ['cert', 'verify', certFile, '--json'];
    if (s.root !== undefined) cli.push('--root', file(s.root));
    if (s.chain !== undefined) cli.push('--chain', file(s.chain));
    if (s.crl !== undefined) cli.push('--crl', file(s.crl));
    if (at !== undefined) cli.push('--at', at.toISOString());
    if (s.pinSelf === true) cli.push('--pin', fingerprintSha256(leaf));
    const run = await runCertCli(cli);
    const json = JSON.parse(run.stdout) as { valid: boolean; code: string | null; status: string };

    // the expected verdict, explicitly, from all three
    expect(ossl.ok, `openssl: ${ossl.output}`).toBe(s.valid);
    expect(result.valid, `ours: ${result.reason ?? ''}`).toBe(s.valid);
    expect(json.valid).toBe(s.valid);
    expect(run.code).toBe(s.valid ? 0 : 1);
    expect(run.stderr).toBe('');
    // our machine code and status
    expect(result.code).toBe(s.code);
    expect(json.code).toBe(s.code ?? null);
    if (s.status !== undefined) expect(result.status).toBe(s.status);
    if (!s.valid) expect(result.status).not.toBe('valid');
  });
});
