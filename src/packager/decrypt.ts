/**
 * Decryption of Common Encryption MP4 — ours (CMAF, `cbcs` or `cenc`, several KIDs) and other packagers' (ffmpeg's
 * non-fragmented `cenc-aes-ctr` with `senc` in `stbl` and absolute `saio` offsets) — into clear CMAF, one fragment
 * per GOP, streamed.
 *
 * Keys: a map KID → key, or one key for every KID. A missing key is an error before anything is written. Where the
 * file carries keyframe key checks, a wrong key is refused before anything is written; where it does not, the key
 * cannot be checked (CENC has no integrity) and the result says so — it never claims unchecked output is clear.
 */
import { timingSafeEqual } from 'node:crypto';
import { ErrorCodes, KeyframeError, MediaError } from '../errors.js';
import { KCV_BOX_UUID, decodeKeyChecks, keyMatches } from '../cenc/keycheck.js';
import type { KeyCheck } from '../cenc/keycheck.js';
import { decryptSample } from '../cenc/sample.js';
import type { Subsample } from '../cenc/subsamples.js';
import { buildFragment, buildInitSegment, findBoxes } from '../media/mp4/index.js';
import type { DemuxedSample, FragmentSample, Mp4Source, TrackInfo } from '../media/mp4/index.js';
import { openMp4 } from '../media/mp4/index.js';

export type KeySet = { readonly all: Uint8Array } | { readonly byKid: ReadonlyMap<string, Uint8Array> };

export interface DecryptReport {
  fragments: number;
  samples: number;
  /** KIDs met, and whether each key was checked against a key check in the file. */
  kids: { kid: string; checked: boolean }[];
}

function hex(b: Uint8Array): string {
  return Buffer.from(b).toString('hex');
}

/** Reads keyframe key checks from the `uuid` boxes of `moov` (and of every `moof/traf`) without loading the file. */
export async function readKeyChecks(source: Mp4Source): Promise<KeyCheck[]> {
  const checks: KeyCheck[] = [];
  let pos = 0;
  while (pos + 8 <= source.size) {
    const head = await source.read(pos, Math.min(16, source.size - pos));
    const view = Buffer.from(head.buffer, head.byteOffset, head.byteLength);
    let size = view.readUInt32BE(0);
    const type = view.toString('latin1', 4, 8);
    if (size === 1 && view.length >= 16) size = Number(view.readBigUInt64BE(8));
    else if (size === 0) size = source.size - pos;
    if (size < 8 || pos + size > source.size) break;
    if (type === 'moov' || type === 'moof') {
      if (size > 64 << 20) throw new MediaError(`${type} box of ${size} bytes is implausibly large`, pos);
      const buf = await source.read(pos, size);
      const paths = type === 'moov' ? [['moov', 'uuid']] : [['moof', 'traf', 'uuid']];
      for (const path of paths) {
        for (const b of findBoxes(buf, path)) {
          const payload = buf.subarray(b.offset + b.headerSize, b.offset + b.size);
          if (payload.length >= 16 && timingSafeEqual(payload.subarray(0, 16), KCV_BOX_UUID)) checks.push(...decodeKeyChecks(payload.subarray(16)));
        }
      }
    }
    pos += size;
  }
  return checks;
}

function keyFor(keys: KeySet, kid: Uint8Array): Uint8Array {
  if ('all' in keys) return keys.all;
  const k = keys.byKid.get(hex(kid));
  if (k === undefined) throw new KeyframeError(ErrorCodes.DECRYPT, `no key for KID ${hex(kid)}`);
  return k;
}

/** Checks every KID that has a key check against the supplied keys; returns which KIDs were checked. */
export function checkKeys(keys: KeySet, checks: readonly KeyCheck[]): Map<string, boolean> {
  const result = new Map<string, boolean>();
  for (const c of checks) {
    const key = keyFor(keys, c.kid);
    if (!keyMatches(key, c)) throw new KeyframeError(ErrorCodes.DECRYPT, `wrong key for KID ${hex(c.kid)}: it does not match the key check in the file`);
    result.set(hex(c.kid), true);
  }
  return result;
}

function sampleKid(track: TrackInfo, sample: DemuxedSample): Uint8Array {
  return sample.kid ?? (track.protection as NonNullable<TrackInfo['protection']>).kid;
}

/**
 * The KIDs (hex, in the order first met) whose keys decrypting `source` needs, found without decrypting anything: the
 * track's default KID, the KID a `seig` sample group gives any sample (key rotation), and the KID of every key check
 * in the file — exactly the keys `decryptChunks` asks for. Reads the whole file (sample data is read, never
 * decrypted). Empty when the track is not encrypted.
 */
