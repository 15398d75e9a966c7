/**
 * Issue 10 §2, a KMS restored from an old backup while its cameras went on: a KID is never answered with another
 * key than the one it was made for (the KID binds its key), the cameras show the KMS that it is behind — their
 * last bundle, signed by this KMS, as evidence — and the group stops with an alarm instead of forking history.
 * The operator restores the newest backup, or rebases the group: a new history above every camera's epoch, which
 * the cameras join by a new welcome, with the keys of the epochs the backup held still released as before.
 */
import { copyFileSync, existsSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ErrorCodes, GroupKeyRefusal } from '../../src/errors.js';
import type { GroupKeyCamera } from '../../src/camera/group-key.js';
import type { KmsClient } from '../../src/kms/client.js';
import { loadKmsConfig } from '../../src/kms/config.js';
import { startKms } from '../../src/kms/server.js';
import type { RunningKms } from '../../src/kms/server.js';
import { runCli } from '../helpers/cli.js';
import { makeKmsSite, PIN_ENV } from './_setup.js';
import type { KmsSite } from './_setup.js';

const CAMS = ['CAM-A', 'CAM-B', 'CAM-C'];
let site: KmsSite;
let kms: RunningKms;
let admin: KmsClient;
let db: string;
const agents = new Map<string, { camera: GroupKeyCamera; close(): Promise<void> }>();
const cam = (s: string): GroupKeyCamera => (agents.get(s) as { camera: GroupKeyCamera }).camera;
const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

async function start(create = false): Promise<void> {
  kms = await startKms(loadKmsConfig(site.configPath), { createDatabase: create });
  admin?.close();
  admin = await site.admin(kms.url);
  for (const a of agents.values()) await a.close();
  agents.clear();
  for (const s of CAMS) agents.set(s, await site.camera(kms.url, s));
}

async function stop(): Promise<void> {
  admin.close();
  await kms.close();
}

const refresh = async (): Promise<number> => (await admin.json<{ epoch: number }>('POST', '/v1/admin/groups/yard/refresh', {})).epoch;
const release = (kid: Uint8Array): Promise<{ key: string; epoch: number }> => admin.json('POST', '/v1/admin/content-key', { kid: hex(kid) });

beforeAll(async () => {
  site = await makeKmsSite(CAMS);
  site.writeConfig(site.port, { batchWindow: '50ms' });
  db = join(site.work, 'kms.sqlite');
  await start(true);
  for (const s of CAMS) await cam(s).enrol();
  await admin.json('POST', '/v1/admin/groups', { id: 'yard', members: CAMS, leader: 'CAM-A' });
  await admin.json('POST', '/v1/admin/grants', { certificate: 'ops', group: 'yard', rights: ['playback'], lastMs: 100 * 365 * 86_400_000 });
}, 240_000);

afterAll(async () => {
  for (const a of agents.values()) await a.close();
  admin?.close();
  await kms?.close();
});

