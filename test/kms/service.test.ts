/**
 * The KMS service in-process over real mutual TLS: enrolment, a hardened group created, joined, left, refreshed,
 * batched, authenticated through its leader; its state across a restart; and what it refuses.
 */
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { Sealer } from '../../src/kms/seal.js';
import { loadKmsConfig } from '../../src/kms/config.js';
import { startKms } from '../../src/kms/server.js';
import type { RunningKms } from '../../src/kms/server.js';
import type { GroupKeyCamera } from '../../src/camera/group-key.js';
import type { KmsClient } from '../../src/kms/client.js';
import { join } from 'node:path';
import { ErrorCodes } from '../../src/errors.js';
import { runCli } from '../helpers/cli.js';
import { makeKmsSite, PIN_ENV } from './_setup.js';
import type { KmsSite } from './_setup.js';

const SERIALS = ['CAM-A', 'CAM-B', 'CAM-C', 'CAM-D'];
let site: KmsSite;
let kms: RunningKms;
let admin: KmsClient;
const cams = new Map<string, { camera: GroupKeyCamera; close(): Promise<void> }>();

async function start(extra: Record<string, unknown> = {}): Promise<void> {
  site.writeConfig(site.port, { batchWindow: '100ms', ...extra });
  kms = await startKms(loadKmsConfig(site.configPath), { refreshTickMs: 200, createDatabase: true });
  admin?.close();
  admin = await site.admin(kms.url);
  for (const c of cams.values()) await c.close();
  cams.clear();
  for (const s of SERIALS) cams.set(s, await site.camera(kms.url, s));
}
const cam = (s: string): GroupKeyCamera => (cams.get(s) as { camera: GroupKeyCamera }).camera;

beforeAll(async () => {
  site = await makeKmsSite(SERIALS);
  await start();
}, 240_000);

afterAll(async () => {
  for (const c of cams.values()) await c.close();
  admin?.close();
  await kms?.close();
});

