/**
 * Short-lived access tokens (RFC 9068 JWT profile, `typ: at+jwt`, ES256) that the KMS issues and the NVR checks
 * offline with the KMS's public certificate.
 *
 * - Signing: the KMS's private key stays inside its key store (possibly a PKCS#11 token) and cannot be handed to
 *   a JOSE library, so the compact serialization is built here around a signer callback that returns a raw
 *   ECDSA P-256 signature (IEEE P1363 r‖s, 64 bytes), exactly what `KeyStore.sign(label, data,
 *   { dsaEncoding: 'ieee-p1363' })` returns. The header and the claims are written in a fixed order.
 * - Verification: jose's `jwtVerify` (an independent, well-kept implementation) with ES256 only, `typ: at+jwt`,
 *   issuer, audience, every claim required and a bounded token age; then our own checks on top: each segment in
 *   canonical base64url (one token, one spelling), claim types, an `iat` not in the future, and a lifetime
 *   `exp − iat` no longer than the verifier accepts.
 * - Every failure is one `TokenRefused` (KF_ERR_FORBIDDEN, 'access token refused'): a bad signature, an expired
 *   or foreign token and a malformed one cannot be told apart by their error. The reason is kept in the
 *   non-enumerable `reason` property, for the local log only; never send it to the client.
 */
import { randomBytes } from 'node:crypto';
import type { KeyObject, webcrypto } from 'node:crypto';
import { jwtVerify } from 'jose';
import { ErrorCodes, KeyframeError } from '../errors.js';
import { aclProblem } from './acl.js';
import type { AclEntry } from './acl.js';

/** The claims of an access token. `iat` and `exp` are seconds since the epoch. */
export interface AccessClaims {
  /** The issuing KMS. */
  iss: string;
  /** The user name. */
  sub: string;
  /** The service the token is for (the NVR). */
  aud: string;
  /** The login session's public identifier (never the cookie secret). */
  sid: string;
  /** One of the account roles. */
  role: string;
  iat: number;
  exp: number;
  /** A unique token identifier (see `newTokenId`). */
  jti: string;
  /** What the holder may do at the NVR (acl.ts), resolved from its grants when the token was issued. */
  acl: AclEntry[];
}

/**
 * Signs for `signAccessToken`: returns an ECDSA P-256 signature over SHA-256(signingInput) in IEEE P1363 form
 * (raw r‖s, 64 bytes), as `KeyStore.sign(label, data, { dsaEncoding: 'ieee-p1363' })` does.
 */
export type TokenSigner = (signingInput: Uint8Array) => Promise<Uint8Array>;

/** The lifetime the KMS gives its access tokens by default, in seconds. */
export const accessTokenLifetimeSeconds = 120;

/** The longest lifetime (`exp − iat`) a verifier accepts by default, in seconds. */
export const DEFAULT_MAX_LIFETIME_SECONDS = 300;

/** The clock skew a verifier tolerates by default, in seconds. */
export const DEFAULT_CLOCK_TOLERANCE_SECONDS = 5;

/** The single message for every refused access token: the presenter learns nothing about why. */
export const TOKEN_REFUSED_MESSAGE = 'access token refused';

/** The RFC 9068 media type of a JWT access token, in the `typ` header. */
const TOKEN_TYPE = 'at+jwt';

/** Longer strings are refused before any parsing: a real token is a few hundred characters. */
const MAX_TOKEN_LENGTH = 8192;

/** The length of an ES256 signature in IEEE P1363 form. */
const ES256_SIGNATURE_BYTES = 64;

const CLAIM_NAMES = ['iss', 'sub', 'aud', 'sid', 'role', 'iat', 'exp', 'jti'] as const;
const STRING_CLAIMS = ['iss', 'sub', 'aud', 'sid', 'role', 'jti'] as const;

const BASE64URL = /^[A-Za-z0-9_-]+$/;

/**
 * A refused access token (KF_ERR_FORBIDDEN), with one message for every failure. `reason` (non-enumerable, so
 * that it is left out of serialised errors) says why, for the local log only.
 */
export class TokenRefused extends KeyframeError {
  declare readonly reason: string;

  constructor(reason: string) {
    super(ErrorCodes.FORBIDDEN, TOKEN_REFUSED_MESSAGE);
    this.name = 'TokenRefused';
    Object.defineProperty(this, 'reason', { value: reason, enumerable: false, writable: false, configurable: false });
  }
}

