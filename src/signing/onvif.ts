/**
 * ONVIF Media Signing SEIs (ONVIF Media Signing Specification 26.06, doc/MediaSigning.xml in github onvif/specs;
 * byte layouts as the reference implementation onvif/media-signing-framework r25.12.3 writes and reads them,
 * lib/src/oms_tlv.c): user_data_unregistered with the ONVIF UUID, a reserved byte, TLVs (tag u8, length u16 BE).
 * Pure functions on bytes; anything malformed is a MediaError (or a `malformed` parse result).
 *
 * - The document a signature covers is the SEI NAL unit from its header byte up to, not including, the signature
 *   tag: as it is in the stream (escaped) when reserved bit 6 is set, else with emulation prevention removed. An
 *   emulation prevention byte that the signature tag itself causes is not part of it (the reference hashes the
 *   document before the signature TLV is written).
 * - Multi-byte integers are big-endian, as the reference writes and reads them (the specification text says
 *   little-endian for the time stamps and the counter; the reference validator rejects such counters as lost
 *   SEIs, and every stream signed with the reference has them big-endian; docs/signed-video.md §5).
 */
import { MediaError } from '../errors.js';
import { NalType, nalType, unescapeRbsp, uuidBytes } from '../media/h264/index.js';
import { decodeTlvs, type Tlv } from './tlv.js';

export const ONVIF_UUID = uuidBytes('005bc93f-2d71-5e95-ada4-796f90877a6f');

export const OnvifTag = {
  GENERAL: 1,
  HASH_LIST: 2,
  SIGNATURE: 3,
  CRYPTO_INFO: 4,
  VENDOR_INFO: 5,
  CERTIFICATES: 6,
  ARBITRARY_DATA: 7,
} as const;

/** Reserved byte: bit 7 certificate SEI, bit 6 emulation prevention applied before the document was hashed. */
export const RESERVED_CERTIFICATE = 0x80;
export const RESERVED_EPB = 0x40;
/** Bit 0 set would announce a further reserved byte: a format this reader does not know. */
const RESERVED_MORE = 0x01;

/** The specification revision keyframe implements, in the General TLV's version bytes (patch 0: not the reference code). */
export const SPEC_VERSION: readonly [number, number, number] = [26, 6, 0];

export const OID_SHA256 = '2.16.840.1.101.3.4.2.1';
export const OID_ECDSA_SHA256 = '1.2.840.10045.4.3.2';
export const OID_RSA_SHA256 = '1.2.840.113549.1.1.11';
export const OID_RSA_PSS = '1.2.840.113549.1.1.10';

/** Bytes reserved for the signature in the Signature TLV: the largest DER ECDSA P-256 signature, or the RSA modulus. */
export const ECDSA_P256_SIGNATURE_SLOT = 72;

export interface OnvifGeneral {
  /** TLV version: 2 (1 has no end time). */
  readonly version: number;
  /** Specification version bytes: major, minor, patch. */
  readonly codeVersion: readonly [number, number, number];
  /** Signing was triggered before the end of the GOP. */
  readonly partial: boolean;
  /** 100 ns intervals since 1601-01-01 (UTC), of the first frame of the (partial) GOP. */
  readonly start: bigint;
  /** The same, of the first frame after it (exclusive end); equal to start in version 1. */
  readonly end: bigint;
  /** Partial-GOP counter, +1 per (partial) GOP, u32. */
  readonly counter: number;
  /** Hashed NAL units the GOP hash covers. */
  readonly nalCount: number;
  readonly gopHash: Uint8Array;
  /** Hash of the first hashed NAL unit of the previous (partial) GOP; zeros for the first. */
  readonly linkedHash: Uint8Array;
}

export interface OnvifCryptoInfo {
  readonly hashOid: string;
  /** Absent (size 0) for ECDSA, as the reference writes it. */
  readonly signatureOid?: string;
  readonly rsaSize: number;
}

export interface OnvifVendorInfo {
  readonly firmwareVersion: string;
  readonly serialNumber: string;
  readonly manufacturer: string;
}

export interface OnvifCertificates {
  readonly userProvisioned: boolean;
  /** PEM, without the root. */
  readonly chainPem: string;
}

export type OnvifSigner = (document: Uint8Array) => Promise<Uint8Array>;

// ---- small codecs ---------------------------------------------------------------------------------------------

