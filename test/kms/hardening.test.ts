/**
 * Issue 10 §2 at the KMS: identifiers with one character set, every content-key release audited (no audit row,
 * no key), parallel enrolments of one camera serialised (never a 500), `kms init` making private state with the
 * CRL wired in, the last group authentication kept across a restart, and the client's messages saying what is
 * wrong instead of a TLS code (an untrusted KMS, a camera directory as an administrator, a self-signed camera, an
 * operator certificate that is not an administrator).
 */
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { ErrorCodes } from '../../src/errors.js';
import { KmsClient } from '../../src/kms/client.js';
import { loadKmsConfig } from '../../src/kms/config.js';
import type { KmsDb } from '../../src/kms/db.js';
import { startKms } from '../../src/kms/server.js';
import type { RunningKms } from '../../src/kms/server.js';
import { createSite } from '../../src/pki/site.js';
import { loadTlsIdentity, tlsClientOptions } from '../../src/pki/tls.js';
import { runCli } from '../helpers/cli.js';
import { makeKmsSite, PIN_ENV } from './_setup.js';
import type { KmsSite } from './_setup.js';

let site: KmsSite;
let kms: RunningKms;
const env = (): NodeJS.ProcessEnv => ({ [PIN_ENV]: process.env[PIN_ENV] });

async function start(create = false): Promise<void> {
  kms = await startKms(loadKmsConfig(site.configPath), { createDatabase: create });
}

/** Reads the database while no KMS holds it. */
function auditRows(action: string): { actor: string; detail: Record<string, unknown> }[] {
  const d = new Database(join(site.work, 'kms.sqlite'), { readonly: true });
  try {
    return d.prepare<[string], { actor: string; detail: string }>('SELECT actor, detail FROM audit WHERE action = ? ORDER BY seq').all(action).map((r) => ({ actor: r.actor, detail: JSON.parse(r.detail) as Record<string, unknown> }));
  } finally {
    d.close();
  }
}

beforeAll(async () => {
  site = await makeKmsSite(['CAM-A', 'CAM-B', 'CAM-C']);
  site.writeConfig(site.port, { batchWindow: '50ms' });
  await start(true);
}, 240_000);

afterAll(async () => {
  await kms?.close();
});

