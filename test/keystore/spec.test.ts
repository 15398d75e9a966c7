/**
 * Key store specs: `file:DIR[;pin-env=VAR|;pin-file=PATH]` and `pkcs11:module=PATH;token=LABEL[;…]`. A spec names
 * where the secret comes from, never the secret; an error message never repeats a secret written into a spec.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ErrorCodes } from '../../src/errors.js';
import { DEFAULT_PIN_ENV, formatKeyStoreSpec, parseKeyStoreSpec } from '../../src/keystore/spec.js';
import type { KeyStoreSpec, PinSource } from '../../src/keystore/spec.js';

/** An absolute, normalized path without ';' (the spec separator). */
const segment = fc.stringMatching(/^[A-Za-z0-9_][A-Za-z0-9._ -]{0,11}$/).filter((s) => s !== '.' && s !== '..' && !s.endsWith(' '));
const absPath = fc.array(segment, { minLength: 1, maxLength: 5 }).map((parts) => `/${parts.join('/')}`);
const envName = fc.stringMatching(/^[A-Za-z_][A-Za-z0-9_]{0,20}$/);
const pinSource: fc.Arbitrary<PinSource> = fc.oneof(
  envName.map((env) => ({ env })),
  absPath.map((file) => ({ file })),
);
/** Token labels: anything printable but ';', at most 32 characters. */
const tokenLabel = fc.string({ minLength: 1, maxLength: 32, unit: 'grapheme-ascii' }).filter((s) => !s.includes(';'));

const spec: fc.Arbitrary<KeyStoreSpec> = fc.oneof(
  fc.record({ kind: fc.constant('file' as const), dir: absPath, pin: pinSource }),
  fc.record({ kind: fc.constant('pkcs11' as const), module: absPath, token: tokenLabel, pin: pinSource }),
);

function parseError(text: string): Error & { code?: string } {
  try {
    parseKeyStoreSpec(text);
  } catch (e) {
    return e as Error & { code?: string };
  }
  throw new Error(`expected "${text}" to be refused`);
}