/** A new token identifier: 16 random bytes, base64url. */
export function newTokenId(): string {
  return randomBytes(16).toString('base64url');
}

/** One segment of a compact JWS: the value's JSON, base64url (also the revocation list's). */
export function encodeSegment(value: object): string {
  return Buffer.from(JSON.stringify(value), 'utf8').toString('base64url');
}

/** A problem with a claim set, or undefined when every claim has its type. */
function claimsProblem(claims: Readonly<Record<string, unknown>>): string | undefined {
  for (const name of STRING_CLAIMS) {
    const value = claims[name];
    if (typeof value !== 'string' || value.length === 0) return `claim "${name}" is not a non-empty string`;
  }
  for (const name of ['iat', 'exp'] as const) {
    const value = claims[name];
    if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) return `claim "${name}" is not a whole number of seconds`;
  }
  if ((claims['exp'] as number) <= (claims['iat'] as number)) return 'claim "exp" is not after "iat"';
  return aclProblem(claims['acl']);
}

/**
 * Signs `claims` as an RFC 9068 access token (ES256, `typ: at+jwt`, `kid` when given) with `signer`, which must
 * return a 64-byte IEEE P1363 signature. Claims of the wrong type, or a signature of another length, are bugs
 * (KF_ERR_INTERNAL).
 */
export async function signAccessToken(claims: AccessClaims, signer: TokenSigner, keyId?: string): Promise<string> {
  const problem = claimsProblem(claims as unknown as Record<string, unknown>);
  if (problem !== undefined) throw new KeyframeError(ErrorCodes.INTERNAL, `cannot sign an access token: ${problem}`);
  if (keyId !== undefined && keyId.length === 0) throw new KeyframeError(ErrorCodes.INTERNAL, 'cannot sign an access token: empty key id');
  const header = keyId !== undefined ? { alg: 'ES256', typ: TOKEN_TYPE, kid: keyId } : { alg: 'ES256', typ: TOKEN_TYPE };
  // A fresh object in a fixed order: nothing but the claims, whatever else the caller's object carries.
  const acl = claims.acl.map((e) => ({ cams: [...e.cams], rights: [...e.rights], from: e.from, to: e.to }));
  const payload: AccessClaims = { iss: claims.iss, sub: claims.sub, aud: claims.aud, sid: claims.sid, role: claims.role, iat: claims.iat, exp: claims.exp, jti: claims.jti, acl };
  const signingInput = `${encodeSegment(header)}.${encodeSegment(payload)}`;
  const signature = await signer(Buffer.from(signingInput, 'ascii'));
  if (!(signature instanceof Uint8Array) || signature.length !== ES256_SIGNATURE_BYTES) {
    const got = signature instanceof Uint8Array ? `${signature.length} bytes` : typeof signature;
    throw new KeyframeError(ErrorCodes.INTERNAL, `access token signer returned ${got}, expected a ${ES256_SIGNATURE_BYTES}-byte IEEE P1363 ECDSA P-256 signature`);
  }
  return `${signingInput}.${Buffer.from(signature.buffer, signature.byteOffset, signature.byteLength).toString('base64url')}`;
}

export interface VerifyAccessTokenOptions {
  /** The expected `iss`: the KMS. */
  readonly issuer: string;
  /** The expected `aud`: this service. */
  readonly audience: string;
  /** The current time in milliseconds since the epoch (default: now). */
  readonly nowMs?: number;
  /** The longest `exp − iat` accepted, in seconds (default 300). */
  readonly maxLifetimeSeconds?: number;
  /** The clock skew tolerated on `exp` and `iat`, in seconds (default 5). */
  readonly clockToleranceSeconds?: number;
}

