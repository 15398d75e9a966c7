/** The paper's primitives as read here (h = SHA-256 over ‖, E/D = AES-256-CTR with the IV prefixed, ⊕) and the op counters. */
import { createHash } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { GroupKeyError, KeyframeError } from '../../src/errors.js';
import { CountingPrimitives, OpCounter } from '../../src/groupkey/paper/ops.js';
import { aesCtrDecrypt, aesCtrEncrypt, concat, seededRandom, sha256, xorBytes } from '../../src/groupkey/paper/primitives.js';

const bytes = (n: number): fc.Arbitrary<Uint8Array> => fc.uint8Array({ minLength: n, maxLength: n });
const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

describe('‖ and h', () => {
  it('identifiers are u16-length-prefixed UTF-8, byte values raw', () => {
    expect(hex(concat(['G1', Uint8Array.of(0xaa, 0xbb), 'é']))).toBe('00024731aabb0002c3a9');
    // the length prefix keeps identifier boundaries: ("ab","c") ≠ ("a","bc")
    expect(hex(concat(['ab', 'c']))).not.toBe(hex(concat(['a', 'bc'])));
    expect(() => concat([''])).toThrow(GroupKeyError);
    expect(() => concat(['x'.repeat(256)])).toThrow(GroupKeyError);
  });

  it('h is SHA-256 of the concatenation', () => {
    const r = new Uint8Array(32).fill(7);
    const expected = createHash('sha256').update(concat(['G1', 'cam-1', r])).digest('hex');
    expect(hex(sha256(['G1', 'cam-1', r]))).toBe(expected);
  });
});

describe('E and D: AES-256-CTR, random IV prefixed, unauthenticated', () => {
  it('round-trips; the ciphertext is IV ‖ body, as long as the plaintext plus 16', () => {
    fc.assert(
      fc.property(bytes(32), bytes(16), fc.uint8Array({ maxLength: 100 }), (k, iv, p) => {
        const c = aesCtrEncrypt(k, iv, p);
        expect(c.length).toBe(16 + p.length);
        expect(hex(c.subarray(0, 16))).toBe(hex(iv));
        expect(hex(aesCtrDecrypt(k, c))).toBe(hex(p));
      }),
    );
  });

  it('is malleable: flipping ciphertext bit i flips plaintext bit i; a wrong key still "decrypts"', () => {
    fc.assert(
      fc.property(bytes(32), bytes(32), bytes(16), bytes(32), fc.nat(255), (k, k2, iv, p, bit) => {
        const c = aesCtrEncrypt(k, iv, p);
        const flipped = Uint8Array.from(c);
        flipped[16 + (bit >> 3)] = (flipped[16 + (bit >> 3)] as number) ^ (1 << (bit & 7));
        const delta = new Uint8Array(32);
        delta[bit >> 3] = 1 << (bit & 7);
        expect(hex(aesCtrDecrypt(k, flipped))).toBe(hex(xorBytes(p, delta)));
        expect(aesCtrDecrypt(k2, c)).toHaveLength(32);
      }),
    );
  });

  it('refuses a ciphertext shorter than its IV and keys that are not 32 bytes', () => {
    expect(() => aesCtrDecrypt(new Uint8Array(32), new Uint8Array(15))).toThrow(GroupKeyError);
    expect(() => aesCtrEncrypt(new Uint8Array(16), new Uint8Array(16), new Uint8Array(1))).toThrow(KeyframeError);
  });
});

describe('⊕ and the seeded Random', () => {
  it('XORs equal lengths only', () => {
    expect(hex(xorBytes(Uint8Array.of(0xf0, 0x0f), Uint8Array.of(0xff, 0xff)))).toBe('0ff0');
    expect(() => xorBytes(new Uint8Array(32), new Uint8Array(16))).toThrow(KeyframeError);
  });

  it('seededRandom is a deterministic stream, independent of how it is read', () => {
    const a = seededRandom('s');
    const b = seededRandom('s');
    const whole = a(100);
    const parts = Buffer.concat([b(1), b(31), b(33), b(35)]);
    expect(hex(whole)).toBe(parts.toString('hex'));
    expect(hex(seededRandom('t')(32))).not.toBe(hex(whole.subarray(0, 32)));
  });
});

describe('CountingPrimitives', () => {
  it('counts every E, D, h and ⊕ under the current phase and the paper symbol', () => {
    const counter = new OpCounter();
    const p = new CountingPrimitives(seededRandom('c'), counter);
    const k = new Uint8Array(32);
    counter.phase = 'distribution';
    const c = p.E('EGSK_IC', k, new Uint8Array(32));
    p.D('EGSK_IC', k, c);
    p.h('ACK_IC', 'G1', 'cam-1', k);
    p.xorAll('ACK_G1', [k, k, k], k);
    counter.phase = 'join';
    p.h('MAC_IC', 'G1', 'cam-1', k, k);
    expect(counter.inPhase('distribution')).toEqual({ E: 1, D: 1, H: 1, X: 3 });
    expect(counter.inPhase('join')).toEqual({ E: 0, D: 0, H: 1, X: 0 });
    expect(counter.inPhase('leave')).toEqual({ E: 0, D: 0, H: 0, X: 0 });
    expect(counter.total()).toEqual({ E: 1, D: 1, H: 2, X: 3 });
    expect(counter.breakdown('distribution')).toEqual([
      { kind: 'E', label: 'EGSK_IC', count: 1 },
      { kind: 'D', label: 'EGSK_IC', count: 1 },
      { kind: 'H', label: 'ACK_IC', count: 1 },
      { kind: 'X', label: 'ACK_G1', count: 3 },
    ]);
    expect(counter.phaseNames()).toEqual(['distribution', 'join']);
  });
});
