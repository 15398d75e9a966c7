/**
 * The LKH key tree the KMS keeps per group (RFC 2627; Wong–Gouda–Lam key graphs): a complete d-ary tree
 * (nodes.ts) whose leaf slots hold cameras — a leaf's key is the camera's K_i^wrap — whose interior nodes hold
 * random 32-byte keys, and whose root key is the group's epoch secret. A camera holds the keys on the path from
 * its leaf to the root, nothing else.
 *
 * `apply` performs one rekey for a batch of joins and leaves (and optionally a refresh of every interior node):
 *
 * 1. leavers' slots are emptied; joiners take the lowest free slot (the tree grows by a root level when full —
 *    the old root becomes child 0 of the new one; it never shrinks, so slots and node ids are stable);
 * 2. every node on the path of a changed slot, the root, every node a growth created and the old root below
 *    them, gets a FRESH random key (nothing is hashed forward: the new keys are independent of everything a
 *    leaver or a joiner held; and an epoch secret never stays on as an interior key, so it never wraps a later
 *    one); a node whose subtree is now empty is deleted instead;
 * 3. bottom-up, each new key is planned to be wrapped under the (new, where also replaced) key of each of its
 *    non-empty children — never under a leaver's leaf, which is gone.
 *
 * So a leaver holds no key that opens any wrap of the rekey (forward secrecy: the keys it held on its path are
 * all replaced, and every replacement is wrapped only under keys it never held), and a joiner receives only the
 * new keys of its path, under its own leaf key (backward secrecy). One batch of L changes replaces the union of
 * their paths once (≈ L·d·log_d(n/L) wraps). A single leave costs at most d·h − 1 wraps (h = ⌈log_d n⌉).
 *
 * `apply` mutates the tree and returns an `undo` so that the KMS can roll back if signing the bundle fails.
 */
import { ErrorCodes, GroupKeyError } from '../../errors.js';
import { idBytes } from './codec.js';
import { checkKey, KEY_BYTES, nodeKek, toHex } from './kdf.js';
import type { Random } from './kdf.js';
import { ancestorOf, capacity, DEGREES, heightFor, indexOf, levelOf, maxHeight, nodeId } from './nodes.js';
import type { Degree } from './nodes.js';

export interface TreeLeaf {
  readonly memberId: string;
  /** The camera's K_i^wrap. */
  readonly wrapKey: Uint8Array;
}

interface TreeNode {
  readonly key: Uint8Array;
  readonly kek: Uint8Array;
  /** Occupied leaf slots below. */
  readonly count: number;
}

/** One wrap to make: `key` (the new key of `target`) under `kek` (the key-encryption key of `recipient`). */
export interface WrapPlan {
  readonly target: number;
  readonly recipient: number;
  readonly key: Uint8Array;
  readonly kek: Uint8Array;
}

/** 'root': only the nodes the changes touch, and the root. 'tree': every interior node gets a fresh key. */
export type RefreshScope = 'root' | 'tree';

export interface TreeChanges {
  readonly joins?: readonly TreeLeaf[];
  readonly leaves?: readonly string[];
  readonly scope?: RefreshScope;
}

export interface AppliedChanges {
  /** In canonical (target, recipient) order. */
  readonly plans: readonly WrapPlan[];
  /** Each joiner's slot. */
  readonly joined: ReadonlyMap<string, number>;
  /** Restores the tree as it was before `apply`. */
  readonly undo: () => void;
}

/** The tree as plain data (hex keys), for the KMS's persisted state. */
export interface TreeState {
  readonly degree: Degree;
  readonly height: number;
  readonly nextSlot: number;
  readonly freeSlots: readonly number[];
  readonly leaves: readonly (readonly [slot: number, memberId: string, wrapKeyHex: string])[];
  readonly nodes: readonly (readonly [id: number, keyHex: string, count: number])[];
}

function refuse(message: string): GroupKeyError {
  return new GroupKeyError(ErrorCodes.GROUPKEY_REFUSED, `key tree: ${message}`);
}

function makeNode(key: Uint8Array, count: number): TreeNode {
  checkKey(key, 'node key');
  return { key, kek: nodeKek(key), count };
}

function insertSorted(xs: number[], v: number): void {
  let lo = 0;
  let hi = xs.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if ((xs[mid] as number) < v) lo = mid + 1;
    else hi = mid;
  }
  xs.splice(lo, 0, v);
}

export class LkhTree {
  readonly degree: Degree;
  private h: number;
  private nextSlot: number;
  private free: number[];
  private readonly leaves = new Map<number, TreeLeaf>();
  private readonly slots = new Map<string, number>();
  private readonly nodes = new Map<number, TreeNode>();

