/**
 * POSIX ustar archives (IEEE Std 1003.1, pax "ustar" interchange format), the container of an evidence bundle:
 * readable by any `tar`, written in one pass, read by offset without extracting. Only regular files with short
 * relative names are written or accepted, each name once; anything else in an archive is a MediaError. What
 * follows the end-of-archive blocks — where `tar -i` (--ignore-zeros) would read more members — is not ignored:
 * the index reports it, for the verifier to report.
 */
import type { FileHandle } from 'node:fs/promises';
import { MediaError } from '../errors.js';

const BLOCK = 512;
const NAME = /^[A-Za-z0-9._-]+(?:\/[A-Za-z0-9._-]+)*$/;

function octal(value: number, width: number): string {
  return `${value.toString(8).padStart(width - 1, '0')}\0`;
}

/** Why `name` is not a member name keyframe writes or reads, or undefined when it is one. */
export function nameProblem(name: string): string | undefined {
  const shown = JSON.stringify(name);
  if (name.length === 0) return 'a member has an empty name';
  if (name.startsWith('/')) return `member name ${shown} is absolute: a bundle holds relative names only`;
  if (name.split('/').some((p) => p === '..')) return `member name ${shown} climbs out of the archive (..)`;
  if (name.length > 99) return `member name ${shown} is longer than 99 characters`;
  if (!NAME.test(name) || name.split('/').some((p) => p === '.')) return `member name ${shown} is not a plain relative path (letters, digits, . _ - and /)`;
  return undefined;
}

function checkName(name: string): void {
  const problem = nameProblem(name);
  if (problem !== undefined) throw new MediaError(`tar ${problem}`);
}

/** The 512-byte ustar header of a regular file. */
export function tarHeader(name: string, size: number, mtimeSec: number): Buffer {
  checkName(name);
  if (!Number.isSafeInteger(size) || size < 0 || size >= 8 ** 11) throw new MediaError(`tar entry ${name}: size ${size} out of range`);
  const h = Buffer.alloc(BLOCK);
  h.write(name, 0, 100, 'ascii');
  h.write(octal(0o644, 8), 100, 'ascii');
  h.write(octal(0, 8), 108, 'ascii');
  h.write(octal(0, 8), 116, 'ascii');
  h.write(octal(size, 12), 124, 'ascii');
  h.write(octal(Math.max(0, Math.floor(mtimeSec)), 12), 136, 'ascii');
  h.write('        ', 148, 'ascii');
  h.write('0', 156, 'ascii');
  h.write('ustar\0', 257, 'ascii');
  h.write('00', 263, 'ascii');
  let sum = 0;
  for (const b of h) sum += b;
  h.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 'ascii');
  return h;
}

/** Writes entries to an open file, one after the other; `finish` writes the two zero blocks that end an archive. */
export class TarWriter {
  private offset = 0;
  constructor(
    private readonly fh: FileHandle,
    private readonly mtimeSec: number,
  ) {}

  private async write(data: Uint8Array): Promise<void> {
    let done = 0;
    while (done < data.length) {
      const { bytesWritten } = await this.fh.write(data, done, data.length - done, this.offset + done);
      done += bytesWritten;
    }
    this.offset += data.length;
  }

  /** Adds a file from chunks whose total size is `size`. */
  async add(name: string, size: number, chunks: Iterable<Uint8Array> | AsyncIterable<Uint8Array>): Promise<void> {
    await this.write(tarHeader(name, size, this.mtimeSec));
    let n = 0;
    for await (const c of chunks) {
      n += c.length;
      if (n > size) throw new MediaError(`tar entry ${name}: more bytes than announced`);
      await this.write(c);
    }
    if (n !== size) throw new MediaError(`tar entry ${name}: ${n} bytes written, ${size} announced`);
    const pad = (BLOCK - (size % BLOCK)) % BLOCK;
    if (pad > 0) await this.write(Buffer.alloc(pad));
  }

  async finish(): Promise<void> {
    await this.write(Buffer.alloc(2 * BLOCK));
  }
}

export interface TarEntry {
  readonly name: string;
  readonly size: number;
  /** Offset of the file's data in the archive. */
  readonly offset: number;
}

