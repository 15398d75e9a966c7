/**
 * One-time enrolment tokens: the factory CA certifies a device key only for a request that carries a token the
 * CA issued for that device serial (white paper §3: "only certificates for which a request for issuing is
 * appropriately made at manufacture … are signed").
 *
 *   token = "kfe1." base64url(id, 12 bytes) "." base64url(secret, 32 bytes)
 *
 * The CA stores the id, the serial it is bound to, SHA-256(secret), an expiry and, once used, the time of use.
 * The secret is compared in constant time. An authentic token is spent by its first use, even when that use is
 * refused (wrong serial, expired): a stolen token cannot be retried. Every refusal looks the same to the
 * requester; the reason goes to the CA's audit log only.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { CaDb, TokenRecord } from './ca-store.js';

const PREFIX = 'kfe1';
const ID_BYTES = 12;
const SECRET_BYTES = 32;
export const DEFAULT_TOKEN_TTL_MS = 60 * 60_000;

export interface ParsedToken {
  readonly id: string;
  readonly secret: Buffer;
}

export function formatToken(id: Uint8Array, secret: Uint8Array): string {
  return `${PREFIX}.${Buffer.from(id).toString('base64url')}.${Buffer.from(secret).toString('base64url')}`;
}

/** Parses a token's shape; undefined for anything that is not one (never throws). */
export function parseToken(text: string): ParsedToken | undefined {
  const parts = text.trim().split('.');
  if (parts.length !== 3 || parts[0] !== PREFIX) return undefined;
  const [, idText = '', secretText = ''] = parts;
  if (!/^[A-Za-z0-9_-]+$/.test(idText) || !/^[A-Za-z0-9_-]+$/.test(secretText)) return undefined;
  const id = Buffer.from(idText, 'base64url');
  const secret = Buffer.from(secretText, 'base64url');
  if (id.length !== ID_BYTES || secret.length !== SECRET_BYTES) return undefined;
  if (id.toString('base64url') !== idText || secret.toString('base64url') !== secretText) return undefined;
  return { id: idText, secret };
}

function sha256(data: Uint8Array): Buffer {
  return createHash('sha256').update(data).digest();
}

/** Makes a token for `deviceSerial` and the record the CA keeps of it. */
export function newToken(deviceSerial: string, now: Date, ttlMs = DEFAULT_TOKEN_TTL_MS): { token: string; record: TokenRecord } {
  const id = randomBytes(ID_BYTES);
  const secret = randomBytes(SECRET_BYTES);
  const token = formatToken(id, secret);
  const record: TokenRecord = {
    id: id.toString('base64url'),
    deviceSerial,
    secretSha256: sha256(secret).toString('hex'),
    issuedAt: now.toISOString(),
    expiresAt: new Date(now.getTime() + ttlMs).toISOString(),
  };
  return { token, record };
}

export type Redemption = { readonly record: TokenRecord } | { readonly refusal: string };

/**
 * Checks `token` against the CA database for a request naming `deviceSerial`, and spends it. Mutates `db`
 * (the caller writes it back under the CA lock, refused or not: a spent token must stay spent).
 */
export function redeemToken(db: CaDb, token: string, deviceSerial: string, now: Date): Redemption {
  const parsed = parseToken(token);
  if (parsed === undefined) return { refusal: 'malformed token' };
  const record = db.tokens.find((t) => t.id === parsed.id);
  const presented = sha256(parsed.secret);
  // compare even when the id is unknown, so timing does not tell known ids from unknown ones
  const expected = record !== undefined ? Buffer.from(record.secretSha256, 'hex') : Buffer.alloc(32);
  const authentic = timingSafeEqual(presented, expected) && record !== undefined;
  if (!authentic || record === undefined) return { refusal: 'unknown or forged token' };
  if (record.usedAt !== undefined) return { refusal: `token ${record.id} reused (first used ${record.usedAt})` };
  record.usedAt = now.toISOString();
  if (now.getTime() > Date.parse(record.expiresAt)) return { refusal: `token ${record.id} expired at ${record.expiresAt}` };
  if (record.deviceSerial !== deviceSerial) return { refusal: `token ${record.id} is for serial ${record.deviceSerial}, request names ${deviceSerial}` };
  return { record };
}
