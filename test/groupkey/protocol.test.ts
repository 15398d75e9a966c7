/**
 * Full runs of the paper's protocol, Scheme 1 and Scheme 2: distribution, joins and leaves end with every camera
 * on the KMS's key, every check of the leader and the KMS passing, and the messages of the paper's steps on the
 * wire in order. Then the state machines' refusals.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ErrorCodes, GroupKeyError } from '../../src/errors.js';
import { ackIC, gskNew, hngk, macIC } from '../../src/groupkey/paper/formulas.js';
import { LEADER_ID, PaperGroup } from '../../src/groupkey/paper/group.js';
import type { PaperScheme } from '../../src/groupkey/paper/leader.js';
import { PaperMember } from '../../src/groupkey/paper/member.js';
import type { PaperMessageType } from '../../src/groupkey/paper/messages.js';
import { CountingPrimitives } from '../../src/groupkey/paper/ops.js';
import { aesCtrDecrypt, bytesEqual, seededRandom } from '../../src/groupkey/paper/primitives.js';

const SCHEMES: readonly PaperScheme[] = [1, 2];
const hex = (b: Uint8Array | undefined): string => (b === undefined ? 'none' : Buffer.from(b).toString('hex'));
const P = (): CountingPrimitives => new CountingPrimitives(seededRandom('test-attacker'));

function settled(g: PaperGroup): void {
  expect(g.refusals.map((r) => `${r.at}: ${r.error.message}`)).toEqual([]);
  expect(g.kms.ackStatus(g.ID_G1)).toBe('confirmed');
  expect(g.consistent()).toBe(true);
}

/** Message types of one phase, in order, with repeats counted: e.g. "MemberAuth×3 GroupAuth …". */
function flow(g: PaperGroup, phase: string): string {
  const out: string[] = [];
  let last: PaperMessageType | undefined;
  let n = 0;
  for (const r of g.wire.filter((w) => w.phase === phase)) {
    if (r.type === last) n++;
    else {
      if (last !== undefined) out.push(n > 1 ? `${last}×${n}` : last);
      last = r.type;
      n = 1;
    }
  }
  if (last !== undefined) out.push(n > 1 ? `${last}×${n}` : last);
  return out.join(' ');
}