/** Bytes after the end-of-archive blocks that are not just padding. */
export interface TarTrailer {
  /** Offset of the end-of-archive blocks. */
  readonly end: number;
  /** Bytes from `end` to the end of the file (end-of-archive blocks included). */
  readonly length: number;
  /** Offset of the first non-zero block after the end, when one was found within the scan. */
  readonly firstData?: number;
  /** The members `tar -i` (--ignore-zeros) reads after the end, as far as the scan went. */
  readonly members: readonly TarEntry[];
  /** Bytes after the end that were examined (at most the scan limit). */
  readonly scanned: number;
}

export interface TarIndex {
  readonly entries: TarEntry[];
  /** Offset of the end-of-archive blocks. */
  readonly end: number;
  /** Present when something other than zero padding follows the end-of-archive blocks. */
  readonly trailer?: TarTrailer;
}

export interface TarIndexOptions {
  /** Most members accepted (default: no bound). */
  readonly maxEntries?: number;
  /** Why a member of `size` bytes is refused, or undefined when it is accepted (default: all sizes). */
  readonly sizeProblem?: (name: string, size: number) => string | undefined;
  /** Zero bytes after the two end-of-archive blocks accepted as padding (default 1 MiB). */
  readonly maxPadding?: number;
  /** How far past the end to look for members `tar -i` would read (default 64 MiB). */
  readonly trailerScan?: number;
  /** Reads at most this many bytes at once while scanning (default 1 MiB). */
  readonly chunk?: number;
}

type Read = (offset: number, length: number) => Promise<Uint8Array>;

function field(h: Uint8Array, start: number, len: number): string {
  const s = Buffer.from(h.subarray(start, start + len)).toString('latin1');
  const nul = s.indexOf('\0');
  return nul >= 0 ? s.slice(0, nul) : s;
}

function parseOctal(h: Uint8Array, start: number, len: number, what: string, at: number): number {
  const s = field(h, start, len).trim();
  if (!/^[0-7]+$/.test(s)) throw new MediaError(`tar header at ${at}: ${what} is not an octal number`, at);
  return Number.parseInt(s, 8);
}

function isZero(b: Uint8Array): boolean {
  for (const x of b) if (x !== 0) return false;
  return true;
}

/** Whether a block's checksum field holds the sum of its bytes (the field counted as spaces), as tar checks it. */
function checksumValid(h: Uint8Array): boolean {
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 0x20 : (h[i] ?? 0);
  const s = field(h, 148, 8).trim();
  return /^[0-7]+$/.test(s) && Number.parseInt(s, 8) === sum;
}

function memberName(h: Uint8Array): string {
  const prefix = field(h, 345, 155);
  return prefix.length > 0 ? `${prefix}/${field(h, 0, 100)}` : field(h, 0, 100);
}

const TYPES: Readonly<Record<string, string>> = {
  '1': 'a hard link',
  '2': 'a symbolic link',
  '3': 'a character device',
  '4': 'a block device',
  '5': 'a directory',
  '6': 'a FIFO',
  '7': 'a contiguous file',
  x: 'a pax extended header',
  g: 'a pax global header',
  L: 'a GNU long name',
  K: 'a GNU long link name',
  S: 'a GNU sparse file',
};

function typeProblem(h: Uint8Array, name: string): string | undefined {
  const type = field(h, 156, 1);
  if (type === '0' || type === '') return undefined;
  const what = TYPES[type] ?? `of type ${JSON.stringify(type)}`;
  const link = type === '1' || type === '2' ? ` (to ${JSON.stringify(field(h, 157, 100))})` : '';
  const header = type === 'x' || type === 'g' || type === 'L' || type === 'K';
  return `member ${JSON.stringify(name)} is ${what}${link}: ${header ? 'long names and extended attributes are not accepted, ' : ''}a bundle holds regular files only`;
}

/**
 * Indexes the regular files of an archive read through `read` (positional). Refuses links, devices, directories,
 * extended headers, bad names, repeated names, bad checksums, members running past the end and whatever
 * `sizeProblem` refuses. Reads headers only: member data is never read.
 */