describe('KMS hardening', () => {
  it('identifiers have one character set: a group id or serial with a newline, a NUL or a slash is refused, naming the rule', async () => {
    const admin = await site.admin(kms.url);
    for (const id of ['a\nb', 'x\0y', '../etc', 'é']) {
      await expect(admin.json('POST', '/v1/admin/groups', { id, members: [] })).rejects.toMatchObject({ code: ErrorCodes.INPUT, message: expect.stringContaining('1–64 characters from A–Z a–z 0–9 . _ -') as unknown });
    }
    await expect(admin.json('POST', '/v1/admin/groups', { id: 'ok', members: ['CAM\nA'] })).rejects.toMatchObject({ code: ErrorCodes.INPUT, message: expect.stringContaining('camera serial') as unknown });
    await expect(admin.json('GET', `/v1/admin/groups/${encodeURIComponent('bad\nid')}`)).rejects.toMatchObject({ code: ErrorCodes.INPUT });
    admin.close();
  });

  it('500 parallel enrolments of one camera: each answered (serialised per camera), none with a 500', async () => {
    const identity = loadTlsIdentity(site.cameraDirs.get('CAM-A') as string);
    const client = new KmsClient(kms.url, await tlsClientOptions(identity, { roots: [site.ca.certs.operator] }), { maxSockets: 64 });
    try {
      const answers = await Promise.all(Array.from({ length: 500 }, () => client.request('POST', '/v1/enrol', {})));
      const statuses = new Map<number, number>();
      for (const a of answers) statuses.set(a.status, (statuses.get(a.status) ?? 0) + 1);
      expect(Object.fromEntries(statuses)).toEqual({ 200: 500 });
      const generations = answers.map((a) => (JSON.parse(a.body.toString()) as { generation: number }).generation).sort((x, y) => x - y);
      expect(generations).toEqual(Array.from({ length: 500 }, (_, i) => i + 1));
    } finally {
      client.close();
    }
  }, 240_000);

  it('every content-key release is audited before the key leaves; if the audit row cannot be written, no key', async () => {
    const cams = await Promise.all(['CAM-B', 'CAM-C'].map((s) => site.camera(kms.url, s)));
    for (const c of cams) await c.camera.enrol();
    const admin = await site.admin(kms.url);
    await admin.json('POST', '/v1/admin/groups', { id: 'vault', members: ['CAM-B', 'CAM-C'] });
    // no grant: no key (the generic refusal), and the refusal is audited
    await cams[0]?.camera.sync('vault');
    const k0 = await (cams[0] as (typeof cams)[0]).camera.currentContentKey('vault');
    await expect(admin.json('POST', '/v1/admin/content-key', { kid: Buffer.from(k0.kid).toString('hex') })).rejects.toMatchObject({ code: ErrorCodes.FORBIDDEN });
    await admin.json('POST', '/v1/admin/grants', { certificate: 'ops', group: 'vault', rights: ['playback'], lastMs: 100 * 365 * 86_400_000 });
    await cams[0]?.camera.sync('vault');
    const k = await (cams[0] as (typeof cams)[0]).camera.currentContentKey('vault');
    const kid = Buffer.from(k.kid).toString('hex');
    expect(await admin.json('POST', '/v1/admin/content-key', { kid })).toMatchObject({ camera: 'CAM-B', key: Buffer.from(k.key).toString('hex') });
    // the audit write fails (licence decisions are appended in batches, kms/audit-batch.ts): the answer is an
    // error and carries no key
    const db = (kms.service as unknown as { o: { db: KmsDb } }).o.db;
    const spy = vi.spyOn(db.auditLog, 'appendMany').mockImplementation(() => {
      throw new Error('disk I/O error');
    });
    try {
      const r = await admin.request('POST', '/v1/admin/content-key', { kid });
      expect(r.status).toBe(500);
      expect(r.body.toString()).not.toContain(Buffer.from(k.key).toString('hex'));
    } finally {
      spy.mockRestore();
    }
    admin.close();
    for (const c of cams) await c.close();
    await kms.close();
    const decisions = [...auditRows('licence-denied'), ...auditRows('licence')].map((r) => ({ actor: r.actor, keys: (r.detail['keys'] as Record<string, unknown>[]).map((k) => ({ kid: k['kid'], decision: k['decision'], group: k['group'], camera: k['camera'], epoch: k['epoch'] })) }));
    expect(decisions).toEqual([
      { actor: 'admin:ops', keys: [{ kid, decision: 'denied', group: 'vault', camera: 'CAM-B', epoch: 1 }] },
      { actor: 'admin:ops', keys: [{ kid, decision: 'released', group: 'vault', camera: 'CAM-B', epoch: 1 }] },
    ]);
    await start();
  });

  it('the last group authentication is kept across a restart and shown by group show', async () => {
    const cams = await Promise.all(['CAM-B', 'CAM-C'].map((s) => site.camera(kms.url, s)));
    const admin = await site.admin(kms.url);
    await admin.json('PUT', '/v1/admin/groups/vault/leader', { serial: 'CAM-B' });
    for (const c of cams) await c.camera.sync('vault');
    const answering = cams[1]?.camera.answerChallenges('vault', 'CAM-B', 5_000);
    expect(await cams[0]?.camera.authRound('vault', ['CAM-B', 'CAM-C'], 10_000)).toMatchObject({ verified: true });
    await answering;
    admin.close();
    for (const c of cams) await c.close();
    await kms.close();
    await start();
    const show = await runCli(['kms', 'group', 'show', 'vault', '--url', kms.url, '--identity', site.adminDir], env());
    expect(show.stderr).toBe('');
    expect(show.stdout).toMatch(/last auth +\S+ epoch \d+: verified; present 2, missing 0/);
  });

  it('client messages say what is wrong: an untrusted KMS, a camera directory as administrator, a self-signed camera, a non-administrator', async () => {
    const cam = site.cameraDirs.get('CAM-C') as string;
    // --kms-root that is not the KMS's operator CA (the manufacturer root)
    const wrongRoot = await runCli(['kms', 'enrol', '--device', cam, '--kms-root', join(site.caDir, 'root.pem'), '--url', kms.url, '--state', join(site.work, 'wr')], env());
    expect(wrongRoot.code).toBe(1);
    expect(wrongRoot.stderr).toMatch(new RegExp(`^keyframe: the KMS at ${kms.url.replace(/[.]/g, '\\.')} is not trusted: its certificate does not chain to --kms-root ${join(site.caDir, 'root.pem')} \\(\\w+\\)`));
    // a camera directory given as the administrator identity
    const asAdmin = await runCli(['kms', 'status', '--url', kms.url, '--identity', cam], env());
    expect(asAdmin.code).toBe(2);
    expect(asAdmin.stderr).toBe(`keyframe: ${cam} is a camera (device) identity: administering the KMS needs its administrator identity, an operator-CA client identity (kms init makes DIR/admin)\n`);
    // a self-signed device enrolling
    const self = join(site.work, 'self');
    expect((await runCli(['device', 'init', '--device', self, '--serial', 'CAM-SELF', '--keystore', site.spec(join(self, 'keys'))], env())).code).toBe(0);
    expect((await runCli(['device', 'self-sign', '--device', self], env())).code).toBe(0);
    const enrol = await runCli(['kms', 'enrol', '--device', self, '--kms-root', join(site.caDir, 'operator.pem'), '--url', kms.url], env());
    expect(enrol.code).toBe(1);
    expect(enrol.stderr).toMatch(/^keyframe: the KMS at \S+ refused camera CAM-SELF's certificate in the TLS handshake \(\S+\): a camera needs a certificate from the factory CA the KMS trusts/);
    // an operator-CA client identity whose name is not listed under "admins"
    const intruder = join(site.work, 'intruder');
    const caStore = await site.ca.openKeyStore();
    await createSite({ out: intruder, ca: site.ca, caKeyStore: caStore, name: 'intruder', altNames: ['intruder'], clientAuth: true, keystore: site.spec(join(intruder, 'keys')) });
    await caStore.close();
    const notAdmin = await runCli(['kms', 'status', '--url', kms.url, '--identity', intruder], env());
    expect(notAdmin.code).toBe(1);
    expect(notAdmin.stderr).toBe(`keyframe: the KMS does not accept administrator identity ${intruder} as an administrator: its certificate must come from the KMS's operator CA and its common name be listed under "admins" in kms.json\n`);
  });
});

describe('keyframe kms init', () => {
  it('makes the directory 0700, kms.json and the database 0600, wires the CA CRL in (issued when missing), and checks --ip', async () => {
    const env = (): NodeJS.ProcessEnv => ({ [PIN_ENV]: process.env[PIN_ENV], KEYFRAME_KEYSTORE_PIN: process.env[PIN_ENV] });
    const dir = join(site.work, 'new-kms');
    const bad = await runCli(['kms', 'init', '--ca', site.caDir, '--dir', dir, '--ip', 'not-an-ip'], env());
    expect([bad.code, bad.stderr]).toEqual([2, 'keyframe: --ip "not-an-ip" is not an IPv4 or IPv6 address (a host name goes in --name)\n']);
    const r = await runCli(['kms', 'init', '--ca', site.caDir, '--dir', dir, '--ip', '127.0.0.1', '--ip', '::1'], env());
    expect(r.stderr).toBe('');
    expect(r.stdout).toMatch(/CRLs .*crl\.pem \(issued now, valid 7 days: renew with keyframe ca crl/);
    expect(statSync(dir).mode & 0o777).toBe(0o700);
    expect(statSync(join(dir, 'kms.json')).mode & 0o777).toBe(0o600);
    expect(statSync(join(dir, 'kms.sqlite')).mode & 0o777).toBe(0o600);
    const config = JSON.parse(readFileSync(join(dir, 'kms.json'), 'utf8')) as { trust: { crls: string[] }; listen: { host: string } };
    expect(config.trust.crls).toEqual([join('..', 'ca', 'crl.pem')]);
    expect(config.listen.host).toBe('127.0.0.1');
    expect(loadKmsConfig(join(dir, 'kms.json')).trust.crls).toEqual([join(site.caDir, 'crl.pem')]);
    // a second init over it is refused and changes nothing
    const again = await runCli(['kms', 'init', '--ca', site.caDir, '--dir', dir], env());
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/exists already: kms init makes a new KMS/);
  });
});
