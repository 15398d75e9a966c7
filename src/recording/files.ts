/**
 * Read access to the files of a recording wherever they are: a recording directory (an SD card, an NVR's store)
 * or the `recording/` part of an evidence bundle (a tar archive), read by offset without extracting; and the
 * init segment plus fragments seen as one fragmented MP4 by the demuxer.
 */
import { open, readdir, stat } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { MediaError, NotFoundError, errnoCode } from '../errors.js';
import type { Mp4Source } from '../media/mp4/index.js';
import { indexTar, type TarEntry } from './tar.js';

export interface RecordingFiles {
  /** Where the files are, for messages. */
  readonly label: string;
  names(): readonly string[];
  has(name: string): boolean;
  size(name: string): number;
  read(name: string, offset?: number, length?: number): Promise<Uint8Array>;
  close(): Promise<void>;
}

function missing(label: string, name: string): MediaError {
  return new MediaError(`${label}: ${name} is missing`);
}

/** The regular files directly in `dir`. */
export async function openRecordingDir(dir: string): Promise<RecordingFiles> {
  let names: string[];
  try {
    names = (await readdir(dir, { withFileTypes: true })).filter((d) => d.isFile() && !d.name.startsWith('.')).map((d) => d.name).sort();
  } catch (e) {
    if (errnoCode(e) === 'ENOENT') throw new NotFoundError(`recording not found: ${dir}`);
    throw e;
  }
  const sizes = new Map<string, number>();
  for (const n of names) sizes.set(n, (await stat(join(dir, n))).size);
  return {
    label: dir,
    names: () => names,
    has: (n) => sizes.has(n),
    size: (n) => {
      const s = sizes.get(n);
      if (s === undefined) throw missing(dir, n);
      return s;
    },
    read: async (n, offset = 0, length) => {
      const size = sizes.get(n);
      if (size === undefined) throw missing(dir, n);
      const len = length ?? size - offset;
      const fh = await open(join(dir, n), 'r');
      try {
        const out = new Uint8Array(len);
        let done = 0;
        while (done < len) {
          const { bytesRead } = await fh.read(out, done, len - done, offset + done);
          if (bytesRead === 0) throw new MediaError(`${join(dir, n)} is shorter than it was (changed while being read?)`);
          done += bytesRead;
        }
        return out;
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
  ) {}

  static async open(path: string): Promise<TarFiles> {
    let fh: FileHandle;
    try {
      fh = await open(path, 'r');
    } catch (e) {
      if (errnoCode(e) === 'ENOENT') throw new NotFoundError(`bundle not found: ${path}`);
      throw e;
    }
    try {
      const size = (await fh.stat()).size;
      const read = async (offset: number, length: number): Promise<Uint8Array> => {
        const out = new Uint8Array(length);
        const { bytesRead } = await fh.read(out, 0, length, offset);
        if (bytesRead !== length) throw new MediaError(`${path}: short read at ${offset}`);
        return out;
      };
      const entries = await indexTar(read, size);
      return new TarFiles(path, fh, new Map(entries.map((e) => [e.name, e])), '');
    } catch (e) {
      await fh.close();
      throw e;
    }
  }

  /** The files under `folder/`, named without the folder. Shares the open archive. */
  sub(folder: string): RecordingFiles {
    const view = new TarFiles(`${this.label}:${folder}`, this.fh, this.entries, `${this.prefix}${folder}/`);
    return { label: view.label, names: () => view.names(), has: (n) => view.has(n), size: (n) => view.size(n), read: (n, o, l) => view.read(n, o, l), close: async () => undefined };
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
    const e = this.entries.get(this.prefix + name);
    if (e === undefined) throw missing(this.label, name);
    return e.size;
  }

  async read(name: string, offset = 0, length?: number): Promise<Uint8Array> {
    const e = this.entries.get(this.prefix + name);
    if (e === undefined) throw missing(this.label, name);
    const len = length ?? e.size - offset;
    if (offset < 0 || offset + len > e.size) throw new MediaError(`${this.label}: read outside ${name}`);
    const out = new Uint8Array(len);
    const { bytesRead } = await this.fh.read(out, 0, len, e.offset + offset);
    if (bytesRead !== len) throw new MediaError(`${this.label}: short read in ${name}`);
    return out;
  }

  close(): Promise<void> {
    return this.fh.close();
  }
}

/** `names` of `files`, back to back, as one random-access source for the MP4 demuxer. */
export function concatSource(files: RecordingFiles, names: readonly string[]): Mp4Source {
  const starts: number[] = [];
  let size = 0;
  for (const n of names) {
    starts.push(size);
    size += files.size(n);
  }
  let cache: { index: number; data: Uint8Array } | undefined;
  const whole = async (i: number): Promise<Uint8Array> => {
    if (cache?.index !== i) cache = { index: i, data: await files.read(names[i] as string) };
    return cache.data;
  };
  return {
    size,
    async read(offset, length) {
      if (offset < 0 || length < 0 || offset + length > size) throw new MediaError(`read of ${length} bytes at ${offset} is outside the ${size}-byte recording`);
      const out = new Uint8Array(length);
      let done = 0;
      while (done < length) {
        const at = offset + done;
        // the last file starting at or before `at` (binary search)
        let lo = 0;
        let hi = starts.length - 1;
        while (lo < hi) {
          const mid = (lo + hi + 1) >>> 1;
          if ((starts[mid] as number) <= at) lo = mid;
          else hi = mid - 1;
        }
        const i = lo;
        const data = await whole(i);
        const from = at - (starts[i] as number);
        const n = Math.min(length - done, data.length - from);
        out.set(data.subarray(from, from + n), done);
        done += n;
      }
      return out;
    },
  };
}
