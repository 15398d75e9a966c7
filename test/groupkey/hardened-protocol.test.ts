/**
 * Hardened mode, whole runs: distribution, joins, leaves, batches, refreshes, catch-up by pull, restarts (camera
 * and KMS state exported to JSON and imported), group authentication with blame, and content keys. After every
 * step every online camera holds the KMS's current epoch and epoch secret, and exactly its path keys. Then the
 * refusals: every one is the same generic error, and leaves the camera's state unchanged.
 */
import { createCipheriv } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { ErrorCodes, GroupKeyError, GroupKeyRefusal, GROUPKEY_REFUSED_MESSAGE } from '../../src/errors.js';
import { decodeAggregate, decodeChallenge, encodeAggregate } from '../../src/groupkey/hardened/auth.js';
import { decodeBundle, encodeBundle, REASON } from '../../src/groupkey/hardened/bundle.js';
import { contentKey, contentKid, parseKid } from '../../src/groupkey/hardened/content.js';
import { HardenedGroup, KMS_ID } from '../../src/groupkey/hardened/group.js';
import { bytesEqual, deriveSubkeys, toHex } from '../../src/groupkey/hardened/kdf.js';
import { HardenedKms, kmsMember } from '../../src/groupkey/hardened/kms.js';
import type { KmsState } from '../../src/groupkey/hardened/kms.js';
import { HardenedMember } from '../../src/groupkey/hardened/member.js';
import type { MemberState } from '../../src/groupkey/hardened/member.js';
import { ancestorOf, nodeId } from '../../src/groupkey/hardened/nodes.js';
import type { Degree } from '../../src/groupkey/hardened/nodes.js';
import { ed25519KeyPair, ed25519Signer } from '../../src/groupkey/hardened/signature.js';
import type { ContentKey } from '../../src/packager/package.js';
import { seededRandom } from '../../src/groupkey/paper/primitives.js';

const DEGREES: readonly Degree[] = [2, 4];
const hex = (b: Uint8Array | undefined): string => (b === undefined ? 'none' : toHex(b));

/** Every online camera on the KMS's epoch and secret, holding exactly its path keys; no refusals. */
function settled(g: HardenedGroup): void {
  expect(g.refusals.map((r) => `${r.at}: ${(r.error as GroupKeyRefusal).auditReason ?? r.error.message}`)).toEqual([]);
  expect(g.consistent()).toBe(true);
  pathsExact(g);
}

function pathsExact(g: HardenedGroup): void {
  const nodes = g.kms.nodeKeys();
  for (const [id, m] of g.cameras) {
    if (g.offline.has(id)) continue;
    const held = m.heldKeys().slice(1); // [0] is the leaf key
    expect(held.map((k) => k.node)).toEqual(g.kms.pathOf(id));
    for (const k of held) expect(hex(k.key), `${id} node ${k.node}`).toBe(hex(nodes.get(k.node)));
  }
}

function refusedGenerically(f: () => unknown): GroupKeyRefusal {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(GroupKeyRefusal);
    expect((e as GroupKeyRefusal).code).toBe(ErrorCodes.GROUPKEY_REFUSED);
    expect((e as GroupKeyRefusal).message).toBe(GROUPKEY_REFUSED_MESSAGE);
    return e as GroupKeyRefusal;
  }
  throw new Error('not refused');
}

