/**
 * The KMS's side of one hardened group: the LKH tree (tree.ts), the epoch counter, the signed bundle chain and
 * its history, the members' sub-keys, group authentication (auth.ts) and KID resolution (content.ts). Pure: the
 * signing key is behind a `Signer` callback, randomness and the clock are injected, and `exportState` /
 * `importState` hand the service plain data to persist (secret: encrypt it at rest).
 *
 * Epochs: the genesis bundle is epoch 1; every `rekey` — one batch of joins and leaves, or a refresh — makes
 * exactly one bundle for epoch + 1 with a fresh random root (the epoch secret), chained to the previous bundle
 * by prevEpochHash and signed. The KMS keeps every bundle, so a camera that was offline pulls what it missed
 * (`bundlesSince`) instead of being evicted, and every epoch secret, so it can release content keys for old
 * recordings. Joiners get a signed welcome (`welcomeFor`) naming their slot and first bundle.
 *
 * Authentication: `issueChallenge` makes a single-use nonce (valid `challengeTtlMs`, void after any rekey or a
 * restart), `verifyAggregate` checks the leader's XOR aggregate against the roster's tags and reports who is
 * missing, and when the aggregate fails, `blame` verifies the leader's per-camera tags one by one.
 */
import { ErrorCodes, GroupKeyError, GroupKeyRefusal } from '../../errors.js';
import { authTag, canonicalRoster, decodeAggregate, decodeTagList, encodeChallengeBody, NONCE_BYTES, rosterHash, xorTags } from './auth.js';
import { attachSignature, decodeBundle, encodeBundleBody, GENESIS_PREV_HASH, REASON } from './bundle.js';
import { idBytes } from './codec.js';
import { contentKey, kidCameraPart, kidMatchesKey, parseKid } from './content.js';
import { bytesEqual, checkKey, deriveSubkeys, sha256, systemRandom, toHex } from './kdf.js';
import type { Clock, Random, Subkeys } from './kdf.js';
import type { Degree } from './nodes.js';
import { signingInput } from './signature.js';
import type { Signer } from './signature.js';
import { LkhTree } from './tree.js';
import type { RefreshScope, TreeState, WrapPlan } from './tree.js';
import { encodeWelcomeBody } from './welcome.js';
import { NONCE_BYTES as WRAP_NONCE_BYTES, sealWrap } from './wrap.js';

/** How often the service refreshes a group's epoch secret when nothing else rekeys it. */
export const DEFAULT_REFRESH_PERIOD_MS = 60 * 60 * 1000;
/** How long a challenge stays answerable. */
export const DEFAULT_CHALLENGE_TTL_MS = 30_000;
export const DEFAULT_DEGREE: Degree = 4;

/** A camera as the KMS knows it: its identifier and sub-keys (deriveSubkeys(K_i); enrolment is elsewhere). */
export interface KmsMember {
  readonly memberId: string;
  readonly keys: Subkeys;
}

export interface HardenedKmsOptions {
  readonly groupId: string;
  readonly sign: Signer;
  readonly degree?: Degree;
  readonly random?: Random;
  readonly now?: Clock;
  readonly refreshPeriodMs?: number;
  readonly challengeTtlMs?: number;
}

export interface MembershipChanges {
  readonly joins?: readonly KmsMember[];
  readonly leaves?: readonly string[];
  /** Also give every interior node a fresh key ('tree'); the root is always fresh. */
  readonly scope?: RefreshScope;
}

export interface RekeyResult {
  readonly epoch: number;
  /** The encoded, signed bundle to publish to the group. */
  readonly bundle: Uint8Array;
  readonly wraps: number;
  /** REASON flags. */
  readonly reason: number;
  /** Joiners and their slots; each gets `welcomeFor(id)` over its own channel. */
  readonly joined: ReadonlyMap<string, number>;
}

/**
 * A rekey that is signed but not yet current: what a service persists before the KMS makes it visible. Until
 * `persist` returns, every read (membership, bundles, welcomes, the epoch) answers from the previous epoch, so
 * nobody hears of an epoch the service has not stored.
 */
export interface StagedRekey {
  readonly result: RekeyResult;
  /** The new epoch's secret (encrypt it at rest). */
  readonly secret: Uint8Array;
  /** The state as it will be once the new epoch is current (as exportState). */
  state(options?: { readonly sinceEpoch?: number }): KmsState;
}

