/**
 * The camera-side signer (docs/signed-video.md §1): push NAL units in decoding order, get the output NAL units with
 * the signing SEIs inserted. Two layers, each signed with the device key:
 *
 * - ONVIF Media Signing: the certificate SEI (crypto info, vendor info, certificate chain) opens the session; each
 *   (partial) GOP gets an ONVIF SEI (General TLV, low-bitrate mode, signature). An ONVIF unit is a GOP, split at a
 *   keyframe-unit boundary once it holds `maxOnvifUnitSeconds` of frames.
 * - keyframe: the session SEI (manifest) after the certificate SEI; each keyframe unit — a GOP, or a partial GOP so
 *   that no unit holds more than `maxUnitSeconds` of frames — gets keyframe's unit SEI (counter, session tag, times,
 *   frame index, parameter-set digest, 8-byte frame hashes, end marker on the last).
 *
 * SEIs go right before the primary slice of the access unit after the unit they sign (ONVIF's recommended place);
 * `finish` closes the session with the last SEIs, the keyframe one carrying the end marker, as an access unit of
 * their own. Signatures come from an async callback, so any KeyStore (software or PKCS#11) works. Memory: one
 * access unit and the hashes of the open units.
 */
import { randomBytes } from 'node:crypto';
import { MediaError } from '../errors.js';
import { derToP1363, p1363ToDer } from '../keystore/_ecdsa.js';
import { AccessUnitAssembler, isVcl, NalType } from '../media/h264/index.js';
import type { AccessUnit } from '../media/h264/index.js';
import { frameHashOf, gopHash, keyframeHashedType, nalDigest, OnvifLinker, onvifSliceKind, ParameterSetTracker, PS_DIGEST_BYTES, unitDigest, ZERO_HASH, type OnvifItemKind } from './hashing.js';
import { buildKeyframeSessionSei, buildKeyframeUnitSei, UNIT_AT_KEYFRAME, type SessionManifest } from './keyframe-sei.js';
import {
  buildOnvifSei,
  ECDSA_P256_SIGNATURE_SLOT,
  encodeCertificates,
  encodeCryptoInfo,
  encodeGeneral,
  encodeHashList,
  encodeVendorInfo,
  MAX_HASH_LIST_ITEMS,
  OID_ECDSA_SHA256,
  OID_RSA_SHA256,
  OID_SHA256,
  OnvifTag,
  SPEC_VERSION,
} from './onvif.js';
import { isSigningSei } from './sei.js';

export const DEFAULT_FPS = 25;
/** 100 ns ticks between 1601-01-01 and 1970-01-01. */
const FILETIME_UNIX_EPOCH = 116444736000000000n;

export function toFiletime(ms: number): bigint {
  return BigInt(Math.round(ms)) * 10000n + FILETIME_UNIX_EPOCH;
}

export function fromFiletime(ft: bigint): number {
  return Number(ft - FILETIME_UNIX_EPOCH) / 10000;
}

export interface SignerOptions {
  /** Signs data (the key store hashes it with SHA-256): ECDSA P-256 (see `signatureEncoding`) or RSA PKCS#1 v1.5. */
  readonly sign: (data: Uint8Array) => Promise<Uint8Array>;
  /** How `sign` encodes ECDSA signatures: 'der' (default) or 'ieee-p1363' (raw r‖s). Converted as each layer wants. */
  readonly signatureEncoding?: 'der' | 'ieee-p1363';
  /** Signature algorithm OID: ecdsa-with-SHA256 or sha256WithRSAEncryption (RSA-2048). */
  readonly signatureOid: string;
  /** PEM: device certificate then its issuing CA(s), not the root. */
  readonly chainPem: string;
  readonly serial: string;
  /** SHA-256 of the device SPKI, hex. */
  readonly kid: string;
  /** The next value of the per-camera counter (reserved on disk before it is returned). */
  readonly reserveCounter: () => Promise<bigint>;
  /** ONVIF vendor info: firmware version and manufacturer (the serial is `serial`). */
  readonly firmwareVersion?: string;
  readonly manufacturer?: string;
  /** Capture time of the first frame; default now. */
  readonly start?: Date;
  /** 16 bytes; default random. */
  readonly sessionId?: Uint8Array;
  /** Frame rate when the SPS carries none (default 25). */
  readonly fps?: number;
  /** Longest keyframe unit (default 1 s). */
  readonly maxUnitSeconds?: number;
  /** Longest ONVIF (partial) GOP before it is split at a keyframe-unit boundary (default 2 s). */
  readonly maxOnvifUnitSeconds?: number;
  /**
   * ONVIF mode: 'hash-list' (default) puts the 32-byte hash of every slice into each ONVIF SEI, so that ONVIF
   * validators localise a dropped or changed slice; 'low-bitrate' sends the GOP hash alone (ONVIF validators then
   * call any change to a GOP invalid; keyframe's own SEI still localises to the frame).
   */
  readonly onvifMode?: 'hash-list' | 'low-bitrate';
}