describe.each(DEGREES)('hardened group, degree %i', (degree) => {
  it('distributes the genesis bundle to 1, 7 and 30 cameras: one signed bundle, every camera on epoch 1', async () => {
    for (const n of [1, 7, 30]) {
      const g = await HardenedGroup.create({ members: n, degree, seed: `dist-${n}` });
      settled(g);
      expect(g.kms.epoch).toBe(1);
      expect(g.cameras.size).toBe(n);
      const b = decodeBundle(g.rekeys[0]?.bundle as Uint8Array).bundle;
      expect(b.reason).toBe(REASON.genesis);
      // every edge of the tree once: n leaf wraps plus one per non-root interior node
      expect(b.wraps.length).toBe(n + g.kms.nodeKeys().size - 1);
      expect(g.wire.filter((r) => r.type === 'bundle').map((r) => `${r.from}→${r.to.length}`)).toEqual(n === 1 ? [`${KMS_ID}→1`, 'cam-0→0'] : [`${KMS_ID}→1`, `cam-0→${n - 1}`]);
    }
  });

  it('join: the joiner gets its path by one welcome and the broadcast bundle; the path is rekeyed, nothing older reaches it', async () => {
    const g = await HardenedGroup.create({ members: 6, degree, seed: 'join' });
    const before = g.kms.epochSecret() as Uint8Array;
    const r = await g.join('cam-new');
    settled(g);
    expect(r.reason).toBe(REASON.join);
    expect(r.joined.get('cam-new')).toBe(6);
    const joiner = g.cameras.get('cam-new') as HardenedMember;
    expect(joiner.epoch).toBe(2);
    // every key of the joiner's path is fresh: none equals any key the KMS held before the join
    for (const k of joiner.heldKeys().slice(1)) expect(bytesEqual(k.key, before)).toBe(false);
    // the bundle re-keys exactly the joiner's path: one wrap per non-empty child of each path node
    const b = decodeBundle(r.bundle).bundle;
    expect([...new Set(b.wraps.map((w) => w.target))]).toEqual(g.kms.pathOf('cam-new'));
    expect(g.wire.filter((x) => x.type === 'welcome').map((x) => x.to[0])).toEqual(['cam-0', 'cam-1', 'cam-2', 'cam-3', 'cam-4', 'cam-5', 'cam-new']);
  });

  it('leave: the leaver is off the roster, its whole path is rekeyed, no wrap is addressed to its leaf', async () => {
    const g = await HardenedGroup.create({ members: 9, degree, seed: 'leave' });
    const path = g.kms.pathOf('cam-4');
    const old = g.kms.nodeKeys();
    const r = await g.leave('cam-4');
    settled(g);
    expect(r.reason).toBe(REASON.leave);
    expect(g.kms.roster()).not.toContain('cam-4');
    const now = g.kms.nodeKeys();
    for (const id of path) expect(hex(now.get(id))).not.toBe(hex(old.get(id)));
    const b = decodeBundle(r.bundle).bundle;
    expect(b.wraps.some((w) => w.recipient === nodeId(0, 4))).toBe(false);
    // d·h − 1 at most (the leaver's parent loses one child)
    expect(r.wraps).toBeLessThanOrEqual(degree * g.kms.height - 1);
    expect(() => g.kms.bundlesSince(0, 'cam-4')).toThrow(GroupKeyRefusal);
  });

  it('batch: joins and leaves in one window make ONE bundle, fewer wraps than one rekey each', async () => {
    const one = await HardenedGroup.create({ members: 20, degree, seed: 'batch' });
    const each = await HardenedGroup.create({ members: 20, degree, seed: 'batch' });
    const r = await one.rekey({ joins: ['a', 'b', 'c'], leaves: ['cam-3', 'cam-4', 'cam-17'] });
    settled(one);
    expect(one.rekeys).toHaveLength(2);
    expect(r.epoch).toBe(2);
    expect(r.reason).toBe(REASON.join | REASON.leave);
    let separate = 0;
    for (const id of ['cam-3', 'cam-4', 'cam-17']) separate += (await each.leave(id)).wraps;
    for (const id of ['a', 'b', 'c']) separate += (await each.join(id)).wraps;
    settled(each);
    expect(each.kms.epoch).toBe(7);
    expect(r.wraps).toBeLessThan(separate);
    // the joiners took the leavers' slots, lowest first
    expect([...r.joined.values()]).toEqual([3, 4, 17]);
    expect(one.kms.roster()).toEqual(each.kms.roster());
  });

  it('grows a level when full, keeping every slot and node id; a refresh rekeys only the root (≤ d wraps) or the whole tree', async () => {
    const g = await HardenedGroup.create({ members: degree, degree, seed: 'grow' });
    expect(g.kms.height).toBe(1);
    await g.rekey({ joins: 2 });
    expect(g.kms.height).toBe(2);
    settled(g);
    const r = await g.refresh();
    settled(g);
    expect(r.reason).toBe(REASON.refresh);
    expect(decodeBundle(r.bundle).bundle.wraps.every((w) => w.target === nodeId(2, 0))).toBe(true);
    expect(r.wraps).toBeLessThanOrEqual(degree);
    const before = g.kms.nodeKeys();
    const full = await g.refresh('tree');
    settled(g);
    const after = g.kms.nodeKeys();
    expect([...after.keys()]).toEqual([...before.keys()]);
    for (const [id, k] of after) expect(hex(k)).not.toBe(hex(before.get(id)));
    expect(full.wraps).toBe(degree + 2 + after.size - 1);
  });

  it('an offline camera keeps its keys, gets "gap" for a later bundle, pulls what it missed and catches up', async () => {
    const g = await HardenedGroup.create({ members: 8, degree, seed: 'offline' });
    g.goOffline('cam-5');
    await g.leave('cam-2');
    await g.join();
    await g.refresh();
    const m = g.cameras.get('cam-5') as HardenedMember;
    expect(m.epoch).toBe(1);
    expect(g.kms.roster()).toContain('cam-5'); // not evicted
    expect(m.receive(g.kms.bundle(4) as Uint8Array)).toEqual({ kind: 'gap', epoch: 1, offered: 4 });
    expect(m.epoch).toBe(1);
    // a chain with a hole is refused whole
    refusedGenerically(() => m.catchUp([g.kms.bundle(2) as Uint8Array, g.kms.bundle(4) as Uint8Array]));
    expect(m.epoch).toBe(1);
    await g.comeOnline('cam-5');
    settled(g);
    expect(g.wire.filter((r) => r.type === 'bundle' && r.to.includes('cam-5') && r.from === KMS_ID).map((r) => decodeBundle(r.bytes).bundle.epoch)).toEqual([2, 3, 4]);
  });

  it('a joiner offline at its join gets its welcome and bundles by pull', async () => {
    const g = await HardenedGroup.create({ members: 5, degree, seed: 'late-joiner' });
    g.goOffline('cam-5');
    await g.join('cam-5');
    await g.leave('cam-1');
    expect(g.cameras.has('cam-5')).toBe(false);
    await g.comeOnline('cam-5');
    settled(g);
    expect(g.cameras.get('cam-5')?.epoch).toBe(3);
  });

  it('restart: a camera rebuilt from its JSON state continues the chain, and refuses a replay it accepted before', async () => {
    const g = await HardenedGroup.create({ members: 6, degree, seed: 'restart' });
    await g.leave('cam-3');
    const replay = g.kms.bundle(2) as Uint8Array;
    const m = g.restart('cam-1');
    const state = JSON.stringify(m.exportState());
    refusedGenerically(() => m.receive(replay));
    expect(JSON.stringify(m.exportState())).toBe(state);
    await g.join();
    settled(g);
    expect(m.epoch).toBe(3);
  });

  it('KMS restart: its exported state (JSON) continues the same tree, chain and epochs', async () => {
    const g = await HardenedGroup.create({ members: 10, degree, seed: 'kms-restart' });
    await g.rekey({ joins: 2, leaves: ['cam-4'] });
    const state = JSON.parse(JSON.stringify(g.kms.exportState())) as KmsState;
    const { privateKey } = ed25519KeyPair(seededRandom('kms-restart/kms-signing-key')(32));
    const again = HardenedKms.importState(state, { groupId: 'G1', sign: ed25519Signer(privateKey), random: seededRandom('after-restart') });
    expect(again.epoch).toBe(2);
    expect(again.roster()).toEqual(g.kms.roster());
    expect(hex(again.epochSecret())).toBe(hex(g.kms.epochSecret()));
    const r = await again.leave('cam-7');
    for (const [id, cam] of g.cameras) {
      if (id === 'cam-7') continue;
      expect(cam.receive(r.bundle)).toEqual({ kind: 'applied', epoch: 3 });
      expect(hex(cam.epochSecret())).toBe(hex(again.epochSecret()));
    }
    expect(() => HardenedKms.importState({ ...state, lastBundleHash: '00'.repeat(32) }, { groupId: 'G1', sign: ed25519Signer(privateKey) })).toThrow(GroupKeyRefusal);
  });
});

