/**
 * The paper's Scheme 1 and Scheme 2 over the KMS, in-process over real mutual TLS: the KMS's PaperKms behind the
 * service, a leader camera and member cameras running PaperCameraAgent over the relay (the paper's LAN). For each
 * scheme: a distribution, a join, a leave, a KMS restart (the paper state persisted), a camera that refuses to
 * leave (still in the KMS roster) and a new leader (a new GK1, a new distribution that leaves it out). Scheme 2's
 * A1 over the network: the relay does not hand the leaver the leave's Refresh, but the paper multicasts it on
 * the cameras' LAN, and from it the departed camera computes the group's new key. INSECURE by design.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ErrorCodes } from '../../src/errors.js';
import { gskNew, openEngk } from '../../src/groupkey/paper/formulas.js';
import { encodeMessage } from '../../src/groupkey/paper/messages.js';
import type { Refresh } from '../../src/groupkey/paper/messages.js';
import { CountingPrimitives } from '../../src/groupkey/paper/ops.js';
import { bytesEqual, seededRandom } from '../../src/groupkey/paper/primitives.js';
import type { GroupKeyCamera } from '../../src/camera/group-key.js';
import type { KmsClient } from '../../src/kms/client.js';
import { loadKmsConfig } from '../../src/kms/config.js';
import { PaperCameraAgent } from '../../src/camera/paper-group-key.js';
import { startKms } from '../../src/kms/server.js';
import type { RunningKms } from '../../src/kms/server.js';
import { makeKmsSite } from './_setup.js';
import type { KmsSite } from './_setup.js';

const LEADER = 'CAM-L';
const SERIALS = [LEADER, 'CAM-A', 'CAM-B', 'CAM-C', 'CAM-D'];
let site: KmsSite;
let kms: RunningKms;
let admin: KmsClient;
const cams = new Map<string, { camera: GroupKeyCamera; close(): Promise<void> }>();
const cam = (s: string): GroupKeyCamera => (cams.get(s) as { camera: GroupKeyCamera }).camera;

async function start(): Promise<void> {
  site.writeConfig(site.port, { batchWindow: '100ms' });
  kms = await startKms(loadKmsConfig(site.configPath), { createDatabase: true });
  admin?.close();
  admin = await site.admin(kms.url);
  for (const c of cams.values()) await c.close();
  cams.clear();
  for (const s of SERIALS) cams.set(s, await site.camera(kms.url, s));
}

beforeAll(async () => {
  site = await makeKmsSite(SERIALS);
  await start();
  for (const s of SERIALS) await cam(s).enrol();
}, 240_000);

afterAll(async () => {
  for (const c of cams.values()) await c.close();
  admin?.close();
  await kms?.close();
});

const same = (a: Uint8Array | undefined, b: Uint8Array | undefined): boolean => a !== undefined && b !== undefined && bytesEqual(a, b);
const sorted = (xs: readonly string[]): string[] => [...xs].sort();
/** Each group's agents, for the last suite. */
const leaders = new Map<string, PaperCameraAgent[]>();

