/**
 * Read access to the files of a recording wherever they are: a recording directory (an SD card, an NVR's store)
 * or the `recording/` part of an evidence bundle (a tar archive), read by offset without extracting; and the
 * init segment plus fragments seen as one fragmented MP4 by the demuxer.
 *
 * Every read is bounded (limits.ts): a file larger than its bound is refused when the recording or bundle is
 * opened, with one line naming it; files that are only hashed are streamed; the demuxer reads ranges, never a
 * whole fragment. Ordinary I/O failures (missing, a directory, permission denied) are one-line input errors.
 */
import { createHash } from 'node:crypto';
import { open, opendir, stat } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { InputError, MediaError, errnoCode } from '../errors.js';
import type { Mp4Source } from '../media/mp4/index.js';
import { readFailure } from '../util/fs.js';
import { CHAIN_FILE, INFO_FILE, INIT_FILE, RECORDS_FILE, segmentSeq } from './layout.js';
import { LineSplitter, type Line } from './lines.js';
import { MAX_ENTRIES, MAX_TAR_PADDING_BYTES, READ_CHUNK_BYTES, TAR_TRAILER_SCAN_BYTES, formatBytes, oversize } from './limits.js';
import { indexTar, type TarEntry, type TarTrailer } from './tar.js';

export interface RecordingFiles {
  /** Where the files are, for messages. */
  readonly label: string;
  names(): readonly string[];
  has(name: string): boolean;
  size(name: string): number;
  /** `length` bytes from `offset` (default: the whole file, which its bound in limits.ts keeps small enough). */
  read(name: string, offset?: number, length?: number): Promise<Uint8Array>;
  /** The whole file in chunks of at most READ_CHUNK_BYTES (for hashing and line reading: memory stays bounded). */
  chunks(name: string): AsyncIterable<Uint8Array>;
  close(): Promise<void>;
}

export interface OpenOptions {
  /** Most files in a directory, or members in a bundle (default MAX_ENTRIES). */
  readonly maxEntries?: number;
}

function missing(label: string, name: string): MediaError {
  return new MediaError(`${label}: ${name} is missing`);
}

/** SHA-256 of a file, hex, streamed. */
export async function sha256Of(files: RecordingFiles, name: string): Promise<string> {
  const h = createHash('sha256');
  for await (const c of files.chunks(name)) h.update(c);
  return h.digest('hex');
}

/** The lines of a text file, read in chunks; a line longer than `maxLineBytes` comes as `tooLong` (its length). */
export async function* linesOf(files: RecordingFiles, name: string, maxLineBytes: number): AsyncGenerator<Line> {
  const splitter = new LineSplitter(maxLineBytes);
  for await (const c of files.chunks(name)) yield* splitter.push(c);
  yield* splitter.flush();
}

/** Exactly `out.length` bytes of `fh` at `position`, in reads Node accepts; MediaError if the file is shorter. */
async function readFully(fh: FileHandle, out: Uint8Array, position: number, what: string): Promise<void> {
  let done = 0;
  while (done < out.length) {
    let bytesRead: number;
    try {
      ({ bytesRead } = await fh.read(out, done, Math.min(out.length - done, READ_CHUNK_BYTES * 64), position + done));
    } catch (e) {
      throw readFailure(e, what, 'file');
    }
    if (bytesRead === 0) throw new MediaError(`${what} is shorter than it was (changed while being read?)`);
    done += bytesRead;
  }
}

/** Whole-file reads are for files within their bound: refuse anything else before allocating. */
function checkWhole(label: string, name: string, size: number): void {
  const problem = oversize(name, size);
  if (problem !== undefined) throw new MediaError(`${label}: ${problem}`);
}

/** Files a recording directory is read for: each within its bound (limits.ts) when the directory is opened. */
function isRecordingFile(name: string): boolean {
  return segmentSeq(name) !== undefined || name === RECORDS_FILE || name === INIT_FILE || name === CHAIN_FILE || name === INFO_FILE;
}