  private constructor(degree: Degree, height: number, nextSlot: number, free: number[]) {
    if (!DEGREES.includes(degree)) throw refuse(`degree ${degree as number} (must be 2 or 4)`);
    this.degree = degree;
    this.h = height;
    this.nextSlot = nextSlot;
    this.free = free;
  }

  /**
   * A tree holding `members` in slots 0 … n − 1, every non-empty node keyed from `random` in one pass — no
   * per-member rekeys (n = 10,000 builds in milliseconds).
   */
  static bulk(degree: Degree, members: readonly TreeLeaf[], random: Random): LkhTree {
    const n = members.length;
    const t = new LkhTree(degree, heightFor(degree, Math.max(n, 1)), n, []);
    if (t.h > maxHeight(degree)) throw refuse(`${n} members exceed the tree's capacity`);
    members.forEach((m, slot) => t.setLeaf(slot, m));
    for (let level = 1; level <= t.h; level++) {
      const span = degree ** level;
      const count = Math.max(1, Math.ceil(n / span)); // the root exists even in an empty group
      for (let index = 0; index < count; index++) t.nodes.set(nodeId(level, index), makeNode(random(KEY_BYTES), Math.max(0, Math.min(span, n - index * span))));
    }
    return t;
  }

  static importState(s: TreeState): LkhTree {
    const t = new LkhTree(s.degree, s.height, s.nextSlot, [...s.freeSlots]);
    for (const [slot, memberId, wrap] of s.leaves) t.setLeaf(slot, { memberId, wrapKey: Uint8Array.from(Buffer.from(wrap, 'hex')) });
    for (const [id, key, count] of s.nodes) t.nodes.set(id, makeNode(Uint8Array.from(Buffer.from(key, 'hex')), count));
    if (!t.nodes.has(t.rootId)) throw refuse('imported tree has no root');
    return t;
  }

  exportState(): TreeState {
    return {
      degree: this.degree,
      height: this.h,
      nextSlot: this.nextSlot,
      freeSlots: [...this.free],
      leaves: [...this.leaves].sort((a, b) => a[0] - b[0]).map(([slot, l]) => [slot, l.memberId, toHex(l.wrapKey)] as const),
      nodes: [...this.nodes].sort((a, b) => a[0] - b[0]).map(([id, n]) => [id, toHex(n.key), n.count] as const),
    };
  }

  get height(): number {
    return this.h;
  }

  get rootId(): number {
    return nodeId(this.h, 0);
  }

  /** The epoch secret. */
  get rootKey(): Uint8Array {
    return (this.nodes.get(this.rootId) as TreeNode).key;
  }

  get size(): number {
    return this.leaves.size;
  }

  /** Members in slot order. */
  members(): string[] {
    return [...this.leaves].sort((a, b) => a[0] - b[0]).map(([, l]) => l.memberId);
  }

  has(memberId: string): boolean {
    return this.slots.has(memberId);
  }

  slotOf(memberId: string): number | undefined {
    return this.slots.get(memberId);
  }

  /** A copy of every interior node key by id. */
  nodeKeys(): Map<number, Uint8Array> {
    return new Map([...this.nodes].map(([id, n]) => [id, Uint8Array.from(n.key)] as const));
  }

  get nodeCount(): number {
    return this.nodes.size;
  }

  /** The keys a member holds: its path from the leaf's parent to the root. */
  pathOf(memberId: string): number[] {
    const slot = this.slots.get(memberId);
    if (slot === undefined) return [];
    const out: number[] = [];
    for (let level = 1; level <= this.h; level++) out.push(ancestorOf(this.degree, slot, level));
    return out;
  }

  private setLeaf(slot: number, leaf: TreeLeaf): void {
    idBytes(leaf.memberId, 'memberId');
    checkKey(leaf.wrapKey, 'K_i^wrap');
    this.leaves.set(slot, leaf);
    this.slots.set(leaf.memberId, slot);
  }

  /** The non-empty children of interior node `id`: their ids, key-encryption keys and member counts. */
  private children(id: number): { id: number; kek: Uint8Array; count: number }[] {
    const level = levelOf(id);
    const first = indexOf(id) * this.degree;
    const out: { id: number; kek: Uint8Array; count: number }[] = [];
    for (let k = 0; k < this.degree; k++) {
      const i = first + k;
      if (level === 1) {
        const leaf = this.leaves.get(i);
        if (leaf !== undefined) out.push({ id: nodeId(0, i), kek: leaf.wrapKey, count: 1 });
      } else {
        const c = this.nodes.get(nodeId(level - 1, i));
        if (c !== undefined && c.count > 0) out.push({ id: nodeId(level - 1, i), kek: c.kek, count: c.count });
      }
    }
    return out;
  }

