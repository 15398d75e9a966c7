/**
 * The relay between cameras of a group (the paper's LAN: leader ↔ members): per group and recipient, a queue of
 * messages numbered by one counter per group, read by long poll, a page at a time. In memory and bounded — a
 * relay, not a store: the protocols above it authenticate what they need and tolerate loss (hardened cameras pull
 * bundles from the KMS; a lost paper message stalls that run, as it would on a LAN).
 *
 * Bounds (docs/security.md), so that no camera can grow the KMS or starve another camera's mail:
 *   - a message is at most `maxMessageBytes`;
 *   - a recipient's queue holds at most `maxRecipientBytes` and `maxRecipientMessages`;
 *   - a sender's messages not yet read by all their recipients hold at most `maxSenderBytes`;
 *   - everything queued holds at most `maxTotalBytes` (one copy per message, however many recipients);
 *   - a message expires `maxAgeMs` after it was posted;
 *   - a read returns at most `maxPageBytes` of bodies (at least one message) and says whether more is waiting.
 * A post that would pass a bound is refused (KF_ERR_LIMIT, HTTP 429) and nothing of it is queued. A read with
 * `after` acknowledges everything up to it: those messages leave the reader's queue and free their bytes.
 */
import { KeyframeError, ErrorCodes } from '../errors.js';

export interface MailItem {
  readonly seq: number;
  readonly from: string;
  readonly body: Buffer;
  readonly at: number;
}

export interface RelayLimits {
  readonly maxMessageBytes: number;
  readonly maxRecipientBytes: number;
  readonly maxRecipientMessages: number;
  readonly maxSenderBytes: number;
  readonly maxTotalBytes: number;
  readonly maxAgeMs: number;
  readonly maxPageBytes: number;
}

export const DEFAULT_RELAY_LIMITS: RelayLimits = {
  maxMessageBytes: 1024 * 1024,
  maxRecipientBytes: 8 * 1024 * 1024,
  maxRecipientMessages: 1_000,
  maxSenderBytes: 16 * 1024 * 1024,
  maxTotalBytes: 64 * 1024 * 1024,
  maxAgeMs: 10 * 60_000,
  maxPageBytes: 1024 * 1024,
};

/** A queued message and how many recipients still hold it. */
interface Entry {
  readonly item: MailItem;
  readonly group: string;
  holders: number;
}

interface Box {
  readonly entries: Entry[];
  bytes: number;
}

const quota = (what: string): KeyframeError => new KeyframeError(ErrorCodes.LIMIT, `relay: ${what}; try again once it is read`);

export class Mailbox {
  /**
   * Sequence numbers continue across restarts of the KMS: they start from the start time in microseconds, so a
   * camera that read up to N before a restart still sees every message posted after it.
   */
  private readonly base = Date.now() * 1000;
  private readonly seqs = new Map<string, number>();
  private readonly boxes = new Map<string, Box>();
  private readonly senderBytes = new Map<string, number>();
  private totalBytes = 0;
  private readonly waiters = new Map<string, Set<() => void>>();
  private closed = false;

  constructor(
    readonly limits: RelayLimits = DEFAULT_RELAY_LIMITS,
    private readonly now: () => number = Date.now,
  ) {}

  private key(group: string, to: string): string {
    return `${group}\0${to}`;
  }

  private senderKey(group: string, from: string): string {
    return `${group}\0${from}`;
  }

  /**
   * Throws KF_ERR_LIMIT when a message of `size` bytes from `from` to `to` would pass a bound. The HTTP layer asks
   * this from the Content-Length before it reads a body, so that a refused flood costs the KMS nothing more.
   */
  admit(group: string, from: string, to: readonly string[], size: number): void {
    const l = this.limits;
    if (size > l.maxMessageBytes) throw new KeyframeError(ErrorCodes.TOO_LARGE, `relay: a message is at most ${l.maxMessageBytes} bytes, this one is ${size}`);
    this.expire();
    if (this.totalBytes + size > l.maxTotalBytes) throw quota('the relay is full');
    const sk = this.senderKey(group, from);
    if ((this.senderBytes.get(sk) ?? 0) + size > l.maxSenderBytes) throw quota(`${from} has ${this.senderBytes.get(sk) ?? 0} bytes waiting to be read`);
    for (const t of new Set(to)) {
      const box = this.boxes.get(this.key(group, t));
      if (box !== undefined && (box.bytes + size > l.maxRecipientBytes || box.entries.length >= l.maxRecipientMessages)) throw quota(`the queue of ${t} is full`);
    }
  }

