/**
 * Attacks A1–A7 of shared/notes/group-keys.md against the paper's scheme, implemented faithfully
 * (src/groupkey/paper). Every attack is a case `{ scheme, expectSuccess, run }` in a list per attack, run with
 * `describe.each`: today each list holds the paper's scheme, where the attack SUCCEEDS (the test documents the
 * flaw). The hardened mode adds its own case to each list, with its own `run` and `expectSuccess: false`.
 *
 * The attacker sees what travels on the cameras' LAN and the uplink (`PaperGroup.wire`), can put bytes on it
 * (`inject`, `tap`), and — where stated — holds one camera's state (its K_IC and last group key).
 */
import { createCipheriv } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { gskNew, hngk, engk, openEgskIC, openEngk } from '../../src/groupkey/paper/formulas.js';
import { KMS_ID, LEADER_ID, PaperGroup } from '../../src/groupkey/paper/group.js';
import { encodeMessage } from '../../src/groupkey/paper/messages.js';
import type { GroupAuth } from '../../src/groupkey/paper/messages.js';
import { CountingPrimitives } from '../../src/groupkey/paper/ops.js';
import { bytesEqual, seededRandom, xorBytes } from '../../src/groupkey/paper/primitives.js';

interface AttackOutcome {
  readonly succeeded: boolean;
  /** What happened, for the failure message. */
  readonly detail: string;
}

interface AttackCase {
  readonly scheme: string;
  readonly expectSuccess: boolean;
  readonly run: () => AttackOutcome;
}

/** The attacker's own primitives (its operations are not any role's). */
const attacker = (): CountingPrimitives => new CountingPrimitives(seededRandom('attacker'));
const hex = (b: Uint8Array | undefined): string => (b === undefined ? 'none' : Buffer.from(b).toString('hex').slice(0, 16));
const same = (a: Uint8Array | undefined, b: Uint8Array | undefined): boolean => a !== undefined && b !== undefined && bytesEqual(a, b);

function kmsKey(g: PaperGroup): Uint8Array {
  const k = g.kms.groupKey(g.ID_G1);
  if (k === undefined) throw new Error('the KMS has no key');
  return k;
}

function camera(g: PaperGroup, id: string): { groupKey: Uint8Array | undefined } {
  const c = g.cameras.get(id) ?? g.departed.get(id);
  if (c === undefined) throw new Error(`no camera ${id}`);
  return c;
}

function last<T>(xs: readonly T[], what: string): T {
  const x = xs.at(-1);
  if (x === undefined) throw new Error(`nothing recorded: ${what}`);
  return x;
}

function verdict(t: AttackCase): void {
  const o = t.run();
  expect(o.succeeded, o.detail).toBe(t.expectSuccess);
}

// ── A1 ── Scheme 2 leave: the departing camera derives the next key (no forward secrecy) ───────────────────────

/** C4 leaves; it kept its last key and records the multicast Engk: GSK_new = h(GSK ‖ D_GSK(Engk)). */
function a1Paper(): AttackOutcome {
  const g = new PaperGroup({ scheme: 2, members: 4, seed: 'A1' });
  g.distribute();
  const leaver = g.leave('cam-4');
  const p = attacker();
  const stolen = leaver.groupKey as Uint8Array; // the leaver's state before it left
  const { r_G1, MAC_x } = openEngk(p, stolen, last(g.sent('Refresh'), 'Refresh').message.Engk_GSK);
  const derived = gskNew(p, stolen, r_G1, MAC_x);
  return {
    succeeded: g.consistent() && g.refusals.length === 0 && same(derived, kmsKey(g)) && !same(stolen, kmsKey(g)),
    detail: `leave completed: ${g.consistent()}; leaver derived ${hex(derived)}, group key ${hex(kmsKey(g))}`,
  };
}

const A1: readonly AttackCase[] = [{ scheme: 'paper Scheme 2', expectSuccess: true, run: a1Paper }];

describe.each(A1)('A1 — the departing camera derives the next group key ($scheme)', (t) => {
  it(t.expectSuccess ? 'succeeds: the leaver computes GSK_new from its old key and the multicast Engk' : 'fails', () => verdict(t));
});

// ── A2 ── one compromised key yields every later Scheme 2 key (no post-compromise security) ─────────────────────

