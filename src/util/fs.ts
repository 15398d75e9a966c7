/**
 * File-system helpers that never leave half-written state: files are written to a temporary name in the same
 * directory, flushed, then renamed over the target; directories are built under a temporary name and renamed
 * into place; state directories are guarded by an exclusive lock file.
 */
import { randomBytes } from 'node:crypto';
import { constants, existsSync, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, open, readFile, rename, rm, stat, unlink } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { ErrorCodes, KeyframeError, NotFoundError, errnoCode } from '../errors.js';

export interface WriteOptions {
  /** File mode, e.g. 0o600 for anything secret. Default 0o644. */
  readonly mode?: number;
  /** Refuse to replace an existing file. */
  readonly exclusive?: boolean;
}

/** Writes `data` to `path` atomically: temp file in the same directory, fsync, rename. */
export async function writeFileAtomic(path: string, data: string | Uint8Array, options: WriteOptions = {}): Promise<void> {
  const mode = options.mode ?? 0o644;
  if (options.exclusive === true && existsSync(path)) {
    throw new KeyframeError(ErrorCodes.EXISTS, `refusing to overwrite ${path}: it exists already`);
  }
  const dir = dirname(path);
  await mkdir(dir, { recursive: true });
  const tmp = join(dir, `.${basename(path)}.${randomBytes(6).toString('hex')}.tmp`);
  const handle = await open(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, mode);
  try {
    await handle.writeFile(data);
    await handle.sync();
  } catch (e) {
    await handle.close();
    await rm(tmp, { force: true });
    throw e;
  }
  await handle.close();
  try {
    await rename(tmp, path);
  } catch (e) {
    await rm(tmp, { force: true });
    throw e;
  }
}

/**
 * Writes a file through `fill` (given an open handle on a temporary name next to `path`), then flushes it and
 * renames it over `path`. If `fill` fails, the temporary file is removed and nothing is left behind.
 */
export async function writeWithAtomic<T>(path: string, fill: (fh: FileHandle) => Promise<T>, mode = 0o644): Promise<T> {
  const tmp = join(dirname(path), `.${basename(path)}.${randomBytes(6).toString('hex')}.tmp`);
  const fh = await open(tmp, 'wx', mode);
  let result: T;
  try {
    result = await fill(fh);
    await fh.sync();
    await fh.close();
  } catch (e) {
    await fh.close().catch(() => undefined);
    await rm(tmp, { force: true });
    throw e;
  }
  try {
    await rename(tmp, path);
  } catch (e) {
    await rm(tmp, { force: true });
    throw e;
  }
  return result;
}

/**
 * Builds a directory atomically: `build` fills a fresh temporary sibling directory, which is renamed to
 * `target` only when `build` succeeds. `target` must not exist. On failure nothing is left behind.
 */
export async function buildDirAtomic<T>(target: string, build: (tmpDir: string) => Promise<T>): Promise<T> {
  if (existsSync(target)) {
    throw new KeyframeError(ErrorCodes.EXISTS, `refusing to overwrite ${target}: it exists already`);
  }
  const parent = dirname(target);
  await mkdir(parent, { recursive: true });
  const tmp = await mkdtemp(join(parent, `.${basename(target)}.tmp-`));
  try {
    const result = await build(tmp);
    await rename(tmp, target);
    return result;
  } catch (e) {
    await rm(tmp, { recursive: true, force: true });
    throw e;
  }
}

/**
 * The one-line error for an ordinary failure to open or read `what` at `path` — missing, a directory where a file
 * is expected, not a directory, permission denied, an I/O error — or `e` unchanged when it is not such a failure.
 */
export function readFailure(e: unknown, path: string, what: string): unknown {
  const code = errnoCode(e);
  // errno codes only (ENOENT, EACCES …): not keyframe's own codes, nor Node's ERR_* (bugs)
  if (e instanceof KeyframeError || !(e instanceof Error) || code === undefined || !/^E[A-Z0-9]+$/.test(code)) return e;
  switch (code) {
    case 'ENOENT':
      return new NotFoundError(`${what} not found: ${path}`);
    case 'EISDIR':
      return new KeyframeError(ErrorCodes.INPUT, `${what} is a directory, not a file: ${path}`);
    case 'ENOTDIR':
      return new KeyframeError(ErrorCodes.INPUT, `${what} not found: ${path} (a part of the path is not a directory)`);
    case 'EACCES':
    case 'EPERM':
      return new KeyframeError(ErrorCodes.INPUT, `cannot read ${what} ${path}: permission denied`);
    default:
      return new KeyframeError(ErrorCodes.INPUT, `cannot read ${what} ${path}: ${e.message}`);
  }
}

export async function readFileOrThrow(path: string, what: string): Promise<Buffer> {
  try {
    return await readFile(path);
  } catch (e) {
    const failure = readFailure(e, path, what);
    throw failure !== e ? failure : new KeyframeError(ErrorCodes.INPUT, `cannot read ${what} ${path}: ${(e as Error).message}`);
  }
}

export function readFileSyncOrThrow(path: string, what: string): Buffer {
  try {
    return readFileSync(path);
  } catch (e) {
    if (errnoCode(e) === 'ENOENT') throw new NotFoundError(`${what} not found: ${path}`);
    throw new KeyframeError(ErrorCodes.INPUT, `cannot read ${what} ${path}: ${(e as Error).message}`);
  }
}

export async function isDirectory(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isDirectory();
  } catch {
    return false;
  }
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return errnoCode(e) === 'EPERM';
  }
}

/**
 * Runs `fn` while holding an exclusive lock on `dir` (a `.lock` file holding the owner's pid). A lock left by a
 * dead process is taken over; a live one is refused at once with KF_ERR_LOCKED rather than waited on.
 */
export async function withDirLock<T>(dir: string, fn: () => Promise<T>): Promise<T> {
  const lockPath = join(dir, '.lock');
  for (let attempt = 0; ; attempt++) {
    try {
      const handle = await open(lockPath, 'wx', 0o600);
      await handle.writeFile(String(process.pid));
      await handle.close();
      break;
    } catch (e) {
      if (errnoCode(e) === 'ENOENT') throw new NotFoundError(`directory not found: ${dir}`);
      if (errnoCode(e) !== 'EEXIST' || attempt > 0) {
        throw new KeyframeError(ErrorCodes.LOCKED, `${dir} is locked by another keyframe process (${lockPath})`);
      }
      const owner = Number.parseInt(await readFile(lockPath, 'utf8').catch(() => ''), 10);
      if (Number.isInteger(owner) && owner > 0 && processAlive(owner)) {
        throw new KeyframeError(ErrorCodes.LOCKED, `${dir} is locked by process ${owner} (${lockPath})`);
      }
      await unlink(lockPath).catch(() => undefined);
    }
  }
  try {
    return await fn();
  } finally {
    await unlink(lockPath).catch(() => undefined);
  }
}
