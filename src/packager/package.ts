/**
 * The packager: an input (Annex-B or MP4) becomes CMAF fragmented MP4, one fragment per GOP, encrypted with
 * ISO/IEC 23001-7 `cbcs` (default) or `cenc`, or left clear. Output is produced as a stream of chunks — the init
 * segment, then per fragment its header (moof + mdat header) followed by the transformed samples — so memory stays
 * bounded by one GOP and no sample is copied into a concatenated buffer.
 *
 * Keys rotate at fragment boundaries: `keyFor(fragmentIndex)` may return a new KID for any fragment; that
 * fragment then carries the KID in a `seig` sample group (sgpd/sbgp), a ClearKey `pssh` for it, and its key check.
 */
import { MediaError } from '../errors.js';
import { constantIv, IvSequence } from '../cenc/iv.js';
import { KCV_BOX_UUID, encodeKeyChecks, keyCheckValue } from '../cenc/keycheck.js';
import { encryptSampleParts } from '../cenc/sample.js';
import type { Scheme } from '../cenc/sample.js';
import { subsampleMap } from '../cenc/subsamples.js';
import type { Subsample } from '../cenc/subsamples.js';
import { NalType, parsePps, parseSliceHeader, parseSps } from '../media/h264/index.js';
import type { NalLengthSize, Pps, Sps } from '../media/h264/index.js';
import { CLEARKEY_SYSTEM_ID, box, buildFragment, buildInitSegment, buildPssh, fullBox } from '../media/mp4/index.js';
import type { FragmentSample, TrackProtection } from '../media/mp4/index.js';
import type { InputSample, MediaInput } from './input.js';

export interface ContentKey {
  /** 16-byte key ID. */
  readonly kid: Uint8Array;
  /** 16-byte AES-128 content key. */
  readonly key: Uint8Array;
}

export interface PackageOptions {
  /** 'cbcs' (default), 'cenc', or 'none' for clear CMAF. */
  readonly scheme?: Scheme | 'none';
  /** The key for each fragment (index from 0); a new KID starts with the fragment it is returned for. */
  readonly keyFor?: (fragmentIndex: number) => ContentKey;
  readonly trackId?: number;
}

export interface PackageStats {
  fragments: number;
  samples: number;
  /** Bytes of the compressed samples (identical in clear and encrypted output). */
  sampleBytes: number;
  /** Bytes written in all. */
  outputBytes: number;
  /** Encryption metadata bytes (senc, saiz, saio, sinf, pssh, seig groups, key checks) per KID-agnostic count. */
  kids: string[];
}

const TRACK_ID = 1;

function uuidBox(userType: Uint8Array, payload: Uint8Array): Uint8Array {
  return box('uuid', userType, payload);
}

function keyCheckBox(k: ContentKey): Uint8Array {
  return uuidBox(KCV_BOX_UUID, encodeKeyChecks([{ kid: k.kid, kcv: keyCheckValue(k.key, k.kid) }]));
}

/** Appends `children` inside the top-level box `type` of a segment (fixing its size). */
export function appendToTopLevelBox(segment: Uint8Array, type: string, children: readonly Uint8Array[]): Uint8Array {
  const view = Buffer.from(segment.buffer, segment.byteOffset, segment.byteLength);
  let pos = 0;
  while (pos + 8 <= view.length) {
    const size = view.readUInt32BE(pos);
    const t = view.toString('latin1', pos + 4, pos + 8);
    if (size < 8 || pos + size > view.length) break;
    if (t === type) {
      const extra = children.reduce((n, c) => n + c.length, 0);
      const out = Buffer.alloc(view.length + extra);
      view.copy(out, 0, 0, pos + size);
      let at = pos + size;
      for (const c of children) {
        out.set(c, at);
        at += c.length;
      }
      view.copy(out, at, pos + size);
      out.writeUInt32BE(size + extra, pos);
      return out;
    }
    pos += size;
  }
  throw new MediaError(`no top-level ${type} box to extend`);
}

