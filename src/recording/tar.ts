/**
 * POSIX ustar archives (IEEE Std 1003.1, pax "ustar" interchange format), the container of an evidence bundle:
 * readable by any `tar`, written in one pass, read by offset without extracting. Only regular files with short
 * relative names are written or accepted; anything else in an archive is a MediaError.
 */
import type { FileHandle } from 'node:fs/promises';
import { MediaError } from '../errors.js';

const BLOCK = 512;
const NAME = /^[A-Za-z0-9._-]+(?:\/[A-Za-z0-9._-]+)*$/;

function octal(value: number, width: number): string {
  return `${value.toString(8).padStart(width - 1, '0')}\0`;
}

function checkName(name: string): void {
  if (name.length === 0 || name.length > 99 || !NAME.test(name) || name.split('/').some((p) => p === '.' || p === '..')) {
    throw new MediaError(`tar entry name "${name}" is not a short relative path`);
  }
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

/** Indexes the regular files of an archive read through `read` (positional). Refuses links, devices and bad names. */
export async function indexTar(read: (offset: number, length: number) => Promise<Uint8Array>, size: number): Promise<TarEntry[]> {
  const entries: TarEntry[] = [];
  const names = new Set<string>();
  let pos = 0;
  for (;;) {
    if (pos + BLOCK > size) throw new MediaError('tar archive truncated (no end-of-archive blocks)', pos);
    const h = await read(pos, BLOCK);
    if (h.every((b) => b === 0)) return entries;
    let sum = 0;
    for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 0x20 : (h[i] ?? 0);
    if (parseOctal(h, 148, 8, 'checksum', pos) !== sum) throw new MediaError(`tar header at ${pos}: checksum mismatch`, pos);
    if (field(h, 257, 6) !== 'ustar') throw new MediaError(`tar header at ${pos}: not a ustar header`, pos);
    const type = field(h, 156, 1);
    const prefix = field(h, 345, 155);
    const name = prefix.length > 0 ? `${prefix}/${field(h, 0, 100)}` : field(h, 0, 100);
    if (type !== '0' && type !== '') throw new MediaError(`tar entry ${name}: only regular files are allowed (type ${type})`, pos);
    checkName(name);
    if (names.has(name)) throw new MediaError(`tar entry ${name} appears twice`, pos);
    names.add(name);
    const entrySize = parseOctal(h, 124, 12, 'size', pos);
    const offset = pos + BLOCK;
    if (offset + entrySize > size) throw new MediaError(`tar entry ${name} runs past the end of the archive`, pos);
    entries.push({ name, size: entrySize, offset });
    pos = offset + Math.ceil(entrySize / BLOCK) * BLOCK;
  }
}
