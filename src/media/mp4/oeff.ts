/**
 * The boxes of the ONVIF Export File Format (ONVIF ExportFileFormat 26.06; docs/signed-video.md §4c): a file-level
 * `meta` box holding the SurveillanceExportBox (`suep`: who exported, from which sources, when) and the seal, an
 * ItemProtectionBox (`ipro`) with one ProtectionSchemeInfoBox (`sinf`) per signing instance: scheme `oeff`
 * version 1, the start time of the capture (`cstb`), and in `schi` the signature (`sibo`), the signer's certificate
 * (`cert`, DER), a signature algorithm when it is not the default (`sigC`) and user information (`auib`).
 *
 * The seal is a signature over every byte of the file up to the end of its `sinf`, with its own `sibo` payload
 * set to zeros; for an earlier instance of a repeatedly signed file, the later `sinf` boxes are left out and the
 * sizes of `ipro` and `meta` adjusted (the specification's "Repeated Signing" example). `sealInput` gives those
 * bytes of the `meta` box; the file before the `meta` box is hashed as it is.
 *
 * Pure: builders return bytes, the parser reads a `meta` box from a buffer and names what it does not understand.
 */
import { MediaError } from '../../errors.js';
import { _Reader, _Writer, _fourccAt } from './_bytes.js';
import { iterateBoxes, readBoxHeader, type BoxHeader } from './box.js';
import { box, fullBox } from './writer.js';

/** scheme_type of the ONVIF Export File Format: 0x6F656666. */
export const OEFF_SCHEME = 'oeff';
/** scheme_version 1 (0x00010000). */
export const OEFF_SCHEME_VERSION = 0x0001_0000;
/** The `meta` handler keyframe writes; the specification names none. */
export const OEFF_HANDLER = 'oeff';

/** DER AlgorithmIdentifier of ecdsa-with-SHA256 (RFC 5758), no parameters: the sigC of a P-256 exporter. */
export const ECDSA_WITH_SHA256 = Uint8Array.from(Buffer.from('300a06082a8648ce3d040302', 'hex'));
/** DER AlgorithmIdentifier of sha256WithRSAEncryption (RSASSA-PKCS1-v1_5 with SHA-256, NULL parameters). */
export const SHA256_WITH_RSA = Uint8Array.from(Buffer.from('300d06092a864886f70d01010b0500', 'hex'));

/** The default salt length of the specification's RSASSA-PSS (SHA-256, MGF1-SHA-256, trailerFieldBC). */
export const DEFAULT_PSS_SALT = 20;

/**
 * DER AlgorithmIdentifier of RSASSA-PSS (RFC 4055) with SHA-256, MGF1-SHA-256 and the given salt length — the
 * form in which a sigC names a PSS salt other than the default.
 */
export function rsassaPssSha256(saltLength: number): Uint8Array {
  if (!(Number.isInteger(saltLength) && saltLength >= 0 && saltLength < 0x80)) throw new MediaError(`RSASSA-PSS salt length ${saltLength}: keyframe writes 0..127`);
  const sha256 = '300d06096086480165030402010500';
  const hash = `a00f${sha256}`;
  const mgf1 = `a11c301a06092a864886f70d010108${sha256}`;
  // DER leaves out a field equal to its DEFAULT: saltLength DEFAULT 20, trailerField DEFAULT trailerFieldBC
  const salt = saltLength === 20 ? '' : `a2030201${saltLength.toString(16).padStart(2, '0')}`;
  const len = (hex: string): string => (hex.length / 2).toString(16).padStart(2, '0');
  const params = `${hash}${mgf1}${salt}`;
  const body = `06092a864886f70d01010a30${len(params)}${params}`;
  return Uint8Array.from(Buffer.from(`30${len(body)}${body}`, 'hex'));
}

/** What a seal's signature is, from its `sigC` (absent: the specification's default). */
export type SealAlgorithm = { readonly kind: 'rsassa-pss'; readonly saltLength: number } | { readonly kind: 'rsassa-pkcs1' } | { readonly kind: 'ecdsa' };