/** The attacker steals cam-1's key once, then follows 10 joins and leaves — cam-1's own eviction included. */
function a2Paper(): AttackOutcome {
  const g = new PaperGroup({ scheme: 2, members: 4, seed: 'A2' });
  g.distribute();
  const p = attacker();
  let k = camera(g, 'cam-1').groupKey as Uint8Array; // the compromise
  let seen = g.sent('Refresh').length;
  const events: (() => unknown)[] = [
    () => g.join(),
    () => g.leave('cam-1'), // the compromised camera is evicted: nothing changes for the attacker
    () => g.join(),
    () => g.leave('cam-2'),
    () => g.join(),
    () => g.join(),
    () => g.leave('cam-5'),
    () => g.leave('cam-3'),
    () => g.join(),
    () => g.leave('cam-6'),
  ];
  let tracked = 0;
  for (const event of events) {
    event();
    for (const r of g.sent('Refresh').slice(seen)) {
      const { r_G1, MAC_x } = openEngk(p, k, r.message.Engk_GSK);
      k = gskNew(p, k, r_G1, MAC_x);
    }
    seen = g.sent('Refresh').length;
    if (g.consistent() && same(k, kmsKey(g))) tracked++;
  }
  return { succeeded: tracked === events.length && g.refusals.length === 0, detail: `attacker tracked ${tracked} of ${events.length} later keys` };
}

const A2: readonly AttackCase[] = [{ scheme: 'paper Scheme 2', expectSuccess: true, run: a2Paper }];

describe.each(A2)('A2 — one compromised key yields every later key ($scheme)', (t) => {
  it(t.expectSuccess ? 'succeeds: 10 joins and leaves later, eviction of the stolen camera included, the attacker still holds the key' : 'fails', () => verdict(t));
});

// ── A3 ── a forged refresh is accepted: any key holder chooses the members' next key ────────────────────────────

/** cam-3 (any holder of GSK) multicasts its own Engk* = E_GSK(r* ‖ m*) with a matching Hngk*. */
function a3Paper(): AttackOutcome {
  const g = new PaperGroup({ scheme: 2, members: 3, seed: 'A3' });
  g.distribute();
  const p = attacker();
  const GSK = camera(g, 'cam-3').groupKey as Uint8Array;
  const r = p.random(32);
  const m = p.random(32);
  const chosen = gskNew(p, GSK, r, m);
  const forged = encodeMessage({ type: 'Refresh', ID_G1: g.ID_G1, Engk_GSK: engk(p, GSK, r, m), Hngk_GSK: hngk(p, chosen, GSK, g.ID_G1) });
  g.inject('cam-3', ['cam-1', 'cam-2'], forged);
  const victims = ['cam-1', 'cam-2'].filter((id) => same(camera(g, id).groupKey, chosen));
  const memberRefusals = g.refusals.filter((x) => x.at !== LEADER_ID);
  return {
    succeeded: victims.length === 2 && memberRefusals.length === 0 && !same(chosen, kmsKey(g)),
    detail: `members on the attacker's key: ${victims.join(', ') || 'none'}; member refusals: ${memberRefusals.map((x) => x.error.message).join('; ')}`,
  };
}

const A3: readonly AttackCase[] = [{ scheme: 'paper Scheme 2', expectSuccess: true, run: a3Paper }];

describe.each(A3)('A3 — a forged refresh is accepted ($scheme)', (t) => {
  it(t.expectSuccess ? "succeeds: every other member installs the key the forger chose (the leader's and KMS's keys differ from it)" : 'fails', () => verdict(t));
});

// ── A4 ── replay: desynchronisation (Scheme 2) and rollback (Scheme 1) ──────────────────────────────────────────

/**
 * Scheme 2: the leader's GroupAuth of a finished join is replayed to the KMS. Nothing in it is fresh to the KMS
 * (r_IC_new and r_G1 are never recorded), so it hashes its key forward again, GSK' = h(GSK_new ‖ r_G1 ‖ MAC_new),
 * and parts from the group: the next legitimate join fails at the leader's Auth_ICM check.
 */
