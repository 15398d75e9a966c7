/**
 * HOTP / TOTP / base32 (src/access/totp.ts) against the RFC test values committed in
 * test/vectors/rfc4226-rfc6238.json (RFC 4226 Appendix D, RFC 6238 Appendix B, RFC 4648 §10), and by property:
 * base32 round trip, verifyTotp accepting exactly the steps in its window, replay refusal, one changed digit
 * refused, and bad input refused with an InputError that names the problem.
 */
import { createHmac } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { InputError } from '../../src/errors.js';
import { base32Decode, base32Encode, generateTotpSecret, hotp, otpauthUri, totp, verifyTotp } from '../../src/access/totp.js';
import type { OtpAlgorithm, OtpDigits } from '../../src/access/totp.js';
import vectors from '../vectors/rfc4226-rfc6238.json' with { type: 'json' };

const ascii = (s: string): Buffer => Buffer.from(s, 'latin1');
const seeds: Record<OtpAlgorithm, Buffer> = {
  sha1: ascii(vectors.totp.seedsAscii.sha1),
  sha256: ascii(vectors.totp.seedsAscii.sha256),
  sha512: ascii(vectors.totp.seedsAscii.sha512),
};
const asAlgorithm = (mode: string): OtpAlgorithm => {
  if (mode !== 'sha1' && mode !== 'sha256' && mode !== 'sha512') throw new Error(`unknown mode ${mode}`);
  return mode;
};

/** The message an InputError thrown by f carries (fails when f throws anything else, or nothing). */
function inputErrorOf(f: () => unknown): string {
  try {
    f();
  } catch (err) {
    expect(err).toBeInstanceOf(InputError);
    return (err as InputError).message;
  }
  throw new Error('expected an InputError, nothing was thrown');
}

const algorithmArb = fc.constantFrom<OtpAlgorithm>('sha1', 'sha256', 'sha512');
const digitsArb = fc.constantFrom<OtpDigits>(6, 7, 8);
const secretArb = fc.uint8Array({ minLength: 10, maxLength: 64 }).map((b) => Buffer.from(b));
/** Well past T0 + 30 steps of the longest period used (so no test reaches before T0), up to the year 2603. */
const nowArb = fc.integer({ min: 20_000_000, max: 20_000_000_000_000 });
const settingsArb = fc.record({
  secret: secretArb,
  algorithm: algorithmArb,
  digits: digitsArb,
  stepSeconds: fc.constantFrom(30, 60, 1, 7, 120),
  window: fc.integer({ min: 0, max: 10 }),
  nowMs: nowArb,
});

/** The steps in now ± window whose code is `code` (brute force, to tell a real refusal from a code collision). */
function stepsMatching(
  s: { secret: Buffer; algorithm: OtpAlgorithm; digits: OtpDigits; stepSeconds: number; window: number; nowMs: number },
  code: string,
): number[] {
  const current = Math.floor(s.nowMs / (s.stepSeconds * 1000));
  const out: number[] = [];
  for (let step = current - s.window; step <= current + s.window; step++) {
    if (hotp(s.secret, step, { digits: s.digits, algorithm: s.algorithm }) === code) out.push(step);
  }
  return out;
}

describe('RFC 4226 Appendix D (HOTP)', () => {
  const secret = ascii(vectors.hotp.secretAscii);

  it('gives the 6-digit HOTP value of every count 0-9, for a number and a bigint counter', () => {
    expect(vectors.hotp.values).toHaveLength(10);
    for (const v of vectors.hotp.values) {
      expect(hotp(secret, v.count)).toBe(v.hotp);
      expect(hotp(secret, BigInt(v.count), { digits: 6, algorithm: 'sha1' })).toBe(v.hotp);
    }
  });

  it('gives 7 and 8 digits as the low digits of the RFC truncated decimal; the vector file is self-consistent', () => {
    for (const v of vectors.hotp.values) {
      // The file's own tables agree with each other (Table 1 HMAC -> Table 2 truncation), so a typo would show.
      const mac = createHmac('sha1', secret).update(Buffer.from(v.count.toString(16).padStart(16, '0'), 'hex')).digest();
      expect(mac.toString('hex')).toBe(v.hmacSha1);
      expect(parseInt(v.truncatedHex, 16)).toBe(v.truncatedDecimal);
      expect(String(v.truncatedDecimal % 1e6).padStart(6, '0')).toBe(v.hotp);
      expect(hotp(secret, v.count, { digits: 7 })).toBe(String(v.truncatedDecimal % 1e7).padStart(7, '0'));
      expect(hotp(secret, v.count, { digits: 8 })).toBe(String(v.truncatedDecimal % 1e8).padStart(8, '0'));
    }
  });
});

