/**
 * The Media Signing SEI (docs/signed-video.md §1): user_data_unregistered with the ONVIF Media Signing UUID, a
 * reserved byte, then TLVs. Two kinds: the certificate SEI that opens a session (crypto info, certificate chain,
 * session manifest, signature) and the signed SEI of each unit (general, hash list, parameter sets, optional end
 * marker, signature). The signature TLV is last and covers the payload from the UUID up to its own tag.
 */
import { MediaError } from '../errors.js';
import { buildSeiNal, NalType, nalType, parseSei, parseUserDataUnregistered, SeiPayloadType, userDataUnregistered, uuidBytes } from '../media/h264/index.js';
import { decodeTlvs, encodeTlvs, readU64 } from './tlv.js';

export const MEDIA_SIGNING_UUID = uuidBytes('005bc93f-2d71-5e95-ada4-796f90877a6f');

export const Tag = {
  GENERAL: 1,
  HASH_LIST: 2,
  SIGNATURE: 3,
  CRYPTO_INFO: 4,
  CERTIFICATE_CHAIN: 6,
  SESSION_MANIFEST: 0x80,
  PARAMETER_SETS: 0x81,
  END_MARKER: 0x82,
} as const;

/** reserved byte: bit 7 certificate SEI, bit 6 hashes over the escaped NAL unit. */
export const RESERVED_CERTIFICATE = 0x80;
export const RESERVED_ESCAPED_HASHES = 0x40;

export const FLAG_PARTIAL_GOP = 0x01;
export const FLAG_END_OF_SESSION = 0x02;

export const OID_SHA256 = '2.16.840.1.101.3.4.2.1';
export const OID_ECDSA_SHA256 = '1.2.840.10045.4.3.2';
export const OID_RSA_SHA256 = '1.2.840.113549.1.1.11';

/** Bytes of a truncated per-frame hash in the hash list. */
export const FRAME_HASH_BYTES = 8;
/** version, flags, start, counter, duration, NAL count, frame count, unit hash, previous unit hash. */
const GENERAL_BYTES = 1 + 1 + 8 + 8 + 4 + 2 + 2 + 32 + 32;
/** The largest unit duration the General TLV holds: u32 in 100 ns ticks (about 429 s). */
export const MAX_UNIT_TICKS = 0xffffffffn;

export interface GeneralInfo {
  readonly version: number;
  readonly flags: number;
  /** 100 ns units since 1601-01-01 (FILETIME). */
  readonly start: bigint;
  /** FILETIME; on the wire as the duration end − start, u32 (at most MAX_UNIT_TICKS after start). */
  readonly end: bigint;
  readonly counter: bigint;
  readonly nalCount: number;
  readonly frameCount: number;
  readonly unitHash: Uint8Array;
  readonly prevUnitHash: Uint8Array;
}

export interface ParameterSetHash {
  /** NAL unit type: 7 (SPS) or 8 (PPS). */
  readonly type: number;
  readonly id: number;
  readonly sha256: Uint8Array;
}

export interface SessionManifest {
  readonly v: 1;
  readonly serial: string;
  readonly session: string;
  readonly start: string;
  readonly kid: string;
  readonly counterStart: number;
}

export interface UnitSeiContent {
  readonly general: GeneralInfo;
  readonly hashList: readonly Uint8Array[];
  /**
   * The parameter sets in effect, sent when they differ from the previous unit's (and in a session's first unit).
   * Absent: the same as the previous unit of the session. The unit hash covers them either way.
   */
  readonly parameterSets?: readonly ParameterSetHash[];
  /** Present on the last unit of a session. */
  readonly endReason?: number;
}

export interface CertificateSeiContent {
  readonly hashOid: string;
  readonly signatureOid: string;
  readonly chainPem: string;
  readonly manifest: SessionManifest;
}

export type Signer = (data: Uint8Array) => Promise<Uint8Array>;

export type ParsedSigningSei =
  | ({ readonly kind: 'unit'; readonly reserved: number; readonly signedData: Uint8Array; readonly signature: Uint8Array } & UnitSeiContent)
  | ({ readonly kind: 'certificate'; readonly reserved: number; readonly signedData: Uint8Array; readonly signature: Uint8Array; readonly manifestJson: string } & CertificateSeiContent)
  | { readonly kind: 'malformed'; readonly reason: string };