/** The algorithm a sigC payload names, or why it is not one keyframe checks. */
export function sealAlgorithm(sigC: Uint8Array | undefined): SealAlgorithm | { readonly unsupported: string } {
  if (sigC === undefined) return { kind: 'rsassa-pss', saltLength: DEFAULT_PSS_SALT };
  const same = (a: Uint8Array): boolean => Buffer.from(a).equals(Buffer.from(sigC));
  if (same(ECDSA_WITH_SHA256)) return { kind: 'ecdsa' };
  // the NULL parameters of PKCS#1 v1.5 are required by RFC 4055 but omitted by some encoders
  if (same(SHA256_WITH_RSA) || same(Buffer.from('300b06092a864886f70d01010b', 'hex'))) return { kind: 'rsassa-pkcs1' };
  for (let salt = 0; salt <= 64; salt++) if (same(rsassaPssSha256(salt))) return { kind: 'rsassa-pss', saltLength: salt };
  return { unsupported: `signature algorithm ${Buffer.from(sigC).toString('hex')} (sigC) is not one keyframe checks: ecdsa-with-SHA256, sha256WithRSAEncryption, or RSASSA-PSS with SHA-256 and MGF1-SHA-256` };
}

/** A sigC's algorithm in words, for reports. */
export function describeAlgorithm(a: SealAlgorithm): string {
  if (a.kind === 'ecdsa') return 'ecdsa-with-SHA256';
  if (a.kind === 'rsassa-pkcs1') return 'sha256WithRSAEncryption (RSASSA-PKCS1-v1_5)';
  return `RSASSA-PSS (SHA-256, MGF1-SHA-256, salt ${a.saltLength})${a.saltLength === DEFAULT_PSS_SALT ? ', the default' : ''}`;
}

// ---- times --------------------------------------------------------------------------------------------------------

/** 100 ns intervals from 1601-01-01 to 1970-01-01. */
const EPOCH_1601_TICKS = 116_444_736_000_000_000n;

/** A `cstb` startTime: 100 ns intervals since 1601-01-01T00:00:00Z (UTC), of a time in epoch ms. */
export function ticksFromMs(ms: number): bigint {
  if (!Number.isSafeInteger(ms)) throw new MediaError(`time ${ms} ms is not a whole number of milliseconds`);
  return BigInt(ms) * 10_000n + EPOCH_1601_TICKS;
}

/** Epoch ms of a `cstb` startTime (floor to the millisecond). */
export function msFromTicks(ticks: bigint): number {
  const d = ticks - EPOCH_1601_TICKS;
  return Number(d >= 0n ? d / 10_000n : -((-d + 9_999n) / 10_000n));
}

/** ISO 8601 of a `cstb` startTime, to the 100 ns. */
export function isoFromTicks(ticks: bigint): string {
  const ms = msFromTicks(ticks);
  const rest = Number(ticks - EPOCH_1601_TICKS - BigInt(ms) * 10_000n);
  const iso = new Date(ms).toISOString();
  return rest === 0 ? iso : `${iso.slice(0, -1)}${rest.toString().padStart(4, '0')}Z`;
}

// ---- builders -----------------------------------------------------------------------------------------------------

export interface SurveillanceSource {
  readonly trackId: number;
  readonly name: string;
  readonly url: string;
  readonly mac: string;
  readonly line: string;
}

/** The SurveillanceExportBox's fields (version 1). Strings are UTF-8; empty when not applicable. */
export interface SurveillanceExport {
  readonly unitName: string;
  readonly unitUrl: string;
  readonly unitMac: string;
  /** When the export started: seconds since 1904 (ISO/IEC 14496-12 time). */
  readonly exportTime: number;
  readonly operator: string;
  readonly sources: readonly SurveillanceSource[];
}

export interface StartTime {
  readonly trackId: number;
  /** 100 ns intervals since 1601 of the origin of the media timeline. */
  readonly startTime: bigint;
}

function cString(w: _Writer, s: string, field: string): void {
  const b = new TextEncoder().encode(s);
  if (b.includes(0)) throw new MediaError(`${field}: a NUL character cannot be stored in a null-terminated string`);
  w.bytes(b).u8(0);
}

function u64Big(w: _Writer, v: bigint, field: string): void {
  if (v < 0n || v > 0xffff_ffff_ffff_ffffn) throw new MediaError(`${field}: ${v} does not fit 64 bits`);
  w.u32(Number(v >> 32n)).u32(Number(v & 0xffff_ffffn));
}

