/**
 * The KMS's list of ended login sessions, signed, so that an NVR stops honouring their access tokens at once
 * instead of when they expire (issue 13 §2: "logout and disabling an account revoke at once").
 *
 * Access tokens are checked offline (token.ts); each carries its login session's public identifier (`sid`). When a
 * session ends — logout, the account disabled, its password changed — the KMS puts its `sid` on this list for as
 * long as any token of it could still be valid (`win` seconds: the longest token lifetime a verifier accepts plus
 * the clock tolerance). The NVR fetches the list every few seconds from the KMS's browser listener (TLS, server
 * certificate from the operator CA) and refuses a token whose `sid` is on it; a list it cannot renew for a while
 * makes it refuse every token (fail closed: it can no longer tell).
 *
 * Format: a JWT (`typ: kf-revoked+jwt`, ES256, signed by the KMS's key like its access tokens) with claims
 * `iss` (the KMS), `iat` (seconds), `win` (seconds covered) and `sids` (the ended sessions' identifiers). The type
 * keeps an access token from passing as a list and a list from passing as an access token.
 */
import type { KeyObject, webcrypto } from 'node:crypto';
import { jwtVerify } from 'jose';
import { ErrorCodes, KeyframeError } from '../errors.js';
import { encodeSegment } from './token.js';
import type { TokenSigner } from './token.js';

export const REVOCATION_LIST_TYPE = 'kf-revoked+jwt';

/** Sessions on one list at most (a list is a few MB at worst; the KMS ends far fewer sessions in a window). */
export const MAX_REVOKED_SESSIONS = 100_000;

const MAX_LIST_LENGTH = 8 * 1024 * 1024;
const SID = /^[A-Za-z0-9_-]{8,128}$/;

export interface RevocationList {
  readonly iss: string;
  /** When the KMS made it, seconds since the epoch. */
  readonly iat: number;
  /** Seconds back from `iat` that it covers. */
  readonly win: number;
  readonly sids: readonly string[];
}

/** A list that is not the KMS's, not fresh, or malformed: one error (the reason for the local log only). */
export class RevocationListRefused extends KeyframeError {
  declare readonly reason: string;

  constructor(reason: string) {
    super(ErrorCodes.FORBIDDEN, 'revocation list refused');
    this.name = 'RevocationListRefused';
    Object.defineProperty(this, 'reason', { value: reason, enumerable: false });
  }
}

function listProblem(c: Readonly<Record<string, unknown>>): string | undefined {
  if (typeof c['iss'] !== 'string' || c['iss'] === '') return 'iss is not a string';
  if (!Number.isSafeInteger(c['iat']) || (c['iat'] as number) < 0) return 'iat is not a time';
  if (!Number.isSafeInteger(c['win']) || (c['win'] as number) <= 0) return 'win is not a positive number of seconds';
  const sids = c['sids'];
  if (!Array.isArray(sids)) return 'sids is not a list';
  if (sids.length > MAX_REVOKED_SESSIONS) return `more than ${MAX_REVOKED_SESSIONS} sessions`;
  if (!sids.every((s) => typeof s === 'string' && SID.test(s))) return 'sids holds something that is not a session identifier';
  return undefined;
}

/** Signs a list (the KMS); the claims are written in a fixed order. */
export async function signRevocationList(list: RevocationList, signer: TokenSigner): Promise<string> {
  const problem = listProblem(list as unknown as Record<string, unknown>);
  if (problem !== undefined) throw new KeyframeError(ErrorCodes.INTERNAL, `cannot sign a revocation list: ${problem}`);
  const input = `${encodeSegment({ alg: 'ES256', typ: REVOCATION_LIST_TYPE })}.${encodeSegment({ iss: list.iss, iat: list.iat, win: list.win, sids: [...list.sids] })}`;
  const signature = await signer(Buffer.from(input, 'ascii'));
  if (signature.length !== 64) throw new KeyframeError(ErrorCodes.INTERNAL, `revocation list signer returned ${signature.length} bytes, expected 64 (IEEE P1363 ES256)`);
  return `${input}.${Buffer.from(signature.buffer, signature.byteOffset, signature.byteLength).toString('base64url')}`;
}

export interface VerifyRevocationListOptions {
  /** The KMS (its access tokens' `iss`). */
  readonly issuer: string;
  /** Now, ms since the epoch (default Date.now()). */
  readonly nowMs?: number;
  /** The oldest list accepted, seconds (default 30): an older one is a replay or a stuck KMS. */
  readonly maxAgeSeconds?: number;
  /** Clock skew tolerated, seconds (default 5). */
  readonly clockToleranceSeconds?: number;
}

/** Verifies a list with the KMS's public key: ES256, its type, issuer, freshness, claim types. */
export async function verifyRevocationList(jwt: string, publicKey: KeyObject | webcrypto.CryptoKey, o: VerifyRevocationListOptions): Promise<RevocationList> {
  if (typeof jwt !== 'string' || jwt.length > MAX_LIST_LENGTH) throw new RevocationListRefused('not a string, or too long');
  let payload: Readonly<Record<string, unknown>>;
  try {
    const r = await jwtVerify(jwt, publicKey, {
      algorithms: ['ES256'],
      typ: REVOCATION_LIST_TYPE,
      issuer: o.issuer,
      currentDate: new Date(o.nowMs ?? Date.now()),
      clockTolerance: o.clockToleranceSeconds ?? 5,
      maxTokenAge: o.maxAgeSeconds ?? 30,
      requiredClaims: ['iss', 'iat', 'win', 'sids'],
    });
    payload = r.payload;
  } catch (e) {
    throw new RevocationListRefused(e instanceof Error ? e.message : String(e));
  }
  const problem = listProblem(payload);
  if (problem !== undefined) throw new RevocationListRefused(problem);
  if ((payload['iat'] as number) * 1000 > (o.nowMs ?? Date.now()) + (o.clockToleranceSeconds ?? 5) * 1000) throw new RevocationListRefused('iat is in the future');
  return { iss: payload['iss'] as string, iat: payload['iat'] as number, win: payload['win'] as number, sids: payload['sids'] as string[] };
}