/** DER encoding of an OBJECT IDENTIFIER, tag and length included (what OpenSSL's i2d_ASN1_OBJECT writes). */
export function encodeOid(oid: string): Uint8Array {
  const parts = oid.split('.').map((p) => Number.parseInt(p, 10));
  const [a = 0, b = 0, ...rest] = parts;
  const body: number[] = [];
  for (const v of [a * 40 + b, ...rest]) {
    const bytes = [v & 0x7f];
    let x = Math.floor(v / 128);
    while (x > 0) {
      bytes.unshift((x & 0x7f) | 0x80);
      x = Math.floor(x / 128);
    }
    body.push(...bytes);
  }
  return Uint8Array.from([0x06, body.length, ...body]);
}

/** Decodes one DER OBJECT IDENTIFIER that fills `data`. */
export function decodeOid(data: Uint8Array): string {
  if (data.length < 3 || data[0] !== 0x06 || data[1] !== data.length - 2 || (data[1]) >= 0x80) throw new MediaError('crypto info: not a DER OID');
  const arcs: number[] = [];
  let v = 0;
  for (let i = 2; i < data.length; i++) {
    const byte = data[i] as number;
    v = v * 128 + (byte & 0x7f);
    if ((byte & 0x80) === 0) {
      arcs.push(v);
      v = 0;
    } else if (i === data.length - 1) throw new MediaError('crypto info: OID truncated');
  }
  const first = arcs.shift() ?? 0;
  const a = Math.min(2, Math.floor(first / 40));
  return [a, first - 40 * a, ...arcs].join('.');
}

class Writer {
  private readonly parts: number[] = [];
  u8(v: number): this {
    this.parts.push(v & 0xff);
    return this;
  }
  u16(v: number): this {
    return this.u8(v >>> 8).u8(v);
  }
  u32(v: number): this {
    return this.u16(Math.floor(v / 0x10000)).u16(v & 0xffff);
  }
  u64(v: bigint): this {
    for (let s = 56n; s >= 0n; s -= 8n) this.u8(Number((v >> s) & 0xffn));
    return this;
  }
  bytes(b: Uint8Array): this {
    for (const x of b) this.parts.push(x);
    return this;
  }
  done(): Uint8Array {
    return Uint8Array.from(this.parts);
  }
}

function u16(d: Uint8Array, p: number): number {
  return ((d[p] as number) << 8) | (d[p + 1] as number);
}

function u32(d: Uint8Array, p: number): number {
  return u16(d, p) * 0x10000 + u16(d, p + 2);
}

function u64(d: Uint8Array, p: number): bigint {
  return (BigInt(u32(d, p)) << 32n) | BigInt(u32(d, p + 4));
}

export function encodeGeneral(g: OnvifGeneral): Uint8Array {
  if (g.gopHash.length !== g.linkedHash.length) throw new MediaError('general TLV: GOP hash and linked hash differ in size');
  if (!Number.isInteger(g.counter) || g.counter < 0 || g.counter > 0xffffffff) throw new MediaError(`general TLV: counter ${g.counter} is not a u32`);
  if (!Number.isInteger(g.nalCount) || g.nalCount < 0 || g.nalCount > 0xffff) throw new MediaError(`general TLV: ${g.nalCount} NAL units do not fit a u16`);
  if (g.start < 0n || g.end < 0n || g.start >= 1n << 63n || g.end >= 1n << 63n) throw new MediaError('general TLV: time out of range');
  return new Writer()
    .u8(g.version)
    .bytes(Uint8Array.from(g.codeVersion))
    .u8(g.partial ? 1 : 0)
    .u64(g.start)
    .u64(g.end)
    .u32(g.counter)
    .u16(g.nalCount)
    .bytes(g.gopHash)
    .bytes(g.linkedHash)
    .done();
}

export function decodeGeneral(v: Uint8Array): OnvifGeneral {
  const version = v[0];
  if (version !== 1 && version !== 2) throw new MediaError(`general TLV version ${version ?? 'missing'}`);
  const fixed = version === 2 ? 27 : 19;
  const rest = v.length - fixed;
  if (rest <= 0 || rest % 2 !== 0 || rest / 2 > 64) throw new MediaError(`general TLV of ${v.length} bytes`);
  const h = rest / 2;
  const start = u64(v, 5);
  const end = version === 2 ? u64(v, 13) : start;
  const p = version === 2 ? 21 : 13;
  return {
    version,
    codeVersion: [v[1] as number, v[2] as number, v[3] as number],
    partial: v[4] !== 0,
    start,
    end,
    counter: u32(v, p),
    nalCount: u16(v, p + 4),
    gopHash: v.subarray(fixed, fixed + h),
    linkedHash: v.subarray(fixed + h, fixed + 2 * h),
  };
}

