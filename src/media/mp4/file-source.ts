/**
 * Random-access byte sources for the demuxer: a file read through one FileHandle (only the ranges asked for
 * are read — never the whole file), or a buffer already in memory. Reads past the end are a MediaError: for the
 * demuxer they mean a box or sample that claims bytes the input does not have (a truncated recording).
 */
import { open } from 'node:fs/promises';
import { MediaError } from '../../errors.js';
import { readFailure } from '../../util/fs.js';

/** Random access to the bytes of an MP4 file. Non-seekable input (a pipe) is not supported by the demuxer. */
export interface Mp4Source {
  /** Exactly `length` bytes from `offset`; MediaError if the source is shorter. */
  read(offset: number, length: number): Promise<Uint8Array>;
  readonly size: number;
}

function _checkRange(offset: number, length: number, size: number): void {
  if (!(Number.isInteger(offset) && Number.isInteger(length) && offset >= 0 && length >= 0 && offset + length <= size)) {
    throw new MediaError(`read of ${length} bytes at ${offset} is outside the ${size}-byte input`, Number.isFinite(offset) && offset >= 0 ? offset : undefined);
  }
}

/** A source over bytes in memory; reads are views (no copy). */
export function bufferSource(buf: Uint8Array): Mp4Source {
  return {
    size: buf.length,
    async read(offset, length) {
      _checkRange(offset, length, buf.length);
      return buf.subarray(offset, offset + length);
    },
  };
}

/** A source over a file, read on demand with positional reads. Call `close()` when done. */
export async function fileSource(path: string): Promise<Mp4Source & { close(): Promise<void> }> {
  let handle;
  try {
    handle = await open(path, 'r');
  } catch (e) {
    throw readFailure(e, path, 'input');
  }
  const fh = handle;
  let size: number;
  try {
    const st = await fh.stat();
    if (!st.isFile()) throw new MediaError(`${path} is not a regular file (the MP4 demuxer needs random access)`);
    size = st.size;
  } catch (e) {
    await fh.close();
    throw e;
  }
  return {
    size,
    async read(offset, length) {
      _checkRange(offset, length, size);
      const out = new Uint8Array(length);
      let done = 0;
      while (done < length) {
        const { bytesRead } = await fh.read(out, done, length - done, offset + done);
        if (bytesRead === 0) throw new MediaError(`${path} ended at ${offset + done} while reading ${length} bytes (the file shrank?)`, offset + done);
        done += bytesRead;
      }
      return out;
    },
    close: () => fh.close(),
  };
}