function a4DesyncPaper(): AttackOutcome {
  const g = new PaperGroup({ scheme: 2, members: 3, seed: 'A4a' });
  g.distribute();
  g.join();
  const groupKey = kmsKey(g);
  g.inject('attacker', [KMS_ID], last(g.sent('GroupAuth'), 'GroupAuth').bytes);
  const kmsAccepted = g.refusals.every((x) => x.at !== KMS_ID);
  const desynced = !same(kmsKey(g), groupKey) && same(g.leader.groupKey, groupKey) && same(camera(g, 'cam-1').groupKey, groupKey);
  const before = g.refusals.length;
  const nic = g.join();
  const nextJoinFails = g.refusals.slice(before).some((x) => x.at === LEADER_ID && /Auth_ICM does not verify/.test(x.error.message)) && nic.groupKey === undefined;
  return {
    succeeded: kmsAccepted && desynced && nextJoinFails,
    detail: `KMS accepted the replay: ${kmsAccepted}; KMS key ≠ group key: ${desynced}; next join fails: ${nextJoinFails}`,
  };
}

/** Scheme 1: cam-2's old EGSK_IC (recorded while cam-4 was a member) is replayed after cam-4 left; cam-2 rolls back. */
function a4RollbackPaper(): AttackOutcome {
  const g = new PaperGroup({ scheme: 1, members: 4, seed: 'A4b' });
  g.distribute();
  const old = last(g.sent('MemberKey').filter((r) => r.to.includes('cam-2')), 'MemberKey to cam-2');
  const leaver = g.leave('cam-4');
  const fresh = g.consistent() && !same(camera(g, 'cam-2').groupKey, leaver.groupKey);
  g.inject('attacker', ['cam-2'], old.bytes);
  const rolledBack = same(camera(g, 'cam-2').groupKey, leaver.groupKey) && !same(camera(g, 'cam-2').groupKey, kmsKey(g));
  return {
    succeeded: fresh && rolledBack && g.refusals.every((x) => x.at !== 'cam-2'),
    detail: `after the leave cam-2 was on a fresh key: ${fresh}; after the replay cam-2 holds the key the leaver knows: ${rolledBack}`,
  };
}

const A4: readonly AttackCase[] = [
  { scheme: 'paper Scheme 2 (desynchronisation)', expectSuccess: true, run: a4DesyncPaper },
  { scheme: 'paper Scheme 1 (rollback)', expectSuccess: true, run: a4RollbackPaper },
];

describe.each(A4)('A4 — a replayed message desynchronises or rolls back ($scheme)', (t) => {
  it(t.expectSuccess ? 'succeeds' : 'fails', () => verdict(t));
});

// ── A5 ── XOR-aggregated MACs: replay, and symmetric-difference forgery ─────────────────────────────────────────

/** An old AuthM_G1 naming cam-4 is replayed after cam-4 left: the KMS takes cam-4 back and sends it the new key. */
function a5ReplayPaper(): AttackOutcome {
  const g = new PaperGroup({ scheme: 1, members: 4, seed: 'A5a' });
  g.distribute();
  const aggregate = last(g.sent('GroupAuth'), 'distribution GroupAuth');
  g.leave('cam-4');
  const evicted = g.consistent() && !g.kms.roster(g.ID_G1).includes('cam-4');
  g.inject('attacker', [KMS_ID], aggregate.bytes);
  const back = g.kms.roster(g.ID_G1).includes('cam-4');
  // the departed camera (it keeps K_IC) reads its EGSK_IC off the KMS's answer
  const answer = last(g.sent('KeyDelivery'), 'KeyDelivery').message;
  const mine = answer.EGSK.find((e) => e.ID_IC === 'cam-4');
  const got = mine === undefined ? undefined : openEgskIC(attacker(), g.K_IC.get('cam-4') as Uint8Array, mine.EGSK_IC);
  return {
    succeeded: evicted && back && same(got, kmsKey(g)) && g.refusals.every((x) => x.at !== KMS_ID),
    detail: `evicted: ${evicted}; back in the KMS roster after the replay: ${back}; evicted camera holds the KMS key: ${same(got, kmsKey(g))}`,
  };
}

/**
 * From one aggregate A_S (S = leader, cam-1…cam-4) and cam-3's tag seen on the LAN at step 1, the attacker forges
 * A_{S Δ {3}} = A_S ⊕ MAC_IC3 with the same Er_G1, after cam-3 and cam-4 have both left: the KMS accepts a group
 * with the removed cam-4 present.
 */
