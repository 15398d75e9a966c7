/**
 * An RFC 3161 client over HTTP (RFC 3161 §3.4): POST application/timestamp-query, read application/timestamp-reply.
 * The reply is checked for status, imprint and nonce here; the token's signature and TSA chain are the caller's to
 * verify against its trust anchors (verifyTimeStampToken) before any use.
 */
import { ErrorCodes, KeyframeError } from '../errors.js';
import type { DigestName } from './oids.js';
import { encodeTimeStampRequest, newNonce } from './request.js';
import { decodeTimeStampResponse, PKI_STATUS_NAMES } from './token.js';

export interface HttpRequestOptions {
  readonly hashAlgorithm?: DigestName;
  readonly policy?: string;
  /** Default 30 s. */
  readonly timeoutMs?: number;
}

/** Largest reply accepted (a token with a few certificates is a few kB). */
const MAX_REPLY = 1 << 20;

/** Asks the TSA at `url` for a token over `hash`; returns the token (DER ContentInfo) and the nonce sent. */
export async function requestTimeStamp(url: string, hash: Uint8Array, options: HttpRequestOptions = {}): Promise<{ token: Buffer; nonce: bigint }> {
  const nonce = newNonce();
  const body = encodeTimeStampRequest({ hashAlgorithm: options.hashAlgorithm ?? 'sha256', hashedMessage: hash, nonce, certReq: true, ...(options.policy !== undefined ? { policy: options.policy } : {}) });
  let res: Response;
  try {
    res = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/timestamp-query', accept: 'application/timestamp-reply' },
      body,
      signal: AbortSignal.timeout(options.timeoutMs ?? 30_000),
    });
  } catch (e) {
    throw new KeyframeError(ErrorCodes.UNAVAILABLE, `time-stamping authority ${url} unreachable: ${e instanceof Error ? e.message : String(e)}`);
  }
  if (!res.ok) throw new KeyframeError(ErrorCodes.UNAVAILABLE, `time-stamping authority ${url} answered HTTP ${res.status}`);
  const type = res.headers.get('content-type') ?? '';
  if (!type.toLowerCase().startsWith('application/timestamp-reply')) throw new KeyframeError(ErrorCodes.TIMESTAMP, `time-stamping authority ${url} answered ${type || 'without a content type'}, not application/timestamp-reply`);
  const reply = Buffer.from(await res.arrayBuffer());
  if (reply.length > MAX_REPLY) throw new KeyframeError(ErrorCodes.TIMESTAMP, `time-stamping authority ${url}: reply of ${reply.length} bytes is too large`);
  let decoded;
  try {
    decoded = decodeTimeStampResponse(reply);
  } catch {
    throw new KeyframeError(ErrorCodes.TIMESTAMP, `time-stamping authority ${url} answered something that is not an RFC 3161 reply`);
  }
  if (decoded.token === undefined) {
    const why = [PKI_STATUS_NAMES[decoded.status] ?? `status ${decoded.status}`, ...decoded.failInfo, ...decoded.statusText].join(', ');
    throw new KeyframeError(ErrorCodes.TIMESTAMP, `time-stamping authority ${url} refused: ${why}`);
  }
  return { token: decoded.token, nonce };
}