describe.each(SCHEMES)('paper Scheme %i: full runs', (scheme) => {
  it.each([0, 1, 5])('distribution to the leader and %i cameras: every camera holds the KMS key, MAC_ICM and ACK_G1 verify', (n) => {
    const g = new PaperGroup({ scheme, members: n, seed: `dist-${scheme}-${n}` });
    g.distribute();
    settled(g);
    expect(g.kms.roster(g.ID_G1)).toEqual([LEADER_ID, ...[...g.cameras.keys()]]);
    // §4.1.1 steps 1–8 on the wire; the leader's own step-1 message and ACK stay inside the leader
    const members = n > 1 ? `×${n}` : '';
    expect(flow(g, 'distribution')).toBe(n === 0 ? 'GroupAuth KeyDelivery GroupAck' : `MemberAuth${members} GroupAuth KeyDelivery MemberKey${members} MemberAck${members} GroupAck`);
    // the leader checked MAC_ICM, the KMS checked MAC_G1 and ACK_G1 (they ran: the counters say so)
    expect(g.leader.ops.breakdown('distribution').some((o) => o.label === 'MAC_ICM')).toBe(true);
    expect(g.kms.ops.breakdown('distribution').filter((o) => o.label === 'ACK_IC')[0]?.count).toBe(n + 1);
  });

  it('joins and leaves: the key changes every time and every camera ends with the KMS key', () => {
    const g = new PaperGroup({ scheme, members: 4, seed: `jl-${scheme}` });
    g.distribute();
    settled(g);
    const seen = new Set([hex(g.kms.groupKey(g.ID_G1))]);
    const step = (what: () => void): void => {
      what();
      settled(g);
      const k = hex(g.kms.groupKey(g.ID_G1));
      expect(seen.has(k)).toBe(false);
      seen.add(k);
    };
    step(() => g.join());
    step(() => g.join('cam-new'));
    step(() => g.leave('cam-2'));
    step(() => g.leave('cam-new'));
    step(() => g.join());
    step(() => g.leave('cam-1'));
    expect(g.kms.roster(g.ID_G1)).toEqual([LEADER_ID, 'cam-3', 'cam-4', 'cam-5', 'cam-6']);
    // departed cameras keep the key they had when they left, which is not the current one
    for (const d of g.departed.values()) expect(bytesEqual(d.groupKey as Uint8Array, g.kms.groupKey(g.ID_G1) as Uint8Array)).toBe(false);
  });

  it('runs the paper steps of a join and a leave, message by message', () => {
    const g = new PaperGroup({ scheme, members: 3, seed: `steps-${scheme}` });
    g.distribute();
    g.join();
    g.leave('cam-1');
    settled(g);
    if (scheme === 1) {
      // §4.1.2 / §4.1.3: step 1–2, then "the same at step 3 in 4.1.1": every camera of the new group rekeyed
      expect(flow(g, 'join')).toBe('MemberAuth GroupAuth KeyDelivery MemberKey×4 MemberAck×4 GroupAck');
      expect(flow(g, 'leave')).toBe('MemberAuth GroupAuth KeyDelivery MemberKey×3 MemberAck×3 GroupAck');
      expect(g.sent('KeyDelivery').at(-1)?.message.EGSK.map((e) => e.ID_IC)).toEqual([LEADER_ID, 'cam-2', 'cam-3', 'cam-4']);
    } else {
      // §4.2.2 steps 1–10 / §4.2.3 steps 1–9: one multicast Refresh to the existing members
      expect(flow(g, 'join')).toBe('MemberAuth GroupAuth RefreshAuth NewMemberKey Refresh MemberAck×4 GroupAck');
      expect(flow(g, 'leave')).toBe('MemberAuth GroupAuth RefreshAuth Refresh MemberAck×3 GroupAck');
      expect(g.sent('Refresh').map((r) => r.to)).toEqual([
        ['cam-1', 'cam-2', 'cam-3'],
        ['cam-2', 'cam-3', 'cam-4'],
      ]);
      expect(g.sent('RefreshAuth').map((r) => r.message.EGSK_new?.ID_IC ?? null)).toEqual(['cam-4', null]);
    }
  });

  it('random sequences of joins and leaves keep every camera on the KMS key', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 4 }), fc.array(fc.tuple(fc.boolean(), fc.nat()), { maxLength: 8 }), fc.string({ maxLength: 6 }), (n, ops, seed) => {
        const g = new PaperGroup({ scheme, members: n, seed });
        g.distribute();
        settled(g);
        for (const [join, pick] of ops) {
          const ids = [...g.cameras.keys()];
          if (join || ids.length === 0) g.join();
          else g.leave(ids[pick % ids.length] as string);
          settled(g);
        }
      }),
      { numRuns: 25 },
    );
  });
});