export async function encryptedKids(source: Mp4Source): Promise<string[]> {
  const { track, samples } = await openMp4(source);
  if (track.protection === undefined) return [];
  const kids = new Set<string>([hex(track.protection.kid)]);
  for await (const s of samples()) kids.add(hex(sampleKid(track, s)));
  for (const c of await readKeyChecks(source)) kids.add(hex(c.kid));
  return [...kids];
}

/** A sample in the clear, with its timing. */
export interface ClearSample {
  readonly sample: FragmentSample;
  readonly data: Uint8Array;
  readonly dts: number;
}

/**
 * The samples of an MP4 in the clear: decrypted with `keys` when the track is protected (keys checked first, so
 * that a wrong key fails before the first sample), as they are otherwise.
 */
export async function openClearSamples(
  source: Mp4Source,
  keys: KeySet | undefined,
  report: DecryptReport,
  options: { requireEncrypted?: boolean } = {},
): Promise<{ track: TrackInfo; samples: () => AsyncGenerator<ClearSample> }> {
  const { track, samples } = await openMp4(source);
  const protection = track.protection;
  if (protection === undefined) {
    if (options.requireEncrypted === true) throw new MediaError('the input is not encrypted (no protection scheme in its sample entry)');
    return {
      track,
      samples: async function* () {
        for await (const s of samples()) {
          report.samples++;
          yield { sample: { size: s.data.length, duration: s.duration, isSync: s.isSync, compositionOffset: s.cts - s.dts }, data: s.data, dts: s.dts };
        }
      },
    };
  }
  if (keys === undefined) throw new KeyframeError(ErrorCodes.DECRYPT, `the video is encrypted (${protection.scheme}): a key is needed`);
  const checked = checkKeys(keys, await readKeyChecks(source));
  const seen = new Set<string>();
  const note = (kid: Uint8Array): void => {
    const h = hex(kid);
    if (!seen.has(h)) {
      seen.add(h);
      report.kids.push({ kid: h, checked: checked.get(h) === true });
    }
  };
  note(protection.kid);
  keyFor(keys, protection.kid);
  return {
    track,
    samples: async function* () {
      for await (const s of samples()) {
        const kid = sampleKid(track, s);
        note(kid);
        const key = keyFor(keys, kid);
        let data = s.data;
        if (s.encryption !== undefined) {
          const subsamples: readonly Subsample[] = s.encryption.subsamples.length > 0 ? s.encryption.subsamples : [{ clear: 0, protected: s.data.length }];
          const iv = s.encryption.iv.length > 0 ? s.encryption.iv : (s.constantIv ?? protection.constantIv);
          if (iv === undefined) throw new MediaError(`sample ${s.index} has neither a per-sample IV nor a constant IV`);
          data = decryptSample({ scheme: protection.scheme, key }, iv, s.data, subsamples);
        }
        report.samples++;
        yield { sample: { size: data.length, duration: s.duration, isSync: s.isSync, compositionOffset: s.cts - s.dts }, data, dts: s.dts };
      }
    },
  };
}

/**
 * Decrypts `source` into clear CMAF chunks. Keys are checked first (every KCV in the file), so that a wrong key
 * fails before the first chunk.
 */
export async function* decryptChunks(source: Mp4Source, keys: KeySet, report: DecryptReport): AsyncGenerator<Uint8Array> {
  const { track, samples } = await openClearSamples(source, keys, report, { requireEncrypted: true });

  yield buildInitSegment({ trackId: track.trackId, timescale: track.timescale, width: track.width, height: track.height, avcC: track.avcC });

  let gop: ClearSample[] = [];
  let base = 0;
  const flush = function* (): Generator<Uint8Array> {
    if (gop.length === 0) return;
    const f = buildFragment({ sequenceNumber: report.fragments + 1, trackId: track.trackId, baseMediaDecodeTime: base, samples: gop.map((g) => g.sample) });
    report.fragments++;
    yield f.header;
    for (const g of gop) yield g.data;
    gop = [];
  };
  for await (const s of samples()) {
    if (s.sample.isSync && gop.length > 0) yield* flush();
    if (gop.length === 0) base = s.dts;
    gop.push(s);
  }
  yield* flush();
}

export function emptyReport(): DecryptReport {
  return { fragments: 0, samples: 0, kids: [] };
}