export interface SignerStats {
  /** keyframe units and ONVIF (partial) GOPs signed, frames covered. */
  units: number;
  onvifUnits: number;
  frames: number;
  /** NAL unit bytes of every signing SEI, and by kind. */
  seiBytes: number;
  bytes: { certificate: number; session: number; onvifUnits: number; keyframeUnits: number };
}

interface KeyframeOpen {
  readonly firstFrame: number;
  readonly frameHashes: Uint8Array[];
  readonly atKeyframe: boolean;
}

interface OnvifOpen {
  readonly firstFrame: number;
  frames: number;
  readonly items: string[];
}

const VERSION = '0.1.0';

export class StreamSigner {
  readonly stats: SignerStats = { units: 0, onvifUnits: 0, frames: 0, seiBytes: 0, bytes: { certificate: 0, session: 0, onvifUnits: 0, keyframeUnits: 0 } };
  readonly sessionId: Uint8Array;
  private readonly assembler = new AccessUnitAssembler();
  private readonly params = new ParameterSetTracker();
  private readonly linker = new OnvifLinker();
  private readonly startMs: number;
  private fps: number | undefined;
  private started = false;
  private finished = false;
  private kUnit: KeyframeOpen | undefined;
  private oUnit: OnvifOpen | undefined;
  private counterStart = 0n;
  private nextCounter: bigint | undefined;
  private onvifIndex = 0;
  /** The first item of the previous ONVIF unit (the General TLV's linked hash). */
  private prevFirstItem = String.fromCharCode(...ZERO_HASH);
  private frameIndex = 0;
  private spsSeen = false;
  private readonly ecdsa: boolean;

  constructor(private readonly options: SignerOptions) {
    if (options.signatureOid !== OID_ECDSA_SHA256 && options.signatureOid !== OID_RSA_SHA256) throw new MediaError(`unsupported signature algorithm ${options.signatureOid}`);
    this.ecdsa = options.signatureOid === OID_ECDSA_SHA256;
    this.sessionId = options.sessionId ?? randomBytes(16);
    if (this.sessionId.length !== 16) throw new MediaError('session id must be 16 bytes');
    this.startMs = (options.start ?? new Date()).getTime();
    if (!Number.isFinite(this.startMs)) throw new MediaError('invalid start time');
  }

  /** ONVIF's signature: DER for ECDSA (what OpenSSL verifies), PKCS#1 v1.5 for RSA. */
  private async signOnvif(document: Uint8Array): Promise<Uint8Array> {
    const sig = await this.options.sign(document);
    if (!this.ecdsa) return sig;
    return (this.options.signatureEncoding ?? 'der') === 'der' ? sig : p1363ToDer(sig);
  }

  /** keyframe's signature: raw r‖s for ECDSA (64 bytes), PKCS#1 v1.5 for RSA. */
  private async signKeyframe(document: Uint8Array): Promise<Uint8Array> {
    const sig = await this.options.sign(document);
    if (!this.ecdsa) return sig;
    const raw = (this.options.signatureEncoding ?? 'der') === 'der' ? derToP1363(sig, 32) : sig;
    if (raw.length !== 64) throw new MediaError(`ECDSA P-256 signature of ${raw.length} bytes, expected 64 (r‖s)`);
    return raw;
  }

  private get signatureBytes(): number {
    return this.ecdsa ? 64 : 256;
  }

  private get signatureSlot(): number {
    return this.ecdsa ? ECDSA_P256_SIGNATURE_SLOT : 256;
  }

  /** Pushes one NAL unit (escaped, no start code); returns the NAL units ready for output. */
  async push(nal: Uint8Array): Promise<Uint8Array[]> {
    if (this.finished) throw new MediaError('signer already finished');
    // signing SEIs already in the input are replaced, never passed on
    if (((nal[0] ?? 0) & 0x1f) === NalType.SEI && isSigningSei(nal)) return [];
    const out: Uint8Array[] = [];
    for (const au of this.assembler.push(nal)) await this.accessUnit(au, out);
    return out;
  }