describe('RFC 6238 Appendix B (TOTP)', () => {
  it('gives every 8-digit TOTP value for SHA-1, SHA-256 and SHA-512', () => {
    expect(vectors.totp.vectors).toHaveLength(18);
    for (const v of vectors.totp.vectors) {
      const algorithm = asAlgorithm(v.mode);
      const options = { digits: 8, algorithm, stepSeconds: vectors.totp.stepSeconds, t0: vectors.totp.t0 } as const;
      expect(totp(seeds[algorithm], v.time * 1000, options), `${v.mode} at ${v.time}`).toBe(v.totp);
      // Same code at the last millisecond of the step, and defaults (30 s, T0 0) give the same.
      const step = Number(BigInt(`0x${v.stepHex}`));
      expect(totp(seeds[algorithm], step * 30_000 + 29_999, { digits: 8, algorithm })).toBe(v.totp);
      expect(hotp(seeds[algorithm], step, { digits: 8, algorithm })).toBe(v.totp);
    }
  });

  it('verifyTotp accepts every vector and returns the RFC value of T', () => {
    for (const v of vectors.totp.vectors) {
      const algorithm = asAlgorithm(v.mode);
      const step = Number(BigInt(`0x${v.stepHex}`));
      expect(Math.floor(v.time / 30)).toBe(step);
      expect(verifyTotp(seeds[algorithm], v.totp, v.time * 1000, { digits: 8, algorithm, window: 0 })).toBe(step);
      expect(verifyTotp(seeds[algorithm], v.totp, v.time * 1000, { digits: 8, algorithm, lastStep: step - 1 })).toBe(step);
      expect(verifyTotp(seeds[algorithm], v.totp, v.time * 1000, { digits: 8, algorithm, lastStep: step })).toBeUndefined();
    }
  });

  it('honours T0: the step counts from it', () => {
    const v = vectors.totp.vectors[0];
    if (v === undefined) throw new Error('no vector');
    const t0 = 1_000_000;
    expect(totp(seeds.sha1, (t0 + v.time) * 1000, { digits: 8, t0 })).toBe(v.totp);
    expect(inputErrorOf(() => totp(seeds.sha1, (t0 - 1) * 1000, { t0 }))).toMatch(/before T0/);
  });
});

describe('base32 (RFC 4648)', () => {
  it('matches the RFC 4648 §10 vectors: encoded unpadded, decoded padded, unpadded, lowercase and spaced', () => {
    expect(vectors.base32.vectors).toHaveLength(7);
    for (const v of vectors.base32.vectors) {
      const unpadded = v.base32.replace(/=+$/, '');
      expect(base32Encode(ascii(v.ascii))).toBe(unpadded);
      for (const text of [v.base32, unpadded, v.base32.toLowerCase(), unpadded.replace(/(.{4})/g, '$1 ')]) {
        expect(base32Decode(text).toString('latin1'), text).toBe(v.ascii);
      }
    }
  });

  it('round-trips arbitrary bytes, in any case, with or without padding and grouping spaces (property)', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), fc.boolean(), fc.boolean(), (bytes, lower, group) => {
        const text = base32Encode(bytes);
        expect(text).toMatch(/^[A-Z2-7]*$/);
        expect(text.length).toBe(Math.ceil((bytes.length * 8) / 5));
        expect(base32Decode(text).equals(bytes)).toBe(true);
        let variant = lower ? text.toLowerCase() : text;
        variant += '='.repeat((8 - (variant.length % 8)) % 8);
        if (group) variant = variant.replace(/(.{4})/g, '$1 ');
        expect(base32Decode(variant).equals(bytes)).toBe(true);
      }),
      { numRuns: 300 },
    );
  });

  it('refuses a character outside the alphabet, naming it and its position', () => {
    expect(inputErrorOf(() => base32Decode('MZXW1YTB'))).toMatch(/character "1" at position 5 is not in the RFC 4648 alphabet/);
    expect(inputErrorOf(() => base32Decode('mzxw6ytb0i'))).toMatch(/character "0" at position 9/);
    expect(inputErrorOf(() => base32Decode('MZXW 6YT8'))).toMatch(/character "8" at position 9/);
    expect(inputErrorOf(() => base32Decode('MZXW-6YTB'))).toMatch(/character "-" at position 5/);
    expect(inputErrorOf(() => base32Decode('MZXW\t6YTB'))).toMatch(/character "\\t" at position 5/);
    expect(inputErrorOf(() => base32Decode('MZXWÉYTB'))).toMatch(/character "É" at position 5/);
  });

  it('refuses an impossible length, padding that is wrong, and text after padding', () => {
    for (const text of ['M', 'MZX', 'MZXW6Y', 'MZXW6YTBO', 'M=======']) {
      expect(inputErrorOf(() => base32Decode(text)), text).toMatch(/cannot be a whole number of bytes/);
    }
    expect(inputErrorOf(() => base32Decode('MY='))).toMatch(/padding must make the length a multiple of 8 \(6 expected\)/);
    expect(inputErrorOf(() => base32Decode('MZXW6YTB========'))).toMatch(/none is needed/);
    expect(inputErrorOf(() => base32Decode('MY==MZXQ'))).toMatch(/character "M" at position 5 follows '='/);
  });

  it('refuses any string with a character outside the alphabet (property)', () => {
    const bad = fc.oneof(fc.integer({ min: 0, max: 0x7f }), fc.integer({ min: 0x80, max: 0x10ffff }))
      .map((cp) => String.fromCodePoint(cp))
      .filter((c) => !/^[A-Za-z2-7 =]$/.test(c));
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 20 }), bad, fc.nat(), (bytes, c, at) => {
        const text = base32Encode(bytes);
        const i = at % (text.length + 1);
        expect(inputErrorOf(() => base32Decode(text.slice(0, i) + c + text.slice(i)))).toMatch(/is not in the RFC 4648 alphabet/);
      }),
      { numRuns: 200 },
    );
  });
});