describe('a KMS restored from an old backup', () => {
  it('never releases another key for a KID, stops the group on the cameras evidence, and is rebased above them', async () => {
    await refresh();
    expect(await refresh()).toBe(3);
    for (const s of CAMS) expect((await cam(s).sync('yard')).epoch).toBe(3);
    const at3 = await cam('CAM-A').currentContentKey('yard');
    // the backup, taken at epoch 3 (the KMS stopped: its database is one file)
    await stop();
    expect(existsSync(`${db}-wal`)).toBe(false);
    copyFileSync(db, `${db}.backup`);
    await start();
    for (let i = 0; i < 3; i++) await refresh();
    for (const s of CAMS) expect((await cam(s).sync('yard')).epoch).toBe(6);
    const at6 = await cam('CAM-A').currentContentKey('yard');
    expect((await release(at6.kid)).key).toBe(hex(at6.key));

    // the disaster: the database of epoch 3 is put back; the KMS starts and, before any camera asks, makes three
    // epochs of its own — other secrets under the same epoch numbers
    await stop();
    copyFileSync(`${db}.backup`, db);
    rmSync(`${db}-wal`, { force: true });
    await start();
    expect((await admin.json<{ epoch: number }>('GET', '/v1/admin/groups/yard')).epoch).toBe(3);
    for (let i = 0; i < 3; i++) await refresh();
    // a KID of epoch 6 as the cameras made it: the KMS's secret for epoch 6 is another one, and no key goes out
    await expect(release(at6.kid)).rejects.toMatchObject({ code: ErrorCodes.DIVERGED, message: expect.stringContaining('was made with another key than this KMS holds for that epoch') as unknown });
    // epoch 3 is in the backup: its key is the one the camera used
    expect((await release(at3.kid)).key).toBe(hex(at3.key));

    // a camera asks for what follows its epoch 6: its bundle of epoch 6 is not the KMS's → evidence → alarm
    await expect(cam('CAM-A').sync('yard')).rejects.toMatchObject({ code: ErrorCodes.UNAVAILABLE, message: expect.stringContaining('the KMS is behind camera CAM-A') as unknown });
    const show = await runCli(['kms', 'group', 'show', 'yard', '--url', kms.url, '--identity', site.adminDir], { [PIN_ENV]: process.env[PIN_ENV] });
    expect(show.stdout).toMatch(/ALARM .*camera CAM-A holds epoch 6 of group yard, signed by this KMS, which holds another bundle for that epoch: the KMS's state was rolled back/);
    expect(show.stdout).toMatch(/keyframe kms group rebase yard/);
    // stopped: no rekey, no camera served
    await expect(refresh()).rejects.toMatchObject({ code: ErrorCodes.UNAVAILABLE, message: expect.stringContaining('group yard is stopped') as unknown });
    await expect(cam('CAM-B').sync('yard')).rejects.toMatchObject({ code: ErrorCodes.UNAVAILABLE });
    // forged evidence (a bundle this KMS did not sign) is refused and changes nothing
    await expect(cam('CAM-C').client.call('POST', '/v1/groups/yard/evidence', new Uint8Array(300))).rejects.toThrow(GroupKeyRefusal);

    // the operator has no newer backup: a new history above the cameras' epochs
    const rebased = await runCli(['kms', 'group', 'rebase', 'yard', '--url', kms.url, '--identity', site.adminDir], { [PIN_ENV]: process.env[PIN_ENV] });
    expect(rebased.stderr).toBe('');
    expect(rebased.stdout).toMatch(/^rebased group yard: hardened.*\n +epoch +7\n/);
    for (const s of CAMS) expect(await cam(s).sync('yard')).toMatchObject({ status: 'applied', epoch: 7 });
    const at7 = await cam('CAM-C').currentContentKey('yard');
    expect((await release(at7.kid)).key).toBe(hex(at7.key));
    expect((await release(at3.kid)).key).toBe(hex(at3.key));
    // and the rebased chain passes the start-up check
    await stop();
    await start();
    expect((await admin.json<{ epoch: number; alarm?: unknown }>('GET', '/v1/admin/groups/yard'))).toMatchObject({ epoch: 7 });
    expect((await admin.json<{ alarm?: unknown }>('GET', '/v1/admin/groups/yard')).alarm).toBeUndefined();
    expect(await refresh()).toBe(8);
    for (const s of CAMS) expect((await cam(s).sync('yard')).epoch).toBe(8);
  }, 240_000);

  it('a camera ahead of the KMS (the backup was restored and nothing rekeyed since) is caught the same way', async () => {
    await stop();
    copyFileSync(db, `${db}.backup2`);
    await start();
    await refresh();
    for (const s of CAMS) expect((await cam(s).sync('yard')).epoch).toBe(9);
    await stop();
    copyFileSync(`${db}.backup2`, db);
    rmSync(`${db}-wal`, { force: true });
    await start();
    await expect(cam('CAM-B').sync('yard')).rejects.toMatchObject({ code: ErrorCodes.UNAVAILABLE, message: expect.stringContaining('the KMS is behind camera CAM-B') as unknown });
    expect((await admin.json<{ alarm?: { message: string } }>('GET', '/v1/admin/groups/yard')).alarm?.message).toMatch(/camera CAM-B holds epoch 9 of group yard, signed by this KMS, which is at epoch 8/);
  }, 240_000);
});