/** Checks the verifier's own options: a wrong one is a bug, never a refused token. */
function checkedOptions(expect: VerifyAccessTokenOptions): { now: number; maxLifetime: number; tolerance: number } {
  const bug = (what: string): KeyframeError => new KeyframeError(ErrorCodes.INTERNAL, `verifyAccessToken: ${what}`);
  if (typeof expect.issuer !== 'string' || expect.issuer.length === 0) throw bug('empty issuer');
  if (typeof expect.audience !== 'string' || expect.audience.length === 0) throw bug('empty audience');
  const now = expect.nowMs ?? Date.now();
  if (!Number.isFinite(now) || now < 0) throw bug(`bad current time ${now}`);
  const maxLifetime = expect.maxLifetimeSeconds ?? DEFAULT_MAX_LIFETIME_SECONDS;
  if (!Number.isSafeInteger(maxLifetime) || maxLifetime <= 0) throw bug(`bad maximum lifetime ${maxLifetime}`);
  const tolerance = expect.clockToleranceSeconds ?? DEFAULT_CLOCK_TOLERANCE_SECONDS;
  if (!Number.isSafeInteger(tolerance) || tolerance < 0) throw bug(`bad clock tolerance ${tolerance}`);
  return { now, maxLifetime, tolerance };
}

/** Why the compact serialization is not three canonical base64url segments, or undefined. */
function serializationProblem(token: string): string | undefined {
  if (token.length > MAX_TOKEN_LENGTH) return `token longer than ${MAX_TOKEN_LENGTH} characters`;
  const segments = token.split('.');
  if (segments.length !== 3) return `${segments.length} segments instead of 3`;
  for (const [i, segment] of segments.entries()) {
    // Canonical: the base64url alphabet, no padding, and unused trailing bits zero. Decoders ignore those bits,
    // so without this check one token would have several spellings.
    if (!BASE64URL.test(segment) || Buffer.from(segment, 'base64url').toString('base64url') !== segment) return `segment ${i + 1} is not canonical base64url`;
  }
  return undefined;
}

function reasonOf(e: unknown): string {
  if (e instanceof Error) {
    const code = (e as { code?: unknown }).code;
    return typeof code === 'string' ? `${code}: ${e.message}` : e.message;
  }
  return String(e);
}

/**
 * Verifies an access token with the issuer's public key and returns its claims. Every failure — malformed,
 * another algorithm (`none`, HS256 …), another key, a bad signature, expired, not yet valid, another issuer or
 * audience, a missing or mistyped claim, a lifetime above `maxLifetimeSeconds` — is the same `TokenRefused`.
 * Wrong options are bugs (KF_ERR_INTERNAL).
 */
export async function verifyAccessToken(token: string, publicKey: KeyObject | webcrypto.CryptoKey, expect: VerifyAccessTokenOptions): Promise<AccessClaims> {
  const { now, maxLifetime, tolerance } = checkedOptions(expect);
  if (typeof token !== 'string') throw new TokenRefused('token is not a string');
  const malformed = serializationProblem(token);
  if (malformed !== undefined) throw new TokenRefused(malformed);
  let payload: Readonly<Record<string, unknown>>;
  try {
    const result = await jwtVerify(token, publicKey, {
      algorithms: ['ES256'],
      typ: TOKEN_TYPE,
      issuer: expect.issuer,
      audience: expect.audience,
      currentDate: new Date(now),
      clockTolerance: tolerance,
      // Bounds now − iat, and refuses an iat in the future beyond the tolerance.
      maxTokenAge: maxLifetime,
      requiredClaims: [...CLAIM_NAMES],
    });
    payload = result.payload;
  } catch (e) {
    throw new TokenRefused(reasonOf(e));
  }
  const problem = claimsProblem(payload);
  if (problem !== undefined) throw new TokenRefused(problem);
  const claims: AccessClaims = {
    iss: payload['iss'] as string,
    sub: payload['sub'] as string,
    aud: payload['aud'] as string,
    sid: payload['sid'] as string,
    role: payload['role'] as string,
    iat: payload['iat'] as number,
    exp: payload['exp'] as number,
    jti: payload['jti'] as string,
    acl: payload['acl'] as AclEntry[],
  };
  // jose checks these already; checked again here so that no option of jose's can weaken them unnoticed.
  if (claims.iss !== expect.issuer) throw new TokenRefused('unexpected issuer');
  if (claims.aud !== expect.audience) throw new TokenRefused('unexpected audience');
  const nowSeconds = Math.floor(now / 1000);
  if (claims.iat > nowSeconds + tolerance) throw new TokenRefused('"iat" is in the future');
  if (claims.exp <= nowSeconds - tolerance) throw new TokenRefused('"exp" has passed');
  if (claims.exp - claims.iat > maxLifetime) throw new TokenRefused(`lifetime ${claims.exp - claims.iat} s above the maximum of ${maxLifetime} s`);
  return claims;
}
