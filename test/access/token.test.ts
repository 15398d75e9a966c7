/**
 * Access tokens: what `signAccessToken` writes is a standard ES256 `at+jwt` (jose and a bare `crypto.verify`
 * accept it), what jose writes our verifier accepts, and every kind of bad token is refused with the one
 * uninformative `TokenRefused` — expired, not yet valid, foreign, forged, `alg: none`, algorithm confusion, too
 * long-lived, truncated, DER-signed, mistyped, non-canonical, or changed by a single character.
 */
import { createHmac, generateKeyPairSync, sign as cryptoSign, verify as cryptoVerify, webcrypto } from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { compactVerify, decodeProtectedHeader, jwtVerify, SignJWT } from 'jose';
import { describe, expect, it } from 'vitest';
import {
  accessTokenLifetimeSeconds,
  newTokenId,
  signAccessToken,
  TokenRefused,
  verifyAccessToken,
} from '../../src/access/token.js';
import type { AccessClaims, TokenSigner } from '../../src/access/token.js';
import { ErrorCodes, KeyframeError } from '../../src/errors.js';
import { SoftwareKeyStore } from '../../src/keystore/software.js';

const ISSUER = 'kms.site.example';
const AUDIENCE = 'nvr.site.example';
/** A fixed clock: 2030-01-01T00:00:00Z. */
const NOW_MS = Date.UTC(2030, 0, 1);
const NOW = NOW_MS / 1000;
const EXPECT = { issuer: ISSUER, audience: AUDIENCE, nowMs: NOW_MS } as const;

const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
const other = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });

const signerFor =
  (key: KeyObject): TokenSigner =>
  async (data) =>
    cryptoSign('sha256', data, { key, dsaEncoding: 'ieee-p1363' });
const signer = signerFor(privateKey);

function claims(overrides: Partial<AccessClaims> = {}): AccessClaims {
  return {
    iss: ISSUER,
    sub: 'alice',
    aud: AUDIENCE,
    sid: 'c2Vzc2lvbi0xMjM0NTY3OA',
    role: 'operator',
    iat: NOW,
    exp: NOW + accessTokenLifetimeSeconds,
    jti: 'AAECAwQFBgcICQoLDA0ODw',
    acl: [{ cams: ['CAM-1'], rights: ['live', 'playback'], from: NOW_MS - 86_400_000, to: NOW_MS }],
    ...overrides,
  };
}

const b64 = (value: unknown): string => Buffer.from(JSON.stringify(value), 'utf8').toString('base64url');
const decode = (segment: string): unknown => JSON.parse(Buffer.from(segment, 'base64url').toString('utf8'));

function segments(token: string): [string, string, string] {
  const parts = token.split('.');
  expect(parts).toHaveLength(3);
  return parts as [string, string, string];
}

/** A compact JWS with any header and payload, ES256-signed by `key` in the given encoding. */
function rawToken(header: unknown, payload: unknown, key: KeyObject = privateKey, dsaEncoding: 'ieee-p1363' | 'der' = 'ieee-p1363'): string {
  const input = `${b64(header)}.${b64(payload)}`;
  return `${input}.${cryptoSign('sha256', Buffer.from(input), { key, dsaEncoding }).toString('base64url')}`;
}

const ES256_HEADER = { alg: 'ES256', typ: 'at+jwt' } as const;

/** Awaits a refusal and checks that it is the one uninformative TokenRefused; returns it. */
async function refusal(promise: Promise<unknown>): Promise<TokenRefused> {
  const e = await promise.then(
    () => {
      throw new Error('expected the token to be refused');
    },
    (err: unknown) => err,
  );
  expect(e).toBeInstanceOf(TokenRefused);
  expect(e).toBeInstanceOf(KeyframeError);
  const refused = e as TokenRefused;
  expect(refused.message).toBe('access token refused');
  expect(refused.code).toBe(ErrorCodes.FORBIDDEN);
  expect(typeof refused.reason).toBe('string');
  expect(refused.reason.length).toBeGreaterThan(0);
  expect(Object.keys(refused)).not.toContain('reason');
  expect(JSON.stringify(refused)).not.toContain(refused.reason);
  return refused;
}