export function encodeCryptoInfo(c: OnvifCryptoInfo): Uint8Array {
  const hash = encodeOid(c.hashOid);
  const sig = c.signatureOid !== undefined ? encodeOid(c.signatureOid) : new Uint8Array(0);
  return new Writer().u8(1).u8(hash.length).bytes(hash).u8(sig.length).bytes(sig).u16(c.rsaSize).done();
}

export function decodeCryptoInfo(v: Uint8Array): OnvifCryptoInfo {
  if (v[0] !== 1) throw new MediaError(`crypto info TLV version ${v[0] ?? 'missing'}`);
  const hashLen = v[1] ?? 0;
  if (hashLen === 0 || 2 + hashLen + 1 > v.length) throw new MediaError('crypto info TLV: no hash algorithm');
  const hashOid = decodeOid(v.subarray(2, 2 + hashLen));
  const sigLen = v[2 + hashLen] as number;
  const p = 3 + hashLen;
  if (p + sigLen + 2 !== v.length) throw new MediaError(`crypto info TLV of ${v.length} bytes`);
  return {
    hashOid,
    ...(sigLen > 0 ? { signatureOid: decodeOid(v.subarray(p, p + sigLen)) } : {}),
    rsaSize: u16(v, p + sigLen),
  };
}

const utf8 = new TextEncoder();
const latin = new TextDecoder('utf-8', { fatal: false });

export function encodeVendorInfo(i: OnvifVendorInfo): Uint8Array {
  const w = new Writer().u8(1);
  for (const s of [i.firmwareVersion, i.serialNumber, i.manufacturer]) {
    const b = utf8.encode(s);
    if (b.length > 255) throw new MediaError('vendor info: a string longer than 255 bytes');
    w.u8(b.length).bytes(b);
  }
  return w.done();
}

export function decodeVendorInfo(v: Uint8Array): OnvifVendorInfo {
  if (v[0] !== 1) throw new MediaError(`vendor info TLV version ${v[0] ?? 'missing'}`);
  const out: string[] = [];
  let p = 1;
  for (let k = 0; k < 3; k++) {
    const n = v[p];
    if (n === undefined || p + 1 + n > v.length) throw new MediaError('vendor info TLV truncated');
    // the reference copies with strncpy: a string ends at its first zero byte
    const s = v.subarray(p + 1, p + 1 + n);
    const z = s.indexOf(0);
    out.push(latin.decode(z >= 0 ? s.subarray(0, z) : s));
    p += 1 + n;
  }
  if (p !== v.length) throw new MediaError(`vendor info TLV of ${v.length} bytes`);
  return { firmwareVersion: out[0] ?? '', serialNumber: out[1] ?? '', manufacturer: out[2] ?? '' };
}

export function encodeCertificates(c: OnvifCertificates): Uint8Array {
  return new Writer()
    .u8(1)
    .u8(c.userProvisioned ? 1 : 0)
    .bytes(utf8.encode(c.chainPem))
    .done();
}

export function decodeCertificates(v: Uint8Array): OnvifCertificates {
  if (v[0] !== 1) throw new MediaError(`certificate TLV version ${v[0] ?? 'missing'}`);
  if (v.length < 3) throw new MediaError('certificate TLV without certificates');
  return { userProvisioned: v[1] !== 0, chainPem: latin.decode(v.subarray(2)) };
}

/** The Signature TLV's value: version, the signature's size, the signature padded with 0x01 to the slot. */
export function encodeSignatureValue(signature: Uint8Array, slot: number): Uint8Array {
  if (signature.length > slot) throw new MediaError(`signature of ${signature.length} bytes exceeds its ${slot}-byte slot`);
  const out = new Uint8Array(3 + slot).fill(0x01);
  out[0] = 1;
  out[1] = signature.length >>> 8;
  out[2] = signature.length & 0xff;
  out.set(signature, 3);
  return out;
}