describe('key store specs', () => {
  it('format → parse is the identity (property)', () => {
    fc.assert(
      fc.property(spec, (s) => {
        const text = formatKeyStoreSpec(s);
        expect(parseKeyStoreSpec(text)).toEqual(s);
        expect(formatKeyStoreSpec(parseKeyStoreSpec(text))).toBe(text);
      }),
      { numRuns: 500 },
    );
  });

  it('parses the documented forms', () => {
    expect(parseKeyStoreSpec('file:/var/lib/keyframe/ks')).toEqual({ kind: 'file', dir: '/var/lib/keyframe/ks', pin: { env: DEFAULT_PIN_ENV } });
    expect(parseKeyStoreSpec('file:/ks;pin-file=/etc/kf/pin')).toEqual({ kind: 'file', dir: '/ks', pin: { file: '/etc/kf/pin' } });
    expect(parseKeyStoreSpec('pkcs11:module=/usr/lib/softhsm/libsofthsm2.so;token=cam-se;pin-env=SE_PIN')).toEqual({
      kind: 'pkcs11',
      module: '/usr/lib/softhsm/libsofthsm2.so',
      token: 'cam-se',
      pin: { env: 'SE_PIN' },
    });
    // parameters in any order
    expect(parseKeyStoreSpec('pkcs11:pin-env=SE_PIN;token=cam-se;module=/m.so')).toEqual({ kind: 'pkcs11', module: '/m.so', token: 'cam-se', pin: { env: 'SE_PIN' } });
  });

  it.each([
    ['pkcs11:module=/m.so;token=t;pin=S3cr3t-91', 'a secret may not be written into a spec'],
    ['pkcs11:module=/m.so;token=t;pin-value=S3cr3t-91', 'a secret may not be written into a spec'],
    ['file:/ks;passphrase=S3cr3t-91', 'a secret may not be written into a spec'],
    ['file:/ks;password=S3cr3t-91', 'a secret may not be written into a spec'],
    ['pkcs11:module=/m.so;token=t;PIN=S3cr3t-91', 'unknown parameter PIN'],
    ['pkcs11:module=/m.so;pin=S3cr3t-91;garbage', 'is not NAME=VALUE'],
    ['pkcs11:pin=S3cr3t-91;pin=S3cr3t-91', 'pin given twice'],
    ['pkcs11:module=/m.so;token=t;pin=S3cr3t-91;pin-env=A;pin-file=/p', 'a secret may not be written into a spec'],
  ])('refuses an inline secret without echoing it: %s', (text, message) => {
    const err = parseError(text);
    expect(err).toMatchObject({ code: ErrorCodes.INPUT });
    expect(err.message).toContain(message);
    expect(err.message).not.toContain('S3cr3t-91');
  });

  it('never echoes an inline secret, whatever else is wrong with the spec (property)', () => {
    const secret = fc.stringMatching(/^[A-Za-z0-9]{8,16}$/);
    const name = fc.constantFrom('pin', 'pin-value', 'passphrase', 'password', 'PIN', 'Passphrase');
    const other = fc.constantFrom('', 'module=/m.so', 'token=t', 'pin-env=X', 'pin-env=1BAD', 'pin-file=/p', 'bogus=1', 'noequals', 'module=');
    fc.assert(
      fc.property(fc.constantFrom('file:/ks', 'pkcs11:', 'nope:'), name, secret, fc.array(other, { maxLength: 3 }), (head, n, s, rest) => {
        const parts = [`${n}=${s}`, ...rest].filter((p) => p !== '');
        const text = head === 'file:/ks' ? `${head};${parts.join(';')}` : `${head}${parts.join(';')}`;
        const err = parseError(text);
        expect(err.message).not.toContain(s);
      }),
      { numRuns: 300 },
    );
  });

  it('a pkcs11: spec must name its PIN source: the default variable is never tried on a token', () => {
    for (const text of ['pkcs11:module=/m.so;token=cam-se', 'pkcs11:token=cam-se;module=/m.so']) {
      const err = parseError(text);
      expect(err).toMatchObject({ name: 'InputError', code: ErrorCodes.INPUT });
      expect(err.message).toContain('a pkcs11: spec needs its PIN source, ;pin-env=VAR or ;pin-file=PATH');
    }
    // a software store still defaults to $KEYFRAME_KEYSTORE_PIN
    expect(parseKeyStoreSpec('file:/ks').pin).toEqual({ env: DEFAULT_PIN_ENV });
    expect(parseKeyStoreSpec(`pkcs11:module=/m.so;token=t;pin-env=${DEFAULT_PIN_ENV}`).pin).toEqual({ env: DEFAULT_PIN_ENV });
  });

  it.each([
    ['file:/ks;pin-env=A;pin-file=/p', 'give pin-env or pin-file, not both'],
    ['pkcs11:token=t', 'needs module=PATH'],
    ['pkcs11:module=/m.so', 'needs token=LABEL'],
    ['pkcs11:module=/m.so;token=t;slot=1', 'unknown parameter slot'],
    ['file:/ks;mode=0600', 'unknown parameter mode'],
    ['file:/ks;pin-env=1BAD', 'is not an environment variable name'],
    ['file:/ks;pin-env=A-B', 'is not an environment variable name'],
    ['pkcs11:module=/m.so;token=t;pin-env=$(id)', 'is not an environment variable name'],
    ['file:', 'file: needs a directory'],
    ['file:;pin-env=A', 'file: needs a directory'],
    ['pkcs11:module=/m.so;token=', 'token is empty'],
    ['pkcs11:module=/a.so;module=/b.so;token=t', 'module given twice'],
    ['sqlite:/ks', 'expected file:DIR or pkcs11:module=PATH;token=LABEL'],
    ['', 'expected file:DIR'],
  ])('refuses %j', (text, message) => {
    const err = parseError(text);
    expect(err).toMatchObject({ name: 'InputError', code: ErrorCodes.INPUT });
    expect(err.message).toContain(message);
  });
});
