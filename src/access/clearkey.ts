/**
 * W3C Encrypted Media Extensions, Clear Key (encrypted-media § "Clear Key"): the licence request a CDM makes and the
 * JWK Set that answers it (pure).
 *
 *   request   {"kids":["LwVHf8JLtPrv2GUXFW2v_A"],"type":"temporary"}   (UTF-8 JSON; KIDs base64url, no padding)
 *   licence   {"keys":[{"kty":"oct","k":"tQ0bJVWb6b0KPL6KtZIy_A","kid":"LwVHf8JLtPrv2GUXFW2v_A"}],"type":"temporary"}
 *
 * Shaka sends the CDM's message bytes as they are; dash.js sends the same JSON as application/json: both are read
 * here. KIDs and keys are 16 bytes; base64url is unpadded (a padded KID is accepted, as some players send it).
 */
import { InputError } from '../errors.js';

export type SessionType = 'temporary' | 'persistent-license';

export interface LicenceRequest {
  readonly kids: Buffer[];
  readonly type: SessionType;
}

const B64URL = /^[A-Za-z0-9_-]+={0,2}$/;

/** base64url (no padding) of bytes. */
export function b64url(b: Uint8Array): string {
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('base64url');
}

/** Decodes a 16-byte KID or key from base64url (padding tolerated); InputError naming `what` otherwise. */
export function decodeKid(text: unknown, what: string): Buffer {
  if (typeof text !== 'string' || !B64URL.test(text)) throw new InputError(`${what} is not base64url`);
  const b = Buffer.from(text.replace(/=+$/, ''), 'base64url');
  if (b.length !== 16 || b.toString('base64url') !== text.replace(/=+$/, '')) throw new InputError(`${what} is not 16 bytes of base64url`);
  return b;
}

export function parseLicenceRequest(body: Uint8Array, maxKids = 64): LicenceRequest {
  let v: unknown;
  try {
    v = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(body));
  } catch {
    throw new InputError('the licence request is not UTF-8 JSON ({"kids":[…],"type":"temporary"})');
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new InputError('the licence request must be a JSON object');
  const o = v as Record<string, unknown>;
  const kids = o['kids'];
  if (!Array.isArray(kids) || kids.length === 0) throw new InputError('the licence request names no KIDs ("kids")');
  if (kids.length > maxKids) throw new InputError(`the licence request names ${kids.length} KIDs (at most ${maxKids})`);
  const type = o['type'] ?? 'temporary';
  if (type !== 'temporary' && type !== 'persistent-license') throw new InputError('"type" must be "temporary" or "persistent-license"');
  return { kids: kids.map((k, i) => decodeKid(k, `kids[${i}]`)), type };
}

export function encodeLicenceRequest(kids: readonly Uint8Array[], type: SessionType = 'temporary'): Buffer {
  return Buffer.from(JSON.stringify({ kids: kids.map(b64url), type }), 'utf8');
}

/** The JWK Set for `keys` (an empty set is never answered: the caller refuses instead). */
export function licenceResponse(keys: readonly { readonly kid: Uint8Array; readonly key: Uint8Array }[], type: SessionType = 'temporary'): string {
  return JSON.stringify({ keys: keys.map((k) => ({ kty: 'oct', k: b64url(k.key), kid: b64url(k.kid) })), type });
}

/** Reads a JWK Set licence back: KID (hex) → key. */
export function parseLicenceResponse(text: string): Map<string, Buffer> {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    throw new InputError('the licence is not JSON');
  }
  const keys = (v as { keys?: unknown }).keys;
  if (!Array.isArray(keys)) throw new InputError('the licence has no "keys"');
  const out = new Map<string, Buffer>();
  keys.forEach((k: unknown, i) => {
    const j = k as Record<string, unknown>;
    if (j['kty'] !== 'oct') throw new InputError(`keys[${i}] is not an "oct" key`);
    out.set(decodeKid(j['kid'], `keys[${i}].kid`).toString('hex'), decodeKid(j['k'], `keys[${i}].k`));
  });
  return out;
}