/** `seig` sample group description + sample-to-group for a fragment whose KID differs from the default. */
function seigBoxes(scheme: Scheme, kid: Uint8Array, iv: Uint8Array | undefined, sampleCount: number): Uint8Array[] {
  const ivSize = scheme === 'cenc' ? 8 : 0;
  const entry = Buffer.alloc(20 + (ivSize === 0 && iv !== undefined ? 1 + iv.length : 0));
  entry[0] = 0; // reserved
  entry[1] = scheme === 'cbcs' ? 0x19 : 0; // crypt_byte_block:4 skip_byte_block:4
  entry[2] = 1; // isProtected
  entry[3] = ivSize;
  entry.set(kid, 4);
  if (ivSize === 0 && iv !== undefined) {
    entry[20] = iv.length;
    entry.set(iv, 21);
  }
  const sgpdBody = Buffer.alloc(8 + 4 + 4);
  sgpdBody.write('seig', 0, 'latin1');
  sgpdBody.writeUInt32BE(entry.length, 4); // default_length (version 1)
  sgpdBody.writeUInt32BE(1, 8); // entry_count
  const sgpd = fullBox('sgpd', 1, 0, sgpdBody.subarray(0, 12), entry);
  const sbgpBody = Buffer.alloc(4 + 4 + 8);
  sbgpBody.write('seig', 0, 'latin1');
  sbgpBody.writeUInt32BE(1, 4); // entry_count
  sbgpBody.writeUInt32BE(sampleCount, 8);
  sbgpBody.writeUInt32BE(0x10001, 12); // first group description in this fragment
  const sbgp = fullBox('sbgp', 0, 0, sbgpBody);
  return [sgpd, sbgp];
}

/** Parameter sets seen so far (avcC, then in-band), for slice header lengths. */
class ParameterSets {
  readonly sps = new Map<number, Sps>();
  readonly pps = new Map<number, Pps>();

  add(nal: Uint8Array): void {
    const t = (nal[0] ?? 0) & 0x1f;
    if (t === NalType.SPS) {
      const s = parseSps(nal);
      this.sps.set(s.spsId, s);
    } else if (t === NalType.PPS) {
      const p = parsePps(nal, this.sps);
      this.pps.set(p.ppsId, p);
    }
  }
}

/** A part of the packager's output: the init segment, or one fragment (moof + mdat) as chunks to write in order. */
export type PackagePart =
  | { readonly kind: 'init'; readonly data: Uint8Array }
  | { readonly kind: 'fragment'; readonly index: number; readonly baseDecodeTime: number; readonly duration: number; readonly chunks: readonly Uint8Array[] };

/**
 * Packages `input` as CMAF chunks. The caller writes the chunks in order (a file, a socket, a pipe).
 * `stats` is filled in as chunks are produced.
 */
export async function* packageChunks(input: MediaInput, options: PackageOptions, stats: PackageStats): AsyncGenerator<Uint8Array> {
  for await (const part of packageParts(input, options, stats)) {
    if (part.kind === 'init') yield part.data;
    else yield* part.chunks;
  }
}

/** Packages `input` as CMAF parts: the init segment, then one part per fragment (a GOP), for per-fragment files and records. */
export async function* packageParts(input: MediaInput, options: PackageOptions, stats: PackageStats): AsyncGenerator<PackagePart> {
  const packager = new CmafPackager(input.track, options, stats);
  yield { kind: 'init', data: packager.init };
  let index = 0;
  for await (const gop of input.gops()) {
    packager.beginSegment(index, gop.baseDecodeTime);
    const chunks = packager.chunk(gop.samples);
    const { duration } = packager.endSegment();
    yield { kind: 'fragment', index, baseDecodeTime: gop.baseDecodeTime, duration, chunks };
    index++;
  }
}

/**
 * The packager's core, one segment at a time: a CMAF segment (one per GOP: what a record signs) is written as one
 * or more CMAF chunks (moof + mdat each), so that a live camera can send the first pictures of a GOP before the GOP
 * closes. One chunk per segment gives the bytes `packageParts` always gave. Sequence numbers (mfhd) count chunks;
 * each chunk's tfdt continues the segment's decode time. Keys are chosen per segment (`keyFor(index)`), so every
 * chunk of a segment is under the same key, and a rotated key's seig group, pssh and key check are in each chunk's
 * moof (each traf must describe its own samples).
 */
