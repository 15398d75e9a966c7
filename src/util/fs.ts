/**
 * File-system helpers that never leave half-written state: files are written to a temporary name in the same
 * directory, flushed, then renamed over the target; directories are built under a temporary name and renamed
 * into place; state directories are guarded by an exclusive lock file. Every temporary is registered for removal
 * at exit and on SIGINT/SIGTERM (src/util/cleanup.ts), and every ordinary failure names the path the caller
 * gave, not the temporary (src/errors.ts ioError).
 *
 * checkOutput is the one check every command runs before it writes a file or directory: the output is not an
 * input (same real path, or the same file through a hard link), its directory exists, and it does not exist
 * already unless the command was given --force.
 */
import { randomBytes } from 'node:crypto';
import { closeSync, constants, existsSync, fdatasync, openSync, readFileSync, renameSync, rmSync, writeSync, writevSync } from 'node:fs';
import { link, mkdir, open, readFile, readdir, realpath, rename, rm, stat, unlink } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import type { Stats } from 'node:fs';
import { basename, dirname, join, relative, resolve, sep } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { ErrorCodes, KeyframeError, NotFoundError, UsageError, errnoCode, ioError } from '../errors.js';
import { trackTemporary } from './cleanup.js';

export interface WriteOptions {
  /** File mode, e.g. 0o600 for anything secret. Default 0o644. */
  readonly mode?: number;
  /** Refuse to replace an existing file. */
  readonly exclusive?: boolean;
}

function tmpNameFor(path: string): string {
  return join(dirname(path), `.${basename(path)}.${randomBytes(6).toString('hex')}.tmp`);
}

/** An error from a write through a file handle (no path of its own) is about `path`. */
function writeError(e: unknown, path: string): unknown {
  const f = e as { syscall?: unknown; path?: unknown };
  if (typeof f === 'object' && f !== null && f.path === undefined && ['write', 'writev', 'fsync', 'fdatasync', 'close', 'ftruncate'].includes(String(f.syscall))) {
    return ioError(e, path, 'write') ?? e;
  }
  return e;
}

/** Writes `data` to `path` atomically: temp file in the same directory, fsync, rename. */
export async function writeFileAtomic(path: string, data: string | Uint8Array, options: WriteOptions = {}): Promise<void> {
  const mode = options.mode ?? 0o644;
  if (options.exclusive === true && existsSync(path)) {
    throw new KeyframeError(ErrorCodes.EXISTS, `refusing to overwrite ${path}: it exists already`);
  }
  const dir = dirname(path);
  const tmp = tmpNameFor(path);
  let handle: FileHandle;
  try {
    await mkdir(dir, { recursive: true });
  } catch (e) {
    throw ioError(e, path, 'write') ?? e;
  }
  // registered before it exists: a signal that arrives while open() runs must still find it
  const untrack = trackTemporary(tmp);
  try {
    handle = await open(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, mode);
  } catch (e) {
    untrack();
    throw ioError(e, path, 'write') ?? e;
  }
  try {
    try {
      await handle.writeFile(data);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(tmp, path);
  } catch (e) {
    await rm(tmp, { force: true });
    throw ioError(e, path, 'write') ?? e;
  } finally {
    untrack();
  }
}

/**
 * Writes a file through `fill` (given an open handle on a temporary name next to `path`), then flushes it and
 * renames it over `path`. If `fill` fails, or the process is interrupted, the temporary file is removed and
 * nothing is left behind.
 */
export async function writeWithAtomic<T>(path: string, fill: (fh: FileHandle) => Promise<T>, mode = 0o644): Promise<T> {
  const tmp = tmpNameFor(path);
  let fh: FileHandle;
  // registered before it exists: a signal that arrives while open() runs must still find it
  const untrack = trackTemporary(tmp);
  try {
    fh = await open(tmp, 'wx', mode);
  } catch (e) {
    untrack();
    throw ioError(e, path, 'write') ?? e;
  }
  try {
    let result: T;
    try {
      result = await fill(fh);
      await fh.sync();
      await fh.close();
    } catch (e) {
      await fh.close().catch(() => undefined);
      throw writeError(e, path);
    }
    try {
      await rename(tmp, path);
    } catch (e) {
      throw ioError(e, path, 'write') ?? e;
    }
    return result;
  } catch (e) {
    await rm(tmp, { force: true });
    throw e;
  } finally {
    untrack();
  }
}

/** At most this many buffers in one writev (Linux's IOV_MAX is 1024). */
const WRITEV_MAX = 512;

/** What is left of `chunks` after their first `n` bytes, without empty ones (a writev of nothing writes 0). */
function skipBytes(chunks: readonly Uint8Array[], n: number): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (const c of chunks) {
    if (n >= c.length) {
      n -= c.length; // an empty chunk goes here too
      continue;
    }
    out.push(n > 0 ? c.subarray(n) : c);
    n = 0;
  }
  return out;
}

