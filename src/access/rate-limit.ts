/**
 * Login throttling (OWASP Authentication Cheat Sheet, "Account lockout"): failures are counted per account and per
 * client address over a sliding window; over the limit, further attempts are refused without checking the password
 * until old failures leave the window. A name that is not an account is counted like one (no hint that it
 * exists). The table is bounded: when full, the oldest keys are dropped first.
 */
export interface RateLimitOptions {
  /** Failures allowed within the window. */
  readonly limit: number;
  readonly windowMs: number;
  /** Most keys tracked (default 100,000). */
  readonly maxKeys?: number;
}

export class FailureCounter {
  private readonly failures = new Map<string, number[]>();
  private readonly maxKeys: number;

  constructor(private readonly o: RateLimitOptions) {
    this.maxKeys = o.maxKeys ?? 100_000;
  }

  private recent(key: string, now: number): number[] {
    const list = (this.failures.get(key) ?? []).filter((t) => now - t < this.o.windowMs);
    if (list.length === 0) this.failures.delete(key);
    else this.failures.set(key, list);
    return list;
  }

  /** Whether `key` is over its limit now. */
  blocked(key: string, now: number): boolean {
    return this.recent(key, now).length >= this.o.limit;
  }

  /** When `key` may try again (ms since the epoch), or undefined when it may now. */
  retryAt(key: string, now: number): number | undefined {
    const list = this.recent(key, now);
    if (list.length < this.o.limit) return undefined;
    return (list[list.length - this.o.limit] as number) + this.o.windowMs;
  }

  fail(key: string, now: number): void {
    const list = this.recent(key, now);
    list.push(now);
    if (list.length > this.o.limit) list.splice(0, list.length - this.o.limit);
    this.failures.delete(key);
    this.failures.set(key, list);
    while (this.failures.size > this.maxKeys) {
      const oldest = this.failures.keys().next().value;
      if (oldest === undefined) break;
      this.failures.delete(oldest);
    }
  }

  clear(key: string): void {
    this.failures.delete(key);
  }
}
