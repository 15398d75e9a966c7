/**
 * RFC 3161 time-stamp requests (§2.4.1): only a hash travels to the TSA. Pure: bytes in, bytes out.
 *
 *   TimeStampReq ::= SEQUENCE { version 1, messageImprint, reqPolicy OPTIONAL, nonce OPTIONAL, certReq DEFAULT FALSE,
 *                               extensions [0] OPTIONAL }
 */
import { randomBytes } from 'node:crypto';
import { AsnConvert, OctetString } from '@peculiar/asn1-schema';
import { MessageImprint, TimeStampReq } from '@peculiar/asn1-tsp';
import { AlgorithmIdentifier } from '@peculiar/asn1-x509';
import { InputError } from '../errors.js';
import { DIGEST_OID, DIGEST_OIDS, type DigestName } from './oids.js';

/** Digests a keyframe TSA accepts in an imprint (SHA-1 is not one). */
export const IMPRINT_DIGESTS: readonly DigestName[] = ['sha256', 'sha384', 'sha512'];
const DIGEST_BYTES: Readonly<Record<DigestName, number>> = { sha1: 20, sha256: 32, sha384: 48, sha512: 64 };

export interface TimeStampRequest {
  readonly hashAlgorithm: DigestName;
  readonly hashedMessage: Uint8Array;
  /** Requested TSA policy (OID), if any. */
  readonly policy?: string;
  /** A fresh random number the reply must echo (RFC 3161 §2.4.1): replays of old replies are refused. */
  readonly nonce?: bigint;
  /** Ask the TSA to include its certificate in the token. */
  readonly certReq: boolean;
}

/** A 63-bit positive random nonce. */
export function newNonce(): bigint {
  const b = randomBytes(8);
  b[0] = ((b[0] ?? 0) & 0x7f) | 0x01;
  return BigInt(`0x${b.toString('hex')}`);
}

/** Big-endian two's complement bytes of a non-negative integer, as DER INTEGER content. */
export function integerBytes(n: bigint): ArrayBuffer {
  if (n < 0n) throw new InputError('negative integers are not used here');
  let hex = n.toString(16);
  if (hex.length % 2 === 1) hex = `0${hex}`;
  if (/^[89a-f]/.test(hex)) hex = `00${hex}`;
  const b = Buffer.from(hex, 'hex');
  return new Uint8Array(b).buffer;
}

/** The value of DER INTEGER content bytes (two's complement). */
export function integerValue(bytes: ArrayBuffer | Uint8Array): bigint {
  const b = Buffer.from(bytes instanceof Uint8Array ? bytes : new Uint8Array(bytes));
  if (b.length === 0) return 0n;
  let v = BigInt(`0x${b.toString('hex')}`);
  if (((b[0] ?? 0) & 0x80) !== 0) v -= 1n << BigInt(8 * b.length);
  return v;
}

export function encodeTimeStampRequest(r: TimeStampRequest): Buffer {
  if (DIGEST_BYTES[r.hashAlgorithm] !== r.hashedMessage.length) throw new InputError(`a ${r.hashAlgorithm} imprint is ${DIGEST_BYTES[r.hashAlgorithm]} bytes, not ${r.hashedMessage.length}`);
  const req = new TimeStampReq({
    version: 1,
    messageImprint: new MessageImprint({ hashAlgorithm: new AlgorithmIdentifier({ algorithm: DIGEST_OID[r.hashAlgorithm] }), hashedMessage: new OctetString(r.hashedMessage) }),
    certReq: r.certReq,
    ...(r.policy !== undefined ? { reqPolicy: r.policy } : {}),
    ...(r.nonce !== undefined ? { nonce: integerBytes(r.nonce) } : {}),
  });
  return Buffer.from(AsnConvert.serialize(req));
}

/** Decodes a request (InputError for anything that is not a well-formed v1 TimeStampReq). */
export function decodeTimeStampRequest(der: Uint8Array): TimeStampRequest & { readonly hashOid: string; readonly hasExtensions: boolean } {
  let req: TimeStampReq;
  try {
    req = AsnConvert.parse(der, TimeStampReq);
  } catch (e) {
    throw new InputError('not an RFC 3161 time-stamp request', { cause: e });
  }
  if (Number(req.version) !== 1) throw new InputError(`time-stamp request version ${String(req.version)} (expected 1)`);
  const hashOid = req.messageImprint.hashAlgorithm.algorithm;
  const name = DIGEST_OIDS[hashOid];
  const hashedMessage = new Uint8Array(req.messageImprint.hashedMessage.buffer);
  return {
    hashOid,
    hashAlgorithm: name ?? 'sha256',
    hashedMessage,
    certReq: req.certReq,
    hasExtensions: (req.extensions?.length ?? 0) > 0,
    ...(req.reqPolicy !== undefined ? { policy: req.reqPolicy } : {}),
    ...(req.nonce !== undefined ? { nonce: integerValue(req.nonce) } : {}),
  };
}

/** Whether a decoded request's digest is one we accept with an imprint of the right length. */
export function imprintAcceptable(r: { readonly hashOid: string; readonly hashedMessage: Uint8Array }): boolean {
  const name = DIGEST_OIDS[r.hashOid];
  return name !== undefined && IMPRINT_DIGESTS.includes(name) && DIGEST_BYTES[name] === r.hashedMessage.length;
}
