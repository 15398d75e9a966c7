/**
 * A camera in a hardened group: holds its sub-keys (K_i^wrap, K_i^auth), the keys on its path in the LKH tree,
 * the current epoch and the hash of the last bundle it accepted — the high-water mark — and nothing else.
 *
 * Acceptance rules for a rekey bundle (`receive`), all of which must hold, else the state is unchanged and the
 * member throws the one generic GroupKeyRefusal (same code, same message, whatever failed):
 *   - it decodes strictly, names this group and degree, and the KMS's signature verifies;
 *   - first bundle after a welcome: exactly the epoch and SHA-256 the KMS-signed welcome names;
 *     afterwards: epoch = current + 1 and prevEpochHash = SHA-256 of the last accepted bundle (a replayed or
 *     older bundle, or one from another chain, is refused);
 *   - the tree's height did not shrink, the root is rekeyed, and walking up from the leaf every rekeyed node
 *     on the path has a wrap under this member's child on the path that opens (AES-256-GCM with the AAD of
 *     wrap.ts); a node not rekeyed keeps its key.
 * A valid bundle for a later epoch (current + 2 or more) is not an error: `receive` answers `gap`, and the
 * caller pulls the missing bundles from the KMS (`bundlesSince`) and applies them with `catchUp`, which takes
 * the whole chain or nothing.
 *
 * `exportState` / `importState` carry everything but the sub-keys (which live in the key store) as plain JSON
 * data; the service persists the state after every accepted bundle, before it uses the new keys, so that a
 * replay is refused after a restart too. `currentContentKey` gives the encrypted-video code this camera's CENC
 * key and KID for the current epoch; `respond` answers a KMS challenge with this camera's tag (auth.ts).
 */
import { GroupKeyRefusal } from '../../errors.js';
import { authTag, challengeSignatureValid, decodeChallenge, encodeCameraTag } from './auth.js';
import { bundleSignatureValid, decodeBundle, GENESIS_PREV_HASH } from './bundle.js';
import type { DecodedBundle } from './bundle.js';
import { idBytes } from './codec.js';
import { epochContentKey } from './content.js';
import type { EpochContentKey } from './content.js';
import { bytesEqual, checkKey, HASH_BYTES, KEY_BYTES, nodeKek, toHex } from './kdf.js';
import type { Subkeys } from './kdf.js';
import { ancestorOf, DEGREES, INDEX_LIMIT, maxHeight, nodeId } from './nodes.js';
import type { Degree } from './nodes.js';
import type { Verifier } from './signature.js';
import { decodeWelcome, welcomeSignatureValid } from './welcome.js';
import { openWrap } from './wrap.js';
import type { Wrap } from './wrap.js';

export interface HardenedMemberOptions {
  readonly groupId: string;
  readonly memberId: string;
  /** deriveSubkeys(K_i). */
  readonly keys: Subkeys;
  /** Checks the KMS's signatures. */
  readonly verify: Verifier;
}

/** A member's persisted state: plain JSON data. Secret (the path keys): store it as the key store's peer. */
export interface MemberState {
  readonly version: 1;
  readonly groupId: string;
  readonly memberId: string;
  readonly degree: Degree;
  readonly slot: number;
  /** The high-water mark: the last epoch accepted (0 before the first bundle). */
  readonly epoch: number;
  readonly height: number;
  /** SHA-256 of the last accepted bundle (hex), or of nothing yet (zeros). */
  readonly lastBundleHash: string;
  /** The path keys, node id → key (hex). */
  readonly pathKeys: readonly (readonly [node: number, keyHex: string])[];
  /** Set from a welcome until its bundle is accepted. */
  readonly pending: { readonly epoch: number; readonly bundleHash: string } | null;
}

export type ReceiveResult = { readonly kind: 'applied'; readonly epoch: number } | { readonly kind: 'gap'; readonly epoch: number; readonly offered: number };

interface Core {
  readonly epoch: number;
  readonly height: number;
  readonly lastHash: Uint8Array;
  readonly keys: ReadonlyMap<number, Uint8Array>;
  readonly pending: { readonly epoch: number; readonly bundleHash: Uint8Array } | null;
}

const refused = (reason: string): GroupKeyRefusal => new GroupKeyRefusal(reason);

export class HardenedMember {
  readonly groupId: string;
  readonly memberId: string;
  readonly degree: Degree;
  readonly slot: number;
  /** Messages refused so far (for the service's audit counters). */
  rejected = 0;
  private readonly keys: Subkeys;
  private readonly verify: Verifier;
  private core: Core;
  private contentCache: EpochContentKey | undefined;

