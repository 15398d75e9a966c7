/**
 * The relay between cameras of a group (the paper's LAN: leader ↔ members): per group and recipient, a queue of
 * messages numbered by one counter per group, read by long poll. In memory and bounded (the newest
 * MAX_PER_RECIPIENT messages, none older than MAX_AGE_MS): a relay, not a store — the protocols above it
 * authenticate what they need and tolerate loss (hardened cameras pull bundles from the KMS; a lost paper
 * message stalls that run, as it would on a LAN).
 */
export interface MailItem {
  readonly seq: number;
  readonly from: string;
  readonly body: Buffer;
  readonly at: number;
}

const MAX_PER_RECIPIENT = 1_000;
const MAX_AGE_MS = 10 * 60_000;

export class Mailbox {
  /**
   * Sequence numbers continue across restarts of the KMS: they start from the start time in microseconds, so a
   * camera that read up to N before a restart still sees every message posted after it.
   */
  private readonly base = Date.now() * 1000;
  private readonly seqs = new Map<string, number>();
  private readonly boxes = new Map<string, MailItem[]>();
  private readonly waiters = new Map<string, Set<() => void>>();
  private closed = false;

  private key(group: string, to: string): string {
    return `${group}\0${to}`;
  }

  post(group: string, from: string, to: readonly string[], body: Uint8Array): number {
    const seq = (this.seqs.get(group) ?? this.base) + 1;
    this.seqs.set(group, seq);
    const item: MailItem = { seq, from, body: Buffer.from(body), at: Date.now() };
    for (const t of new Set(to)) {
      const k = this.key(group, t);
      const box = this.boxes.get(k) ?? [];
      box.push(item);
      while (box.length > MAX_PER_RECIPIENT || (box[0] !== undefined && box[0].at < item.at - MAX_AGE_MS)) box.shift();
      this.boxes.set(k, box);
      for (const w of [...(this.waiters.get(k) ?? [])]) w();
    }
    return seq;
  }

  /** The group's newest sequence number (a reader starting fresh reads after it). */
  head(group: string): number {
    return this.seqs.get(group) ?? this.base;
  }

  async read(group: string, to: string, after: number, waitMs: number, signal?: AbortSignal): Promise<MailItem[]> {
    const k = this.key(group, to);
    const pick = (): MailItem[] => (this.boxes.get(k) ?? []).filter((m) => m.seq > after);
    const now = pick();
    if (now.length > 0 || waitMs <= 0 || this.closed) return now;
    await new Promise<void>((resolve) => {
      const set = this.waiters.get(k) ?? new Set<() => void>();
      this.waiters.set(k, set);
      const done = (): void => {
        clearTimeout(timer);
        set.delete(done);
        signal?.removeEventListener('abort', done);
        resolve();
      };
      const timer = setTimeout(done, waitMs);
      set.add(done);
      signal?.addEventListener('abort', done);
    });
    return pick();
  }

  close(): void {
    this.closed = true;
    for (const set of this.waiters.values()) for (const w of [...set]) w();
  }
}