describe('hardened refusals: one generic error, state unchanged', () => {
  it('every single-bit flip anywhere in a bundle is refused with the same error, and the camera stays as it was', async () => {
    const g = await HardenedGroup.create({ members: 3, degree: 2, seed: 'flips' });
    const { bundle } = await g.kms.leave('cam-2');
    const m = g.cameras.get('cam-1') as HardenedMember;
    const state = JSON.stringify(m.exportState());
    const reasons = new Set<string>();
    for (let bit = 0; bit < bundle.length * 8; bit++) {
      const b = Uint8Array.from(bundle);
      b[bit >>> 3] = (b[bit >>> 3] as number) ^ (0x80 >>> (bit & 7));
      reasons.add(refusedGenerically(() => m.receive(b)).auditReason);
    }
    expect(JSON.stringify(m.exportState())).toBe(state);
    expect(m.rejected).toBe(bundle.length * 8);
    expect([...reasons].sort()).toEqual(['bundle: foreign group', 'bundle: malformed', 'bundle: signature']);
    expect(m.receive(bundle)).toEqual({ kind: 'applied', epoch: 2 });
  });

  it('a wrap that opens only under the wrong context (another epoch, group or node) is refused after a valid signature', async () => {
    // the KMS itself (a bug, or a compromised signing path) cannot make a camera take a wrap out of context:
    // the AAD is checked even under a valid signature
    const g = await HardenedGroup.create({ members: 4, degree: 2, seed: 'context' });
    const r = await g.kms.refresh();
    const d = decodeBundle(r.bundle);
    const moved = { ...d.bundle, wraps: d.bundle.wraps.map((w) => ({ ...w, sealed: d.bundle.wraps[0]?.sealed as Uint8Array, nonce: d.bundle.wraps[0]?.nonce as Uint8Array })) };
    const { privateKey } = ed25519KeyPair(seededRandom('context/kms-signing-key')(32));
    const { attachSignature, encodeBundleBody } = await import('../../src/groupkey/hardened/bundle.js');
    const { signingInput } = await import('../../src/groupkey/hardened/signature.js');
    const body = encodeBundleBody(moved);
    const resigned = attachSignature(body, ed25519Signer(privateKey)(signingInput(body)) as Uint8Array);
    const m = g.cameras.get('cam-3') as HardenedMember; // its path is under root child 1, not wraps[0]'s
    expect(refusedGenerically(() => m.receive(resigned)).auditReason).toBe('bundle: unwrap');
    expect(m.epoch).toBe(1);
  });

  it('stale, duplicate, foreign-chain and foreign-group bundles; welcomes for someone else; a camera behind answering a challenge', async () => {
    const g = await HardenedGroup.create({ members: 4, degree: 4, seed: 'refusals' });
    const other = await HardenedGroup.create({ members: 4, degree: 4, seed: 'refusals' , groupId: 'G2' });
    const fork = await HardenedGroup.create({ members: 4, degree: 4, seed: 'refusals-fork' });
    await g.refresh();
    const m = g.cameras.get('cam-1') as HardenedMember;
    expect(refusedGenerically(() => m.receive(g.kms.bundle(2) as Uint8Array)).auditReason).toBe('bundle: stale epoch');
    expect(refusedGenerically(() => m.receive(g.kms.bundle(1) as Uint8Array)).auditReason).toBe('bundle: stale epoch');
    await other.refresh();
    await other.refresh();
    expect(refusedGenerically(() => m.receive(other.kms.bundle(3) as Uint8Array)).auditReason).toBe('bundle: foreign group');
    // same group id, another KMS key: signature; (a fork signed by the right key would fail prevEpochHash)
    await fork.refresh();
    await fork.refresh();
    expect(refusedGenerically(() => m.receive(fork.kms.bundle(3) as Uint8Array)).auditReason).toBe('bundle: signature');
    const welcome = await g.kms.welcomeFor('cam-2');
    const keys = deriveSubkeys(g.K.get('cam-1') as Uint8Array);
    expect(refusedGenerically(() => HardenedMember.fromWelcome(welcome, { groupId: 'G1', memberId: 'cam-1', keys, verify: g.verify })).auditReason).toBe('welcome: not for this camera');
    const own = await g.kms.welcomeFor('cam-1');
    expect(refusedGenerically(() => HardenedMember.fromWelcome(own, { groupId: 'G1', memberId: 'cam-1', keys, verify: g.verify, highWaterMark: 2 })).auditReason).toBe('welcome: stale');
    g.goOffline('cam-3');
    await g.refresh();
    const ch = await g.kms.issueChallenge();
    expect(decodeChallenge(ch).challenge.epoch).toBe(3);
    expect(refusedGenerically(() => (g.cameras.get('cam-3') as HardenedMember).respond(ch)).auditReason).toBe('challenge: not this camera’s epoch');
    expect(g.refusals).toEqual([]);
  });

  it('a bundle signed with the right key but from a forked chain (a KMS restored from an old backup) is refused', async () => {
    const g = await HardenedGroup.create({ members: 4, degree: 2, seed: 'fork' });
    const backup = JSON.parse(JSON.stringify(g.kms.exportState())) as KmsState;
    const { privateKey } = ed25519KeyPair(seededRandom('fork/kms-signing-key')(32));
    const forked = HardenedKms.importState(backup, { groupId: 'G1', sign: ed25519Signer(privateKey), random: seededRandom('fork-b') });
    await g.refresh();
    await forked.refresh();
    const b3 = (await forked.refresh()).bundle;
    expect(decodeBundle(b3).bundle.epoch).toBe(3);
    const m = g.cameras.get('cam-1') as HardenedMember;
    expect(refusedGenerically(() => m.receive(b3)).auditReason).toBe('bundle: prevEpochHash');
    expect(refusedGenerically(() => m.receive(forked.bundle(2) as Uint8Array)).auditReason).toBe('bundle: stale epoch');
    expect(m.epoch).toBe(2);
  });

  it('a failed signature leaves the KMS as it was (all or nothing)', async () => {
    const r = seededRandom('undo');
    const members = Array.from({ length: 5 }, (_, i) => kmsMember(`cam-${i}`, r(32)));
    const { privateKey } = ed25519KeyPair(r(32));
    let fail = false;
    const { kms } = await HardenedKms.create({ groupId: 'G1', degree: 2, random: r, members, sign: (m) => { if (fail) throw new Error('HSM unplugged'); return ed25519Signer(privateKey)(m); } });
    const before = JSON.stringify(kms.exportState());
    fail = true;
    await expect(kms.rekey({ joins: [kmsMember('x', r(32)), kmsMember('y', r(32)), kmsMember('z', r(32)), kmsMember('w', r(32))], leaves: ['cam-1'] })).rejects.toThrow('HSM unplugged');
    expect(JSON.stringify(kms.exportState())).toBe(before);
    fail = false;
    // administrative mistakes are refused with a specific message (they are not cryptographic failures)
    await expect(kms.rekey({ leaves: ['cam-1'], joins: [kmsMember('cam-1', r(32))] })).rejects.toThrow(/cam-1 both joins and leaves/);
    await expect(kms.leave('nobody')).rejects.toThrow(/nobody is not a member/);
    await expect(kms.join(members[0] as ReturnType<typeof kmsMember>)).rejects.toThrow(/cam-0 is already a member/);
    await expect(kms.rekey({ leaves: ['cam-1', 'cam-1'] })).rejects.toThrow(GroupKeyError);
    expect(JSON.stringify(kms.exportState())).toBe(before);
  });

  it('a rekey is invisible until persisted: every read answers from the previous epoch meanwhile; a failed persist changes nothing', async () => {
    const r = seededRandom('staged');
    const members = Array.from({ length: 6 }, (_, i) => kmsMember(`cam-${i}`, r(32)));
    const { kms } = await HardenedKms.create({ groupId: 'G1', degree: 2, random: r, members, sign: ed25519Signer(ed25519KeyPair(r(32)).privateKey) });
    const welcome = await kms.welcomeFor('cam-3');
    const seen: unknown[] = [];
    const persisted: KmsState[] = [];
    const joiner = kmsMember('cam-new', r(32));
    const result = await kms.rekey(
      { leaves: ['cam-3'], joins: [joiner] },
      {
        persist: async (staged) => {
          await new Promise((res) => setImmediate(res));
          // what a camera or an administrator asking now is told: epoch 1, cam-3 still in, cam-new not yet
          seen.push(kms.epoch, kms.isMember('cam-3'), kms.isMember('cam-new'), kms.roster().includes('cam-3'), kms.bundlesSince(1, 'cam-3').length, hex(await kms.welcomeFor('cam-3')) === hex(welcome), kms.bundle(2));
          expect(() => kms.bundlesSince(0, 'cam-new')).toThrow(GroupKeyRefusal);
          expect(() => kms.exportState()).toThrow(/rekey is in progress/);
          persisted.push(staged.state());
          expect(staged.result.epoch).toBe(2);
          expect(persisted[0]?.secrets.find(([e]) => e === 2)?.[1]).toBe(hex(staged.secret));
        },
      },
    );
    expect(seen).toEqual([1, true, false, true, 0, true, undefined]);
    // after the persist: the new epoch, and the state persisted is exactly the state now
    expect(result.epoch).toBe(2);
    expect(kms.isMember('cam-3')).toBe(false);
    expect(kms.isMember('cam-new')).toBe(true);
    expect(JSON.stringify(persisted[0])).toBe(JSON.stringify(kms.exportState()));
    expect(JSON.stringify(HardenedKms.importState(persisted[0] as KmsState, { groupId: 'G1', sign: () => new Uint8Array(64) }).exportState())).toBe(JSON.stringify(kms.exportState()));

    // a persist that fails (the database refused the write): nothing changed, and the next rekey works
    const after = JSON.stringify(kms.exportState());
    await expect(kms.rekey({ leaves: ['cam-1'] }, { persist: () => Promise.reject(new Error('disk full')) })).rejects.toThrow('disk full');
    expect(JSON.stringify(kms.exportState())).toBe(after);
    expect(kms.isMember('cam-1')).toBe(true);
    expect((await kms.leave('cam-1')).epoch).toBe(3);
    expect(kms.roster()).toEqual(['cam-0', 'cam-2', 'cam-4', 'cam-5', 'cam-new']);
  });

  it('a second rekey while the first awaits its (asynchronous) signature is refused; the first completes', async () => {
    const r = seededRandom('busy');
    const members = Array.from({ length: 4 }, (_, i) => kmsMember(`cam-${i}`, r(32)));
    const sign = ed25519Signer(ed25519KeyPair(r(32)).privateKey);
    const { kms } = await HardenedKms.create({ groupId: 'G1', degree: 2, random: r, members, sign: async (m) => { await new Promise((res) => setImmediate(res)); return sign(m); } });
    const first = kms.leave('cam-1');
    await expect(kms.leave('cam-2')).rejects.toThrow(/another rekey is in progress/);
    expect((await first).epoch).toBe(2);
    expect((await kms.leave('cam-2')).epoch).toBe(3);
  });
});

