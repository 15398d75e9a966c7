/**
 * Common Encryption boxes (ISO/IEC 23001-7) as data: the protection scheme of a track (`sinf` with `frma`,
 * `schm`, `schi/tenc`), DRM system headers (`pssh`), and the per-sample encryption information (`senc`, and
 * the generic sample auxiliary information boxes `saiz`/`saio` that point at it). Nothing here encrypts: the
 * codecs move IVs and subsample maps between bytes and structures, checking every count against the bytes
 * that must hold it before allocating anything.
 */
import { MediaError } from '../../errors.js';
import { _Reader, _Writer, _copy, _show } from './_bytes.js';
import { _child, _openBox, _openFullBox, _readBoxHeader } from './box.js';
import type { BoxHeader } from './box.js';

export type Scheme = 'cenc' | 'cbcs';

export interface TrackProtection {
  scheme: Scheme;
  /** Default key ID, 16 bytes. */
  kid: Uint8Array;
  perSampleIvSize: 0 | 8 | 16;
  /** The constant IV (8 or 16 bytes) when `perSampleIvSize` is 0. */
  constantIv?: Uint8Array;
  /** Pattern encryption (`cbcs`: 1 and 9); 0 and 0 for `cenc`. */
  cryptByteBlock: number;
  skipByteBlock: number;
  /** The sample entry type before encryption, from `frma` (`avc1`). */
  originalFormat: string;
}

export interface Subsample {
  /** BytesOfClearData, 16 bits. */
  clear: number;
  /** BytesOfProtectedData, 32 bits. */
  protected: number;
}

export interface SampleEncryption {
  /** The per-sample IV; empty when the track (or sample group) uses a constant IV. */
  iv: Uint8Array;
  /** Empty when the whole sample is protected. */
  subsamples: readonly Subsample[];
}

/** W3C "common" ClearKey system, 1077efec-c0b2-4d02-ace3-3c1e52e2fb4b. */
export const CLEARKEY_SYSTEM_ID: Uint8Array = Uint8Array.of(0x10, 0x77, 0xef, 0xec, 0xc0, 0xb2, 0x4d, 0x02, 0xac, 0xe3, 0x3c, 0x1e, 0x52, 0xe2, 0xfb, 0x4b);

const SCHEME_VERSION = 0x0001_0000;

function _checkIvSize(n: number, at?: number): 0 | 8 | 16 {
  if (n !== 0 && n !== 8 && n !== 16) throw new MediaError(`per-sample IV size ${n}: must be 0, 8 or 16`, at);
  return n;
}

// ---------------------------------------------------------------------------------------------------------------
// pssh

export interface PsshBox {
  version: number;
  systemId: Uint8Array;
  /** Key IDs (version 1 only). */
  kids: Uint8Array[];
  data: Uint8Array;
}

/** A `pssh` box: version 1 with the KID list when `kids` is non-empty, version 0 otherwise. */
export function buildPssh(systemId: Uint8Array, kids: readonly Uint8Array[], data: Uint8Array = new Uint8Array(0)): Uint8Array {
  if (systemId.length !== 16) throw new MediaError(`pssh: SystemID must be 16 bytes, got ${systemId.length}`);
  const w = new _Writer(36 + kids.length * 16 + data.length);
  w.beginFull('pssh', kids.length > 0 ? 1 : 0, 0).bytes(systemId);
  if (kids.length > 0) {
    w.u32(kids.length);
    for (const k of kids) {
      if (k.length !== 16) throw new MediaError(`pssh: KIDs are 16 bytes, got ${k.length}`);
      w.bytes(k);
    }
  }
  w.u32(data.length).bytes(data);
  w.end();
  return w.finish();
}

export function _parsePsshAt(buf: Uint8Array, h: BoxHeader, base: number): PsshBox {
  if (h.type !== 'pssh') throw new MediaError(`expected a 'pssh' box, found ${_show(h.type)}`, base + h.offset);
  const { version, reader: r } = _openFullBox(buf, h, base);
  if (version > 1) throw new MediaError(`pssh: version ${version} is not supported`, base + h.offset);
  const systemId = _copy(r.bytes(16, 'SystemID'));
  const kids: Uint8Array[] = [];
  if (version === 1) {
    const count = r.u32('KID_count');
    r.needEntries(count, 16, 'KID');
    for (let i = 0; i < count; i++) kids.push(_copy(r.bytes(16, 'KID')));
  }
  const size = r.u32('DataSize');
  const data = _copy(r.bytes(size, 'Data'));
  return { version, systemId, kids, data };
}