describe('signAccessToken / verifyAccessToken', () => {
  it('round-trips the claims, with the RFC 9068 header in unpadded base64url', async () => {
    const token = await signAccessToken(claims(), signer, 'kms-token-1');
    expect(token).toMatch(/^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/);
    const [header, payload] = segments(token);
    expect(decode(header)).toStrictEqual({ alg: 'ES256', typ: 'at+jwt', kid: 'kms-token-1' });
    expect(decode(payload)).toStrictEqual(claims());
    expect(await verifyAccessToken(token, publicKey, EXPECT)).toStrictEqual(claims());

    const noKid = await signAccessToken(claims(), signer);
    expect(decode(segments(noKid)[0])).toStrictEqual({ alg: 'ES256', typ: 'at+jwt' });
    expect(await verifyAccessToken(noKid, publicKey, EXPECT)).toStrictEqual(claims());
  });

  it('writes only the claims, whatever else the object carries', async () => {
    const extra = { ...claims(), admin: true } as AccessClaims;
    const token = await signAccessToken(extra, signer);
    expect(decode(segments(token)[1])).toStrictEqual(claims());
  });

  it('verifies with a WebCrypto CryptoKey as well as a KeyObject', async () => {
    const spki = publicKey.export({ type: 'spki', format: 'der' });
    const cryptoKey = await webcrypto.subtle.importKey('spki', spki, { name: 'ECDSA', namedCurve: 'P-256' }, false, ['verify']);
    const token = await signAccessToken(claims(), signer);
    expect(await verifyAccessToken(token, cryptoKey, EXPECT)).toStrictEqual(claims());
  });

  it('signs through a key store, as the KMS does', async () => {
    const tmp = mkdtempSync(join(tmpdir(), 'kf-token-'));
    try {
      const store = await SoftwareKeyStore.open(join(tmp, 'keystore'), 'correct horse battery', { create: true, scrypt: { N: 1024, r: 8, p: 1 } });
      try {
        const pub = await store.generateKeyPair('kms-token', 'ec-p256');
        const token = await signAccessToken(claims(), (data) => store.sign('kms-token', data, { dsaEncoding: 'ieee-p1363' }), 'kms-token');
        expect(await verifyAccessToken(token, pub, EXPECT)).toStrictEqual(claims());
        await refusal(verifyAccessToken(token, publicKey, EXPECT));
      } finally {
        await store.close();
      }
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
  });

  it("accepts jose's own SignJWT token with the same key", async () => {
    const c = claims();
    const token = await new SignJWT({ sid: c.sid, role: c.role, acl: c.acl })
      .setProtectedHeader({ alg: 'ES256', typ: 'at+jwt', kid: 'k1' })
      .setIssuer(c.iss)
      .setSubject(c.sub)
      .setAudience(c.aud)
      .setIssuedAt(c.iat)
      .setExpirationTime(c.exp)
      .setJti(c.jti)
      .sign(privateKey);
    const verified = await verifyAccessToken(token, publicKey, EXPECT);
    expect(verified).toStrictEqual(c);
    expect(verified).toStrictEqual(decode(segments(token)[1]));
  });

  it('writes a token that crypto.verify and jose accept independently, with exactly the claims signed', async () => {
    const token = await signAccessToken(claims(), signer, 'k1');
    const [header, payload, signature] = segments(token);
    const sig = Buffer.from(signature, 'base64url');
    expect(sig).toHaveLength(64);
    expect(cryptoVerify('sha256', Buffer.from(`${header}.${payload}`, 'ascii'), { key: publicKey, dsaEncoding: 'ieee-p1363' }, sig)).toBe(true);
    expect(decode(payload)).toStrictEqual(claims());

    const jws = await compactVerify(token, publicKey, { algorithms: ['ES256'] });
    expect(JSON.parse(new TextDecoder().decode(jws.payload))).toStrictEqual(claims());
    expect(decodeProtectedHeader(token)).toStrictEqual({ alg: 'ES256', typ: 'at+jwt', kid: 'k1' });
    const jwt = await jwtVerify(token, publicKey, { algorithms: ['ES256'], typ: 'at+jwt', issuer: ISSUER, audience: AUDIENCE, currentDate: new Date(NOW_MS) });
    expect(jwt.payload).toStrictEqual(claims());
  });

  it('refuses a signer that returns a DER signature, or any other length than 64 bytes (a bug, not a refusal)', async () => {
    const der: TokenSigner = async (data) => cryptoSign('sha256', data, { key: privateKey, dsaEncoding: 'der' });
    for (const bad of [der, async () => new Uint8Array(63), async () => new Uint8Array(65), async () => new Uint8Array(0)] satisfies TokenSigner[]) {
      const e = await signAccessToken(claims(), bad).then(
        () => undefined,
        (err: unknown) => err,
      );
      expect(e).toBeInstanceOf(KeyframeError);
      expect(e).not.toBeInstanceOf(TokenRefused);
      expect((e as KeyframeError).code).toBe(ErrorCodes.INTERNAL);
    }
  });

  it('refuses to sign claims of the wrong type (a bug)', async () => {
    for (const bad of [claims({ sub: '' }), claims({ iat: NOW + 0.5 }), claims({ exp: NOW }), { ...claims(), jti: 7 } as unknown as AccessClaims]) {
      await expect(signAccessToken(bad, signer)).rejects.toMatchObject({ code: ErrorCodes.INTERNAL });
    }
  });

  it('refuses wrong verifier options as bugs, not as refused tokens', async () => {
    const token = await signAccessToken(claims(), signer);
    for (const bad of [{ ...EXPECT, issuer: '' }, { ...EXPECT, nowMs: Number.NaN }, { ...EXPECT, maxLifetimeSeconds: 0 }, { ...EXPECT, clockToleranceSeconds: -1 }]) {
      const e = await verifyAccessToken(token, publicKey, bad).then(
        () => undefined,
        (err: unknown) => err,
      );
      expect(e).not.toBeInstanceOf(TokenRefused);
      expect((e as KeyframeError).code).toBe(ErrorCodes.INTERNAL);
    }
  });

  it('newTokenId is 16 random bytes in base64url', () => {
    const ids = new Set(Array.from({ length: 100 }, () => newTokenId()));
    expect(ids.size).toBe(100);
    for (const id of ids) {
      expect(id).toMatch(/^[A-Za-z0-9_-]{22}$/);
      expect(Buffer.from(id, 'base64url')).toHaveLength(16);
    }
  });
});

describe('refusals: every one is the same TokenRefused', () => {
  it('refuses an expired token, and accepts it up to the clock tolerance', async () => {
    const token = await signAccessToken(claims(), signer);
    const exp = NOW + accessTokenLifetimeSeconds;
    expect(await verifyAccessToken(token, publicKey, { ...EXPECT, nowMs: (exp + 4) * 1000 })).toStrictEqual(claims());
    await refusal(verifyAccessToken(token, publicKey, { ...EXPECT, nowMs: (exp + 5) * 1000 }));
    await refusal(verifyAccessToken(token, publicKey, { ...EXPECT, nowMs: (exp + 3600) * 1000 }));
    await refusal(verifyAccessToken(token, publicKey, { ...EXPECT, nowMs: (exp + 1) * 1000, clockToleranceSeconds: 0 }));
  });

  it('refuses a token issued in the future beyond the clock tolerance', async () => {
    const within = await signAccessToken(claims({ iat: NOW + 5, exp: NOW + 125 }), signer);
    expect(await verifyAccessToken(within, publicKey, EXPECT)).toStrictEqual(claims({ iat: NOW + 5, exp: NOW + 125 }));
    const beyond = await signAccessToken(claims({ iat: NOW + 6, exp: NOW + 126 }), signer);
    await refusal(verifyAccessToken(beyond, publicKey, EXPECT));
    const far = await signAccessToken(claims({ iat: NOW + 3600, exp: NOW + 3720 }), signer);
    await refusal(verifyAccessToken(far, publicKey, EXPECT));
  });

  it('refuses another audience or another issuer', async () => {
    await refusal(verifyAccessToken(await signAccessToken(claims({ aud: 'other-nvr' }), signer), publicKey, EXPECT));
    await refusal(verifyAccessToken(await signAccessToken(claims({ iss: 'other-kms' }), signer), publicKey, EXPECT));
    const token = await signAccessToken(claims(), signer);
    await refusal(verifyAccessToken(token, publicKey, { ...EXPECT, audience: 'other-nvr' }));
    await refusal(verifyAccessToken(token, publicKey, { ...EXPECT, issuer: 'other-kms' }));
  });

  it('refuses a token signed by another key', async () => {
    const token = await signAccessToken(claims(), signerFor(other.privateKey));
    await refusal(verifyAccessToken(token, publicKey, EXPECT));
    expect(await verifyAccessToken(token, other.publicKey, EXPECT)).toStrictEqual(claims());
  });

  it('refuses a modified payload, under the original signature or re-signed by another key', async () => {
    const [header, , signature] = segments(await signAccessToken(claims(), signer));
    const forged = b64(claims({ role: 'admin' }));
    await refusal(verifyAccessToken(`${header}.${forged}.${signature}`, publicKey, EXPECT));
    await refusal(verifyAccessToken(rawToken(ES256_HEADER, claims({ role: 'admin' }), other.privateKey), publicKey, EXPECT));
  });

  it('refuses alg none, with or without a signature segment', async () => {
    const input = `${b64({ alg: 'none', typ: 'at+jwt' })}.${b64(claims())}`;
    await refusal(verifyAccessToken(`${input}.`, publicKey, EXPECT));
    await refusal(verifyAccessToken(`${input}.${Buffer.alloc(64).toString('base64url')}`, publicKey, EXPECT));
    await refusal(verifyAccessToken(`${b64({ alg: 'ES256', typ: 'at+jwt' })}.${b64(claims())}.`, publicKey, EXPECT));
  });

  it('refuses HS256 keyed with the public key bytes (algorithm confusion)', async () => {
    const input = `${b64({ alg: 'HS256', typ: 'at+jwt' })}.${b64(claims())}`;
    const secrets = [
      publicKey.export({ type: 'spki', format: 'pem' }),
      publicKey.export({ type: 'spki', format: 'der' }),
      Buffer.from(publicKey.export({ format: 'jwk' }).x ?? '', 'base64url'),
    ];
    for (const secret of secrets) {
      const mac = createHmac('sha256', secret).update(input).digest('base64url');
      await refusal(verifyAccessToken(`${input}.${mac}`, publicKey, EXPECT));
    }
  });

  it('refuses a lifetime above the maximum', async () => {
    const at300 = await signAccessToken(claims({ exp: NOW + 300 }), signer);
    expect(await verifyAccessToken(at300, publicKey, EXPECT)).toStrictEqual(claims({ exp: NOW + 300 }));
    await refusal(verifyAccessToken(await signAccessToken(claims({ exp: NOW + 301 }), signer), publicKey, EXPECT));
    await refusal(verifyAccessToken(await signAccessToken(claims({ exp: NOW + 86_400 }), signer), publicKey, EXPECT));
    const normal = await signAccessToken(claims(), signer);
    await refusal(verifyAccessToken(normal, publicKey, { ...EXPECT, maxLifetimeSeconds: accessTokenLifetimeSeconds - 1 }));
  });

  it('refuses every truncation of a valid token', async () => {
    const token = await signAccessToken(claims(), signer, 'k1');
    for (let n = 0; n < token.length; n++) {
      await refusal(verifyAccessToken(token.slice(0, n), publicKey, EXPECT));
    }
  });

  it('refuses a token whose signature is DER instead of raw r‖s', async () => {
    const token = rawToken(ES256_HEADER, claims(), privateKey, 'der');
    const [header, payload, signature] = segments(token);
    expect(cryptoVerify('sha256', Buffer.from(`${header}.${payload}`), publicKey, Buffer.from(signature, 'base64url'))).toBe(true);
    await refusal(verifyAccessToken(token, publicKey, EXPECT));
  });

  it('refuses another typ, extra or missing segments, and claims of the wrong type', async () => {
    const c = claims();
    const bad: unknown[][] = [
      [{ alg: 'ES256', typ: 'JWT' }, c],
      [{ alg: 'ES256' }, c],
      [{ alg: 'ES384', typ: 'at+jwt' }, c],
      [ES256_HEADER, { ...c, sid: 1234 }],
      [ES256_HEADER, { ...c, role: null }],
      [ES256_HEADER, { ...c, aud: [AUDIENCE] }],
      [ES256_HEADER, { ...c, iat: String(c.iat) }],
      [ES256_HEADER, { ...c, iat: c.iat + 0.5 }],
      [ES256_HEADER, { ...c, exp: c.iat }],
      [ES256_HEADER, { ...c, sub: '' }],
      [ES256_HEADER, { ...c, jti: undefined }],
      [ES256_HEADER, { ...c, sid: undefined }],
      [ES256_HEADER, [c]],
      [ES256_HEADER, 'not an object'],
    ];
    for (const [header, payload] of bad) await refusal(verifyAccessToken(rawToken(header, payload), publicKey, EXPECT));
    const token = await signAccessToken(c, signer);
    await refusal(verifyAccessToken(`${token}.`, publicKey, EXPECT));
    await refusal(verifyAccessToken(`${token}.${segments(token)[2]}`, publicKey, EXPECT));
    await refusal(verifyAccessToken(` ${token}`, publicKey, EXPECT));
    await refusal(verifyAccessToken('', publicKey, EXPECT));
    await refusal(verifyAccessToken('x'.repeat(10_000), publicKey, EXPECT));
  });

  it('refuses a non-canonical spelling of a valid token, which jose alone would accept', async () => {
    const token = await signAccessToken(claims(), signer);
    const [header, payload, signature] = segments(token);
    // 64 bytes take 86 characters; the last one carries 2 bits of data and 4 unused bits (zero when canonical).
    expect(signature).toHaveLength(86);
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
    const last = alphabet.indexOf(signature.slice(-1));
    expect(last & 0b001111).toBe(0);
    const respelled = `${header}.${payload}.${signature.slice(0, -1)}${alphabet[last | 0b000001]}`;
    expect(respelled).not.toBe(token);
    expect(Buffer.from(segments(respelled)[2], 'base64url').equals(Buffer.from(signature, 'base64url'))).toBe(true);
    await expect(jwtVerify(respelled, publicKey, { algorithms: ['ES256'], currentDate: new Date(NOW_MS) })).resolves.toBeDefined();
    await refusal(verifyAccessToken(respelled, publicKey, EXPECT));
    await refusal(verifyAccessToken(`${token}==`, publicKey, EXPECT));
    await refusal(verifyAccessToken(`${header}.${payload}.${Buffer.from(signature, 'base64url').toString('base64')}`, publicKey, EXPECT));
  });

  it('property: changing any single character of the header, payload or signature is refused', async () => {
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
    const token = await signAccessToken(claims(), signer, 'k1');
    const parts = segments(token);
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 0, max: 2 }), fc.nat(), fc.integer({ min: 1, max: 63 }), async (which, at, flip) => {
        const segment = parts[which] as string;
        const i = at % segment.length;
        // The last character of a segment whose length is not a multiple of 4 has unused low bits, but its top
        // bit always carries data: set it in the flip, so the decoded bytes always change.
        const delta = i === segment.length - 1 && segment.length % 4 !== 0 ? flip | 0b100000 : flip;
        const changed = `${segment.slice(0, i)}${alphabet[alphabet.indexOf(segment.charAt(i)) ^ delta] as string}${segment.slice(i + 1)}`;
        expect(changed).not.toBe(segment);
        expect(Buffer.from(changed, 'base64url').equals(Buffer.from(segment, 'base64url'))).toBe(false);
        const tampered = parts.map((p, k) => (k === which ? changed : p)).join('.');
        await refusal(verifyAccessToken(tampered, publicKey, EXPECT));
      }),
      { numRuns: 300 },
    );
  });
});