describe('Scheme 2 formulas hold on the wire', () => {
  it('GSK_new = h(GSK ‖ r_G1 ‖ MAC_IC_new), Engk = E_GSK(r_G1 ‖ MAC_IC_new) under the old key, Hngk = h(GSK_new ‖ GSK ‖ ID_G1), ACKs over the new key', () => {
    const g = new PaperGroup({ scheme: 2, members: 2, seed: 'formulas' });
    g.distribute();
    const old = g.kms.groupKey(g.ID_G1) as Uint8Array;
    const nic = g.join();
    settled(g);
    const auth = g.sent('MemberAuth').at(-1)?.message;
    const groupAuth = g.sent('GroupAuth').at(-1)?.message;
    const refresh = g.sent('Refresh').at(-1)?.message;
    if (auth === undefined || groupAuth === undefined || refresh === undefined) throw new Error('missing messages');
    expect(auth.M_IC.request).toBe('join_request');
    const p = P();
    // the new camera's MAC is the explicit formula, without the request tag (Reading R4)
    expect(hex(auth.MAC_IC)).toBe(hex(macIC(p, g.ID_G1, nic.ID_IC, auth.M_IC.r_IC, g.K_IC.get(nic.ID_IC) as Uint8Array)));
    // r_G1 from Er_G1 with GK1 (the test's ground truth); the key chain follows the formula
    const r_G1 = aesCtrDecrypt(g.GK1, groupAuth.Er_G1);
    const GSK_new = gskNew(p, old, r_G1, auth.MAC_IC);
    expect(hex(g.kms.groupKey(g.ID_G1))).toBe(hex(GSK_new));
    expect(hex(aesCtrDecrypt(old, refresh.Engk_GSK))).toBe(hex(Buffer.concat([r_G1, auth.MAC_IC])));
    expect(hex(refresh.Hngk_GSK)).toBe(hex(hngk(p, GSK_new, old, g.ID_G1)));
    const acks = g.sent('MemberAck').filter((r) => r.phase === 'join');
    expect(acks).toHaveLength(3);
    for (const a of acks) expect(hex(a.message.ACK_IC)).toBe(hex(ackIC(p, g.ID_G1, a.message.ID_IC, GSK_new)));
  });
});

