/**
 * The CENC ciphers against slow, obviously-correct reference implementations (block by block, AES-ECB + XOR),
 * and encrypt→decrypt round trips over random sample and subsample layouts.
 */
import { createCipheriv } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { decryptSample, encryptSample } from '../../src/cenc/sample.js';
import type { Scheme } from '../../src/cenc/sample.js';
import { MAX_CLEAR, assertCovers, subsampleMap } from '../../src/cenc/subsamples.js';
import type { Subsample } from '../../src/cenc/subsamples.js';

function ecb(key: Uint8Array, block: Uint8Array): Buffer {
  const c = createCipheriv('aes-128-ecb', key, null);
  c.setAutoPadding(false);
  return Buffer.concat([c.update(block), c.final()]);
}

/** Reference cenc: a 128-bit big-endian counter block incremented per 16 bytes of protected data. */
function refCenc(key: Uint8Array, iv: Uint8Array, sample: Uint8Array, subs: readonly Subsample[]): Buffer {
  const out = Buffer.from(sample);
  const counter = Buffer.alloc(16);
  counter.set(iv);
  let ks: Buffer = Buffer.alloc(0);
  let ksPos = 0;
  let pos = 0;
  for (const s of subs) {
    pos += s.clear;
    for (let i = 0; i < s.protected; i++) {
      if (ksPos === ks.length) {
        ks = ecb(key, counter);
        ksPos = 0;
        for (let j = 15; j >= 0; j--) {
          counter[j] = ((counter[j] ?? 0) + 1) & 0xff;
          if (counter[j] !== 0) break;
        }
      }
      out[pos + i] = (out[pos + i] ?? 0) ^ (ks[ksPos++] ?? 0);
    }
    pos += s.protected;
  }
  return out;
}

/** Reference cbcs encryption: 1:9 pattern, chain restarted per subsample, block by block. */
function refCbcs(key: Uint8Array, iv: Uint8Array, sample: Uint8Array, subs: readonly Subsample[]): Buffer {
  const out = Buffer.from(sample);
  let pos = 0;
  for (const s of subs) {
    pos += s.clear;
    let prev: Buffer = Buffer.from(iv);
    const blocks = Math.floor(s.protected / 16);
    for (let b = 0; b < blocks; b++) {
      if (b % 10 !== 0) continue;
      const at = pos + b * 16;
      const x = Buffer.alloc(16);
      for (let i = 0; i < 16; i++) x[i] = (out[at + i] ?? 0) ^ (prev[i] ?? 0);
      prev = ecb(key, x);
      out.set(prev, at);
    }
    pos += s.protected;
  }
  return out;
}

const layout = fc
  .array(fc.record({ clear: fc.integer({ min: 0, max: 300 }), protected: fc.integer({ min: 0, max: 700 }) }), { minLength: 1, maxLength: 12 })
  .chain((subs) => {
    const size = subs.reduce((n, s) => n + s.clear + s.protected, 0);
    return fc.tuple(fc.constant(subs as Subsample[]), fc.uint8Array({ minLength: size, maxLength: size }));
  });
const key = fc.uint8Array({ minLength: 16, maxLength: 16 });

describe('cenc (AES-128-CTR)', () => {
  it('equals the block-by-block reference, 8- and 16-byte IVs (property)', () => {
    fc.assert(
      fc.property(layout, key, fc.oneof(fc.uint8Array({ minLength: 8, maxLength: 8 }), fc.uint8Array({ minLength: 16, maxLength: 16 })), ([subs, sample], k, iv) => {
        const enc = encryptSample({ scheme: 'cenc', key: k }, iv, sample, subs);
        expect(Buffer.from(enc).equals(refCenc(k, iv, sample, subs))).toBe(true);
      }),
    );
  });

  it('a counter block that overflows its low 64 bits carries into the IV half, as the reference does', () => {
    const iv = Buffer.from('00000000000000ffffffffffffffffff', 'hex');
    const sample = Buffer.alloc(64, 7);
    const subs = [{ clear: 0, protected: 64 }];
    expect(Buffer.from(encryptSample({ scheme: 'cenc', key: Buffer.alloc(16, 1) }, iv, sample, subs)).equals(refCenc(Buffer.alloc(16, 1), iv, sample, subs))).toBe(true);
  });
});

describe('cbcs (AES-128-CBC, 1:9 pattern, constant IV)', () => {
  it('equals the block-by-block reference (property)', () => {
    fc.assert(
      fc.property(layout, key, fc.uint8Array({ minLength: 16, maxLength: 16 }), ([subs, sample], k, iv) => {
        const enc = encryptSample({ scheme: 'cbcs', key: k }, iv, sample, subs);
        expect(Buffer.from(enc).equals(refCbcs(k, iv, sample, subs))).toBe(true);
      }),
    );
  });

  it('leaves skipped blocks and a trailing partial block clear', () => {
    const sample = Buffer.alloc(10 + 16 * 21 + 5, 0xab);
    const subs = [{ clear: 10, protected: 16 * 21 + 5 }];
    const enc = Buffer.from(encryptSample({ scheme: 'cbcs', key: Buffer.alloc(16, 2) }, Buffer.alloc(16, 3), sample, subs));
    const changed = (a: number, b: number): boolean => !enc.subarray(a, b).equals(sample.subarray(a, b));
    expect(changed(0, 10)).toBe(false);
    expect(changed(10, 26)).toBe(true); // block 0
    expect(changed(26, 10 + 160)).toBe(false); // blocks 1-9
    expect(changed(170, 186)).toBe(true); // block 10
    expect(changed(10 + 16 * 21, sample.length)).toBe(false); // trailing partial block
  });
});