function a5SymmetricDifferencePaper(): AttackOutcome {
  const g = new PaperGroup({ scheme: 1, members: 4, seed: 'A5b' });
  g.distribute();
  const A = last(g.sent('GroupAuth'), 'distribution GroupAuth').message;
  const tag3 = last(g.sent('MemberAuth').filter((r) => r.from === 'cam-3'), 'cam-3 step 1').message;
  g.leave('cam-4');
  g.leave('cam-3');
  const p = attacker();
  const forged: GroupAuth = {
    type: 'GroupAuth',
    ID_G1: A.ID_G1,
    AuthM_G1: { M: A.AuthM_G1.M.filter((m) => m.ID_IC !== 'cam-3'), MAC_G1: p.xor('MAC_G1', A.AuthM_G1.MAC_G1, tag3.MAC_IC) },
    Er_G1: A.Er_G1,
  };
  g.inject('attacker', [KMS_ID], encodeMessage(forged));
  const roster = g.kms.roster(g.ID_G1);
  return {
    succeeded: g.refusals.every((x) => x.at !== KMS_ID) && roster.join() === [LEADER_ID, 'cam-1', 'cam-2', 'cam-4'].join(),
    detail: `KMS roster after the forged aggregate: ${roster.join(', ')}; KMS refusals: ${g.refusals.filter((x) => x.at === KMS_ID).map((x) => x.error.message).join('; ')}`,
  };
}

const A5: readonly AttackCase[] = [
  { scheme: 'paper, replay', expectSuccess: true, run: a5ReplayPaper },
  { scheme: 'paper, symmetric difference', expectSuccess: true, run: a5SymmetricDifferencePaper },
];

describe.each(A5)('A5 — XOR-aggregated MACs replayed or recombined ($scheme)', (t) => {
  it(t.expectSuccess ? 'succeeds: the KMS accepts a group with a removed camera present' : 'fails', () => verdict(t));
});

// ── A6 ── a bit flip in unauthenticated key transport installs a wrong key ──────────────────────────────────────

/** Flips bit `bit` of the key part (after the 16-byte IV) of the first message of `type` to `to`. */
function flipOnce(g: PaperGroup, type: 'MemberKey' | 'NewMemberKey', to: string, delta: Uint8Array): void {
  let done = false;
  g.tap = (r) => {
    if (done || r.type !== type || !r.to.includes(to)) return r.bytes;
    done = true;
    const b = Uint8Array.from(r.bytes);
    const ct = b.length - (type === 'MemberKey' ? 32 : 64); // the encrypted key starts here (message ends with IV ‖ body)
    for (let i = 0; i < 32; i++) b[ct + i] = (b[ct + i] as number) ^ (delta[i] as number);
    return b;
  };
}

/** Scheme 1 / distribution: cam-2's EGSK_IC is flipped in transit; cam-2 installs GSK ⊕ Δ without a word. */
function a6MemberKeyPaper(): AttackOutcome {
  const g = new PaperGroup({ scheme: 1, members: 3, seed: 'A6a' });
  const delta = new Uint8Array(32);
  delta[0] = 0x80;
  flipOnce(g, 'MemberKey', 'cam-2', delta);
  g.distribute();
  const installed = camera(g, 'cam-2').groupKey;
  const wrongKey = same(installed, xorBytes(kmsKey(g), delta));
  const silent = g.refusals.every((x) => x.at !== 'cam-2');
  return {
    succeeded: wrongKey && silent,
    detail: `cam-2 holds GSK ⊕ Δ: ${wrongKey}; cam-2 raised nothing: ${silent}; only the KMS's ACK check notices, without saying who: ${g.refusals.map((x) => `${x.at}: ${x.error.message}`).join('; ')}`,
  };
}

/** Scheme 2 join: the GSK half of EGSK_IC_new is flipped; the MAC half still matches, so the new camera accepts. */
function a6NewMemberKeyPaper(): AttackOutcome {
  const g = new PaperGroup({ scheme: 2, members: 3, seed: 'A6b' });
  g.distribute();
  const delta = new Uint8Array(32).fill(0x01);
  flipOnce(g, 'NewMemberKey', 'cam-4', delta);
  const nic = g.join('cam-4');
  const wrongKey = same(nic.groupKey, xorBytes(kmsKey(g), delta));
  return {
    succeeded: wrongKey && g.refusals.every((x) => x.at !== 'cam-4'),
    detail: `the new camera holds GSK_new ⊕ Δ: ${wrongKey}; refusals: ${g.refusals.map((x) => `${x.at}: ${x.error.message}`).join('; ')}`,
  };
}

const A6: readonly AttackCase[] = [
  { scheme: 'paper, EGSK_IC', expectSuccess: true, run: a6MemberKeyPaper },
  { scheme: 'paper Scheme 2, EGSK_IC_new', expectSuccess: true, run: a6NewMemberKeyPaper },
];