describe('verifyTotp', () => {
  it('accepts the code of any time within ± window steps, returning a step whose code it is (property)', () => {
    fc.assert(
      fc.property(settingsArb, fc.integer({ min: -10, max: 10 }), fc.nat(), (s, k, within) => {
        const offset = Math.max(-s.window, Math.min(s.window, k));
        const stepMs = s.stepSeconds * 1000;
        const target = Math.floor(s.nowMs / stepMs) + offset;
        const code = totp(s.secret, target * stepMs + (within % stepMs), s);
        const got = verifyTotp(s.secret, code, s.nowMs, s);
        expect(got).toBeDefined();
        // The latest matching step is returned; a collision with a later step in the window is possible.
        expect(got).toBeGreaterThanOrEqual(target);
        expect(got).toBeLessThanOrEqual(Math.floor(s.nowMs / stepMs) + s.window);
        expect(hotp(s.secret, got as number, s)).toBe(code);
      }),
      { numRuns: 150 },
    );
  });

  it('refuses the code of a step outside the window (property)', () => {
    fc.assert(
      fc.property(settingsArb, fc.integer({ min: 1, max: 20 }), fc.boolean(), fc.nat(), (s, beyond, later, within) => {
        const stepMs = s.stepSeconds * 1000;
        const target = Math.floor(s.nowMs / stepMs) + (later ? 1 : -1) * (s.window + beyond);
        const code = totp(s.secret, target * stepMs + (within % stepMs), s);
        const got = verifyTotp(s.secret, code, s.nowMs, s);
        const collisions = stepsMatching(s, code);
        if (collisions.length === 0) expect(got).toBeUndefined();
        else expect(got).toBe(collisions[collisions.length - 1]);
      }),
      { numRuns: 150 },
    );
  });

  it('refuses a replay: a step at or before lastStep, however far the window reaches (property)', () => {
    fc.assert(
      fc.property(settingsArb, fc.integer({ min: -10, max: 10 }), fc.integer({ min: 0, max: 25 }), (s, k, ahead) => {
        const offset = Math.max(-s.window, Math.min(s.window, k));
        const stepMs = s.stepSeconds * 1000;
        const target = Math.floor(s.nowMs / stepMs) + offset;
        const code = totp(s.secret, target * stepMs, s);
        // First use: accepted, the step is recorded; the same code again is refused.
        const first = verifyTotp(s.secret, code, s.nowMs, { ...s, lastStep: target - 1 });
        expect(first).toBeGreaterThanOrEqual(target);
        expect(verifyTotp(s.secret, code, s.nowMs, { ...s, lastStep: first as number })).toBeUndefined();
        // Any lastStep at or after the code's step refuses it, unless it collides with a later fresh step.
        const lastStep = target + ahead;
        const fresh = stepsMatching(s, code).filter((step) => step > lastStep);
        expect(verifyTotp(s.secret, code, s.nowMs, { ...s, lastStep })).toBe(fresh.length === 0 ? undefined : fresh[fresh.length - 1]);
      }),
      { numRuns: 150 },
    );
  });

  it('refuses a code with one digit changed (property)', () => {
    fc.assert(
      fc.property(settingsArb, fc.nat(), fc.integer({ min: 1, max: 9 }), (s, at, delta) => {
        const code = totp(s.secret, s.nowMs, s);
        const i = at % code.length;
        const digit = (Number(code[i]) + delta) % 10;
        const changed = code.slice(0, i) + String(digit) + code.slice(i + 1);
        expect(changed).not.toBe(code);
        const collisions = stepsMatching(s, changed);
        const got = verifyTotp(s.secret, changed, s.nowMs, s);
        if (collisions.length === 0) expect(got).toBeUndefined();
        else expect(got).toBe(collisions[collisions.length - 1]);
      }),
      { numRuns: 200 },
    );
  });

  it('refuses, without throwing, a code of the wrong length or with anything but ASCII digits', () => {
    const secret = seeds.sha1;
    const now = 1_234_567_890_000;
    const good = totp(secret, now);
    expect(verifyTotp(secret, good, now)).toBe(Math.floor(now / 30_000));
    const bad = ['', good.slice(1), `${good}0`, ` ${good}`, `${good}\n`, `${good.slice(0, 5)}a`, '１２３４５６', '+12345', '-12345', '12 345', '1e5000'];
    for (const code of bad) expect(verifyTotp(secret, code, now), JSON.stringify(code)).toBeUndefined();
    expect(verifyTotp(secret, undefined as unknown as string, now)).toBeUndefined();
    expect(verifyTotp(secret, 123456 as unknown as string, now)).toBeUndefined();
    // 8 digits expected: the 6-digit code is refused, the 8-digit one accepted.
    expect(verifyTotp(secret, good, now, { digits: 8 })).toBeUndefined();
    expect(verifyTotp(secret, totp(secret, now, { digits: 8 }), now, { digits: 8 })).toBe(Math.floor(now / 30_000));
  });

  it('does not reach before step 0 near T0', () => {
    const secret = seeds.sha1;
    expect(verifyTotp(secret, totp(secret, 0), 5_000, { window: 3 })).toBe(0);
    expect(verifyTotp(secret, totp(secret, 0), 0, { window: 10 })).toBe(0);
  });
});

