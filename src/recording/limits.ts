/**
 * Bounds on what the readers of recordings and evidence bundles accept (README, "Signed video"): every file is
 * checked against its bound before anything is read, files that are only hashed are streamed, and files that are
 * parsed whole are small. Each bound is far above what a camera or an export writes and far below what would exhaust a
 * verifier: a forged size is refused with one line naming the file, never a crash.
 */
import { CHAIN_FILE, INFO_FILE, INIT_FILE, LOST_FILE, RECORDS_FILE, segmentSeq } from './layout.js';

const KiB = 1024;
const MiB = 1024 * KiB;

/**
 * One CMAF fragment (one GOP). A 10 s GOP of 4K video at 50 Mbit/s is 63 MB; the demuxer's own cap on one sample
 * is the same 256 MiB. Hashed by streaming; the SEI layer reads it one box and one sample at a time.
 */
export const MAX_FRAGMENT_BYTES = 256 * MiB;

/** records.jsonl: about 350 bytes a record, so a week of one-second fragments is about 210 MB. Read line by line. */
export const MAX_RECORDS_BYTES = 256 * MiB;

/** One line of records.jsonl: a record is 300–1000 bytes (an RSA-4096 signature is 684 base64 characters). */
export const MAX_RECORD_LINE_BYTES = 64 * KiB;

/** manifest.json of a bundle, parsed whole: about 110 bytes a listed file, 67 MB for a week of fragments. */
export const MAX_MANIFEST_BYTES = 128 * MiB;

/**
 * Files parsed whole that a camera or an exporter keeps small: chain.pem and exporter.pem (a few kB of PEM),
 * init.mp4 (under 2 kB), manifest.sig (under 600 bytes), session.sei (about 2 kB), recording.json.
 */
export const MAX_SMALL_FILE_BYTES = 1 * MiB;

/** Any other file of a bundle (not read unless its manifest lists it, and then only hashed by streaming). */
export const MAX_OTHER_ENTRY_BYTES = MAX_FRAGMENT_BYTES;

/** Files in a recording directory, members in a bundle: a week of one-second fragments is 604,800 files. */
export const MAX_ENTRIES = 1 << 20;

/** Chunk size of streamed reads (hashing, records). */
export const READ_CHUNK_BYTES = 1 * MiB;

/**
 * Zero bytes after a tar archive's two end-of-archive blocks that are taken as padding: GNU tar pads an archive to
 * its record size, 10 KiB by default (`-b 20`), at most 1 MiB (`-b 2048`). Anything else after the end blocks is
 * reported as data after the end of the archive.
 */
export const MAX_TAR_PADDING_BYTES = 1 * MiB;

/** How far past a tar archive's end the reader looks for the members `tar -i` would read there, to name them. */
export const TAR_TRAILER_SCAN_BYTES = 64 * MiB;

const SMALL = new Set([CHAIN_FILE, INIT_FILE, INFO_FILE, LOST_FILE, 'exporter.pem', 'manifest.sig', 'session.sei']);

export interface EntryLimit {
  readonly bytes: number;
  /** What the file is, for messages: "a fragment". */
  readonly what: string;
}

/** The bound on a file of a recording or bundle, by its name (a path inside a bundle is judged by its last part). */
export function limitFor(name: string): EntryLimit {
  const base = name.slice(name.lastIndexOf('/') + 1);
  if (segmentSeq(base) !== undefined) return { bytes: MAX_FRAGMENT_BYTES, what: 'a fragment' };
  if (base === RECORDS_FILE) return { bytes: MAX_RECORDS_BYTES, what: 'a records file' };
  if (name === 'manifest.json') return { bytes: MAX_MANIFEST_BYTES, what: 'a bundle manifest' };
  if (SMALL.has(base)) return { bytes: MAX_SMALL_FILE_BYTES, what: base };
  return { bytes: MAX_OTHER_ENTRY_BYTES, what: 'any file of a bundle' };
}

/** 3221225472 → "3.0 GiB", 268435456 → "256 MiB", 65536 → "64 KiB". */
export function formatBytes(n: number): string {
  const units: [number, string][] = [
    [1024 * MiB, 'GiB'],
    [MiB, 'MiB'],
    [KiB, 'KiB'],
  ];
  for (const [size, unit] of units) {
    if (n >= size) {
      const x = n / size;
      return `${Number.isInteger(x) ? String(x) : x.toFixed(1)} ${unit}`;
    }
  }
  return `${n} bytes`;
}

/** The one-line refusal of a file larger than its bound, or undefined when it is within it. */
export function oversize(name: string, size: number): string | undefined {
  const l = limitFor(name);
  if (size <= l.bytes) return undefined;
  return `${name} is ${formatBytes(size)}: larger than the ${formatBytes(l.bytes)} ${l.what} may be`;
}
