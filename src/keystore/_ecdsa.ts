/**
 * ECDSA signature encodings: IEEE P1363 (raw r‖s, what PKCS#11 CKM_ECDSA returns) and DER (the X.509 / CMS
 * Ecdsa-Sig-Value SEQUENCE { r INTEGER, s INTEGER }). The ASN.1 is done by @peculiar/asn1-ecc; this module only
 * makes the INTEGER contents minimal and positive, which DER (and OpenSSL's strict verifier) require.
 */
import { ECDSASigValue } from '@peculiar/asn1-ecc';
import { AsnConvert } from '@peculiar/asn1-schema';

/** Big-endian unsigned bytes → the content octets of a DER INTEGER (minimal, with 0x00 if the top bit is set). */
function derIntegerContent(unsigned: Uint8Array): ArrayBuffer {
  let i = 0;
  while (i < unsigned.length - 1 && unsigned[i] === 0) i++;
  const body = unsigned.subarray(i);
  const needsPad = body.length === 0 || (body[0] ?? 0) >= 0x80;
  const out = new Uint8Array(body.length + (needsPad ? 1 : 0));
  out.set(body, needsPad ? 1 : 0);
  return out.buffer;
}

/** The content octets of a DER INTEGER → big-endian unsigned, left-padded to `size` bytes. */
function fixedWidth(content: ArrayBuffer, size: number): Buffer {
  let bytes = new Uint8Array(content);
  let i = 0;
  while (i < bytes.length && bytes[i] === 0) i++;
  bytes = bytes.subarray(i);
  if (bytes.length > size) throw new RangeError(`ECDSA signature component is ${bytes.length} bytes, expected at most ${size}`);
  const out = Buffer.alloc(size);
  out.set(bytes, size - bytes.length);
  return out;
}

/** r‖s (2 × size bytes) → DER Ecdsa-Sig-Value. */
export function p1363ToDer(signature: Uint8Array): Buffer {
  if (signature.length === 0 || signature.length % 2 !== 0) throw new RangeError(`bad IEEE P1363 ECDSA signature length ${signature.length}`);
  const half = signature.length / 2;
  const value = new ECDSASigValue({
    r: derIntegerContent(signature.subarray(0, half)),
    s: derIntegerContent(signature.subarray(half)),
  });
  return Buffer.from(AsnConvert.serialize(value));
}

/** DER Ecdsa-Sig-Value → r‖s with each half `size` bytes (32 for P-256). */
export function derToP1363(der: Uint8Array, size = 32): Buffer {
  const value = AsnConvert.parse(der, ECDSASigValue);
  return Buffer.concat([fixedWidth(value.r, size), fixedWidth(value.s, size)]);
}