function noProgress(): Error {
  return Object.assign(new Error('no space left on device'), { code: 'ENOSPC', syscall: 'write' });
}

/** Writes every byte of `chunks` through `fh` (a partial writev is continued where it stopped); returns the count. */
export async function writevAll(fh: FileHandle, chunks: readonly Uint8Array[]): Promise<number> {
  let written = 0;
  for (let i = 0; i < chunks.length; i += WRITEV_MAX) {
    for (let rest = skipBytes(chunks.slice(i, i + WRITEV_MAX), 0); rest.length > 0; ) {
      const { bytesWritten } = await fh.writev(rest);
      if (bytesWritten === 0) throw noProgress();
      written += bytesWritten;
      rest = skipBytes(rest, bytesWritten);
    }
  }
  return written;
}

/** writevAll on a file descriptor, synchronously. */
export function writevAllSync(fd: number, chunks: readonly Uint8Array[]): number {
  let written = 0;
  for (let i = 0; i < chunks.length; i += WRITEV_MAX) {
    for (let rest = skipBytes(chunks.slice(i, i + WRITEV_MAX), 0); rest.length > 0; ) {
      const n = writevSync(fd, rest);
      if (n === 0) throw noProgress();
      written += n;
      rest = skipBytes(rest, n);
    }
  }
  return written;
}

/** fdatasync in the thread pool. */
export const fdatasyncAsync: (fd: number) => Promise<void> = promisify(fdatasync);

/**
 * Writes `chunks` to `path` atomically and durably (temporary name, flush, rename), as writeWithAtomic does, with
 * one asynchronous step: the flush, in the thread pool. Opening, writing to the page cache, closing and renaming
 * are short synchronous system calls, so a service that makes a file a second (the camera's ring buffer) pays one
 * thread-pool round trip and wake-up per file instead of five. Returns the bytes written.
 */
export async function writeChunksDurable(path: string, chunks: readonly Uint8Array[], mode = 0o644): Promise<number> {
  const tmp = tmpNameFor(path);
  const untrack = trackTemporary(tmp);
  let fd: number;
  try {
    fd = openSync(tmp, 'wx', mode);
  } catch (e) {
    untrack();
    throw ioError(e, path, 'write') ?? e;
  }
  let open = true;
  try {
    const written = writevAllSync(fd, chunks);
    await fdatasyncAsync(fd);
    open = false;
    closeSync(fd);
    renameSync(tmp, path);
    return written;
  } catch (e) {
    if (open) closeSync(fd);
    removeQuietly(tmp);
    throw ioError(e, path, 'write') ?? e;
  } finally {
    untrack();
  }
}

/**
 * Replaces `path` with `data` at once, synchronously and without a flush: written to `.NAME.tmp` beside it and
 * renamed over it, so a reader sees the old file or the new one, never half of one. For small state rewritten
 * often that need not survive a power cut (a status file): no thread-pool round trip, no disk flush; a temporary
 * left by a crash is the next call's to truncate.
 */
export function replaceFileSync(path: string, data: string | Uint8Array, mode = 0o644): void {
  const tmp = join(dirname(path), `.${basename(path)}.tmp`);
  try {
    const fd = openSync(tmp, 'w', mode);
    try {
      writeSync(fd, typeof data === 'string' ? Buffer.from(data, 'utf8') : data);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, path);
  } catch (e) {
    removeQuietly(tmp);
    throw ioError(e, path, 'write') ?? e;
  }
}

