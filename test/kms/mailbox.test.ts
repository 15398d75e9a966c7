/**
 * The relay's bounds (src/kms/mailbox.ts): every quota refuses a post whole, reads come in pages, a read
 * acknowledges what it read and frees its bytes, old messages expire.
 */
import { describe, expect, it } from 'vitest';
import { ErrorCodes } from '../../src/errors.js';
import { DEFAULT_RELAY_LIMITS, Mailbox } from '../../src/kms/mailbox.js';
import type { RelayLimits } from '../../src/kms/mailbox.js';

const KB = 1024;
const small: RelayLimits = { maxMessageBytes: 10 * KB, maxRecipientBytes: 30 * KB, maxRecipientMessages: 5, maxSenderBytes: 50 * KB, maxTotalBytes: 80 * KB, maxAgeMs: 60_000, maxPageBytes: 25 * KB };
const body = (n: number, fill = 1): Uint8Array => new Uint8Array(n).fill(fill);
const limited = (f: () => unknown): void => expect(f).toThrow(expect.objectContaining({ code: ErrorCodes.LIMIT }) as Error);

describe('relay mailbox bounds', () => {
  it('a message larger than the message bound is refused and nothing is queued', () => {
    const m = new Mailbox(small);
    expect(() => m.post('g', 'A', ['B'], body(10 * KB + 1))).toThrow(expect.objectContaining({ code: ErrorCodes.TOO_LARGE }) as Error);
    expect(m.usage('g', 'B')).toEqual({ total: 0, recipient: 0 });
    m.post('g', 'A', ['B'], body(10 * KB));
    expect(m.usage('g', 'B')).toEqual({ total: 10 * KB, recipient: 10 * KB });
  });

  it("a recipient's queue is bounded in bytes and in messages; a post to several is refused whole when one is full", async () => {
    const m = new Mailbox(small);
    for (let i = 0; i < 3; i++) m.post('g', 'A', ['B'], body(10 * KB));
    limited(() => m.post('g', 'C', ['B'], body(1)));
    const head = m.head('g');
    limited(() => m.post('g', 'C', ['D', 'B'], body(1))); // B is full: D gets nothing either
    expect(m.head('g')).toBe(head);
    expect(m.usage('g', 'D').recipient).toBe(0);
    const n = new Mailbox(small);
    for (let i = 0; i < 5; i++) n.post('g', 'A', ['B'], body(1));
    limited(() => n.post('g', 'A', ['B'], body(1)));
    // reading acknowledges: the queue has room again
    const page = await n.read('g', 'B', 0, 0);
    expect(page.items).toHaveLength(5);
    await n.read('g', 'B', page.items.at(-1)?.seq ?? 0, 0);
    n.post('g', 'A', ['B'], body(1));
  });

  it('a sender is bounded over all its recipients, and the relay as a whole, one copy per message', async () => {
    const m = new Mailbox(small);
    for (const to of ['B', 'C', 'D', 'E', 'F']) m.post('g', 'A', [to], body(10 * KB));
    limited(() => m.post('g', 'A', ['G'], body(1))); // A has 50 KiB waiting
    m.post('g', 'X', ['G'], body(10 * KB)); // another sender is not affected
    m.post('g', 'Y', ['B', 'C', 'D'], body(10 * KB)); // one copy: 10 KiB of the total, not 30
    expect(m.usage().total).toBe(70 * KB);
    m.post('g', 'Z', ['H'], body(10 * KB));
    limited(() => m.post('g', 'Z', ['I'], body(1))); // the relay is full (80 KiB)
    // B and C read everything: A's messages to them are freed; Y's message to B, C and D stays until D reads it
    for (const to of ['B', 'C']) await m.read('g', to, Number.MAX_SAFE_INTEGER, 0);
    expect(m.usage().total).toBe(60 * KB);
    await m.read('g', 'D', Number.MAX_SAFE_INTEGER, 0);
    expect(m.usage().total).toBe(40 * KB);
  });

  it('reads come a page at a time (at least one message) and say whether more is waiting; every message arrives once, in order', async () => {
    const m = new Mailbox({ ...small, maxRecipientBytes: 80 * KB, maxRecipientMessages: 100, maxSenderBytes: 80 * KB });
    const sent: number[] = [];
    for (let i = 0; i < 7; i++) sent.push(m.post('g', 'A', ['B'], body(8 * KB, i)));
    const got: number[] = [];
    let after = 0;
    for (;;) {
      const page = await m.read('g', 'B', after, 0);
      expect(page.items.reduce((s, x) => s + x.body.length, 0)).toBeLessThanOrEqual(25 * KB);
      got.push(...page.items.map((x) => x.seq));
      after = page.items.at(-1)?.seq ?? after;
      if (!page.more) break;
    }
    expect(got).toEqual(sent);
    // one message larger than a page still comes, alone
    const big = new Mailbox({ ...small, maxPageBytes: 1 * KB });
    big.post('g', 'A', ['B'], body(5 * KB));
    big.post('g', 'A', ['B'], body(5 * KB));
    expect(await big.read('g', 'B', 0, 0)).toMatchObject({ items: [{ from: 'A' }], more: true });
  });

  it('messages expire after maxAge and free their quota', async () => {
    let now = 1_000_000;
    const m = new Mailbox(small, () => now);
    for (let i = 0; i < 3; i++) m.post('g', 'A', ['B'], body(10 * KB));
    limited(() => m.post('g', 'A', ['B'], body(1)));
    now += small.maxAgeMs + 1;
    m.post('g', 'A', ['B'], body(1));
    expect((await m.read('g', 'B', 0, 0)).items).toHaveLength(1);
  });

  it('a waiting reader is woken by a post; the defaults are the documented ones', async () => {
    const m = new Mailbox();
    const waiting = m.read('g', 'B', 0, 10_000);
    m.post('g', 'A', ['B'], body(3));
    expect((await waiting).items).toHaveLength(1);
    expect(DEFAULT_RELAY_LIMITS).toEqual({ maxMessageBytes: 1 << 20, maxRecipientBytes: 8 << 20, maxRecipientMessages: 1000, maxSenderBytes: 16 << 20, maxTotalBytes: 64 << 20, maxAgeMs: 600_000, maxPageBytes: 1 << 20 });
  });
});