export function decodeSignatureValue(v: Uint8Array): { signature: Uint8Array; slot: number } {
  if (v[0] !== 1) throw new MediaError(`signature TLV version ${v[0] ?? 'missing'}`);
  if (v.length < 3) throw new MediaError('signature TLV truncated');
  const size = u16(v, 1);
  if (size > v.length - 3) throw new MediaError(`signature of ${size} bytes in a ${v.length - 3}-byte slot`);
  return { signature: v.subarray(3, 3 + size), slot: v.length - 3 };
}

/** The Hash list TLV's value: version 1, then the item hashes in decoding order. */
export function encodeHashList(items: readonly Uint8Array[]): Uint8Array {
  const size = items[0]?.length ?? 32;
  const out = new Uint8Array(1 + size * items.length);
  out[0] = 1;
  items.forEach((h, i) => {
    if (h.length !== size) throw new MediaError('hash list: hashes of different sizes');
    out.set(h, 1 + i * size);
  });
  return out;
}

/** The most item hashes (32 bytes) a Hash list TLV holds: its length field is a u16. */
export const MAX_HASH_LIST_ITEMS = Math.floor((0xffff - 1) / 32);

export function decodeHashList(v: Uint8Array, hashSize: number): Uint8Array[] {
  if (v[0] !== 1) throw new MediaError(`hash list TLV version ${v[0] ?? 'missing'}`);
  if ((v.length - 1) % hashSize !== 0) throw new MediaError('hash list TLV: not a whole number of hashes');
  const out: Uint8Array[] = [];
  for (let p = 1; p < v.length; p += hashSize) out.push(v.subarray(p, p + hashSize));
  return out;
}

export function encodeArbitraryData(data: Uint8Array): Uint8Array {
  return new Writer().u8(1).bytes(data).done();
}

// ---- building -------------------------------------------------------------------------------------------------

function ffLength(v: number): number {
  return Math.floor(v / 255) + 1;
}

/**
 * Escapes a NAL unit (header byte first) as emulation prevention wants, and returns where the escaped bytes of
 * `rbsp[0, mark)` end, not counting an emulation prevention byte inserted before `rbsp[mark]`.
 */
export function escapeWithMark(rbsp: Uint8Array, mark: number): { nal: Uint8Array; markAt: number } {
  const out = new Uint8Array(rbsp.length + Math.ceil(rbsp.length / 2));
  let o = 0;
  let zeros = 0;
  let markAt = -1;
  for (let i = 0; i < rbsp.length; i++) {
    if (i === mark) markAt = o;
    const b = rbsp[i] as number;
    if (zeros >= 2 && b <= 3) {
      out[o++] = 3;
      zeros = 0;
    }
    out[o++] = b;
    zeros = b === 0 ? zeros + 1 : 0;
  }
  if (mark >= rbsp.length) markAt = o;
  return { nal: out.slice(0, o), markAt };
}

/**
 * Builds a signed ONVIF Media Signing SEI NAL unit (H.264, escaped, no start code): the TLVs in order, then the
 * Signature TLV with a `slot`-byte signature of the document (header byte to the signature tag). With
 * `epbBeforeHashing` (reserved bit 6) the document is hashed as it is in the stream; without it (the reference's
 * default, reserved bit 6 clear) with emulation prevention removed.
 */