describe.each([1, 2] as const)('paper Scheme %i over the KMS relay', (scheme) => {
  const G = `scheme${scheme}-lobby`;
  const agents = new Map<string, PaperCameraAgent>();
  const agent = (s: string): PaperCameraAgent => agents.get(s) as PaperCameraAgent;
  const kmsKey = (): Uint8Array | undefined => kms.service.paperGroupKey(G);

  /** The KMS's key confirmed by the leader's ACK_G1, its roster = `members` with nothing pending, every one of them on that key. */
  const agreed = (members: readonly string[]): boolean => {
    const view = kms.service.show(G);
    const k = kmsKey();
    return view.ackStatus === 'confirmed' && view.pending.length === 0 && sorted(view.members).join() === sorted(members).join() && members.every((s) => same(agent(s).groupKey, k));
  };
  /** Every agent pumps its inbox until `done`. */
  const settle = (done: () => boolean, timeoutMs = 45_000): Promise<unknown> => Promise.all([...agents.values()].map((a) => a.runUntil(done, timeoutMs, 200)));
  const noRefusals = (): void => {
    for (const a of agents.values()) expect(a.refusals.map((r) => `${a.serial}: ${r.type} ${r.error.message}`)).toEqual([]);
  };

  beforeAll(async () => {
    for (const s of SERIALS) agents.set(s, new PaperCameraAgent({ client: cam(s).client, groupId: G, serial: s, K_IC: await cam(s).paperKey() }));
    leaders.set(G, [...agents.values()]);
  });

  it('distribution: the leader forms the group from the KMS requests; every camera and the KMS hold one key', async () => {
    const view = await admin.json<{ mode: string; leader: string; members: string[]; pending: { serial: string; op: string }[] }>('POST', '/v1/admin/groups', { id: G, mode: `scheme${scheme}`, leader: LEADER, members: [LEADER, 'CAM-A', 'CAM-B', 'CAM-C'] });
    expect(view).toMatchObject({ mode: `scheme${scheme}`, leader: LEADER, members: [] });
    expect(view.pending).toEqual(['CAM-A', 'CAM-B', 'CAM-C'].map((serial) => ({ serial, op: 'join' })));
    await settle(() => agreed([LEADER, 'CAM-A', 'CAM-B', 'CAM-C']));
    noRefusals();
    expect(agent(LEADER).role).toBe('leader');
    expect(agent(LEADER).lastSetup?.GK1).toHaveLength(32); // GK1 goes to the leader only
    expect(agent('CAM-A').lastSetup?.GK1).toBeNull();
    expect(agent('CAM-D').participant).toBe(false);
    expect(agent('CAM-D').groupKey).toBeUndefined();
  });

  it('a join: the operator asks, the 5th camera runs the join, the group moves to a new key', async () => {
    const before = kmsKey();
    expect(await admin.json('POST', `/v1/admin/groups/${G}/members`, { serial: 'CAM-D' })).toMatchObject({ op: 'join', epoch: null, status: 'requested' });
    await settle(() => agreed([LEADER, 'CAM-A', 'CAM-B', 'CAM-C', 'CAM-D']));
    noRefusals();
    expect(same(kmsKey(), before)).toBe(false);
    // Scheme 1: the KMS rekeys every camera (KeyDelivery); Scheme 2: the new camera's key from the KMS, a Refresh for the others
    const types = agent('CAM-A').received.map((r) => r.type);
    expect(types.at(-1)).toBe(scheme === 1 ? 'MemberKey' : 'Refresh');
    expect(agent('CAM-D').received.map((r) => r.type)).toEqual([scheme === 1 ? 'MemberKey' : 'NewMemberKey']);
  });

  it(`a leave: the camera runs it and is off the relay${scheme === 2 ? '; from the LAN multicast it still derives the new key (A1)' : ''}`, async () => {
    const before = kmsKey();
    expect(await admin.json('DELETE', `/v1/admin/groups/${G}/members/CAM-C`)).toMatchObject({ op: 'leave', status: 'requested' });
    const seen = agent('CAM-A').received.length;
    await settle(() => agreed([LEADER, 'CAM-A', 'CAM-B', 'CAM-D']) && !agent('CAM-C').participant);
    noRefusals();
    const leaver = agent('CAM-C');
    expect(leaver.hasLeft).toBe(true);
    expect(same(leaver.groupKey, before)).toBe(true); // it keeps its last key …
    expect(same(leaver.groupKey, kmsKey())).toBe(false); // … which is not the new one
    // the relay no longer serves it, and never handed it anything of the leave
    await expect(cam('CAM-C').client.call('GET', `/v1/groups/${G}/inbox?after=0`)).rejects.toMatchObject({ code: ErrorCodes.GROUPKEY_REFUSED });
    expect(leaver.received.map((r) => r.type)).toEqual(['MemberKey', scheme === 1 ? 'MemberKey' : 'Refresh']); // the distribution's key and the join's: nothing of the leave
    if (scheme === 2) {
      // the paper multicasts Refresh on the cameras' LAN: cam-A's copy is what the departed camera hears there
      const refresh = agent('CAM-A').received.slice(seen).find((r) => r.type === 'Refresh')?.message as Refresh;
      const p = new CountingPrimitives(seededRandom('attacker'));
      const stolen = leaver.groupKey as Uint8Array;
      const { r_G1, MAC_x } = openEngk(p, stolen, refresh.Engk_GSK);
      expect(same(gskNew(p, stolen, r_G1, MAC_x), kmsKey())).toBe(true); // A1: GSK_new = h(GSK ‖ r_G1 ‖ MAC_x)
    } else {
      expect(agent('CAM-A').received.slice(seen).map((r) => r.type)).toEqual(['MemberKey']); // a fresh key under each remaining K_IC
    }
  });

  it('the KMS restarts: GK1, key and roster come back from its database; a join after the restart works', async () => {
    const key = kmsKey();
    await kms.close();
    await start();
    for (const a of agents.values()) a.reconnect(cam(a.serial).client);
    expect(kms.service.show(G)).toMatchObject({ leader: LEADER, ackStatus: 'confirmed', pending: [] });
    expect(sorted(kms.service.show(G).members)).toEqual(sorted([LEADER, 'CAM-A', 'CAM-B', 'CAM-D']));
    expect(same(kmsKey(), key)).toBe(true);
    // the leader's next GroupAuth verifies under the stored GK1; Scheme 2 also hashes the stored GSK forward
    await admin.json('POST', `/v1/admin/groups/${G}/members`, { serial: 'CAM-C' });
    await settle(() => agreed([LEADER, 'CAM-A', 'CAM-B', 'CAM-C', 'CAM-D']));
    noRefusals();
    expect(same(kmsKey(), key)).toBe(false);
  });

  it('a camera that refuses to leave stays in the KMS roster with the key; only a new leader’s distribution leaves it out', async () => {
    const key = kmsKey();
    agent('CAM-B').refuseLeave = true;
    await admin.json('DELETE', `/v1/admin/groups/${G}/members/CAM-B`);
    // until the camera has seen the request and ignored it: after that nothing can move the group
    await settle(() => agent('CAM-B').leavesRefused > 0);
    const view = kms.service.show(G);
    expect(view.members).toContain('CAM-B');
    expect(view.pending).toEqual([{ serial: 'CAM-B', op: 'leave' }]);
    expect(same(agent('CAM-B').groupKey, key) && same(kmsKey(), key)).toBe(true);

    // a new leader: a new GK1 and a new distribution over the group as it stands, the camera asked to leave left out
    const led = await admin.json<{ leader: string; members: string[]; pending: { serial: string; op: string }[] }>('PUT', `/v1/admin/groups/${G}/leader`, { serial: 'CAM-A' });
    expect(led).toMatchObject({ leader: 'CAM-A', members: [] });
    expect(led.pending).toEqual(['CAM-C', 'CAM-D', LEADER].map((serial) => ({ serial, op: 'join' })));
    await settle(() => agreed(['CAM-A', LEADER, 'CAM-C', 'CAM-D']) && !agent('CAM-B').participant);
    noRefusals();
    expect(agent('CAM-A').role).toBe('leader');
    expect(agent(LEADER).role).toBe('member');
    expect(same(agent('CAM-B').groupKey, key)).toBe(true);
    expect(same(kmsKey(), key)).toBe(false);
  });

  it('an operator’s add then remove before the camera acts cancels the request', async () => {
    expect(await admin.json('POST', `/v1/admin/groups/${G}/members`, { serial: 'CAM-B' })).toMatchObject({ status: 'requested' });
    expect(await admin.json('DELETE', `/v1/admin/groups/${G}/members/CAM-B`)).toMatchObject({ status: 'applied' });
    expect(kms.service.show(G).pending).toEqual([]);
  });
});