export interface RekeyOptions {
  /** Stores the staged rekey; if it throws, the rekey is undone and nothing changed. */
  readonly persist?: (staged: StagedRekey) => Promise<void>;
}

/** What a signed rekey changes, applied all at once (to the live state, or to a copy for `StagedRekey.state`). */
interface EpochCommit {
  readonly epoch: number;
  readonly bundle: Uint8Array;
  readonly hash: Uint8Array;
  readonly issuedAt: number;
  readonly secret: Uint8Array;
  readonly joins: readonly { readonly memberId: string; readonly auth: Uint8Array; readonly slot: number }[];
  readonly leaves: readonly string[];
  /** A rebase replaces the tree (a fresh one over the same members); a rekey changes the tree in place. */
  readonly tree?: LkhTree;
}

/** Applies a commit's membership changes to membership and auth-key maps. */
function applyMemberships(c: EpochCommit, memberships: Map<string, Membership>, authKeys: Map<string, Uint8Array>): void {
  for (const id of c.leaves) {
    authKeys.delete(id);
    const m = memberships.get(id) as Membership;
    const open = m.spans.at(-1);
    if (open !== undefined) open.to = c.epoch;
    m.join = null;
  }
  for (const j of c.joins) {
    authKeys.set(j.memberId, Uint8Array.from(j.auth));
    const m = memberships.get(j.memberId) ?? { spans: [], join: null };
    m.spans.push({ from: c.epoch, to: null });
    m.join = { slot: j.slot, epoch: c.epoch };
    memberships.set(j.memberId, m);
  }
}

const copyMembership = (m: Membership): Membership => ({ spans: m.spans.map((x) => ({ ...x })), join: m.join === null ? null : { ...m.join } });

export type AuthOutcome =
  | { readonly kind: 'verified'; readonly epoch: number; readonly present: readonly string[]; readonly missing: readonly string[] }
  /** The aggregate did not verify: ask the leader for its tag list and call `blame`. */
  | { readonly kind: 'failed'; readonly epoch: number; readonly claimed: readonly string[] };

export interface BlameOutcome {
  readonly epoch: number;
  /** Cameras whose own tag verifies. */
  readonly good: readonly string[];
  /** Cameras whose tag does not verify (or who are not in the roster). */
  readonly bad: readonly string[];
  /** Roster members with no tag in the list. */
  readonly missing: readonly string[];
}

interface Membership {
  /** Epochs [from, to) of each membership; to = null while a member. */
  readonly spans: { from: number; to: number | null }[];
  /** The current membership's slot and welcome bundle. */
  join: { readonly slot: number; readonly epoch: number } | null;
}

interface OpenChallenge {
  readonly epoch: number;
  readonly roster: readonly string[];
  readonly rosterHash: Uint8Array;
  readonly expiresAt: number;
  state: 'open' | 'blame';
}

/** The KMS's persisted state for one group: plain JSON data, secret. */
export interface KmsState {
  readonly version: 1;
  readonly groupId: string;
  readonly epoch: number;
  readonly lastBundleHash: string;
  readonly lastRekeyAt: number;
  readonly tree: TreeState;
  readonly authKeys: readonly (readonly [memberId: string, keyHex: string])[];
  readonly memberships: readonly (readonly [memberId: string, spans: readonly { from: number; to: number | null }[], join: { slot: number; epoch: number } | null])[];
  /** Every bundle (base64) and epoch secret (hex), by epoch. */
  readonly bundles: readonly (readonly [epoch: number, base64: string])[];
  readonly secrets: readonly (readonly [epoch: number, hex: string])[];
}

/** The generic refusal of anything a peer sent or asked for (auth, pulls, state): the peer learns nothing. */
const refused = (reason: string): GroupKeyRefusal => new GroupKeyRefusal(reason);
/** A mistake of the KMS's own operator (a bad batch): refused with a specific message. */
const invalid = (message: string): GroupKeyError => new GroupKeyError(ErrorCodes.GROUPKEY_REFUSED, `KMS: ${message}`);