/** `suep`, FullBox version 1. */
export function buildSuep(s: SurveillanceExport): Uint8Array {
  const w = new _Writer(256);
  w.beginFull('suep', 1, 0);
  cString(w, s.unitName, 'ExportUnitName');
  cString(w, s.unitUrl, 'ExportUnitURL');
  cString(w, s.unitMac, 'ExportUnitMAC');
  u64Big(w, BigInt(s.exportTime), 'ExportUnitTime');
  cString(w, s.operator, 'ExportOperator');
  w.u32(s.sources.length, 'entry_count');
  for (const t of s.sources) {
    w.u16(t.trackId, 'TrackID');
    cString(w, t.name, 'SourceName');
    cString(w, t.url, 'SourceURL');
    cString(w, t.mac, 'SourceMAC');
    cString(w, t.line, 'SourceLine');
  }
  w.end();
  return w.finish();
}

/** `cstb` (a plain Box). */
export function buildCstb(entries: readonly StartTime[]): Uint8Array {
  const w = new _Writer(16 + entries.length * 12);
  w.begin('cstb').u32(entries.length, 'entry_count');
  for (const e of entries) {
    w.u32(e.trackId, 'track_ID');
    u64Big(w, e.startTime, 'startTime');
  }
  w.end();
  return w.finish();
}

export interface SealSpec {
  /** The signer's certificate, DER (CertificateBox). */
  readonly certificate: Uint8Array;
  /** DER AlgorithmIdentifier for `sigC`; absent: the default RSASSA-PSS (SHA-256, MGF1-SHA-256, salt 20). */
  readonly algorithm?: Uint8Array;
  /** AdditionalUserInformationBox text. */
  readonly userInformation?: string;
  /** The start time of the capture, as a `cstb` in this signing instance's `sinf`. */
  readonly startTimes?: readonly StartTime[];
  /** Bytes the signature will take (the `sibo` payload is written as zeros). */
  readonly signatureLength: number;
}

export interface BuiltMeta {
  readonly meta: Uint8Array;
  /** Where the `sibo` payload (the signature) starts, counted from the first byte of `meta`. */
  readonly signatureOffset: number;
}

/**
 * The file-level `meta` box of an export with one signing instance:
 * `meta{ hdlr, suep, ipro{ sinf{ cstb, schm, schi{ auib, sigC, cert, sibo } } } }`, the signature zero-filled.
 */
export function buildExportMeta(exportInfo: SurveillanceExport, seal: SealSpec): BuiltMeta {
  const sinf = buildSinf(seal);
  const ipro = fullBox('ipro', 0, 0, Uint8Array.of(0, 1), sinf);
  const hdlr = new _Writer(64);
  hdlr.beginFull('hdlr', 0, 0).u32(0).fourcc(OEFF_HANDLER).zeros(12);
  cString(hdlr, 'ONVIF Export File Format', 'hdlr name');
  hdlr.end();
  const meta = fullBox('meta', 0, 0, hdlr.finish(), buildSuep(exportInfo), ipro);
  // sibo is the last box of everything above: its payload ends the meta box
  return { meta, signatureOffset: meta.length - seal.signatureLength };
}

/** One signing instance: `sinf{ cstb?, schm 'oeff' v1, schi{ auib?, sigC?, cert, sibo } }`, the signature zero. */
export function buildSinf(seal: SealSpec): Uint8Array {
  if (!(Number.isInteger(seal.signatureLength) && seal.signatureLength > 0)) throw new MediaError(`signature length ${seal.signatureLength}: must be a positive number of bytes`);
  const schiParts: Uint8Array[] = [];
  if (seal.userInformation !== undefined) {
    const w = new _Writer(64);
    w.begin('auib');
    cString(w, seal.userInformation, 'UserInformation');
    w.end();
    schiParts.push(w.finish());
  }
  if (seal.algorithm !== undefined) schiParts.push(box('sigC', seal.algorithm));
  schiParts.push(box('cert', seal.certificate));
  schiParts.push(box('sibo', new Uint8Array(seal.signatureLength)));
  const schm = new _Writer(20);
  schm.beginFull('schm', 0, 0).fourcc(OEFF_SCHEME).u32(OEFF_SCHEME_VERSION).end();
  return box('sinf', ...(seal.startTimes !== undefined ? [buildCstb(seal.startTimes)] : []), schm.finish(), box('schi', ...schiParts));
}