  /** Queues `body` for every recipient, or refuses it whole (KF_ERR_LIMIT) when a bound would be passed. */
  post(group: string, from: string, to: readonly string[], body: Uint8Array): number {
    const recipients = [...new Set(to)];
    this.admit(group, from, recipients, body.length);
    const size = body.length;
    const sk = this.senderKey(group, from);
    const seq = (this.seqs.get(group) ?? this.base) + 1;
    this.seqs.set(group, seq);
    const entry: Entry = { item: { seq, from, body: Buffer.from(body), at: this.now() }, group, holders: recipients.length };
    this.totalBytes += size;
    this.senderBytes.set(sk, (this.senderBytes.get(sk) ?? 0) + size);
    for (const t of recipients) {
      const k = this.key(group, t);
      const box = this.boxes.get(k) ?? { entries: [], bytes: 0 };
      box.entries.push(entry);
      box.bytes += size;
      this.boxes.set(k, box);
      for (const w of [...(this.waiters.get(k) ?? [])]) w();
    }
    return seq;
  }

  /** One recipient lets go of the entries at the front of its box that `drop` selects. */
  private release(box: Box, drop: (e: Entry) => boolean): void {
    while (box.entries.length > 0 && drop(box.entries[0] as Entry)) {
      const e = box.entries.shift() as Entry;
      box.bytes -= e.item.body.length;
      if (--e.holders === 0) {
        this.totalBytes -= e.item.body.length;
        const sk = this.senderKey(e.group, e.item.from);
        const left = (this.senderBytes.get(sk) ?? 0) - e.item.body.length;
        if (left > 0) this.senderBytes.set(sk, left);
        else this.senderBytes.delete(sk);
      }
    }
  }

  /** Drops every message older than maxAgeMs (boxes are in posting order). */
  private expire(): void {
    const oldest = this.now() - this.limits.maxAgeMs;
    for (const [k, box] of this.boxes) {
      this.release(box, (e) => e.item.at < oldest);
      if (box.entries.length === 0) this.boxes.delete(k);
    }
  }

  /** The group's newest sequence number (a reader starting fresh reads after it). */
  head(group: string): number {
    return this.seqs.get(group) ?? this.base;
  }

  /** Bytes queued: in all, and for one recipient. */
  usage(group?: string, to?: string): { total: number; recipient: number } {
    const box = group !== undefined && to !== undefined ? this.boxes.get(this.key(group, to)) : undefined;
    return { total: this.totalBytes, recipient: box?.bytes ?? 0 };
  }

  /**
   * The messages for `to` after `after` (which acknowledges everything up to it), at most maxPageBytes of them;
   * waits up to `waitMs` when there are none.
   */
  async read(group: string, to: string, after: number, waitMs: number, signal?: AbortSignal): Promise<{ items: MailItem[]; more: boolean }> {
    const k = this.key(group, to);
    const box = this.boxes.get(k);
    if (box !== undefined) {
      this.release(box, (e) => e.item.seq <= after);
      if (box.entries.length === 0) this.boxes.delete(k);
    }
    const page = (): { items: MailItem[]; more: boolean } => {
      const entries = this.boxes.get(k)?.entries ?? [];
      const items: MailItem[] = [];
      let bytes = 0;
      for (const e of entries) {
        if (e.item.seq <= after) continue;
        if (items.length > 0 && bytes + e.item.body.length > this.limits.maxPageBytes) return { items, more: true };
        items.push(e.item);
        bytes += e.item.body.length;
      }
      return { items, more: false };
    };
    const now = page();
    if (now.items.length > 0 || waitMs <= 0 || this.closed) return now;
    await new Promise<void>((resolve) => {
      const set = this.waiters.get(k) ?? new Set<() => void>();
      this.waiters.set(k, set);
      const done = (): void => {
        clearTimeout(timer);
        set.delete(done);
        if (set.size === 0) this.waiters.delete(k);
        signal?.removeEventListener('abort', done);
        resolve();
      };
      const timer = setTimeout(done, waitMs);
      set.add(done);
      signal?.addEventListener('abort', done);
    });
    return page();
  }

  close(): void {
    this.closed = true;
    for (const set of this.waiters.values()) for (const w of [...set]) w();
  }
}
