/**
 * The keyframe ECDH KDF against a committed vector and against the openssl CLI (an independent AES-CBC), and
 * end to end: a real P-256 ECDH in both directions gives the same key.
 */
import { execFileSync } from 'node:child_process';
import { createHash, diffieHellman, generateKeyPairSync } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { deriveFromSharedSecret, kdfInput } from '../../src/keystore/kdf.js';
import vectors from '../vectors/ecdh-kdf.json' with { type: 'json' };

function opensslKdf(z: Buffer, d: Buffer): Buffer {
  return execFileSync('openssl', ['enc', '-aes-256-cbc', '-K', z.toString('hex'), '-iv', '00'.repeat(16), '-nopad'], { input: d });
}

describe('ECDH KDF', () => {
  it('matches the committed vector', () => {
    for (const v of vectors.vectors) {
      const z = Buffer.from(v.sharedSecret, 'hex');
      const context = Buffer.from(v.context, 'hex');
      expect(kdfInput(context).toString('hex')).toBe(v.kdfInput);
      expect(deriveFromSharedSecret(z, context).toString('hex')).toBe(v.key);
    }
  });

  it('equals openssl enc -aes-256-cbc -nopad over SHA-256(label ‖ 0 ‖ context) (property, 25 cases)', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 32, maxLength: 32 }), fc.uint8Array({ maxLength: 100 }), (z, context) => {
        const d = createHash('sha256').update('keyframe/v1 ecdh-kdf').update(Buffer.of(0)).update(context).digest();
        expect(deriveFromSharedSecret(z, context).equals(opensslKdf(Buffer.from(z), d))).toBe(true);
      }),
      { numRuns: 25 },
    );
  });

  it('both sides of a P-256 ECDH derive the same key; other contexts give other keys', () => {
    const a = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const b = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const za = diffieHellman({ privateKey: a.privateKey, publicKey: b.publicKey });
    const zb = diffieHellman({ privateKey: b.privateKey, publicKey: a.publicKey });
    const ctx = Buffer.from('wrap');
    expect(deriveFromSharedSecret(za, ctx).equals(deriveFromSharedSecret(zb, ctx))).toBe(true);
    expect(deriveFromSharedSecret(za, ctx).equals(deriveFromSharedSecret(za, Buffer.from('auth')))).toBe(false);
  });

  it('refuses a shared secret that is not 32 bytes', () => {
    expect(() => deriveFromSharedSecret(Buffer.alloc(31), Buffer.alloc(0))).toThrow(RangeError);
  });
});