  /** Ends the session: the last units' SEIs, keyframe's with the end marker, as a final access unit. */
  async finish(endReason = 0): Promise<Uint8Array[]> {
    if (this.finished) return [];
    const out: Uint8Array[] = [];
    for (const au of this.assembler.flush()) await this.accessUnit(au, out);
    this.finished = true;
    if (this.kUnit === undefined) throw new MediaError('no pictures to sign');
    out.push(await this.closeKeyframeUnit(endReason));
    if (this.oUnit !== undefined) out.push(await this.closeOnvifUnit(false));
    return out;
  }

  private frameTime(index: number): bigint {
    const fps = this.fps ?? DEFAULT_FPS;
    return toFiletime(this.startMs) + BigInt(Math.round((index * 1e7) / fps));
  }

  private maxFrames(seconds: number): number {
    const fps = this.fps ?? DEFAULT_FPS;
    return Math.max(1, Math.floor(fps * seconds + 1e-9));
  }

  private async closeKeyframeUnit(endReason?: number): Promise<Uint8Array> {
    const u = this.kUnit;
    if (u === undefined) throw new MediaError('no open unit');
    const counter = this.nextCounter ?? (await this.options.reserveCounter());
    this.nextCounter = undefined;
    const ps = this.params.digest();
    const sei = await buildKeyframeUnitSei(
      {
        flags: u.atKeyframe ? UNIT_AT_KEYFRAME : 0,
        counter: Number(counter & 0xffffffffn),
        sessionTag: this.sessionId.subarray(0, 8),
        start: this.frameTime(u.firstFrame),
        end: this.frameTime(u.firstFrame + u.frameHashes.length),
        firstFrame: u.firstFrame,
        psDigest: ps.subarray(0, PS_DIGEST_BYTES),
        unitDigest: unitDigest(ps, u.frameHashes),
        ...(endReason !== undefined ? { endReason } : {}),
        frameHashes: u.frameHashes,
      },
      (d) => this.signKeyframe(d),
      this.signatureBytes,
    );
    this.kUnit = undefined;
    this.stats.units++;
    this.stats.seiBytes += sei.length;
    this.stats.bytes.keyframeUnits += sei.length;
    return sei;
  }

  private async closeOnvifUnit(partial: boolean): Promise<Uint8Array> {
    const u = this.oUnit;
    if (u === undefined) throw new MediaError('no open ONVIF unit');
    const first = u.items[0] ?? this.prevFirstItem;
    const general = encodeGeneral({
      version: 2,
      codeVersion: SPEC_VERSION,
      partial,
      start: this.frameTime(u.firstFrame),
      end: this.frameTime(u.firstFrame + u.frames),
      counter: Number((this.counterStart + BigInt(this.onvifIndex)) & 0xffffffffn),
      nalCount: u.items.length,
      gopHash: u.items.length > 0 ? gopHash(u.items) : ZERO_HASH,
      linkedHash: Buffer.from(this.prevFirstItem, 'binary'),
    });
    const tlvs: { tag: number; value: Uint8Array }[] = [{ tag: OnvifTag.GENERAL, value: general }];
    // a GOP too long for the Hash list TLV goes without it (low-bitrate mode for that SEI)
    if ((this.options.onvifMode ?? 'hash-list') === 'hash-list' && u.items.length > 0 && u.items.length <= MAX_HASH_LIST_ITEMS) {
      tlvs.push({ tag: OnvifTag.HASH_LIST, value: encodeHashList(u.items.map((x) => Buffer.from(x, 'binary'))) });
    }
    const sei = await buildOnvifSei({ certificate: false, tlvs, sign: (d) => this.signOnvif(d), slot: this.signatureSlot });
    this.prevFirstItem = first;
    this.onvifIndex++;
    this.oUnit = undefined;
    this.stats.onvifUnits++;
    this.stats.seiBytes += sei.length;
    this.stats.bytes.onvifUnits += sei.length;
    return sei;
  }