  private constructor(o: HardenedMemberOptions, degree: Degree, slot: number, core: Core) {
    idBytes(o.groupId, 'groupId');
    idBytes(o.memberId, 'memberId');
    checkKey(o.keys.wrap, 'K_i^wrap');
    checkKey(o.keys.auth, 'K_i^auth');
    this.groupId = o.groupId;
    this.memberId = o.memberId;
    this.keys = o.keys;
    this.verify = o.verify;
    this.degree = degree;
    this.slot = slot;
    this.core = core;
  }

  /**
   * A joining camera from its KMS-signed welcome. `highWaterMark`: the last epoch this camera accepted in this
   * group before (from its persisted state), if any — a welcome at or below it is refused.
   */
  static fromWelcome(welcome: Uint8Array, o: HardenedMemberOptions & { readonly highWaterMark?: number }): HardenedMember {
    let d;
    try {
      d = decodeWelcome(welcome);
    } catch {
      throw refused('welcome: malformed');
    }
    const w = d.welcome;
    if (!welcomeSignatureValid(d, o.verify)) throw refused('welcome: signature');
    if (w.groupId !== o.groupId || w.memberId !== o.memberId) throw refused('welcome: not for this camera');
    if (o.highWaterMark !== undefined && w.epoch <= o.highWaterMark) throw refused('welcome: stale');
    return new HardenedMember(o, w.degree, w.slot, {
      epoch: 0,
      height: 0,
      lastHash: GENESIS_PREV_HASH,
      keys: new Map(),
      pending: { epoch: w.epoch, bundleHash: w.bundleHash },
    });
  }

  static importState(s: MemberState, o: HardenedMemberOptions): HardenedMember {
    const fromHex = (h: string, n: number, what: string): Uint8Array => {
      if (!/^[0-9a-f]*$/.test(h) || h.length !== 2 * n) throw refused(`state: bad ${what}`);
      return Uint8Array.from(Buffer.from(h, 'hex'));
    };
    if (s.version !== 1 || s.groupId !== o.groupId || s.memberId !== o.memberId) throw refused('state: not this camera');
    if (!DEGREES.includes(s.degree) || !Number.isInteger(s.slot) || s.slot < 0 || s.slot >= INDEX_LIMIT) throw refused('state: bad slot or degree');
    if (!Number.isSafeInteger(s.epoch) || s.epoch < 0 || !Number.isInteger(s.height) || s.height < 0 || s.height > maxHeight(s.degree)) throw refused('state: bad epoch or height');
    const keys = new Map<number, Uint8Array>();
    for (const [node, key] of s.pathKeys) keys.set(node, fromHex(key, KEY_BYTES, 'path key'));
    for (let level = 1; level <= s.height; level++) if (!keys.has(ancestorOf(s.degree, s.slot, level))) throw refused('state: path key missing');
    if (keys.size !== s.height) throw refused('state: keys off the path');
    const pending = s.pending === null ? null : { epoch: s.pending.epoch, bundleHash: fromHex(s.pending.bundleHash, HASH_BYTES, 'pending hash') };
    return new HardenedMember(o, s.degree, s.slot, { epoch: s.epoch, height: s.height, lastHash: fromHex(s.lastBundleHash, HASH_BYTES, 'bundle hash'), keys, pending });
  }

  exportState(): MemberState {
    const c = this.core;
    return {
      version: 1,
      groupId: this.groupId,
      memberId: this.memberId,
      degree: this.degree,
      slot: this.slot,
      epoch: c.epoch,
      height: c.height,
      lastBundleHash: toHex(c.lastHash),
      pathKeys: [...c.keys].sort((a, b) => a[0] - b[0]).map(([n, k]) => [n, toHex(k)] as const),
      pending: c.pending === null ? null : { epoch: c.pending.epoch, bundleHash: toHex(c.pending.bundleHash) },
    };
  }

  /** The last epoch accepted (0 before the first bundle). */
  get epoch(): number {
    return this.core.epoch;
  }

  get height(): number {
    return this.core.height;
  }

  /** SHA-256 of the last accepted bundle, hex (what the camera tells the KMS it holds). */
  get lastBundleHash(): string {
    return toHex(this.core.lastHash);
  }

  /** The epoch this camera waits for after a welcome, if it has not accepted that bundle yet. */
  get pendingEpoch(): number | undefined {
    return this.core.pending?.epoch;
  }

  /** The current epoch secret (the root key). */
  epochSecret(): Uint8Array {
    const k = this.core.keys.get(nodeId(this.core.height, 0));
    if (k === undefined || this.core.epoch === 0) throw refused('no epoch yet');
    return k;
  }

  /** This camera's CENC content key and KID for the current epoch. */
  currentContentKey(): EpochContentKey {
    if (this.contentCache === undefined || this.contentCache.epoch !== this.core.epoch) this.contentCache = epochContentKey(this.epochSecret(), this.groupId, this.memberId, this.core.epoch);
    return this.contentCache;
  }