// ---- small codecs -------------------------------------------------------------------------------------------

/** Canonical JSON of a flat object: keys sorted, no white space. */
export function canonicalJson(obj: Readonly<Record<string, string | number>>): string {
  const keys = Object.keys(obj).sort();
  return `{${keys.map((k) => `${JSON.stringify(k)}:${JSON.stringify(obj[k])}`).join(',')}}`;
}

/** DER encoding of an OBJECT IDENTIFIER (tag 06). */
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

/** Decodes consecutive DER OIDs. */
export function decodeOids(data: Uint8Array): string[] {
  const out: string[] = [];
  let p = 0;
  while (p < data.length) {
    if (data[p] !== 0x06 || p + 2 > data.length) throw new MediaError('crypto info: not a DER OID', p);
    const len = data[p + 1] as number;
    if (len >= 0x80 || p + 2 + len > data.length || len === 0) throw new MediaError('crypto info: bad OID length', p);
    const arcs: number[] = [];
    let v = 0;
    for (let i = p + 2; i < p + 2 + len; i++) {
      const byte = data[i] as number;
      v = v * 128 + (byte & 0x7f);
      if ((byte & 0x80) === 0) {
        arcs.push(v);
        v = 0;
      }
    }
    const first = arcs.shift() ?? 0;
    const a = Math.min(2, Math.floor(first / 40));
    out.push([a, first - 40 * a, ...arcs].join('.'));
    p += 2 + len;
  }
  return out;
}

function encodeGeneral(g: GeneralInfo): Uint8Array {
  if (g.unitHash.length !== 32 || g.prevUnitHash.length !== 32) throw new MediaError('unit hashes must be 32 bytes');
  const duration = g.end - g.start;
  if (duration < 0n || duration > MAX_UNIT_TICKS) throw new MediaError(`unit duration of ${duration} × 100 ns does not fit the general TLV`);
  const out = new Uint8Array(GENERAL_BYTES);
  const dv = new DataView(out.buffer);
  out[0] = g.version;
  out[1] = g.flags;
  dv.setBigUint64(2, g.start, true);
  // the counter's leading zero bytes meet the start's non-zero top byte, not the duration's zero top byte: one
  // emulation prevention byte fewer
  dv.setBigUint64(10, g.counter, false);
  dv.setUint32(18, Number(duration), true);
  dv.setUint16(22, g.nalCount, false);
  dv.setUint16(24, g.frameCount, false);
  out.set(g.unitHash, 26);
  out.set(g.prevUnitHash, 58);
  return out;
}

function decodeGeneral(v: Uint8Array): GeneralInfo {
  if (v.length !== GENERAL_BYTES) throw new MediaError(`general TLV of ${v.length} bytes, expected ${GENERAL_BYTES}`);
  const dv = new DataView(v.buffer, v.byteOffset, v.byteLength);
  const start = readU64(v, 2, true);
  return {
    version: v[0] as number,
    flags: v[1] as number,
    start,
    end: start + BigInt(dv.getUint32(18, true)),
    counter: readU64(v, 10, false),
    nalCount: dv.getUint16(22, false),
    frameCount: dv.getUint16(24, false),
    unitHash: v.subarray(26, 58),
    prevUnitHash: v.subarray(58, 90),
  };
}

function encodeParameterSets(list: readonly ParameterSetHash[]): Uint8Array {
  const out = new Uint8Array(list.length * 34);
  list.forEach((ps, i) => {
    if (ps.sha256.length !== 32) throw new MediaError('parameter set hash must be 32 bytes');
    out[i * 34] = ps.type;
    out[i * 34 + 1] = ps.id;
    out.set(ps.sha256, i * 34 + 2);
  });
  return out;
}

function decodeParameterSets(v: Uint8Array): ParameterSetHash[] {
  if (v.length % 34 !== 0) throw new MediaError('parameter sets TLV: length not a multiple of 34');
  const out: ParameterSetHash[] = [];
  for (let p = 0; p < v.length; p += 34) out.push({ type: v[p] as number, id: v[p + 1] as number, sha256: v.subarray(p + 2, p + 34) });
  return out;
}

