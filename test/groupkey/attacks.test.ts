/**
 * Attacks A1–A8 of shared/notes/group-keys.md. Every attack is a case `{ scheme, expectSuccess, run }` in a
 * list per attack, run with `describe.each`: the paper's scheme, implemented faithfully (src/groupkey/paper),
 * where the attack SUCCEEDS (the test documents the flaw), and the hardened mode (src/groupkey/hardened), where
 * the same attack, aimed at the same goal, FAILS (`expectSuccess: false`).
 *
 * The attacker sees what travels on the cameras' LAN and the uplink (`PaperGroup.wire`, `HardenedGroup.wire`),
 * can put bytes on it (`inject`, `tap`), and — where stated — holds one camera's state (paper: its K_IC and last
 * group key; hardened: everything the camera holds, K_i^wrap and its path keys included). Against the hardened
 * mode the attacker tries every key it holds against every wrap it sees (hardened-attacker.ts). A hardened case
 * also checks that the group itself still works (every camera on the KMS's key), so that an attack cannot
 * "fail" merely because the protocol broke.
 */
import { createCipheriv } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { gskNew, hngk, engk, openEgskIC, openEngk } from '../../src/groupkey/paper/formulas.js';
import { KMS_ID, LEADER_ID, PaperGroup } from '../../src/groupkey/paper/group.js';
import { encodeMessage } from '../../src/groupkey/paper/messages.js';
import type { GroupAuth } from '../../src/groupkey/paper/messages.js';
import { CountingPrimitives } from '../../src/groupkey/paper/ops.js';
import { bytesEqual, seededRandom, xorBytes } from '../../src/groupkey/paper/primitives.js';
import { GroupKeyRefusal, GROUPKEY_REFUSED_MESSAGE } from '../../src/errors.js';
import { decodeAggregate, decodeCameraTag, decodeTagList, encodeAggregate, encodeTagList, xorTags } from '../../src/groupkey/hardened/auth.js';
import type { AuthOutcome } from '../../src/groupkey/hardened/kms.js';
import { attachSignature, decodeBundle, encodeBundle, encodeBundleBody, REASON } from '../../src/groupkey/hardened/bundle.js';
import { contentKey } from '../../src/groupkey/hardened/content.js';
import { HardenedGroup, KMS_ID as HARDENED_KMS } from '../../src/groupkey/hardened/group.js';
import { deriveSubkeys, nodeKek, sha256 } from '../../src/groupkey/hardened/kdf.js';
import type { HardenedMember } from '../../src/groupkey/hardened/member.js';
import { nodeId } from '../../src/groupkey/hardened/nodes.js';
import { ed25519KeyPair, ed25519Signer, signingInput } from '../../src/groupkey/hardened/signature.js';
import { sealWrap } from '../../src/groupkey/hardened/wrap.js';
import type { Wrap } from '../../src/groupkey/hardened/wrap.js';
import { attackerClosure } from './hardened-attacker.js';

interface AttackOutcome {
  readonly succeeded: boolean;
  /** What happened, for the failure message. */
  readonly detail: string;
}