export async function indexTar(read: Read, size: number, options: TarIndexOptions = {}): Promise<TarIndex> {
  const entries: TarEntry[] = [];
  const names = new Set<string>();
  let pos = 0;
  for (;;) {
    if (pos + BLOCK > size) throw new MediaError('tar archive truncated (no end-of-archive blocks)', pos);
    const h = await read(pos, BLOCK);
    if (isZero(h)) return { entries, end: pos, ...(await trailer(read, size, pos, options)) };
    if (!checksumValid(h)) throw new MediaError(`tar header at ${pos}: checksum mismatch (not a tar header, or a damaged one)`, pos);
    const name = memberName(h);
    if (field(h, 257, 8) === 'ustar  ') {
      const kind = TYPES[field(h, 156, 1)];
      throw new MediaError(`tar header at ${pos} (${JSON.stringify(name)}) is a GNU tar header${kind !== undefined ? ` (${kind})` : ''}: keyframe reads POSIX ustar archives only`, pos);
    }
    if (field(h, 257, 6) !== 'ustar') throw new MediaError(`tar header at ${pos}: not a ustar header`, pos);
    const bad = typeProblem(h, name) ?? nameProblem(name);
    if (bad !== undefined) throw new MediaError(`tar ${bad}`, pos);
    if (names.has(name)) throw new MediaError(`tar member ${JSON.stringify(name)} appears twice: extracting the archive would replace the first by the second`, pos);
    if (options.maxEntries !== undefined && entries.length >= options.maxEntries) throw new MediaError(`tar archive has more than ${options.maxEntries} members`, pos);
    names.add(name);
    const entrySize = parseOctal(h, 124, 12, 'size', pos);
    const tooBig = options.sizeProblem?.(name, entrySize);
    if (tooBig !== undefined) throw new MediaError(tooBig, pos);
    const offset = pos + BLOCK;
    if (offset + entrySize > size) throw new MediaError(`tar member ${JSON.stringify(name)} (${entrySize} bytes) runs past the end of the archive`, pos);
    entries.push({ name, size: entrySize, offset });
    pos = offset + Math.ceil(entrySize / BLOCK) * BLOCK;
  }
}

/**
 * What follows the first end-of-archive block at `end`: nothing to report when it is the second zero block and at
 * most `maxPadding` zero bytes (what tar writes); otherwise a trailer, with the members `tar -i` would read in it.
 */
async function trailer(read: Read, size: number, end: number, options: TarIndexOptions): Promise<{ trailer?: TarTrailer }> {
  const maxPadding = options.maxPadding ?? 1 << 20;
  // the scan covers at least what may pass as padding: zeros are only accepted where they were seen
  const limit = Math.min(size, end + BLOCK + Math.max(options.trailerScan ?? 64 << 20, maxPadding + BLOCK));
  const chunk = Math.max(BLOCK, Math.floor((options.chunk ?? 1 << 20) / BLOCK) * BLOCK);
  const members: TarEntry[] = [];
  let firstData: number | undefined;
  let pos = end + BLOCK;
  let buf: Uint8Array = new Uint8Array(0);
  let bufAt = pos;
  const block = async (at: number): Promise<Uint8Array> => {
    if (at < bufAt || at + BLOCK > bufAt + buf.length) {
      bufAt = at;
      buf = await read(at, Math.min(chunk, size - at));
    }
    return buf.subarray(at - bufAt, at - bufAt + BLOCK);
  };
  // like `tar -i`: skip zero blocks, read a header where the checksum holds, skip its data; else the next block
  while (pos + BLOCK <= limit) {
    const h = await block(pos);
    if (isZero(h)) {
      pos += BLOCK;
      continue;
    }
    firstData ??= pos;
    if (!checksumValid(h)) {
      pos += BLOCK;
      continue;
    }
    const s = field(h, 124, 12).trim();
    const memberSize = /^[0-7]+$/.test(s) ? Number.parseInt(s, 8) : 0;
    members.push({ name: memberName(h), size: memberSize, offset: pos + BLOCK });
    pos += BLOCK + Math.ceil(memberSize / BLOCK) * BLOCK;
  }
  // a partial block at the very end counts as data unless it is zeros
  if (pos < limit && firstData === undefined && !isZero(await read(pos, limit - pos))) firstData = pos;
  const after = size - end - 2 * BLOCK;
  if (firstData === undefined && after <= maxPadding) return {};
  return { trailer: { end, length: size - end, ...(firstData !== undefined ? { firstData } : {}), members, scanned: Math.min(pos, limit) - end } };
}