function encodeHashList(list: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(list.length * FRAME_HASH_BYTES);
  list.forEach((h, i) => out.set(h.subarray(0, FRAME_HASH_BYTES), i * FRAME_HASH_BYTES));
  return out;
}

function decodeHashList(v: Uint8Array): Uint8Array[] {
  if (v.length % FRAME_HASH_BYTES !== 0) throw new MediaError('hash list TLV: length not a multiple of 8');
  const out: Uint8Array[] = [];
  for (let p = 0; p < v.length; p += FRAME_HASH_BYTES) out.push(v.subarray(p, p + FRAME_HASH_BYTES));
  return out;
}

// ---- build ----------------------------------------------------------------------------------------------------

async function buildSigned(reserved: number, tlvs: { tag: number; value: Uint8Array }[], sign: Signer): Promise<Uint8Array> {
  const body = encodeTlvs(tlvs);
  const signed = new Uint8Array(17 + body.length);
  signed.set(MEDIA_SIGNING_UUID, 0);
  signed[16] = reserved;
  signed.set(body, 17);
  const signature = await sign(signed);
  const sigTlv = encodeTlvs([{ tag: Tag.SIGNATURE, value: signature }]);
  const data = new Uint8Array(1 + body.length + sigTlv.length);
  data[0] = reserved;
  data.set(body, 1);
  data.set(sigTlv, 1 + body.length);
  return buildSeiNal([userDataUnregistered(MEDIA_SIGNING_UUID, data)]);
}

/** The signed SEI NAL unit of one unit. */
export function buildUnitSei(content: UnitSeiContent, sign: Signer): Promise<Uint8Array> {
  const tlvs: { tag: number; value: Uint8Array }[] = [
    { tag: Tag.GENERAL, value: encodeGeneral(content.general) },
    { tag: Tag.HASH_LIST, value: encodeHashList(content.hashList) },
  ];
  if (content.parameterSets !== undefined) tlvs.push({ tag: Tag.PARAMETER_SETS, value: encodeParameterSets(content.parameterSets) });
  if (content.endReason !== undefined) tlvs.push({ tag: Tag.END_MARKER, value: Uint8Array.of(content.endReason) });
  return buildSigned(RESERVED_ESCAPED_HASHES, tlvs, sign);
}

export function manifestJson(m: SessionManifest): string {
  return canonicalJson({ v: m.v, serial: m.serial, session: m.session, start: m.start, kid: m.kid, counterStart: m.counterStart });
}

/** The certificate SEI NAL unit that opens a session. */
export function buildCertificateSei(content: CertificateSeiContent, sign: Signer): Promise<Uint8Array> {
  const enc = new TextEncoder();
  const crypto = new Uint8Array([...encodeOid(content.hashOid), ...encodeOid(content.signatureOid)]);
  return buildSigned(
    RESERVED_CERTIFICATE | RESERVED_ESCAPED_HASHES,
    [
      { tag: Tag.CRYPTO_INFO, value: crypto },
      { tag: Tag.CERTIFICATE_CHAIN, value: enc.encode(content.chainPem) },
      { tag: Tag.SESSION_MANIFEST, value: enc.encode(manifestJson(content.manifest)) },
    ],
    sign,
  );
}

// ---- parse ----------------------------------------------------------------------------------------------------

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

/** The Media Signing message of an SEI NAL unit: exactly one message, user_data_unregistered with our UUID. */
function signingPayload(nal: Uint8Array): Uint8Array | undefined {
  if (nal.length < 2 || nalType(nal) !== NalType.SEI) return undefined;
  let messages;
  try {
    messages = parseSei(nal);
  } catch (e) {
    if (e instanceof MediaError) return undefined;
    throw e;
  }
  if (messages.length !== 1) return undefined;
  const [m] = messages;
  if (m === undefined || m.payloadType !== SeiPayloadType.USER_DATA_UNREGISTERED || m.payload.length < 16) return undefined;
  const { uuid } = parseUserDataUnregistered(m);
  return sameBytes(uuid, MEDIA_SIGNING_UUID) ? m.payload : undefined;
}

/** True for a Media Signing SEI NAL unit (not hashed: it is covered by the signature chain). */
export function isSigningSei(nal: Uint8Array): boolean {
  return signingPayload(nal) !== undefined;
}