export class HardenedKms {
  readonly groupId: string;
  private readonly signer: Signer;
  private readonly random: Random;
  private readonly now: Clock;
  readonly refreshPeriodMs: number;
  readonly challengeTtlMs: number;
  private tree: LkhTree;
  private currentEpoch = 0;
  private lastHash: Uint8Array = GENESIS_PREV_HASH;
  private lastRekeyAt = 0;
  private historyStartCache: number | undefined;
  private busy = false;
  private readonly authKeys = new Map<string, Uint8Array>();
  private readonly memberships = new Map<string, Membership>();
  private readonly bundles = new Map<number, Uint8Array>();
  private readonly secrets = new Map<number, Uint8Array>();
  private readonly kidCameras = new Map<string, string>();
  private readonly welcomes = new Map<string, Uint8Array>();
  private readonly challenges = new Map<string, OpenChallenge>();

  private constructor(o: HardenedKmsOptions, tree: LkhTree) {
    idBytes(o.groupId, 'groupId');
    this.groupId = o.groupId;
    this.signer = o.sign;
    this.random = o.random ?? systemRandom;
    this.now = o.now ?? Date.now;
    this.refreshPeriodMs = o.refreshPeriodMs ?? DEFAULT_REFRESH_PERIOD_MS;
    this.challengeTtlMs = o.challengeTtlMs ?? DEFAULT_CHALLENGE_TTL_MS;
    this.tree = tree;
  }

  /** A group with its first members, built in one pass (tree.bulk), and its genesis bundle (epoch 1). */
  static async create(o: HardenedKmsOptions & { readonly members: readonly KmsMember[] }): Promise<{ kms: HardenedKms; genesis: RekeyResult }> {
    const random = o.random ?? systemRandom;
    const seen = new Set<string>();
    for (const m of o.members) {
      if (seen.has(m.memberId)) throw invalid(`create: ${m.memberId} twice`);
      seen.add(m.memberId);
    }
    const tree = LkhTree.bulk(o.degree ?? DEFAULT_DEGREE, o.members.map((m) => ({ memberId: m.memberId, wrapKey: m.keys.wrap })), random);
    const kms = new HardenedKms(o, tree);
    const joined = new Map(o.members.map((m, slot) => [m.memberId, slot] as const));
    const genesis = await kms.publish(tree.genesisPlans(), REASON.genesis, o.members, [], joined);
    return { kms, genesis };
  }

  static importState(s: KmsState, o: HardenedKmsOptions): HardenedKms {
    if (s.version !== 1 || s.groupId !== o.groupId) throw refused('state: not this group');
    const k = new HardenedKms(o, LkhTree.importState(s.tree));
    const hex = (h: string): Uint8Array => Uint8Array.from(Buffer.from(h, 'hex'));
    k.currentEpoch = s.epoch;
    k.lastHash = hex(s.lastBundleHash);
    k.lastRekeyAt = s.lastRekeyAt;
    for (const [id, key] of s.authKeys) k.authKeys.set(id, hex(key));
    for (const [id, spans, join] of s.memberships) {
      k.memberships.set(id, { spans: spans.map((x) => ({ ...x })), join: join === null ? null : { ...join } });
      k.kidCameras.set(toHex(kidCameraPart(k.groupId, id)), id);
    }
    for (const [e, b64] of s.bundles) k.bundles.set(e, Uint8Array.from(Buffer.from(b64, 'base64')));
    for (const [e, h] of s.secrets) k.secrets.set(e, hex(h));
    if (!k.bundles.has(k.currentEpoch) || !bytesEqual(sha256(k.bundles.get(k.currentEpoch) as Uint8Array), k.lastHash)) throw refused('state: bundle chain does not end at the current epoch');
    return k;
  }

  /**
   * The state to persist. `sinceEpoch` limits the bundle and secret history to epochs ≥ it (a service that keeps
   * the history in its own tables saves only what is new); importState needs at least the current epoch's.
   */
  exportState(options: { readonly sinceEpoch?: number } = {}): KmsState {
    return this.snapshot(options.sinceEpoch ?? 0, undefined);
  }

  /** The tree, for what reads it outside a rekey: while one is staged the tree already holds the next epoch. */
  private settledTree(): LkhTree {
    if (this.busy) throw invalid('a rekey is in progress: the tree is not settled');
    return this.tree;
  }