/** Parses a whole `pssh` box (header included), e.g. one of `TrackInfo.pssh`. */
export function parsePssh(psshBox: Uint8Array): PsshBox {
  return _parsePsshAt(psshBox, _readBoxHeader(psshBox, 0, psshBox.length, 0), 0);
}

// ---------------------------------------------------------------------------------------------------------------
// sinf: frma, schm, schi/tenc

/** The `tenc` box: version 0 for `cenc`, version 1 (with the pattern byte) for `cbcs` or any pattern. */
export function buildTenc(p: TrackProtection): Uint8Array {
  if (p.kid.length !== 16) throw new MediaError(`tenc: KID must be 16 bytes, got ${p.kid.length}`);
  _checkIvSize(p.perSampleIvSize);
  if (!(p.cryptByteBlock >= 0 && p.cryptByteBlock <= 15 && p.skipByteBlock >= 0 && p.skipByteBlock <= 15)) {
    throw new MediaError(`tenc: pattern ${p.cryptByteBlock}:${p.skipByteBlock} does not fit 4 bits each`);
  }
  const pattern = p.scheme === 'cbcs' || p.cryptByteBlock !== 0 || p.skipByteBlock !== 0;
  const w = new _Writer(64);
  w.beginFull('tenc', pattern ? 1 : 0, 0).u8(0);
  w.u8(pattern ? (p.cryptByteBlock << 4) | p.skipByteBlock : 0, 'pattern');
  w.u8(1).u8(p.perSampleIvSize).bytes(p.kid);
  if (p.perSampleIvSize === 0) {
    const iv = p.constantIv;
    if (iv === undefined || (iv.length !== 8 && iv.length !== 16)) throw new MediaError('tenc: a per-sample IV size of 0 needs a constant IV of 8 or 16 bytes');
    w.u8(iv.length).bytes(iv);
  } else if (p.constantIv !== undefined) {
    throw new MediaError('tenc: a constant IV is only carried when the per-sample IV size is 0');
  }
  w.end();
  return w.finish();
}

/** `sinf(frma, schm, schi(tenc))` for an encrypted sample entry. */
export function buildSinf(p: TrackProtection): Uint8Array {
  if (p.scheme !== 'cenc' && p.scheme !== 'cbcs') throw new MediaError(`unsupported protection scheme ${JSON.stringify(p.scheme)}`);
  const tenc = buildTenc(p);
  const w = new _Writer(64 + tenc.length);
  w.begin('sinf');
  w.begin('frma').fourcc(p.originalFormat).end();
  w.beginFull('schm', 0, 0).fourcc(p.scheme).u32(SCHEME_VERSION).end();
  w.begin('schi').bytes(tenc).end();
  w.end();
  return w.finish();
}

interface _Tenc {
  isProtected: number;
  perSampleIvSize: 0 | 8 | 16;
  kid: Uint8Array;
  constantIv?: Uint8Array;
  cryptByteBlock: number;
  skipByteBlock: number;
}

function _parseTenc(buf: Uint8Array, h: BoxHeader, base: number): _Tenc {
  const { version, reader: r } = _openFullBox(buf, h, base);
  r.skip(1);
  const pattern = r.u8('pattern');
  const isProtected = r.u8('default_isProtected');
  const perSampleIvSize = _checkIvSize(r.u8('default_Per_Sample_IV_Size'), r.at - 1);
  const kid = _copy(r.bytes(16, 'default_KID'));
  const t: _Tenc = { isProtected, perSampleIvSize, kid, cryptByteBlock: version > 0 ? pattern >> 4 : 0, skipByteBlock: version > 0 ? pattern & 15 : 0 };
  if (isProtected === 1 && perSampleIvSize === 0) {
    const n = r.u8('default_constant_IV_size');
    if (n !== 8 && n !== 16) throw new MediaError(`tenc: constant IV size ${n}, must be 8 or 16`, r.at - 1);
    t.constantIv = _copy(r.bytes(n, 'default_constant_IV'));
  }
  return t;
}