describe('options and inputs', () => {
  const secret = seeds.sha1;

  it('refuses a bad digits option, naming it', () => {
    for (const digits of [0, 5, 9, 10, 6.5, NaN]) {
      const d = digits as OtpDigits;
      expect(inputErrorOf(() => hotp(secret, 0, { digits: d }))).toMatch(/digits .* must be 6, 7 or 8/);
      expect(inputErrorOf(() => totp(secret, 0, { digits: d }))).toMatch(/digits/);
      expect(inputErrorOf(() => verifyTotp(secret, '123456', 0, { digits: d }))).toMatch(/digits/);
      expect(inputErrorOf(() => otpauthUri('Keyframe', 'alice', secret, { digits: d }))).toMatch(/digits/);
    }
  });

  it('refuses a bad algorithm, step, T0, window, lastStep, counter, time or secret, naming it', () => {
    expect(inputErrorOf(() => hotp(secret, 0, { algorithm: 'md5' as OtpAlgorithm }))).toMatch(/algorithm "md5" must be sha1, sha256 or sha512/);
    for (const stepSeconds of [0, -30, 1.5, NaN, Infinity]) {
      expect(inputErrorOf(() => totp(secret, 0, { stepSeconds }))).toMatch(/stepSeconds .* must be a positive integer/);
      expect(inputErrorOf(() => verifyTotp(secret, '123456', 0, { stepSeconds }))).toMatch(/stepSeconds/);
    }
    expect(inputErrorOf(() => totp(secret, 0, { t0: 0.5 }))).toMatch(/t0/);
    for (const window of [-1, 11, 1.5, NaN]) {
      expect(inputErrorOf(() => verifyTotp(secret, '123456', 0, { window }))).toMatch(/window .* must be an integer from 0 to 10/);
    }
    expect(inputErrorOf(() => verifyTotp(secret, '123456', 0, { lastStep: 1.5 }))).toMatch(/lastStep/);
    for (const counter of [-1, 1.5, NaN, Number.MAX_SAFE_INTEGER + 1]) {
      expect(inputErrorOf(() => hotp(secret, counter))).toMatch(/counter .* must be a non-negative integer/);
    }
    expect(inputErrorOf(() => hotp(secret, -1n))).toMatch(/counter -1 is outside 0 to 2\^64 - 1/);
    expect(inputErrorOf(() => hotp(secret, 1n << 64n))).toMatch(/outside 0 to 2\^64 - 1/);
    expect(hotp(secret, (1n << 64n) - 1n)).toMatch(/^[0-9]{6}$/);
    for (const time of [NaN, Infinity, -Infinity]) expect(inputErrorOf(() => totp(secret, time))).toMatch(/time .* is not a finite number/);
    expect(inputErrorOf(() => verifyTotp(secret, '123456', NaN))).toMatch(/time/);
    expect(inputErrorOf(() => totp(secret, -1))).toMatch(/before T0/);
    expect(inputErrorOf(() => hotp(Buffer.alloc(0), 0))).toMatch(/secret is empty/);
    expect(inputErrorOf(() => hotp('secret' as unknown as Uint8Array, 0))).toMatch(/secret is not bytes/);
  });
});

