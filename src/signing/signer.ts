/**
 * The camera-side signer (docs/signed-video.md §1): push NAL units in decoding order, get the output NAL units
 * with the Media Signing SEIs inserted. A unit is a GOP, split so that no unit holds more than `maxUnitSeconds`
 * of frames at the stream's frame rate (from the SPS; `fps` otherwise). The certificate SEI opens the session,
 * each unit's signed SEI starts the access unit after it (after any AUD), and `finish` closes the session with
 * the last unit's SEI, carrying the end marker, as an access unit of its own. Signatures come from an async
 * callback, so any KeyStore (software or PKCS#11) works. Memory: one access unit and one unit's frame hashes.
 */
import { randomBytes } from 'node:crypto';
import { MediaError } from '../errors.js';
import { AccessUnitAssembler, NalType, nalType } from '../media/h264/index.js';
import type { AccessUnit } from '../media/h264/index.js';
import { derToP1363 } from '../keystore/_ecdsa.js';
import { frameHash, ParameterSetTracker, sameParameterSets, unitHash, ZERO_HASH } from './hashing.js';
import {
  buildCertificateSei,
  buildUnitSei,
  FLAG_END_OF_SESSION,
  FLAG_PARTIAL_GOP,
  isSigningSei,
  OID_ECDSA_SHA256,
  OID_SHA256,
  type ParameterSetHash,
  type SessionManifest,
  type Signer,
} from './sei.js';

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
  readonly sign: Signer;
  /**
   * How `sign` encodes ECDSA signatures: 'der' (default; converted) or 'ieee-p1363' (raw r‖s). The SEI carries
   * them raw, 64 bytes for P-256. Ignored for RSA.
   */
  readonly signatureEncoding?: 'der' | 'ieee-p1363';
  /** Signature algorithm OID for the crypto info TLV. */
  readonly signatureOid: string;
  /** PEM: device certificate then its issuing CA(s). */
  readonly chainPem: string;
  readonly serial: string;
  /** SHA-256 of the device SPKI, hex. */
  readonly kid: string;
  /** The next value of the per-camera counter (reserved on disk before it is returned). */
  readonly reserveCounter: () => Promise<bigint>;
  /** Capture time of the first frame; default now. */
  readonly start?: Date;
  /** 16 bytes; default random. */
  readonly sessionId?: Uint8Array;
  /** Frame rate when the SPS carries none (default 25). */
  readonly fps?: number;
  /** Default 1. */
  readonly maxUnitSeconds?: number;
}

export interface SignerStats {
  units: number;
  frames: number;
  seiBytes: number;
}

interface OpenUnit {
  readonly firstFrame: number;
  readonly frameHashes: Uint8Array[];
  nalCount: number;
  readonly startsAtKeyframe: boolean;
}

export class StreamSigner {
  readonly stats: SignerStats = { units: 0, frames: 0, seiBytes: 0 };
  readonly sessionId: Uint8Array;
  private readonly assembler = new AccessUnitAssembler();
  private readonly params = new ParameterSetTracker();
  private readonly startMs: number;
  private fps: number | undefined;
  private started = false;
  private finished = false;
  private unit: OpenUnit | undefined;
  private nextCounter: bigint | undefined;
  private prevUnitHash: Uint8Array = ZERO_HASH;
  /** The parameter sets in effect for the previous unit (undefined before the first). */
  private prevParameterSets: ParameterSetHash[] | undefined;
  private frameIndex = 0;
  private readonly sign: Signer;

  constructor(private readonly options: SignerOptions) {
    const ecdsa = options.signatureOid === OID_ECDSA_SHA256;
    this.sign = !ecdsa
      ? options.sign
      : async (data) => {
          const sig = await options.sign(data);
          const raw = (options.signatureEncoding ?? 'der') === 'der' ? derToP1363(sig, 32) : sig;
          if (raw.length !== 64) throw new MediaError(`ECDSA P-256 signature of ${raw.length} bytes, expected 64 (r‖s)`);
          return raw;
        };
    this.sessionId = options.sessionId ?? randomBytes(16);
    if (this.sessionId.length !== 16) throw new MediaError('session id must be 16 bytes');
    this.startMs = (options.start ?? new Date()).getTime();
    if (!Number.isFinite(this.startMs)) throw new MediaError('invalid start time');
  }

  /** Pushes one NAL unit (escaped, no start code); returns the NAL units ready for output. */
  async push(nal: Uint8Array): Promise<Uint8Array[]> {
    if (this.finished) throw new MediaError('signer already finished');
    // Media Signing SEIs already in the input are replaced, never passed on
    if (nalType(nal) === NalType.SEI && isSigningSei(nal)) return [];
    const out: Uint8Array[] = [];
    for (const au of this.assembler.push(nal)) await this.accessUnit(au, out);
    return out;
  }

