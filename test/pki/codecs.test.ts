/** Encoder/decoder pairs of the PKI layer, as properties: enrolment tokens and PEM. */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { formatToken, parseToken } from '../../src/pki/enrol.js';
import { parsePemBlocks, toPem } from '../../src/pki/pem.js';

describe('enrolment token codec', () => {
  it('format → parse is the identity (property)', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 12, maxLength: 12 }), fc.uint8Array({ minLength: 32, maxLength: 32 }), (id, secret) => {
        const parsed = parseToken(formatToken(id, secret));
        expect(parsed).toBeDefined();
        expect(parsed?.id).toBe(Buffer.from(id).toString('base64url'));
        expect(parsed?.secret.equals(Buffer.from(secret))).toBe(true);
      }),
    );
  });

  it('anything else parses to undefined, never throws (property)', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 120 }), (text) => {
        const parsed = parseToken(text);
        if (parsed !== undefined) expect(formatToken(Buffer.from(parsed.id, 'base64url'), parsed.secret)).toBe(text.trim());
      }),
    );
    for (const bad of ['', 'kfe1', 'kfe1..', 'kfe2.AAAAAAAAAAAAAAAA.' + 'A'.repeat(43), 'kfe1.AAAA.' + 'A'.repeat(43), 'kfe1.AAAAAAAAAAAAAAAA.' + 'A'.repeat(42) + '=']) {
      expect(parseToken(bad)).toBeUndefined();
    }
  });
});

describe('PEM codec', () => {
  it('toPem → parsePemBlocks gives the bytes back, several blocks in one file (property)', () => {
    fc.assert(
      fc.property(fc.array(fc.uint8Array({ minLength: 1, maxLength: 3000 }), { minLength: 1, maxLength: 4 }), fc.constantFrom('CERTIFICATE', 'X509 CRL', 'CERTIFICATE REQUEST'), (ders, type) => {
        const text = ders.map((d) => toPem(d, type)).join('');
        const blocks = parsePemBlocks(text, 'test');
        expect(blocks.map((b) => b.type)).toEqual(ders.map(() => type));
        blocks.forEach((b, i) => expect(b.der.equals(Buffer.from(ders[i] ?? new Uint8Array()))).toBe(true));
        expect(text.split('\n').every((line) => line.length <= 64)).toBe(true);
      }),
    );
  });
});
