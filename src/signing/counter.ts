/**
 * The per-camera monotonic unit counter (docs/signed-video.md §3). Write-ahead: values are handed out only after
 * a block of them has been reserved in a CounterStore (which persists the first value not yet reserved), so a crash
 * or restart skips values but never repeats one. The counter itself does no I/O: the store does (the camera's is
 * DEV/counter.json, src/signing/counter-file.ts; tests may use MemoryCounterStore).
 */
import { ErrorCodes, InputError, KeyframeError } from '../errors.js';

export const COUNTER_MAX = (1n << 64n) - 1n;

/** Where reserved blocks are recorded. */
export interface CounterStore {
  /**
   * Reserves `size` values: persists "first value not yet reserved = base + size" before returning `base` (the first
   * value not reserved before). Must be atomic against other reservations of the same store.
   */
  reserveBlock(size: bigint): Promise<bigint>;
}

/** A store in memory (values repeat after a restart: for tests and one-shot tools only). */
export class MemoryCounterStore implements CounterStore {
  constructor(private next = 0n) {}
  reserveBlock(size: bigint): Promise<bigint> {
    const base = this.next;
    if (base + size > COUNTER_MAX) return Promise.reject(new KeyframeError(ErrorCodes.INTERNAL, 'unit counter exhausted'));
    this.next = base + size;
    return Promise.resolve(base);
  }
}

export class UnitCounter {
  private next = 0n;
  private limit = 0n;
  private pending: Promise<unknown> = Promise.resolve();
  private readonly block: bigint;

  /** A counter over `store`; `block` values are reserved per store write (default 32). */
  constructor(
    private readonly store: CounterStore,
    options: { block?: number } = {},
  ) {
    const block = options.block ?? 32;
    if (!Number.isInteger(block) || block < 1) throw new InputError('counter block must be a positive integer');
    this.block = BigInt(block);
  }

  /** The next value, reserved in the store before it is returned. */
  reserve(): Promise<bigint> {
    // serialised: two callers never share a block refill
    const p = this.pending.then(async () => {
      if (this.next >= this.limit) {
        const base = await this.store.reserveBlock(this.block);
        this.next = base;
        this.limit = base + this.block;
      }
      return this.next++;
    });
    this.pending = p.catch(() => undefined);
    return p;
  }
}