  /** Ends the session: the last unit's SEI, with the end marker, as a final access unit. */
  async finish(endReason = 0): Promise<Uint8Array[]> {
    if (this.finished) return [];
    const out: Uint8Array[] = [];
    for (const au of this.assembler.flush()) await this.accessUnit(au, out);
    this.finished = true;
    if (this.unit === undefined) throw new MediaError('no pictures to sign');
    out.push(await this.closeUnit(false, endReason));
    return out;
  }

  private frameTime(index: number): bigint {
    const fps = this.fps ?? DEFAULT_FPS;
    return toFiletime(this.startMs) + BigInt(Math.round((index * 1e7) / fps));
  }

  private async closeUnit(nextIsKeyframe: boolean, endReason?: number): Promise<Uint8Array> {
    const u = this.unit;
    if (u === undefined) throw new MediaError('no open unit');
    const counter = this.nextCounter ?? (await this.options.reserveCounter());
    this.nextCounter = undefined;
    const parameterSets = this.params.list();
    const hash = unitHash(this.prevUnitHash, this.sessionId, counter, parameterSets, u.frameHashes);
    // the parameter sets go into the SEI only when they changed (the unit hash covers them in every unit)
    const sendParameterSets = this.prevParameterSets === undefined || !sameParameterSets(parameterSets, this.prevParameterSets);
    const partial = !u.startsAtKeyframe || !(nextIsKeyframe || endReason !== undefined);
    const sei = await buildUnitSei(
      {
        general: {
          version: 1,
          flags: (partial ? FLAG_PARTIAL_GOP : 0) | (endReason !== undefined ? FLAG_END_OF_SESSION : 0),
          start: this.frameTime(u.firstFrame),
          end: this.frameTime(u.firstFrame + u.frameHashes.length),
          counter,
          nalCount: u.nalCount,
          frameCount: u.frameHashes.length,
          unitHash: hash,
          prevUnitHash: this.prevUnitHash,
        },
        hashList: u.frameHashes,
        ...(sendParameterSets ? { parameterSets } : {}),
        ...(endReason !== undefined ? { endReason } : {}),
      },
      this.sign,
    );
    this.prevUnitHash = hash;
    this.prevParameterSets = parameterSets;
    this.unit = undefined;
    this.stats.units++;
    this.stats.seiBytes += sei.length;
    return sei;
  }

  private async certificateSei(): Promise<Uint8Array> {
    const counterStart = await this.options.reserveCounter();
    if (counterStart > BigInt(Number.MAX_SAFE_INTEGER)) throw new MediaError('counter beyond 2^53 cannot go into the manifest');
    this.nextCounter = counterStart;
    const manifest: SessionManifest = {
      v: 1,
      serial: this.options.serial,
      session: Buffer.from(this.sessionId).toString('hex'),
      start: new Date(this.startMs).toISOString(),
      kid: this.options.kid,
      counterStart: Number(counterStart),
    };
    const sei = await buildCertificateSei({ hashOid: OID_SHA256, signatureOid: this.options.signatureOid, chainPem: this.options.chainPem, manifest }, this.sign);
    this.stats.seiBytes += sei.length;
    return sei;
  }

  private maxFrames(): number {
    const fps = this.fps ?? DEFAULT_FPS;
    return Math.max(1, Math.floor(fps * (this.options.maxUnitSeconds ?? 1) + 1e-9));
  }

  private async accessUnit(au: AccessUnit, out: Uint8Array[]): Promise<void> {
    if (this.fps === undefined) {
      for (const sps of this.assembler.sps.values()) if (sps.frameRate !== undefined && sps.frameRate > 0 && sps.frameRate <= 1000) this.fps = sps.frameRate;
    }
    const fh = frameHash(au.nals);
    const inserted: Uint8Array[] = [];
    if (!this.started) {
      this.started = true;
      inserted.push(await this.certificateSei());
    }
    if (fh !== undefined) {
      const boundary = this.unit !== undefined && (au.isKeyframe || this.unit.frameHashes.length >= this.maxFrames());
      // the parameter sets of this access unit belong to the next unit: close the previous one first
      if (boundary) inserted.push(await this.closeUnit(au.isKeyframe));
      this.unit ??= { firstFrame: this.frameIndex, frameHashes: [], nalCount: 0, startsAtKeyframe: au.isKeyframe };
      this.unit.frameHashes.push(fh.hash);
      this.unit.nalCount += fh.nalCount;
      this.frameIndex++;
      this.stats.frames++;
    }
    for (const nal of au.nals) this.params.push(nal);
    let i = 0;
    while (i < au.nals.length && nalType(au.nals[i] as Uint8Array) === NalType.AUD) out.push(au.nals[i++] as Uint8Array);
    out.push(...inserted);
    for (; i < au.nals.length; i++) out.push(au.nals[i] as Uint8Array);
  }
}