  /** The state, with `pending` applied to copies when given (the live state is not touched). */
  private snapshot(since: number, pending: EpochCommit | undefined): KmsState {
    const tree = pending === undefined ? this.settledTree() : (pending.tree ?? this.tree);
    let memberships: ReadonlyMap<string, Membership> = this.memberships;
    let authKeys: ReadonlyMap<string, Uint8Array> = this.authKeys;
    const bundles = [...this.bundles].filter(([e]) => e >= since);
    const secrets = [...this.secrets].filter(([e]) => e >= since);
    if (pending !== undefined) {
      const m = new Map([...this.memberships].map(([id, x]) => [id, copyMembership(x)] as const));
      const a = new Map(this.authKeys);
      applyMemberships(pending, m, a);
      memberships = m;
      authKeys = a;
      if (pending.epoch >= since) {
        bundles.push([pending.epoch, pending.bundle]);
        secrets.push([pending.epoch, pending.secret]);
      }
    }
    return {
      version: 1,
      groupId: this.groupId,
      epoch: pending?.epoch ?? this.currentEpoch,
      lastBundleHash: toHex(pending?.hash ?? this.lastHash),
      lastRekeyAt: pending?.issuedAt ?? this.lastRekeyAt,
      tree: tree.exportState(),
      authKeys: [...authKeys].map(([id, k]) => [id, toHex(k)] as const),
      memberships: [...memberships].map(([id, m]) => [id, m.spans.map((x) => ({ ...x })), m.join === null ? null : { ...m.join }] as const),
      bundles: bundles.map(([e, b]) => [e, Buffer.from(b).toString('base64')] as const),
      secrets: secrets.map(([e, x]) => [e, toHex(x)] as const),
    };
  }

  get epoch(): number {
    return this.currentEpoch;
  }

  /**
   * The first epoch of the current history: 1, or the epoch of the last rebase (a genesis bundle after others).
   * A camera on an epoch before it is on an old history, and joins this one by a welcome.
   */
  get historyStart(): number {
    if (this.historyStartCache === undefined) {
      let e = this.currentEpoch;
      for (; e > 1; e--) {
        const b = this.bundles.get(e);
        if (b === undefined || (decodeBundle(b).bundle.reason & REASON.genesis) !== 0) break;
      }
      this.historyStartCache = e;
    }
    return this.historyStartCache;
  }

  /** When the current epoch was made (ms since the epoch). */
  get lastRekey(): number {
    return this.lastRekeyAt;
  }

  get degree(): Degree {
    return this.tree.degree;
  }

  get height(): number {
    return this.tree.height;
  }

  /** The current members in canonical order (of the current epoch: a rekey being stored is not visible yet). */
  roster(): string[] {
    return canonicalRoster([...this.memberships].filter(([, m]) => m.join !== null).map(([id]) => id));
  }

  isMember(memberId: string): boolean {
    return (this.memberships.get(memberId)?.join ?? null) !== null;
  }

  /** The epoch secret of `epoch` (default: the current one). */
  epochSecret(epoch: number = this.currentEpoch): Uint8Array | undefined {
    return this.secrets.get(epoch);
  }

  /** The current interior node keys by node id (a copy; for tests and tooling — the KMS is trusted with them). */
  nodeKeys(): Map<number, Uint8Array> {
    return this.settledTree().nodeKeys();
  }

  /** Node ids on a member's path, leaf's parent to root (for tests and tooling). */
  pathOf(memberId: string): number[] {
    return this.settledTree().pathOf(memberId);
  }

  /** Has the epoch secret been in use for `refreshPeriodMs` or longer? The service then calls `refresh()`. */
  refreshDue(): boolean {
    return this.now() - this.lastRekeyAt >= this.refreshPeriodMs;
  }

  /** The bundle of one epoch. */
  bundle(epoch: number): Uint8Array | undefined {
    return this.bundles.get(epoch);
  }

  /**
   * What a member that last accepted `epoch` has missed: the bundles of epochs max(epoch + 1, its join epoch) …
   * current, in order. Only for current members.
   */
  bundlesSince(epoch: number, memberId: string): Uint8Array[] {
    const join = this.memberships.get(memberId)?.join;
    if (join === null || join === undefined) throw refused('pull: not a member');
    const out: Uint8Array[] = [];
    for (let e = Math.max(epoch + 1, join.epoch); e <= this.currentEpoch; e++) out.push(this.bundles.get(e) as Uint8Array);
    return out;
  }