/** Removes a temporary after a failure; a second failure (its directory is gone or not one) changes nothing. */
function removeQuietly(path: string): void {
  try {
    rmSync(path, { force: true });
  } catch {
    // the first error is the one to report
  }
}

export interface TrackedTempDir {
  readonly path: string;
  /** Unregisters it from the clean-up at exit (call once it is renamed into place or removed). */
  readonly untrack: () => void;
}

/**
 * Creates a private directory named `prefix` + random hex (as mkdtemp does), registered for removal at exit or on
 * SIGINT/SIGTERM *before* it is created, so that a signal arriving while mkdir runs still finds it.
 */
export async function makeTrackedTempDir(prefix: string): Promise<TrackedTempDir> {
  const path = `${prefix}${randomBytes(6).toString('hex')}`;
  const untrack = trackTemporary(path, 'dir');
  try {
    await mkdir(path, { mode: 0o700 });
  } catch (e) {
    untrack();
    throw e;
  }
  return { path, untrack };
}

export interface BuildDirOptions {
  /** Replace an existing `target` (the caller has checked that it may: see checkOutput). */
  readonly replace?: boolean;
}

/**
 * Builds a directory atomically: `build` fills a fresh temporary sibling directory, which is renamed to
 * `target` only when `build` succeeds. `target` must not exist, unless `replace`: the old directory is then moved
 * aside and removed only once the new one is in place. On failure nothing is left behind.
 */