describe('hardened group authentication', () => {
  it('all present: the aggregate verifies; the leader sends 16 bytes of aggregate, not one tag per camera', async () => {
    const g = await HardenedGroup.create({ members: 12, degree: 4, seed: 'auth' });
    const { outcome, blame } = await g.authenticate();
    expect(outcome).toEqual({ kind: 'verified', epoch: 1, present: g.kms.roster(), missing: [] });
    expect(blame).toBeNull();
    expect(g.wire.filter((r) => r.type === 'cameraTag')).toHaveLength(11);
    expect(decodeAggregate(g.wire.find((r) => r.type === 'aggregate')?.bytes as Uint8Array).aggregate).toHaveLength(16);
  });

  it('a camera that does not answer is reported missing; one with a bad tag fails the aggregate and is named by blame', async () => {
    const g = await HardenedGroup.create({ members: 6, degree: 2, seed: 'blame' });
    g.goOffline('cam-4');
    const a = await g.authenticate();
    expect(a.outcome).toEqual({ kind: 'verified', epoch: 1, present: ['cam-0', 'cam-1', 'cam-2', 'cam-3', 'cam-5'], missing: ['cam-4'] });
    await g.comeOnline('cam-4');
    g.tap = (r) => (r.type === 'cameraTag' && r.from === 'cam-2' ? Uint8Array.from(r.bytes, (b, i) => (i === r.bytes.length - 1 ? b ^ 1 : b)) : r.bytes);
    const b = await g.authenticate();
    expect(b.outcome?.kind).toBe('failed');
    expect(b.blame).toEqual({ epoch: 1, good: ['cam-0', 'cam-1', 'cam-3', 'cam-4', 'cam-5'], bad: ['cam-2'], missing: [] });
  });

  it('a challenge is single-use, expires, and is void after a rekey', async () => {
    const g = await HardenedGroup.create({ members: 3, degree: 2, seed: 'single-use' });
    await g.authenticate();
    const agg = g.wire.filter((r) => r.type === 'aggregate').at(-1)?.bytes as Uint8Array;
    refusedGenerically(() => g.kms.verifyAggregate(agg));
    g.tap = (r) => (r.type === 'aggregate' ? null : r.bytes);
    await g.authenticate();
    const held = g.wire.filter((r) => r.type === 'aggregate').at(-1)?.bytes as Uint8Array;
    g.tap = undefined;
    g.advance(g.kms.challengeTtlMs);
    expect(refusedGenerically(() => g.kms.verifyAggregate(held)).auditReason).toBe('auth: unknown or used challenge');
    g.tap = (r) => (r.type === 'aggregate' ? null : r.bytes);
    await g.authenticate();
    const late = g.wire.filter((r) => r.type === 'aggregate').at(-1)?.bytes as Uint8Array;
    g.tap = undefined;
    await g.refresh();
    refusedGenerically(() => g.kms.verifyAggregate(late));
    // an aggregate naming a non-member is refused outright
    g.tap = (r) => (r.type === 'aggregate' ? null : r.bytes);
    await g.authenticate();
    const a = decodeAggregate(g.wire.filter((r) => r.type === 'aggregate').at(-1)?.bytes as Uint8Array);
    expect(refusedGenerically(() => g.kms.verifyAggregate(encodeAggregate({ ...a, members: [...a.members, 'cam-9'] }))).auditReason).toBe('auth: aggregate names a non-member');
  });

  it('refreshDue follows the injected clock and the default period of one hour', async () => {
    const g = await HardenedGroup.create({ members: 2, degree: 2, seed: 'due' });
    expect(g.kms.refreshPeriodMs).toBe(3_600_000);
    expect(g.kms.refreshDue()).toBe(false);
    g.advance(3_599_999);
    expect(g.kms.refreshDue()).toBe(false);
    g.advance(1);
    expect(g.kms.refreshDue()).toBe(true);
    await g.refresh();
    expect(g.kms.refreshDue()).toBe(false);
  });
});