describe('generateTotpSecret and otpauthUri', () => {
  it('makes 20 random bytes (32 base32 characters)', () => {
    const a = generateTotpSecret();
    const b = generateTotpSecret();
    expect(a).toHaveLength(20);
    expect(base32Encode(a)).toMatch(/^[A-Z2-7]{32}$/);
    expect(a.equals(b)).toBe(false);
  });

  it('writes the Key Uri Format with every parameter', () => {
    const secret = base32Decode('JBSWY3DPEHPK3PXP');
    expect(otpauthUri('Example', 'alice@google.com', secret)).toBe(
      'otpauth://totp/Example:alice%40google.com?secret=JBSWY3DPEHPK3PXP&issuer=Example&algorithm=SHA1&digits=6&period=30',
    );
    expect(otpauthUri('ACME Co', 'john.doe@email.com', secret, { algorithm: 'sha256', digits: 8, stepSeconds: 60 })).toBe(
      'otpauth://totp/ACME%20Co:john.doe%40email.com?secret=JBSWY3DPEHPK3PXP&issuer=ACME%20Co&algorithm=SHA256&digits=8&period=60',
    );
  });

  it('percent-encodes issuer and account so that a URL parser gets them back (property)', () => {
    const part = fc.string({ minLength: 1, maxLength: 30, unit: 'grapheme' }).filter((s) => !s.includes(':'));
    fc.assert(
      fc.property(part, part, fc.uint8Array({ minLength: 1, maxLength: 40 }), (issuer, account, secret) => {
        const url = new URL(otpauthUri(issuer, account, secret));
        expect(url.protocol).toBe('otpauth:');
        expect(url.host).toBe('totp');
        expect(decodeURIComponent(url.pathname)).toBe(`/${issuer}:${account}`);
        expect(url.searchParams.get('issuer')).toBe(issuer);
        expect(base32Decode(url.searchParams.get('secret') ?? '').equals(secret)).toBe(true);
        expect(url.searchParams.get('algorithm')).toBe('SHA1');
        expect(url.searchParams.get('digits')).toBe('6');
        expect(url.searchParams.get('period')).toBe('30');
      }),
      { numRuns: 200 },
    );
  });

  it('refuses an empty issuer or account, a colon in either, and a lone surrogate', () => {
    const secret = generateTotpSecret();
    expect(inputErrorOf(() => otpauthUri('', 'alice', secret))).toMatch(/issuer is empty/);
    expect(inputErrorOf(() => otpauthUri('Keyframe', '', secret))).toMatch(/account is empty/);
    expect(inputErrorOf(() => otpauthUri('Key:frame', 'alice', secret))).toMatch(/issuer "Key:frame" contains ':'/);
    expect(inputErrorOf(() => otpauthUri('Keyframe', 'a:lice', secret))).toMatch(/account "a:lice" contains ':'/);
    expect(inputErrorOf(() => otpauthUri('Keyframe', 'al\ud800ice', secret))).toMatch(/account is not well-formed Unicode/);
  });
});
