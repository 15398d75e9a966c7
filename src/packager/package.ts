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
import type { Pps, Sps } from '../media/h264/index.js';
import { CLEARKEY_SYSTEM_ID, box, buildFragment, buildInitSegment, buildPssh, fullBox } from '../media/mp4/index.js';
import type { FragmentSample, TrackProtection } from '../media/mp4/index.js';
import type { InputGop, MediaInput } from './input.js';

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
  const scheme = options.scheme ?? 'cbcs';
  const trackId = options.trackId ?? TRACK_ID;
  const lengthSize = input.track.avcC.lengthSize;
  const params = new ParameterSets();
  for (const n of input.track.avcC.sps) params.add(n);
  for (const n of input.track.avcC.pps) params.add(n);

  const keyFor = options.keyFor;
  if (scheme !== 'none' && keyFor === undefined) throw new MediaError('encryption needs a key');
  let current: ContentKey | undefined = scheme === 'none' || keyFor === undefined ? undefined : keyFor(0);
  const defaultKey = current;
  const ivs = new Map<string, IvSequence | Uint8Array>();
  const ivFor = (k: ContentKey): IvSequence | Uint8Array => {
    const hex = Buffer.from(k.kid).toString('hex');
    let v = ivs.get(hex);
    if (v === undefined) {
      if (k.key.length !== 16 || k.kid.length !== 16) throw new MediaError('content keys and KIDs are 16 bytes (AES-128, CENC)');
      v = scheme === 'cenc' ? new IvSequence() : constantIv();
      ivs.set(hex, v);
      stats.kids.push(hex);
    }
    return v;
  };

  let protection: TrackProtection | undefined;
  if (current !== undefined && scheme !== 'none') {
    const iv = ivFor(current);
    protection =
      scheme === 'cenc'
        ? { scheme, kid: current.kid, perSampleIvSize: 8, cryptByteBlock: 0, skipByteBlock: 0, originalFormat: 'avc1' }
        : { scheme, kid: current.kid, perSampleIvSize: 0, constantIv: iv as Uint8Array, cryptByteBlock: 1, skipByteBlock: 9, originalFormat: 'avc1' };
  }
  let init = buildInitSegment(
    { trackId, timescale: input.track.timescale, width: input.track.width, height: input.track.height, avcC: input.track.avcC },
    protection !== undefined && current !== undefined ? { protection, pssh: [buildPssh(CLEARKEY_SYSTEM_ID, [current.kid])] } : {},
  );
  if (current !== undefined) init = appendToTopLevelBox(init, 'moov', [keyCheckBox(current)]);
  stats.outputBytes += init.length;
  yield { kind: 'init', data: init };

  const clearBytes = (sample: Uint8Array) => (span: { offset: number; length: number }, type: number): number => {
    if (scheme === 'cenc') return 1;
    if (type !== NalType.SLICE && type !== NalType.IDR) return 1;
    return parseSliceHeader(sample.subarray(span.offset, span.offset + span.length), params.sps, params.pps).headerBytes;
  };

  let index = 0;
  for await (const gop of input.gops()) {
    if (index > 0 && keyFor !== undefined && scheme !== 'none') current = keyFor(index);
    yield packageGop(gop, index, current);
    index++;
  }
  stats.fragments = index;

  function packageGop(gop: InputGop, fragmentIndex: number, key: ContentKey | undefined): PackagePart {
    const samples: FragmentSample[] = [];
    const payloads: Uint8Array[] = [];
    const iv = key !== undefined ? ivFor(key) : undefined;
    for (const s of gop.samples) {
      // in-band parameter sets update the tables used for slice headers
      for (let pos = 0; pos + lengthSize <= s.data.length; ) {
        let len = 0;
        for (let i = 0; i < lengthSize; i++) len = len * 256 + (s.data[pos + i] ?? 0);
        const nal = s.data.subarray(pos + lengthSize, pos + lengthSize + len);
        const t = (nal[0] ?? 0) & 0x1f;
        if (t === NalType.SPS || t === NalType.PPS) params.add(nal);
        pos += lengthSize + len;
      }
      stats.samples++;
      stats.sampleBytes += s.data.length;
      if (key === undefined || iv === undefined) {
        samples.push({ size: s.data.length, duration: s.duration, isSync: s.isSync, compositionOffset: s.compositionOffset });
        payloads.push(s.data);
        continue;
      }
      const subsamples: Subsample[] = subsampleMap(s.data, lengthSize, clearBytes(s.data));
      const sampleIv = iv instanceof IvSequence ? iv.next() : iv;
      payloads.push(...encryptSampleParts({ scheme: scheme as Scheme, key: key.key }, sampleIv, s.data, subsamples));
      samples.push({
        size: s.data.length,
        duration: s.duration,
        isSync: s.isSync,
        compositionOffset: s.compositionOffset,
        encryption: { iv: iv instanceof IvSequence ? sampleIv : new Uint8Array(0), subsamples },
      });
    }
    const rotated = key !== undefined && defaultKey !== undefined && !Buffer.from(key.kid).equals(Buffer.from(defaultKey.kid));
    const fragment = buildFragment({
      sequenceNumber: fragmentIndex + 1,
      trackId,
      baseMediaDecodeTime: gop.baseDecodeTime,
      samples,
      ...(key !== undefined ? { perSampleIvSize: scheme === 'cenc' ? 8 : 0 } : {}),
      ...(rotated && key !== undefined
        ? {
            pssh: [buildPssh(CLEARKEY_SYSTEM_ID, [key.kid])],
            trafExtra: [...seigBoxes(scheme as Scheme, key.kid, iv instanceof IvSequence ? undefined : iv, samples.length), keyCheckBox(key)],
          }
        : {}),
    });
    stats.outputBytes += fragment.totalSize;
    const duration = gop.samples.reduce((n, s) => n + s.duration, 0);
    return { kind: 'fragment', index: fragmentIndex, baseDecodeTime: gop.baseDecodeTime, duration, chunks: [fragment.header, ...payloads] };
  }
}

export function emptyStats(): PackageStats {
  return { fragments: 0, samples: 0, sampleBytes: 0, outputBytes: 0, kids: [] };
}