export async function buildDirAtomic<T>(target: string, build: (tmpDir: string) => Promise<T>, options: BuildDirOptions = {}): Promise<T> {
  if (options.replace !== true && existsSync(target)) {
    throw new KeyframeError(ErrorCodes.EXISTS, `refusing to overwrite ${target}: it exists already`);
  }
  const parent = dirname(target);
  try {
    await mkdir(parent, { recursive: true });
  } catch (e) {
    throw ioError(e, target, 'create') ?? e;
  }
  let made: TrackedTempDir;
  try {
    made = await makeTrackedTempDir(join(parent, `.${basename(target)}.tmp-`));
  } catch (e) {
    throw ioError(e, target, 'create') ?? e;
  }
  const { path: tmp, untrack } = made;
  try {
    const result = await build(tmp);
    try {
      if (options.replace === true && existsSync(target)) await swapDir(tmp, target);
      else await rename(tmp, target);
    } catch (e) {
      throw ioError(e, target, 'create') ?? e;
    }
    return result;
  } catch (e) {
    await rm(tmp, { recursive: true, force: true });
    throw e;
  } finally {
    untrack();
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

/** Puts directory `fresh` in the place of `target`: the old one is moved aside first and removed last. */
async function swapDir(fresh: string, target: string): Promise<void> {
  const old = join(dirname(target), `.${basename(target)}.old-${randomBytes(6).toString('hex')}`);
  await rename(target, old);
  try {
    await rename(fresh, target);
  } catch (e) {
    await rename(old, target).catch(() => undefined);
    throw e;
  }
  await rm(old, { recursive: true, force: true });
}

export interface OutputCheck {
  /** 'file' (written atomically) or 'dir' (a directory the command creates). */
  readonly kind: 'file' | 'dir';
  /** The command's inputs: the output may be none of them, and a directory output may not contain one. */
  readonly inputs?: readonly string[];
  /** An input may be a directory (a recording): an output inside it is refused too. */
  readonly directoryInputs?: boolean;
  /** Replace an existing output (the command's --force). */
  readonly force?: boolean;
  /** A directory output that exists but is empty is used as it is (`keyframe record`). */
  readonly emptyDirIsNew?: boolean;
  /**
   * With `force`, an existing directory is replaced only if this says it is of the kind the command writes (a
   * recording, a CA, a device): --force never removes an unrelated directory. The string names the kind.
   */
  readonly sameKind?: { readonly what: string; readonly test: (dir: string) => Promise<boolean> };
}

export interface OutputPlan {
  readonly path: string;
  /** The output exists and is to be replaced (with --force). */
  readonly replace: boolean;
}

async function statOrUndefined(path: string): Promise<Stats | undefined> {
  try {
    return await stat(path);
  } catch (e) {
    if (errnoCode(e) === 'ENOENT') return undefined;
    throw ioError(e, path) ?? e;
  }
}

function within(parent: string, child: string): boolean {
  const r = relative(parent, child);
  return r === '' || (!r.startsWith('..') && !r.startsWith(sep) && r !== '..');
}

/**
 * The check before writing `out`: refuses an output that is one of the inputs (by real path, or the same file
 * through a hard link: same device and inode), a directory output that contains an input, an output whose
 * directory does not exist, a file output that is a directory (and a directory output that is a file), and an
 * existing output unless `force`. Throws one-line KeyframeErrors: usage (exit 2) for an output that is an
 * input, KF_ERR_IO (exit 2) for a missing or wrong-kind path, KF_ERR_EXISTS (exit 1) for an existing output.
 */
export async function checkOutput(out: string, options: OutputCheck): Promise<OutputPlan> {
  const path = resolve(out);
  const parent = dirname(path);
  const parentStat = await statOrUndefined(parent);
  if (parentStat === undefined) throw new KeyframeError(ErrorCodes.IO, `cannot write ${path}: directory ${parent} does not exist`);
  if (!parentStat.isDirectory()) throw new KeyframeError(ErrorCodes.IO, `cannot write ${path}: ${parent} is not a directory`);
  const outStat = await statOrUndefined(path);
  const realOut = outStat !== undefined ? await realpath(path) : join(await realpath(parent), basename(path));
  for (const input of options.inputs ?? []) {
    const inPath = resolve(input);
    const inStat = await statOrUndefined(inPath);
    if (inStat === undefined) continue; // the command reports a missing input itself
    const realIn = await realpath(inPath);
    const same = realIn === realOut || (outStat !== undefined && outStat.dev === inStat.dev && outStat.ino === inStat.ino);
    if (same) throw new UsageError(`refusing to write ${path}: it is the input ${inPath}`);
    if (options.kind === 'dir' && within(realOut, realIn)) throw new UsageError(`refusing to write ${path}: it holds the input ${inPath}`);
    if (options.directoryInputs === true && inStat.isDirectory() && within(realIn, realOut)) throw new UsageError(`refusing to write ${path}: it is inside the input ${inPath}`);
  }
  if (outStat === undefined) return { path, replace: false };
  if (options.kind === 'file' && outStat.isDirectory()) throw new KeyframeError(ErrorCodes.IO, `cannot write ${path}: it is a directory (name a file)`);
  if (options.kind === 'dir' && !outStat.isDirectory()) throw new KeyframeError(ErrorCodes.IO, `cannot create directory ${path}: it is a file`);
  if (options.kind === 'dir' && options.emptyDirIsNew === true) {
    const entries = await readdir(path).catch((e: unknown) => {
      throw ioError(e, path) ?? e;
    });
    if (entries.length === 0) return { path, replace: false };
  }
  if (options.force !== true) throw new KeyframeError(ErrorCodes.EXISTS, `refusing to overwrite ${path}: it exists already (--force replaces it)`);
  if (options.kind === 'dir' && options.sameKind !== undefined && !(await options.sameKind.test(path))) {
    throw new KeyframeError(ErrorCodes.EXISTS, `refusing to replace ${path}: it is not ${options.sameKind.what}, and --force replaces only that`);
  }
  return { path, replace: true };
}

export async function readFileOrThrow(path: string, what: string): Promise<Buffer> {
  try {
    return await readFile(path);
  } catch (e) {
    const failure = readFailure(e, path, what);
    throw failure !== e ? failure : new KeyframeError(ErrorCodes.INPUT, `cannot read ${what} ${path}: ${(e as Error).message}`);
    if (errnoCode(e) === 'ENOENT') throw new NotFoundError(`${what} not found: ${path}`);
    if (errnoCode(e) === 'EISDIR') throw new KeyframeError(ErrorCodes.INPUT, `${what} is a directory, not a file: ${path}`);
    throw ioError(e, `${what} ${path}`, 'read') ?? new KeyframeError(ErrorCodes.INPUT, `cannot read ${what} ${path}: ${(e as Error).message}`);
  }
}

export function readFileSyncOrThrow(path: string, what: string): Buffer {
  try {
    return readFileSync(path);
  } catch (e) {
    if (errnoCode(e) === 'ENOENT') throw new NotFoundError(`${what} not found: ${path}`);
    if (errnoCode(e) === 'EISDIR') throw new KeyframeError(ErrorCodes.INPUT, `${what} is a directory, not a file: ${path}`);
    throw ioError(e, `${what} ${path}`, 'read') ?? new KeyframeError(ErrorCodes.INPUT, `cannot read ${what} ${path}: ${(e as Error).message}`);
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

async function lockOwner(path: string): Promise<number | undefined> {
  const owner = Number.parseInt(await readFile(path, 'utf8').catch(() => ''), 10);
  return Number.isInteger(owner) && owner > 0 ? owner : undefined;
}

/**
 * One attempt at the lock: the pid is written to a private file first and hard-linked to `.lock`, so the lock
 * file never exists without its owner's pid in it. Returns undefined when taken, else the owner (0: unknown).
 */
async function tryLock(dir: string, lockPath: string): Promise<number | undefined> {
  const mine = `${lockPath}.${process.pid}.${randomBytes(4).toString('hex')}`;
  const untrack = trackTemporary(mine);
  try {
    const fh = await open(mine, 'wx', 0o600);
    try {
      await fh.writeFile(String(process.pid));
    } finally {
      await fh.close();
    }
  } catch (e) {
    await unlink(mine).catch(() => undefined);
    if (errnoCode(e) === 'ENOENT') throw new NotFoundError(`directory not found: ${dir}`);
    throw ioError(e, lockPath, 'create') ?? e;
  }
  try {
    await link(mine, lockPath);
    return undefined;
  } catch (e) {
    if (errnoCode(e) !== 'EEXIST') throw ioError(e, lockPath, 'create') ?? e;
  } finally {
    await unlink(mine).catch(() => undefined);
    untrack();
  }
  const owner = await lockOwner(lockPath);
  if (owner !== undefined && processAlive(owner)) return owner;
  if (owner === undefined && existsSync(lockPath)) return 0;
  // a lock left by a dead process: move it aside atomically, and put it back if it turns out to be a live one's
  const aside = `${lockPath}.stale-${process.pid}.${randomBytes(4).toString('hex')}`;
  try {
    await rename(lockPath, aside);
  } catch {
    return 0; // someone else moved it first: try again
  }
  const moved = await lockOwner(aside);
  if (moved !== undefined && moved !== owner && processAlive(moved)) {
    await link(aside, lockPath).catch(() => undefined);
    await unlink(aside).catch(() => undefined);
    return moved;
  }
  await unlink(aside).catch(() => undefined);
  return 0;
}

export interface LockOptions {
  /** How long to wait for a lock held by a live process, in ms (default 0: refuse at once). */
  readonly waitMs?: number;
}

/**
 * Runs `fn` while holding an exclusive lock on `dir` (a `.lock` file holding the owner's pid). A lock left by a
 * dead process is taken over; one held by a live process is waited for up to `waitMs` (polling), then refused
 * with KF_ERR_LOCKED.
 */
export async function withDirLock<T>(dir: string, fn: () => Promise<T>, options: LockOptions = {}): Promise<T> {
  const lockPath = join(dir, '.lock');
  const deadline = Date.now() + (options.waitMs ?? 0);
  for (;;) {
    const owner = await tryLock(dir, lockPath);
    if (owner === undefined) break;
    if (Date.now() >= deadline) {
      const waited = (options.waitMs ?? 0) > 0 ? `; gave up after waiting ${Math.round((options.waitMs ?? 0) / 1000)} s` : '';
      throw new KeyframeError(ErrorCodes.LOCKED, `${dir} is locked by ${owner > 0 ? `process ${owner}` : 'another keyframe process'} (${lockPath})${waited}`);
    }
    await sleep(20 + Math.floor(Math.random() * 60));
  }
  // held: an interrupted process removes its lock on the way out
  const untrack = trackTemporary(lockPath);
  try {
    return await fn();
  } finally {
    await unlink(lockPath).catch(() => undefined);
    untrack();
  }
}
