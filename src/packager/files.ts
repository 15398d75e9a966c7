/**
 * File ends of the packager: chunks written to a temporary name next to the target and renamed when complete,
 * so a failure (bad input half-way, wrong key, full disk) leaves no partial output behind.
 */
import { writevAll, writeWithAtomic } from '../util/fs.js';

/** Writes `chunks` to `path` atomically; returns the bytes written. Batches small chunks into one writev. */
export async function writeChunksAtomic(path: string, chunks: AsyncIterable<Uint8Array>): Promise<number> {
  return writeWithAtomic(path, async (fh) => {
    let written = 0;
    const batch: Uint8Array[] = [];
    let batchBytes = 0;
    const drain = async (): Promise<void> => {
      written += await writevAll(fh, batch);
      batch.length = 0;
      batchBytes = 0;
    };
    for await (const chunk of chunks) {
      batch.push(chunk);
      batchBytes += chunk.length;
      if (batch.length >= 256 || batchBytes >= 4 << 20) await drain();
    }
    await drain();
    return written;
  });
}