describe('refusals: each role acts only on what fits its state and its checks', () => {
  function refused(f: () => unknown, pattern: RegExp): void {
    try {
      f();
    } catch (e) {
      expect(e).toBeInstanceOf(GroupKeyError);
      expect((e as GroupKeyError).code).toBe(ErrorCodes.GROUPKEY_REFUSED);
      expect((e as GroupKeyError).message).toMatch(pattern);
      return;
    }
    throw new Error('not refused');
  }

  it('the KMS refuses a wrong MAC_G1, an unknown camera or group, and keeps its state', () => {
    const g = new PaperGroup({ scheme: 1, members: 2, seed: 'kms-refuse' });
    g.distribute();
    const before = hex(g.kms.groupKey(g.ID_G1));
    const ga = g.sent('GroupAuth')[0]?.message;
    if (ga === undefined) throw new Error('no GroupAuth');
    const badMac = Uint8Array.from(ga.AuthM_G1.MAC_G1);
    badMac[0] = (badMac[0] as number) ^ 1;
    refused(() => g.kms.handle({ ...ga, AuthM_G1: { ...ga.AuthM_G1, MAC_G1: badMac } }), /MAC_G1 does not verify/);
    refused(() => g.kms.handle({ ...ga, ID_G1: 'G9' }), /unknown group G9/);
    refused(() => g.kms.handle({ ...ga, AuthM_G1: { ...ga.AuthM_G1, M: ga.AuthM_G1.M.map((m, i) => (i === 1 ? { ...m, ID_IC: 'cam-x' } : m)) } }), /unknown camera cam-x/);
    refused(() => g.kms.handle({ type: 'GroupAck', ID_G1: g.ID_G1, ACK_G1: new Uint8Array(32) }), /no key is waiting/);
    refused(() => g.kms.handle({ type: 'Refresh', ID_G1: g.ID_G1, Engk_GSK: new Uint8Array(80), Hngk_GSK: new Uint8Array(32) }), /does not handle Refresh/);
    expect(hex(g.kms.groupKey(g.ID_G1))).toBe(before);
  });

  it('the leader refuses a wrong MAC_ICM or Auth_ICM, joins of members, leaves of non-members and of itself, and out-of-state messages', () => {
    for (const scheme of SCHEMES) {
      const g = new PaperGroup({ scheme, members: 2, seed: `leader-refuse-${scheme}` });
      g.distribute();
      const kd = g.sent('KeyDelivery')[0]?.message;
      if (kd === undefined) throw new Error('no KeyDelivery');
      refused(() => g.leader.handle(kd), /KeyDelivery while idle/);
      const req = (id: string, request: 'join_request' | 'leave_request'): void => {
        g.leader.handle({ type: 'MemberAuth', M_IC: { ID_G1: g.ID_G1, ID_IC: id, r_IC: new Uint8Array(32), request }, MAC_IC: new Uint8Array(32) });
      };
      refused(() => req('cam-1', 'join_request'), /already a member/);
      refused(() => req('cam-9', 'leave_request'), /cannot leave/);
      refused(() => req(LEADER_ID, 'leave_request'), /cannot leave/);
      refused(() => g.leader.handle({ type: 'MemberAck', ID_G1: g.ID_G1, ID_IC: 'cam-1', ACK_IC: new Uint8Array(32) }), /while idle/);
      // a join in flight: a forged answer from the "KMS" fails the leader's check
      req('cam-9', 'join_request');
      if (scheme === 1) refused(() => g.leader.handle({ ...kd, Auth_ICM: { ...kd.Auth_ICM } }), /MAC_ICM does not verify/);
      else refused(() => g.leader.handle({ type: 'RefreshAuth', ID_G1: g.ID_G1, Auth_ICM: new Uint8Array(32), EGSK_new: null }), /Auth_ICM does not verify/);
      refused(() => req('cam-8', 'join_request'), /while awaiting/);
    }
  });

  it('a camera refuses a refresh without a key, a new-member key it did not ask for, and anything after leaving', () => {
    const cam = new PaperMember({ ID_G1: 'G1', ID_IC: 'cam-1', K_IC: new Uint8Array(32), leader: LEADER_ID, random: seededRandom('m') });
    refused(() => cam.handle({ type: 'Refresh', ID_G1: 'G1', Engk_GSK: new Uint8Array(80), Hngk_GSK: new Uint8Array(32) }), /no group key/);
    refused(() => cam.handle({ type: 'NewMemberKey', ID_G1: 'G1', ID_IC: 'cam-1', EGSK_IC: new Uint8Array(80) }), /no join of ours is pending/);
    refused(() => cam.handle({ type: 'MemberKey', ID_G1: 'G2', ID_IC: 'cam-1', EGSK_IC: new Uint8Array(48) }), /group G2/);
    refused(() => cam.handle({ type: 'MemberKey', ID_G1: 'G1', ID_IC: 'cam-2', EGSK_IC: new Uint8Array(48) }), /camera cam-2/);
    refused(() => cam.handle({ type: 'GroupAck', ID_G1: 'G1', ACK_G1: new Uint8Array(32) }), /does not handle GroupAck/);
    cam.requestJoin();
    refused(() => cam.handle({ type: 'NewMemberKey', ID_G1: 'G1', ID_IC: 'cam-1', EGSK_IC: new Uint8Array(80) }), /does not carry our MAC_IC_new/);
    cam.requestLeave();
    refused(() => cam.requestLeave(), /already left/);
    refused(() => cam.handle({ type: 'MemberKey', ID_G1: 'G1', ID_IC: 'cam-1', EGSK_IC: new Uint8Array(48) }), /has left/);
  });

  it('undecodable bytes on the network are refused where they arrive', () => {
    const g = new PaperGroup({ scheme: 2, members: 1, seed: 'junk' });
    g.distribute();
    g.inject('attacker', ['cam-1', 'kms'], Uint8Array.of(1, 99));
    expect(g.refusals.map((r) => [r.at, r.type, r.error.code])).toEqual([
      ['cam-1', 'undecodable', ErrorCodes.GROUPKEY_MESSAGE],
      ['kms', 'undecodable', ErrorCodes.GROUPKEY_MESSAGE],
    ]);
    expect(g.consistent()).toBe(true);
  });
});
