/**
 * Operation counters for the paper's §5.6 analysis. Each role instance (KMS, leader, every camera) owns one
 * `CountingPrimitives`; every E, D, h and ⊕ it performs goes through it and is counted as it runs, under the
 * phase its driver has set (`distribution`, `join`, `leave`, …) and under the paper symbol the operation
 * produces or opens (`EGSK_IC`, `MAC_ICM`, …), so a table cell can say which formulas it is made of.
 */
import { aesCtrDecrypt, aesCtrEncrypt, IV_BYTES, sha256, xorBytes } from './primitives.js';
import type { Part, Random } from './primitives.js';

export type OpKind = 'E' | 'D' | 'H' | 'X';
export const OP_KINDS: readonly OpKind[] = ['E', 'D', 'H', 'X'];

/** E: encryptions, D: decryptions, H: hashes, X: XORs of two 32-byte strings. */
export type OpCounts = Readonly<Record<OpKind, number>>;

export const NO_OPS: OpCounts = { E: 0, D: 0, H: 0, X: 0 };

export function addOps(a: OpCounts, b: OpCounts): OpCounts {
  return { E: a.E + b.E, D: a.D + b.D, H: a.H + b.H, X: a.X + b.X };
}

/** One operation of one kind on one paper symbol, e.g. `{ kind: 'D', label: 'EGSK_IC', count: 1 }`. */
export interface LabelledOps {
  readonly kind: OpKind;
  readonly label: string;
  readonly count: number;
}

interface PhaseTally {
  counts: Record<OpKind, number>;
  readonly labels: Map<string, LabelledOps>;
}

export class OpCounter {
  /** The phase new operations are counted under; the driver of a run sets it. */
  phase = 'setup';
  private readonly phases = new Map<string, PhaseTally>();

  record(kind: OpKind, label: string): void {
    let t = this.phases.get(this.phase);
    if (t === undefined) {
      t = { counts: { E: 0, D: 0, H: 0, X: 0 }, labels: new Map() };
      this.phases.set(this.phase, t);
    }
    t.counts[kind] += 1;
    const key = `${kind} ${label}`;
    const prev = t.labels.get(key);
    t.labels.set(key, { kind, label, count: (prev?.count ?? 0) + 1 });
  }

  /** Counts in one phase (zeros for a phase with no operations). */
  inPhase(phase: string): OpCounts {
    const t = this.phases.get(phase);
    return t === undefined ? NO_OPS : { ...t.counts };
  }

  /** Counts over all phases. */
  total(): OpCounts {
    let sum = NO_OPS;
    for (const t of this.phases.values()) sum = addOps(sum, t.counts);
    return sum;
  }

  /** The operations of one phase by paper symbol, in the order they first ran. */
  breakdown(phase: string): readonly LabelledOps[] {
    return [...(this.phases.get(phase)?.labels.values() ?? [])];
  }

  phaseNames(): readonly string[] {
    return [...this.phases.keys()];
  }
}

/** The primitives of ./primitives.ts, counted. `label` names the paper symbol produced (E, H, ⊕) or opened (D). */
export class CountingPrimitives {
  readonly counter: OpCounter;
  private readonly rnd: Random;

  constructor(random: Random, counter: OpCounter = new OpCounter()) {
    this.rnd = random;
    this.counter = counter;
  }

  random(n: number): Uint8Array {
    return this.rnd(n);
  }

  h(label: string, ...parts: readonly Part[]): Uint8Array {
    this.counter.record('H', label);
    return sha256(parts);
  }

  E(label: string, key: Uint8Array, plaintext: Uint8Array): Uint8Array {
    this.counter.record('E', label);
    return aesCtrEncrypt(key, this.rnd(IV_BYTES), plaintext);
  }

  D(label: string, key: Uint8Array, ciphertext: Uint8Array): Uint8Array {
    this.counter.record('D', label);
    return aesCtrDecrypt(key, ciphertext);
  }

  xor(label: string, a: Uint8Array, b: Uint8Array): Uint8Array {
    this.counter.record('X', label);
    return xorBytes(a, b);
  }

  /** a₁ ⊕ a₂ ⊕ … ⊕ last, counted as one XOR per ⊕ sign. */
  xorAll(label: string, items: readonly Uint8Array[], last: Uint8Array): Uint8Array {
    let acc = last;
    for (const it of items) acc = this.xor(label, it, acc);
    return acc;
  }
}