/** Reads a protection scheme from a `sinf` box. Schemes other than `cenc` and `cbcs` are a MediaError. */
export function _parseSinf(buf: Uint8Array, sinf: BoxHeader, base: number): TrackProtection {
  const frma = _child(buf, sinf, 'frma', base);
  const schm = _child(buf, sinf, 'schm', base);
  const schi = _child(buf, sinf, 'schi', base);
  if (frma === undefined || schm === undefined || schi === undefined) throw new MediaError(`sinf: missing ${frma === undefined ? 'frma' : schm === undefined ? 'schm' : 'schi'}`, base + sinf.offset);
  const originalFormat = _openBox(buf, frma, base).fourcc('data_format');
  const scheme = _openFullBox(buf, schm, base).reader.fourcc('scheme_type');
  if (scheme !== 'cenc' && scheme !== 'cbcs') throw new MediaError(`protection scheme ${_show(scheme)} is not supported (cenc, cbcs)`, base + schm.offset);
  const tencBox = _child(buf, schi, 'tenc', base);
  if (tencBox === undefined) throw new MediaError('schi: missing tenc', base + schi.offset);
  const t = _parseTenc(buf, tencBox, base);
  if (t.isProtected !== 1) throw new MediaError(`tenc: default_isProtected ${t.isProtected}: tracks clear by default are not supported`, base + tencBox.offset);
  const p: TrackProtection = { scheme, kid: t.kid, perSampleIvSize: t.perSampleIvSize, cryptByteBlock: t.cryptByteBlock, skipByteBlock: t.skipByteBlock, originalFormat };
  if (t.constantIv !== undefined) p.constantIv = t.constantIv;
  return p;
}

// ---------------------------------------------------------------------------------------------------------------
// Per-sample encryption information: the CencSampleAuxiliaryDataFormat (§7.2), in senc or pointed at by saiz/saio

/** Bytes of one sample's auxiliary information: IV, then (with subsamples) a count and 6 bytes per pair. */
export function auxInfoSize(e: SampleEncryption, withSubsamples: boolean): number {
  return e.iv.length + (withSubsamples ? 2 + 6 * e.subsamples.length : 0);
}

function _writeEntry(w: _Writer, e: SampleEncryption, withSubsamples: boolean): void {
  w.bytes(e.iv);
  if (!withSubsamples) return;
  w.u16(e.subsamples.length, 'subsample_count');
  for (const s of e.subsamples) w.u16(s.clear, 'BytesOfClearData').u32(s.protected, 'BytesOfProtectedData');
}

function _readSubsamples(r: _Reader): Subsample[] {
  const n = r.u16('subsample_count');
  r.needEntries(n, 6, 'subsample');
  const out: Subsample[] = new Array<Subsample>(n);
  for (let i = 0; i < n; i++) out[i] = { clear: r.u16('BytesOfClearData'), protected: r.u32('BytesOfProtectedData') };
  return out;
}

/**
 * Parses one sample's auxiliary information of `bytes.length` bytes (its `saiz` size): the IV, and subsamples
 * when the size says there is more than the IV (§7.2.2). The size must be exactly what the content needs.
 */
export function parseAuxInfo(bytes: Uint8Array, ivSize: 0 | 8 | 16, base = 0): SampleEncryption {
  const r = new _Reader(bytes, 0, bytes.length, 'sample auxiliary information', base);
  const iv = _copy(r.bytes(ivSize, 'InitializationVector'));
  const subsamples = r.remaining > 0 ? _readSubsamples(r) : [];
  if (r.remaining !== 0) throw new MediaError(`sample auxiliary information: ${r.remaining} bytes left over after ${subsamples.length} subsamples`, r.at);
  return { iv, subsamples };
}

/** A `senc` box; flag 0x2 (subsamples present) when any entry has subsamples. IVs are written as given. */
export function buildSenc(entries: readonly SampleEncryption[]): Uint8Array {
  const withSubsamples = entries.some((e) => e.subsamples.length > 0);
  let size = 16;
  for (const e of entries) size += auxInfoSize(e, withSubsamples);
  const w = new _Writer(size);
  w.beginFull('senc', 0, withSubsamples ? 2 : 0).u32(entries.length);
  for (const e of entries) _writeEntry(w, e, withSubsamples);
  w.end();
  return w.finish();
}

/** A cursor over the entries of a `senc` box; entries are parsed one at a time (the box may hold millions). */
export interface _SencCursor {
  readonly count: number;
  readonly withSubsamples: boolean;
  /** Absolute offset of the first entry byte in the input. */
  readonly firstEntryAt: number;
  next(ivSize: 0 | 8 | 16): SampleEncryption;
}