export class CmafPackager {
  /** The init segment (under the key of segment 0, when encrypted). */
  readonly init: Uint8Array;
  private readonly scheme: Scheme | 'none';
  private readonly trackId: number;
  private readonly lengthSize: NalLengthSize;
  private readonly params = new ParameterSets();
  private readonly defaultKey: ContentKey | undefined;
  private readonly ivs = new Map<string, IvSequence | Uint8Array>();
  private trackIv: Uint8Array | undefined;
  private sequence = 0;
  private open: { index: number; base: number; duration: number; key: ContentKey | undefined } | undefined;

  constructor(
    track: MediaInput['track'],
    private readonly options: PackageOptions,
    private readonly stats: PackageStats,
  ) {
    this.scheme = options.scheme ?? 'cbcs';
    this.trackId = options.trackId ?? TRACK_ID;
    this.lengthSize = track.avcC.lengthSize;
    for (const n of track.avcC.sps) this.params.add(n);
    for (const n of track.avcC.pps) this.params.add(n);
    if (this.scheme !== 'none' && options.keyFor === undefined) throw new MediaError('encryption needs a key');
    const first = this.scheme === 'none' || options.keyFor === undefined ? undefined : options.keyFor(0);
    this.defaultKey = first;
    let protection: TrackProtection | undefined;
    if (first !== undefined && this.scheme !== 'none') {
      const iv = this.ivFor(first);
      protection =
        this.scheme === 'cenc'
          ? { scheme: this.scheme, kid: first.kid, perSampleIvSize: 8, cryptByteBlock: 0, skipByteBlock: 0, originalFormat: 'avc1' }
          : { scheme: this.scheme, kid: first.kid, perSampleIvSize: 0, constantIv: iv as Uint8Array, cryptByteBlock: 1, skipByteBlock: 9, originalFormat: 'avc1' };
    }
    let init = buildInitSegment(
      { trackId: this.trackId, timescale: track.timescale, width: track.width, height: track.height, avcC: track.avcC },
      protection !== undefined && first !== undefined ? { protection, pssh: [buildPssh(CLEARKEY_SYSTEM_ID, [first.kid])] } : {},
    );
    if (first !== undefined) init = appendToTopLevelBox(init, 'moov', [keyCheckBox(first)]);
    stats.outputBytes += init.length;
    this.init = init;
  }

  /**
   * The IVs under a key: cenc, a per-sample counter per key; cbcs, one constant IV for the whole track, whatever
   * the key (a rotated key's seig entry repeats it). An IV need only be unpredictable and not repeat under one key;
   * one per track also lets a player that ignores seig's constant IV (ffmpeg 5.1) decrypt a rotated part with its key.
   */
  private ivFor(k: ContentKey): IvSequence | Uint8Array {
    const hex = Buffer.from(k.kid).toString('hex');
    let v = this.ivs.get(hex);
    if (v === undefined) {
      if (k.key.length !== 16 || k.kid.length !== 16) throw new MediaError('content keys and KIDs are 16 bytes (AES-128, CENC)');
      v = this.scheme === 'cenc' ? new IvSequence() : (this.trackIv ??= constantIv());
      this.ivs.set(hex, v);
      this.stats.kids.push(hex);
    }
    return v;
  }

  /** Opens segment `index` at `baseDecodeTime`, choosing its key; returns its KID (hex; '' when clear). */
  beginSegment(index: number, baseDecodeTime: number): string {
    if (this.open !== undefined) throw new MediaError(`segment ${this.open.index} is still open`);
    const key = index === 0 ? this.defaultKey : this.scheme !== 'none' && this.options.keyFor !== undefined ? this.options.keyFor(index) : undefined;
    this.open = { index, base: baseDecodeTime, duration: 0, key };
    return key !== undefined ? Buffer.from(key.kid).toString('hex') : '';
  }