function validManifest(x: unknown): x is SessionManifest {
  if (typeof x !== 'object' || x === null) return false;
  const m = x as Record<string, unknown>;
  return (
    m['v'] === 1 &&
    typeof m['serial'] === 'string' &&
    typeof m['session'] === 'string' &&
    /^[0-9a-f]{32}$/.test(m['session']) &&
    typeof m['start'] === 'string' &&
    typeof m['kid'] === 'string' &&
    typeof m['counterStart'] === 'number' &&
    Number.isSafeInteger(m['counterStart']) &&
    Object.keys(m).length === 6
  );
}

/** Parses a NAL unit: undefined when it is not a Media Signing SEI, `malformed` when it is one but broken. */
export function parseSigningSei(nal: Uint8Array): ParsedSigningSei | undefined {
  const payload = signingPayload(nal);
  if (payload === undefined) return undefined;
  try {
    if (payload.length < 17) throw new MediaError('Media Signing SEI without a reserved byte');
    const reserved = payload[16] as number;
    const tlvs = decodeTlvs(payload.subarray(17));
    const sigIndex = tlvs.findIndex((t) => t.tag === Tag.SIGNATURE);
    const sig = tlvs[sigIndex];
    if (sig === undefined || sigIndex !== tlvs.length - 1) throw new MediaError('Media Signing SEI: the signature TLV is missing or not last');
    const signedData = payload.subarray(0, 17 + sig.offset);
    const byTag = new Map<number, Uint8Array>();
    for (const t of tlvs.slice(0, -1)) {
      if (byTag.has(t.tag)) throw new MediaError(`Media Signing SEI: TLV ${t.tag} repeated`);
      byTag.set(t.tag, t.value);
    }
    if ((reserved & RESERVED_ESCAPED_HASHES) === 0 || (reserved & 0x3f) !== 0) throw new MediaError(`Media Signing SEI: unsupported reserved byte 0x${reserved.toString(16)}`);
    if ((reserved & RESERVED_CERTIFICATE) !== 0) {
      const crypto = byTag.get(Tag.CRYPTO_INFO);
      const chain = byTag.get(Tag.CERTIFICATE_CHAIN);
      const manifest = byTag.get(Tag.SESSION_MANIFEST);
      if (crypto === undefined || chain === undefined || manifest === undefined) throw new MediaError('certificate SEI lacks crypto info, chain or manifest');
      const [hashOid, signatureOid, ...extra] = decodeOids(crypto);
      if (hashOid === undefined || signatureOid === undefined || extra.length > 0) throw new MediaError('crypto info: expected two OIDs');
      const dec = new TextDecoder('utf-8', { fatal: true });
      const json = dec.decode(manifest);
      let parsed: unknown;
      try {
        parsed = JSON.parse(json);
      } catch {
        throw new MediaError('session manifest is not JSON');
      }
      if (!validManifest(parsed)) throw new MediaError('session manifest is not a keyframe v1 manifest');
      if (manifestJson(parsed) !== json) throw new MediaError('session manifest is not canonical JSON');
      return { kind: 'certificate', reserved, signedData, signature: sig.value, hashOid, signatureOid, chainPem: dec.decode(chain), manifest: parsed, manifestJson: json };
    }
    const general = byTag.get(Tag.GENERAL);
    const hashList = byTag.get(Tag.HASH_LIST);
    const ps = byTag.get(Tag.PARAMETER_SETS);
    const end = byTag.get(Tag.END_MARKER);
    if (general === undefined || hashList === undefined) throw new MediaError('unit SEI lacks the general TLV or the hash list');
    if (end !== undefined && end.length !== 1) throw new MediaError('end marker: expected one byte');
    const g = decodeGeneral(general);
    if (g.version !== 1) throw new MediaError(`unit SEI version ${g.version}`);
    const list = decodeHashList(hashList);
    if (list.length !== g.frameCount) throw new MediaError('hash list does not match the frame count');
    return {
      kind: 'unit',
      reserved,
      signedData,
      signature: sig.value,
      general: g,
      hashList: list,
      ...(ps !== undefined ? { parameterSets: decodeParameterSets(ps) } : {}),
      ...(end !== undefined ? { endReason: end[0] as number } : {}),
    };
  } catch (e) {
    if (e instanceof MediaError) return { kind: 'malformed', reason: e.message };
    throw e;
  }
}