/**
 * Opens a `senc` box. With flag 0x1 (the PIFF form) the box names its own IV size, which then overrides
 * `ivSize` for every entry.
 */
export function _openSenc(buf: Uint8Array, h: BoxHeader, base: number): _SencCursor {
  const { flags, reader: r } = _openFullBox(buf, h, base);
  let override: 0 | 8 | 16 | undefined;
  if ((flags & 1) !== 0) {
    r.skip(3, 'AlgorithmID');
    override = _checkIvSize(r.u8('IV_size'), r.at - 1);
    r.skip(16, 'KID');
  }
  const count = r.u32('sample_count');
  const withSubsamples = (flags & 2) !== 0;
  // every entry holds at least its IV, and the subsample count when flagged; an entry may be empty otherwise
  const firstEntryAt = r.at;
  return {
    count,
    withSubsamples,
    firstEntryAt,
    next(ivSize) {
      const iv = _copy(r.bytes(override ?? ivSize, 'InitializationVector'));
      return { iv, subsamples: withSubsamples ? _readSubsamples(r) : [] };
    },
  };
}

// ---------------------------------------------------------------------------------------------------------------
// saiz / saio

export interface SaizInfo {
  /** aux_info_type when flagged (e.g. 'cenc'), else undefined: the scheme type applies. */
  auxInfoType?: string;
  defaultSize: number;
  count: number;
  /** Per-sample sizes when `defaultSize` is 0. */
  sizes?: Uint8Array;
}

export interface SaioInfo {
  auxInfoType?: string;
  offsets: number[];
}

/** A `saiz` box with one size per sample (default size 0), as CMAF writers do. */
export function buildSaiz(sizes: readonly number[]): Uint8Array {
  const w = new _Writer(17 + sizes.length);
  w.beginFull('saiz', 0, 0).u8(0).u32(sizes.length);
  for (const s of sizes) w.u8(s, 'sample_info_size');
  w.end();
  return w.finish();
}

/** A `saio` box; version 1 (64-bit offsets) only when an offset needs it. */
export function buildSaio(offsets: readonly number[]): Uint8Array {
  const v1 = offsets.some((o) => o > 0xffff_ffff);
  const w = new _Writer(16 + offsets.length * 8);
  w.beginFull('saio', v1 ? 1 : 0, 0).u32(offsets.length);
  for (const o of offsets) {
    if (v1) w.u64(o, 'saio offset');
    else w.u32(o, 'saio offset');
  }
  w.end();
  return w.finish();
}

export function _parseSaiz(buf: Uint8Array, h: BoxHeader, base: number): SaizInfo {
  const { flags, reader: r } = _openFullBox(buf, h, base);
  const info: SaizInfo = { defaultSize: 0, count: 0 };
  if ((flags & 1) !== 0) {
    info.auxInfoType = r.fourcc('aux_info_type');
    r.skip(4, 'aux_info_type_parameter');
  }
  info.defaultSize = r.u8('default_sample_info_size');
  info.count = r.u32('sample_count');
  if (info.defaultSize === 0) {
    r.needEntries(info.count, 1, 'sample_info_size');
    info.sizes = _copy(r.bytes(info.count, 'sample_info_size'));
  }
  return info;
}

export function _parseSaio(buf: Uint8Array, h: BoxHeader, base: number): SaioInfo {
  const { version, flags, reader: r } = _openFullBox(buf, h, base);
  const info: SaioInfo = { offsets: [] };
  if ((flags & 1) !== 0) {
    info.auxInfoType = r.fourcc('aux_info_type');
    r.skip(4, 'aux_info_type_parameter');
  }
  const count = r.u32('entry_count');
  const width = version === 0 ? 4 : 8;
  r.needEntries(count, width, 'offset');
  for (let i = 0; i < count; i++) info.offsets.push(version === 0 ? r.u32('offset') : r.u64('offset'));
  return info;
}

/** True when a saiz/saio pair describes Common Encryption information for `scheme` (untyped pairs do). */
export function _isCencAux(auxInfoType: string | undefined, scheme: Scheme): boolean {
  return auxInfoType === undefined || auxInfoType === scheme || auxInfoType === 'cenc' || auxInfoType === 'cbcs' || auxInfoType === 'cens' || auxInfoType === 'cbc1';
}
