/** Box headers and the box writer: round trips as properties, and the bounds checks on malformed headers. */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { MediaError } from '../../../src/errors.js';
import { box, boxPayload, childrenStart, findBoxes, fullBox, iterateBoxes, largeBox, readBoxHeader, readFullBoxHeader } from '../../../src/media/mp4/index.js';
import type { BoxHeader } from '../../../src/media/mp4/index.js';

type Tree = { type: string; large: boolean; payload: Uint8Array } | { type: string; large: boolean; children: Tree[] };

/** Types that findBoxes descends into at a fixed offset (stsd, avc1 …) are left out: these trees are plain. */
const fourcc = fc.stringMatching(/^[a-z][a-z0-9 ]{3}$/).filter((t) => !['stsd', 'dref', 'meta', 'avc1', 'avc3', 'encv', 'hvc1', 'hev1', 'mp4a', 'enca', 'uuid'].includes(t));

const tree: fc.Arbitrary<Tree> = fc.letrec<{ node: Tree }>((tie) => ({
  node: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    fc.record({ type: fourcc, large: fc.boolean(), payload: fc.uint8Array({ maxLength: 64 }) }),
    fc.record({ type: fourcc, large: fc.boolean(), children: fc.array(tie('node'), { maxLength: 4 }) }),
  ),
})).node;

function write(t: Tree): Uint8Array {
  const make = t.large ? largeBox : box;
  return 'payload' in t ? make(t.type, t.payload) : make(t.type, ...t.children.map(write));
}

/** Reads `buf[start, end)` as the list `trees` describes, checking every header and payload. */
function check(buf: Uint8Array, start: number, end: number, trees: readonly Tree[]): void {
  const headers = [...iterateBoxes(buf, start, end)];
  expect(headers.map((h) => h.type)).toEqual(trees.map((t) => t.type));
  let pos = start;
  headers.forEach((h, i) => {
    const t = trees[i] as Tree;
    expect(h.offset).toBe(pos);
    expect(h.headerSize).toBe(t.large ? 16 : 8);
    expect(h).toEqual(readBoxHeader(buf, h.offset, end));
    if ('payload' in t) expect(Buffer.from(boxPayload(buf, h)).equals(Buffer.from(t.payload))).toBe(true);
    else check(buf, childrenStart(h), h.offset + h.size, t.children);
    pos += h.size;
  });
  expect(pos).toBe(end);
}

function expectMediaError(f: () => unknown, pattern?: RegExp): MediaError {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(MediaError);
    if (pattern !== undefined) expect((e as Error).message).toMatch(pattern);
    return e as MediaError;
  }
  throw new Error('expected a MediaError');
}

const u32 = (v: number): Uint8Array => Uint8Array.of(v >>> 24, (v >>> 16) & 255, (v >>> 8) & 255, v & 255);
const ascii = (s: string): Uint8Array => new TextEncoder().encode(s);

describe('box write → read', () => {
  it('random trees of boxes (with largesize headers) read back exactly (property)', () => {
    fc.assert(
      fc.property(fc.array(tree, { minLength: 1, maxLength: 4 }), (trees) => {
        const parts = trees.map(write);
        const buf = Buffer.concat(parts);
        check(buf, 0, buf.length, trees);
      }),
      { numRuns: 300 },
    );
  });

  it('findBoxes follows a path through every matching branch, in file order', () => {
    const buf = box('moov', box('trak', box('mdia', box('hdlr', u32(1)))), box('udta'), box('trak', box('mdia', box('hdlr', u32(2)), box('hdlr', u32(3)))));
    const found = findBoxes(buf, ['moov', 'trak', 'mdia', 'hdlr']);
    expect(found.map((h) => Buffer.from(boxPayload(buf, h)).readUInt32BE(0))).toEqual([1, 2, 3]);
    expect(findBoxes(buf, ['moov', 'nope'])).toEqual([]);
    expect(findBoxes(buf, [])).toEqual([]);
  });

  it('findBoxes descends into sample descriptions and sample entries after their fields', () => {
    const avc1 = box('avc1', new Uint8Array(78), box('avcC', Uint8Array.of(1, 2, 3)));
    const stsd = fullBox('stsd', 0, 0, u32(1), avc1);
    const [avcC] = findBoxes(box('stbl', stsd), ['stbl', 'stsd', 'avc1', 'avcC']);
    expect(avcC?.size).toBe(11);
  });

  it('fullBox writes version and flags (property), and refuses values that do not fit', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 255 }), fc.integer({ min: 0, max: 0xffffff }), fc.uint8Array({ maxLength: 40 }), (version, flags, payload) => {
        const b = fullBox('test', version, flags, payload);
        const h = readBoxHeader(b, 0, b.length);
        expect(h).toEqual({ type: 'test', offset: 0, size: 12 + payload.length, headerSize: 8 });
        expect(readFullBoxHeader(b, h)).toEqual({ version, flags });
        expect(Buffer.from(b.subarray(12)).equals(Buffer.from(payload))).toBe(true);
      }),
    );
    expectMediaError(() => fullBox('test', 256, 0));
    expectMediaError(() => fullBox('test', 0, 0x1000000));
    expectMediaError(() => box('toolong'));
    expectMediaError(() => box('ab\u0100c'));
  });

  it('uuid boxes carry their extended type; their children start after it', () => {
    const userType = Uint8Array.from({ length: 16 }, (_, i) => i * 17);
    const b = box('uuid', userType, box('free'));
    const h = readBoxHeader(b, 0, b.length);
    expect(h.type).toBe('uuid');
    expect(h.headerSize).toBe(8);
    expect(Buffer.from(h.userType ?? []).equals(Buffer.from(userType))).toBe(true);
    expect(childrenStart(h)).toBe(24);
    expect([...iterateBoxes(b, childrenStart(h), b.length)].map((c) => c.type)).toEqual(['free']);
    expectMediaError(() => readBoxHeader(box('uuid', new Uint8Array(8)), 0, 16), /extended type/);
  });
});