/** The regular files directly in `dir`. */
export async function openRecordingDir(dir: string, options: OpenOptions = {}): Promise<RecordingFiles> {
  const maxEntries = options.maxEntries ?? MAX_ENTRIES;
  const names: string[] = [];
  try {
    let count = 0;
    for await (const d of await opendir(dir)) {
      if (++count > maxEntries) throw new MediaError(`${dir} holds more than ${maxEntries} entries: not a recording (a week of one-second fragments is 604,800 files)`);
      // a file the recording is read for must be one (a symbolic link to one will do); anything else is ignored
      if (d.isFile() && !d.name.startsWith('.')) names.push(d.name);
      else if (isRecordingFile(d.name)) names.push(d.name);
    }
  } catch (e) {
    if (errnoCode(e) === 'ENOTDIR') throw new MediaError(`${dir} is not a directory`);
    throw readFailure(e, dir, 'recording');
  }
  names.sort();
  const sizes = new Map<string, number>();
  for (const n of names) {
    const path = join(dir, n);
    let st;
    try {
      st = await stat(path);
    } catch (e) {
      throw readFailure(e, path, 'file');
    }
    if (st.isDirectory()) throw new InputError(`${path} is a directory, not a file`);
    if (!st.isFile()) throw new InputError(`${path} is not a regular file (a device, FIFO or socket)`);
    if (isRecordingFile(n)) checkWhole(dir, n, st.size);
    sizes.set(n, st.size);
  }
  const sizeOf = (n: string): number => {
    const s = sizes.get(n);
    if (s === undefined) throw missing(dir, n);
    return s;
  };
  const openFile = async (n: string): Promise<FileHandle> => {
    const path = join(dir, n);
    try {
      return await open(path, 'r');
    } catch (e) {
      throw readFailure(e, path, 'file');
    }
  };
  return {
    label: dir,
    names: () => names,
    has: (n) => sizes.has(n),
    size: sizeOf,
    read: async (n, offset = 0, length) => {
      const size = sizeOf(n);
      if (length === undefined) checkWhole(dir, n, size);
      const len = length ?? size - offset;
      if (offset < 0 || len < 0 || offset + len > size) throw new MediaError(`${dir}: read outside ${n}`);
      const fh = await openFile(n);
      try {
        const out = new Uint8Array(len);
        await readFully(fh, out, offset, join(dir, n));
        return out;
      } finally {
        await fh.close();
      }
    },
    chunks: async function* (n) {
      const size = sizeOf(n);
      const fh = await openFile(n);
      try {
        for (let at = 0; at < size; at += READ_CHUNK_BYTES) {
          const out = new Uint8Array(Math.min(READ_CHUNK_BYTES, size - at));
          await readFully(fh, out, at, join(dir, n));
          yield out;
        }
      } finally {
        await fh.close();
      }
    },
    close: async () => undefined,
  };
}

/** An evidence bundle: a ustar archive, indexed once, read by offset. `prefix` selects a folder of it. */
export class TarFiles implements RecordingFiles {
  private constructor(
    readonly label: string,
    private readonly fh: FileHandle,
    private readonly entries: ReadonlyMap<string, TarEntry>,
    private readonly prefix: string,
    /** What follows the archive's end-of-archive blocks, when it is not padding (tar.ts). */
    readonly trailer: TarTrailer | undefined,
  ) {}

  static async open(path: string, options: OpenOptions = {}): Promise<TarFiles> {
    let fh: FileHandle;
    try {
      fh = await open(path, 'r');
    } catch (e) {
      throw readFailure(e, path, 'bundle');
    }
    try {
      const st = await fh.stat();
      if (!st.isFile()) throw new MediaError(`${path} is not a regular file`);
      const read = async (offset: number, length: number): Promise<Uint8Array> => {
        const out = new Uint8Array(length);
        await readFully(fh, out, offset, path);
        return out;
      };
      const index = await indexTar(read, st.size, {
        maxEntries: options.maxEntries ?? MAX_ENTRIES,
        sizeProblem: oversize,
        maxPadding: MAX_TAR_PADDING_BYTES,
        trailerScan: TAR_TRAILER_SCAN_BYTES,
        chunk: READ_CHUNK_BYTES,
      });
      return new TarFiles(path, fh, new Map(index.entries.map((e) => [e.name, e])), '', index.trailer);
    } catch (e) {
      await fh.close();
      if (e instanceof MediaError && !e.message.startsWith(path)) throw new MediaError(`${path}: ${e.message}`);
      throw e;
    }
  }

  /** Problems of the archive itself, for the report: data after its end (where `tar -i` finds more). */
  get problems(): string[] {
    const t = this.trailer;
    if (t === undefined) return [];
    const where = `${formatBytes(t.length)} from the end-of-archive blocks at byte ${t.end} to the end of the file`;
    if (t.members.length > 0) {
      const shown = t.members.slice(0, 5).map((m) => `${m.name} (${m.size} bytes)`);
      const more = t.members.length > shown.length ? ` and ${t.members.length - shown.length} more` : '';
      return [`data after the end of the archive (${where}): \`tar -i\` reads ${t.members.length === 1 ? 'a member' : 'members'} ${shown.join(', ')}${more} there, which plain \`tar\` and this verifier ignore: not part of the evidence`];
    }
    if (t.firstData !== undefined) return [`data after the end of the archive (${where}), from byte ${t.firstData}: not tar members, not part of the evidence`];
    return [`data after the end of the archive (${where}): zeros as far as examined (${formatBytes(t.scanned)}), more than tar pads an archive with`];
  }

  /** The files under `folder/`, named without the folder. Shares the open archive. */
  sub(folder: string): RecordingFiles {
    const view = new TarFiles(`${this.label}:${folder}`, this.fh, this.entries, `${this.prefix}${folder}/`, undefined);
    return { label: view.label, names: () => view.names(), has: (n) => view.has(n), size: (n) => view.size(n), read: (n, o, l) => view.read(n, o, l), chunks: (n) => view.chunks(n), close: async () => undefined };
  }

  names(): readonly string[] {
    return [...this.entries.keys()]
      .filter((n) => n.startsWith(this.prefix) && !n.slice(this.prefix.length).includes('/'))
      .map((n) => n.slice(this.prefix.length))
      .sort();
  }