  /** The ONVIF certificate SEI and keyframe's session SEI. */
  private async openingSeis(): Promise<Uint8Array[]> {
    const counterStart = await this.options.reserveCounter();
    if (counterStart > BigInt(Number.MAX_SAFE_INTEGER)) throw new MediaError('counter beyond 2^53 cannot go into the manifest');
    this.counterStart = counterStart;
    this.nextCounter = counterStart;
    const cert = await buildOnvifSei({
      certificate: true,
      tlvs: [
        { tag: OnvifTag.CRYPTO_INFO, value: encodeCryptoInfo({ hashOid: OID_SHA256, signatureOid: this.options.signatureOid, rsaSize: this.ecdsa ? 0 : 2048 }) },
        {
          tag: OnvifTag.VENDOR_INFO,
          value: encodeVendorInfo({ firmwareVersion: this.options.firmwareVersion ?? `keyframe ${VERSION}`, serialNumber: this.options.serial, manufacturer: this.options.manufacturer ?? '' }),
        },
        { tag: OnvifTag.CERTIFICATES, value: encodeCertificates({ userProvisioned: false, chainPem: this.options.chainPem }) },
      ],
      sign: (d) => this.signOnvif(d),
      slot: this.signatureSlot,
    });
    const manifest: SessionManifest = {
      v: 1,
      serial: this.options.serial,
      session: Buffer.from(this.sessionId).toString('hex'),
      start: new Date(this.startMs).toISOString(),
      kid: this.options.kid,
      counterStart: Number(counterStart),
    };
    const session = await buildKeyframeSessionSei(manifest, (d) => this.signKeyframe(d), this.signatureBytes);
    this.stats.seiBytes += cert.length + session.length;
    this.stats.bytes.certificate += cert.length;
    this.stats.bytes.session += session.length;
    return [cert, session];
  }

  private async accessUnit(au: AccessUnit, out: Uint8Array[]): Promise<void> {
    if (this.fps === undefined) {
      for (const sps of this.assembler.sps.values()) if (sps.frameRate !== undefined && sps.frameRate > 0 && sps.frameRate <= 1000) this.fps = sps.frameRate;
    }
    // one digest per NAL unit, shared by both layers
    let digests = '';
    let hashed = 0;
    const items: { kind: OnvifItemKind; digest: string }[] = [];
    for (const nal of au.nals) {
      const t = (nal[0] ?? 0) & 0x1f;
      if (t === NalType.SPS) this.spsSeen = true;
      // an SEI before the stream's first SPS is not covered: parsers cannot read it yet (GStreamer's h264parse drops it)
      if (!keyframeHashedType(t) || (t === NalType.SEI && (!this.spsSeen || isSigningSei(nal)))) continue;
      const digest = nalDigest(nal);
      digests += digest;
      hashed++;
      const kind = onvifSliceKind(nal);
      if (kind !== undefined) items.push({ kind, digest });
    }
    const inserted: Uint8Array[] = [];
    if (!this.started) {
      this.started = true;
      inserted.push(...(await this.openingSeis()));
    }
    if (hashed > 0) {
      const picture = au.sliceCount > 0;
      const kBoundary = picture && this.kUnit !== undefined && (au.isKeyframe || this.kUnit.frameHashes.length >= this.maxFrames(this.options.maxUnitSeconds ?? 1));
      const oBoundary = this.oUnit !== undefined && (au.isIdr || (kBoundary && this.oUnit.frames >= this.maxFrames(this.options.maxOnvifUnitSeconds ?? 2)));
      // the parameter sets of this access unit belong to the next unit: close the previous ones first
      if (kBoundary) inserted.push(await this.closeKeyframeUnit());
      if (oBoundary) inserted.push(await this.closeOnvifUnit(!au.isIdr));
      this.kUnit ??= { firstFrame: this.frameIndex, frameHashes: [], atKeyframe: au.isKeyframe };
      this.kUnit.frameHashes.push(frameHashOf(digests));
      if (items.length > 0) this.oUnit ??= { firstFrame: this.frameIndex, frames: 0, items: [] };
      if (this.oUnit !== undefined) {
        for (const it of items) this.oUnit.items.push(this.linker.item(it.kind, it.digest));
        this.oUnit.frames++;
      }
      this.frameIndex++;
      this.stats.frames++;
    }
    for (const nal of au.nals) this.params.push(nal);
    // the SEIs go right before the first slice of the access unit (after AUD, parameter sets and other SEIs)
    let i = 0;
    while (i < au.nals.length && !isVcl(((au.nals[i] as Uint8Array)[0] ?? 0) & 0x1f)) i++;
    for (let k = 0; k < i; k++) out.push(au.nals[k] as Uint8Array);
    out.push(...inserted);
    for (let k = i; k < au.nals.length; k++) out.push(au.nals[k] as Uint8Array);
  }
}