/**
 * Repeated signing: `meta` with one more `sinf` at the foot of `ipro` (protection_count unchanged), the sizes of
 * `ipro` and `meta` grown by it. `ipro` must end `meta` and its last `sinf` end `ipro`: otherwise boxes would sit
 * between the seals, covered by some and not others (MediaError).
 */
export function appendSealInstance(meta: Uint8Array, parsed: ExportMeta, seal: SealSpec): BuiltMeta {
  const ipro = parsed.ipro;
  const last = parsed.seals[parsed.seals.length - 1];
  if (ipro === undefined || last === undefined) throw new MediaError("the file is not sealed (no 'ipro' with a 'sinf'): there is no seal to add to");
  if (ipro.offset + ipro.size !== meta.length) throw new MediaError("boxes follow 'ipro' in 'meta': a new seal would leave them between the seals");
  if (last.sinf.offset + last.sinf.size !== ipro.offset + ipro.size) throw new MediaError("boxes follow the last 'sinf' in 'ipro': a new seal would leave them between the seals");
  const sinf = buildSinf(seal);
  const out = new Uint8Array(meta.length + sinf.length);
  out.set(meta);
  out.set(sinf, meta.length);
  patchSize(out, ipro, ipro.size + sinf.length);
  patchSize(out, readBoxHeader(meta, 0, meta.length), out.length);
  return { meta: out, signatureOffset: out.length - seal.signatureLength };
}

// ---- parser -------------------------------------------------------------------------------------------------------

/** One signing instance (`sinf`) of the ItemProtectionBox; offsets are within the `meta` buffer. */
export interface SealInstance {
  readonly sinf: BoxHeader;
  readonly schemeType?: string;
  readonly schemeVersion?: number;
  /** The `sibo` payload. */
  readonly signature?: { readonly offset: number; readonly length: number };
  readonly certificate?: Uint8Array;
  /** The `sigC` payload (a DER AlgorithmIdentifier). */
  readonly algorithm?: Uint8Array;
  readonly userInformation?: string;
  /** A `cstb` in this `sinf` (or its `schi`). */
  readonly startTimes?: readonly StartTime[];
  /** What does not follow the specification (missing or repeated boxes, another scheme). */
  readonly problems: string[];
}

export interface ExportMeta {
  readonly handler?: string;
  readonly surveillance?: SurveillanceExport;
  /** A file-level `cstb` in `meta`. */
  readonly startTimes?: readonly StartTime[];
  readonly ipro?: BoxHeader;
  readonly protectionCount?: number;
  readonly seals: SealInstance[];
  /** Bytes of `meta` after the last `sinf` (boxes after `ipro`, or inside it after the last `sinf`): no seal covers them. */
  readonly unsealed: string[];
  readonly problems: string[];
}

/** A null-terminated UTF-8 string; MediaError when no terminator is left in the box. */
function readCString(r: _Reader, field: string): string {
  const start = r.pos;
  let end = start;
  while (end < r.end && r.buf[end] !== 0) end++;
  if (end >= r.end) throw new MediaError(`${field}: no terminating NUL`, r.base + start);
  r.pos = end + 1;
  return new TextDecoder('utf-8', { fatal: false }).decode(r.buf.subarray(start, end));
}

function readU64Big(r: _Reader, field: string): bigint {
  const hi = r.u32(field);
  const lo = r.u32(field);
  return (BigInt(hi) << 32n) | BigInt(lo);
}

function payload(buf: Uint8Array, h: BoxHeader): Uint8Array {
  return buf.subarray(h.offset + h.headerSize, h.offset + h.size);
}

function readerOf(buf: Uint8Array, h: BoxHeader, skip = 0): _Reader {
  return new _Reader(buf, h.offset + h.headerSize + skip, h.offset + h.size, `box '${h.type}'`);
}