describe('paper groups over the KMS: what the service refuses, what the paper lets through', () => {
  const lastGroupAuth = (group: string): Uint8Array => {
    const leader = kms.service.show(group).leader as string;
    const rec = [...(leaders.get(group) ?? [])].reverse().find((a) => a.serial === leader);
    const auth = rec?.sent.filter((m) => m.type === 'GroupAuth').at(-1);
    if (auth === undefined) throw new Error(`no GroupAuth of ${group}`);
    return auth.bytes;
  };

  it('a message to the KMS naming another group is refused and changes neither group', async () => {
    const s1 = kms.service.paperGroupKey('scheme1-lobby');
    const s2 = kms.service.paperGroupKey('scheme2-lobby');
    // scheme1's last GroupAuth (replayable at its own KMS: A4), posted by a camera of scheme2 into scheme2
    await expect(cam('CAM-A').client.call('POST', '/v1/groups/scheme2-lobby/messages?to=kms', lastGroupAuth('scheme1-lobby'))).rejects.toMatchObject({ code: ErrorCodes.GROUPKEY_REFUSED });
    expect(same(kms.service.paperGroupKey('scheme1-lobby'), s1) && same(kms.service.paperGroupKey('scheme2-lobby'), s2)).toBe(true);
    expect(kms.service.show('scheme1-lobby').ackStatus).toBe('confirmed');
  });

  it('in its own group a replayed GroupAuth is taken (the paper’s A4), a forged ACK_G1 fails, and the KMS keeps that verdict across a restart', async () => {
    const s2 = kms.service.paperGroupKey('scheme2-lobby');
    await cam('CAM-A').client.call('POST', '/v1/groups/scheme2-lobby/messages?to=kms', lastGroupAuth('scheme2-lobby'));
    expect(same(kms.service.paperGroupKey('scheme2-lobby'), s2)).toBe(false); // nothing in it is fresh to the KMS (R22)
    expect(kms.service.show('scheme2-lobby').ackStatus).toBe('pending');
    const forged = encodeMessage({ type: 'GroupAck', ID_G1: 'scheme2-lobby', ACK_G1: new Uint8Array(32) });
    await expect(cam('CAM-A').client.call('POST', '/v1/groups/scheme2-lobby/messages?to=kms', forged)).rejects.toMatchObject({ code: ErrorCodes.GROUPKEY_REFUSED });
    expect(kms.service.show('scheme2-lobby').ackStatus).toBe('failed');
    await kms.close();
    await start();
    expect(kms.service.show('scheme2-lobby').ackStatus).toBe('failed');
  });
});