  /** Every key this camera holds: its leaf key and its path keys (what a memory dump of it yields). */
  heldKeys(): { readonly node: number; readonly key: Uint8Array }[] {
    return [{ node: nodeId(0, this.slot), key: this.keys.wrap }, ...[...this.core.keys].map(([node, key]) => ({ node, key }))];
  }

  /** Applies one bundle (see the file comment). */
  receive(bundle: Uint8Array): ReceiveResult {
    try {
      const d = this.check(bundle);
      const c = this.core;
      const e = d.bundle.epoch;
      if (c.pending !== null ? e > c.pending.epoch : e > c.epoch + 1) return { kind: 'gap', epoch: c.epoch, offered: e };
      this.core = this.step(c, d);
      return { kind: 'applied', epoch: this.core.epoch };
    } catch (e) {
      this.rejected++;
      throw e instanceof GroupKeyRefusal ? e : refused(`internal: ${String(e)}`);
    }
  }

  /** Applies bundles current + 1, current + 2, … in order, all or none. Returns the new epoch. */
  catchUp(bundles: readonly Uint8Array[]): number {
    try {
      let c = this.core;
      for (const b of bundles) c = this.step(c, this.check(b));
      this.core = c;
      return c.epoch;
    } catch (e) {
      this.rejected++;
      throw e instanceof GroupKeyRefusal ? e : refused(`internal: ${String(e)}`);
    }
  }

  /** This camera's tag for a KMS challenge (as a cameraTag message for the leader). */
  respond(challenge: Uint8Array): Uint8Array {
    try {
      let d;
      try {
        d = decodeChallenge(challenge);
      } catch {
        throw refused('challenge: malformed');
      }
      const ch = d.challenge;
      if (!challengeSignatureValid(d, this.verify)) throw refused('challenge: signature');
      if (ch.groupId !== this.groupId) throw refused('challenge: foreign group');
      if (ch.epoch !== this.core.epoch || this.core.epoch === 0) throw refused('challenge: not this camera’s epoch');
      const tag = authTag(this.keys.auth, { groupId: ch.groupId, epoch: ch.epoch, nonce: ch.nonce, memberId: this.memberId, rosterHash: ch.rosterHash });
      return encodeCameraTag({ groupId: ch.groupId, epoch: ch.epoch, nonce: ch.nonce, memberId: this.memberId, tag });
    } catch (e) {
      this.rejected++;
      throw e;
    }
  }

  /** Decodes and checks what needs no state: structure, group, degree, the KMS's signature. */
  private check(bundle: Uint8Array): DecodedBundle {
    let d: DecodedBundle;
    try {
      d = decodeBundle(bundle);
    } catch {
      throw refused('bundle: malformed');
    }
    if (d.bundle.groupId !== this.groupId || d.bundle.degree !== this.degree) throw refused('bundle: foreign group');
    if (!bundleSignatureValid(d, this.verify)) throw refused('bundle: signature');
    return d;
  }

  /** The state after bundle `d`, or a refusal. Pure. */
  private step(c: Core, d: DecodedBundle): Core {
    const b = d.bundle;
    if (c.pending !== null) {
      if (b.epoch !== c.pending.epoch || !bytesEqual(d.hash, c.pending.bundleHash)) throw refused('bundle: not the welcomed bundle');
    } else {
      if (b.epoch <= c.epoch) throw refused('bundle: stale epoch');
      if (b.epoch !== c.epoch + 1) throw refused('bundle: gap in the chain');
      if (!bytesEqual(b.prevEpochHash, c.lastHash)) throw refused('bundle: prevEpochHash');
    }
    if (b.height < c.height) throw refused('bundle: height');
    const byPair = new Map<string, Wrap>();
    const targets = new Set<number>();
    for (const w of b.wraps) {
      byPair.set(`${w.target}/${w.recipient}`, w);
      targets.add(w.target);
    }
    const keys = new Map<number, Uint8Array>();
    let child = nodeId(0, this.slot);
    let kek = this.keys.wrap;
    for (let level = 1; level <= b.height; level++) {
      const id = ancestorOf(this.degree, this.slot, level);
      const w = byPair.get(`${id}/${child}`);
      let key: Uint8Array | null | undefined;
      if (w !== undefined) {
        key = openWrap(kek, w, { groupId: b.groupId, epoch: b.epoch, target: id, recipient: child });
        if (key === null) throw refused('bundle: unwrap');
      } else {
        if (targets.has(id)) throw refused('bundle: path rekeyed without this camera');
        key = c.keys.get(id);
        if (key === undefined) throw refused('bundle: path key missing');
      }
      keys.set(id, key);
      child = id;
      kek = nodeKek(key);
    }
    if (!targets.has(nodeId(b.height, 0))) throw refused('bundle: root not rekeyed');
    return { epoch: b.epoch, height: b.height, lastHash: d.hash, keys, pending: null };
  }
}