export function parseCstb(buf: Uint8Array, h: BoxHeader): StartTime[] {
  const r = readerOf(buf, h);
  const n = r.u32('entry_count');
  r.needEntries(n, 12, 'cstb');
  const out: StartTime[] = [];
  for (let i = 0; i < n; i++) out.push({ trackId: r.u32('track_ID'), startTime: readU64Big(r, 'startTime') });
  return out;
}

export function parseSuep(buf: Uint8Array, h: BoxHeader): SurveillanceExport {
  const r = readerOf(buf, h);
  const version = r.u8('version');
  r.skip(3, 'flags');
  if (version !== 1) throw new MediaError(`suep version ${version}: keyframe reads version 1 (ONVIF 18.06 and later)`, h.offset);
  const unitName = readCString(r, 'ExportUnitName');
  const unitUrl = readCString(r, 'ExportUnitURL');
  const unitMac = readCString(r, 'ExportUnitMAC');
  const time = readU64Big(r, 'ExportUnitTime');
  if (time > BigInt(Number.MAX_SAFE_INTEGER)) throw new MediaError(`ExportUnitTime ${time} is not a time`, h.offset);
  const operator = readCString(r, 'ExportOperator');
  const n = r.u32('entry_count');
  r.needEntries(n, 6, 'suep');
  const sources: SurveillanceSource[] = [];
  for (let i = 0; i < n; i++) {
    sources.push({ trackId: r.u16('TrackID'), name: readCString(r, 'SourceName'), url: readCString(r, 'SourceURL'), mac: readCString(r, 'SourceMAC'), line: readCString(r, 'SourceLine') });
  }
  return { unitName, unitUrl, unitMac, exportTime: Number(time), operator, sources };
}

function parseSinf(buf: Uint8Array, sinf: BoxHeader): SealInstance {
  const problems: string[] = [];
  const seal: { -readonly [K in keyof SealInstance]: SealInstance[K] } = { sinf, problems };
  const once = new Set<string>();
  const first = (h: BoxHeader, where: string): boolean => {
    const key = `${where}/${h.type}`;
    if (once.has(key)) {
      problems.push(`a second '${h.type}' box in '${where}'`);
      return false;
    }
    once.add(key);
    return true;
  };
  for (const h of iterateBoxes(buf, sinf.offset + sinf.headerSize, sinf.offset + sinf.size)) {
    if (!first(h, 'sinf')) continue;
    if (h.type === 'schm') {
      const r = readerOf(buf, h, 4);
      seal.schemeType = r.fourcc('scheme_type');
      seal.schemeVersion = r.u32('scheme_version');
    } else if (h.type === 'cstb') {
      seal.startTimes = parseCstb(buf, h);
    } else if (h.type === 'schi') {
      for (const c of iterateBoxes(buf, h.offset + h.headerSize, h.offset + h.size)) {
        if (!first(c, 'schi')) continue;
        if (c.type === 'sibo') seal.signature = { offset: c.offset + c.headerSize, length: c.size - c.headerSize };
        else if (c.type === 'cert') seal.certificate = Uint8Array.from(payload(buf, c));
        else if (c.type === 'sigC') seal.algorithm = Uint8Array.from(payload(buf, c));
        else if (c.type === 'auib') seal.userInformation = readCString(readerOf(buf, c), 'UserInformation');
        else if (c.type === 'cstb') {
          if (seal.startTimes !== undefined) problems.push("a 'cstb' in both 'sinf' and 'schi'");
          else seal.startTimes = parseCstb(buf, c);
        }
      }
    }
  }
  if (seal.schemeType === undefined) problems.push("no 'schm' box");
  else if (seal.schemeType !== OEFF_SCHEME || seal.schemeVersion !== OEFF_SCHEME_VERSION) problems.push(`scheme '${seal.schemeType}' version 0x${(seal.schemeVersion ?? 0).toString(16)}, not '${OEFF_SCHEME}' version 1`);
  if (seal.signature === undefined) problems.push("no signature box ('sibo')");
  if (seal.certificate === undefined) problems.push("no certificate box ('cert')");
  return seal;
}

/**
 * Reads a file-level `meta` box (the whole box, header included, in `meta`). Malformed boxes are a MediaError;
 * boxes the specification wants and that are missing or repeated are named in `problems`.
 */