describe('round trips', () => {
  it('decrypt(encrypt(x)) = x, and the input is never modified (property)', () => {
    fc.assert(
      fc.property(layout, key, fc.constantFrom<Scheme>('cenc', 'cbcs'), ([subs, sample], k, scheme) => {
        const iv = scheme === 'cenc' ? Buffer.alloc(8, 9) : Buffer.alloc(16, 9);
        const copy = Buffer.from(sample);
        const enc = encryptSample({ scheme, key: k }, iv, sample, subs);
        expect(Buffer.from(sample).equals(copy)).toBe(true);
        expect(Buffer.from(decryptSample({ scheme, key: k }, iv, enc, subs)).equals(copy)).toBe(true);
      }),
    );
  });

  it('refuses maps that do not cover the sample, and bad key or IV sizes', () => {
    expect(() => encryptSample({ scheme: 'cenc', key: Buffer.alloc(16) }, Buffer.alloc(8), Buffer.alloc(10), [{ clear: 5, protected: 4 }])).toThrow(/cover 9 bytes/);
    expect(() => encryptSample({ scheme: 'cenc', key: Buffer.alloc(32) }, Buffer.alloc(8), Buffer.alloc(1), [{ clear: 1, protected: 0 }])).toThrow(/16 bytes/);
    expect(() => encryptSample({ scheme: 'cbcs', key: Buffer.alloc(16) }, Buffer.alloc(8), Buffer.alloc(1), [{ clear: 1, protected: 0 }])).toThrow(/IV must be 16/);
  });
});

describe('subsample maps', () => {
  const nal = (type: number, len: number): Buffer => {
    const b = Buffer.alloc(4 + len, 0x55);
    b.writeUInt32BE(len, 0);
    b[4] = 0x60 | type;
    return b;
  };

  it('length prefix and NAL header clear, non-VCL entirely clear, slice header clear when asked', () => {
    const sample = Buffer.concat([nal(9, 2), nal(7, 20), nal(8, 5), nal(6, 30), nal(5, 1000), nal(5, 800)]);
    const cenc = subsampleMap(sample, 4, () => 1);
    expect(cenc).toEqual([
      { clear: 6 + 24 + 9 + 34 + 4 + 1, protected: 999 },
      { clear: 5, protected: 799 },
    ]);
    const cbcs = subsampleMap(sample, 4, () => 7);
    expect(cbcs).toEqual([
      { clear: 6 + 24 + 9 + 34 + 4 + 7, protected: 993 },
      { clear: 4 + 7, protected: 793 },
    ]);
    assertCovers(cbcs, sample.length);
  });

  it('splits clear runs over 65,535 bytes; a clear-only sample is one (clear, 0)', () => {
    const sample = Buffer.concat([nal(6, 70_000), nal(1, 100)]);
    const map = subsampleMap(sample, 4, () => 1);
    expect(map[0]).toEqual({ clear: MAX_CLEAR, protected: 0 });
    expect(map[1]).toEqual({ clear: 70_004 - MAX_CLEAR + 5, protected: 99 });
    expect(subsampleMap(nal(6, 10), 4, () => 1)).toEqual([{ clear: 14, protected: 0 }]);
    assertCovers(map, sample.length);
  });

  it('covers every sample exactly, whatever the NAL layout (property)', () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.integer({ min: 1, max: 31 }), fc.integer({ min: 1, max: 90_000 })), { minLength: 1, maxLength: 8 }), fc.integer({ min: 1, max: 40 }), (nals, hdr) => {
        const sample = Buffer.concat(nals.map(([t, l]) => nal(t, l)));
        const map = subsampleMap(sample, 4, () => hdr);
        assertCovers(map, sample.length);
        expect(map.every((s) => s.clear <= MAX_CLEAR)).toBe(true);
      }),
      { numRuns: 60 },
    );
  });

  it('a truncated sample is a MediaError, not a guess', () => {
    const sample = nal(5, 100).subarray(0, 50);
    expect(() => subsampleMap(sample, 4, () => 1)).toThrow(/does not fit/);
  });
});

describe('encryptSampleParts', () => {
  it('the parts concatenate to encryptSample, and cenc parts reuse the clear bytes of the input (property)', async () => {
    const { encryptSampleParts } = await import('../../src/cenc/sample.js');
    fc.assert(
      fc.property(layout, key, fc.constantFrom<Scheme>('cenc', 'cbcs'), ([subs, sample], k, scheme) => {
        const iv = scheme === 'cenc' ? Buffer.alloc(8, 5) : Buffer.alloc(16, 5);
        const parts = encryptSampleParts({ scheme, key: k }, iv, sample, subs);
        expect(Buffer.concat(parts).equals(Buffer.from(encryptSample({ scheme, key: k }, iv, sample, subs)))).toBe(true);
        if (scheme === 'cenc') for (const p of parts) if (p.buffer === sample.buffer) expect(subs.some((s) => s.clear === p.length)).toBe(true);
      }),
    );
  });
});
