/**
 * One session in the recording layout (src/recording/layout.ts) on disk — the camera's SD card, or the output of
 * `keyframe record`. Every object is durable before the call returns: the chain and init segment and each fragment
 * are written to a temporary name, flushed and renamed (a crash never leaves a half fragment under its name), and
 * each record line is appended and fdatasync'd. A fragment and a record each cost one asynchronous step (the
 * flush); the rest are short synchronous calls (src/util/fs.ts writeChunksDurable), as a camera makes them every
 * second.
 */
import { closeSync, openSync } from 'node:fs';
import { join } from 'node:path';
import { ioError } from '../errors.js';
import { CHAIN_FILE, INIT_FILE, RECORDS_FILE, segmentName } from '../recording/layout.js';
import { fdatasyncAsync, writeChunksDurable, writeFileAtomic, writevAllSync } from '../util/fs.js';

export class SessionDirWriter {
  private records: number | undefined;
  constructor(readonly dir: string) {}

  async chain(pem: string): Promise<void> {
    await writeFileAtomic(join(this.dir, CHAIN_FILE), pem);
  }

  async init(data: Uint8Array): Promise<void> {
    await writeFileAtomic(join(this.dir, INIT_FILE), data);
  }

  /** Writes fragment `seq`; returns its size. */
  async segment(seq: number, chunks: readonly Uint8Array[]): Promise<number> {
    return writeChunksDurable(join(this.dir, segmentName(seq)), chunks);
  }

  /** Appends one record line (without its newline). */
  async record(line: string): Promise<void> {
    const path = join(this.dir, RECORDS_FILE);
    try {
      this.records ??= openSync(path, 'a', 0o644);
      writevAllSync(this.records, [Buffer.from(`${line}\n`, 'utf8')]);
      await fdatasyncAsync(this.records);
    } catch (e) {
      throw ioError(e, path, 'write') ?? e;
    }
  }

  async close(): Promise<void> {
    const fd = this.records;
    this.records = undefined;
    if (fd !== undefined) closeSync(fd);
  }
}