  /** A current member's signed welcome (its slot and first bundle), made on request. */
  async welcomeFor(memberId: string): Promise<Uint8Array> {
    const cached = this.welcomes.get(memberId);
    if (cached !== undefined) return cached;
    const join = this.memberships.get(memberId)?.join;
    if (join === null || join === undefined) throw refused('welcome: not a member');
    const body = encodeWelcomeBody({ groupId: this.groupId, memberId, slot: join.slot, degree: this.tree.degree, epoch: join.epoch, bundleHash: sha256(this.bundles.get(join.epoch) as Uint8Array) });
    const w = attachSignature(body, await this.signer(signingInput(body)));
    if (this.memberships.get(memberId)?.join === join) this.welcomes.set(memberId, w);
    return w;
  }

  /**
   * One rekey for a batch of membership changes (see tree.ts): ONE bundle for epoch + 1. With no joins and no
   * leaves it is a refresh. All or nothing: if signing or `options.persist` fails the tree and epoch are as
   * before, and until both are done every read answers from the previous epoch.
   */
  async rekey(changes: MembershipChanges = {}, options: RekeyOptions = {}): Promise<RekeyResult> {
    const joins = changes.joins ?? [];
    const leaves = changes.leaves ?? [];
    const overlap = joins.find((j) => leaves.includes(j.memberId));
    if (overlap !== undefined) throw invalid(`rekey: ${overlap.memberId} both joins and leaves`);
    for (const j of joins) {
      checkKey(j.keys.wrap, 'K_i^wrap');
      checkKey(j.keys.auth, 'K_i^auth');
    }
    let reason = (joins.length > 0 ? REASON.join : 0) | (leaves.length > 0 ? REASON.leave : 0);
    if (reason === 0 || changes.scope === 'tree') reason |= REASON.refresh;
    if (this.busy) throw invalid('rekey: another rekey is in progress');
    this.busy = true;
    try {
      const applied = this.tree.apply({ joins: joins.map((j) => ({ memberId: j.memberId, wrapKey: j.keys.wrap })), leaves, scope: changes.scope ?? 'root' }, this.random);
      try {
        return await this.publish(applied.plans, reason, joins, leaves, applied.joined, options.persist);
      } catch (e) {
        applied.undo();
        throw e;
      }
    } finally {
      this.busy = false;
    }
  }

  join(member: KmsMember): Promise<RekeyResult> {
    return this.rekey({ joins: [member] });
  }

  leave(memberId: string): Promise<RekeyResult> {
    return this.rekey({ leaves: [memberId] });
  }

  /**
   * A new history for a group whose KMS lost epochs (its state was restored from an old backup while its cameras
   * went on): a fresh tree over `members` and a genesis bundle (previous hash zeros) at `toEpoch`, above every epoch
   * any camera may hold, so that each member takes it through a new welcome (a welcome newer than anything it
   * accepted). Epoch secrets and memberships kept from before stay, for the content keys of old recordings; the
   * lost epochs stay lost. Staged and persisted like a rekey.
   */
  async rebase(members: readonly KmsMember[], toEpoch: number, options: RekeyOptions = {}): Promise<RekeyResult> {
    if (!Number.isSafeInteger(toEpoch) || toEpoch <= this.currentEpoch) throw invalid(`rebase: epoch ${toEpoch} is not above the current ${this.currentEpoch}`);
    if (members.length === 0) throw invalid('rebase: no members');
    for (const m of members) {
      checkKey(m.keys.wrap, 'K_i^wrap');
      checkKey(m.keys.auth, 'K_i^auth');
    }
    if (this.busy) throw invalid('rebase: a rekey is in progress');
    this.busy = true;
    try {
      const tree = LkhTree.bulk(this.tree.degree, members.map((m) => ({ memberId: m.memberId, wrapKey: m.keys.wrap })), this.random);
      const joined = new Map(members.map((m, slot) => [m.memberId, slot] as const));
      const current = this.roster();
      return await this.publish(tree.genesisPlans(), REASON.genesis, members, current, joined, options.persist, { epoch: toEpoch, tree });
    } finally {
      this.busy = false;
    }
  }

