/** Emulation prevention (7.4.1) and the Exp-Golomb bit reader/writer, as properties. */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { MediaError } from '../../../src/errors.js';
import { _BitReader, _BitWriter } from '../../../src/media/h264/_bits.js';
import { escapedLength, escapeRbsp, unescapeRbsp } from '../../../src/media/h264/index.js';

/** Bytes biased toward zeros and the escapable values, so that escapes are frequent. */
const zeroish = fc.array(fc.constantFrom(0, 0, 0, 1, 2, 3, 255), { maxLength: 200 }).map((a) => Uint8Array.from(a));
const anyBytes = fc.oneof(zeroish, fc.uint8Array({ maxLength: 200 }));

function hex(b: Uint8Array): string {
  return Buffer.from(b).toString('hex');
}

describe('emulation prevention', () => {
  it('unescape(escape(x)) === x (property)', () => {
    fc.assert(
      fc.property(anyBytes, (x) => {
        expect(hex(unescapeRbsp(escapeRbsp(x)).rbsp)).toBe(hex(x));
      }),
      { numRuns: 2000 },
    );
  });

  it('escaped output never holds 00 00 00/01/02; an inserted 00 00 03 is followed by 00..03 or the end (property)', () => {
    fc.assert(
      fc.property(anyBytes, (x) => {
        const e = escapeRbsp(x);
        for (let i = 0; i + 2 < e.length; i++) {
          if (e[i] === 0 && e[i + 1] === 0) {
            expect(e[i + 2]).toBeGreaterThanOrEqual(3);
            const next = e[i + 3];
            if (e[i + 2] === 3 && next !== undefined) expect(next).toBeLessThanOrEqual(3);
          }
        }
        // an escaped NAL unit never ends in 00 00 (it would read as trailing zeros before a start code)
        expect(e.length >= 2 && e[e.length - 1] === 0 && e[e.length - 2] === 0).toBe(false);
      }),
      { numRuns: 2000 },
    );
  });

  it('escape adds exactly the removed bytes, and epb lists their positions (property)', () => {
    fc.assert(
      fc.property(anyBytes, (x) => {
        const e = escapeRbsp(x);
        const { epb } = unescapeRbsp(e);
        expect(e.length - x.length).toBe(epb.length);
        for (const p of epb) {
          expect(e[p]).toBe(3);
          expect(e[p - 1]).toBe(0);
          expect(e[p - 2]).toBe(0);
        }
        expect([...epb].sort((a, b) => a - b)).toEqual(epb);
      }),
      { numRuns: 1000 },
    );
  });

  it('escapedLength(n) is the shortest escaped prefix that holds the first n RBSP bytes (property)', () => {
    fc.assert(
      fc.property(anyBytes, (x) => {
        const e = escapeRbsp(x);
        const { epb } = unescapeRbsp(e);
        for (let n = 0; n <= x.length; n++) {
          const k = escapedLength(n, epb);
          expect(k).toBeLessThanOrEqual(e.length);
          expect(hex(unescapeRbsp(e.subarray(0, k)).rbsp)).toBe(hex(x.subarray(0, n)));
          if (n > 0) expect(unescapeRbsp(e.subarray(0, k - 1)).rbsp.length).toBeLessThan(n);
        }
      }),
      { numRuns: 300 },
    );
  });

  it('known vectors, including the trailing 00 00 (cabac_zero_word) case', () => {
    const cases: [string, string][] = [
      ['', ''],
      ['000000', '00000300'],
      ['000001', '00000301'],
      ['000002', '00000302'],
      ['000003', '00000303'],
      ['000004', '000004'],
      ['0000', '000003'],
      ['00', '00'],
      ['00000000', '0000030000' + '03'],
      ['650000010000', '6500000301000003'],
    ];
    for (const [rbsp, escaped] of cases) {
      expect(hex(escapeRbsp(Buffer.from(rbsp, 'hex')))).toBe(escaped);
      expect(hex(unescapeRbsp(Buffer.from(escaped, 'hex')).rbsp)).toBe(rbsp);
    }
  });

  it('unescape returns the input itself when there is nothing to remove', () => {
    const nal = Uint8Array.from([0x65, 0x88, 0, 0, 4, 1, 2]);
    expect(unescapeRbsp(nal).rbsp).toBe(nal);
    expect(unescapeRbsp(nal).epb).toEqual([]);
  });
});

describe('bit reader and writer', () => {
  const field = fc.oneof(
    fc.record({ kind: fc.constant('ue' as const), v: fc.oneof(fc.nat(300), fc.nat(2 ** 32 - 2)) }),
    fc.record({ kind: fc.constant('se' as const), v: fc.integer({ min: -(2 ** 31 - 1), max: 2 ** 31 - 1 }) }),
    fc.integer({ min: 0, max: 32 }).chain((n) => fc.record({ kind: fc.constant('u' as const), n: fc.constant(n), v: fc.nat(2 ** n - 1) })),
  );

  it('write → read gives the values back, for u(n), ue(v), se(v) (property)', () => {
    fc.assert(
      fc.property(fc.array(field, { maxLength: 40 }), (fields) => {
        const w = new _BitWriter();
        for (const f of fields) {
          if (f.kind === 'ue') w.ue(f.v);
          else if (f.kind === 'se') w.se(f.v);
          else w.u(f.n, f.v);
        }
        const bits = w.position;
        const r = new _BitReader(w.toBytes());
        for (const f of fields) {
          if (f.kind === 'ue') expect(r.ue()).toBe(f.v);
          else if (f.kind === 'se') expect(r.se()).toBe(f.v);
          else expect(r.u(f.n)).toBe(f.v);
        }
        expect(r.position).toBe(bits);
      }),
      { numRuns: 1000 },
    );
  });

  it('Exp-Golomb codes of 9.1 (Table 9-2)', () => {
    const r = new _BitReader(Uint8Array.from([0b10100110, 0b01000010, 0b10011000]));
    expect([r.ue(), r.ue(), r.ue(), r.ue(), r.ue(), r.ue()]).toEqual([0, 1, 2, 3, 4, 5]);
    const s = new _BitReader(Uint8Array.from([0b01001100, 0b10000101, 0b00000000]));
    expect([s.se(), s.se(), s.se(), s.se()]).toEqual([1, -1, 2, -2]);
  });

  it('reading past the end is a MediaError, whatever the read (property)', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 12 }), fc.array(fc.constantFrom('bit', 'u7', 'u32', 'ue', 'se'), { minLength: 1, maxLength: 60 }), (bytes, ops) => {
        const r = new _BitReader(bytes);
        try {
          for (const op of ops) {
            if (op === 'bit') r.bit();
            else if (op === 'u7') r.u(7);
            else if (op === 'u32') r.u(32);
            else if (op === 'ue') r.ue();
            else r.se();
          }
        } catch (e) {
          expect(e).toBeInstanceOf(MediaError);
        }
      }),
    );
  });

  it('a ue(v) with 32 leading zeros is refused', () => {
    expect(() => new _BitReader(Uint8Array.from([0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0xff])).ue()).toThrow(MediaError);
    expect(new _BitReader(Uint8Array.from([0, 0, 0, 1, 0xff, 0xff, 0xff, 0xfe])).ue()).toBe(2 ** 32 - 2);
  });

  it('more_rbsp_data() stops at the rbsp_stop_one_bit and ignores trailing zero bytes', () => {
    const r = new _BitReader(Uint8Array.from([0b10110000, 0, 0]));
    expect(r.moreRbspData()).toBe(true);
    r.u(3);
    expect(r.moreRbspData()).toBe(false);
  });
});