describe.each(A6)('A6 — a bit flip in key transport installs a wrong key ($scheme)', (t) => {
  it(t.expectSuccess ? 'succeeds' : 'fails', () => verdict(t));
});

// ── A7 ── two cameras, one traffic key and nonce ────────────────────────────────────────────────────────────────

/**
 * The paper encrypts every camera's video with the group key itself (§1, §2.2) and names no mode or nonce. As the
 * notes assume: AES-256-GCM under GSK, the nonce a per-camera frame counter from 0. Cameras A and B then encrypt
 * their first frames under one (key, nonce): C_A ⊕ C_B = P_A ⊕ P_B.
 */
function a7Paper(): AttackOutcome {
  const g = new PaperGroup({ scheme: 1, members: 2, seed: 'A7' });
  g.distribute();
  const encryptFrame = (key: Uint8Array, counter: number, frame: Uint8Array): Uint8Array => {
    const nonce = Buffer.alloc(12);
    nonce.writeUInt32BE(counter, 8);
    const c = createCipheriv('aes-256-gcm', key, nonce);
    return Buffer.concat([c.update(frame), c.final()]);
  };
  const P_A = Buffer.from('frame 0 of camera A: a parked car, plate KF-1234....');
  const P_B = Buffer.from('frame 0 of camera B: the loading bay door, closed...');
  const C_A = encryptFrame(camera(g, 'cam-1').groupKey as Uint8Array, 0, P_A);
  const C_B = encryptFrame(camera(g, 'cam-2').groupKey as Uint8Array, 0, P_B);
  const leaks = Buffer.from(xorBytes(C_A, C_B)).equals(Buffer.from(xorBytes(P_A, P_B)));
  return { succeeded: leaks, detail: `C_A ⊕ C_B = P_A ⊕ P_B: ${leaks}` };
}

const A7: readonly AttackCase[] = [{ scheme: 'paper (GSK as every camera’s traffic key)', expectSuccess: true, run: a7Paper }];

describe.each(A7)('A7 — two cameras encrypt under one key and nonce ($scheme)', (t) => {
  it(t.expectSuccess ? 'succeeds: the XOR of the ciphertexts is the XOR of the frames' : 'fails', () => verdict(t));
});

// ── what the paper's own checks do stop (so the attacks above are the ones that work) ───────────────────────────

describe("the paper's Hngk check stops what needs no key", () => {
  it('an outsider’s random Refresh, a bit flip in Engk, and a duplicate Engk are refused, keys unchanged', () => {
    const g = new PaperGroup({ scheme: 2, members: 2, seed: 'hngk' });
    g.distribute();
    const p = attacker();
    g.inject('outsider', ['cam-1', 'cam-2'], encodeMessage({ type: 'Refresh', ID_G1: g.ID_G1, Engk_GSK: p.random(80), Hngk_GSK: p.random(32) }));
    expect(g.refusals.map((r) => r.at)).toEqual(['cam-1', 'cam-2']);
    expect(g.consistent()).toBe(true);

    // a bit flip in Engk changes r_G1, and Hngk no longer verifies
    const flipEngk = new PaperGroup({ scheme: 2, members: 2, seed: 'hngk-flip' });
    flipEngk.distribute();
    flipEngk.tap = (r) => (r.type === 'Refresh' ? Uint8Array.from(r.bytes, (b, i) => (i === r.bytes.length - 40 ? b ^ 1 : b)) : r.bytes);
    flipEngk.join();
    expect(flipEngk.refusals.filter((r) => /Hngk does not verify/.test(r.error.message)).map((r) => r.at)).toEqual(['cam-1', 'cam-2']);

    // the notes' A4a (deliver the latest Engk twice): the second copy opens under the new key to garbage, and the
    // Hngk check refuses it — the Scheme 2 desync works through the KMS instead (A4 above)
    g.join();
    const before = g.refusals.length;
    const key = camera(g, 'cam-1').groupKey;
    g.inject('attacker', ['cam-1'], last(g.sent('Refresh'), 'Refresh').bytes);
    expect(g.refusals.slice(before).map((r) => [r.at, r.error.message])).toEqual([['cam-1', 'cam-1: Hngk does not verify (§4.2.2 step 8)']]);
    expect(same(camera(g, 'cam-1').groupKey, key)).toBe(true);
  });
});