  /** A periodic refresh: a fresh root ('root', d wraps) or fresh keys for every interior node ('tree'). */
  refresh(scope: RefreshScope = 'root'): Promise<RekeyResult> {
    return this.rekey({ scope });
  }

  /** Seals the plans into a signed bundle for epoch + 1, lets the caller persist it, and commits the new epoch. */
  private async publish(
    plans: readonly WrapPlan[],
    reason: number,
    joins: readonly KmsMember[],
    leaves: readonly string[],
    joined: ReadonlyMap<string, number>,
    persist?: RekeyOptions['persist'],
    rebase?: { readonly epoch: number; readonly tree: LkhTree },
  ): Promise<RekeyResult> {
    const epoch = rebase?.epoch ?? this.currentEpoch + 1;
    const tree = rebase?.tree ?? this.tree;
    const wraps = plans.map((p) => sealWrap(p.kek, p.key, this.random(WRAP_NONCE_BYTES), { groupId: this.groupId, epoch, target: p.target, recipient: p.recipient }));
    const issuedAt = this.now();
    const prevEpochHash = rebase !== undefined ? GENESIS_PREV_HASH : this.lastHash;
    const body = encodeBundleBody({ groupId: this.groupId, epoch, prevEpochHash, issuedAt, reason, degree: tree.degree, height: tree.height, wraps });
    const bundle = attachSignature(body, await this.signer(signingInput(body)));
    const commit: EpochCommit = {
      epoch,
      bundle,
      hash: sha256(bundle),
      issuedAt,
      secret: Uint8Array.from(tree.rootKey),
      joins: joins.map((j) => ({ memberId: j.memberId, auth: j.keys.auth, slot: joined.get(j.memberId) as number })),
      leaves,
      ...(rebase !== undefined ? { tree } : {}),
    };
    const result: RekeyResult = { epoch, bundle, wraps: wraps.length, reason, joined };
    if (persist !== undefined) await persist({ result, secret: commit.secret, state: (o = {}) => this.snapshot(o.sinceEpoch ?? 0, commit) });
    // commit: from here on the new epoch is current
    if (rebase !== undefined) {
      this.tree = rebase.tree;
      this.historyStartCache = epoch;
    }
    this.currentEpoch = epoch;
    this.lastHash = commit.hash;
    this.lastRekeyAt = issuedAt;
    this.bundles.set(epoch, bundle);
    this.secrets.set(epoch, commit.secret);
    this.challenges.clear();
    applyMemberships(commit, this.memberships, this.authKeys);
    for (const id of [...leaves, ...joins.map((j) => j.memberId)]) this.welcomes.delete(id);
    for (const j of joins) this.kidCameras.set(toHex(kidCameraPart(this.groupId, j.memberId)), j.memberId);
    return result;
  }

  // ── group authentication ───────────────────────────────────────────────────────────────────────────────────

  private dropExpired(): void {
    const t = this.now();
    for (const [k, c] of this.challenges) if (c.expiresAt <= t) this.challenges.delete(k);
  }

  /** A signed challenge with a fresh single-use nonce, bound to the current epoch and roster. */
  async issueChallenge(): Promise<Uint8Array> {
    this.dropExpired();
    const nonce = this.random(NONCE_BYTES);
    const roster = this.roster();
    const rh = rosterHash(roster);
    const body = encodeChallengeBody({ groupId: this.groupId, epoch: this.currentEpoch, nonce, rosterHash: rh });
    const signature = await this.signer(signingInput(body));
    this.challenges.set(toHex(nonce), { epoch: this.currentEpoch, roster, rosterHash: rh, expiresAt: this.now() + this.challengeTtlMs, state: 'open' });
    return attachSignature(body, signature);
  }

  private expectedTag(memberId: string, c: OpenChallenge, nonce: Uint8Array): Uint8Array {
    return authTag(this.authKeys.get(memberId) as Uint8Array, { groupId: this.groupId, epoch: c.epoch, nonce, memberId, rosterHash: c.rosterHash });
  }

  /** Takes the challenge a message answers, once: unknown, used, expired, stale or foreign challenges are refused. */
  private take(groupId: string, epoch: number, nonce: Uint8Array, state: OpenChallenge['state']): OpenChallenge {
    this.dropExpired();
    const key = toHex(nonce);
    const c = this.challenges.get(key);
    if (c === undefined || c.state !== state) throw refused('auth: unknown or used challenge');
    this.challenges.delete(key);
    if (groupId !== this.groupId || epoch !== c.epoch || c.epoch !== this.currentEpoch) throw refused('auth: challenge for another group or epoch');
    return c;
  }