describe('KMS service (hardened)', () => {
  it('cameras enrol, a group is created, every member syncs to the same content-key epoch', async () => {
    for (const s of SERIALS) expect(await cam(s).enrol()).toBe(1);
    const view = await admin.json<{ epoch: number; members: string[] }>('POST', '/v1/admin/groups', { id: 'lobby', members: ['CAM-A', 'CAM-B', 'CAM-C'], leader: 'CAM-A' });
    expect(view.epoch).toBe(1);
    expect(view.members).toEqual(['CAM-A', 'CAM-B', 'CAM-C']);
    for (const s of ['CAM-A', 'CAM-B', 'CAM-C']) expect((await cam(s).sync('lobby')).epoch).toBe(1);
    const keyA = await cam('CAM-A').currentContentKey('lobby');
    // a certificate administrator gets keys only through a grant, like anyone
    await admin.json('POST', '/v1/admin/grants', { certificate: 'ops', group: 'lobby', rights: ['playback'], lastMs: 100 * 365 * 86_400_000 });
    const k = await admin.json<{ camera: string; epoch: number; key: string }>('POST', '/v1/admin/content-key', { kid: Buffer.from(keyA.kid).toString('hex') });
    expect(k).toMatchObject({ camera: 'CAM-A', epoch: 1, key: Buffer.from(keyA.key).toString('hex') });
  });

  it('a join and a leave within one window make one rekey; the leaver is refused afterwards', async () => {
    const [add, remove] = await Promise.all([
      admin.json<{ epoch: number }>('POST', '/v1/admin/groups/lobby/members', { serial: 'CAM-D' }),
      admin.json<{ epoch: number }>('DELETE', '/v1/admin/groups/lobby/members/CAM-C'),
    ]);
    expect(add.epoch).toBe(2);
    expect(remove.epoch).toBe(2);
    for (const s of ['CAM-A', 'CAM-B', 'CAM-D']) expect((await cam(s).sync('lobby')).epoch).toBe(2);
    expect(await cam('CAM-C').sync('lobby')).toMatchObject({ status: 'removed', epoch: 1 });
  });

  it('the leader runs a challenge round: every member present, verified', async () => {
    const members = ['CAM-A', 'CAM-B', 'CAM-D'];
    const answering = Promise.all(['CAM-B', 'CAM-D'].map((s) => cam(s).answerChallenges('lobby', 'CAM-A', 3_000)));
    const verdict = await cam('CAM-A').authRound('lobby', members, 5_000);
    await answering;
    expect(verdict).toEqual({ verified: true, present: members, missing: [], bad: [] });
  });

  it('a non-leader cannot ask for a challenge; a non-member cannot pull; the answers say nothing specific', async () => {
    await expect(cam('CAM-B').client.call('GET', '/v1/groups/lobby/challenge')).rejects.toMatchObject({ code: ErrorCodes.GROUPKEY_REFUSED, message: 'group-key message refused' });
    await expect(cam('CAM-C').client.call('GET', '/v1/groups/lobby/bundles?after=1')).rejects.toMatchObject({ code: ErrorCodes.GROUPKEY_REFUSED, message: 'group-key message refused' });
    // a camera on an admin route, and the admin on a camera route: one generic 403
    const r1 = await cam('CAM-A').client.request('GET', '/v1/admin/status');
    const r2 = await admin.request('GET', '/v1/me');
    expect([r1.status, r2.status]).toEqual([403, 403]);
    expect(JSON.parse(r1.body.toString())).toEqual({ error: 'forbidden' });
    expect(JSON.parse(r2.body.toString())).toEqual({ error: 'forbidden' });
  });

  it('bad admin input is named, and changes nothing', async () => {
    await expect(admin.json('POST', '/v1/admin/groups', { id: 'x', members: ['NOPE'] })).rejects.toMatchObject({ code: ErrorCodes.NOT_FOUND });
    await expect(admin.json('POST', '/v1/admin/groups', { id: 'lobby' })).rejects.toMatchObject({ code: ErrorCodes.EXISTS });
    await expect(admin.json('POST', '/v1/admin/groups/lobby/members', { serial: 'CAM-A' })).rejects.toMatchObject({ code: ErrorCodes.INPUT, message: expect.stringContaining('already in lobby') as unknown });
    await expect(admin.json('DELETE', '/v1/admin/groups/lobby/members/CAM-A')).rejects.toMatchObject({ code: ErrorCodes.INPUT, message: expect.stringContaining('leads lobby') as unknown });
    await expect(admin.json('POST', '/v1/admin/groups', { id: 'y', mode: 'scheme3' })).rejects.toMatchObject({ code: ErrorCodes.INPUT });
    const view = await admin.json<{ epoch: number; members: string[] }>('GET', '/v1/admin/groups/lobby');
    expect(view).toMatchObject({ epoch: 2, members: ['CAM-A', 'CAM-B', 'CAM-D'] });
  });

  it('state survives a restart: same epoch and keys; a refresh after it reaches every member', async () => {
    const before = Buffer.from((await cam('CAM-B').currentContentKey('lobby')).key).toString('hex');
    await kms.close();
    await start();
    const view = await admin.json<{ epoch: number; members: string[] }>('GET', '/v1/admin/groups/lobby');
    expect(view).toMatchObject({ epoch: 2, members: ['CAM-A', 'CAM-B', 'CAM-D'] });
    expect(Buffer.from((await cam('CAM-B').currentContentKey('lobby')).key).toString('hex')).toBe(before);
    const r = await admin.json<{ epoch: number }>('POST', '/v1/admin/groups/lobby/refresh', { scope: 'tree' });
    expect(r.epoch).toBe(3);
    for (const s of ['CAM-A', 'CAM-B', 'CAM-D']) expect((await cam(s).sync('lobby')).epoch).toBe(3);
  });

  it('a long poll returns as soon as the epoch moves', async () => {
    // a poll that timed out would answer 'current': 'applied' shows it was woken by the refresh
    const waiting = cam('CAM-D').sync('lobby', { waitMs: 45_000 });
    await new Promise((r) => setTimeout(r, 200));
    await admin.json('POST', '/v1/admin/groups/lobby/refresh', {});
    expect(await waiting).toMatchObject({ status: 'applied', epoch: 4 });
  });

  it('a rekey being stored is invisible: the leaver is still served and the epoch is the old one until the database holds the new', async () => {
    // hold the store step open (the sealing of the new epoch's state) to look at what the KMS says meanwhile
    const sealer = (kms.service as unknown as { o: { sealer: Sealer } }).o.sealer;
    let release: () => void = () => undefined;
    const gate = new Promise<void>((r) => (release = r));
    let entered: () => void = () => undefined;
    const storing = new Promise<void>((r) => (entered = r));
    const spy = vi.spyOn(sealer, 'sealJson').mockImplementationOnce(async (...args) => {
      entered();
      await gate;
      return Sealer.prototype.sealJson.apply(sealer, args);
    });
    try {
      const epoch = (await admin.json<{ epoch: number }>('GET', '/v1/admin/groups/lobby')).epoch;
      for (const s of ['CAM-A', 'CAM-D']) expect((await cam(s).sync('lobby')).epoch).toBe(epoch);
      const leave = admin.json<{ epoch: number }>('DELETE', '/v1/admin/groups/lobby/members/CAM-D');
      await storing;
      expect(await admin.json('GET', '/v1/admin/groups/lobby')).toMatchObject({ epoch, members: ['CAM-A', 'CAM-B', 'CAM-D'] });
      expect(await cam('CAM-D').sync('lobby')).toMatchObject({ status: 'current', epoch });
      const poll = cam('CAM-A').sync('lobby', { waitMs: 45_000 });
      await new Promise((r) => setTimeout(r, 100));
      release();
      expect(await leave).toMatchObject({ epoch: epoch + 1 });
      expect(await poll).toMatchObject({ status: 'applied', epoch: epoch + 1 });
      expect(await cam('CAM-D').sync('lobby')).toMatchObject({ status: 'removed', epoch });
      // back in, for the tests that follow
      expect(await admin.json('POST', '/v1/admin/groups/lobby/members', { serial: 'CAM-D' })).toMatchObject({ epoch: epoch + 2 });
      expect(await cam('CAM-D').sync('lobby')).toMatchObject({ status: 'applied', epoch: epoch + 2 });
    } finally {
      release();
      spy.mockRestore();
    }
  });

  it('a camera that was offline for several epochs pulls them all and applies them in one go', async () => {
    const before = await cam('CAM-B').epoch('lobby');
    let latest = 0;
    for (let i = 0; i < 3; i++) latest = (await admin.json<{ epoch: number }>('POST', '/v1/admin/groups/lobby/refresh', {})).epoch;
    expect(latest - before).toBeGreaterThanOrEqual(3);
    const r = await cam('CAM-B').sync('lobby');
    expect(r).toMatchObject({ status: 'applied', epoch: latest });
    expect(Buffer.from((await cam('CAM-B').currentContentKey('lobby')).key)).not.toEqual(Buffer.alloc(16));
  });

  it('the periodic refresh runs by itself once a group\'s epoch secret is older than its refresh period', async () => {
    await admin.json('POST', '/v1/admin/groups', { id: 'timed', members: ['CAM-A', 'CAM-B'], refreshPeriodMs: 1000 });
    expect((await cam('CAM-A').sync('timed')).epoch).toBe(1);
    const r = await cam('CAM-A').sync('timed', { waitMs: 45_000 });
    expect(r).toMatchObject({ status: 'applied', epoch: 2 });
    const audit = await admin.json<{ lastRekeyAt: string; epoch: number }>('GET', '/v1/admin/groups/timed');
    expect(audit.epoch).toBeGreaterThanOrEqual(2);
  });

  it('the CLI: a new camera enrols and syncs from its device directory; the administrator adds it, names a leader, refreshes the tree', async () => {
    const dir = await site.provision('CAM-E');
    const env = { [PIN_ENV]: process.env[PIN_ENV] as string };
    const cameraArgs = ['--device', dir, '--kms-root', join(site.caDir, 'operator.pem'), '--url', kms.url];
    const adminArgs = ['--url', kms.url, '--identity', site.adminDir];
    const enrol = await runCli(['kms', 'enrol', ...cameraArgs], env);
    expect(enrol.stderr).toBe('');
    expect(enrol.stdout).toMatch(/CAM-E enrolled with the KMS \(key generation 1\)/);
    expect((await runCli(['kms', 'cameras', ...adminArgs], env)).stdout).toMatch(/CAM-E\s+generation 1/);
    const before = (await admin.json<{ epoch: number }>('GET', '/v1/admin/groups/lobby')).epoch;
    expect((await runCli(['kms', 'group', 'add', 'lobby', 'CAM-E', ...adminArgs], env)).stdout).toMatch(new RegExp(`CAM-E joined lobby: epoch ${before + 1}`));
    const sync = await runCli(['kms', 'sync', ...cameraArgs, '--group', 'lobby'], env);
    expect(sync.stdout).toMatch(new RegExp(`CAM-E lobby: epoch ${before + 1} \\(applied\\); KID [0-9a-f]{32}`));
    const leader = await runCli(['kms', 'group', 'leader', 'lobby', 'CAM-E', ...adminArgs], env);
    expect(leader.stdout).toMatch(/leader\s+CAM-E/);
    const refresh = await runCli(['kms', 'group', 'refresh', 'lobby', '--tree', ...adminArgs], env);
    expect(refresh.stdout).toBe(`lobby: epoch ${before + 2}\n`);
    const again = await runCli(['kms', 'sync', ...cameraArgs, '--group', 'lobby'], env);
    expect(again.stdout).toMatch(new RegExp(`epoch ${before + 2} \\(applied\\)`));
    // bad input: named, exit 2; an unknown group: exit 2 with the KMS's message; a camera not in a group: exit 1
    const bad = await runCli(['kms', 'group', 'create', 'x', '--degree', '3', ...adminArgs], env);
    expect([bad.code, bad.stderr]).toEqual([2, 'keyframe: KMS: degree must be one of 2, 4\n']);
    const unknown = await runCli(['kms', 'group', 'show', 'nope', ...adminArgs], env);
    expect([unknown.code, unknown.stderr]).toEqual([2, 'keyframe: KMS: no group nope\n']);
    const notMember = await runCli(['kms', 'sync', ...cameraArgs, '--group', 'timed'], env);
    expect(notMember.code).toBe(1);
    expect(notMember.stderr).toMatch(/CAM-E is not a member of timed/);
    const noIdentity = await runCli(['kms', 'status', '--url', kms.url], { ...env, KEYFRAME_KMS_ADMIN: '' });
    expect(noIdentity.code).toBe(2);
    expect(noIdentity.stderr).toMatch(/--identity/);
  });
});