describe('hardened content keys', () => {
  it('currentContentKey: per camera and epoch, AES-128 and a 16-byte KID the KMS maps back to (group, camera, epoch)', async () => {
    const g = await HardenedGroup.create({ members: 4, degree: 4, seed: 'cenc' });
    const seen = new Set<string>();
    for (let round = 0; round < 3; round++) {
      for (const [id, m] of g.cameras) {
        const ck = m.currentContentKey();
        const asPackager: ContentKey = ck;
        expect(asPackager.key).toHaveLength(16);
        expect(ck.kid).toHaveLength(16);
        expect(ck.epoch).toBe(g.kms.epoch);
        expect(hex(ck.key)).toBe(hex(contentKey(g.kms.epochSecret() as Uint8Array, id, ck.epoch)));
        expect(hex(ck.kid)).toBe(hex(contentKid('G1', id, ck.epoch, ck.key)));
        expect(parseKid(ck.kid)?.epoch).toBe(ck.epoch);
        expect(g.kms.resolveKid(ck.kid)).toEqual({ groupId: 'G1', cameraId: id, epoch: ck.epoch });
        expect(g.kms.contentKeyFor(ck.kid)).toMatchObject({ key: ck.key });
        seen.add(hex(ck.key)).add(hex(ck.kid));
      }
      await g.refresh();
    }
    expect(seen.size).toBe(2 * 4 * 3);
  });

  it('the KMS releases no key for a camera in an epoch it was not a member of, nor for an unknown KID', async () => {
    const g = await HardenedGroup.create({ members: 3, degree: 2, seed: 'kid-release' });
    // the KID a camera would make in `epoch` (with the KMS's secret of that epoch, or any key when there is none)
    const kid = (cam: string, epoch: number): Uint8Array => contentKid('G1', cam, epoch, contentKey(g.kms.epochSecret(epoch) ?? new Uint8Array(32), cam, epoch));
    await g.leave('cam-2');
    expect(g.kms.contentKeyFor(kid('cam-2', 1))?.cameraId).toBe('cam-2');
    expect(g.kms.contentKeyFor(kid('cam-2', 2))).toBeUndefined();
    expect(g.kms.contentKeyFor(kid('cam-9', 1))).toBeUndefined();
    expect(g.kms.contentKeyFor(kid('cam-1', 3))).toBeUndefined();
    expect(g.kms.contentKeyFor(new Uint8Array(15))).toBeUndefined();
    await g.join('cam-2');
    expect(g.kms.contentKeyFor(kid('cam-2', 3))?.epoch).toBe(3);
    // a KID made with another secret for the same epoch (a KMS rolled back or forked): no key, a mismatch
    const forged = contentKid('G1', 'cam-2', 3, contentKey(new Uint8Array(32).fill(9), 'cam-2', 3));
    expect(g.kms.contentKeyFor(forged)).toEqual({ mismatch: true, cameraId: 'cam-2', epoch: 3 });
  });

  it('the content key encrypts a CENC sample (AES-128-CTR) and nothing in the KID reveals it', async () => {
    const g = await HardenedGroup.create({ members: 2, degree: 2, seed: 'cenc-ctr' });
    const ck = (g.cameras.get('cam-1') as HardenedMember).currentContentKey();
    const c = createCipheriv('aes-128-ctr', ck.key, new Uint8Array(16));
    expect(Buffer.concat([c.update(Buffer.alloc(32)), c.final()])).toHaveLength(32);
    expect(toHex(ck.kid).includes(toHex(ck.key).slice(0, 8))).toBe(false);
  });
});

