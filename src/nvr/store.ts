/**
 * The NVR's store directory: immutable files per camera and session, in the recording layout
 * (src/recording/layout.ts), so that a session directory is a recording the offline verifier reads once its
 * records are materialised:
 *
 *   STORE/<serial>/<session>/chain.pem, init.mp4, 000000.m4s …
 *   STORE/.quarantine/<serial>/<session>/<name>.<sha256 prefix>   objects kept aside (flagged in the index)
 *   STORE/.tmp/                                                  bodies being received (removed by nvr check)
 *
 * A body is streamed to a temporary file in .tmp (same file system), hashed as it arrives, fsync'd; then renamed
 * to its name and the directory fsync'd — only after that is its index row committed, and only after the commit
 * is the camera answered. A crash between the rename and the commit leaves a complete file without a row, which
 * `nvr check --repair` re-indexes when its record verifies; a crash before the rename leaves a temporary only.
 * Serials cannot start with a dot, so .tmp and .quarantine never collide with a camera.
 */
import { createHash, randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import { mkdir, open, rename, rm, statfs } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import { dirname, join, relative } from 'node:path';
import type { Readable } from 'node:stream';
import { ErrorCodes, KeyframeError, ioError } from '../errors.js';
import { CHAIN_FILE, INIT_FILE, segmentName } from '../recording/layout.js';
import { writevAll } from '../util/fs.js';

export const TMP_DIR = '.tmp';
export const QUARANTINE_DIR = '.quarantine';

export type StoredKind = 'chain' | 'init' | 'seg' | 'rec';

/** A body received into a temporary file of the store (segments, init, chain: they are kept as files). */
export interface ReceivedFile {
  readonly tmp: string;
  readonly sha256: string;
  readonly size: number;
}

/** A small body received into memory (records: they live in the index). */
export interface ReceivedBytes {
  readonly bytes: Buffer;
  readonly sha256: string;
  readonly size: number;
}

/** Bytes gathered before one write while a body is received. */
const WRITE_BATCH = 256 * 1024;

export class BodyTooLarge extends KeyframeError {
  constructor(limit: number) {
    super(ErrorCodes.TOO_LARGE, `body larger than ${limit} bytes`);
  }
}

/** The file name of an object in its session directory (records have none: they live in the index). */
export function objectName(kind: StoredKind, index?: number): string {
  if (kind === 'chain') return CHAIN_FILE;
  if (kind === 'init') return INIT_FILE;
  if (kind === 'seg') return segmentName(index ?? 0);
  return `rec-${index ?? 0}.json`;
}

async function syncDir(dir: string): Promise<void> {
  const fh = await open(dir, constants.O_RDONLY | constants.O_DIRECTORY);
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

export class SegmentStore {
  constructor(readonly root: string) {}

  get tmpDir(): string {
    return join(this.root, TMP_DIR);
  }

  /** Creates the store's directories (0700) when missing. */
  async prepare(): Promise<void> {
    for (const d of [this.root, this.tmpDir, join(this.root, QUARANTINE_DIR)]) {
      try {
        await mkdir(d, { recursive: true, mode: 0o700 });
      } catch (e) {
        throw ioError(e, d, 'create directory') ?? e;
      }
    }
  }

  sessionDir(serial: string, session: string): string {
    return join(this.root, serial, session);
  }

  path(serial: string, session: string, kind: StoredKind, index?: number): string {
    return join(this.sessionDir(serial, session), objectName(kind, index));
  }

  /** Bytes available to the NVR on the store's file system. */
  async freeBytes(): Promise<number> {
    const s = await statfs(this.root);
    return s.bavail * s.bsize;
  }

  /**
   * Streams `body` into a temporary file, hashing it as it arrives; at most `limit` bytes (BodyTooLarge beyond,
   * the temporary removed). The file is fsync'd before this returns. Writes are gathered up to WRITE_BATCH bytes
   * (TLS hands over records of 16 kB: one write each would be a thread-pool round trip per 16 kB).
   */
  async receive(body: AsyncIterable<Uint8Array> | Readable, limit: number, onData?: (data: Uint8Array, offset: number) => void): Promise<ReceivedFile> {
    const tmp = this.tempName();
    let fh: FileHandle;
    try {
      fh = await open(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o600);
    } catch (e) {
      throw ioError(e, tmp, 'write') ?? e;
    }
    const hash = createHash('sha256');
    let size = 0;
    let batch: Uint8Array[] = [];
    let batched = 0;
    try {
      for await (const chunk of body as AsyncIterable<Uint8Array>) {
        size += chunk.length;
        if (size > limit) throw new BodyTooLarge(limit);
        hash.update(chunk);
        onData?.(chunk, size - chunk.length);
        batch.push(chunk);
        batched += chunk.length;
        if (batched >= WRITE_BATCH) {
          await writevAll(fh, batch);
          batch = [];
          batched = 0;
        }
      }
      if (batched > 0) await writevAll(fh, batch);
      await fh.sync();
      await fh.close();
    } catch (e) {
      await fh.close().catch(() => undefined);
      await rm(tmp, { force: true });
      throw e;
    }
    return { tmp, sha256: hash.digest('hex'), size };
  }

  /** Reads a small body (a record) into memory, hashing it; at most `limit` bytes (BodyTooLarge beyond). */
  async receiveBytes(body: AsyncIterable<Uint8Array> | Readable, limit: number): Promise<ReceivedBytes> {
    const chunks: Uint8Array[] = [];
    let size = 0;
    for await (const chunk of body as AsyncIterable<Uint8Array>) {
      size += chunk.length;
      if (size > limit) throw new BodyTooLarge(limit);
      chunks.push(chunk);
    }
    const bytes = Buffer.concat(chunks, size);
    return { bytes, sha256: createHash('sha256').update(bytes).digest('hex'), size };
  }

  /** Writes `bytes` to a new temporary file, fsync'd (a record going to quarantine). */
  async writeTemp(bytes: Uint8Array): Promise<string> {
    const tmp = this.tempName();
    try {
      const fh = await open(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o600);
      try {
        await fh.writeFile(bytes);
        await fh.sync();
      } finally {
        await fh.close();
      }
    } catch (e) {
      await rm(tmp, { force: true });
      throw ioError(e, tmp, 'write') ?? e;
    }
    return tmp;
  }

  private tempName(): string {
    return join(this.tmpDir, `${Date.now().toString(36)}-${randomBytes(8).toString('hex')}.part`);
  }

  /** Moves a received file to `target` durably: parent directories created (and fsync'd), rename, directory fsync. */
  async commit(tmp: string, target: string): Promise<void> {
    const dir = dirname(target);
    try {
      const made = await mkdir(dir, { recursive: true, mode: 0o700 });
      await rename(tmp, target);
      await syncDir(dir);
      if (made !== undefined) {
        // the new directories' entries must be durable too: fsync each parent up to the store root
        for (let d = dirname(dir); relative(this.root, d) !== '..' && d.length >= this.root.length; d = dirname(d)) {
          await syncDir(d);
          if (d === this.root) break;
        }
      }
    } catch (e) {
      throw ioError(e, target, 'write') ?? e;
    }
  }

  /** Keeps a received file aside under .quarantine; returns its path relative to the store. */
  async quarantine(tmp: string, serial: string, session: string, name: string, sha256: string): Promise<string> {
    const rel = join(QUARANTINE_DIR, serial, session, `${name}.${sha256.slice(0, 16)}`);
    await this.commit(tmp, join(this.root, rel));
    return rel;
  }

  /** Moves a stored object aside under .quarantine (its record says its bytes are not the camera's). */
  async quarantineStored(path: string, serial: string, session: string, name: string, sha256: string): Promise<string> {
    return this.quarantine(path, serial, session, name, sha256);
  }

  async discard(tmp: string): Promise<void> {
    await rm(tmp, { force: true });
  }
}
