/**
 * Node identifiers of the LKH key tree: a complete d-ary tree (d = 2 or 4) of height h whose leaves are slots
 * for cameras. Every node has a stable 32-bit id that appears on the wire and in a wrap's AAD:
 *
 *   id = level · 2^24 + index        level 0 = leaf slots, level h = the root (index 0)
 *   children of (L, i) = (L − 1, d·i + k), k = 0 … d − 1;  parent of (L, i) = (L + 1, ⌊i / d⌋)
 *
 * The numbering does not depend on the height: growing the tree puts a new root above the old one, which
 * becomes child 0 at the same (level, index), so existing ids and a camera's slot never change. Capacity is
 * d^h ≤ 2^24 slots (h ≤ 24 for d = 2, ≤ 12 for d = 4).
 */

export type Degree = 2 | 4;
export const DEGREES: readonly Degree[] = [2, 4];

const INDEX_BITS = 24;
export const INDEX_LIMIT = 2 ** INDEX_BITS;

/** The largest height with every index below 2^24. */
export function maxHeight(d: Degree): number {
  return d === 2 ? 24 : 12;
}

export function nodeId(level: number, index: number): number {
  return level * INDEX_LIMIT + index;
}

export function levelOf(id: number): number {
  return Math.floor(id / INDEX_LIMIT);
}

export function indexOf(id: number): number {
  return id % INDEX_LIMIT;
}

/** d^h: the number of leaf slots under a tree of height h. */
export function capacity(d: Degree, height: number): number {
  return d ** height;
}

/** The smallest height (≥ 1) whose capacity holds n slots. */
export function heightFor(d: Degree, n: number): number {
  let h = 1;
  while (capacity(d, h) < n) h++;
  return h;
}

/** The ancestor at `level` of leaf slot `slot`. */
export function ancestorOf(d: Degree, slot: number, level: number): number {
  return nodeId(level, Math.floor(slot / d ** level));
}

/** Is `child` a child of `parent` in a tree of degree d? */
export function isChild(d: Degree, parent: number, child: number): boolean {
  const lp = levelOf(parent);
  return lp >= 1 && levelOf(child) === lp - 1 && Math.floor(indexOf(child) / d) === indexOf(parent);
}

/** Does `id` name a node of a tree of degree d and height h (levels 0 … h)? */
export function inTree(d: Degree, height: number, id: number): boolean {
  const l = levelOf(id);
  return l <= height && indexOf(id) < d ** (height - l);
}
