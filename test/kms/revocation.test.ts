/**
 * Issue 10 §2, revocation at a running KMS (a real `keyframe kms serve` process): the CRL file is watched; a
 * camera revoked while the KMS runs is refused from then on, connected or not, and removed from its group by a
 * forward-secure rekey, logged; an older CRL put back is refused as a rollback; a CRL about to expire is warned
 * about, an expired one is logged as what locks everyone out, and a fresh one lets them back in.
 */
import { copyFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ErrorCodes } from '../../src/errors.js';
import type { GroupKeyCamera } from '../../src/camera/group-key.js';
import type { KmsClient } from '../../src/kms/client.js';
import { issueAllCrls, parseRevocationReason, revoke } from '../../src/pki/ca.js';
import { startService } from '../helpers/service.js';
import type { ServiceProcess } from '../helpers/service.js';
import { makeKmsSite, PIN_ENV } from './_setup.js';
import type { KmsSite } from './_setup.js';

let site: KmsSite;
let kms: ServiceProcess;
let admin: KmsClient;
let crlFile: string;
const agents = new Map<string, { camera: GroupKeyCamera; close(): Promise<void> }>();
const cam = (s: string): GroupKeyCamera => (agents.get(s) as { camera: GroupKeyCamera }).camera;
const events = (event: string): Record<string, unknown>[] => kms.lines().filter((l) => l.event === event);

async function publishCrl(options: { days?: number; now?: Date } = {}): Promise<string> {
  const store = await site.ca.openKeyStore();
  try {
    const pem = await issueAllCrls(site.ca, store, options);
    writeFileSync(crlFile, pem);
    return pem;
  } finally {
    await store.close();
  }
}

async function until(what: string, ok: () => boolean | Promise<boolean>, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await ok())) {
    if (Date.now() > deadline) throw new Error(`not within ${timeoutMs} ms: ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

beforeAll(async () => {
  site = await makeKmsSite(['CAM-A', 'CAM-B', 'CAM-C']);
  crlFile = join(site.work, 'crl.pem');
  await publishCrl({ days: 30 });
  site.writeConfig(site.port, { batchWindow: '100ms', crlCheck: '200ms', trust: { root: 'ca/root.pem', factory: 'ca/factory.pem', operator: 'ca/operator.pem', crls: ['crl.pem'] } });
  kms = await startService(['kms', 'serve', '--config', site.configPath, '--new-database'], { [PIN_ENV]: process.env[PIN_ENV] });
  admin = await site.admin(kms.url);
  for (const s of ['CAM-A', 'CAM-B', 'CAM-C']) {
    agents.set(s, await site.camera(kms.url, s));
    await cam(s).enrol();
  }
  await admin.json('POST', '/v1/admin/groups', { id: 'lobby', members: ['CAM-A', 'CAM-B', 'CAM-C'], leader: 'CAM-B' });
  for (const s of ['CAM-A', 'CAM-B', 'CAM-C']) await cam(s).sync('lobby');
}, 240_000);

afterAll(async () => {
  for (const a of agents.values()) await a.close();
  admin?.close();
  await kms?.stop();
});

describe('CRLs at a running KMS', () => {
  it('a camera revoked while the KMS runs: refused on its open connection and on new ones, and removed from its group (forward-secure rekey)', async () => {
    const before = (await admin.json<{ epoch: number }>('GET', '/v1/admin/groups/lobby')).epoch;
    await revoke(site.ca, { deviceSerial: 'CAM-B', reason: parseRevocationReason('keyCompromise') });
    const saved = join(site.work, 'crl-before.pem');
    copyFileSync(crlFile, saved);
    await publishCrl({ days: 30 });
    await until('the KMS applied the new CRL', () => events('crl-reloaded').length > 0);
    // the leader was revoked: another member leads, the leaver is out after one rekey
    await until('CAM-B left lobby', async () => !(await admin.json<{ members: string[] }>('GET', '/v1/admin/groups/lobby')).members.includes('CAM-B'));
    const view = await admin.json<{ epoch: number; members: string[]; leader: string }>('GET', '/v1/admin/groups/lobby');
    expect(view).toMatchObject({ epoch: before + 1, members: ['CAM-A', 'CAM-C'], leader: 'CAM-A' });
    expect(events('camera-revoked')).toEqual([expect.objectContaining({ serial: 'CAM-B', group: 'lobby' })]);
    // its kept-alive connection and a new one alike
    await expect(cam('CAM-B').client.call('GET', '/v1/me')).rejects.toMatchObject({ code: ErrorCodes.FORBIDDEN });
    const fresh = await site.camera(kms.url, 'CAM-B');
    await expect(fresh.camera.client.call('GET', '/v1/me')).rejects.toMatchObject({ code: ErrorCodes.FORBIDDEN });
    await fresh.close();
    // the others follow the new epoch; the revoked camera cannot
    for (const s of ['CAM-A', 'CAM-C']) expect((await cam(s).sync('lobby')).epoch).toBe(before + 1);

    // the old CRL put back (an attacker who can write the file): refused as a rollback, the revocation stays
    copyFileSync(saved, crlFile);
    await until('the rollback was refused', () => events('crl-refused').length > 0);
    expect(String(events('crl-refused')[0]?.['error'])).toMatch(/older than the one in use .* refused as a rollback/);
    await expect(cam('CAM-B').client.call('GET', '/v1/me')).rejects.toMatchObject({ code: ErrorCodes.FORBIDDEN });
  });

  it('a CRL close to its nextUpdate is warned about with the command that renews it; an expired one is logged as locking everyone out, and a fresh one lets them back in', async () => {
    await publishCrl({ days: 1 }); // less than a day left at once: "renew soon"
    await until('the warning', () => events('crl-expiring').length > 0);
    expect(String(events('crl-expiring')[0]?.['msg'])).toMatch(/expires at .*renew it: keyframe ca crl --ca <CA directory> --out /);
    // a CRL whose nextUpdate has passed (issued two days ago for one day)
    await publishCrl({ days: 1, now: new Date(Date.now() - 2 * 86_400_000) });
    await until('the expiry error', () => events('crl-expired').length > 0);
    expect(String(events('crl-expired')[0]?.['msg'])).toMatch(/expired at .*: every peer under it is refused until a fresh CRL is published/);
    const fresh = await site.camera(kms.url, 'CAM-A');
    await expect(fresh.camera.client.call('GET', '/v1/me')).rejects.toMatchObject({ code: ErrorCodes.FORBIDDEN });
    await fresh.close();
    await publishCrl({ days: 30 });
    await until('a fresh CRL lets the camera in again', async () => {
      const again = await site.camera(kms.url, 'CAM-A');
      try {
        await again.camera.client.call('GET', '/v1/me');
        return true;
      } catch {
        return false;
      } finally {
        await again.close();
      }
    });
    const status = await admin.json<{ crls: { issuer: string; state: string }[] }>('GET', '/v1/admin/status');
    expect(status.crls.map((c) => c.state)).toEqual(['current', 'current', 'current']);
  });
});