export async function buildOnvifSei(options: {
  readonly certificate: boolean;
  readonly tlvs: readonly { readonly tag: number; readonly value: Uint8Array }[];
  readonly sign: OnvifSigner;
  readonly slot: number;
  readonly epbBeforeHashing?: boolean;
}): Promise<Uint8Array> {
  const epb = options.epbBeforeHashing ?? false;
  const reserved = (options.certificate ? RESERVED_CERTIFICATE : 0) | (epb ? RESERVED_EPB : 0);
  let tlvBytes = 0;
  for (const t of options.tlvs) {
    if (t.value.length > 0xffff) throw new MediaError(`TLV ${t.tag}: value of ${t.value.length} bytes`);
    tlvBytes += 3 + t.value.length;
  }
  const sigTlv = 3 + 3 + options.slot;
  const payloadSize = 16 + 1 + tlvBytes + sigTlv;
  const rbsp = new Uint8Array(2 + ffLength(payloadSize) + payloadSize + 1);
  rbsp[0] = NalType.SEI;
  rbsp[1] = 5;
  let p = 2;
  let size = payloadSize;
  while (size >= 255) {
    rbsp[p++] = 0xff;
    size -= 255;
  }
  rbsp[p++] = size;
  rbsp.set(ONVIF_UUID, p);
  p += 16;
  rbsp[p++] = reserved;
  for (const t of options.tlvs) {
    rbsp[p] = t.tag;
    rbsp[p + 1] = t.value.length >>> 8;
    rbsp[p + 2] = t.value.length & 0xff;
    rbsp.set(t.value, p + 3);
    p += 3 + t.value.length;
  }
  const sigAt = p;
  const prefix = escapeWithMark(rbsp.subarray(0, sigAt), sigAt);
  const document = epb ? prefix.nal : rbsp.slice(0, sigAt);
  const signature = await options.sign(document);
  rbsp[p] = OnvifTag.SIGNATURE;
  rbsp[p + 1] = (3 + options.slot) >>> 8;
  rbsp[p + 2] = (3 + options.slot) & 0xff;
  rbsp.set(encodeSignatureValue(signature, options.slot), p + 3);
  p += sigTlv;
  rbsp[p] = 0x80;
  const { nal, markAt } = escapeWithMark(rbsp, sigAt);
  // the document is the escaped NAL unit's own first bytes (an escape before the signature tag not included)
  if (epb && !Buffer.from(nal.buffer, nal.byteOffset, markAt).equals(document)) throw new MediaError('internal: document is not a prefix of the SEI');
  return nal;
}

// ---- parsing --------------------------------------------------------------------------------------------------

export interface ParsedOnvifSei {
  readonly kind: 'onvif';
  readonly reserved: number;
  readonly certificate: boolean;
  /** What the signature covers (see the module comment); undefined for an unsigned SEI. */
  readonly document?: Uint8Array;
  readonly signature?: Uint8Array;
  readonly signatureSlot?: number;
  readonly general?: OnvifGeneral;
  /** The raw Hash list TLV value (its hash size is the session's). */
  readonly hashList?: Uint8Array;
  readonly cryptoInfo?: OnvifCryptoInfo;
  readonly vendorInfo?: OnvifVendorInfo;
  readonly certificates: readonly OnvifCertificates[];
  readonly arbitraryData?: Uint8Array;
  /** Tags in order, for reports. */
  readonly tags: readonly number[];
}

export type OnvifParse = ParsedOnvifSei | { readonly kind: 'malformed'; readonly reason: string };

/** The first SEI message of an SEI NAL unit, when it is user_data_unregistered: RBSP, payload offset and size. */
export function firstUserData(nal: Uint8Array): { rbsp: Uint8Array; epb: number[]; at: number; size: number } | undefined {
  if (nal.length < 20 || nalType(nal) !== NalType.SEI) return undefined;
  // payload type 5 is one byte; any other first message is not ours
  if (nal[1] !== 5) return undefined;
  const { rbsp, epb } = unescapeRbsp(nal);
  let p = 2;
  let size = 0;
  for (;;) {
    const b = rbsp[p++];
    if (b === undefined) return undefined;
    size += b;
    if (b !== 0xff) break;
  }
  if (size < 16 || p + size > rbsp.length) return undefined;
  return { rbsp, epb, at: p, size };
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && Buffer.from(a.buffer, a.byteOffset, a.length).equals(Buffer.from(b.buffer, b.byteOffset, b.length));
}

/** Whether an SEI NAL unit is an ONVIF Media Signing SEI (first message user_data_unregistered with the ONVIF UUID). */
export function isOnvifSei(nal: Uint8Array): boolean {
  const m = firstUserData(nal);
  return m !== undefined && sameBytes(m.rbsp.subarray(m.at, m.at + 16), ONVIF_UUID);
}

/** Number of bytes of the escaped NAL unit that hold its first `rbspBytes` RBSP bytes (an escape right at the end not counted). */
export function escapedPrefix(rbspBytes: number, epb: readonly number[]): number {
  let end = rbspBytes;
  for (const q of epb) {
    if (q < end) end++;
    else break;
  }
  return end;
}