  /** Checks the leader's aggregate: who answered, who is missing; `failed` when the XOR does not verify. */
  verifyAggregate(aggregate: Uint8Array): AuthOutcome {
    let a;
    try {
      a = decodeAggregate(aggregate);
    } catch {
      throw refused('auth: malformed aggregate');
    }
    const c = this.take(a.groupId, a.epoch, a.nonce, 'open');
    const inRoster = new Set(c.roster);
    if (a.members.some((m) => !inRoster.has(m))) throw refused('auth: aggregate names a non-member');
    const expected = xorTags(a.members.map((m) => this.expectedTag(m, c, a.nonce)));
    if (!bytesEqual(expected, a.aggregate)) {
      this.challenges.set(toHex(a.nonce), { ...c, state: 'blame' });
      return { kind: 'failed', epoch: c.epoch, claimed: a.members };
    }
    const present = new Set(a.members);
    return { kind: 'verified', epoch: c.epoch, present: a.members, missing: c.roster.filter((m) => !present.has(m)) };
  }

  /** After a failed aggregate: verifies the leader's per-camera tags one by one. */
  blame(tagList: Uint8Array): BlameOutcome {
    let t;
    try {
      t = decodeTagList(tagList);
    } catch {
      throw refused('auth: malformed tag list');
    }
    const c = this.take(t.groupId, t.epoch, t.nonce, 'blame');
    const inRoster = new Set(c.roster);
    const good: string[] = [];
    const bad: string[] = [];
    for (const { memberId, tag } of t.tags) {
      if (inRoster.has(memberId) && bytesEqual(this.expectedTag(memberId, c, t.nonce), tag)) good.push(memberId);
      else bad.push(memberId);
    }
    const listed = new Set(t.tags.map((x) => x.memberId));
    return { epoch: c.epoch, good, bad, missing: c.roster.filter((m) => !listed.has(m)) };
  }

  // ── content keys ───────────────────────────────────────────────────────────────────────────────────────────

  /** (group, camera, epoch) of a KID, if the camera was a member in that epoch. */
  resolveKid(kid: Uint8Array): { readonly groupId: string; readonly cameraId: string; readonly epoch: number } | undefined {
    const p = parseKid(kid);
    if (p === undefined) return undefined;
    const cameraId = this.kidCameras.get(toHex(p.cameraPart));
    if (cameraId === undefined || !this.secrets.has(p.epoch)) return undefined;
    const spans = this.memberships.get(cameraId)?.spans ?? [];
    if (!spans.some((s) => p.epoch >= s.from && (s.to === null || p.epoch < s.to))) return undefined;
    return { groupId: this.groupId, cameraId, epoch: p.epoch };
  }

  /**
   * The content key of a KID (for the licence server), if `resolveKid` knows it and the key this KMS derives is the
   * one the KID was made for. A mismatch means this KMS holds another secret for that epoch than the camera used —
   * its state was rolled back or forked — and `mismatch` says so instead of handing out a wrong key.
   */
  contentKeyFor(kid: Uint8Array): { readonly cameraId: string; readonly epoch: number; readonly kid: Uint8Array; readonly key: Uint8Array } | { readonly mismatch: true; readonly cameraId: string; readonly epoch: number } | undefined {
    const r = this.resolveKid(kid);
    if (r === undefined) return undefined;
    const key = contentKey(this.secrets.get(r.epoch) as Uint8Array, r.cameraId, r.epoch);
    if (!kidMatchesKey(kid, key, this.groupId, r.cameraId)) return { mismatch: true, cameraId: r.cameraId, epoch: r.epoch };
    return { cameraId: r.cameraId, epoch: r.epoch, kid: Uint8Array.from(kid), key };
  }
}

/** A KmsMember from a camera's pairwise key K_i (what enrolment will hand the KMS). */
export function kmsMember(memberId: string, pairwiseKey: Uint8Array): KmsMember {
  return { memberId, keys: deriveSubkeys(pairwiseKey) };
}