  /** Wrap plans that hand every member its whole path from its leaf up (the genesis bundle). */
  genesisPlans(): WrapPlan[] {
    const plans: WrapPlan[] = [];
    for (const id of [...this.nodes.keys()].sort((a, b) => a - b)) {
      const node = this.nodes.get(id) as TreeNode;
      for (const c of this.children(id)) plans.push({ target: id, recipient: c.id, key: node.key, kek: c.kek });
    }
    return plans;
  }

  /** One rekey for a batch of joins and leaves (see the file comment). Validates the batch before changing anything. */
  apply(changes: TreeChanges, random: Random): AppliedChanges {
    const joins = changes.joins ?? [];
    const leaves = changes.leaves ?? [];
    const leaving = new Set(leaves);
    if (leaving.size !== leaves.length) throw refuse('a member leaves twice in one batch');
    for (const id of leaves) if (!this.slots.has(id)) throw refuse(`${id} is not a member`);
    const joining = new Set<string>();
    for (const j of joins) {
      idBytes(j.memberId, 'memberId');
      checkKey(j.wrapKey, 'K_i^wrap');
      if (joining.has(j.memberId)) throw refuse(`${j.memberId} joins twice in one batch`);
      if (this.slots.has(j.memberId)) throw refuse(`${j.memberId} is already a member`);
      joining.add(j.memberId);
    }
    if (this.leaves.size - leaves.length + joins.length > capacity(this.degree, maxHeight(this.degree))) throw refuse('the tree is full');

    // undo log: first-touch values
    const saved = { h: this.h, nextSlot: this.nextSlot, free: [...this.free] };
    const nodeUndo = new Map<number, TreeNode | undefined>();
    const leafUndo = new Map<number, TreeLeaf | undefined>();
    const touchNode = (id: number): void => {
      if (!nodeUndo.has(id)) nodeUndo.set(id, this.nodes.get(id));
    };
    const touchLeaf = (slot: number): void => {
      if (!leafUndo.has(slot)) leafUndo.set(slot, this.leaves.get(slot));
    };
    const undo = (): void => {
      for (const [slot, before] of leafUndo) {
        const now = this.leaves.get(slot);
        if (now !== undefined) this.slots.delete(now.memberId);
        if (before === undefined) this.leaves.delete(slot);
        else {
          this.leaves.set(slot, before);
          this.slots.set(before.memberId, slot);
        }
      }
      for (const [id, before] of nodeUndo) {
        if (before === undefined) this.nodes.delete(id);
        else this.nodes.set(id, before);
      }
      this.h = saved.h;
      this.nextSlot = saved.nextSlot;
      this.free = saved.free;
    };

    const changed: number[] = [];
    for (const id of leaves) {
      const slot = this.slots.get(id) as number;
      touchLeaf(slot);
      this.leaves.delete(slot);
      this.slots.delete(id);
      insertSorted(this.free, slot);
      changed.push(slot);
    }
    const oldHeight = this.h;
    const joined = new Map<string, number>();
    for (const j of joins) {
      const slot = this.free.length > 0 ? (this.free.shift() as number) : this.nextSlot++;
      while (slot >= capacity(this.degree, this.h)) this.h++;
      touchLeaf(slot);
      this.setLeaf(slot, { memberId: j.memberId, wrapKey: j.wrapKey });
      joined.set(j.memberId, slot);
      changed.push(slot);
    }

    const refresh = new Set<number>([this.rootId]);
    for (const slot of changed) for (let level = 1; level <= this.h; level++) refresh.add(ancestorOf(this.degree, slot, level));
    // a growth keys the new levels and re-keys the old root: an epoch secret is never used as a KEK
    if (this.h > oldHeight) for (let level = oldHeight; level <= this.h; level++) refresh.add(nodeId(level, 0));
    if (changes.scope === 'tree') for (const id of this.nodes.keys()) refresh.add(id);

    const plans: WrapPlan[] = [];
    for (const id of [...refresh].sort((a, b) => a - b)) {
      const kids = this.children(id);
      const count = kids.reduce((s, c) => s + c.count, 0);
      touchNode(id);
      if (count === 0 && id !== this.rootId) {
        this.nodes.delete(id);
        continue;
      }
      const node = makeNode(random(KEY_BYTES), count);
      this.nodes.set(id, node);
      for (const c of kids) plans.push({ target: id, recipient: c.id, key: node.key, kek: c.kek });
    }
    return { plans, joined, undo };
  }
}