/** Parses an ONVIF Media Signing SEI; undefined for any other NAL unit. */
export function parseOnvifSei(nal: Uint8Array): OnvifParse | undefined {
  const m = firstUserData(nal);
  if (m === undefined || !sameBytes(m.rbsp.subarray(m.at, m.at + 16), ONVIF_UUID)) return undefined;
  try {
    const { rbsp, epb, at, size } = m;
    // one message, then rbsp_trailing_bits
    const after = at + size;
    if (!(after === rbsp.length || (rbsp[after] === 0x80 && rbsp.subarray(after + 1).every((b) => b === 0)))) {
      throw new MediaError('ONVIF SEI: more than one SEI message in the NAL unit');
    }
    if (size < 17) throw new MediaError('ONVIF SEI without a reserved byte');
    const reserved = rbsp[at + 16] as number;
    if ((reserved & RESERVED_MORE) !== 0) throw new MediaError(`ONVIF SEI: reserved byte 0x${reserved.toString(16)} announces a further reserved byte`);
    const tlvStart = at + 17;
    let tlvs: Tlv[];
    try {
      tlvs = decodeTlvs(rbsp.subarray(tlvStart, after));
    } catch (e) {
      if (e instanceof MediaError) throw new MediaError(`ONVIF SEI: ${e.message}`);
      throw e;
    }
    let general: OnvifGeneral | undefined;
    let hashList: Uint8Array | undefined;
    let cryptoInfo: OnvifCryptoInfo | undefined;
    let vendorInfo: OnvifVendorInfo | undefined;
    let arbitraryData: Uint8Array | undefined;
    const certificates: OnvifCertificates[] = [];
    let signature: { signature: Uint8Array; slot: number; offset: number } | undefined;
    const seen = new Set<number>();
    for (const t of tlvs) {
      if (signature !== undefined) throw new MediaError('ONVIF SEI: a TLV after the signature');
      if (t.tag < OnvifTag.GENERAL || t.tag > OnvifTag.ARBITRARY_DATA) throw new MediaError(`ONVIF SEI: unknown TLV tag ${t.tag}`);
      if (seen.has(t.tag) && t.tag !== OnvifTag.CERTIFICATES) throw new MediaError(`ONVIF SEI: TLV ${t.tag} repeated`);
      seen.add(t.tag);
      if (t.value.length === 0) throw new MediaError(`ONVIF SEI: empty TLV ${t.tag}`);
      switch (t.tag) {
        case OnvifTag.GENERAL:
          general = decodeGeneral(t.value);
          break;
        case OnvifTag.HASH_LIST:
          if (t.value[0] !== 1) throw new MediaError(`hash list TLV version ${t.value[0] ?? 'missing'}`);
          hashList = t.value;
          break;
        case OnvifTag.SIGNATURE:
          signature = { ...decodeSignatureValue(t.value), offset: t.offset };
          break;
        case OnvifTag.CRYPTO_INFO:
          cryptoInfo = decodeCryptoInfo(t.value);
          break;
        case OnvifTag.VENDOR_INFO:
          vendorInfo = decodeVendorInfo(t.value);
          break;
        case OnvifTag.CERTIFICATES:
          if (certificates.length === 2) throw new MediaError('ONVIF SEI: more than two certificate TLVs');
          certificates.push(decodeCertificates(t.value));
          break;
        default:
          if (t.value[0] !== 1) throw new MediaError(`arbitrary data TLV version ${t.value[0] ?? 'missing'}`);
          arbitraryData = t.value.subarray(1);
      }
    }
    if (arbitraryData !== undefined && tlvs.length > 1) throw new MediaError('ONVIF SEI: the arbitrary data TLV must be alone in its SEI (specification 26.06)');
    let document: Uint8Array | undefined;
    if (signature !== undefined) {
      const docEnd = tlvStart + signature.offset;
      document = (reserved & RESERVED_EPB) !== 0 ? nal.subarray(0, escapedPrefix(docEnd, epb)) : rbsp.subarray(0, docEnd);
    }
    return {
      kind: 'onvif',
      reserved,
      certificate: (reserved & RESERVED_CERTIFICATE) !== 0,
      ...(document !== undefined && signature !== undefined ? { document, signature: signature.signature, signatureSlot: signature.slot } : {}),
      ...(general !== undefined ? { general } : {}),
      ...(hashList !== undefined ? { hashList } : {}),
      ...(cryptoInfo !== undefined ? { cryptoInfo } : {}),
      ...(vendorInfo !== undefined ? { vendorInfo } : {}),
      ...(arbitraryData !== undefined ? { arbitraryData } : {}),
      certificates,
      tags: tlvs.map((t) => t.tag),
    };
  } catch (e) {
    if (e instanceof MediaError) return { kind: 'malformed', reason: e.message };
    throw e;
  }
}
