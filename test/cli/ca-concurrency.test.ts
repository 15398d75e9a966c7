/**
 * The CA under concurrent writers and repeated provisioning, through the real binary: parallel `device provision`
 * runs wait for the CA lock (bounded, CA_LOCK_WAIT_MS) instead of failing; a lock left by a dead process is taken
 * over; a serial that holds a valid certificate is not certified again unless --reissue, which revokes the old
 * certificate (superseded) in the database, the audit log and the next CRL. And `ca list` reads like the rest.
 */
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli, spawnCli } from '../helpers/cli.js';
import type { CliResult } from '../helpers/cli.js';

const PASS = 'ca concurrency passphrase';
let work: string;
const env = { KEYFRAME_KEYSTORE_PIN: PASS };
const kf = (...args: string[]): Promise<CliResult> => runCli(args, env, work);

interface DbCert {
  serialNumber: string;
  deviceSerial?: string;
  subject: string;
  revoked?: { time: string; reason: string; supersededBy?: string };
}
const certs = (): DbCert[] => (JSON.parse(readFileSync(join(work, 'ca', 'db.json'), 'utf8')) as { certificates: DbCert[] }).certificates;
const audit = (): Record<string, unknown>[] =>
  readFileSync(join(work, 'ca', 'audit.log'), 'utf8')
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as Record<string, unknown>);

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'kf-ca-conc-'));
  const r = await kf('ca', 'init', '--dir', 'ca');
  expect(r.code, r.stderr).toBe(0);
}, 240_000);
afterAll(() => rmSync(work, { recursive: true, force: true }));

describe('the CA lock', () => {
  it('five parallel device provision runs all succeed', async () => {
    const serials = ['PAR-1', 'PAR-2', 'PAR-3', 'PAR-4', 'PAR-5'];
    const runs = serials.map((s) => spawnCli(['device', 'provision', '--ca', 'ca', '--serial', s, '--out', s.toLowerCase()], env, work));
    const results = await Promise.all(runs.map((c) => c.result));
    for (const r of results) expect(r.code, r.stderr).toBe(0);
    const issued = certs().filter((c) => c.deviceSerial?.startsWith('PAR-'));
    expect(issued.map((c) => c.deviceSerial).sort()).toEqual(serials);
    expect(audit().filter((e) => e['event'] === 'device-issued' && String(e['serial']).startsWith('PAR-'))).toHaveLength(5);
  }, 240_000);

  it('a lock held by a live process is waited for, not refused', async () => {
    // another live process holds the CA lock for 1.5 s
    const sleeper = spawn('sleep', ['10']);
    const lock = join(work, 'ca', '.lock');
    writeFileSync(lock, String(sleeper.pid));
    const release = setTimeout(() => rmSync(lock, { force: true }), 1500);
    try {
      const started = Date.now();
      const r = await kf('device', 'provision', '--ca', 'ca', '--serial', 'WAIT-1', '--out', 'wait-1');
      expect(r.code, r.stderr).toBe(0);
      expect(Date.now() - started).toBeGreaterThanOrEqual(1400);
    } finally {
      clearTimeout(release);
      rmSync(lock, { force: true });
      sleeper.kill();
    }
  });

  it('a lock left by a dead process is taken over', async () => {
    const dead = Number(execFileSync(process.execPath, ['-e', 'console.log(process.pid)'], { encoding: 'utf8' }).trim());
    writeFileSync(join(work, 'ca', '.lock'), String(dead));
    const r = await kf('device', 'provision', '--ca', 'ca', '--serial', 'STALE-1', '--out', 'stale-1');
    expect(r.code, r.stderr).toBe(0);
  });
});

