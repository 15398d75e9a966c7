/**
 * One session in the recording layout (src/recording/layout.ts) on disk — the camera's SD card, or the output of
 * `keyframe record`. Every object is durable before the call returns: the chain and init segment and each fragment
 * are written to a temporary name, fsync'd and renamed (a crash never leaves a half fragment under its name), and
 * each record line is appended and fdatasync'd.
 */
import { open, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { writeChunksAtomic } from '../packager/files.js';
import { CHAIN_FILE, INIT_FILE, RECORDS_FILE, segmentName } from '../recording/layout.js';
import { writeFileAtomic } from '../util/fs.js';

export class SessionDirWriter {
  private records: FileHandle | undefined;
  constructor(readonly dir: string) {}

  async chain(pem: string): Promise<void> {
    await writeFileAtomic(join(this.dir, CHAIN_FILE), pem);
  }

  async init(data: Uint8Array): Promise<void> {
    await writeFileAtomic(join(this.dir, INIT_FILE), data);
  }

  /** Writes fragment `seq`; returns its size. */
  async segment(seq: number, chunks: readonly Uint8Array[]): Promise<number> {
    return writeChunksAtomic(
      join(this.dir, segmentName(seq)),
      (async function* () {
        yield* chunks;
      })(),
    );
  }

  /** Appends one record line (without its newline). */
  async record(line: string): Promise<void> {
    this.records ??= await open(join(this.dir, RECORDS_FILE), 'a', 0o644);
    await this.records.write(`${line}\n`);
    await this.records.datasync();
  }

  async close(): Promise<void> {
    const fh = this.records;
    this.records = undefined;
    await fh?.close();
  }
}
