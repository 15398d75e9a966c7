/**
 * The per-camera monotonic unit counter (docs/signed-video.md §3), persisted in DEV/counter.json. Write-ahead:
 * values are handed out only after a block of them has been reserved on disk (the file holds the first value not
 * yet reserved), so a crash or restart skips values but never repeats one. Reservation runs under the device
 * directory lock.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ErrorCodes, InputError, KeyframeError, errnoCode } from '../errors.js';
import { withDirLock, writeFileAtomic } from '../util/fs.js';

export const COUNTER_FILE = 'counter.json';
const MAX = (1n << 64n) - 1n;

interface CounterFile {
  readonly v: 1;
  /** First value not yet reserved, decimal. */
  readonly next: string;
}

async function readNext(path: string): Promise<bigint> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    if (errnoCode(e) === 'ENOENT') return 0n;
    throw e;
  }
  let parsed: CounterFile;
  try {
    parsed = JSON.parse(text) as CounterFile;
  } catch {
    throw new InputError(`${path} is not valid JSON`);
  }
  if (parsed.v !== 1 || typeof parsed.next !== 'string' || !/^\d{1,20}$/.test(parsed.next) || BigInt(parsed.next) > MAX) {
    throw new InputError(`${path} is not a keyframe counter file`);
  }
  return BigInt(parsed.next);
}

export class UnitCounter {
  private next = 0n;
  private limit = 0n;

  private constructor(
    private readonly dir: string,
    private readonly block: bigint,
  ) {}

  /** A counter for DEV; `block` values are reserved per disk write (default 32). */
  static open(dir: string, options: { block?: number } = {}): UnitCounter {
    const block = options.block ?? 32;
    if (!Number.isInteger(block) || block < 1) throw new InputError('counter block must be a positive integer');
    return new UnitCounter(dir, BigInt(block));
  }

  /** The next value, reserved on disk before it is returned. */
  async reserve(): Promise<bigint> {
    if (this.next >= this.limit) {
      const path = join(this.dir, COUNTER_FILE);
      await withDirLock(this.dir, async () => {
        const base = await readNext(path);
        const limit = base + this.block;
        if (limit > MAX) throw new KeyframeError(ErrorCodes.INTERNAL, 'unit counter exhausted');
        await writeFileAtomic(path, `${JSON.stringify({ v: 1, next: limit.toString() })}\n`);
        this.next = base;
        this.limit = limit;
      });
    }
    return this.next++;
  }
}