  /** One CMAF chunk of the open segment holding `samples` (at least one): the moof + mdat header, then the payloads. */
  chunk(samples: readonly InputSample[]): Uint8Array[] {
    const seg = this.open;
    if (seg === undefined) throw new MediaError('no open segment');
    if (samples.length === 0) throw new MediaError('a chunk needs at least one sample');
    const { key } = seg;
    const scheme = this.scheme;
    const lengthSize = this.lengthSize;
    const params = this.params;
    const out: FragmentSample[] = [];
    const payloads: Uint8Array[] = [];
    const iv = key !== undefined ? this.ivFor(key) : undefined;
    const clearBytes = (sample: Uint8Array) => (span: { offset: number; length: number }, type: number): number => {
      if (scheme === 'cenc') return 1;
      if (type !== NalType.SLICE && type !== NalType.IDR) return 1;
      return parseSliceHeader(sample.subarray(span.offset, span.offset + span.length), params.sps, params.pps).headerBytes;
    };
    for (const s of samples) {
      // in-band parameter sets update the tables used for slice headers
      for (let pos = 0; pos + lengthSize <= s.data.length; ) {
        let len = 0;
        for (let i = 0; i < lengthSize; i++) len = len * 256 + (s.data[pos + i] ?? 0);
        const nal = s.data.subarray(pos + lengthSize, pos + lengthSize + len);
        const t = (nal[0] ?? 0) & 0x1f;
        if (t === NalType.SPS || t === NalType.PPS) params.add(nal);
        pos += lengthSize + len;
      }
      this.stats.samples++;
      this.stats.sampleBytes += s.data.length;
      if (key === undefined || iv === undefined) {
        out.push({ size: s.data.length, duration: s.duration, isSync: s.isSync, compositionOffset: s.compositionOffset });
        payloads.push(s.data);
        continue;
      }
      const subsamples: Subsample[] = subsampleMap(s.data, lengthSize, clearBytes(s.data));
      const sampleIv = iv instanceof IvSequence ? iv.next() : iv;
      payloads.push(...encryptSampleParts({ scheme: scheme as Scheme, key: key.key }, sampleIv, s.data, subsamples));
      out.push({
        size: s.data.length,
        duration: s.duration,
        isSync: s.isSync,
        compositionOffset: s.compositionOffset,
        encryption: { iv: iv instanceof IvSequence ? sampleIv : new Uint8Array(0), subsamples },
      });
    }
    const rotated = key !== undefined && this.defaultKey !== undefined && !Buffer.from(key.kid).equals(Buffer.from(this.defaultKey.kid));
    this.sequence++;
    const fragment = buildFragment({
      sequenceNumber: this.sequence,
      trackId: this.trackId,
      baseMediaDecodeTime: seg.base + seg.duration,
      samples: out,
      ...(key !== undefined ? { perSampleIvSize: scheme === 'cenc' ? 8 : 0 } : {}),
      ...(rotated && key !== undefined
        ? {
            pssh: [buildPssh(CLEARKEY_SYSTEM_ID, [key.kid])],
            trafExtra: [...seigBoxes(scheme as Scheme, key.kid, iv instanceof IvSequence ? undefined : iv, out.length), keyCheckBox(key)],
          }
        : {}),
    });
    this.stats.outputBytes += fragment.totalSize;
    seg.duration += samples.reduce((n, s) => n + s.duration, 0);
    return [fragment.header, ...payloads];
  }

  /** Closes the open segment; returns its index, start and duration (timescale units). */
  endSegment(): { index: number; baseDecodeTime: number; duration: number } {
    const seg = this.open;
    if (seg === undefined) throw new MediaError('no open segment');
    this.open = undefined;
    this.stats.fragments = seg.index + 1;
    return { index: seg.index, baseDecodeTime: seg.base, duration: seg.duration };
  }
}

export function emptyStats(): PackageStats {
  return { fragments: 0, samples: 0, sampleBytes: 0, outputBytes: 0, kids: [] };
}