describe('hardened state export', () => {
  it('a camera state round-trips through JSON and a tampered state is refused', async () => {
    const g = await HardenedGroup.create({ members: 5, degree: 2, seed: 'state' });
    const m = g.cameras.get('cam-3') as HardenedMember;
    const s = JSON.parse(JSON.stringify(m.exportState())) as MemberState;
    const opts = { groupId: 'G1', memberId: 'cam-3', keys: deriveSubkeys(g.K.get('cam-3') as Uint8Array), verify: g.verify };
    expect(HardenedMember.importState(s, opts).exportState()).toEqual(s);
    refusedGenerically(() => HardenedMember.importState({ ...s, memberId: 'cam-2' }, opts));
    refusedGenerically(() => HardenedMember.importState({ ...s, pathKeys: s.pathKeys.slice(1) }, opts));
    refusedGenerically(() => HardenedMember.importState({ ...s, pathKeys: [...s.pathKeys, [ancestorOf(2, 0, 1), '00'.repeat(32)]] }, opts));
    refusedGenerically(() => HardenedMember.importState({ ...s, lastBundleHash: 'zz' }, opts));
    const reencoded = encodeBundle(decodeBundle(g.kms.bundle(1) as Uint8Array).bundle);
    expect(hex(reencoded)).toBe(hex(g.kms.bundle(1)));
  });
});