export function parseExportMeta(meta: Uint8Array): ExportMeta {
  const top = readBoxHeader(meta, 0, meta.length);
  if (top.type !== 'meta' || top.size !== meta.length) throw new MediaError('not one whole meta box');
  const problems: string[] = [];
  const unsealed: string[] = [];
  const seals: SealInstance[] = [];
  const out: { -readonly [K in keyof ExportMeta]: ExportMeta[K] } = { seals, unsealed, problems };
  const children = [...iterateBoxes(meta, top.headerSize + 4, meta.length)];
  for (const h of children) {
    if (h.type === 'hdlr') out.handler = _fourccAt(meta, h.offset + h.headerSize + 8);
    else if (h.type === 'suep') {
      if (out.surveillance !== undefined) problems.push("a second 'suep' box (the specification wants exactly one)");
      else out.surveillance = parseSuep(meta, h);
    } else if (h.type === 'cstb') out.startTimes = parseCstb(meta, h);
    else if (h.type === 'ipro') {
      if (out.ipro !== undefined) {
        problems.push("a second 'ipro' box (the specification wants exactly one)");
        continue;
      }
      out.ipro = h;
      const r = readerOf(meta, h, 4);
      out.protectionCount = r.u16('protection_count');
      for (const s of iterateBoxes(meta, r.pos, h.offset + h.size)) if (s.type === 'sinf') seals.push(parseSinf(meta, s));
    }
  }
  if (out.surveillance === undefined) problems.push("no SurveillanceExportBox ('suep'): the specification requires one");
  if (out.ipro === undefined) problems.push("no ItemProtectionBox ('ipro'): the file is not sealed");
  else if (seals.length === 0) problems.push("no ProtectionSchemeInfoBox ('sinf') in 'ipro': the file is not sealed");
  else if (out.protectionCount !== 1) problems.push(`protection_count is ${out.protectionCount ?? '?'}, the specification fixes it to 1`);
  const lastSinf = seals[seals.length - 1]?.sinf;
  if (out.ipro !== undefined && lastSinf !== undefined) {
    // a seal covers the file up to the end of its sinf: whatever follows the last one is outside every seal
    const sealedTo = lastSinf.offset + lastSinf.size;
    const inIpro = [...iterateBoxes(meta, out.ipro.offset + out.ipro.headerSize + 6, out.ipro.offset + out.ipro.size)];
    for (const h of inIpro) {
      if (h.offset >= sealedTo) unsealed.push(`'${h.type}' in 'ipro' after the last 'sinf'`);
      else if (h.type !== 'sinf') problems.push(`'${h.type}' in 'ipro', where only 'sinf' boxes belong`);
    }
    for (const h of children) if (h.offset >= sealedTo) unsealed.push(`'${h.type}' in 'meta' after 'ipro'`);
  }
  return out;
}

/** Sets a box's size field in place (32-bit, or the 64-bit largesize). */
function patchSize(buf: Uint8Array, h: BoxHeader, size: number): void {
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  if (h.headerSize === 16) {
    view.setUint32(h.offset + 8, Math.floor(size / 0x1_0000_0000));
    view.setUint32(h.offset + 12, size % 0x1_0000_0000);
  } else {
    view.setUint32(h.offset, size);
  }
}

/**
 * The bytes of `meta` that seal `index` covers, as its signer hashed them: `meta` up to the end of that `sinf`,
 * later signing instances removed (the sizes of `ipro` and `meta` adjusted), its `sibo` payload zero. The file
 * before `meta` is covered as it is.
 */
export function sealInput(meta: Uint8Array, parsed: ExportMeta, index: number): Uint8Array {
  const seal = parsed.seals[index];
  const ipro = parsed.ipro;
  if (seal === undefined || ipro === undefined || seal.signature === undefined) throw new MediaError(`no signing instance ${index} with a signature`);
  const end = seal.sinf.offset + seal.sinf.size;
  const out = Uint8Array.from(meta.subarray(0, end));
  out.fill(0, seal.signature.offset, seal.signature.offset + seal.signature.length);
  patchSize(out, ipro, end - ipro.offset);
  patchSize(out, readBoxHeader(meta, 0, meta.length), end);
  return out;
}