  has(name: string): boolean {
    return this.entries.has(this.prefix + name);
  }

  size(name: string): number {
    return this.entry(name).size;
  }

  private entry(name: string): TarEntry {
    const e = this.entries.get(this.prefix + name);
    if (e === undefined) throw missing(this.label, name);
    return e;
  }

  async read(name: string, offset = 0, length?: number): Promise<Uint8Array> {
    const e = this.entry(name);
    if (length === undefined) checkWhole(this.label, name, e.size);
    const len = length ?? e.size - offset;
    if (offset < 0 || len < 0 || offset + len > e.size) throw new MediaError(`${this.label}: read outside ${name}`);
    const out = new Uint8Array(len);
    await readFully(this.fh, out, e.offset + offset, `${this.label}: ${name}`);
    return out;
  }

  async *chunks(name: string): AsyncGenerator<Uint8Array> {
    const e = this.entry(name);
    for (let at = 0; at < e.size; at += READ_CHUNK_BYTES) {
      const out = new Uint8Array(Math.min(READ_CHUNK_BYTES, e.size - at));
      await readFully(this.fh, out, e.offset + at, `${this.label}: ${name}`);
      yield out;
    }
  }

  close(): Promise<void> {
    return this.fh.close();
  }
}

/** Reads smaller than this are served from a window of this size read ahead (box headers, small samples). */
const WINDOW = 256 * 1024;

/**
 * `names` of `files`, back to back, as one random-access source for the MP4 demuxer. Reads ranges only: memory is
 * one read-ahead window plus what the demuxer asks for (its own caps bound that), never a whole file.
 */
export function concatSource(files: RecordingFiles, names: readonly string[]): Mp4Source {
  const starts: number[] = [];
  let size = 0;
  for (const n of names) {
    starts.push(size);
    size += files.size(n);
  }
  let window: { at: number; data: Uint8Array } | undefined;
  /** Bytes [at, at + length) within file i (length > 0), through the window for small reads. */
  const part = async (i: number, at: number, length: number): Promise<Uint8Array> => {
    const name = names[i] as string;
    const fileStart = starts[i] as number;
    if (length >= WINDOW) return files.read(name, at - fileStart, length);
    if (window === undefined || at < window.at || at + length > window.at + window.data.length) {
      const n = Math.min(WINDOW, fileStart + files.size(name) - at);
      window = { at, data: await files.read(name, at - fileStart, n) };
    }
    return window.data.subarray(at - window.at, at - window.at + length);
  };
  return {
    size,
    async read(offset, length) {
      if (offset < 0 || length < 0 || offset + length > size) throw new MediaError(`read of ${length} bytes at ${offset} is outside the ${size}-byte recording`);
      const out = new Uint8Array(length);
      let done = 0;
      while (done < length) {
        const at = offset + done;
        // the last file starting at or before `at` (binary search): it holds `at`, so it is not empty
        let lo = 0;
        let hi = starts.length - 1;
        while (lo < hi) {
          const mid = (lo + hi + 1) >>> 1;
          if ((starts[mid] as number) <= at) lo = mid;
          else hi = mid - 1;
        }
        const i = lo;
        const n = Math.min(length - done, (starts[i] as number) + files.size(names[i] as string) - at);
        out.set(await part(i, at, n), done);
        done += n;
      }
      return out;
    },
  };
}

/** Where a file lies inside a larger one (an export file's box), or its bytes when they were rebuilt. */
export type RangeEntry = { readonly offset: number; readonly size: number } | { readonly data: Uint8Array };

/**
 * Files that are byte ranges of one random-access source (the boxes of an ONVIF export file), or small rebuilt
 * buffers, seen as a recording. Reads are ranges; whole reads are bounded like a directory's (limits.ts).
 */
export function rangeFiles(label: string, source: Mp4Source, entries: ReadonlyMap<string, RangeEntry>): RecordingFiles {
  const entry = (n: string): RangeEntry => {
    const e = entries.get(n);
    if (e === undefined) throw missing(label, n);
    return e;
  };
  const sizeOf = (n: string): number => {
    const e = entry(n);
    return 'data' in e ? e.data.length : e.size;
  };
  const read = async (n: string, offset = 0, length?: number): Promise<Uint8Array> => {
    const e = entry(n);
    const size = sizeOf(n);
    if (length === undefined) checkWhole(label, n, size);
    const len = length ?? size - offset;
    if (offset < 0 || len < 0 || offset + len > size) throw new MediaError(`${label}: read outside ${n}`);
    if ('data' in e) return e.data.subarray(offset, offset + len);
    return Uint8Array.from(await source.read(e.offset + offset, len));
  };
  return {
    label,
    names: () => [...entries.keys()].sort(),
    has: (n) => entries.has(n),
    size: sizeOf,
    read,
    chunks: async function* (n) {
      const size = sizeOf(n);
      for (let at = 0; at < size; at += READ_CHUNK_BYTES) yield await read(n, at, Math.min(READ_CHUNK_BYTES, size - at));
    },
    close: async () => undefined,
  };
}