describe('re-provisioning a serial', () => {
  it('is refused while the serial has a valid certificate; --reissue revokes the old one (superseded)', async () => {
    expect((await kf('device', 'provision', '--ca', 'ca', '--serial', 'RE-1', '--out', 're-1')).code).toBe(0);
    const before = certs().filter((c) => c.deviceSerial === 'RE-1');
    expect(before).toHaveLength(1);
    const old = before[0] as DbCert;

    const again = await kf('device', 'provision', '--ca', 'ca', '--serial', 'RE-1', '--out', 're-1b');
    expect(again.code, again.stderr).toBe(1);
    expect(again.stderr).toBe(`keyframe: device RE-1 already has a valid certificate (serial ${old.serialNumber}): refused; --reissue issues a new one and revokes the old (reason superseded)\n`);
    expect(certs().filter((c) => c.deviceSerial === 'RE-1')).toHaveLength(1);

    const re = await kf('device', 'provision', '--ca', 'ca', '--serial', 'RE-1', '--out', 're-1b', '--reissue');
    expect(re.code, re.stderr).toBe(0);
    const after = certs().filter((c) => c.deviceSerial === 'RE-1');
    expect(after).toHaveLength(2);
    const fresh = after.find((c) => c.serialNumber !== old.serialNumber) as DbCert;
    expect(after.find((c) => c.serialNumber === old.serialNumber)?.revoked).toMatchObject({ reason: 'superseded', supersededBy: fresh.serialNumber });
    expect(fresh.revoked).toBeUndefined();
    expect(audit().find((e) => e['event'] === 'revoked' && e['certSerial'] === old.serialNumber)).toMatchObject({ reason: 'superseded', supersededBy: fresh.serialNumber, serial: 'RE-1' });

    expect((await kf('ca', 'crl', '--ca', 'ca', '--out', 'crl.pem')).code).toBe(0);
    const oldVerify = await kf('cert', 'verify', 're-1/device.pem', '--root', 'ca/root.pem', '--chain', 're-1/chain.pem', '--crl', 'crl.pem', '--json');
    expect(oldVerify.code).toBe(1);
    expect(JSON.parse(oldVerify.stdout)).toMatchObject({ valid: false, code: 'REVOKED' });
    expect(oldVerify.stdout).toContain('superseded');
    const newVerify = await kf('cert', 'verify', 're-1b/device.pem', '--root', 'ca/root.pem', '--chain', 're-1b/chain.pem', '--crl', 'crl.pem');
    expect(newVerify.code, newVerify.stdout).toBe(0);
  });

  it('ca issue refuses too, without spending the token; the same token then works with --reissue', async () => {
    expect((await kf('ca', 'token', '--ca', 'ca', '--serial', 'RE-1', '--out', 're1.token')).code).toBe(0);
    expect((await kf('device', 'init', '--device', 're-1c', '--serial', 'RE-1')).code).toBe(0);
    expect((await kf('device', 'csr', '--device', 're-1c', '--token-file', 're1.token', '--out', 're1.csr')).code).toBe(0);
    const refusedIssue = await kf('ca', 'issue', '--ca', 'ca', '--csr', 're1.csr', '--out', 're1.pem');
    expect(refusedIssue.code).toBe(1);
    expect(refusedIssue.stderr).toMatch(/^keyframe: device RE-1 already has a valid certificate/);
    const r = await kf('ca', 'issue', '--ca', 'ca', '--csr', 're1.csr', '--out', 're1.pem', '--reissue');
    expect(r.code, r.stderr).toBe(0);
    expect(certs().filter((c) => c.deviceSerial === 'RE-1' && c.revoked === undefined)).toHaveLength(1);
  });
});

describe('ca list', () => {
  it('has a header and names the serial attribute serialNumber=, like every other command', async () => {
    const r = await kf('ca', 'list', '--ca', 'ca');
    expect(r.code).toBe(0);
    const [header, ...rows] = r.stdout.trimEnd().split('\n');
    expect(header).toMatch(/^SERIAL NUMBER\s+ISSUER\s+NOT AFTER\s+STATUS\s+SUBJECT$/);
    expect(r.stdout).not.toContain('2.5.4.5=');
    expect(rows.some((l) => /serialNumber=RE-1/.test(l) && /REVOKED .*\(superseded\)/.test(l))).toBe(true);
    const json = JSON.parse((await kf('ca', 'list', '--ca', 'ca', '--json')).stdout) as DbCert[];
    expect(json.find((c) => c.deviceSerial === 'PAR-1')?.subject).toMatch(/serialNumber=PAR-1/);
  });
});