describe('malformed box headers are MediaErrors', () => {
  it('a size beyond the parent names the box and its offset', () => {
    const inner = box('trak', new Uint8Array(20));
    const buf = box('moov', box('mvhd', new Uint8Array(4)), inner);
    Buffer.from(buf.buffer).writeUInt32BE(inner.length + 1, 8 + 12); // trak one byte too long
    const e = expectMediaError(() => findBoxes(buf, ['moov', 'trak']), /'trak'.*runs past the end of its parent/);
    expect(e.offset).toBe(20);
    expect(e.message).toContain('at byte 20');
  });

  it('a size smaller than the header, a short header, a cut largesize', () => {
    expectMediaError(() => readBoxHeader(Uint8Array.of(0, 0, 0, 7, 0x66, 0x72, 0x65, 0x65), 0, 8), /smaller than its 8-byte header/);
    expectMediaError(() => readBoxHeader(Uint8Array.of(0, 0, 0, 8, 0x66), 0, 5), /needs 8 bytes/);
    expectMediaError(() => readBoxHeader(Uint8Array.of(0, 0, 0, 1, 0x66, 0x72, 0x65, 0x65, 0, 0), 0, 10), /largesize header needs 16/);
    const small = Buffer.from(largeBox('free'));
    small.writeUInt32BE(0, 8);
    small.writeUInt32BE(8, 12); // largesize 8 < 16-byte header
    expectMediaError(() => readBoxHeader(small, 0, small.length), /smaller than its 16-byte header/);
    const huge = Buffer.from(largeBox('free'));
    huge.writeUInt32BE(0x0020_0000, 8); // ≥ 2^53
    expectMediaError(() => readBoxHeader(huge, 0, huge.length), /53 bits/);
    expectMediaError(() => readBoxHeader(new Uint8Array(16), 12, 20), /outside the buffer/);
  });

  it('size 0 extends to the end of the parent, nested too, and cannot loop', () => {
    const buf = Buffer.from(box('moov', box('free', new Uint8Array(4)), box('skip', new Uint8Array(12))));
    buf.writeUInt32BE(0, 8 + 12); // skip: size 0
    const headers = [...iterateBoxes(buf, 8, buf.length)];
    expect(headers.map((h) => [h.type, h.size])).toEqual([['free', 12], ['skip', 20]]);
    const top = Buffer.from(box('mdat', new Uint8Array(100)));
    top.writeUInt32BE(0, 0);
    expect(readBoxHeader(top, 0, top.length).size).toBe(108);
  });

  it('trailing zero bytes shorter than a header end a container (QuickTime terminator); anything else does not', () => {
    const ok = Buffer.concat([box('free'), new Uint8Array(4)]);
    expect([...iterateBoxes(ok, 0, ok.length)].map((h) => h.type)).toEqual(['free']);
    const bad = Buffer.concat([box('free'), ascii('abcd')]);
    expectMediaError(() => [...iterateBoxes(bad, 0, bad.length)], /needs 8 bytes/);
  });

  it('never throws anything but MediaError on random bytes (property)', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), fc.array(fc.constantFrom('moov', 'trak', 'mdia', 'stsd', 'avc1', 'uuid', 'free')), (bytes, path) => {
        try {
          const all: BoxHeader[] = findBoxes(bytes, path.length > 0 ? path : ['moov']);
          for (const h of all) expect(h.offset + h.size).toBeLessThanOrEqual(bytes.length);
        } catch (e) {
          expect(e).toBeInstanceOf(MediaError);
        }
      }),
      { numRuns: 2000 },
    );
  });
});