interface AttackCase {
  readonly scheme: string;
  readonly expectSuccess: boolean;
  readonly run: () => AttackOutcome | Promise<AttackOutcome>;
  /** For a case that must fail: what stops it (the test's title). */
  readonly stoppedBy?: string;
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

async function verdict(t: AttackCase): Promise<void> {
  const o = await t.run();
  expect(o.succeeded, o.detail).toBe(t.expectSuccess);
}

/** The title of a case's test: the paper's "succeeds: …" text, or what stops the attack. */
function title(t: AttackCase, succeeds: string): string {
  return t.expectSuccess ? succeeds : `fails: ${t.stoppedBy ?? 'the hardened mode stops it'}`;
}

// ── the hardened mode's side ────────────────────────────────────────────────────────────────────────────────────

function hsecret(g: HardenedGroup): Uint8Array {
  const k = g.kms.epochSecret();
  if (k === undefined) throw new Error('the KMS has no epoch secret');
  return k;
}

function hcamera(g: HardenedGroup, id: string): HardenedMember {
  const c = g.cameras.get(id) ?? g.departed.get(id);
  if (c === undefined) throw new Error(`no camera ${id}`);
  return c;
}

/** Everything a hardened camera holds: K_i^wrap, K_i^auth, its path keys (the epoch secret among them). */
function dump(g: HardenedGroup, id: string): Uint8Array[] {
  const keys = hcamera(g, id).heldKeys().map((k) => k.key);
  return [...keys, deriveSubkeys(g.K.get(id) as Uint8Array).auth];
}

/** The group still works: every online camera on the KMS's epoch and secret. Throws otherwise. */
function healthy(g: HardenedGroup): void {
  if (!g.consistent()) throw new Error(`the hardened group is inconsistent at epoch ${g.kms.epoch}`);
}

/** Refusals at the given parties since `from`, all with the one generic error (else throws: a distinguishable error is a leak). */
function refusedAt(g: HardenedGroup, from: number, at: (id: string) => boolean): string[] {
  const xs = g.refusals.slice(from).filter((r) => at(r.at));
  for (const r of xs) if (!(r.error instanceof GroupKeyRefusal) || r.error.message !== GROUPKEY_REFUSED_MESSAGE) throw new Error(`distinguishable refusal at ${r.at}: ${r.error.message}`);
  return xs.map((r) => r.at);
}

const lastRecord = (g: HardenedGroup, type: string): Uint8Array => last(g.wire.filter((r) => r.type === type), type).bytes;

/** A bundle the attacker makes for the next epoch: `chosen` as the new root, wrapped under every key it holds for a child of the root. */
function forgeBundle(g: HardenedGroup, forger: string, chosen: Uint8Array, sign: (m: Uint8Array) => Uint8Array): Uint8Array {
  const prevBytes = g.kms.bundle(g.kms.epoch) as Uint8Array; // seen on the wire
  const prev = decodeBundle(prevBytes).bundle;
  const epoch = prev.epoch + 1;
  const root = nodeId(prev.height, 0);
  const wraps: Wrap[] = hcamera(g, forger)
    .heldKeys()
    .filter((k) => Math.floor(k.node / 2 ** 24) === prev.height - 1)
    .map((k) => sealWrap(prev.height === 1 ? k.key : nodeKek(k.key), chosen, new Uint8Array(12), { groupId: g.groupId, epoch, target: root, recipient: k.node }));
  const body = encodeBundleBody({ ...prev, epoch, prevEpochHash: sha256(prevBytes), reason: REASON.refresh, wraps });
  return attachSignature(body, sign(signingInput(body)));
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

/**
 * cam-4 leaves (in a full binary tree of 8, so that its whole path has live siblings); it keeps everything it held (K_i^wrap, K_i^auth, its path keys, the epoch secret) and records
 * every bundle. It tries every key against every wrap, then a content key of cam-1 for the new epoch from every
 * key it ends up with.
 */
async function a1Hardened(): Promise<AttackOutcome> {
  const g = await HardenedGroup.create({ members: 8, degree: 2, seed: 'A1' }); // cam-0 (leader) … cam-7; cam-4 shares a parent with cam-5
  const stolen = dump(g, 'cam-4');
  const r = await g.leave('cam-4');
  healthy(g);
  const onlyLeave = attackerClosure(stolen, [r.bundle]);
  const all = attackerClosure(stolen, g.bundlesOnWire());
  const frame = hcamera(g, 'cam-1').currentContentKey();
  const frameKey = [...all.keys.values()].some((k) => k.length === 32 && same(contentKey(k, 'cam-1', frame.epoch), frame.key));
  return {
    succeeded: all.holds(hsecret(g)) || frameKey || onlyLeave.opened > 0,
    detail: `wraps of the leave bundle the leaver opened: ${onlyLeave.opened} of ${r.wraps} (${onlyLeave.trials} trials); holds the new epoch secret: ${all.holds(hsecret(g))}; derives cam-1's new content key: ${frameKey}`,
  };
}

const A1: readonly AttackCase[] = [
  { scheme: 'paper Scheme 2', expectSuccess: true, run: a1Paper },
  { scheme: 'hardened', expectSuccess: false, run: a1Hardened, stoppedBy: 'every key on the leaver’s path is replaced and wrapped only under keys it never held; no wrap opens under any key it holds' },
];

describe.each(A1)('A1 — the departing camera derives the next group key ($scheme)', (t) => {
  it(title(t, 'succeeds: the leaver computes GSK_new from its old key and the multicast Engk'), () => verdict(t));
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

/**
 * The attacker steals everything cam-1 holds, then follows the same 10 joins and leaves (cam-1 evicted second)
 * with every bundle on the wire. It succeeds if it holds the group's key in any epoch after the eviction.
 */
async function a2Hardened(): Promise<AttackOutcome> {
  const g = await HardenedGroup.create({ members: 5, degree: 2, seed: 'A2' });
  const stolen = dump(g, 'cam-1');
  const events: (() => Promise<unknown>)[] = [
    () => g.join(),
    () => g.leave('cam-1'),
    () => g.join(),
    () => g.leave('cam-2'),
    () => g.join(),
    () => g.join(),
    () => g.leave('cam-5'),
    () => g.leave('cam-3'),
    () => g.join(),
    () => g.leave('cam-6'),
  ];
  const tracked: boolean[] = [];
  for (const event of events) {
    await event();
    healthy(g);
    tracked.push(attackerClosure(stolen, g.bundlesOnWire()).holds(hsecret(g)));
  }
  const after = tracked.slice(1).filter(Boolean).length;
  return { succeeded: after > 0, detail: `attacker holds the key before the eviction: ${tracked[0]}; in the ${events.length - 1} epochs after it: ${after}` };
}

/**
 * Only the epoch secret leaks (no eviction follows: nobody noticed). It is good for its own epoch only — no wrap
 * ever opens under an epoch secret — and the periodic refresh (due after the default hour) replaces it.
 */
async function a2RefreshHardened(): Promise<AttackOutcome> {
  const g = await HardenedGroup.create({ members: 6, degree: 4, seed: 'A2-refresh' });
  const stolen = [hsecret(g)];
  g.advance(g.kms.refreshPeriodMs);
  const due = g.kms.refreshDue();
  await g.refresh();
  await g.join(); // later traffic too
  healthy(g);
  const c = attackerClosure(stolen, g.bundlesOnWire());
  return { succeeded: !due || c.holds(hsecret(g)) || c.holds(g.kms.epochSecret(2)), detail: `refresh due after ${g.kms.refreshPeriodMs} ms: ${due}; wraps opened with the stolen secret: ${c.opened}` };
}

/**
 * A memory dump of cam-1 (its path keys, not K_i, which stays in the secure element) while it stays a member:
 * a root refresh is not enough (the dump holds the root's child), a whole-tree refresh is.
 */
async function a2DumpHardened(): Promise<AttackOutcome> {
  const g = await HardenedGroup.create({ members: 8, degree: 2, seed: 'A2-dump' });
  const stolen = hcamera(g, 'cam-1')
    .heldKeys()
    .slice(1)
    .map((k) => k.key);
  await g.refresh('root');
  const afterRoot = attackerClosure(stolen, g.bundlesOnWire()).holds(hsecret(g));
  await g.refresh('tree');
  await g.leave('cam-6');
  healthy(g);
  const c = attackerClosure(stolen, g.bundlesOnWire());
  return {
    succeeded: c.holds(hsecret(g)) || c.holds(g.kms.epochSecret(3)),
    detail: `after a root refresh the dump still follows: ${afterRoot} (expected); after the tree refresh: ${c.holds(g.kms.epochSecret(3))}, one leave later: ${c.holds(hsecret(g))}`,
  };
}

const A2: readonly AttackCase[] = [
  { scheme: 'paper Scheme 2', expectSuccess: true, run: a2Paper },
  { scheme: 'hardened, the stolen camera evicted', expectSuccess: false, run: a2Hardened, stoppedBy: 'the eviction replaces every key the stolen state holds, and later bundles wrap only under keys it never saw' },
  { scheme: 'hardened, a leaked epoch secret', expectSuccess: false, run: a2RefreshHardened, stoppedBy: 'no wrap opens under an epoch secret, and the hourly refresh replaces it' },
  { scheme: 'hardened, a memory dump without K_i', expectSuccess: false, run: a2DumpHardened, stoppedBy: 'a whole-tree refresh replaces every interior key, wrapped up from the leaves' },
];

describe.each(A2)('A2 — one compromised key yields every later key ($scheme)', (t) => {
  it(title(t, 'succeeds: 10 joins and leaves later, eviction of the stolen camera included, the attacker still holds the key'), () => verdict(t));
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

/**
 * cam-3, a member holding all its keys, sends the others a refresh of its own: the next epoch, the right
 * prevEpochHash, a root key it chose wrapped under every key it holds — signed with its own Ed25519 key, then
 * with the KMS's signature of the last bundle attached, then spliced into a genuine KMS bundle in transit.
 */
async function a3Hardened(): Promise<AttackOutcome> {
  const g = await HardenedGroup.create({ members: 4, degree: 2, seed: 'A3' });
  const chosen = attacker().random(32);
  const own = ed25519KeyPair(attacker().random(32));
  const victims = ['cam-0', 'cam-1', 'cam-2'];
  const before = g.refusals.length;
  const selfSigned = forgeBundle(g, 'cam-3', chosen, ed25519Signer(own.privateKey) as (m: Uint8Array) => Uint8Array);
  await g.inject('cam-3', victims, selfSigned);
  const kmsSig = decodeBundle(g.kms.bundle(1) as Uint8Array).bundle.signature;
  await g.inject('cam-3', victims, forgeBundle(g, 'cam-3', chosen, () => kmsSig));
  // splice: a genuine refresh captured in transit, one wrap replaced by the forger's
  const forgedWrap = decodeBundle(selfSigned).bundle.wraps[0] as Wrap;
  g.tap = (r) => {
    if (r.type !== 'bundle' || r.from !== 'cam-0') return r.bytes;
    const d = decodeBundle(r.bytes).bundle;
    return encodeBundle({ ...d, wraps: d.wraps.map((w) => (w.target === forgedWrap.target && w.recipient === forgedWrap.recipient ? { ...w, nonce: forgedWrap.nonce, sealed: forgedWrap.sealed } : w)) });
  };
  await g.refresh(); // cam-0 takes the genuine one from the KMS, the others get the spliced relay, refuse it and pull
  g.tap = undefined;
  const installed = victims.filter((id) => same(hcamera(g, id).epochSecret(), chosen));
  const refused = refusedAt(g, before, (id) => victims.includes(id));
  healthy(g);
  return {
    succeeded: installed.length > 0,
    detail: `members on the forger's key: ${installed.join(', ') || 'none'}; refusals: ${refused.length} (${refused.join(', ')}); rejected counters: ${victims.map((id) => hcamera(g, id).rejected).join('/')}`,
  };
}

const A3: readonly AttackCase[] = [
  { scheme: 'paper Scheme 2', expectSuccess: true, run: a3Paper },
  { scheme: 'hardened', expectSuccess: false, run: a3Hardened, stoppedBy: 'only the KMS signs bundles: self-signed, re-used-signature and spliced bundles are refused, state unchanged' },
];

describe.each(A3)('A3 — a forged refresh is accepted ($scheme)', (t) => {
  it(title(t, "succeeds: every other member installs the key the forger chose (the leader's and KMS's keys differ from it)"), () => verdict(t));
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

/**
 * After a join and an authentication round, the leader's last aggregate is replayed to the KMS and the latest
 * bundle to every camera: nothing changes, and the next join leaves everyone on one key.
 */
async function a4DesyncHardened(): Promise<AttackOutcome> {
  const g = await HardenedGroup.create({ members: 3, degree: 2, seed: 'A4a' });
  await g.join();
  const auth = await g.authenticate();
  const epoch = g.kms.epoch;
  const states = [...g.cameras.values()].map((m) => JSON.stringify(m.exportState()));
  const before = g.refusals.length;
  await g.inject('attacker', [HARDENED_KMS], lastRecord(g, 'aggregate'));
  const kmsAccepted = refusedAt(g, before, (id) => id === HARDENED_KMS).length === 0;
  const all = [...g.cameras.keys()];
  await g.inject('attacker', all, g.kms.bundle(epoch) as Uint8Array);
  const cameraRefusals = refusedAt(g, before, (id) => id !== HARDENED_KMS).length;
  const changed = [...g.cameras.values()].some((m, i) => JSON.stringify(m.exportState()) !== states[i]) || g.kms.epoch !== epoch;
  await g.join();
  return {
    succeeded: kmsAccepted || changed || !g.consistent() || auth.outcome?.kind !== 'verified',
    detail: `KMS accepted the replayed aggregate: ${kmsAccepted}; camera refusals of the replayed bundle: ${cameraRefusals}/${all.length}; any state changed: ${changed}; next join consistent: ${g.consistent()}`,
  };
}

/** cam-2 gets the bundle of an epoch cam-4 knew, after cam-4 left — and again after a restart from its persisted state. */
async function a4RollbackHardened(): Promise<AttackOutcome> {
  const g = await HardenedGroup.create({ members: 5, degree: 2, seed: 'A4b' });
  const old = g.kms.bundle(1) as Uint8Array;
  const leaverKnew = [hsecret(g)];
  await g.leave('cam-4');
  const before = g.refusals.length;
  await g.inject('attacker', ['cam-2'], old);
  g.restart('cam-2');
  await g.inject('attacker', ['cam-2'], old);
  await g.inject('attacker', ['cam-2'], g.kms.bundle(2) as Uint8Array);
  const refusals = refusedAt(g, before, (id) => id === 'cam-2').length;
  const cam2 = hcamera(g, 'cam-2').epochSecret();
  healthy(g);
  return {
    succeeded: leaverKnew.some((k) => same(k, cam2)) || !same(cam2, hsecret(g)),
    detail: `cam-2 refused ${refusals} of 3 replays (one after a restart); cam-2 on the KMS's key: ${same(cam2, hsecret(g))}`,
  };
}

const A4: readonly AttackCase[] = [
  { scheme: 'paper Scheme 2 (desynchronisation)', expectSuccess: true, run: a4DesyncPaper },
  { scheme: 'paper Scheme 1 (rollback)', expectSuccess: true, run: a4RollbackPaper },
  { scheme: 'hardened (desynchronisation)', expectSuccess: false, run: a4DesyncHardened, stoppedBy: 'challenges are single-use, and a bundle is taken only for epoch = current + 1' },
  { scheme: 'hardened (rollback, also after a restart)', expectSuccess: false, run: a4RollbackHardened, stoppedBy: 'the persisted high-water mark refuses every epoch at or below it' },
];

describe.each(A4)('A4 — a replayed message desynchronises or rolls back ($scheme)', (t) => {
  it(title(t, 'succeeds'), () => verdict(t));
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

/** Submits an aggregate to the KMS: its verdict, or null when refused. */
function submit(g: HardenedGroup, aggregate: Uint8Array): AuthOutcome | null {
  try {
    return g.kms.verifyAggregate(aggregate);
  } catch (e) {
    if (e instanceof GroupKeyRefusal && e.message === GROUPKEY_REFUSED_MESSAGE) return null;
    throw e;
  }
}

const claims = (o: AuthOutcome | null, id: string): boolean => o?.kind === 'verified' && o.present.includes(id);

/** The aggregate of a round with cam-4 present, replayed after cam-4 left. */
async function a5ReplayHardened(): Promise<AttackOutcome> {
  const g = await HardenedGroup.create({ members: 5, degree: 2, seed: 'A5a' });
  const first = await g.authenticate();
  const aggregate = lastRecord(g, 'aggregate');
  await g.leave('cam-4');
  healthy(g);
  const o = submit(g, aggregate);
  return { succeeded: claims(o, 'cam-4') || first.outcome?.kind !== 'verified', detail: `KMS verdict on the replay: ${o === null ? 'refused' : o.kind}; roster: ${g.kms.roster().join(', ')}` };
}

/**
 * Round 1 (cam-0…cam-4 present) gives the attacker the aggregate A and every tag from the LAN. cam-3 and cam-4
 * leave. In round 2 it holds back the leader's aggregate A' and submits A' ⊕ tag4(round 1) claiming cam-4, and the
 * paper's own recombination A ⊕ tag3 for round 1's nonce.
 */
async function a5SymmetricDifferenceHardened(): Promise<AttackOutcome> {
  const g = await HardenedGroup.create({ members: 5, degree: 2, seed: 'A5b' });
  await g.authenticate();
  const A = decodeAggregate(lastRecord(g, 'aggregate'));
  const tag = (id: string): Uint8Array => decodeCameraTag(last(g.wire.filter((r) => r.type === 'cameraTag' && r.from === id), id).bytes).tag;
  const tag3 = tag('cam-3');
  const tag4 = tag('cam-4');
  await g.leave('cam-4');
  await g.leave('cam-3');
  let held: Uint8Array | undefined;
  g.tap = (r) => (r.type === 'aggregate' ? ((held = r.bytes), null) : r.bytes);
  await g.authenticate();
  g.tap = undefined;
  const A2 = decodeAggregate(held as Uint8Array);
  const o1 = submit(g, encodeAggregate({ ...A2, members: [...A2.members, 'cam-4'], aggregate: xorTags([A2.aggregate, tag4]) }));
  const o2 = submit(g, encodeAggregate({ ...A, members: A.members.filter((m) => m !== 'cam-3'), aggregate: xorTags([A.aggregate, tag3]) }));
  return {
    succeeded: claims(o1, 'cam-4') || claims(o2, 'cam-4'),
    detail: `A' ⊕ tag4 claiming cam-4: ${o1 === null ? 'refused' : o1.kind}; A ⊕ tag3 for the old nonce: ${o2 === null ? 'refused' : o2.kind}`,
  };
}

/** cam-4 is still a member but absent (offline); its tag from an earlier round is XORed in to claim it present. */
async function a5AbsentHardened(): Promise<AttackOutcome> {
  const g = await HardenedGroup.create({ members: 5, degree: 2, seed: 'A5c' });
  await g.authenticate();
  const tag4 = decodeCameraTag(last(g.wire.filter((r) => r.type === 'cameraTag' && r.from === 'cam-4'), 'cam-4').bytes).tag;
  g.goOffline('cam-4');
  g.tap = (r) => {
    if (r.type === 'aggregate') {
      const a = decodeAggregate(r.bytes);
      return encodeAggregate({ ...a, members: [...a.members, 'cam-4'].sort(), aggregate: xorTags([a.aggregate, tag4]) });
    }
    if (r.type === 'tagList') {
      const t = decodeTagList(r.bytes);
      return encodeTagList({ ...t, tags: [...t.tags, { memberId: 'cam-4', tag: tag4 }] });
    }
    return r.bytes;
  };
  const round = await g.authenticate();
  g.tap = undefined;
  return {
    succeeded: claims(round.outcome, 'cam-4') || !(round.blame?.bad.includes('cam-4') ?? false),
    detail: `KMS verdict: ${round.outcome?.kind ?? 'refused'}; blame: bad ${round.blame?.bad.join(', ') ?? '—'}, good ${round.blame?.good.join(', ') ?? '—'}`,
  };
}

const A5: readonly AttackCase[] = [
  { scheme: 'paper, replay', expectSuccess: true, run: a5ReplayPaper },
  { scheme: 'paper, symmetric difference', expectSuccess: true, run: a5SymmetricDifferencePaper },
  { scheme: 'hardened, replay', expectSuccess: false, run: a5ReplayHardened, stoppedBy: 'the KMS nonce is single-use and void after a rekey' },
  { scheme: 'hardened, symmetric difference', expectSuccess: false, run: a5SymmetricDifferenceHardened, stoppedBy: 'tags bind the nonce and roster; the removed camera is not in the roster' },
  { scheme: 'hardened, an absent member claimed present', expectSuccess: false, run: a5AbsentHardened, stoppedBy: 'the aggregate fails and per-camera blame names the stale tag' },
];

describe.each(A5)('A5 — XOR-aggregated MACs replayed or recombined ($scheme)', (t) => {
  it(title(t, 'succeeds: the KMS accepts a group with a removed camera present'), () => verdict(t));
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

/**
 * Flips the first ciphertext bit of the wrap to `recipient` (a camera's leaf) in the first bundle relayed by the
 * leader; the KMS's signature stays as it was.
 */
function flipWrapOnce(g: HardenedGroup, recipient: number): void {
  let done = false;
  g.tap = (r) => {
    if (done || r.type !== 'bundle' || r.from === HARDENED_KMS) return r.bytes;
    const d = decodeBundle(r.bytes).bundle;
    if (!d.wraps.some((w) => w.recipient === recipient)) return r.bytes;
    done = true;
    return encodeBundle({ ...d, wraps: d.wraps.map((w) => (w.recipient === recipient ? { ...w, sealed: Uint8Array.from(w.sealed, (b, i) => (i === 0 ? b ^ 0x80 : b)) } : w)) });
  };
}

async function a6Hardened(seed: string, victim: string, run: (g: HardenedGroup) => Promise<unknown>): Promise<AttackOutcome> {
  const g = await HardenedGroup.create({ members: 4, degree: 2, seed });
  const before = g.refusals.length;
  flipWrapOnce(g, nodeId(0, Number(victim.slice('cam-'.length)))); // cam-i sits in slot i
  await run(g);
  g.tap = undefined;
  const refused = refusedAt(g, before, (id) => id === victim); // throws on a distinguishable error
  const silentWrongKey = refused.length === 0 && !same(hcamera(g, victim).epochSecret(), hsecret(g));
  healthy(g);
  return { succeeded: silentWrongKey || refused.length === 0, detail: `${victim} refused the flipped bundle: ${refused.length > 0}; then pulled it intact and holds the KMS's key: ${same(hcamera(g, victim).epochSecret(), hsecret(g))}` };
}

const A6: readonly AttackCase[] = [
  { scheme: 'paper, EGSK_IC', expectSuccess: true, run: a6MemberKeyPaper },
  { scheme: 'paper Scheme 2, EGSK_IC_new', expectSuccess: true, run: a6NewMemberKeyPaper },
  { scheme: 'hardened, a leave bundle', expectSuccess: false, run: () => a6Hardened('A6a', 'cam-2', (g) => g.leave('cam-3')), stoppedBy: 'signed bundle and AES-GCM wraps: refused with the one generic error; the camera pulls an intact copy' },
  { scheme: 'hardened, the joiner’s wrap', expectSuccess: false, run: () => a6Hardened('A6b', 'cam-4', (g) => g.join('cam-4')), stoppedBy: 'the joiner refuses the flipped bundle and pulls an intact one' },
];

describe.each(A6)('A6 — a bit flip in key transport installs a wrong key ($scheme)', (t) => {
  it(title(t, 'succeeds'), () => verdict(t));
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

/**
 * The hardened mode gives each camera its own CENC content key per epoch (currentContentKey). Cameras A and B
 * encrypt their first samples as 'cenc' does — AES-128-CTR — with the same IV (each camera's counter from 0).
 */
async function a7Hardened(): Promise<AttackOutcome> {
  const g = await HardenedGroup.create({ members: 2, degree: 2, seed: 'A7' });
  const encryptFrame = (key: Uint8Array, counter: number, frame: Uint8Array): Uint8Array => {
    const iv = Buffer.alloc(16);
    iv.writeUInt32BE(counter, 4);
    const c = createCipheriv('aes-128-ctr', key, iv);
    return Buffer.concat([c.update(frame), c.final()]);
  };
  const P_A = Buffer.from('frame 0 of camera A: a parked car, plate KF-1234....');
  const P_B = Buffer.from('frame 0 of camera B: the loading bay door, closed...');
  const kA = hcamera(g, 'cam-0').currentContentKey();
  const kB = hcamera(g, 'cam-1').currentContentKey();
  const C_A = encryptFrame(kA.key, 0, P_A);
  const C_B = encryptFrame(kB.key, 0, P_B);
  const leaks = Buffer.from(xorBytes(C_A, C_B)).equals(Buffer.from(xorBytes(P_A, P_B)));
  return { succeeded: leaks || same(kA.key, kB.key) || same(kA.kid, kB.kid), detail: `C_A ⊕ C_B = P_A ⊕ P_B: ${leaks}; same key: ${same(kA.key, kB.key)}` };
}

const A7: readonly AttackCase[] = [
  { scheme: 'paper (GSK as every camera’s traffic key)', expectSuccess: true, run: a7Paper },
  { scheme: 'hardened (per-camera CENC keys)', expectSuccess: false, run: a7Hardened, stoppedBy: 'each camera encrypts under its own key HKDF(epoch secret, camera, epoch)' },
];

describe.each(A7)('A7 — two cameras encrypt under one key and nonce ($scheme)', (t) => {
  it(title(t, 'succeeds: the XOR of the ciphertexts is the XOR of the frames'), () => verdict(t));
});

// ── A8 ── the leader has authority: it decides the group key ────────────────────────────────────────────────────

/** The paper's leader (GLIC) multicasts a refresh of its own choosing, with no join or leave and no KMS: the members install it. */
function a8Paper(): AttackOutcome {
  const g = new PaperGroup({ scheme: 2, members: 3, seed: 'A8' });
  g.distribute();
  const p = attacker();
  const GSK = g.leader.groupKey as Uint8Array;
  const r = p.random(32);
  const m = p.random(32);
  const chosen = gskNew(p, GSK, r, m);
  g.inject(LEADER_ID, ['cam-1', 'cam-2', 'cam-3'], encodeMessage({ type: 'Refresh', ID_G1: g.ID_G1, Engk_GSK: engk(p, GSK, r, m), Hngk_GSK: hngk(p, chosen, GSK, g.ID_G1) }));
  const victims = ['cam-1', 'cam-2', 'cam-3'].filter((id) => same(camera(g, id).groupKey, chosen));
  return {
    succeeded: victims.length === 3 && !same(chosen, kmsKey(g)) && g.refusals.every((x) => x.at === LEADER_ID),
    detail: `members on the leader's key: ${victims.join(', ') || 'none'}; the KMS's key differs: ${!same(chosen, kmsKey(g))}; refusals: ${g.refusals.map((x) => `${x.at}: ${x.error.message}`).join('; ')}`,
  };
}

/**
 * cam-0, the leader, turns adversary: it alters a bundle it relays, authors one of its own, drops cam-2's tag,
 * then claims cam-2 present with a made-up tag; and it tries every key it ever held against every wrap on the wire.
 */
async function a8Hardened(): Promise<AttackOutcome> {
  const g = await HardenedGroup.create({ members: 6, degree: 2, seed: 'A8' });
  const L = g.leaderId;
  const others = [...g.cameras.keys()].filter((id) => id !== L);
  const knowledge: Uint8Array[] = [];
  const learn = (): void => void knowledge.push(...dump(g, L));
  learn();
  // 1. alter what it relays
  g.tap = (r) => (r.type === 'bundle' && r.from === L ? Uint8Array.from(r.bytes, (b, i) => (i === r.bytes.length - 70 ? b ^ 1 : b)) : r.bytes);
  await g.refresh();
  g.tap = undefined;
  const alteredInstalled = !g.consistent();
  learn();
  // 2. author a bundle
  const chosen = attacker().random(32);
  const own = ed25519KeyPair(attacker().random(32));
  await g.inject(L, others, forgeBundle(g, L, chosen, ed25519Signer(own.privateKey) as (m: Uint8Array) => Uint8Array));
  const authored = others.some((id) => same(hcamera(g, id).epochSecret(), chosen));
  // 3. drop cam-2's tag
  g.tap = (r) => (r.type === 'cameraTag' && r.from === 'cam-2' ? null : r.bytes);
  const dropped = await g.authenticate();
  const droppedUndetected = !(dropped.outcome?.kind === 'verified' && dropped.outcome.missing.includes('cam-2'));
  // 4. … and make one up for it
  const fake = attacker().random(16);
  g.tap = (r) => {
    if (r.type === 'cameraTag' && r.from === 'cam-2') return null;
    if (r.type === 'aggregate') {
      const a = decodeAggregate(r.bytes);
      return encodeAggregate({ ...a, members: [...a.members, 'cam-2'].sort(), aggregate: xorTags([a.aggregate, fake]) });
    }
    if (r.type === 'tagList') {
      const t = decodeTagList(r.bytes);
      return encodeTagList({ ...t, tags: [...t.tags, { memberId: 'cam-2', tag: fake }].sort((x, y) => (x.memberId < y.memberId ? -1 : 1)) });
    }
    return r.bytes;
  };
  const forged = await g.authenticate();
  g.tap = undefined;
  const forgedAccepted = claims(forged.outcome, 'cam-2') || !(forged.blame?.bad.includes('cam-2') ?? false);
  // 5. what it can learn: nothing but its own path
  await g.leave('cam-5');
  learn();
  healthy(g);
  const c = attackerClosure(knowledge, g.bundlesOnWire());
  const onMyPath = new Set(g.kms.pathOf(L));
  const offPath = [...g.kms.nodeKeys()].filter(([id]) => !onMyPath.has(id)).map(([, k]) => k);
  const othersKeys = others.filter((id) => g.cameras.has(id)).flatMap((id) => [deriveSubkeys(g.K.get(id) as Uint8Array).wrap, deriveSubkeys(g.K.get(id) as Uint8Array).auth]);
  const learned = [...offPath, ...othersKeys].filter((k) => c.holds(k)).length;
  return {
    succeeded: alteredInstalled || authored || droppedUndetected || forgedAccepted || learned > 0,
    detail: `altered relay installed: ${alteredInstalled}; own bundle installed: ${authored}; dropped tag undetected: ${droppedUndetected} (missing: ${dropped.outcome?.kind === 'verified' ? dropped.outcome.missing.join(', ') : '—'}); made-up tag accepted: ${forgedAccepted} (blame bad: ${forged.blame?.bad.join(', ') ?? '—'}); keys off its path learned: ${learned} of ${offPath.length + othersKeys.length}`,
  };
}

const A8: readonly AttackCase[] = [
  { scheme: 'paper Scheme 2', expectSuccess: true, run: a8Paper },
  { scheme: 'hardened', expectSuccess: false, run: a8Hardened, stoppedBy: 'the leader only relays signed bundles and aggregates tags: it cannot change a key, hide a missing camera or invent a tag, and learns nothing off its path' },
];

describe.each(A8)('A8 — the leader has authority over the group key ($scheme)', (t) => {
  it(title(t, 'succeeds: the leader rekeys the members to a key of its choosing, without the KMS'), () => verdict(t));
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
